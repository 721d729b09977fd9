package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/pion/turn/v5"
)

var (
	errQuotaReached   = errors.New("allocation quota reached")
	errTCPRelay       = errors.New("TCP relaying (RFC 6062) is not offered by this relay")
	errAddressFamily  = errors.New("relay address family not served")
	errRequestedPort  = errors.New("requested relay port outside the relay port range")
	errPortsExhausted = errors.New("no free relay port found")
	errPeerDenied     = errors.New("peer address denied by relay policy")
	errNotUDPPeer     = errors.New("peer address is not a UDP address")
)

// relayGenerator is the pion/turn RelayAddressGenerator: it opens relay
// sockets within the configured port range, takes a quota slot for each, and
// wraps them in relayConn for bandwidth limits, accounting and a last check
// of the peer policy.
type relayGenerator struct {
	s *Server
}

var _ turn.RelayAddressGenerator = relayGenerator{}

func (relayGenerator) Validate() error { return nil }

func (g relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := g.s
	public, bind, ok := s.relayAddrFor(conf.Network)
	if !ok {
		s.noteFamilyRefusal(conf.UserID)
		return nil, nil, fmt.Errorf("%w: %s", errAddressFamily, conf.Network)
	}
	// pion/turn asked QuotaHandler a moment ago; taking the slot here is the
	// atomic check that concurrent listeners cannot race past. Losing that
	// race answers 508 Insufficient Capacity instead of 486.
	if !s.quota.take(conf.UserID) {
		s.counters.quotaRefusals.Add(1)
		s.noisyLog.Warn().Str("user", conf.UserID).Msg("turnserver: allocation quota reached while opening relay socket")
		return nil, nil, errQuotaReached
	}
	inner, err := g.listen(conf.Network, bind, conf.RequestedPort)
	if err != nil {
		s.quota.give(conf.UserID)
		return nil, nil, err
	}
	local, ok := inner.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = inner.Close()
		s.quota.give(conf.UserID)
		return nil, nil, fmt.Errorf("relay socket has non-UDP address %v", inner.LocalAddr())
	}
	conn := &relayConn{PacketConn: inner, s: s, user: conf.UserID, raw: newRawUDPHead(inner, s.cfg.RelayReadBatch, channelDataHeaderSize)}
	if s.cfg.BandwidthPerAllocation > 0 {
		conn.toPeers = newTokenBucket(s.cfg.BandwidthPerAllocation, s.cfg.BandwidthBurst, s.cfg.Now())
	}
	relayAddr := &net.UDPAddr{IP: public.AsSlice(), Port: local.Port}
	s.addRelayConn(relayAddr, conn)
	return conn, relayAddr, nil
}

// relayAddrFor returns the advertised and bound relay addresses for network
// ("udp4" or "udp6"), and false if the relay does not serve that family.
func (s *Server) relayAddrFor(network string) (public, bind netip.Addr, ok bool) {
	v4 := network == "udp4"
	switch {
	case network != "udp4" && network != "udp6":
		return netip.Addr{}, netip.Addr{}, false
	case v4 == s.cfg.PublicIP.Is4():
		return s.cfg.PublicIP, s.cfg.RelayBindIP, true
	case !v4 && s.cfg.PublicIPv6.IsValid():
		return s.cfg.PublicIPv6, s.cfg.RelayBindIPv6, true
	}
	return netip.Addr{}, netip.Addr{}, false
}

// listen opens a UDP socket on the relay bind address, on the requested port
// or a random free port in the range.
func (g relayGenerator) listen(network string, bindIP netip.Addr, requestedPort int) (net.PacketConn, error) {
	cfg := &g.s.cfg
	bind := func(port int) (net.PacketConn, error) {
		addr := net.JoinHostPort(bindIP.String(), strconv.Itoa(port))
		conn, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, fmt.Errorf("open relay socket %s: %w", addr, err)
		}
		setSocketBuffers(conn, cfg.RelaySocketBuffer)
		return conn, nil
	}
	ranged := cfg.RelayPortMax != 0
	if requestedPort != 0 {
		if ranged && (requestedPort < int(cfg.RelayPortMin) || requestedPort > int(cfg.RelayPortMax)) {
			return nil, fmt.Errorf("%w: %d", errRequestedPort, requestedPort)
		}
		return bind(requestedPort)
	}
	if !ranged {
		return bind(0)
	}
	var lastErr error
	for range cfg.RelayPortAttempts {
		conn, err := bind(g.s.randomRelayPort())
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w after %d attempts: %w", errPortsExhausted, cfg.RelayPortAttempts, lastErr)
}

// AllocateListener refuses TCP allocations: WebRTC only ever asks for UDP
// relays (carried over UDP, TCP or TLS to the server), and a TCP relay would
// need its own bandwidth and policy enforcement. pion/turn answers 508.
func (relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

// AllocateConn refuses RFC 6062 Connect for the same reason; pion/turn
// answers 447 (after the peer policy has had its say with 403).
func (relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// relayConn is one allocation's relay socket. pion/turn writes client
// payload to peers through WriteTo and reads peer datagrams through ReadFrom.
type relayConn struct {
	net.PacketConn
	s       *Server
	user    string
	toPeers *tokenBucket // nil when bandwidth is unlimited
	raw     *rawUDP      // nil where raw sends are not available

	// channels are the allocation's channel bindings: datagrams from their peers are sent to
	// the client here (see forward.go). advertised is the relay address, Server.relays' key.
	channels   channelTable
	advertised netip.AddrPort
	// pending is ChannelData for a UDP client, each in its batch buffer, that flush sends
	// together (see forward); used only by the socket's read loop, like sends.
	pending       [][]byte
	pendingSink   *clientPacketConn
	pendingClient net.Addr
	sends         batchSender

	closeOnce sync.Once
	closeErr  error
}

// WriteTo sends client payload to a peer. pion/turn only calls it for peers
// with a permission, and permissions pass the peer policy; the policy is
// checked again here so that no code path can make the relay send to a denied
// address, and so the relay host's own address is reachable only on relay
// ports (relay to relay), not on its other services.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	udp, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("%w: %v", errNotUDPPeer, addr)
	}
	peer := udp.AddrPort()
	if !c.s.sendAllowed(peer) {
		c.s.counters.permissionRefusals.Add(1)
		c.s.noisyLog.Warn().Str("user", c.user).Stringer("peer", peer).
			Msg("turnserver: relay socket refused to send to denied peer")
		return 0, fmt.Errorf("%w: %v", errPeerDenied, peer)
	}
	if c.toPeers != nil && !c.toPeers.allow(len(p), c.s.cfg.Now()) {
		// Dropped as a congested path would drop it; reporting success keeps
		// pion/turn from logging every dropped datagram as a failure.
		c.s.counters.bandwidthDrops.Add(1)
		return len(p), nil
	}
	n, sent, err := 0, false, error(nil)
	if c.raw != nil {
		n, sent, err = c.raw.writeTo(p, peer)
	}
	if !sent {
		n, err = c.PacketConn.WriteTo(p, addr)
	}
	if n > 0 {
		c.s.counters.bytesToPeers.Add(uint64(n))
		c.s.counters.packetsToPeers.Add(1)
	}
	if err != nil {
		return n, fmt.Errorf("relay to %v: %w", peer, err)
	}
	return n, nil
}

// ReadFrom reads a peer's datagram, raw and in batches when it can (see rawUDP). pion/turn's
// read loop for the socket calls it; datagrams from peers with a channel are sent to the client
// here (see forward.go), and only the others are returned, at most len(p) bytes of each, as
// pion/turn would read them.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.raw == nil {
		for {
			buf := c.channels.outBuffer(len(p))
			n, addr, err := c.PacketConn.ReadFrom(buf[channelDataHeaderSize : channelDataHeaderSize+len(p)])
			if err == nil && addr != nil && c.forward(buf, n, addr) {
				continue
			}
			copy(p, buf[channelDataHeaderSize:channelDataHeaderSize+n])
			return n, addr, err //nolint:wrapcheck // pion/turn's read loop only needs to see the error
		}
	}
	for {
		if !c.raw.buffered() {
			c.flush() // before waiting for the next batch, whose read reuses the buffers
		}
		buf, n, addr, err := c.raw.next(len(p))
		if err == nil && addr != nil && c.forward(buf, n, addr) {
			continue
		}
		c.flush() // what came before this datagram goes first
		if buf != nil {
			copy(p, buf[channelDataHeaderSize:channelDataHeaderSize+n])
		}
		if err != nil || addr == nil {
			return n, nil, err
		}
		return n, addr, nil
	}
}

// Close closes the socket and returns its quota slot, once.
func (c *relayConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.PacketConn.Close()
		c.s.removeRelayConn(c)
		c.s.removeUDPAlloc(c)
		c.s.quota.give(c.user)
	})
	return c.closeErr
}

// sendAllowed is the relay socket's last check before a datagram leaves.
func (s *Server) sendAllowed(peer netip.AddrPort) bool {
	ip := peer.Addr().Unmap()
	policy := s.policy.Load()
	if !policy.allows(ip) {
		return false
	}
	if containsAddr(policy.allowed, ip) || s.cfg.RelayPortMax == 0 {
		return true
	}
	if ip == s.cfg.PublicIP || ip == s.cfg.RelayBindIP || (s.cfg.PublicIPv6.IsValid() && (ip == s.cfg.PublicIPv6 || ip == s.cfg.RelayBindIPv6)) {
		port := peer.Port()
		return port >= s.cfg.RelayPortMin && port <= s.cfg.RelayPortMax
	}
	return true
}
