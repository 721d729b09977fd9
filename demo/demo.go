// Package demo runs a complete rtcmesh network on localhost in one process: the signaling
// service (package signalservice: signaling, the TURN relay and the demo page of package web)
// and a number of Go nodes that join one network and, optionally, chat on their own so a
// browser opening the page sees traffic at once, and answer the direct messages a page sends
// them. `rtcmesh demo` is a thin command around Start; the browser tests use the same API to
// drive Go nodes and read what they delivered, broadcasts and direct messages.
//
// Everything listens on loopback. By default the nodes gather ICE candidates on loopback and
// on this machine's own other addresses, each alone (a /32 or /128, not the LAN around it):
// Firefox neither gathers nor checks loopback candidates, but it links to a node's candidate on
// the machine's LAN address, and a packet from the machine to its own address never leaves it.
// A node accepts candidates only on these networks, so the demo sends nothing off the machine.
// The relay is allowed to relay to loopback (a public relay refuses that) because every peer of
// the demo lives there.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/chat"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link/rtclink"
	"github.com/rtcmesh/rtcmesh/node"
	"github.com/rtcmesh/rtcmesh/rtcnode"
	"github.com/rtcmesh/rtcmesh/signaling/signalserver"
	"github.com/rtcmesh/rtcmesh/signaling/signalservice"
	"github.com/rtcmesh/rtcmesh/turnserver"
	"github.com/rtcmesh/rtcmesh/web"
)

// Config configures a demo network. Start from DefaultConfig.
type Config struct {
	// Listen is the HTTP address serving the page at "/" and signaling at "/ws". Port 0
	// picks a free port (URL reports it). Default "127.0.0.1:8080"; it should be a loopback
	// address, since the nodes and the relay live on loopback.
	Listen string
	// Network is the network (room) the Go nodes join and the page joins unless its URL says
	// ?network=. Default "demo".
	Network string
	// Nodes is how many Go nodes run. Default 8; at least 0 (a demo of browsers only).
	Nodes int
	// Chatter is how often a random Go node broadcasts a chat line of its own, so the page
	// shows traffic without anyone typing. Zero disables it. Default 0 (the command sets 10 s).
	Chatter time.Duration
	// TURNListen is the address of the embedded TURN relay (UDP and TCP); empty runs none.
	// It must name one loopback IP, which is also the relay address. The relay relays to
	// loopback and to ICENetworks. Default "127.0.0.1:0".
	TURNListen string
	// ICENetworks are the networks the Go nodes gather and check ICE candidates on. Default
	// 127.0.0.0/8: the demo stays on the machine.
	ICENetworks []netip.Prefix
	// HostAddresses adds this machine's own addresses (HostAddresses) to ICENetworks, each as a
	// network of one address, when Start runs: what Firefox needs to link (see the package
	// comment). Default true.
	HostAddresses bool
	// History is how many delivered messages each Go node keeps for Messages, and how many
	// direct messages for Directs; older ones are dropped. Default 1000.
	History int
	// Answer makes every Go node answer a direct chat message from a peer that is not one of
	// the demo's Go nodes (a browser tab, another process) with a direct message of its own, so
	// a person trying direct messages from the page sees one come back. Go nodes never answer
	// each other, which would never end. Default true.
	Answer bool
	// Node is the template of every Go node's runtime configuration (ID, transport and
	// contacts are filled in). Default node.DefaultLANConfig(): every peer is on one machine.
	// Its Gossip.CatchUpWindow (set with Node.SetCatchUp) is how far back the nodes keep what
	// was said for peers that join later, such as a tab opened late.
	Node node.Config
	// Signal configures the signaling server; its Logger and ICEServers hook are set by the
	// signaling service. Default signalserver.DefaultConfig() with MaxConnections 1,000: a demo
	// on one machine needs no more, and a server's 50,000 would be lowered to the process's
	// open-file limit with a warning at every start.
	Signal signalserver.Config
	// DrainTimeout bounds Close: how long signaling clients get to leave. Default 2 s.
	DrainTimeout time.Duration
	// Seed seeds the nodes' protocol cores and the chatter; 0 draws one at random.
	Seed uint64
	// Logger receives every component's logs; the zero value logs nothing.
	Logger zerolog.Logger
}

// DefaultConfig returns the demo's defaults.
func DefaultConfig() Config {
	sig := signalserver.DefaultConfig()
	sig.MaxConnections = 1000
	return Config{
		Listen:        "127.0.0.1:8080",
		Network:       "demo",
		Nodes:         8,
		TURNListen:    "127.0.0.1:0",
		ICENetworks:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		HostAddresses: true,
		History:       1000,
		Answer:        true,
		Node:          node.DefaultLANConfig(),
		Signal:        sig,
		DrainTimeout:  2 * time.Second,
	}
}

// Validate reports every invalid field, in the order they are declared, as Start would,
// without starting anything.
func (c Config) Validate() error { return c.validate() }

// LoopbackListen checks that listen (host:port) is for this machine only, as the demo's
// peers live on loopback, and names 127.0.0.1 for an empty host, which would otherwise listen
// on every interface.
func LoopbackListen(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("Listen %q: %w", listen, err)
	}
	switch ip, perr := netip.ParseAddr(host); {
	case host == "":
		return net.JoinHostPort("127.0.0.1", port), nil
	case host == "localhost":
	case perr != nil || !ip.IsLoopback():
		return "", fmt.Errorf("Listen %q: the demo's peers live on loopback; use a loopback address", listen)
	}
	return listen, nil
}

func (c *Config) validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("Listen is empty"))
	}
	if c.Network == "" {
		errs = append(errs, errors.New("Network is empty"))
	}
	if c.Nodes < 0 {
		errs = append(errs, fmt.Errorf("Nodes is %d, must be at least 0", c.Nodes))
	}
	if c.Chatter < 0 {
		errs = append(errs, fmt.Errorf("Chatter is %v, must not be negative", c.Chatter))
	}
	if c.History < 1 {
		errs = append(errs, fmt.Errorf("History is %d, must be at least 1", c.History))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("DrainTimeout is %v, must be positive", c.DrainTimeout))
	}
	if len(c.ICENetworks) == 0 {
		errs = append(errs, errors.New("ICENetworks is empty: the nodes could not gather a candidate"))
	}
	if err := c.Signal.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("demo: invalid config: %w", err)
	}
	return nil
}

// Demo is a running demo network.
type Demo struct {
	cfg Config
	// networks are the ICE networks of the nodes: ICENetworks and, with HostAddresses, the
	// machine's addresses.
	networks []netip.Prefix
	log      zerolog.Logger
	svc      *signalservice.Service
	nodes    []*Node
	// goIDs are the Go nodes' IDs, filled as they start (Answer never answers them).
	goIDsMu sync.Mutex
	goIDs   map[string]bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

// Start starts the signaling service (the relay, the signaling server and the page), then
// the Go nodes. The nodes join in the background: WaitConnected waits for them.
func Start(cfg Config) (*Demo, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = mrand.Uint64()
	}
	d := &Demo{cfg: cfg, log: cfg.Logger, networks: append([]netip.Prefix(nil), cfg.ICENetworks...), goIDs: map[string]bool{}}
	if cfg.HostAddresses {
		for _, p := range HostAddresses() {
			if !containsPrefix(d.networks, p) {
				d.networks = append(d.networks, p)
			}
		}
	}
	sc := signalservice.DefaultConfig()
	sc.Listen, sc.DrainTimeout, sc.Signal, sc.Logger = cfg.Listen, cfg.DrainTimeout, cfg.Signal, cfg.Logger
	page := web.DefaultConfig(cfg.Network)
	sc.Web = &page
	if cfg.TURNListen != "" {
		t, err := relayConfig(cfg, d.networks)
		if err != nil {
			return nil, err
		}
		sc.TURN = &t
	}
	svc, err := signalservice.Start(sc)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.svc = svc

	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	for i := range cfg.Nodes {
		n, err := d.startNode(i)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		d.nodes = append(d.nodes, n)
	}
	if cfg.Chatter > 0 && len(d.nodes) > 0 {
		d.wg.Add(1)
		go d.chatter(ctx)
	}
	d.log.Info().Str("url", d.URL()).Int("nodes", cfg.Nodes).Str("network", cfg.Network).Msg("demo running")
	return d, nil
}

// relayConfig is the demo's TURN relay: on a loopback IP, with a fresh random secret, allowed
// to relay to loopback and the nodes' ICE networks.
func relayConfig(cfg Config, networks []netip.Prefix) (turnserver.Config, error) {
	host, _, err := net.SplitHostPort(cfg.TURNListen)
	if err != nil {
		return turnserver.Config{}, fmt.Errorf("demo: TURNListen %q: %w", cfg.TURNListen, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return turnserver.Config{}, fmt.Errorf("demo: TURNListen %q must name a loopback IP", cfg.TURNListen)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return turnserver.Config{}, fmt.Errorf("demo: TURN secret: %w", err)
	}
	t := turnserver.DefaultConfig()
	t.ListenUDP, t.ListenTCP = cfg.TURNListen, cfg.TURNListen
	t.PublicIP, t.RelayBindIP = ip, ip
	t.RelayPortMin, t.RelayPortMax = 0, 0
	t.Secret = hex.EncodeToString(secret)
	// Every peer of the demo is on this machine, on loopback or the ICE networks, which a
	// public relay rightly refuses to relay to.
	t.AllowedPeers = append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, networks...)
	return t, nil
}

// HostAddresses returns this machine's own addresses other than loopback, each as a network of
// that address alone: the unicast addresses, link-local ones left out, of the interfaces that
// are up and running.
func HostAddresses() []netip.Prefix {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagRunning == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return out
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// ICENetworks are the networks the Go nodes gather and check ICE candidates on: the
// ICENetworks of the Config and, with HostAddresses, this machine's own addresses.
func (d *Demo) ICENetworks() []netip.Prefix { return append([]netip.Prefix(nil), d.networks...) }

func (d *Demo) startNode(i int) (*Node, error) {
	id, err := identity.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("demo: node %d identity: %w", i, err)
	}
	wc := rtcnode.DefaultConfig(id, d.SignalURL(), d.cfg.Network)
	wc.Node = d.cfg.Node
	wc.Node.Seed = d.cfg.Seed + uint64(i) + 1
	log := d.log.With().Str("component", "node").Str("node", id.ID()[:8]).Logger()
	wc.Node.Logger = log
	wc.Link.Logger = log
	wc.Signal.Logger = log
	wc.Link.SettingEngine = rtclink.NetworkSettings(d.networks)
	// mDNS would multicast on the machine's real interfaces. The nodes need no names: a
	// browser's mDNS-named candidate is learnt as peer-reflexive when its checks arrive.
	wc.Link.MDNS = rtclink.MDNSDisabled
	d.goIDsMu.Lock()
	d.goIDs[id.ID()] = true
	d.goIDsMu.Unlock()
	w, err := rtcnode.Start(wc)
	if err != nil {
		return nil, fmt.Errorf("demo: starting node %d: %w", i, err)
	}
	n := &Node{w: w, index: i, history: d.cfg.History, changed: make(chan struct{})}
	d.wg.Add(3)
	go func() { defer d.wg.Done(); n.drainDeliveries(log) }()
	go func() { defer d.wg.Done(); n.drainDirect(log, d.answers) }()
	go func() { defer d.wg.Done(); n.drainEvents(log) }()
	return n, nil
}

// answers reports whether a Go node answers a direct message from peer (see Config.Answer).
func (d *Demo) answers(peer string) bool {
	if !d.cfg.Answer {
		return false
	}
	d.goIDsMu.Lock()
	defer d.goIDsMu.Unlock()
	return !d.goIDs[peer]
}

// chatter makes a random node say something every Chatter.
func (d *Demo) chatter(ctx context.Context) {
	defer d.wg.Done()
	lines := []string{
		"hello, mesh", "ping", "anyone there?", "gossip travels fast", "still here",
		"tick", "greetings from Go", "the tree is eager", "lazy links carry IHAVE",
	}
	rng := mrand.New(mrand.NewPCG(d.cfg.Seed, 7))
	t := time.NewTicker(d.cfg.Chatter)
	defer t.Stop()
	for count := 1; ; count++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := d.nodes[rng.IntN(len(d.nodes))]
		if len(n.w.Neighbors()) == 0 {
			continue // it would only talk to itself
		}
		text := fmt.Sprintf("%s #%d from Go node %d", lines[rng.IntN(len(lines))], count, n.index+1)
		if _, err := n.Say(text); err != nil {
			d.log.Debug().Err(err).Msg("chatter")
		}
	}
}

// URL is the page's address, http://host:port/.
func (d *Demo) URL() string { return d.svc.URL() }

// SignalURL is the signaling WebSocket's address, ws://host:port/ws.
func (d *Demo) SignalURL() string { return d.svc.SignalURL() }

// Addr is the address the HTTP server listens on.
func (d *Demo) Addr() net.Addr { return d.svc.Addr() }

// Page is the page's handler (its Sizes give the bytes a browser downloads).
func (d *Demo) Page() *web.Handler { return d.svc.Page() }

// Nodes returns the Go nodes, in start order.
func (d *Demo) Nodes() []*Node { return append([]*Node(nil), d.nodes...) }

// WaitConnected waits until every Go node has at least one neighbour, or ctx ends.
func (d *Demo) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		alone := 0
		for _, n := range d.nodes {
			if len(n.w.Neighbors()) == 0 {
				alone++
			}
		}
		if alone == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %d of %d nodes still have no neighbour: %w", alone, len(d.nodes), ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops the chatter, makes every node leave the mesh, then closes the signaling service,
// which drains its clients (the browser tabs are told the server is going away) and closes the
// HTTP server and the relay. It is safe to call more than once.
func (d *Demo) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.stop != nil {
		d.stop()
	}
	var errs []error
	var mu sync.Mutex
	var nwg sync.WaitGroup
	for _, n := range d.nodes {
		nwg.Add(1)
		go func() {
			defer nwg.Done()
			if err := n.w.Close(); err != nil && !errors.Is(err, node.ErrClosed) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("closing node %d: %w", n.index+1, err))
				mu.Unlock()
			}
		}()
	}
	nwg.Wait()
	d.wg.Wait()
	if err := d.svc.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// Message is one broadcast a Go node delivered.
type Message struct {
	// ID is the broadcast's ID in hex.
	ID string
	// Origin is the node ID of its author; Hops the links it crossed (0: the node's own).
	Origin string
	Hops   int
	// Text is the chat text, or the raw payload quoted when it is not a chat message.
	Text string
	// Chat reports whether the payload was a chat message.
	Chat bool
	// Latency is the time from its author's send to this delivery; -1 when unknown.
	Latency time.Duration
	// SentAt is when its origin broadcast it (the broadcast's signed time).
	SentAt time.Time
	// History is set when the node got it by catch-up (it was sent while the node was away
	// or not yet joined) rather than live.
	History bool
	// ReceivedAt is when the node delivered it.
	ReceivedAt time.Time
}

// Direct is one direct message a Go node received (node.Send from another peer).
type Direct struct {
	// From is the sender's node ID, as its signature proved it.
	From string
	// Text is the chat text, or the raw payload quoted when it is not a chat message.
	Text string
	// Chat reports whether the payload was a chat message.
	Chat bool
	// SentAt is the sender's signed send time; ReceivedAt when the node received it.
	SentAt, ReceivedAt time.Time
	// Latency is ReceivedAt - SentAt, by the two peers' clocks (one machine: one clock).
	Latency time.Duration
}

// Node is one Go node of the demo.
type Node struct {
	w       *rtcnode.Node
	index   int
	history int

	mu       sync.Mutex
	messages []Message
	directs  []Direct
	// changed is closed and replaced whenever a message or a direct message is recorded.
	changed chan struct{}
}

// ID is the node's ID.
func (n *Node) ID() string { return n.w.ID() }

// WebRTC is the node itself, for its neighbours, views and stats. Its Deliveries and Events
// are read by the demo; read Messages instead.
func (n *Node) WebRTC() *rtcnode.Node { return n.w }

// Say broadcasts text as a chat message stamped with the current time and returns the
// broadcast's ID in hex.
func (n *Node) Say(text string) (string, error) {
	payload, err := chat.Encode(chat.Message{Text: text, SentAt: time.Now()})
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	id, err := n.w.Broadcast(payload)
	if err != nil {
		return "", fmt.Errorf("demo: broadcast: %w", err)
	}
	return hex.EncodeToString(id[:]), nil
}

// Tell sends text to the peer peerID alone, as a chat message stamped with the current time
// (node.Send: over the link to it, or through the overlay). node.ErrNoRoute says the node
// knows no way to it.
func (n *Node) Tell(peerID, text string) error {
	payload, err := chat.Encode(chat.Message{Text: text, SentAt: time.Now()})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := n.w.Send(peerID, payload); err != nil {
		return fmt.Errorf("demo: node %d: direct message to %s: %w", n.index+1, short(peerID), err)
	}
	return nil
}

// Directs returns the direct messages the node received, oldest first (at most
// Config.History).
func (n *Node) Directs() []Direct {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Direct(nil), n.directs...)
}

// WaitDirect waits until the node received a direct message whose text is text, or ctx ends.
func (n *Node) WaitDirect(ctx context.Context, text string) (Direct, error) {
	m, err := waitFor(ctx, n, func() (Direct, bool) { return firstWithText(n.directs, text, func(m Direct) string { return m.Text }) })
	if err != nil {
		return Direct{}, fmt.Errorf("demo: node %d did not receive the direct message %q: %w", n.index+1, text, err)
	}
	return m, nil
}

// waitFor waits until found, called with n.mu held, finds what the caller waits for (it is
// asked again each time the node records something), or ctx ends.
func waitFor[T any](ctx context.Context, n *Node, found func() (T, bool)) (T, error) {
	for {
		n.mu.Lock()
		ch := n.changed
		v, ok := found()
		n.mu.Unlock()
		if ok {
			return v, nil
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		case <-ch:
		}
	}
}

// firstWithText returns the first of list whose text is text.
func firstWithText[T any](list []T, text string, textOf func(T) string) (T, bool) {
	for _, m := range list {
		if textOf(m) == text {
			return m, true
		}
	}
	var zero T
	return zero, false
}

// AnswerText is what a Go node answers a direct message text with (Config.Answer).
func AnswerText(nodeIndex int, text string) string {
	const quote = 200 // bytes of the message quoted back, so the answer stays a chat message
	if len(text) > quote {
		text = strings.ToValidUTF8(text[:quote], "") + "…"
	}
	return fmt.Sprintf("Go node %d got your direct message “%s”", nodeIndex+1, text)
}

// Messages returns the messages the node delivered, oldest first (at most Config.History).
func (n *Node) Messages() []Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Message(nil), n.messages...)
}

// WaitMessage waits until the node delivered a message whose text is text, or ctx ends.
func (n *Node) WaitMessage(ctx context.Context, text string) (Message, error) {
	m, err := waitFor(ctx, n, func() (Message, bool) {
		return firstWithText(n.messages, text, func(m Message) string { return m.Text })
	})
	if err != nil {
		return Message{}, fmt.Errorf("demo: node %d did not deliver %q: %w", n.index+1, text, err)
	}
	return m, nil
}

func (n *Node) drainDeliveries(log zerolog.Logger) {
	for dl := range n.w.Deliveries() {
		m := Message{ID: hex.EncodeToString(dl.ID[:]), Origin: dl.Origin, Hops: dl.Hops, ReceivedAt: dl.ReceivedAt, Latency: -1,
			SentAt: dl.SentAt, History: dl.History}
		if c, err := chat.Decode(dl.Data); err == nil {
			m.Text, m.Chat = c.Text, true
			if lat, ok := chat.Latency(c, dl.ReceivedAt); ok {
				m.Latency = lat
			}
		} else {
			m.Text = fmt.Sprintf("%q", dl.Data)
		}
		log.Debug().Str("origin", short(m.Origin)).Int("hops", m.Hops).Dur("latency", m.Latency).Bool("history", m.History).Str("text", m.Text).Msg("delivered")
		n.mu.Lock()
		n.messages = keepLast(n.messages, m, n.history)
		n.notifyLocked()
		n.mu.Unlock()
	}
}

// keepLast appends v to list and keeps only its last max entries.
func keepLast[T any](list []T, v T, max int) []T {
	list = append(list, v)
	if over := len(list) - max; over > 0 {
		list = append(list[:0], list[over:]...)
	}
	return list
}

// notifyLocked wakes every waitFor of the node; n.mu must be held.
func (n *Node) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// drainDirect records the node's direct messages and answers those answer allows.
func (n *Node) drainDirect(log zerolog.Logger, answer func(peer string) bool) {
	for dm := range n.w.DirectMessages() {
		m := Direct{From: dm.From, SentAt: dm.SentAt, ReceivedAt: dm.ReceivedAt, Latency: dm.ReceivedAt.Sub(dm.SentAt)}
		if c, err := chat.Decode(dm.Data); err == nil {
			m.Text, m.Chat = c.Text, true
		} else {
			m.Text = fmt.Sprintf("%q", dm.Data)
		}
		log.Debug().Str("from", short(m.From)).Dur("latency", m.Latency).Str("text", m.Text).Msg("direct message")
		n.mu.Lock()
		n.directs = keepLast(n.directs, m, n.history)
		n.notifyLocked()
		n.mu.Unlock()
		if m.Chat && answer(m.From) {
			if err := n.Tell(m.From, AnswerText(n.index, m.Text)); err != nil {
				log.Debug().Err(err).Msg("answering a direct message")
			}
		}
	}
}

func (n *Node) drainEvents(log zerolog.Logger) {
	for ev := range n.w.Events() {
		log.Debug().Str("event", ev.Type.String()).Str("peer", short(ev.Peer)).Str("path", string(ev.Path)).Str("reason", ev.Reason).Msg("neighbour")
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Describe writes a few lines telling a person what runs and what to do with it.
func (d *Demo) Describe(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "rtcmesh demo: %d Go nodes, the signaling server", len(d.nodes))
	if d.svc.Relay() != nil {
		b.WriteString(" and a TURN relay")
	}
	fmt.Fprintf(&b, " are running on this machine (network %q).\n\n", d.cfg.Network)
	fmt.Fprintf(&b, "  Open %s\n\n", d.URL())
	fmt.Fprintf(&b, "The page and signaling listen on %s", d.Addr())
	if r := d.svc.RelayURLs(); len(r) > 0 {
		fmt.Fprintf(&b, ", the relay on %s", strings.Join(r, " "))
	}
	nets := make([]string, len(d.networks))
	for i, p := range d.networks {
		nets[i] = p.String()
	}
	fmt.Fprintf(&b, ";\nthe Go nodes gather ICE candidates on %s (this machine only).\n\n", strings.Join(nets, ", "))
	b.WriteString("in a browser: the tab becomes a full peer of the mesh, running the same Go\n")
	b.WriteString("membership and gossip code compiled to WebAssembly. The page draws the overlay as the tab\n")
	b.WriteString("sees it and lets you broadcast, or send a direct message to one peer (click it);\n")
	b.WriteString("open it in several tabs to watch them talk.\n")
	if d.cfg.Answer {
		b.WriteString("A Go node answers every direct message a page sends it.\n")
	}
	if d.cfg.Chatter > 0 {
		fmt.Fprintf(&b, "A random Go node says something every %v.\n", d.cfg.Chatter)
	}
	if w := d.cfg.Node.Gossip.CatchUpWindow; w > 0 {
		fmt.Fprintf(&b, "A tab opened late catches up on the last %v of messages, shown as history.\n", w)
	}
	b.WriteString("Press Ctrl-C to stop.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
