// Package signalserver is rtcmesh's signaling server: an http.Handler that accepts WebSocket
// connections (mounted by the binary at /ws), challenges each with a fresh nonce, admits a
// node into a network only after its hello proved possession of the identity key its ID is
// derived from, hands it ICE servers and a few random live contacts, and relays offers,
// answers and candidates between nodes of the same network with the proven sender stamped by
// the server.
//
// The server is only for meeting: once nodes are linked, the overlay does not need it. Every
// limit is a Config field and is reported to the client as a signaling.ErrorCode before the
// connection is closed (see package signaling for the protocol).
//
// Concurrency: each connection has a reader (the ServeHTTP goroutine) and a writer goroutine
// that owns all writes to the socket. Network membership lives in one mutex-guarded hub; relays
// only look up the target under the lock and then hand the frame to the target's bounded send
// queue, so a slow reader can never stall the sender or the hub.
package signalserver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/signaling"
	"github.com/rtcmesh/rtcmesh/signaling/internal/tokenbucket"
)

// ErrServerClosed is returned by Shutdown when called a second time.
var ErrServerClosed = errors.New("signalserver: server closed")

// Server is the signaling hub. It is an http.Handler; create it with New.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	upgrader websocket.Upgrader
	limits   signaling.Limits

	// queued is the bytes of frames queued for all connections (MaxQueuedBytes), relayed
	// counts relays handed to a target's queue, and noVictimUntil (Unix nanoseconds) holds off
	// the next search for a connection to evict after one that found none.
	queued         atomic.Int64
	relayed        atomic.Uint64
	clusterRelayed atomic.Uint64
	noVictimUntil  atomic.Int64

	mu       sync.Mutex
	closing  bool
	active   int // ServeHTTP calls in progress; Shutdown waits for zero
	conns    map[*conn]struct{}
	networks map[string]*network
	sources  *sources
	rng      *rand.Rand // guarded by mu
	stats    Stats      // counters, guarded by mu; gauges are computed in Stats()
	idle     chan struct{}
	idleDone bool
}

// network is one room: the members by ID, and the same members in a slice so random samples
// cost O(k) instead of O(n).
type network struct {
	name    string
	members map[string]*conn
	order   []*conn
}

// Stats is a snapshot of the server's counters, for metrics.
type Stats struct {
	// Connections is the number of open WebSocket connections, including those not yet
	// past hello.
	Connections int
	// Peers is the number of connections that completed hello.
	Peers int
	// Networks is the number of non-empty networks.
	Networks int
	// Welcomed counts hellos accepted since start.
	Welcomed uint64
	// MessagesRelayed counts offers, answers and candidates handed to a target's queue, or
	// to the Cluster for a target on another instance.
	MessagesRelayed uint64
	// ClusterRelayed counts the relays of MessagesRelayed handed to the Cluster (0 without
	// one).
	ClusterRelayed uint64
	// Rejections counts errors sent (fatal and not, including connections refused at once for
	// server_full, source_full and source_rate_limited) and slow-consumer disconnects (reply
	// queue overflow, a write stalled beyond WriteTimeout, or eviction for MaxQueuedBytes), by
	// code.
	Rejections map[signaling.ErrorCode]uint64
	// QueuedBytes is the bytes of frames queued for all connections (see MaxQueuedBytes).
	QueuedBytes int64
	// Sources is the number of source addresses the server tracks for its per-source limits.
	Sources int
	// MaxConnections is the connection limit in force: Config.MaxConnections, or lower if
	// the open-file limit required.
	MaxConnections int
}

// New validates cfg and returns a server.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	for _, n := range []int{cfg.ConnectionsPerSourcePerMinute, cfg.HellosPerSourcePerMinute} {
		if _, err := perMinute(n, time.Time{}); err != nil {
			return nil, fmt.Errorf("signalserver: invalid config: %w", err)
		}
	}
	if cfg.MaxConnections, err = capConnections(cfg); err != nil {
		return nil, err
	}
	rng := cfg.Rand
	if rng == nil {
		var seed [16]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("signalserver: seeding random source: %w", err)
		}
		rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Logger,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			// The origin is checked after the upgrade so the browser can be told why it
			// is refused; see checkOrigin.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		limits:   signaling.Limits{MaxFrameSize: cfg.MaxFrameSize, Rate: cfg.RateLimit, Burst: cfg.RateBurst},
		conns:    make(map[*conn]struct{}),
		networks: make(map[string]*network),
		sources:  newSources(cfg.MaxConnections),
		rng:      rng,
		idle:     make(chan struct{}),
		stats:    Stats{Rejections: make(map[signaling.ErrorCode]uint64)},
	}
	if cfg.Cluster != nil {
		if err := cfg.Cluster.Attach(clusterHost{s}); err != nil {
			return nil, fmt.Errorf("signalserver: attaching the cluster: %w", err)
		}
	}
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Rejections = make(map[signaling.ErrorCode]uint64, len(s.stats.Rejections))
	for k, v := range s.stats.Rejections {
		out.Rejections[k] = v
	}
	out.Connections = len(s.conns)
	out.Networks = len(s.networks)
	out.Sources = len(s.sources.byKey)
	out.MaxConnections = s.cfg.MaxConnections
	out.MessagesRelayed = s.relayed.Load()
	out.ClusterRelayed = s.clusterRelayed.Load()
	out.QueuedBytes = s.queued.Load()
	for _, n := range s.networks {
		out.Peers += len(n.members)
	}
	return out
}

// ServeHTTP upgrades the request to a WebSocket and serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.active++
	}
	s.mu.Unlock()
	if closing {
		http.Error(w, "signaling server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer func() {
		s.mu.Lock()
		s.active--
		s.signalIdleLocked()
		s.mu.Unlock()
	}()
	originOK := s.checkOrigin(r)
	key := sourceKey(r, s.cfg.TrustedProxies)
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		s.log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("websocket upgrade failed")
		return
	}
	log := s.log.With().Str("remote", r.RemoteAddr).Str("source", sourceName(key)).Logger()
	now := s.cfg.Now()
	bucket, err := tokenbucket.New(s.cfg.RateLimit, s.cfg.RateBurst, now)
	if err != nil { // unreachable: the config was validated
		ws.Close()
		s.log.Error().Err(err).Msg("rate limiter")
		return
	}
	c := &conn{
		srv:        s,
		ws:         ws,
		log:        log,
		wake:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		bucket:     bucket,
		corr:       correspondents{limit: s.cfg.MaxCorrespondents},
	}

	// Admission: the source's limits first, so that one source filling the server is told
	// source_full while others are told server_full. A refused connection is answered and
	// closed at once, without goroutines or a place in the table, so refusing is cheap.
	var refuse signaling.ErrorCode
	var why string
	s.mu.Lock()
	closing = s.closing
	if !closing {
		src := s.sources.get(key, &s.cfg, now)
		switch {
		case src.open >= s.cfg.MaxConnectionsPerSource:
			refuse, why = signaling.CodeSourceFull, fmt.Sprintf("your address %s holds its maximum of %d connections", sourceName(key), s.cfg.MaxConnectionsPerSource)
		case len(s.conns) >= s.cfg.MaxConnections:
			refuse, why = signaling.CodeServerFull, fmt.Sprintf("server holds its maximum of %d connections", s.cfg.MaxConnections)
		case !src.connects.Allow(now):
			refuse, why = signaling.CodeSourceRateLimited, fmt.Sprintf("your address %s opened more than %d connections in a minute", sourceName(key), s.cfg.ConnectionsPerSourcePerMinute)
		default:
			s.sources.opened(src)
			c.src = src
			// Every admitted connection is tracked until its goroutines end, rejected
			// ones too, so Shutdown waits for them and Stats counts them.
			s.conns[c] = struct{}{}
		}
		if refuse != "" {
			s.stats.Rejections[refuse]++
		}
	}
	s.mu.Unlock()
	switch {
	case closing:
		s.closeNow(ws, &signaling.Bye{Reason: "server shutting down"}, websocket.CloseGoingAway, "shutting down")
		return
	case refuse != "":
		log.Debug().Str("code", string(refuse)).Str("reason", why).Msg("connection refused")
		s.closeNow(ws, &signaling.Error{Code: refuse, Message: why, Fatal: true}, closeCodeFor(refuse), string(refuse))
		return
	}

	go c.writeLoop()
	if !originOK {
		c.fatal(signaling.CodeOriginNotAllowed, fmt.Sprintf("origin %q is not allowed", boundedString(r.Header.Get("Origin"))))
	} else {
		c.handshakeTimer = time.AfterFunc(s.cfg.HandshakeTimeout, c.handshakeExpired)
		c.challenge()
	}
	c.readLoop()
}

// closeNow sends m and a close frame on a connection that was never admitted, and drops it.
// The two frames are small enough to land in the socket's buffer at once; the client has
// sent nothing yet (it waits for the challenge), so the close is a FIN the client reads after
// them, not a reset. The write gets CloseGracePeriod at most.
func (s *Server) closeNow(ws *websocket.Conn, m signaling.Message, code int, reason string) {
	deadline := time.Now().Add(s.cfg.CloseGracePeriod)
	if b, err := signaling.Marshal(m); err == nil {
		ws.SetWriteDeadline(deadline)
		if ws.WriteMessage(websocket.TextMessage, b) == nil {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
		}
	}
	ws.Close()
}

// capConnections returns cfg.MaxConnections, lowered to what the open-file limit leaves
// after ReservedFiles (and logged so), or an error if it leaves nothing.
func capConnections(cfg Config) (int, error) {
	limit, from := cfg.FileLimit, "Config.FileLimit"
	if limit == 0 {
		limit, from = processFileLimit(), "RLIMIT_NOFILE"
	}
	if limit == 0 {
		return cfg.MaxConnections, nil
	}
	room := limit - cfg.ReservedFiles
	if room < 1 {
		return 0, fmt.Errorf("signalserver: the process may hold %d file descriptors (%s) and ReservedFiles keeps %d of them: no room for connections; raise the limit (ulimit -n)",
			limit, from, cfg.ReservedFiles)
	}
	if cfg.MaxConnections <= room {
		return cfg.MaxConnections, nil
	}
	cfg.Logger.Warn().Int("max_connections", room).Int("configured", cfg.MaxConnections).Int("file_limit", limit).
		Str("file_limit_from", from).Int("reserved_files", cfg.ReservedFiles).
		Msg("max connections lowered to fit the open-file limit; raise the limit (ulimit -n) to allow more")
	return room, nil
}

// checkOrigin allows requests without Origin (non-browsers), same-host origins, and the
// configured ones.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	norm := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" || allowed == norm {
			return true
		}
	}
	return false
}

// Shutdown sends every client a bye and a going-away close frame, refuses new connections,
// and waits until all connections have ended or ctx is done; then it drops the remaining
// ones and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closing = true
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.signalIdleLocked()
	s.mu.Unlock()

	s.log.Info().Int("connections", len(all)).Msg("signaling server shutting down")
	for _, c := range all {
		c.closeWith(&signaling.Bye{Reason: "server shutting down"}, websocket.CloseGoingAway, "shutting down", "")
	}
	select {
	case <-s.idle:
		return nil
	case <-ctx.Done():
	}
	// Out of patience: drop the sockets. Every goroutine exits promptly once its socket is
	// closed, so this wait is short.
	s.mu.Lock()
	for c := range s.conns {
		c.ws.Close()
	}
	s.mu.Unlock()
	<-s.idle
	return fmt.Errorf("signalserver: shutdown: %w", ctx.Err())
}

// Close is Shutdown with a deadline of two CloseGracePeriods plus WriteTimeout: enough for
// well-behaved clients to acknowledge the close.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.CloseGracePeriod+s.cfg.WriteTimeout)
	defer cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // the stragglers were dropped, which is what Close promises
	}
	return err
}

func (s *Server) signalIdleLocked() {
	if s.closing && s.active == 0 && !s.idleDone {
		s.idleDone = true
		close(s.idle)
	}
}

// allowHello takes one of c's source's hellos for this minute, if it has one left.
func (s *Server) allowHello(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.src.hellos.Allow(s.cfg.Now())
}

func (s *Server) countRejection(code signaling.ErrorCode) {
	s.mu.Lock()
	s.stats.Rejections[code]++
	s.mu.Unlock()
}

// register admits c as the node id, proven by hello h. It returns the welcome to send, or the
// fatal error code. Only proven hellos reach it, so only the holder of id's key can replace
// a connection of id.
func (s *Server) register(c *conn, id string, h *signaling.Hello) (*signaling.Welcome, signaling.ErrorCode, string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, "", ""
	}
	n := s.networks[h.Network]
	var old *conn
	if n != nil {
		old = n.members[id]
		if old == nil && s.networkSizeLocked(h.Network, len(n.members)) >= s.cfg.MaxPeersPerNetwork {
			s.mu.Unlock()
			return nil, signaling.CodeNetworkFull, fmt.Sprintf("network %q has its maximum of %d peers", h.Network, s.cfg.MaxPeersPerNetwork)
		}
	} else {
		if s.networkSizeLocked(h.Network, 0) >= s.cfg.MaxPeersPerNetwork {
			s.mu.Unlock()
			return nil, signaling.CodeNetworkFull, fmt.Sprintf("network %q has its maximum of %d peers", h.Network, s.cfg.MaxPeersPerNetwork)
		}
		n = &network{name: h.Network, members: make(map[string]*conn)}
		s.networks[h.Network] = n
	}
	c.id, c.network, c.net = id, h.Network, n
	if old != nil {
		old.registered = false
		c.slot = old.slot
		n.order[c.slot] = c
	} else {
		c.slot = len(n.order)
		n.order = append(n.order, c)
	}
	n.members[id] = c
	c.registered = true
	if s.cfg.Cluster != nil {
		c.registeredAt = time.Now()
		s.cfg.Cluster.Joined(h.Network, id, c.registeredAt)
	}
	contacts := s.sampleAllLocked(n, s.cfg.ContactCount, c)
	s.stats.Welcomed++
	s.mu.Unlock()

	if old != nil {
		old.log.Info().Str("id", id).Msg("replaced by a newer connection that proved the same key")
		old.fatal(signaling.CodeReplaced, fmt.Sprintf("a newer connection proved your identity key (id %s): it is in use elsewhere", id))
	}
	w := &signaling.Welcome{ID: id, Contacts: contacts, Limits: s.limits, PowBits: s.cfg.PowBits}
	if s.cfg.ICEServers != nil {
		// Credentials for id are minted only here, after the proof.
		w.ICEServers = s.cfg.ICEServers(id)
	}
	return w, "", ""
}

// sampleLocked returns up to k random member IDs of n other than self, by a partial
// Fisher–Yates shuffle of n.order (whose order carries no meaning).
func (s *Server) sampleLocked(n *network, k int, self *conn) []string {
	m := len(n.order)
	want := min(k+1, m)
	out := make([]string, 0, min(k, m))
	for i := 0; i < want && len(out) < k; i++ {
		j := i + s.rng.IntN(m-i)
		n.order[i], n.order[j] = n.order[j], n.order[i]
		n.order[i].slot, n.order[j].slot = i, j
		if n.order[i] != self {
			out = append(out, n.order[i].id)
		}
	}
	return out
}

// samplePeers answers a peers request from c.
func (s *Server) samplePeers(c *conn, max int) []string {
	if max == 0 {
		max = s.cfg.ContactCount
	}
	max = min(max, s.cfg.MaxPeersReply)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.registered {
		return nil
	}
	return s.sampleAllLocked(c.net, max, c)
}

// lookupTarget finds the relay target for from and records them as correspondents.
func (s *Server) lookupTarget(from *conn, to string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !from.registered {
		return nil
	}
	target := from.net.members[to]
	if target == nil {
		return nil
	}
	from.corr.add(to)
	target.corr.add(from.id)
	return target
}

// remove forgets c once both its goroutines have ended, and tells its correspondents.
func (s *Server) remove(c *conn) {
	var notify []*conn
	var remote []string // correspondents on other instances
	s.mu.Lock()
	delete(s.conns, c)
	if c.src != nil {
		s.sources.closed(c.src, s.cfg.Now())
	}
	if c.registered {
		c.registered = false
		n := c.net
		delete(n.members, c.id)
		last := len(n.order) - 1
		n.order[c.slot] = n.order[last]
		n.order[c.slot].slot = c.slot
		n.order[last] = nil
		n.order = n.order[:last]
		if len(n.members) == 0 {
			delete(s.networks, n.name)
		}
		if s.cfg.Cluster != nil {
			s.cfg.Cluster.Left(n.name, c.id)
		}
		if !s.closing {
			for _, id := range c.corr.ids() {
				if peer := n.members[id]; peer != nil {
					notify = append(notify, peer)
				} else if s.cfg.Cluster != nil && s.cfg.Cluster.Present(n.name, id) {
					remote = append(remote, id)
				}
			}
		}
	}
	s.mu.Unlock()

	if len(notify) == 0 && len(remote) == 0 {
		return
	}
	frame, err := signaling.Marshal(&signaling.PeerLeft{ID: c.id})
	if err != nil {
		s.log.Error().Err(err).Msg("marshal peer-left")
		return
	}
	for _, peer := range notify {
		peer.enqueueRelay(frame) // a peer too busy for it learns from its link instead
	}
	for _, id := range remote {
		if err := s.cfg.Cluster.Relay(c.network, c.id, id, frame); err != nil {
			s.log.Debug().Err(err).Str("to", id).Msg("peer-left to another instance failed")
		}
	}
}

// correspondents is a bounded set of peer IDs; when full the oldest is forgotten.
// Guarded by Server.mu.
type correspondents struct {
	limit int // <= 0: disabled
	set   map[string]struct{}
	ring  []string
	next  int
}

func (c *correspondents) add(id string) {
	if c.limit <= 0 {
		return
	}
	if _, ok := c.set[id]; ok {
		return
	}
	if c.set == nil {
		c.set = make(map[string]struct{})
	}
	if len(c.ring) < c.limit {
		c.ring = append(c.ring, id)
	} else {
		delete(c.set, c.ring[c.next])
		c.ring[c.next] = id
		c.next = (c.next + 1) % c.limit
	}
	c.set[id] = struct{}{}
}

func (c *correspondents) ids() []string { return c.ring }

func boundedString(s string) string {
	const limit = 128
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
