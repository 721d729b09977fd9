package main

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/metrics"
	"github.com/rtcmesh/rtcmesh/node/nodehttp"
	"github.com/rtcmesh/rtcmesh/rtcnode"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// checkHTTPListen refuses an --http-listen value the metrics server would refuse, before
// anything is bound. Empty means off and is accepted.
func checkHTTPListen(addr string) error {
	if addr == "" {
		return nil
	}
	if err := metrics.DefaultServerConfig(addr).Validate(); err != nil {
		return flagErrors(err, map[string]string{"Listen": "--http-listen"})
	}
	return nil
}

// startNodeHealthServer serves a node's metrics on addr. The node is ready once it has a
// neighbour: before that its broadcasts reach nobody (they wait for the first one). With
// broadcast set, POST /broadcast broadcasts its body (see nodehttp.BroadcastHandler).
func startNodeHealthServer(addr string, w *rtcnode.Node, broadcast bool, maxPayload int, log zerolog.Logger) (*metrics.Server, error) {
	reg, err := metrics.NewRegistry(metrics.NewNodeCollector(w), metrics.NewLinkProofCollector(w))
	if err != nil {
		return nil, err
	}
	ready := func() error {
		if len(w.Neighbors()) == 0 {
			return errors.New("no neighbour yet")
		}
		return nil
	}
	cfg := metrics.DefaultServerConfig(addr)
	cfg.Logger = log.With().Str("component", "http").Logger()
	extra := map[string]http.Handler{}
	if broadcast {
		send := func(data []byte) (string, error) {
			id, err := w.Broadcast(data)
			return id.String(), err
		}
		hasNeighbour := func() bool { return len(w.Neighbors()) > 0 }
		extra["/broadcast"] = nodehttp.BroadcastHandler(send, hasNeighbour, maxPayload, cfg.Logger)
	}
	return metrics.StartServer(cfg, reg, ready, extra)
}

// startTURNHealthServer serves a TURN relay's metrics on addr; state says whether it is ready.
func startTURNHealthServer(addr string, srv *turnserver.Server, state *metrics.Readiness, log zerolog.Logger) (*metrics.Server, error) {
	reg, err := metrics.NewRegistry(metrics.NewTURNCollector(srv))
	if err != nil {
		return nil, err
	}
	cfg := metrics.DefaultServerConfig(addr)
	cfg.Logger = log.With().Str("component", "http").Logger()
	return metrics.StartServer(cfg, reg, state.Ready, nil)
}
