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

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/signaling/signalnats"
	"github.com/rtcmesh/rtcmesh/signaling/signalservice"
	"github.com/rtcmesh/rtcmesh/turnserver"
	"github.com/rtcmesh/rtcmesh/web"
)

// signalFlags holds the values of the signal command's flags: most are bound straight to the
// fields of the service's configuration, the embedded relay's and the page's.
type signalFlags struct {
	cfg            signalservice.Config
	turn           turnserver.Config // the embedded relay's, used when turnListen is set
	turnAllowPeers prefixList        // added to the embedded relay's AllowedPeers
	turnDenyPeers  prefixList        // added to its built-in deny-list
	// The files re-read on SIGHUP, with --turn-secret and the peer lists above.
	turnSecretsFile, turnAllowPeersFile, turnDenyPeersFile string
	turnListen                                             string
	turnPublicIP                                           ipFlag
	turnPublicIPv6                                         ipFlag
	turnRelayPorts                                         portRange
	web                                                    bool
	webNetwork                                             string
	nats                                                   signalnats.Config // used when natsURLs is not empty
	natsURLs                                               listFlag
	logLevel                                               *logLevel
}

// signalFields names the flag that sets each field a validation error may name.
func signalFields() map[string]string {
	return map[string]string{
		"Listen": "--listen", "DrainTimeout": "--drain-timeout", "MaxFrameSize": "--max-frame-size", "RateLimit": "--rate",
		"RateBurst": "--burst", "HandshakeTimeout": "--handshake-timeout", "MaxPeersPerNetwork": "--max-peers-per-network",
		"MaxConnections": "--max-connections", "ContactCount": "--contacts", "AllowedOrigins": "--allowed-origins",
		"NetworkSecret": "--network-secret", "TURNSecret": "--turn-secret", "Secret": "--turn-secret", "TURNURLs": "--turn-url",
		"STUNURLs": "--stun-url", "CredentialTTL": "--turn-credential-ttl", "Realm": "--turn-realm",
		"PublicIP": "--turn-public-ip", "PublicIPv6": "--turn-public-ipv6", "Web.Network": "--web-network", "AllowedPeers": "--turn-allow-peers", "DeniedPeers": "--turn-deny-peers",
		"MaxConnectionsPerSource": "--max-connections-per-source", "ConnectionsPerSourcePerMinute": "--source-connections-per-minute",
		"HellosPerSourcePerMinute": "--source-hellos-per-minute", "TrustedProxies": "--trusted-proxies",
		"SendQueueBytes": "--send-queue-bytes", "MaxQueuedBytes": "--max-queued-bytes", "ReservedFiles": "--reserved-files",
		"PowBits": "--pow-bits", "URLs": "--nats", "Prefix": "--nats-prefix", "Instance": "--nats-instance",
		"PresenceInterval": "--nats-presence-interval", "PresenceTTL": "--nats-presence-ttl", "User": "--nats-user",
		"Token": "--nats-token", "CredsFile": "--nats-creds",
	}
}

func signalFlagSet(stderr io.Writer) (*flag.FlagSet, *signalFlags) {
	f := &signalFlags{cfg: signalservice.DefaultConfig(), turn: turnserver.DefaultConfig(), nats: signalnats.DefaultConfig()}
	f.turnRelayPorts = portRange{min: f.turn.RelayPortMin, max: f.turn.RelayPortMax}
	c, s, fs := &f.cfg, &f.cfg.Signal, newFlagSet("signal", stderr)
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP address serving /ws, /healthz, /readyz and /metrics (behind a TLS-terminating proxy for wss://)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on shutdown, how long clients get to leave before their connections are dropped")
	fs.IntVar(&s.MaxFrameSize, "max-frame-size", s.MaxFrameSize, "largest frame a client may send, in bytes")
	fs.Float64Var(&s.RateLimit, "rate", s.RateLimit, "messages per second a connection may send, sustained")
	fs.IntVar(&s.RateBurst, "burst", s.RateBurst, "messages a connection may send back to back")
	fs.DurationVar(&s.HandshakeTimeout, "handshake-timeout", s.HandshakeTimeout, "how long a connection may take to say hello")
	fs.IntVar(&s.MaxPeersPerNetwork, "max-peers-per-network", s.MaxPeersPerNetwork, "members of one network")
	fs.IntVar(&s.MaxConnections, "max-connections", s.MaxConnections, "open connections on the whole server (also bounds the networks)")
	fs.IntVar(&s.ReservedFiles, "reserved-files", s.ReservedFiles, "file descriptors kept for all but WebSocket connections: --max-connections is lowered at start to the open-file limit (ulimit -n) minus these")
	fs.IntVar(&s.MaxConnectionsPerSource, "max-connections-per-source", s.MaxConnectionsPerSource, "open connections from one source address (an IP, or an IPv6 /64); clients behind one NAT share it")
	fs.IntVar(&s.ConnectionsPerSourcePerMinute, "source-connections-per-minute", s.ConnectionsPerSourcePerMinute, "connections one source address may open per minute (a minute's worth at once)")
	fs.IntVar(&s.HellosPerSourcePerMinute, "source-hellos-per-minute", s.HellosPerSourcePerMinute, "hellos one source address may send per minute (a minute's worth at once)")
	fs.Var((*prefixListFlag)(&s.TrustedProxies), "trusted-proxies", "comma-separated reverse proxies (IPs or CIDR prefixes) whose X-Forwarded-For names the client; set it behind a proxy, or every client shares the proxy's per-source limits")
	fs.IntVar(&s.SendQueueBytes, "send-queue-bytes", s.SendQueueBytes, "bytes of relays waiting to be written to one connection; further relays to it are refused with target_busy")
	fs.IntVar(&s.MaxQueuedBytes, "max-queued-bytes", s.MaxQueuedBytes, "bytes waiting to be written to all connections together; when used up, the connection with the most waiting is dropped")
	fs.IntVar(&s.ContactCount, "contacts", s.ContactCount, "random live peers a welcome carries")
	fs.Var((*listFlag)(&s.AllowedOrigins), "allowed-origins", `comma-separated browser origins (scheme://host[:port], or "*") that may connect; pages served from the server's own host always may`)
	fs.IntVar(&s.PowBits, "pow-bits", s.PowBits, fmt.Sprintf("proof-of-work difficulty required of every identity key at hello, in bits (0 = off, at most %d; %d recommended for an open network): each Sybil ID costs 2^N hashes", identity.MaxWorkBits, identity.RecommendedWorkBits))
	fs.StringVar(&c.NetworkSecret, "network-secret", "", fmt.Sprintf("closes every network: a hello needs the token HMAC-SHA256(secret, network); at least %d bytes (prefer RTCMESH_NETWORK_SECRET)", signalservice.MinNetworkSecretLength))
	fs.StringVar(&f.turnListen, "turn-listen", "", `UDP and TCP address of an embedded TURN/STUN relay, e.g. 0.0.0.0:3478; empty runs none`)
	fs.Var(&f.turnPublicIP, "turn-public-ip", "relay address the embedded TURN advertises; required unless --turn-listen names one specific IP")
	fs.Var(&f.turnPublicIPv6, "turn-public-ipv6", "IPv6 relay address of the embedded TURN: makes it dual-stack, relay sockets for clients asking for IPv6 bind to it and it is advertised")
	fs.StringVar(&f.turn.Realm, "turn-realm", f.turn.Realm, "TURN realm of the embedded relay")
	fs.StringVar(&c.TURNSecret, "turn-secret", "", fmt.Sprintf("shared secret of the embedded relay and every --turn-url, at least %d bytes (prefer RTCMESH_TURN_SECRET)", turnserver.MinSecretLength))
	fs.Var((*listFlag)(&c.TURNURLs), "turn-url", `external TURN server sharing --turn-secret, e.g. "turn:turn.example.org:3478?transport=udp"; repeatable or comma-separated`)
	fs.Var(&f.turnRelayPorts, "turn-relay-ports", "relay port range MIN-MAX (inclusive) of the embedded relay; 0 lets the system pick")
	fs.Var(&f.turnAllowPeers, "turn-allow-peers", "comma-separated CIDRs (or IPs) the embedded relay may relay to even though its deny-list refuses them, for private deployments")
	fs.StringVar(&f.turnSecretsFile, "turn-secrets-file", "", "file of further shared secrets of the embedded relay (and every --turn-url), one per line (# comments); the first of --turn-secret and the file mints; re-read on SIGHUP, so secrets rotate without a restart")
	fs.StringVar(&f.turnAllowPeersFile, "turn-allow-peers-file", "", "file of CIDRs (or IPs) added to --turn-allow-peers, one or more per line (# comments); re-read on SIGHUP")
	fs.StringVar(&f.turnDenyPeersFile, "turn-deny-peers-file", "", "file of CIDRs (or IPs) added to --turn-deny-peers, one or more per line (# comments); re-read on SIGHUP")
	fs.Var(&f.turnDenyPeers, "turn-deny-peers", "comma-separated CIDRs (or IPs) the embedded relay refuses as peers in addition to its built-in deny-list (loopback, private, link-local and the other IANA special-purpose ranges)")
	fs.DurationVar(&c.CredentialTTL, "turn-credential-ttl", c.CredentialTTL, "lifetime of the TURN credentials a welcome carries")
	fs.Var((*listFlag)(&c.STUNURLs), "stun-url", `extra STUN server handed out without credentials, e.g. "stun:stun.example.org:3478"; repeatable or comma-separated`)
	fs.BoolVar(&f.web, "web", true, "serve the demo web page at /: a browser opening it joins the mesh as a peer")
	fs.StringVar(&f.webNetwork, "web-network", "default", "network the web page joins unless its URL says ?network=")
	n := &f.nats
	fs.Var(&f.natsURLs, "nats", `NATS server(s) through which this instance shares its networks with every other instance on them, e.g. "nats://nats:4222"; repeatable or comma-separated; empty runs a single instance`)
	fs.StringVar(&n.Prefix, "nats-prefix", n.Prefix, "first token of every NATS subject, so several deployments can share one NATS")
	fs.StringVar(&n.Instance, "nats-instance", "", "this instance's name on NATS ([A-Za-z0-9_-]); empty draws a random one")
	fs.StringVar(&n.User, "nats-user", "", "NATS user name (with --nats-password)")
	fs.StringVar(&n.Password, "nats-password", "", "NATS password (prefer RTCMESH_NATS_PASSWORD)")
	fs.StringVar(&n.Token, "nats-token", "", "NATS authentication token (prefer RTCMESH_NATS_TOKEN)")
	fs.StringVar(&n.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and nkey seed)")
	fs.DurationVar(&n.PresenceInterval, "nats-presence-interval", n.PresenceInterval, "how often this instance announces its members on NATS and forgets other instances' expired ones")
	fs.DurationVar(&n.PresenceTTL, "nats-presence-ttl", n.PresenceTTL, "how long another instance's member stays known without an announcement (at least twice --nats-presence-interval): an instance that dies is forgotten within it")
	f.logLevel = addLogLevelFlag(fs)
	return fs, f
}

// prefixListFlag is a comma-separated, repeatable list of IP prefixes; a bare IP is its own
// prefix.
type prefixListFlag []netip.Prefix

func (l *prefixListFlag) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *prefixListFlag) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil {
			*l = append(*l, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("%q is neither an IP address nor a CIDR prefix", item)
		}
		*l = append(*l, p.Masked())
	}
	return nil
}

// turnLists are the embedded relay's (and the --turn-url servers') secrets and peer lists as
// the flags give them; reloadable re-reads the files they name.
func (f *signalFlags) turnLists() turnLists {
	l := turnLists{
		secretsFile: f.turnSecretsFile, allowPeers: f.turnAllowPeers, allowPeersFile: f.turnAllowPeersFile,
		denyPeers: f.turnDenyPeers, denyPeersFile: f.turnDenyPeersFile, maxListFile: f.turn.MaxListFile,
	}
	if f.cfg.TURNSecret != "" {
		l.secrets = []string{f.cfg.TURNSecret}
	}
	return l
}

// parseSignalFlags parses the signal command's flags and environment into the service's
// configuration, which it validates: mistakes are usageErrors, found before anything is bound.
func parseSignalFlags(args []string, stderr io.Writer, getenv func(string) string) (signalservice.Config, zerolog.Level, error) {
	c, err := parseSignalCommand(args, stderr, getenv)
	return c.Service, c.Level, err
}

// signalCommand is what the signal command runs, built from the flags by parseSignalCommand.
type signalCommand struct {
	Service signalservice.Config
	Level   zerolog.Level
	// ReloadTURN reads the TURN secrets and peer lists again, from the flags and the files
	// they name: what SIGHUP applies to the running service (signalservice.Service.ReloadTURN).
	ReloadTURN func() (turnserver.Reloadable, error)
}

// parseSignalCommand is parseSignalFlags, with what SIGHUP re-reads.
func parseSignalCommand(args []string, stderr io.Writer, getenv func(string) string) (signalCommand, error) {
	fs, f := signalFlagSet(stderr)
	if err := parseFlags(fs, args, getenv); err != nil {
		return signalCommand{}, err
	}
	cfg := f.cfg
	var errs []error
	lists := f.turnLists()
	r, err := lists.reloadable()
	if err != nil {
		errs = append(errs, err)
	} else if len(cfg.TURNURLs) > 0 || f.turnSecretsFile != "" {
		cfg.TURNSecret = r.Secret // the first of --turn-secret and --turn-secrets-file mints
	}
	if l := listenAddr(f.turnListen); l != "" {
		t := f.turn
		t.ListenUDP, t.ListenTCP = l, l
		t.Secret, t.AcceptedSecrets, t.CredentialTTL = r.Secret, r.AcceptedSecrets, cfg.CredentialTTL
		t.RelayPortMin, t.RelayPortMax = f.turnRelayPorts.min, f.turnRelayPorts.max
		t.PublicIPv6 = f.turnPublicIPv6.addr
		t.AllowedPeers, t.DeniedPeers = r.AllowedPeers, r.DeniedPeers
		var err error
		if t.PublicIP, t.RelayBindIP, err = turnserver.RelayAddrs(f.turnPublicIP.addr, l); err != nil {
			errs = append(errs, err)
		}
		cfg.TURN = &t
	} else if f.turnSecretsFile != "" && len(cfg.TURNURLs) == 0 {
		errs = append(errs, errors.New("--turn-secrets-file needs --turn-listen or --turn-url"))
	}
	if f.web {
		w := web.DefaultConfig(f.webNetwork)
		cfg.Web = &w
	}
	if len(f.natsURLs) > 0 {
		n := f.nats
		n.URLs = signalnats.SplitURLs(f.natsURLs...)
		cfg.NATS = &n
	}
	if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
		return signalCommand{}, flagErrors(err, signalFields())
	}
	return signalCommand{Service: cfg, Level: f.logLevel.level, ReloadTURN: lists.reloadable}, nil
}

func runSignal(args []string, stdout, stderr io.Writer) error {
	c, err := parseSignalCommand(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, c.Level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serveSignalReloading(ctx, c, hup, log, nil)
}

// signalAddrs are the addresses a running signal command is bound to.
type signalAddrs struct {
	// HTTP serves /ws, /healthz, /readyz and /metrics.
	HTTP net.Addr
	// TURN is the embedded relay's addresses; zero when it runs none.
	TURN turnAddrs
}

// serveSignal runs the signaling service until ctx is done (or its HTTP server fails), then
// drains the clients within cfg.DrainTimeout. ready, if not nil, is called once everything
// listens.
func serveSignal(ctx context.Context, cfg signalservice.Config, log zerolog.Logger, ready func(signalAddrs)) error {
	return serveSignalReloading(ctx, signalCommand{Service: cfg}, nil, log, ready)
}

// serveSignalReloading is serveSignal, and each signal on hup reloads the TURN secrets and peer
// lists (c.ReloadTURN); one that fails is logged and changes nothing.
func serveSignalReloading(ctx context.Context, c signalCommand, hup <-chan os.Signal, log zerolog.Logger, ready func(signalAddrs)) error {
	cfg := c.Service
	cfg.Logger = log
	svc, err := signalservice.Start(cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		addrs := signalAddrs{HTTP: svc.Addr()}
		if r := svc.Relay(); r != nil {
			addrs.TURN = turnAddrs{UDP: r.UDPAddr(), TCP: r.TCPAddr(), TLS: r.TLSAddr(), URLs: svc.RelayURLs()}
		}
		ready(addrs)
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-svc.Failed():
			done = true
		case sig := <-hup:
			log.Info().Stringer("signal", sig).Msg("signaling server reloading its TURN secrets and peer lists")
			if c.ReloadTURN == nil {
				continue
			}
			if r, err := c.ReloadTURN(); err != nil {
				svc.ReloadTURNFailed(err)
			} else {
				_ = svc.ReloadTURN(r) // it logs what changed, or why it refused
			}
		}
	}
	return svc.Close()
}
