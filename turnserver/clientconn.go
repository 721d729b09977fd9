package turnserver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
)

// The client-facing sockets (the UDP listener socket and each TCP or TLS
// connection) are wrapped so the server sees every message pion/turn sends
// to a client. That is where two things happen that pion/turn has no hook
// for:
//
//   - Peer-to-client bandwidth: relayed peer datagrams leave as ChannelData
//     or Data indications, and only datagrams from permitted peers get that
//     far, so limiting here cannot be exhausted by strangers spraying the
//     relay port.
//   - 403 for refused ChannelBind: pion/turn v5 answers a ChannelBind whose
//     peer the PermissionHandler refuses with 401 Unauthorized (its
//     CreatePermission and Connect answer 403 Forbidden). A 401 tells a
//     client its credentials are wrong, so browsers retry or give up on the
//     server. The response is rewritten to 403 and re-signed.

var (
	dataIndication = stun.NewType(stun.MethodData, stun.ClassIndication).Value()
)

const (
	stunHeaderSize        = 20
	channelDataHeaderSize = 4
)

// tupleKey identifies an allocation by its client-facing 5-tuple without
// allocating.
type tupleKey struct {
	tcp    bool
	client netip.AddrPort
	local  netip.AddrPort
}

func keyOf(client, local net.Addr) (tupleKey, bool) {
	switch c := client.(type) {
	case *net.UDPAddr:
		l, ok := local.(*net.UDPAddr)
		if !ok {
			return tupleKey{}, false
		}
		return tupleKey{client: unmapPort(c.AddrPort()), local: unmapPort(l.AddrPort())}, true
	case *net.TCPAddr:
		l, ok := local.(*net.TCPAddr)
		if !ok {
			return tupleKey{}, false
		}
		return tupleKey{tcp: true, client: unmapPort(c.AddrPort()), local: unmapPort(l.AddrPort())}, true
	default:
		return tupleKey{}, false
	}
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// allocationEntry is the server's own state for one pion/turn allocation.
type allocationEntry struct {
	user      string
	fromPeers *tokenBucket // nil when bandwidth is unlimited
	// auth is the credentials and key of the latest authenticated request on
	// this 5-tuple, kept so that an error response can be re-signed with the
	// same key (see rewriteErrorResponse), and so that the allocation's
	// requests are still accepted under that key after its secret is removed
	// (see inspectRequest). Guarded by Server.allocMu.
	auth authRecord
}

// egress inspects a message pion/turn is about to send to client from local.
// It returns the bytes to send instead, or send=false to drop the message.
func (s *Server) egress(p []byte, client, local net.Addr) (out []byte, send bool) {
	switch {
	case len(p) >= channelDataHeaderSize && p[0] >= 0x40 && p[0] <= 0x7f:
		return p, s.relayedFromPeer(int(binary.BigEndian.Uint16(p[2:4])), client, local)
	case len(p) < stunHeaderSize:
		return p, true
	}
	typ := binary.BigEndian.Uint16(p[0:2])
	switch {
	case typ == dataIndication:
		msg := &stun.Message{Raw: p}
		if err := msg.Decode(); err != nil {
			return p, true
		}
		data, err := msg.Get(stun.AttrData)
		if err != nil {
			return p, true
		}
		return p, s.relayedFromPeer(len(data), client, local)
	case typ&classMask == errorResponseClass:
		return s.rewriteErrorResponse(p, client, local), true
	case typ == allocateSuccess:
		s.forgetPendingAuth(client, local)
	}
	return p, true
}

// The class bits of a STUN message type (RFC 8489 section 5).
const (
	classMask          = 0x0110
	errorResponseClass = 0x0110
)

var allocateSuccess = stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse).Value()

// relayedFromPeer accounts n payload bytes relayed from a peer to client and
// reports whether the allocation's bandwidth allows them.
func (s *Server) relayedFromPeer(n int, client, local net.Addr) bool {
	if key, ok := keyOf(client, local); ok {
		s.allocMu.RLock()
		entry := s.allocs[key]
		s.allocMu.RUnlock()
		if entry != nil && entry.fromPeers != nil && !entry.fromPeers.allow(n, s.cfg.Now()) {
			s.counters.bandwidthDrops.Add(1)
			return false
		}
	}
	s.counters.bytesFromPeers.Add(uint64(n))
	s.counters.packetsFromPeers.Add(1)
	return true
}

// rewriteErrorResponse fixes three things about pion/turn's error responses
// on their way to the client:
//
//   - pion/turn sends every ERROR-CODE without a reason phrase; RFC 8489 asks
//     for one, and an operator reading a client's log needs it. The standard
//     phrase is added.
//   - pion/turn answers a ChannelBind whose peer the PermissionHandler refuses
//     with 401 Unauthorized (its CreatePermission and Connect answer 403). A
//     401 tells a client its credentials are wrong, so browsers retry or give
//     up on the server. pion/turn's only ChannelBind 401 that carries
//     MESSAGE-INTEGRITY is that refusal (a failed authentication carries
//     NONCE and REALM instead and is left alone); it becomes 403.
//   - An Allocate for an address family this relay does not serve fails in
//     the relay generator, which pion/turn answers 508 Insufficient
//     Capacity; RFC 8656 asks for 440 Address Family not Supported.
//
// A signed response is re-signed with the key of the request's credentials,
// recorded when pion/turn reported the request authenticated (onAuth); the
// original integrity is verified with that key first, so only a response
// signed for exactly those credentials is changed. Without a recorded key a
// signed response is left as it is.
func (s *Server) rewriteErrorResponse(p []byte, client, local net.Addr) []byte {
	msg := &stun.Message{Raw: append([]byte(nil), p...)}
	if err := msg.Decode(); err != nil {
		return p
	}
	var code stun.ErrorCodeAttribute
	if err := code.GetFrom(msg); err != nil {
		return p
	}
	signed := msg.Contains(stun.AttrMessageIntegrity)
	var auth authRecord
	if !signed && msg.Type.Method == stun.MethodAllocate {
		s.forgetPendingAuth(client, local)
	}
	if signed {
		auth = s.recordedAuth(client, local, msg.Type.Method == stun.MethodAllocate)
	}
	newCode := code.Code
	switch {
	case msg.Type.Method == stun.MethodChannelBind && code.Code == stun.CodeUnauthorized && signed && !msg.Contains(stun.AttrNonce):
		newCode = stun.CodeForbidden
	case msg.Type.Method == stun.MethodAllocate && code.Code == stun.CodeInsufficientCapacity && auth.username != "":
		if s.takeFamilyRefusal(auth.username) {
			newCode = stun.CodeAddrFamilyNotSupported
		}
	}
	if newCode == code.Code && len(code.Reason) > 0 {
		return p
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(msg.TransactionID), msg.Type}
	for _, a := range msg.Attributes {
		switch a.Type {
		case stun.AttrErrorCode, stun.AttrMessageIntegrity, stun.AttrFingerprint:
		default:
			setters = append(setters, a)
		}
	}
	setters = append(setters, &stun.ErrorCodeAttribute{Code: newCode, Reason: reasonPhrase(newCode, code.Reason, newCode != code.Code)})
	if signed {
		if auth.key == nil {
			s.log.Debug().Stringer("client", client).Int("code", int(code.Code)).
				Msg("turnserver: signed error response without recorded credentials left as it is")
			return p
		}
		integrity := stun.MessageIntegrity(auth.key)
		if err := integrity.Check(msg); err != nil {
			s.log.Warn().Err(err).Stringer("client", client).Msg("turnserver: error response signed with other credentials left as it is")
			return p
		}
		setters = append(setters, integrity)
	}
	out, err := stun.Build(setters...)
	if err != nil {
		s.log.Error().Err(err).Msg("turnserver: rebuilding an error response")
		return p
	}
	return out.Raw
}

// reasonPhrase is the reason phrase to send with code: the original one
// unless it is empty or the code changed, else the standard phrase.
func reasonPhrase(code stun.ErrorCode, original []byte, changed bool) []byte {
	if len(original) > 0 && !changed {
		return original
	}
	if r, ok := reasonPhrases[code]; ok {
		return []byte(r)
	}
	return []byte("Error")
}

// reasonPhrases are the RFC 8489, 8656 and 6062 phrases for the codes pion/turn
// sends.
var reasonPhrases = map[stun.ErrorCode]string{
	stun.CodeTryAlternate:           "Try Alternate",
	stun.CodeBadRequest:             "Bad Request",
	stun.CodeUnauthorized:           "Unauthorized",
	stun.CodeForbidden:              "Forbidden",
	stun.CodeUnknownAttribute:       "Unknown Attribute",
	stun.CodeAllocMismatch:          "Allocation Mismatch",
	stun.CodeStaleNonce:             "Stale Nonce",
	stun.CodeAddrFamilyNotSupported: "Address Family not Supported",
	stun.CodeWrongCredentials:       "Wrong Credentials",
	stun.CodeUnsupportedTransProto:  "Unsupported Transport Protocol",
	stun.CodePeerAddrFamilyMismatch: "Peer Address Family Mismatch",
	stun.CodeConnAlreadyExists:      "Connection Already Exists",
	stun.CodeConnTimeoutOrFailure:   "Connection Timeout or Failure",
	stun.CodeAllocQuotaReached:      "Allocation Quota Reached",
	stun.CodeRoleConflict:           "Role Conflict",
	stun.CodeServerError:            "Server Error",
	stun.CodeInsufficientCapacity:   "Insufficient Capacity",
}

// clientPacketConn wraps the UDP listener socket.
type clientPacketConn struct {
	net.PacketConn
	s   *Server
	raw *rawUDP // nil where raw sends are not available
}

// ReadFrom reads a client's datagram and checks a request's MESSAGE-INTEGRITY
// before pion/turn handles it (see inspectRequest). ChannelData on a channel the server knows
// is relayed here instead (see Server.relayFromClient), and the next datagram is read; a
// datagram that fills p, which pion/turn drops as possibly truncated, is left to pion/turn.
func (c *clientPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := readPacket(c.PacketConn, c.raw, p)
		if err == nil && addr != nil && n > 0 && n < len(p) && p[0]&0xc0 == 0x40 && c.s.relayFromClient(p[:n], addr, c.LocalAddr()) {
			continue
		}
		if err == nil && n > 0 && p[0]&0xc0 == 0 {
			c.s.inspectRequest(p[:n], addr, c.LocalAddr())
		}
		return n, addr, err //nolint:wrapcheck // pion/turn's read loop only needs to see the error
	}
}

func (c *clientPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	out, send := c.s.egress(p, addr, c.LocalAddr())
	if !send {
		return len(p), nil
	}
	sent, err := false, error(nil)
	if ua, ok := addr.(*net.UDPAddr); ok && c.raw != nil {
		_, sent, err = c.raw.writeTo(out, ua.AddrPort())
	}
	if !sent {
		_, err = c.PacketConn.WriteTo(out, addr)
	}
	if err != nil {
		return 0, fmt.Errorf("write to client %v: %w", addr, err)
	}
	return len(p), nil
}

// clientListener wraps the TCP or TLS listener so that every accepted
// connection is a clientStreamConn.
type clientListener struct {
	net.Listener
	s                *Server
	tlsConfig        *tls.Config // nil for plain TCP
	handshakeTimeout time.Duration
}

func (l *clientListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok && l.s.cfg.TCPSendBuffer > 0 {
		if err := tcp.SetWriteBuffer(l.s.cfg.TCPSendBuffer); err != nil {
			l.s.log.Debug().Err(err).Stringer("client", conn.RemoteAddr()).Msg("turnserver: setting the TCP send buffer failed")
		}
	}
	wrapped := &clientStreamConn{Conn: conn, s: l.s, framer: streamFramer{size: l.s.cfg.StreamReadBuffer}}
	if l.tlsConfig != nil {
		tlsConn := tls.Server(conn, l.tlsConfig)
		wrapped.Conn = tlsConn
		wrapped.tls = tlsConn
		wrapped.handshakeTimeout = l.handshakeTimeout
	}
	wrapped.out = newStreamWriter(wrapped.Conn, l.s.cfg.TCPQueueSize)
	go wrapped.out.run()
	l.s.addStream(wrapped)
	return wrapped, nil
}

// clientStreamConn wraps one TCP or TLS client connection. pion/turn frames
// the stream itself and writes each message with a single Write, from two
// goroutines: the connection's read loop (responses) and the allocation's
// relay socket read loop (peer data). Writes go through out, so that neither
// ever waits for a client that reads slowly.
type clientStreamConn struct {
	net.Conn
	s   *Server
	out *streamWriter

	// tls is set for TLS connections. The handshake runs on the first Read,
	// in pion/turn's goroutine for this connection, bounded by
	// handshakeTimeout so a silent client cannot hold it forever.
	tls              *tls.Conn
	handshakeTimeout time.Duration
	handshakeOnce    sync.Once
	handshakeErr     error

	framer streamFramer // used only by pion/turn's read loop for this connection

	// relay is the relay socket of the connection's allocation once it has a channel: where
	// its ChannelData goes (see relayFromClient).
	relay atomic.Pointer[relayConn]
}

func (c *clientStreamConn) Read(p []byte) (int, error) {
	if c.tls != nil {
		c.handshakeOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.handshakeTimeout)
			defer cancel()
			if err := c.tls.HandshakeContext(ctx); err != nil {
				c.handshakeErr = fmt.Errorf("TLS handshake with %v: %w", c.RemoteAddr(), err)
				c.s.log.Debug().Err(err).Stringer("client", c.RemoteAddr()).Msg("turnserver: TLS handshake failed")
			}
		})
		if c.handshakeErr != nil {
			return 0, c.handshakeErr
		}
	}
	return c.framer.read(c.Conn.Read, p, func(frame []byte) bool {
		// A frame that fills p pion/turn drops as possibly truncated: left to it.
		if frame[0]&0xc0 == 0x40 && len(frame) < len(p) {
			return c.relayFromClient(frame)
		}
		c.s.inspectRequest(frame, c.RemoteAddr(), c.LocalAddr())
		return false
	})
}

// Write queues a message for the client. Peer data (ChannelData and Data
// indications) that does not fit in the queue is dropped, as a congested UDP
// path would drop it, instead of stalling the relay socket behind the client:
// while the relay waits, its UDP receive buffer overflows and everything is
// lost, for every peer. Other messages (responses) wait for room.
func (c *clientStreamConn) Write(p []byte) (int, error) {
	peerData := isPeerData(p)
	if peerData && !c.out.hasRoom(len(p)) {
		c.s.counters.tcpQueueDrops.Add(1)
		return len(p), nil
	}
	out, send := c.s.egress(p, c.RemoteAddr(), c.LocalAddr())
	if !send {
		return len(p), nil
	}
	dropped, err := c.out.write(out, peerData)
	if dropped {
		c.s.counters.tcpQueueDrops.Add(1)
	}
	if err != nil {
		if peerData {
			// The connection is gone; its read loop is about to delete the
			// allocation. Failing here would log every datagram still arriving.
			return len(p), nil
		}
		return 0, fmt.Errorf("write to client %v: %w", c.RemoteAddr(), err)
	}
	return len(p), nil
}

// Close stops the writer and closes the connection.
func (c *clientStreamConn) Close() error {
	c.s.removeStream(c)
	c.out.close()
	return c.Conn.Close()
}

// isPeerData reports whether p, a message pion/turn sends to a client, is a
// peer's datagram: ChannelData or a Data indication.
func isPeerData(p []byte) bool {
	if len(p) >= channelDataHeaderSize && p[0] >= 0x40 && p[0] <= 0x7f {
		return true
	}
	return len(p) >= stunHeaderSize && binary.BigEndian.Uint16(p[0:2]) == dataIndication
}

// streamWriter sends one stream connection's messages. A message is written at once, by the
// goroutine that sends it, when nothing is waiting and the kernel takes it without blocking
// (plain TCP on Linux; see streamSender): most messages cost one system call and no goroutine
// handoff. Otherwise it is queued, and the writer's own goroutine sends what has gathered, so a
// client that reads slowly never blocks the sender: not the relay socket's read loop, which
// would drop every peer's datagrams while it waited, nor the connection's own read loop.
//
// On plain TCP every message, at once or from the queue, is sent with its own call and
// MSG_EOR, so the kernel never appends the next message to the segment that carries it: every
// segment (of a message no larger than the path's MSS) ends where a message ends. Without it, a
// client whose window is full gets segments cut anywhere, and turnutils_uclient stalls for good:
// it peeks for a whole message and keeps a fixed 128 KiB receive buffer, and a message's first
// part, left at the end of a receive buffer the kernel has coalesced out of many segments, keeps
// the whole buffer's memory charged, so the window stays shut and the message's rest never
// comes (seen in coturnbench with ss -tm: 384 bytes queued against 128,840 bytes of receive
// memory; coturn, which writes through a coalescing buffer, stalls the same way in many of its
// runs). For TLS the queue is written with one Write, and so one record, per batch.
type streamWriter struct {
	conn  net.Conn
	raw   *streamSender // nil when messages cannot be written at once (TLS, other OSes)
	limit int           // bytes that may wait; Config.TCPQueueSize

	mu      sync.Mutex
	cond    sync.Cond // signalled when messages arrive, room appears or the writer stops
	pending []byte
	ends    []int // where each message in pending ends
	writing bool  // the goroutine is writing a batch taken from pending
	err     error // set when a write fails or the connection closes; the writer then stops
}

func newStreamWriter(conn net.Conn, limit int) *streamWriter {
	w := &streamWriter{conn: conn, limit: limit, raw: newStreamSender(conn)}
	w.cond.L = &w.mu
	return w
}

// hasRoom reports whether n more bytes fit in the queue now. An empty queue
// always has room, so a message larger than the limit is not refused forever.
func (w *streamWriter) hasRoom(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) == 0 || len(w.pending)+n <= w.limit
}

// write sends p at once if it can, else queues a copy of it. A droppable message that no
// longer fits (the caller checked hasRoom a moment ago) is dropped; others wait for room.
func (w *streamWriter) write(p []byte, droppable bool) (dropped bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.raw != nil && len(w.pending) == 0 && !w.writing && len(p) > 0 {
		// Under the lock, so that nothing else is written in between; the call never waits.
		n, err := w.raw.send(p)
		if err != nil {
			w.failLocked(err)
			return false, err
		}
		if n == len(p) {
			return false, nil
		}
		if n > 0 { // the rest of a message already begun must follow it
			p, droppable = p[n:], false
		}
	}
	for w.err == nil && len(w.pending) > 0 && len(w.pending)+len(p) > w.limit {
		if droppable {
			return true, nil
		}
		w.cond.Wait()
	}
	if w.err != nil {
		return false, w.err
	}
	w.pending = append(w.pending, p...)
	w.ends = append(w.ends, len(w.pending))
	w.cond.Broadcast()
	return false, nil
}

// failLocked records the first write error and wakes everyone; the writer then closes the
// connection, whose read loop deletes the allocation. w.mu is held.
func (w *streamWriter) failLocked(err error) {
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
}

// run writes batches until a write fails or close is called.
func (w *streamWriter) run() {
	var spare []byte
	var spareEnds []int
	for {
		w.mu.Lock()
		for w.err == nil && len(w.pending) == 0 {
			w.cond.Wait()
		}
		if w.err != nil {
			w.mu.Unlock()
			_ = w.conn.Close() // a failed send: the read loop sees it and deletes the allocation
			return
		}
		batch, ends := w.pending, w.ends
		w.pending, w.ends = spare[:0], spareEnds[:0]
		w.writing = true
		w.cond.Broadcast() // room for waiting writers
		w.mu.Unlock()

		var err error
		if w.raw != nil {
			err = w.raw.sendAll(batch, ends)
		} else {
			_, err = w.conn.Write(batch)
		}
		spare, spareEnds = batch, ends
		w.mu.Lock()
		w.writing = false
		if err != nil {
			w.failLocked(err)
		}
		w.mu.Unlock()
	}
}

// close stops the writer; queued messages are dropped.
func (w *streamWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.cond.Broadcast()
}

// readPacket reads a datagram from conn, raw when it can.
func readPacket(conn net.PacketConn, raw *rawUDP, p []byte) (int, net.Addr, error) {
	if raw != nil {
		if n, addr, ok, err := raw.readFrom(p); ok {
			if err != nil || addr == nil {
				return n, nil, err
			}
			return n, addr, nil
		}
	}
	return conn.ReadFrom(p) //nolint:wrapcheck // the callers' read loops only need to see the error
}
