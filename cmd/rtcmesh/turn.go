package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/turnserver"
)

const turnSynopsis = `Runs the bundled TURN/STUN relay on its own, for nodes whose NATs defeat hole punching.
Clients authenticate with ephemeral TURN REST credentials ("expiry:nodeID", HMAC-SHA1 under
--secret) minted by 'rtcmesh signal --turn-url ... --turn-secret' with the same secret, or by
anything else that implements the scheme. Relays to loopback, private, link-local and other
special addresses are refused unless --allow-peers lists them. Relay sockets bind to the first
listen address that names one specific IP, otherwise to all interfaces; --public-ip is then
required. Pass the secret through RTCMESH_SECRET rather than the command line, where other
users of the machine can read it. Stops on SIGINT or SIGTERM.

--http-listen serves Prometheus metrics at /metrics, /healthz (200 while the process runs) and
/readyz (200 while the relay listens, 503 while it shuts down).`

// turnFlags holds the values of the turn command's flags.
type turnFlags struct {
	listen, listenTCP, tlsListen, tlsCert, tlsKey *string
	publicIP                                      ipFlag
	realm, secret                                 *string
	relayPorts                                    portRange
	allowPeers                                    prefixList
	maxAllocations, maxAllocationsPerUser         *int
	bandwidth                                     *int64
	httpListen                                    *string
	logLevel                                      *logLevel
}

func turnFlagSet(stderr io.Writer) (*flag.FlagSet, *turnFlags) {
	def := turnserver.DefaultConfig()
	fs := newFlagSet("turn", turnSynopsis, stderr)
	f := &turnFlags{relayPorts: portRange{min: def.RelayPortMin, max: def.RelayPortMax}}
	f.listen = fs.String("listen", def.ListenUDP, `UDP address for STUN and TURN over UDP ("off" disables)`)
	f.listenTCP = fs.String("listen-tcp", def.ListenTCP, `TCP address for TURN over TCP ("off" disables)`)
	f.tlsListen = fs.String("tls-listen", "", "TLS address for TURN over TLS (turns:), typically :443; needs --tls-cert and --tls-key")
	f.tlsCert = fs.String("tls-cert", "", "PEM certificate (chain) file for --tls-listen")
	f.tlsKey = fs.String("tls-key", "", "PEM private key file for --tls-listen")
	fs.Var(&f.publicIP, "public-ip", "relay address advertised to clients; required unless a listen address names one specific IP")
	f.realm = fs.String("realm", def.Realm, "TURN realm")
	f.secret = fs.String("secret", "", fmt.Sprintf("shared secret for ephemeral credentials, at least %d bytes (prefer RTCMESH_SECRET)", turnserver.MinSecretLength))
	fs.Var(&f.relayPorts, "relay-ports", "relay port range MIN-MAX (inclusive) to open in the firewall; 0 lets the system pick")
	fs.Var(&f.allowPeers, "allow-peers", "comma-separated CIDRs (or IPs) that may be relayed to even though the deny-list refuses them, for private deployments")
	f.maxAllocations = fs.Int("max-allocations", def.MaxAllocations, "concurrent allocations on the whole relay")
	f.maxAllocationsPerUser = fs.Int("max-allocations-per-user", def.MaxAllocationsPerUser, "concurrent allocations per node ID (a node needs one per link it relays)")
	f.bandwidth = fs.Int64("bandwidth", def.BandwidthPerAllocation, "relayed bytes per second per allocation and direction; 0 is unlimited")
	f.httpListen = fs.String("http-listen", "", `HTTP address serving /metrics, /healthz and /readyz, e.g. 127.0.0.1:9090; empty serves none`)
	f.logLevel = addLogLevelFlag(fs)
	return fs, f
}

// parseTurnFlags parses the turn command's flags and environment into a relay
// configuration. Every mistake a flag can make is reported here as a usageError, so nothing
// is bound before the whole command line is known to be good.
func parseTurnFlags(args []string, stderr io.Writer, getenv func(string) string) (turnserver.Config, zerolog.Level, error) {
	c, err := parseTurnCommand(args, stderr, getenv)
	return c.Relay, c.Level, err
}

// turnCommand is what the turn command runs, built from the flags by parseTurnCommand.
type turnCommand struct {
	Relay turnserver.Config
	Level zerolog.Level
	// HTTPListen is the address serving /metrics, /healthz and /readyz; empty serves none.
	HTTPListen string
}

// parseTurnCommand is parseTurnFlags plus the flags that are not the relay's own.
func parseTurnCommand(args []string, stderr io.Writer, getenv func(string) string) (turnCommand, error) {
	fs, f := turnFlagSet(stderr)
	if err := parseFlags(fs, args, getenv); err != nil {
		return turnCommand{}, err
	}
	cfg := turnserver.DefaultConfig()
	cfg.ListenUDP, cfg.ListenTCP, cfg.ListenTLS = listenAddr(*f.listen), listenAddr(*f.listenTCP), listenAddr(*f.tlsListen)
	cfg.TLSCertFile, cfg.TLSKeyFile = *f.tlsCert, *f.tlsKey
	cfg.Realm, cfg.Secret = *f.realm, *f.secret
	cfg.RelayPortMin, cfg.RelayPortMax = f.relayPorts.min, f.relayPorts.max
	cfg.AllowedPeers = f.allowPeers
	cfg.MaxAllocations, cfg.MaxAllocationsPerUser = *f.maxAllocations, *f.maxAllocationsPerUser
	cfg.BandwidthPerAllocation = *f.bandwidth

	var errs []error
	if cfg.ListenUDP == "" && cfg.ListenTCP == "" && cfg.ListenTLS == "" {
		errs = append(errs, errors.New("no listener: set --listen, --listen-tcp or --tls-listen"))
	}
	if cfg.ListenTLS != "" && (cfg.TLSCertFile == "" || cfg.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-listen needs --tls-cert and --tls-key"))
	}
	if cfg.ListenTLS == "" && (cfg.TLSCertFile != "" || cfg.TLSKeyFile != "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key are only used with --tls-listen"))
	}
	if err := checkTURNSecret("--secret", cfg.Secret); err != nil {
		errs = append(errs, err)
	}
	if cfg.Realm == "" {
		errs = append(errs, errors.New("--realm is empty"))
	}
	if cfg.MaxAllocations <= 0 || cfg.MaxAllocationsPerUser <= 0 {
		errs = append(errs, errors.New("--max-allocations and --max-allocations-per-user must be positive"))
	}
	if cfg.BandwidthPerAllocation < 0 {
		errs = append(errs, fmt.Errorf("--bandwidth is %d, must not be negative", cfg.BandwidthPerAllocation))
	}
	if err := checkHTTPListen("--http-listen", *f.httpListen); err != nil {
		errs = append(errs, err)
	}
	var err error
	cfg.PublicIP, cfg.RelayBindIP, err = relayAddrs("--public-ip", f.publicIP.addr, cfg.ListenUDP, cfg.ListenTCP, cfg.ListenTLS)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return turnCommand{}, usageError{err}
	}
	return turnCommand{Relay: cfg, Level: f.logLevel.level, HTTPListen: *f.httpListen}, nil
}

// checkTURNSecret refuses a TURN secret the relay would refuse, naming the flag.
func checkTURNSecret(flagName, secret string) error {
	if len(secret) < turnserver.MinSecretLength {
		return fmt.Errorf("%s must be at least %d bytes, got %d: credentials are visible to every client, so a short secret can be brute forced offline",
			flagName, turnserver.MinSecretLength, len(secret))
	}
	return nil
}

// relayAddrs picks the address relay sockets bind to and the one advertised to clients. The
// relay binds to the first listen address that names one specific IP (so a relay listening
// on 127.0.0.1 or on one interface relays from there too), otherwise to all interfaces, and
// advertises public, or else the bind address. Behind a 1:1 NAT the two differ, which is why
// public exists.
func relayAddrs(publicFlag string, public netip.Addr, listens ...string) (publicIP, bindIP netip.Addr, err error) {
	for _, l := range listens {
		if ip, ok := hostIP(l); ok {
			bindIP = ip
			break
		}
	}
	if public.IsValid() && public.IsUnspecified() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%s %v is unspecified; clients cannot reach it", publicFlag, public)
	}
	if !public.IsValid() {
		if !bindIP.IsValid() {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("%s is required when no listen address names one specific IP", publicFlag)
		}
		public = bindIP
	}
	if bindIP.IsValid() && bindIP.Is4() != public.Is4() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%s %v and the listen address %v are of different address families", publicFlag, public, bindIP)
	}
	if !bindIP.IsValid() && !public.Is4() {
		bindIP = netip.IPv6Unspecified() // relay sockets of the advertised family
	}
	return public, bindIP, nil
}

func runTurn(args []string, stdout, stderr io.Writer) error {
	c, err := parseTurnCommand(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, c.Level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveTurnHTTP(ctx, c.Relay, c.HTTPListen, log, nil)
}

// turnAddrs are the addresses a running relay is bound to (nil when off) and the ICE server
// URLs that reach it.
type turnAddrs struct {
	UDP, TCP, TLS net.Addr
	URLs          []string
	// HTTP serves /metrics, /healthz and /readyz; nil when --http-listen is empty.
	HTTP net.Addr
}

// serveTurn runs the relay until ctx is done, then closes it and returns nil. ready, if not
// nil, is called once the listeners are bound. The relay logs to log.
func serveTurn(ctx context.Context, cfg turnserver.Config, log zerolog.Logger, ready func(turnAddrs)) error {
	return serveTurnHTTP(ctx, cfg, "", log, ready)
}

// serveTurnHTTP is serveTurn that also serves /metrics, /healthz and /readyz on httpListen,
// unless it is empty.
func serveTurnHTTP(ctx context.Context, cfg turnserver.Config, httpListen string, log zerolog.Logger, ready func(turnAddrs)) error {
	cfg.Logger = log.With().Str("component", "turn").Logger()
	srv, err := turnserver.New(cfg)
	if err != nil {
		return fmt.Errorf("starting TURN relay: %w", err)
	}
	addrs := turnAddrs{UDP: srv.UDPAddr(), TCP: srv.TCPAddr(), TLS: srv.TLSAddr(), URLs: srv.URLs("")}
	var state serviceState
	if httpListen != "" {
		hs, err := startTURNHealthServer(httpListen, srv, &state, log)
		if err != nil {
			_ = closeTURN(srv, log)
			return err
		}
		defer hs.close()
		addrs.HTTP = hs.addr
	}
	state.listening.Store(true)
	log.Info().Str("udp", addrString(addrs.UDP)).Str("tcp", addrString(addrs.TCP)).Str("tls", addrString(addrs.TLS)).
		Str("public_ip", cfg.PublicIP.String()).Str("relay_ports", portRangeString(cfg.RelayPortMin, cfg.RelayPortMax)).
		Strs("urls", addrs.URLs).Msg("TURN relay listening")
	if ready != nil {
		ready(addrs)
	}
	<-ctx.Done()
	log.Info().Msg("TURN relay shutting down")
	state.stopping.Store(true)
	return closeTURN(srv, log)
}

// closeTURN closes a relay and logs what it did over its life.
func closeTURN(srv *turnserver.Server, log zerolog.Logger) error {
	st := srv.Stats()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("closing TURN relay: %w", err)
	}
	log.Info().Uint64("allocations", st.AllocationsTotal).Uint64("bytes_relayed", st.BytesRelayed()).
		Uint64("auth_failures", st.AuthFailures).Uint64("permission_refusals", st.PermissionRefusals).
		Uint64("quota_refusals", st.QuotaRefusals).Uint64("bandwidth_drops", st.BandwidthDrops).Msg("TURN relay closed")
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

func portRangeString(lo, hi uint16) string {
	p := portRange{min: lo, max: hi}
	if p.min == 0 && p.max == 0 {
		return "any"
	}
	return p.String()
}

// prefixList is the value of --allow-peers: comma-separated CIDRs; a bare IP stands for
// itself alone.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return fmt.Errorf("%q is neither a CIDR nor an IP address", item)
			}
			*l = append(*l, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR: %w", item, err)
		}
		*l = append(*l, p.Masked())
	}
	return nil
}
