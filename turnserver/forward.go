package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
)

// Peer-to-client forwarding on channels. pion/turn's relay read loop wraps every datagram from a
// channel-bound peer in a freshly allocated ChannelData message (a 1,204-byte buffer for a
// 1,200-byte datagram) and formats a debug line's arguments, whatever the log level: that was
// the relay's largest allocation, and its garbage collection a tenth of the CPU. relayConn's
// ReadFrom, which that loop calls, now does this part itself: a datagram from a peer with a
// channel goes to the client as ChannelData built in the relay socket's own buffer, through the
// same client socket wrapper pion/turn would write it to (clientPacketConn.WriteTo or
// clientStreamConn.Write), so bandwidth limits, accounting and TCP queueing apply exactly as
// before. Every other datagram (from a peer with only a permission, or none) is handed to
// pion/turn as before. Which peers have channels is learnt from pion/turn's OnChannelCreated and
// OnChannelDeleted events; pion/turn checks a channel-bound peer's datagram against nothing else
// (not even its permission), and neither does this.

// clientSink is the client socket wrapper an allocation's messages are written to.
type clientSink interface {
	sendToClient(p []byte, client net.Addr) error
}

func (c *clientPacketConn) sendToClient(p []byte, client net.Addr) error {
	_, err := c.WriteTo(p, client)
	return err
}

func (c *clientStreamConn) sendToClient(p []byte, _ net.Addr) error {
	_, err := c.Write(p)
	return err
}

// channelTable is one allocation's channel bindings, as pion/turn reported them.
type channelTable struct {
	mu     sync.RWMutex
	sink   clientSink // nil until the first channel is bound, or when the client socket is unknown
	client net.Addr   // the allocation's client address, as pion/turn writes to it
	byPeer map[netip.AddrPort]uint16
	// byNumber is the same bindings by channel number, with each peer's address as pion/turn
	// gave it: where a UDP client's ChannelData goes (see Server.relayFromClient).
	byNumber map[uint16]net.Addr
	// clientKey is the allocation's 5-tuple, its key in Server.udpAllocs, once it has one.
	clientKey tupleKey
	out       []byte // ChannelData being built; used only by the relay socket's read loop
}

// peerKey is how a channel's peer is matched: by IP and port only, IPv4 unmapped, zone
// ignored, as pion/turn matches it (ipnet.AddrEqual).
func peerKey(addr net.Addr) (netip.AddrPort, bool) {
	udp, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(udp.IP)
	if !ok || udp.Port < 0 || udp.Port > 0xffff {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(udp.Port)), true
}

// lookup returns where a datagram from peer goes as ChannelData, if anywhere.
func (t *channelTable) lookup(peer net.Addr) (sink clientSink, client net.Addr, number uint16, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.sink == nil || len(t.byPeer) == 0 {
		return nil, nil, 0, false
	}
	key, ok := peerKey(peer)
	if !ok {
		return nil, nil, 0, false
	}
	number, ok = t.byPeer[key]
	return t.sink, t.client, number, ok
}

// forward sends the n bytes at buf[channelDataHeaderSize:] from peer to the client as
// ChannelData, if peer has a channel; false leaves the datagram to pion/turn. buf has room for
// the padding after the data. To a UDP client the message is queued in c.pending, buf and all,
// and sent with the others of its batch by flush; to others it is sent at once.
func (c *relayConn) forward(buf []byte, n int, peer net.Addr) bool {
	sink, client, number, ok := c.channels.lookup(peer)
	if !ok {
		return false
	}
	// As pion/turn encodes it: header, data, zero padding to a multiple of 4 (RFC 8656 12.5).
	size := (channelDataHeaderSize + n + 3) &^ 3
	msg := buf[:size]
	binary.BigEndian.PutUint16(msg[0:2], number)
	binary.BigEndian.PutUint16(msg[2:4], uint16(n)) //nolint:gosec // n <= len(p) of pion/turn's 1,600-byte buffer
	clear(msg[channelDataHeaderSize+n:])
	if udp, ok := sink.(*clientPacketConn); ok && c.raw != nil && udp.raw != nil {
		if to, ok := client.(*net.UDPAddr); ok && udp.raw.sendable(unmapPort(to.AddrPort())) {
			if len(c.pending) > 0 && (udp != c.pendingSink || client != c.pendingClient) {
				c.flush()
			}
			c.pending = append(c.pending, msg)
			c.pendingSink, c.pendingClient = udp, client
			return true
		}
	}
	if err := sink.sendToClient(msg, client); err != nil {
		c.s.noisyLog.Error().Err(err).Stringer("peer", peer).Str("user", c.user).
			Msg("turnserver: failed to send ChannelData to the client")
	}
	return true
}

// flush sends the queued ChannelData messages to their UDP client in one sendmmsg call (or as
// few as the socket takes), after the bandwidth check and accounting each would have had in
// clientPacketConn.WriteTo.
func (c *relayConn) flush() {
	if len(c.pending) == 0 {
		return
	}
	sink, client := c.pendingSink, c.pendingClient
	local := sink.LocalAddr()
	kept := c.pending[:0]
	for _, msg := range c.pending {
		if c.s.relayedFromPeer(int(binary.BigEndian.Uint16(msg[2:4])), client, local) {
			kept = append(kept, msg)
		}
	}
	if len(kept) > 0 {
		to, _ := client.(*net.UDPAddr) // forward queued only *net.UDPAddr clients
		if fails, err := sink.raw.writeBatch(&c.sends, kept, unmapPort(to.AddrPort())); err != nil {
			c.s.noisyLog.Error().Err(err).Int("failed", fails).Stringer("client", client).Str("user", c.user).
				Msg("turnserver: failed to send ChannelData to the client")
		}
	}
	clear(c.pending) // keep no batch buffer reachable from here
	c.pending = c.pending[:0]
	c.pendingSink, c.pendingClient = nil, nil
}

// outBuffer returns the relay socket's ChannelData buffer, with room for a header, size bytes
// of data and padding.
func (t *channelTable) outBuffer(size int) []byte {
	if need := channelDataHeaderSize + size + 3; len(t.out) < need {
		t.out = make([]byte, need)
	}
	return t.out
}

// onChannelCreated records a channel binding pion/turn made, and the client socket its
// allocation's messages go to.
func (s *Server) onChannelCreated(client, local net.Addr, protocol, _, _ string, relayAddr, peer net.Addr, number uint16) {
	rc := s.relayConnAt(relayAddr)
	key, ok := peerKey(peer)
	if rc == nil || !ok {
		return // pion/turn relays this channel's datagrams itself
	}
	t := &rc.channels
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sink == nil {
		t.sink, t.client = s.clientSinkFor(client, local, protocol)
		if t.sink == nil {
			return
		}
	}
	if t.byPeer == nil {
		t.byPeer = make(map[netip.AddrPort]uint16)
		t.byNumber = make(map[uint16]net.Addr)
	}
	t.byPeer[key] = number
	t.byNumber[number] = peer
	if stream, ok := t.sink.(*clientStreamConn); ok {
		stream.relay.Store(rc)
	}
	if k, ok := keyOf(client, local); ok && !k.tcp && protocol == "UDP" && t.clientKey == (tupleKey{}) {
		t.clientKey = k
		s.udpAllocsMu.Lock()
		s.udpAllocs[k] = rc
		s.udpAllocsMu.Unlock()
	}
}

// onChannelDeleted forgets a channel binding pion/turn removed (expired, or its allocation
// deleted).
func (s *Server) onChannelDeleted(_, _ net.Addr, _, _, _ string, relayAddr, peer net.Addr, number uint16) {
	rc := s.relayConnAt(relayAddr)
	key, ok := peerKey(peer)
	if rc == nil || !ok {
		return
	}
	t := &rc.channels
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, found := t.byPeer[key]; found && n == number {
		delete(t.byPeer, key)
		delete(t.byNumber, number)
	}
}

// relayFromClient sends a UDP client's ChannelData message p to the channel's peer, as
// pion/turn would (handleChannelData: the allocation of the client's 5-tuple, the channel of
// the number, then the relay socket's WriteTo, which checks the peer policy and the bandwidth
// limit). false leaves p to pion/turn: a message that is not ChannelData pion/turn would
// relay, or whose allocation or channel this table does not know. The allocation is found by
// 5-tuple whichever of the port's sockets (UDPSockets) the message came in on.
func (s *Server) relayFromClient(p []byte, client, local net.Addr) bool {
	if len(p) < channelDataHeaderSize || p[0] < 0x40 || p[0] > 0x7f {
		return false
	}
	key, ok := keyOf(client, local)
	if !ok {
		return false
	}
	s.udpAllocsMu.RLock()
	rc := s.udpAllocs[key]
	s.udpAllocsMu.RUnlock()
	return rc != nil && rc.sendChannelData(p, client)
}

// sendChannelData sends client's ChannelData message p (header, payload and any padding) to
// the peer its channel number names, through WriteTo (peer policy, bandwidth limit,
// accounting). false leaves p to pion/turn: it is cut short (not ChannelData to pion/turn
// either: proto.IsChannelData), or its channel is not known here.
func (c *relayConn) sendChannelData(p []byte, client net.Addr) bool {
	if len(p) < channelDataHeaderSize {
		return false
	}
	size := int(binary.BigEndian.Uint16(p[2:4]))
	if size > len(p)-channelDataHeaderSize {
		return false
	}
	c.channels.mu.RLock()
	peer := c.channels.byNumber[binary.BigEndian.Uint16(p[0:2])]
	c.channels.mu.RUnlock()
	if peer == nil {
		return false
	}
	if _, err := c.WriteTo(p[channelDataHeaderSize:channelDataHeaderSize+size], peer); err != nil {
		c.s.noisyLog.Debug().Err(err).Stringer("client", client).Msg("turnserver: ChannelData not relayed")
	}
	return true
}

// relayFromClient sends a TCP or TLS client's ChannelData frame p (padding included) to the
// channel's peer, as Server.relayFromClient does for UDP clients; false leaves it to pion/turn.
func (c *clientStreamConn) relayFromClient(p []byte) bool {
	rc := c.relay.Load()
	return rc != nil && rc.sendChannelData(p, c.RemoteAddr())
}

// removeUDPAlloc forgets a closing relay socket: its entry in Server.udpAllocs, or its TCP or
// TLS connection's pointer to it.
func (s *Server) removeUDPAlloc(c *relayConn) {
	c.channels.mu.RLock()
	key := c.channels.clientKey
	stream, _ := c.channels.sink.(*clientStreamConn)
	c.channels.mu.RUnlock()
	if stream != nil {
		stream.relay.CompareAndSwap(c, nil)
	}
	if key == (tupleKey{}) {
		return
	}
	s.udpAllocsMu.Lock()
	defer s.udpAllocsMu.Unlock()
	if s.udpAllocs[key] == c {
		delete(s.udpAllocs, key)
	}
}

// clientSinkFor finds the client socket wrapper of an allocation's 5-tuple: the UDP listener
// socket bound to local (with UDPSockets > 1, any of them: they share the address), or the TCP
// or TLS connection from client to local.
func (s *Server) clientSinkFor(client, local net.Addr, protocol string) (clientSink, net.Addr) {
	key, ok := keyOf(client, local)
	if !ok {
		return nil, nil
	}
	if key.tcp {
		s.streamsMu.Lock()
		defer s.streamsMu.Unlock()
		if conn := s.streams[key]; conn != nil {
			return conn, client
		}
		return nil, nil
	}
	if protocol != "UDP" {
		return nil, nil
	}
	for _, conn := range s.clientPackets {
		if l, ok := conn.LocalAddr().(*net.UDPAddr); ok && unmapPort(l.AddrPort()) == key.local {
			return conn, client
		}
	}
	return nil, nil
}

// relayConnAt returns the open relay socket whose advertised address is addr.
func (s *Server) relayConnAt(addr net.Addr) *relayConn {
	key, ok := peerKey(addr)
	if !ok {
		return nil
	}
	s.relaysMu.Lock()
	defer s.relaysMu.Unlock()
	return s.relays[key]
}

// addRelayConn and removeRelayConn keep Server.relays: the open relay sockets by advertised
// address.
func (s *Server) addRelayConn(addr *net.UDPAddr, c *relayConn) {
	key, ok := peerKey(addr)
	if !ok {
		return
	}
	s.relaysMu.Lock()
	defer s.relaysMu.Unlock()
	c.advertised = key
	s.relays[key] = c
}

func (s *Server) removeRelayConn(c *relayConn) {
	s.relaysMu.Lock()
	defer s.relaysMu.Unlock()
	if s.relays[c.advertised] == c {
		delete(s.relays, c.advertised)
	}
}

// addStream and removeStream keep Server.streams: the open TCP and TLS client connections by
// 5-tuple.
func (s *Server) addStream(c *clientStreamConn) {
	key, ok := keyOf(c.RemoteAddr(), c.LocalAddr())
	if !ok {
		return
	}
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	s.streams[key] = c
}

func (s *Server) removeStream(c *clientStreamConn) {
	key, ok := keyOf(c.RemoteAddr(), c.LocalAddr())
	if !ok {
		return
	}
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[key] == c {
		delete(s.streams, key)
	}
}
