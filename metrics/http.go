package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Healthz answers 200 "ok" for as long as the process serves HTTP: liveness only. Every
// rtcmesh command that serves HTTP (the signaling service, a node, a relay) answers /healthz
// with it.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

// Readyz answers 200 "ready" when ready returns nil, else 503 with the reason, so a load
// balancer or orchestrator can tell why the process should get no traffic yet.
func Readyz(ready func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error())
			return
		}
		_, _ = io.WriteString(w, "ready")
	}
}

// Readiness is the readiness of a server: not ready until it listens, and not ready again once
// it is shutting down, so traffic stops reaching it while it drains. The zero value is not
// ready; it is safe for concurrent use.
type Readiness struct {
	listening, stopping atomic.Bool
}

// Listening marks the server as serving.
func (r *Readiness) Listening() { r.listening.Store(true) }

// Stopping marks the server as shutting down, for good.
func (r *Readiness) Stopping() { r.stopping.Store(true) }

// Ready reports the state as Readyz expects it.
func (r *Readiness) Ready() error {
	switch {
	case r.stopping.Load():
		return errors.New("shutting down")
	case !r.listening.Load():
		return errors.New("not listening yet")
	}
	return nil
}

// ErrorLog adapts log for net/http's ErrorLog, so its rare complaints (accept errors,
// malformed requests) come out as warnings in the same format as everything else instead of
// as bare text lines.
func ErrorLog(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(warnWriter{log}, "", 0)
}

// warnWriter logs each write as one warning.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ServerConfig configures a Server. Start from DefaultServerConfig.
type ServerConfig struct {
	// Listen is the TCP address, host:port; port 0 picks a free one (Server.Addr reports it).
	Listen string
	// ReadHeaderTimeout, ReadTimeout and WriteTimeout bound what a slow client can hold:
	// scrapes are small requests and an extra route's body (a POST /broadcast) at most one
	// message. Defaults 10 s, 30 s and 30 s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	// IdleTimeout bounds how long an idle keep-alive connection is kept. Default 60 s.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long Close waits for requests in flight. Default 5 s.
	ShutdownTimeout time.Duration
	// Logger receives the server's logs. The zero value logs nothing.
	Logger zerolog.Logger
}

// DefaultServerConfig returns the defaults for a server on listen.
func DefaultServerConfig(listen string) ServerConfig {
	return ServerConfig{
		Listen:            listen,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ShutdownTimeout:   5 * time.Second,
	}
}

// Validate reports every invalid field, in the order they are declared, without binding
// anything.
func (c ServerConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("Listen %q: want host:port (port 0 picks a free one): %w", c.Listen, err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %v, must be positive", d.name, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metrics: invalid config: %w", err)
	}
	return nil
}

// Server serves reg at /metrics, liveness at /healthz, readiness at /readyz and extra routes
// on a listener of its own, for the commands whose main protocol is not HTTP (a node, a
// standalone relay).
type Server struct {
	cfg       ServerConfig
	addr      net.Addr
	hs        *http.Server
	served    chan error
	closeOnce sync.Once
}

// StartServer validates cfg, listens on cfg.Listen and serves. extra maps more paths to their
// handlers.
func StartServer(cfg ServerConfig, reg *prometheus.Registry, ready func() error, extra map[string]http.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listening on %s: %w", cfg.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(reg))
	mux.HandleFunc("/healthz", Healthz)
	mux.HandleFunc("/readyz", Readyz(ready))
	paths := []string{"/metrics", "/healthz", "/readyz"}
	for _, p := range slices.Sorted(maps.Keys(extra)) {
		mux.Handle(p, extra[p])
		paths = append(paths, p)
	}
	s := &Server{cfg: cfg, addr: ln.Addr(), served: make(chan error, 1), hs: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          ErrorLog(cfg.Logger),
	}}
	go func() { s.served <- s.hs.Serve(ln) }()
	cfg.Logger.Info().Str("http_listen", s.addr.String()).Strs("paths", paths).Msg("serving metrics and health")
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops the server, waiting up to ShutdownTimeout for requests in flight. A failure of
// the server while it ran is logged: metrics are not worth stopping a command for. It is safe
// to call more than once.
func (s *Server) Close() { s.closeOnce.Do(s.close) }

func (s *Server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.hs.Shutdown(ctx); err != nil {
		_ = s.hs.Close()
	}
	if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.cfg.Logger.Error().Err(err).Msg("metrics and health HTTP server failed")
	}
}
