package signalservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/metrics"
	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/turnserver"
	"github.com/rtcmesh/rtcmesh/web"
)

// Service is a running signaling service.
type Service struct {
	cfg       Config
	log       zerolog.Logger
	sig       *signalserver.Server
	relay     *turnserver.Server // nil without Config.TURN
	relayURLs []string
	cluster   *signalnats.Cluster // nil without Config.NATS
	page      *web.Handler        // nil without Config.Web
	// turnSecret signs the credentials for Config.TURNURLs: Config.TURNSecret until ReloadTURN
	// replaces it.
	turnSecret atomic.Pointer[string]
	http       *http.Server
	addr       net.Addr

	// readiness answers /readyz: ready from the bind to the start of Close.
	readiness metrics.Readiness
	// served is closed when the HTTP server stopped; serveErr is then its error.
	served   chan struct{}
	serveErr error

	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, starts the relay (if any), the signaling server and the page, binds
// Listen and serves until Close. It logs "signaling server listening" with its addresses.
func Start(cfg Config) (*Service, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, served: make(chan struct{})}
	s.turnSecret.Store(&cfg.TURNSecret)
	if err := s.startParts(); err != nil {
		_ = s.closeRelay()
		return nil, err
	}
	mux, err := s.routes()
	if err != nil {
		_ = s.closeRelay()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = s.closeRelay()
		return nil, fmt.Errorf("signalservice: listening on %s: %w", cfg.Listen, err)
	}
	s.addr = ln.Addr()
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          metrics.ErrorLog(s.log.With().Str("component", "http").Logger()),
	}
	go s.serve(ln)
	s.readiness.Listening()
	s.logListening()
	return s, nil
}

// startParts builds the page and the signaling server and starts the relay, which is the
// only part that binds sockets.
func (s *Service) startParts() error {
	cfg := s.cfg
	if cfg.Web != nil {
		page, err := web.NewHandler(*cfg.Web)
		if err != nil {
			return fmt.Errorf("signalservice: web page: %w", err)
		}
		if !page.HasPeer() {
			s.log.Warn().Msg("this build embeds no browser peer (web/static/peer.wasm.gz): the page cannot join; run go generate ./web")
		}
		s.page = page
	}
	if cfg.TURN != nil {
		t := *cfg.TURN
		t.Logger = s.log.With().Str("component", "turn").Logger()
		t.Now = cfg.Now
		relay, err := turnserver.New(t)
		if err != nil {
			return fmt.Errorf("signalservice: starting the embedded TURN relay: %w", err)
		}
		s.relay, s.relayURLs = relay, relay.URLs("")
	}
	sc := cfg.Signal
	sc.Logger = s.log.With().Str("component", "signal").Logger()
	if cfg.NetworkSecret != "" {
		secret := []byte(cfg.NetworkSecret)
		sc.NetworkSecret = func(string) []byte { return secret }
	}
	if s.relay != nil || len(cfg.TURNURLs) > 0 || len(cfg.STUNURLs) > 0 {
		sc.ICEServers = s.iceServers
	}
	if cfg.NATS != nil {
		nc := *cfg.NATS
		nc.Logger = s.log.With().Str("component", "nats").Logger()
		cluster, err := signalnats.Dial(nc)
		if err != nil {
			return fmt.Errorf("signalservice: %w", err)
		}
		s.cluster, sc.Cluster = cluster, cluster
	}
	sig, err := signalserver.New(sc)
	if err != nil {
		return fmt.Errorf("signalservice: signaling server: %w", err)
	}
	s.sig = sig
	return nil
}

// routes is the service's HTTP surface.
func (s *Service) routes() (*http.ServeMux, error) {
	reg, err := metrics.NewRegistry(metrics.NewSignalCollector(s.sig))
	if err != nil {
		return nil, fmt.Errorf("signalservice: %w", err)
	}
	if s.cluster != nil {
		if err := reg.Register(metrics.NewClusterCollector(s.cluster)); err != nil {
			return nil, fmt.Errorf("signalservice: registering the cluster's metrics: %w", err)
		}
	}
	if s.relay != nil {
		if err := reg.Register(metrics.NewTURNCollector(s.relay)); err != nil {
			return nil, fmt.Errorf("signalservice: registering the embedded relay's metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", s.sig)
	mux.HandleFunc("/healthz", metrics.Healthz)
	mux.HandleFunc("/readyz", metrics.Readyz(s.Ready))
	mux.Handle("/metrics", metrics.Handler(reg))
	if s.page != nil {
		mux.Handle("/", s.page)
	}
	return mux, nil
}

// serve runs the HTTP server until it stops; a failure other than Close is logged at once,
// since nobody may call Close for a while.
func (s *Service) serve(ln net.Listener) {
	defer close(s.served)
	err := s.http.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		s.serveErr = err
		s.log.Error().Err(err).Msg("HTTP server failed")
	}
}

func (s *Service) logListening() {
	addr := s.addr.String()
	ev := s.log.Info().Str("listen", addr).Str("ws", "ws://"+addr+"/ws").Bool("closed_networks", s.cfg.NetworkSecret != "" || s.cfg.Signal.NetworkSecret != nil).
		Bool("web", s.page != nil).Strs("turn_urls", s.cfg.TURNURLs).Strs("stun_urls", s.cfg.STUNURLs)
	if s.relay != nil {
		ev = ev.Str("turn_udp", addrString(s.relay.UDPAddr())).Str("turn_tcp", addrString(s.relay.TCPAddr())).Strs("embedded_turn_urls", s.relayURLs)
	}
	ev.Msg("signaling server listening")
}

// addrString names a listener's address, "off" for none.
func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// iceServers is the welcome's ICE server list for nodeID: the STUN servers, then the
// embedded relay and the external TURN servers, each with fresh credentials for nodeID, so
// that a relay can tell nodes apart for its per-user quota and credentials expire.
func (s *Service) iceServers(nodeID string) []signaling.ICEServer {
	var out []signaling.ICEServer
	if len(s.cfg.STUNURLs) > 0 {
		out = append(out, signaling.ICEServer{URLs: s.cfg.STUNURLs})
	}
	if s.relay != nil {
		user, pass := s.relay.Credentials(nodeID)
		out = append(out, signaling.ICEServer{URLs: s.relayURLs, Username: user, Credential: pass})
	}
	if len(s.cfg.TURNURLs) > 0 {
		user, pass := turnserver.Credentials(*s.turnSecret.Load(), nodeID, s.cfg.CredentialTTL, s.cfg.Now())
		out = append(out, signaling.ICEServer{URLs: s.cfg.TURNURLs, Username: user, Credential: pass})
	}
	return out
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() net.Addr { return s.addr }

// URL is the page's address, http://host:port/.
func (s *Service) URL() string { return "http://" + s.addr.String() + "/" }

// SignalURL is the signaling WebSocket's address, ws://host:port/ws.
func (s *Service) SignalURL() string { return "ws://" + s.addr.String() + "/ws" }

// errNothingToReload is ReloadTURN's answer for a service with no embedded relay and no
// external TURN servers.
var errNothingToReload = errors.New("signalservice: no embedded TURN relay and no TURN URLs: nothing to reload")

// ReloadTURN replaces the TURN secrets and peer lists of the running service, as SIGHUP does
// for `rtcmesh turn`, without dropping an allocation or a client: the embedded relay's
// secrets and peer lists (turnserver.Server.Reload, which logs and counts what changed or why
// it refused), and r.Secret as the secret the credentials for Config.TURNURLs are minted with
// (they share it). An invalid r changes nothing.
func (s *Service) ReloadTURN(r turnserver.Reloadable) error {
	if s.relay == nil && len(s.cfg.TURNURLs) == 0 {
		s.log.Warn().Msg("TURN reload asked for, but there is no embedded relay and no --turn-url")
		return errNothingToReload
	}
	if len(r.Secret) < turnserver.MinSecretLength {
		err := fmt.Errorf("signalservice: TURN reload refused: the minting secret must be at least %d bytes, got %d", turnserver.MinSecretLength, len(r.Secret))
		s.ReloadTURNFailed(err)
		return err
	}
	if s.relay != nil {
		if _, err := s.relay.Reload(r); err != nil {
			return fmt.Errorf("signalservice: %w", err)
		}
	}
	secret := r.Secret
	if old := s.turnSecret.Swap(&secret); len(s.cfg.TURNURLs) > 0 {
		s.log.Info().Bool("secret_changed", *old != secret).Msg("credentials for the external TURN servers reloaded")
	}
	return nil
}

// ReloadTURNFailed logs a TURN reload that failed before ReloadTURN could be called, such as a
// secrets file that does not parse, and counts it on the embedded relay
// (turnserver.Stats.ReloadFailures); nothing changes.
func (s *Service) ReloadTURNFailed(err error) {
	if s.relay != nil {
		s.relay.ReloadFailed(err)
		return
	}
	s.log.Error().Err(err).Msg("TURN reload failed, the previous secret stays")
}

// Relay is the embedded TURN relay, nil when Config.TURN is nil.
func (s *Service) Relay() *turnserver.Server { return s.relay }

// RelayURLs are the ICE server URLs of the embedded relay; nil without one.
func (s *Service) RelayURLs() []string { return s.relayURLs }

// Page is the page's handler, nil when Config.Web is nil.
func (s *Service) Page() *web.Handler { return s.page }

// Ready reports whether the service should get traffic, as /readyz answers.
func (s *Service) Ready() error {
	if err := s.readiness.Ready(); err != nil {
		return err
	}
	if s.cluster != nil && !s.cluster.Stats().Connected {
		return errors.New("not connected to NATS: members of other instances are out of reach")
	}
	return nil
}

// Cluster is the NATS cluster this instance shares its networks through, nil when
// Config.NATS is nil.
func (s *Service) Cluster() *signalnats.Cluster { return s.cluster }

// Failed is closed when the HTTP server stopped serving: after Close, or earlier when it
// failed (Close then returns the failure).
func (s *Service) Failed() <-chan struct{} { return s.served }

// Close drains the service: the signaling server tells every client it is going away and
// refuses new WebSockets, clients get up to DrainTimeout to leave, then the HTTP server and
// the relay close. It returns the HTTP server's failure, if it failed, and is safe to call
// more than once.
func (s *Service) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Service) close() error {
	s.log.Info().Dur("drain_timeout", s.cfg.DrainTimeout).Msg("signaling server shutting down")
	s.readiness.Stopping()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	// The signaling server first says bye and refuses new WebSockets; only then does the
	// HTTP server stop accepting, so no client is cut off without a bye.
	if err := s.sig.Shutdown(ctx); err != nil {
		s.log.Warn().Err(err).Msg("clients did not leave within the drain timeout; their connections were dropped")
	}
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
	}
	<-s.served
	st := s.sig.Stats()
	s.log.Info().Uint64("welcomed", st.Welcomed).Uint64("relayed", st.MessagesRelayed).Msg("signaling server closed")
	relayErr := s.closeRelay()
	if s.serveErr != nil {
		return fmt.Errorf("signalservice: serving HTTP on %s: %w", s.addr, s.serveErr)
	}
	return relayErr
}

// closeRelay closes the cluster, if any (after the signaling server, whose members'
// departures it has announced), and the embedded relay, if any (it logs its own figures).
func (s *Service) closeRelay() error {
	if s.cluster != nil {
		s.cluster.Close()
	}
	if s.relay == nil {
		return nil
	}
	if err := s.relay.Close(); err != nil {
		return fmt.Errorf("signalservice: %w", err)
	}
	return nil
}
