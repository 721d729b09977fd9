package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/metrics"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// healthShutdownTimeout bounds how long a closing health server waits for scrapes in flight.
const healthShutdownTimeout = 5 * time.Second

// checkHTTPListen refuses an --http-listen value net.Listen would refuse, before anything is
// bound. Empty means off and is accepted.
func checkHTTPListen(flagName, addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s %q: want host:port (port 0 picks a free one): %w", flagName, addr, err)
	}
	return nil
}

// healthzHandler answers 200 "ok" for as long as the process serves HTTP: liveness only.
func healthzHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

// readyzHandler answers 200 "ready" when ready returns nil, else 503 with the reason, so a
// load balancer or orchestrator can tell why the process should get no traffic yet.
func readyzHandler(ready func() error) http.HandlerFunc {
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

// serviceState is the readiness of a server command: not ready until it listens, and not
// ready again once it is shutting down, so traffic stops reaching it while it drains.
type serviceState struct {
	listening, stopping atomic.Bool
}

// ready reports the state as readyzHandler expects it.
func (s *serviceState) ready() error {
	switch {
	case s.stopping.Load():
		return errors.New("shutting down")
	case !s.listening.Load():
		return errors.New("not listening yet")
	}
	return nil
}

// healthServer serves /metrics, /healthz and /readyz on a listener of its own, for the
// commands whose main protocol is not HTTP (node, turn).
type healthServer struct {
	addr   net.Addr
	hs     *http.Server
	served chan error
	log    zerolog.Logger
}

// route is one more path a health server serves, beside /metrics, /healthz and /readyz.
type route struct {
	path    string
	handler http.Handler
}

// startHealthServer listens on addr and serves metricsHandler at /metrics, liveness at
// /healthz, ready at /readyz and the extra routes.
func startHealthServer(addr string, metricsHandler http.Handler, ready func() error, log zerolog.Logger, extra ...route) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on --http-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler)
	mux.HandleFunc("/healthz", healthzHandler)
	mux.HandleFunc("/readyz", readyzHandler(ready))
	for _, r := range extra {
		mux.Handle(r.path, r.handler)
	}
	s := &healthServer{
		addr: ln.Addr(),
		hs: &http.Server{
			Handler: mux,
			// Scrapes are small requests and a POST /broadcast body is at most one message;
			// these bound what a slow or idle client can hold.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          stdLogger(log),
		},
		served: make(chan error, 1),
		log:    log,
	}
	go func() { s.served <- s.hs.Serve(ln) }()
	paths := []string{"/metrics", "/healthz", "/readyz"}
	for _, r := range extra {
		paths = append(paths, r.path)
	}
	log.Info().Str("http_listen", s.addr.String()).Strs("paths", paths).Msg("serving metrics and health")
	return s, nil
}

// close stops the server, waiting up to healthShutdownTimeout for scrapes in flight. A
// failure of the server while it ran is logged: metrics are not worth stopping the command.
func (s *healthServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), healthShutdownTimeout)
	defer cancel()
	if err := s.hs.Shutdown(ctx); err != nil {
		_ = s.hs.Close()
	}
	if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error().Err(err).Msg("metrics and health HTTP server failed")
	}
}

// startNodeHealthServer serves a node's metrics on addr. The node is ready once it has a
// neighbour: before that it cannot broadcast to anyone. With broadcast set, POST /broadcast
// broadcasts its body (see broadcastHandler).
func startNodeHealthServer(addr string, w *node.WebRTCNode, broadcast bool, maxPayload int, log zerolog.Logger) (*healthServer, error) {
	reg, err := metrics.NewRegistry(metrics.NewNodeCollector(w))
	if err != nil {
		return nil, err
	}
	ready := func() error {
		if len(w.Neighbors()) == 0 {
			return errors.New("no neighbour yet")
		}
		return nil
	}
	log = log.With().Str("component", "http").Logger()
	var extra []route
	if broadcast {
		send := func(data []byte) (string, error) {
			id, err := w.Broadcast(data)
			return id.String(), err
		}
		extra = append(extra, route{"/broadcast", broadcastHandler(send, ready, maxPayload, log)})
	}
	return startHealthServer(addr, metrics.Handler(reg), ready, log, extra...)
}

// broadcastFunc broadcasts one message and returns its ID: what POST /broadcast needs of a
// node.
type broadcastFunc func(data []byte) (id string, err error)

// broadcastResponse is the JSON body of a successful POST /broadcast.
type broadcastResponse struct {
	// ID is the message ID, as the deliver events on every node's standard output name it.
	ID string `json:"id"`
	// Bytes is the payload's length.
	Bytes int `json:"bytes"`
}

// broadcastHandler broadcasts the body of a POST as one message and answers its ID as JSON.
// It exists for operators and smoke tests that have no access to a node's standard input (a
// container). The body is bounded by maxPayload, the largest payload gossip accepts; a body
// over it is refused with 413 before more of it is read. An empty body is 400, a method other
// than POST 405, and a node with no neighbour 503: a broadcast then would reach nobody.
func broadcastHandler(broadcast broadcastFunc, ready func() error, maxPayload int, log zerolog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fail := func(code int, format string, args ...any) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, format+"\n", args...)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(http.StatusMethodNotAllowed, "method %s not allowed: POST the message as the request body", r.Method)
			return
		}
		if r.ContentLength > int64(maxPayload) {
			fail(http.StatusRequestEntityTooLarge, "body of %d bytes exceeds the largest message, %d bytes", r.ContentLength, maxPayload)
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(maxPayload)))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				fail(http.StatusRequestEntityTooLarge, "body exceeds the largest message, %d bytes", maxPayload)
				return
			}
			fail(http.StatusBadRequest, "reading the body: %v", err)
			return
		}
		if len(data) == 0 {
			fail(http.StatusBadRequest, "empty body: POST the message as the request body")
			return
		}
		if err := ready(); err != nil {
			fail(http.StatusServiceUnavailable, "not broadcasting: %v", err)
			return
		}
		id, err := broadcast(data)
		if err != nil {
			if errors.Is(err, node.ErrClosed) {
				fail(http.StatusServiceUnavailable, "the node is shutting down")
				return
			}
			log.Error().Err(err).Int("bytes", len(data)).Msg("broadcast over HTTP")
			fail(http.StatusInternalServerError, "broadcast: %v", err)
			return
		}
		log.Info().Str("msg_id", id).Int("bytes", len(data)).Str("remote", r.RemoteAddr).Msg("broadcast over HTTP")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(broadcastResponse{ID: id, Bytes: len(data)})
	}
}

// signalMetricsHandler serves the signaling server's metrics, and the embedded relay's when
// relay is not nil.
func signalMetricsHandler(sig *signalserver.Server, relay *turnserver.Server) (http.Handler, error) {
	reg, err := metrics.NewRegistry(metrics.NewSignalCollector(sig))
	if err != nil {
		return nil, err
	}
	if relay != nil {
		if err := reg.Register(metrics.NewTURNCollector(relay)); err != nil {
			return nil, fmt.Errorf("registering the embedded relay's metrics: %w", err)
		}
	}
	return metrics.Handler(reg), nil
}

// startTURNHealthServer serves a TURN relay's metrics on addr; state says whether it is ready.
func startTURNHealthServer(addr string, srv *turnserver.Server, state *serviceState, log zerolog.Logger) (*healthServer, error) {
	reg, err := metrics.NewRegistry(metrics.NewTURNCollector(srv))
	if err != nil {
		return nil, err
	}
	return startHealthServer(addr, metrics.Handler(reg), state.ready, log.With().Str("component", "http").Logger())
}
