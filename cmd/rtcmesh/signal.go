package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/turnserver"
	"github.com/rtcmesh/rtcmesh/web"
)

const signalSynopsis = `Runs the signaling server: WebSocket signaling at /ws, /healthz, which answers 200 "ok",
/readyz (200 while listening, 503 while draining), Prometheus metrics at /metrics and, unless
--web=false, the demo web page at / (a browser tab opening it joins --web-network as a peer).
Nodes say hello there, get ICE servers and a few live contacts of their network, and relay
offers, answers and candidates to each other.

--network-secret closes every network with one secret: a hello must then carry
signaling.NetworkToken(secret, network), the hex HMAC-SHA256 of the network name, so the
operator can hand out a distinct token per network without storing any.

--turn-listen runs a TURN/STUN relay in the same process (UDP and TCP on that address).
--turn-secret signs the ephemeral credentials that every welcome carries, per node ID, for
that relay and for every --turn-url (coturn with use-auth-secret and the same
static-auth-secret, or 'rtcmesh turn --secret'). Pass secrets through RTCMESH_TURN_SECRET and
RTCMESH_NETWORK_SECRET rather than the command line, where other users of the machine can read
them. On SIGINT or SIGTERM the server tells every client it is going away, waits up to
--drain-timeout for them to leave, closes the relay and exits 0.`

// minNetworkSecretLength bounds --network-secret from below: every client holding a token
// could try to recover the secret offline and mint tokens for other networks.
const minNetworkSecretLength = 16

// signalConfig is everything serveSignal needs, built from the flags by parseSignalFlags.
type signalConfig struct {
	// Listen is the HTTP address serving /ws and /healthz.
	Listen string
	// DrainTimeout bounds the graceful shutdown: how long clients get to leave after the
	// server said bye before their connections are dropped.
	DrainTimeout time.Duration
	// Server configures the signaling server; serveSignal sets its ICEServers hook.
	Server signalserver.Config
	// TURN configures the embedded relay; nil runs none.
	TURN *turnserver.Config
	// TURNSecret signs credentials for TURNURLs (and is TURN.Secret when TURN is set).
	TURNSecret string
	// TURNURLs are external TURN servers sharing TURNSecret.
	TURNURLs []string
	// CredentialTTL is the lifetime of the credentials minted for TURNURLs.
	CredentialTTL time.Duration
	// STUNURLs are extra STUN servers handed out without credentials.
	STUNURLs []string
	// Web configures the demo page served at "/"; nil serves none.
	Web *web.Config
	// Now is the clock for minting credentials. Nil means time.Now.
	Now func() time.Time
}

// signalFlags holds the values of the signal command's flags.
type signalFlags struct {
	listen                            *string
	drainTimeout, handshakeTimeout    *time.Duration
	maxFrameSize, burst, maxPeers     *int
	maxConnections, contacts          *int
	rate                              *float64
	allowedOrigins                    listFlag
	networkSecret                     *string
	turnListen, turnRealm, turnSecret *string
	turnPublicIP                      ipFlag
	turnRelayPorts                    portRange
	turnURLs, stunURLs                listFlag
	turnCredentialTTL                 *time.Duration
	web                               *bool
	webNetwork                        *string
	logLevel                          *logLevel
}

func signalFlagSet(stderr io.Writer) (*flag.FlagSet, *signalFlags) {
	def := signalserver.DefaultConfig()
	tdef := turnserver.DefaultConfig()
	fs := newFlagSet("signal", signalSynopsis, stderr)
	f := &signalFlags{turnRelayPorts: portRange{min: tdef.RelayPortMin, max: tdef.RelayPortMax}}
	f.listen = fs.String("listen", "127.0.0.1:8080", "HTTP address serving /ws, /healthz, /readyz and /metrics (behind a TLS-terminating proxy for wss://)")
	f.drainTimeout = fs.Duration("drain-timeout", 10*time.Second, "on shutdown, how long clients get to leave before their connections are dropped")
	f.maxFrameSize = fs.Int("max-frame-size", def.MaxFrameSize, "largest frame a client may send, in bytes")
	f.rate = fs.Float64("rate", def.RateLimit, "messages per second a connection may send, sustained")
	f.burst = fs.Int("burst", def.RateBurst, "messages a connection may send back to back")
	f.handshakeTimeout = fs.Duration("handshake-timeout", def.HandshakeTimeout, "how long a connection may take to say hello")
	f.maxPeers = fs.Int("max-peers-per-network", def.MaxPeersPerNetwork, "members of one network")
	f.maxConnections = fs.Int("max-connections", def.MaxConnections, "open connections on the whole server (also bounds the networks)")
	f.contacts = fs.Int("contacts", def.ContactCount, "random live peers a welcome carries")
	fs.Var(&f.allowedOrigins, "allowed-origins", `comma-separated browser origins (scheme://host[:port], or "*") that may connect; pages served from the server's own host always may`)
	f.networkSecret = fs.String("network-secret", "", fmt.Sprintf("closes every network: a hello needs the token HMAC-SHA256(secret, network); at least %d bytes (prefer RTCMESH_NETWORK_SECRET)", minNetworkSecretLength))
	f.turnListen = fs.String("turn-listen", "", `UDP and TCP address of an embedded TURN/STUN relay, e.g. 0.0.0.0:3478; empty runs none`)
	fs.Var(&f.turnPublicIP, "turn-public-ip", "relay address the embedded TURN advertises; required unless --turn-listen names one specific IP")
	f.turnRealm = fs.String("turn-realm", tdef.Realm, "TURN realm of the embedded relay")
	f.turnSecret = fs.String("turn-secret", "", fmt.Sprintf("shared secret of the embedded relay and every --turn-url, at least %d bytes (prefer RTCMESH_TURN_SECRET)", turnserver.MinSecretLength))
	fs.Var(&f.turnURLs, "turn-url", `external TURN server sharing --turn-secret, e.g. "turn:turn.example.org:3478?transport=udp"; repeatable or comma-separated`)
	fs.Var(&f.turnRelayPorts, "turn-relay-ports", "relay port range MIN-MAX (inclusive) of the embedded relay; 0 lets the system pick")
	f.turnCredentialTTL = fs.Duration("turn-credential-ttl", tdef.CredentialTTL, "lifetime of the TURN credentials a welcome carries")
	fs.Var(&f.stunURLs, "stun-url", `extra STUN server handed out without credentials, e.g. "stun:stun.example.org:3478"; repeatable or comma-separated`)
	f.web = fs.Bool("web", true, "serve the demo web page at /: a browser opening it joins the mesh as a peer")
	f.webNetwork = fs.String("web-network", "default", "network the web page joins unless its URL says ?network=")
	f.logLevel = addLogLevelFlag(fs)
	return fs, f
}

// parseSignalFlags parses the signal command's flags and environment. Mistakes are
// usageErrors, found before anything is bound.
func parseSignalFlags(args []string, stderr io.Writer, getenv func(string) string) (signalConfig, zerolog.Level, error) {
	fs, f := signalFlagSet(stderr)
	if err := parseFlags(fs, args, getenv); err != nil {
		return signalConfig{}, 0, err
	}
	cfg := signalConfig{
		Listen:        *f.listen,
		DrainTimeout:  *f.drainTimeout,
		TURNSecret:    *f.turnSecret,
		TURNURLs:      f.turnURLs,
		CredentialTTL: *f.turnCredentialTTL,
		STUNURLs:      f.stunURLs,
	}
	cfg.Server = signalserver.DefaultConfig()
	cfg.Server.MaxFrameSize, cfg.Server.RateLimit, cfg.Server.RateBurst = *f.maxFrameSize, *f.rate, *f.burst
	cfg.Server.HandshakeTimeout, cfg.Server.MaxPeersPerNetwork = *f.handshakeTimeout, *f.maxPeers
	cfg.Server.MaxConnections, cfg.Server.ContactCount = *f.maxConnections, *f.contacts
	cfg.Server.AllowedOrigins = f.allowedOrigins

	var errs []error
	if cfg.Listen == "" {
		errs = append(errs, errors.New("--listen is empty"))
	}
	if cfg.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout is %v, must be positive", cfg.DrainTimeout))
	}
	// The server treats zero as "default", which a flag set to 0 should not silently mean.
	for _, c := range []struct {
		name     string
		positive bool
	}{
		{"--max-frame-size", *f.maxFrameSize > 0}, {"--rate", *f.rate > 0}, {"--burst", *f.burst > 0},
		{"--handshake-timeout", *f.handshakeTimeout > 0}, {"--max-peers-per-network", *f.maxPeers > 0},
		{"--max-connections", *f.maxConnections > 0}, {"--contacts", *f.contacts > 0},
	} {
		if !c.positive {
			errs = append(errs, fmt.Errorf("%s must be positive", c.name))
		}
	}
	if s := *f.networkSecret; s != "" {
		if len(s) < minNetworkSecretLength {
			errs = append(errs, fmt.Errorf("--network-secret must be at least %d bytes, got %d", minNetworkSecretLength, len(s)))
		}
		secret := []byte(s)
		cfg.Server.NetworkSecret = func(string) []byte { return secret }
	}
	for _, u := range cfg.TURNURLs {
		if err := checkICEURL("--turn-url", u, "turn:", "turns:"); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range cfg.STUNURLs {
		if err := checkICEURL("--stun-url", u, "stun:", "stuns:"); err != nil {
			errs = append(errs, err)
		}
	}
	turnListen := listenAddr(*f.turnListen)
	if turnListen != "" || len(cfg.TURNURLs) > 0 {
		if err := checkTURNSecret("--turn-secret", cfg.TURNSecret); err != nil {
			errs = append(errs, err)
		}
		if cfg.CredentialTTL <= 0 {
			errs = append(errs, fmt.Errorf("--turn-credential-ttl is %v, must be positive", cfg.CredentialTTL))
		}
	}
	if turnListen != "" {
		t := turnserver.DefaultConfig()
		t.ListenUDP, t.ListenTCP = turnListen, turnListen
		t.Realm, t.Secret, t.CredentialTTL = *f.turnRealm, cfg.TURNSecret, cfg.CredentialTTL
		t.RelayPortMin, t.RelayPortMax = f.turnRelayPorts.min, f.turnRelayPorts.max
		if t.Realm == "" {
			errs = append(errs, errors.New("--turn-realm is empty"))
		}
		var err error
		t.PublicIP, t.RelayBindIP, err = relayAddrs("--turn-public-ip", f.turnPublicIP.addr, turnListen)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.TURN = &t
	}
	if *f.web {
		w := web.DefaultConfig(*f.webNetwork)
		if _, err := web.NewHandler(w); err != nil {
			errs = append(errs, fmt.Errorf("--web-network: %w", err))
		}
		cfg.Web = &w
	}
	if err := errors.Join(errs...); err != nil {
		return signalConfig{}, 0, usageError{err}
	}
	return cfg, f.logLevel.level, nil
}

// checkICEURL refuses a URL a browser would refuse, before it reaches any welcome.
func checkICEURL(flagName, u string, schemes ...string) error {
	ok := false
	for _, s := range schemes {
		ok = ok || strings.HasPrefix(u, s)
	}
	if !ok {
		return fmt.Errorf("%s %q must start with %s", flagName, u, strings.Join(schemes, " or "))
	}
	if len(u) > signaling.MaxURLLength {
		return fmt.Errorf("%s %.40q... is longer than %d bytes", flagName, u, signaling.MaxURLLength)
	}
	return nil
}

func runSignal(args []string, stdout, stderr io.Writer) error {
	cfg, level, err := parseSignalFlags(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveSignal(ctx, cfg, log, nil)
}

// signalAddrs are the addresses a running signal command is bound to.
type signalAddrs struct {
	// HTTP serves /ws, /healthz, /readyz and /metrics.
	HTTP net.Addr
	// TURN is the embedded relay's addresses; zero when it runs none.
	TURN turnAddrs
}

// serveSignal serves signaling (and the embedded TURN relay, if configured) until ctx is
// done, then drains the clients within cfg.DrainTimeout and returns nil. ready, if not nil, is
// called once everything listens.
func serveSignal(ctx context.Context, cfg signalConfig, log zerolog.Logger, ready func(signalAddrs)) error {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	srvCfg := cfg.Server
	srvCfg.Logger = log.With().Str("component", "signal").Logger()
	// The ICE servers hook reads the relay, which exists only after New below; New only
	// validates, so the hook is set first and the relay filled in before anything listens.
	var relay *turnserver.Server
	var relayURLs []string
	if cfg.TURN != nil || len(cfg.TURNURLs) > 0 || len(cfg.STUNURLs) > 0 {
		srvCfg.ICEServers = func(nodeID string) []signaling.ICEServer {
			return iceServers(cfg, relay, relayURLs, nodeID)
		}
	}
	sig, err := signalserver.New(srvCfg)
	if err != nil {
		return usageError{fmt.Errorf("signaling server: %w", err)}
	}
	var addrs signalAddrs
	if cfg.TURN != nil {
		tcfg := *cfg.TURN
		tcfg.Logger = log.With().Str("component", "turn").Logger()
		tcfg.Now = cfg.Now
		relay, err = turnserver.New(tcfg)
		if err != nil {
			return fmt.Errorf("starting embedded TURN relay: %w", err)
		}
		relayURLs = relay.URLs("")
		addrs.TURN = turnAddrs{UDP: relay.UDPAddr(), TCP: relay.TCPAddr(), TLS: relay.TLSAddr(), URLs: relayURLs}
	}
	closeRelay := func() error {
		if relay == nil {
			return nil
		}
		return closeTURN(relay, log.With().Str("component", "turn").Logger())
	}

	metricsHandler, err := signalMetricsHandler(sig, relay)
	if err != nil {
		_ = closeRelay()
		return err
	}
	var page *web.Handler
	if cfg.Web != nil {
		if page, err = web.NewHandler(*cfg.Web); err != nil {
			_ = closeRelay()
			return usageError{fmt.Errorf("web page: %w", err)}
		}
		if !page.HasPeer() {
			log.Warn().Msg("this build embeds no browser peer (web/static/peer.wasm.gz): the page cannot join; run go generate ./web")
		}
	}
	var state serviceState
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = closeRelay()
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	addrs.HTTP = ln.Addr()
	mux := http.NewServeMux()
	mux.Handle("/ws", sig)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	mux.Handle("/metrics", metricsHandler)
	mux.HandleFunc("/readyz", readyzHandler(state.ready))
	if page != nil {
		mux.Handle("/", page)
	}
	hs := &http.Server{
		Handler: mux,
		// Bounds how long a client may dribble its request headers (slowloris); upgraded
		// WebSocket connections are then bounded by the signaling server's own timeouts.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          stdLogger(log.With().Str("component", "http").Logger()),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	state.listening.Store(true)

	ev := log.Info().Str("listen", addrs.HTTP.String()).Str("ws", "ws://"+addrs.HTTP.String()+"/ws").
		Bool("closed_networks", cfg.Server.NetworkSecret != nil).Bool("web", page != nil).Strs("turn_urls", cfg.TURNURLs).Strs("stun_urls", cfg.STUNURLs)
	if relay != nil {
		ev = ev.Str("turn_udp", addrString(addrs.TURN.UDP)).Str("turn_tcp", addrString(addrs.TURN.TCP)).Strs("embedded_turn_urls", relayURLs)
	}
	ev.Msg("signaling server listening")
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		log.Error().Err(serveErr).Msg("HTTP server failed")
	}
	log.Info().Dur("drain_timeout", cfg.DrainTimeout).Msg("signaling server shutting down")
	state.stopping.Store(true)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	// The signaling server first tells every client it is going away and refuses new
	// WebSockets; only then does the HTTP server stop accepting, so no client is cut off
	// without a bye.
	if err := sig.Shutdown(drainCtx); err != nil {
		log.Warn().Err(err).Msg("clients did not leave within the drain timeout; their connections were dropped")
	}
	if err := hs.Shutdown(drainCtx); err != nil {
		_ = hs.Close()
	}
	st := sig.Stats()
	log.Info().Uint64("welcomed", st.Welcomed).Uint64("relayed", st.MessagesRelayed).Msg("signaling server closed")
	relayErr := closeRelay()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP on %s: %w", addrs.HTTP, serveErr)
	}
	return relayErr
}

// iceServers is the welcome's ICE server list for nodeID: the extra STUN servers, then the
// embedded relay and the external TURN servers, each with fresh credentials for nodeID, so
// that a relay can tell nodes apart for its per-user quota and credentials expire.
func iceServers(cfg signalConfig, relay *turnserver.Server, relayURLs []string, nodeID string) []signaling.ICEServer {
	var out []signaling.ICEServer
	if len(cfg.STUNURLs) > 0 {
		out = append(out, signaling.ICEServer{URLs: cfg.STUNURLs})
	}
	if relay != nil {
		user, pass := relay.Credentials(nodeID)
		out = append(out, signaling.ICEServer{URLs: relayURLs, Username: user, Credential: pass})
	}
	if len(cfg.TURNURLs) > 0 {
		user, pass := turnserver.Credentials(cfg.TURNSecret, nodeID, cfg.CredentialTTL, cfg.Now())
		out = append(out, signaling.ICEServer{URLs: cfg.TURNURLs, Username: user, Credential: pass})
	}
	return out
}
