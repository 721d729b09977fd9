package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/metrics"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/signaling/signalservice"
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

// serviceState is the readiness of a server command: not ready until it listens, and not
// ready again once it is shutting down, so traffic stops reaching it while it drains.
type serviceState struct {
	listening, stopping atomic.Bool
}

// ready reports the state as signalservice.Readyz expects it.
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
// commands whose main protocol is not HTTP (node, turn); the signal command's service serves
// them itself.
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
	mux.HandleFunc("/healthz", signalservice.Healthz)
	mux.HandleFunc("/readyz", signalservice.Readyz(ready))
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
			ErrorLog:          signalservice.ErrorLog(log),
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

// startTURNHealthServer serves a TURN relay's metrics on addr; state says whether it is ready.
func startTURNHealthServer(addr string, srv *turnserver.Server, state *serviceState, log zerolog.Logger) (*healthServer, error) {
	reg, err := metrics.NewRegistry(metrics.NewTURNCollector(srv))
	if err != nil {
		return nil, err
	}
	return startHealthServer(addr, metrics.Handler(reg), state.ready, log.With().Str("component", "http").Logger())
}
