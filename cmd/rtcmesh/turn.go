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
	"slices"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/metrics"
	"github.com/rtcmesh/rtcmesh/turnserver"
)

// turnFlags holds the values of the turn command's flags; most are bound straight to the
// fields of the relay's configuration.
type turnFlags struct {
	cfg                          turnserver.Config
	listen, listenTCP, tlsListen string
	publicIP, publicIPv6         ipFlag
	secrets                      repeatedFlag
	secretsFile                  string
	allowPeersFile               string
	denyPeersFile                string
	denyPeers                    prefixList
	relayPorts                   portRange
	httpListen                   string
	logLevel                     *logLevel
}

// turnFields names the flag that sets each field a validation error may name.
func turnFields() map[string]string {
	return map[string]string{
		"ListenUDP": "--listen", "ListenTCP": "--listen-tcp", "ListenTLS": "--tls-listen", "TLSCertFile": "--tls-cert",
		"TLSKeyFile": "--tls-key", "PublicIP": "--public-ip", "Realm": "--realm", "Secret": "--secret", "AcceptedSecrets": "--secret",
		"PublicIPv6": "--public-ipv6", "AllowedPeers": "--allow-peers", "DeniedPeers": "--deny-peers",
		"MaxAllocations": "--max-allocations", "MaxAllocationsPerUser": "--max-allocations-per-user", "BandwidthPerAllocation": "--bandwidth",
	}
}

func turnFlagSet(stderr io.Writer) (*flag.FlagSet, *turnFlags) {
	f := &turnFlags{cfg: turnserver.DefaultConfig()}
	c, fs := &f.cfg, newFlagSet("turn", stderr)
	f.relayPorts = portRange{min: c.RelayPortMin, max: c.RelayPortMax}
	fs.StringVar(&f.listen, "listen", c.ListenUDP, `UDP address for STUN and TURN over UDP ("off" disables)`)
	fs.StringVar(&f.listenTCP, "listen-tcp", c.ListenTCP, `TCP address for TURN over TCP ("off" disables)`)
	fs.StringVar(&f.tlsListen, "tls-listen", "", "TLS address for TURN over TLS (turns:), typically :443; needs --tls-cert and --tls-key")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "PEM certificate (chain) file for --tls-listen")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "PEM private key file for --tls-listen")
	fs.Var(&f.publicIP, "public-ip", "relay address advertised to clients; required unless a listen address names one specific IP")
	fs.StringVar(&c.Realm, "realm", c.Realm, "TURN realm")
	fs.Var(&f.publicIPv6, "public-ipv6", "IPv6 relay address: makes an IPv4 relay dual-stack, relay sockets for clients asking for IPv6 (REQUESTED-ADDRESS-FAMILY) bind to it and it is advertised")
	fs.Var(&f.secrets, "secret", fmt.Sprintf("shared secret for ephemeral credentials, at least %d bytes (prefer RTCMESH_SECRET); repeat it to accept several while one rotates", turnserver.MinSecretLength))
	fs.StringVar(&f.secretsFile, "secrets-file", "", "file of further shared secrets, one per line (# comments); re-read on SIGHUP, so secrets rotate without a restart")
	fs.StringVar(&f.allowPeersFile, "allow-peers-file", "", "file of CIDRs (or IPs) added to --allow-peers, one or more per line (# comments); re-read on SIGHUP")
	fs.StringVar(&f.denyPeersFile, "deny-peers-file", "", "file of CIDRs (or IPs) added to --deny-peers, one or more per line (# comments); re-read on SIGHUP")
	fs.Var(&f.relayPorts, "relay-ports", "relay port range MIN-MAX (inclusive) to open in the firewall; 0 lets the system pick")
	fs.Var((*prefixList)(&c.AllowedPeers), "allow-peers", "comma-separated CIDRs (or IPs) that may be relayed to even though the deny-list refuses them, for private deployments")
	fs.Var(&f.denyPeers, "deny-peers", "comma-separated CIDRs (or IPs) refused as peers in addition to the built-in deny-list (loopback, private, link-local and the other IANA special-purpose ranges)")
	fs.IntVar(&c.MaxAllocations, "max-allocations", c.MaxAllocations, "concurrent allocations on the whole relay")
	fs.IntVar(&c.MaxAllocationsPerUser, "max-allocations-per-user", c.MaxAllocationsPerUser, "concurrent allocations per node ID (a node needs one per link it relays)")
	fs.Int64Var(&c.BandwidthPerAllocation, "bandwidth", c.BandwidthPerAllocation, "relayed bytes per second per allocation and direction; 0 is unlimited")
	fs.StringVar(&f.httpListen, "http-listen", "", `HTTP address serving /metrics, /healthz and /readyz, e.g. 127.0.0.1:9090; empty serves none`)
	f.logLevel = addLogLevelFlag(fs)
	return fs, f
}

// turnCommand is what the turn command runs, built from the flags by parseTurnCommand.
type turnCommand struct {
	Relay turnserver.Config
	Level zerolog.Level
	// HTTPListen is the address serving /metrics, /healthz and /readyz; empty serves none.
	HTTPListen string
	// Reload reads the secrets and peer lists again, from the flags and the files they name:
	// what SIGHUP applies to the running relay.
	Reload func() (turnserver.Reloadable, error)
}

// reloadable assembles the relay's secrets and peer lists from the flags and the files they
// name; it runs at start and on every SIGHUP. The first secret mints (--secret before the
// file); the rest are accepted.
func (f *turnFlags) reloadable() (turnserver.Reloadable, error) {
	return turnLists{
		secrets: f.secrets, secretsFile: f.secretsFile,
		allowPeers: f.cfg.AllowedPeers, allowPeersFile: f.allowPeersFile,
		denyPeers: f.denyPeers, denyPeersFile: f.denyPeersFile,
		maxListFile: f.cfg.MaxListFile,
	}.reloadable()
}

// turnLists are a relay's secrets and peer lists as flags give them, `turn`'s and `signal`'s
// (--turn-…) alike: the values of the flags and the files re-read on every SIGHUP.
type turnLists struct {
	secrets        []string
	secretsFile    string
	allowPeers     []netip.Prefix
	allowPeersFile string
	denyPeers      []netip.Prefix // added to the built-in deny-list
	denyPeersFile  string
	maxListFile    int // turnserver.Config.MaxListFile
}

// reloadable reads the files and assembles the lists: the first secret mints (the flag's before
// the file's), the rest are accepted; the deny-list is the built-in one plus both.
func (l turnLists) reloadable() (turnserver.Reloadable, error) {
	secrets := slices.Clone(l.secrets)
	allowed := slices.Clone(l.allowPeers)
	denied := append(turnserver.DefaultDeniedPeers(), l.denyPeers...)
	var errs []error
	if l.secretsFile != "" {
		more, err := turnserver.ReadSecretsFile(l.secretsFile, l.maxListFile)
		errs = append(errs, err)
		secrets = append(secrets, more...)
	}
	if l.allowPeersFile != "" {
		more, err := turnserver.ReadPrefixFile(l.allowPeersFile, l.maxListFile)
		errs = append(errs, err)
		allowed = append(allowed, more...)
	}
	if l.denyPeersFile != "" {
		more, err := turnserver.ReadPrefixFile(l.denyPeersFile, l.maxListFile)
		errs = append(errs, err)
		denied = append(denied, more...)
	}
	if err := errors.Join(errs...); err != nil {
		return turnserver.Reloadable{}, err
	}
	r := turnserver.Reloadable{AllowedPeers: allowed, DeniedPeers: denied}
	if len(secrets) > 0 {
		r.Secret, r.AcceptedSecrets = secrets[0], secrets[1:]
	}
	return r, nil
}

// parseTurnCommand parses the turn command's flags and environment. Every mistake a flag can
// make is reported here as a usageError, so nothing is bound before the whole command line is
// known to be good: the relay's own fields are checked by turnserver's Validate, and only
// what spans flags here.
func parseTurnCommand(args []string, stderr io.Writer, getenv func(string) string) (turnCommand, error) {
	fs, f := turnFlagSet(stderr)
	if err := parseFlags(fs, args, getenv); err != nil {
		return turnCommand{}, err
	}
	cfg := f.cfg
	cfg.ListenUDP, cfg.ListenTCP, cfg.ListenTLS = listenAddr(f.listen), listenAddr(f.listenTCP), listenAddr(f.tlsListen)
	cfg.RelayPortMin, cfg.RelayPortMax = f.relayPorts.min, f.relayPorts.max
	cfg.PublicIPv6 = f.publicIPv6.addr
	var errs []error
	if r, err := f.reloadable(); err != nil {
		errs = append(errs, err)
	} else {
		cfg.Secret, cfg.AcceptedSecrets, cfg.AllowedPeers, cfg.DeniedPeers = r.Secret, r.AcceptedSecrets, r.AllowedPeers, r.DeniedPeers
	}
	if cfg.ListenTLS == "" && (cfg.TLSCertFile != "" || cfg.TLSKeyFile != "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key are only used with --tls-listen"))
	}
	if err := checkHTTPListen(f.httpListen); err != nil {
		errs = append(errs, err)
	}
	var err error
	if cfg.PublicIP, cfg.RelayBindIP, err = turnserver.RelayAddrs(f.publicIP.addr, cfg.ListenUDP, cfg.ListenTCP, cfg.ListenTLS); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
		return turnCommand{}, flagErrors(err, turnFields())
	}
	return turnCommand{Relay: cfg, Level: f.logLevel.level, HTTPListen: f.httpListen, Reload: f.reloadable}, nil
}

func runTurn(args []string, stdout, stderr io.Writer) error {
	c, err := parseTurnCommand(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, c.Level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serveTurnHTTP(ctx, c, hup, log, nil)
}

// turnAddrs are the addresses a running relay is bound to (nil when off) and the ICE server
// URLs that reach it.
type turnAddrs struct {
	UDP, TCP, TLS net.Addr
	URLs          []string
	// HTTP serves /metrics, /healthz and /readyz; nil when --http-listen is empty.
	HTTP net.Addr
}

// serveTurnHTTP runs the relay, and /metrics, /healthz and /readyz on c.HTTPListen unless it is
// empty, until ctx is done, then closes them and returns nil. Each signal on hup reloads the
// secrets and peer lists (c.Reload); one that fails is logged and changes nothing. ready, if
// not nil, is called once the listeners are bound. The relay logs to log.
func serveTurnHTTP(ctx context.Context, c turnCommand, hup <-chan os.Signal, log zerolog.Logger, ready func(turnAddrs)) error {
	cfg, httpListen := c.Relay, c.HTTPListen
	cfg.Logger = log.With().Str("component", "turn").Logger()
	srv, err := turnserver.New(cfg)
	if err != nil {
		return fmt.Errorf("starting TURN relay: %w", err)
	}
	addrs := turnAddrs{UDP: srv.UDPAddr(), TCP: srv.TCPAddr(), TLS: srv.TLSAddr(), URLs: srv.URLs("")}
	var state metrics.Readiness
	if httpListen != "" {
		hs, err := startTURNHealthServer(httpListen, srv, &state, log)
		if err != nil {
			_ = srv.Close()
			return err
		}
		defer hs.Close()
		addrs.HTTP = hs.Addr()
	}
	state.Listening()
	log.Info().Str("udp", addrString(addrs.UDP)).Str("tcp", addrString(addrs.TCP)).Str("tls", addrString(addrs.TLS)).
		Str("public_ip", cfg.PublicIP.String()).Str("relay_ports", portRangeString(cfg.RelayPortMin, cfg.RelayPortMax)).
		Strs("urls", addrs.URLs).Msg("TURN relay listening")
	if ready != nil {
		ready(addrs)
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case sig := <-hup:
			log.Info().Stringer("signal", sig).Msg("TURN relay reloading its secrets and peer lists")
			if r, err := c.Reload(); err != nil {
				srv.ReloadFailed(err)
			} else {
				_, _ = srv.Reload(r) // it logs what changed, or why it refused
			}
		}
	}
	log.Info().Msg("TURN relay shutting down")
	state.Stopping()
	return srv.Close() // it logs what it did over its life
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
