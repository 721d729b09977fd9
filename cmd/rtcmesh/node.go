package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/rtcnode"
)

func defaultIdentityPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "rtcmesh-identity.pem"
	}
	return filepath.Join(dir, "rtcmesh", "identity.pem")
}

// nodeConfig is what serveNode needs, built from the flags.
type nodeConfig struct {
	// WebRTC configures the node; its Key is loaded (or made) by serveNode.
	WebRTC rtcnode.Config
	// IdentityPath is the file holding the node's identity key, created on first start;
	// Ephemeral ignores it for a fresh key (a new ID).
	IdentityPath string
	Ephemeral    bool
	LogLevel     zerolog.Level
	MaxLine      int
	// HTTPListen is the address serving /metrics, /healthz and /readyz; empty serves none.
	HTTPListen string
	// HTTPBroadcast enables POST /broadcast on HTTPListen.
	HTTPBroadcast bool
	// HTTPReady, if not nil, is called with the bound address once HTTPListen serves (for
	// tests, which listen on port 0).
	HTTPReady func(net.Addr)
}

func parseNodeFlags(args []string, stderr io.Writer, getenv func(string) string) (nodeConfig, error) {
	fs := newFlagSet("node", stderr)
	signalURLs := &defaultListFlag{list: []string{"ws://127.0.0.1:8080/ws"}}
	fs.Var(signalURLs, "signal", "signaling server WebSocket URL; repeatable or comma-separated for instances sharing their networks (rtcmesh signal --nats), tried in turn when one fails")
	network := fs.String("network", "default", "network (room) to join")
	token := fs.String("token", "", "token for a closed network (signaling.NetworkToken of the network name)")
	idPath := fs.String("identity", defaultIdentityPath(), "file holding the node's identity key, whose hash is its ID; created on first start")
	ephemeral := fs.Bool("ephemeral", false, "use a fresh identity (a new ID) instead of --identity")
	profile := fs.String("profile", "wan", "timing profile: wan (links across the internet) or lan")
	mdns := fs.Bool("mdns", true, "publish host candidates as <uuid>.local names (mDNS), as browsers do")
	heartbeat := fs.Duration("heartbeat-timeout", link.DefaultHeartbeatTimeout, "a neighbour silent this long is taken as down")
	powBits := fs.Int("pow-bits", 0, fmt.Sprintf("proof-of-work difficulty required of every link peer's identity key, in bits (0 = off, at most %d; %d recommended, the same on every node and the signaling server): the node does the same work once for its own key, kept in --identity", identity.MaxWorkBits, identity.RecommendedWorkBits))
	catchUp := fs.Duration("catch-up", node.DefaultConfig().Gossip.CatchUpWindow, "how far back broadcasts are kept and fetched from neighbours after a pause, a cut or a late join (delivered with \"history\":true); 0 turns catch-up off")
	var icePrefixes prefixList
	fs.Var(&icePrefixes, "ice-networks", "comma-separated CIDRs: gather and check ICE candidates only on these networks (e.g. 127.0.0.0/8 for a single machine)")
	maxLine := fs.Int("max-line", 60*1024, "longest input line broadcast, in bytes")
	httpListen := fs.String("http-listen", "", `HTTP address serving /metrics, /healthz and /readyz, e.g. 127.0.0.1:9090; empty serves none`)
	httpBroadcast := fs.Bool("http-broadcast", false, "also serve POST /broadcast on --http-listen: the request body is broadcast as one message and its ID returned; whoever reaches --http-listen can broadcast")
	level := addLogLevelFlag(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return nodeConfig{}, err
	}
	if len(signalURLs.list) == 0 || *network == "" {
		return nodeConfig{}, usageError{errors.New("--signal and --network are required")}
	}
	// Parsing creates nothing: the identity is loaded, or its file created, by serveNode.
	cfg := rtcnode.DefaultConfig(nil, signalURLs.list[0], *network)
	cfg.Signal.FallbackURLs = signalURLs.list[1:]
	switch *profile {
	case "wan":
	case "lan":
		cfg.Node = node.DefaultLANConfig()
	default:
		return nodeConfig{}, usageError{fmt.Errorf("--profile %q: want wan or lan", *profile)}
	}
	if *maxLine < 1 || *maxLine > cfg.Node.Gossip.MaxPayload {
		return nodeConfig{}, usageError{fmt.Errorf("--max-line %d: must be between 1 and %d", *maxLine, cfg.Node.Gossip.MaxPayload)}
	}
	if *heartbeat <= 0 {
		return nodeConfig{}, usageError{fmt.Errorf("--heartbeat-timeout %v must be positive", *heartbeat)}
	}
	if err := checkHTTPListen(*httpListen); err != nil {
		return nodeConfig{}, err
	}
	if *httpBroadcast && *httpListen == "" {
		return nodeConfig{}, usageError{errors.New("--http-broadcast needs --http-listen")}
	}
	if err := cfg.Node.SetCatchUp(*catchUp); err != nil {
		return nodeConfig{}, usageError{fmt.Errorf("--catch-up %v: must be 0 (off) or longer than %v, the %s profile's catch-up interval plus settle time",
			*catchUp, cfg.Node.Gossip.CatchUpInterval+cfg.Node.Gossip.CatchUpSettle, *profile)}
	}
	if err := identity.ValidateWorkBits(*powBits); err != nil {
		return nodeConfig{}, usageError{fmt.Errorf("--pow-bits: %w", err)}
	}
	cfg.Link.PowBits = *powBits
	cfg.Signal.Token = *token
	cfg.Link.SetHeartbeatTimeout(*heartbeat)
	if !*mdns {
		cfg.Link.MDNS = rtclink.MDNSDisabled
	}
	if len(icePrefixes) > 0 {
		cfg.Link.SetICENetworks(icePrefixes)
	}
	return nodeConfig{WebRTC: cfg, IdentityPath: *idPath, Ephemeral: *ephemeral, LogLevel: level.level, MaxLine: *maxLine,
		HTTPListen: *httpListen, HTTPBroadcast: *httpBroadcast}, nil
}

func runNode(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseNodeFlags(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveNode(ctx, cfg, os.Stdin, stdout, newLogger(stderr, cfg.LogLevel))
}

// nodeEvent is one line of the node's standard output.
type nodeEvent struct {
	Event  string `json:"event"`
	ID     string `json:"id,omitempty"`
	Peer   string `json:"peer,omitempty"`
	Path   string `json:"path,omitempty"`
	Reason string `json:"reason,omitempty"`
	Origin string `json:"origin,omitempty"`
	Hops   *int   `json:"hops,omitempty"`
	// SentAt is a delivery's origin time (RFC 3339, UTC, milliseconds); History is set when
	// the delivery came by catch-up rather than live.
	SentAt  string `json:"sent_at,omitempty"`
	History bool   `json:"history,omitempty"`
	Data    string `json:"data,omitempty"`
}

// sentAtFormat is RFC 3339 with milliseconds, the precision of a broadcast's time.
const sentAtFormat = "2006-01-02T15:04:05.000Z07:00"

// loadIdentity returns the node's identity key: a fresh one when ephemeral, else the one kept
// at path, created there on first start.
func loadIdentity(path string, ephemeral bool) (*identity.Key, error) {
	load := func() (*identity.Key, error) { return identity.LoadOrCreateKey(path) }
	if ephemeral {
		load = identity.GenerateKey
	}
	id, err := load()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return id, nil
}

// serveNode runs a node until ctx is cancelled: input lines are broadcast, events are written
// to out as JSON lines.
func serveNode(ctx context.Context, cfg nodeConfig, in io.Reader, out io.Writer, log zerolog.Logger) error {
	id, err := loadIdentity(cfg.IdentityPath, cfg.Ephemeral)
	if err != nil {
		return err
	}
	cfg.WebRTC.Key = id
	if bits := cfg.WebRTC.Link.PowBits; bits > 0 && identity.CheckWork(id.PublicKey(), id.Work(), bits) != nil {
		// Here rather than in rtcnode.Start, so that an interrupt stops a long search.
		log.Info().Int("pow_bits", bits).Msg("searching for this identity's proof of work (once per key; kept in the identity file)")
		start := time.Now()
		if _, err := id.EnsureWork(ctx, bits); err != nil {
			return fmt.Errorf("proof of work: %w", err)
		}
		log.Info().Int("pow_bits", bits).Dur("took", time.Since(start)).Msg("proof of work found")
	}
	cfg.WebRTC.Node.Logger = log
	cfg.WebRTC.Link.Logger = log.With().Str("component", "link").Logger()
	cfg.WebRTC.Signal.Logger = log.With().Str("component", "signaling").Logger()
	w, err := rtcnode.Start(cfg.WebRTC)
	if err != nil {
		return err
	}
	if cfg.HTTPListen != "" {
		hs, err := startNodeHealthServer(cfg.HTTPListen, w, cfg.HTTPBroadcast, cfg.WebRTC.Node.Gossip.MaxPayload, log)
		if err != nil {
			_ = w.Close()
			return err
		}
		defer hs.Close()
		if cfg.HTTPReady != nil {
			cfg.HTTPReady(hs.Addr())
		}
	}
	write := eventWriter(out, log)
	write(nodeEvent{Event: "ready", ID: w.ID()})
	log.Info().Str("id", w.ID()).Str("signal", cfg.WebRTC.Signal.URL).Str("network", cfg.WebRTC.Signal.Network).Msg("node started")
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range w.Events() {
			write(nodeEvent{Event: ev.Type.String(), Peer: ev.Peer, Path: string(ev.Path), Reason: ev.Reason})
		}
	})
	wg.Go(func() {
		for dm := range w.DirectMessages() {
			write(nodeEvent{Event: "direct", Peer: dm.From, SentAt: dm.SentAt.UTC().Format(sentAtFormat), Data: string(dm.Data)})
		}
	})
	wg.Go(func() {
		for d := range w.Deliveries() {
			hops := d.Hops
			write(nodeEvent{Event: "deliver", ID: d.ID.String(), Origin: d.Origin, Hops: &hops,
				SentAt: d.SentAt.UTC().Format(sentAtFormat), History: d.History, Data: string(d.Data)})
		}
	})
	// Not in the WaitGroup: a read from standard input cannot be interrupted, and the process
	// ends when serveNode returns.
	go broadcastLines(in, w, cfg.MaxLine, write, log)
	<-ctx.Done()
	log.Info().Msg("leaving the network")
	err = w.Close()
	wg.Wait()
	return err
}

// eventWriter returns a function writing one event as a JSON line to out; the event and
// delivery goroutines share it.
func eventWriter(out io.Writer, log zerolog.Logger) func(nodeEvent) {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	return func(ev nodeEvent) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(ev); err != nil {
			log.Error().Err(err).Msg("writing an event")
		}
	}
}

// directLine splits a line of the form "@<peer ID> <text>" into the ID and the text; ok is
// false for any other line (an @ not followed by a valid node ID and a space is broadcast).
func directLine(line []byte) (peer string, text []byte, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("@"))
	if !found {
		return "", nil, false
	}
	id, text, found := bytes.Cut(rest, []byte(" "))
	if !found || !identity.ValidID(string(id)) {
		return "", nil, false
	}
	return string(id), text, true
}

// broadcastLines broadcasts every non-empty line of in, up to maxLine bytes, until in ends
// or the node closes; a line "@<peer ID> <text>" sends text to that node alone (node.Send),
// and says whether it left ("direct_sent") or not ("direct_failed").
func broadcastLines(in io.Reader, w *rtcnode.Node, maxLine int, write func(nodeEvent), log zerolog.Logger) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if len(line) == 0 {
			continue
		}
		if peer, text, ok := directLine(line); ok {
			switch err := w.Send(peer, text); {
			case err == nil:
				write(nodeEvent{Event: "direct_sent", Peer: peer})
			case errors.Is(err, node.ErrClosed):
				return
			default:
				write(nodeEvent{Event: "direct_failed", Peer: peer, Reason: err.Error()})
			}
			continue
		}
		if _, err := w.Broadcast(line); err != nil {
			if errors.Is(err, node.ErrClosed) {
				return
			}
			log.Error().Err(err).Msg("broadcast")
		}
	}
	if err := sc.Err(); err != nil {
		log.Error().Err(err).Int("max_line", maxLine).Msg("reading standard input stopped")
	}
}

// defaultListFlag is a listFlag with a default that the first value given replaces.
type defaultListFlag struct {
	list listFlag
	set  bool
}

func (l *defaultListFlag) String() string {
	if l == nil {
		return ""
	}
	return l.list.String()
}

func (l *defaultListFlag) Set(s string) error {
	if !l.set {
		l.list, l.set = nil, true
	}
	return l.list.Set(s)
}
