// Package signalservice runs rtcmesh's signaling service as one unit: the WebSocket signaling
// server at /ws, an optional embedded TURN/STUN relay whose credentials every welcome carries,
// the demo web page at /, liveness at /healthz, readiness at /readyz and Prometheus metrics at
// /metrics, all behind one bounded http.Server. `rtcmesh signal` and the demo package both run
// it, so the two cannot drift apart.
// /healthz and /readyz answer as every command's do (metrics.Healthz, metrics.Readyz).
package signalservice

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/turnserver"
	"github.com/rtcmesh/rtcmesh/web"
)

// MinNetworkSecretLength bounds Config.NetworkSecret from below: every client holding a token
// could try to recover the secret offline and mint tokens for other networks.
const MinNetworkSecretLength = 16

// Config configures a Service. Start from DefaultConfig: Start refuses a zero or negative
// bound rather than guessing what it was meant to be.
type Config struct {
	// Listen is the TCP address of the HTTP server: /ws, /healthz, /readyz, /metrics and,
	// with Web set, the page at /. Port 0 picks a free port (Addr reports it). Default
	// "127.0.0.1:8080".
	Listen string
	// ReadHeaderTimeout bounds how long a client may dribble its request headers
	// (slowloris); upgraded WebSocket connections are then bounded by the signaling server's
	// own timeouts. Default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds how long an idle keep-alive HTTP connection is kept open. Default
	// 60 s.
	IdleTimeout time.Duration
	// DrainTimeout bounds Close: how long clients get to leave after the server said bye
	// before their connections are dropped. Default 10 s.
	DrainTimeout time.Duration
	// Signal configures the signaling server. Start sets its Logger, its ICEServers hook from
	// TURN, TURNURLs and STUNURLs (so the hook must be left unset) and, when NetworkSecret is
	// set, its NetworkSecret hook. Default signalserver.DefaultConfig().
	Signal signalserver.Config
	// NetworkSecret, when not empty, closes every network with one secret: a hello must carry
	// signaling.NetworkToken(NetworkSecret, network). At least MinNetworkSecretLength bytes.
	// (Signal.NetworkSecret, a secret per network, is the alternative; not both.)
	NetworkSecret string
	// TURN configures the embedded TURN/STUN relay; nil runs none. Start sets its Logger and
	// Now. Every welcome carries the relay's URLs with credentials minted for the node.
	TURN *turnserver.Config
	// TURNURLs are external TURN servers (turn: or turns:) sharing TURNSecret, e.g. coturn
	// with use-auth-secret; every welcome carries them with credentials minted for the node.
	TURNURLs []string
	// TURNSecret signs the credentials for TURNURLs; at least turnserver.MinSecretLength
	// bytes when TURNURLs is not empty.
	TURNSecret string
	// CredentialTTL is the lifetime of the credentials minted for TURNURLs. Default
	// turnserver.DefaultConfig().CredentialTTL.
	CredentialTTL time.Duration
	// STUNURLs are STUN servers (stun: or stuns:) every welcome carries, without credentials.
	STUNURLs []string
	// NATS, when set, shares this instance's networks with every other instance on the same
	// NATS servers and Prefix (see package signalnats): Start connects and sets
	// Signal.Cluster (so it must be left unset), /readyz fails while NATS is unreachable, and
	// Close leaves NATS after the clients. Nil (the default) is a single instance. Start sets
	// its Logger.
	NATS *signalnats.Config
	// Web configures the demo page served at /; nil serves none.
	Web *web.Config
	// Now is the clock for minting credentials. Nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs and, tagged by component, its parts'. The zero value
	// logs nothing.
	Logger zerolog.Logger
}

// DefaultConfig returns the defaults of a signaling service on loopback with no relay, no
// external ICE servers and no page.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:8080",
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		DrainTimeout:      10 * time.Second,
		Signal:            signalserver.DefaultConfig(),
		CredentialTTL:     turnserver.DefaultConfig().CredentialTTL,
	}
}

// Validate reports every invalid field of c, as Start would, without binding anything: a
// command line can refuse a configuration before it starts.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

// validate checks every field, in the order they are declared, including the signaling
// server's and the relay's configurations, and returns c with a nil Now replaced by time.Now.
func (c Config) validate() (Config, error) {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("Listen is empty"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"IdleTimeout", c.IdleTimeout}, {"DrainTimeout", c.DrainTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %v, must be positive", d.name, d.v))
		}
	}
	if c.Signal.ICEServers != nil {
		errs = append(errs, errors.New("Signal.ICEServers is set by Start: use TURN, TURNURLs and STUNURLs"))
	}
	if c.Signal.Cluster != nil {
		errs = append(errs, errors.New("Signal.Cluster is set by Start: use NATS"))
	}
	if c.NATS != nil {
		if err := c.NATS.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Signal.NetworkSecret != nil && c.NetworkSecret != "" {
		errs = append(errs, errors.New("Signal.NetworkSecret and NetworkSecret are both set: use one"))
	}
	if err := c.Signal.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NetworkSecret != "" && len(c.NetworkSecret) < MinNetworkSecretLength {
		errs = append(errs, fmt.Errorf("NetworkSecret must be at least %d bytes, got %d", MinNetworkSecretLength, len(c.NetworkSecret)))
	}
	if c.TURN != nil {
		if err := c.TURN.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, checkICEURLs("TURNURLs", c.TURNURLs, "turn:", "turns:")...)
	if len(c.TURNURLs) > 0 {
		if len(c.TURNSecret) < turnserver.MinSecretLength {
			errs = append(errs, fmt.Errorf("TURNSecret must be at least %d bytes, got %d: credentials are visible to every client, so a short secret can be brute forced offline",
				turnserver.MinSecretLength, len(c.TURNSecret)))
		}
		if c.CredentialTTL <= 0 {
			errs = append(errs, fmt.Errorf("CredentialTTL is %v, must be positive", c.CredentialTTL))
		}
	}
	errs = append(errs, checkICEURLs("STUNURLs", c.STUNURLs, "stun:", "stuns:")...)
	if c.Web != nil {
		if err := signaling.ValidateNetwork(c.Web.Network); err != nil {
			errs = append(errs, fmt.Errorf("Web.Network: %w", err))
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("signalservice: invalid config: %w", err)
	}
	return c, nil
}

// checkICEURLs refuses the URLs a browser would refuse, before they reach any welcome.
func checkICEURLs(field string, urls []string, schemes ...string) []error {
	var errs []error
	for _, u := range urls {
		ok := false
		for _, s := range schemes {
			ok = ok || strings.HasPrefix(u, s)
		}
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s %q must start with %s", field, u, strings.Join(schemes, " or ")))
		case len(u) > signaling.MaxURLLength:
			errs = append(errs, fmt.Errorf("%s %.40q... is longer than %d bytes", field, u, signaling.MaxURLLength))
		}
	}
	return errs
}
