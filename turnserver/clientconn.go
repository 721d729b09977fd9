package turnserver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
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
	dataIndication   = stun.NewType(stun.MethodData, stun.ClassIndication).Value()
	channelBindError = stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse).Value()
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
	// channelBindUsername and channelBindRealm are the credentials of the
	// latest authenticated ChannelBind request on this 5-tuple, kept so a
	// refusal can be re-signed with the same key. Guarded by Server.allocMu.
	channelBindUsername string
	channelBindRealm    string
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
	switch binary.BigEndian.Uint16(p[0:2]) {
	case dataIndication:
		msg := &stun.Message{Raw: p}
		if err := msg.Decode(); err != nil {
			return p, true
		}
		data, err := msg.Get(stun.AttrData)
		if err != nil {
			return p, true
		}
		return p, s.relayedFromPeer(len(data), client, local)
	case channelBindError:
		return s.rewriteChannelBindRefusal(p, client, local), true
	}
	return p, true
}

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

// rewriteChannelBindRefusal turns pion/turn's 401 answer to a ChannelBind
// refused by the peer policy into 403 Forbidden. pion/turn's only
// ChannelBind 401 that carries MESSAGE-INTEGRITY is that refusal (a failed
// authentication carries NONCE and REALM instead and is left alone). The
// response is re-signed with the key of the request's credentials, recorded
// when pion/turn reported the request authenticated; the original integrity
// is verified with that key first, so only a response signed for exactly
// those credentials is rewritten.
func (s *Server) rewriteChannelBindRefusal(p []byte, client, local net.Addr) []byte {
	msg := &stun.Message{Raw: append([]byte(nil), p...)}
	if err := msg.Decode(); err != nil {
		return p
	}
	var code stun.ErrorCodeAttribute
	if err := code.GetFrom(msg); err != nil || code.Code != stun.CodeUnauthorized ||
		!msg.Contains(stun.AttrMessageIntegrity) || msg.Contains(stun.AttrNonce) {
		return p
	}
	key, ok := keyOf(client, local)
	if !ok {
		return p
	}
	s.allocMu.RLock()
	var username, realm string
	if entry := s.allocs[key]; entry != nil {
		username, realm = entry.channelBindUsername, entry.channelBindRealm
	}
	s.allocMu.RUnlock()
	if username == "" {
		s.log.Warn().Stringer("client", client).Msg("turnserver: ChannelBind refusal without recorded credentials left as 401")
		return p
	}
	integrity := stun.MessageIntegrity(longTermKey(username, realm, restPassword(s.cfg.Secret, username)))
	if err := integrity.Check(msg); err != nil {
		s.log.Warn().Err(err).Stringer("client", client).Msg("turnserver: ChannelBind refusal signed with other credentials left as 401")
		return p
	}
	forbidden, err := stun.Build(
		stun.NewTransactionIDSetter(msg.TransactionID),
		stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden")},
		integrity,
	)
	if err != nil {
		s.log.Error().Err(err).Msg("turnserver: building ChannelBind 403")
		return p
	}
	return forbidden.Raw
}

// clientPacketConn wraps the UDP listener socket.
type clientPacketConn struct {
	net.PacketConn
	s *Server
}

func (c *clientPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	out, send := c.s.egress(p, addr, c.LocalAddr())
	if !send {
		return len(p), nil
	}
	if _, err := c.PacketConn.WriteTo(out, addr); err != nil {
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
	wrapped := &clientStreamConn{Conn: conn, s: l.s}
	if l.tlsConfig != nil {
		tlsConn := tls.Server(conn, l.tlsConfig)
		wrapped.Conn = tlsConn
		wrapped.tls = tlsConn
		wrapped.handshakeTimeout = l.handshakeTimeout
	}
	return wrapped, nil
}

// clientStreamConn wraps one TCP or TLS client connection. pion/turn frames
// the stream itself and writes each message with a single Write.
type clientStreamConn struct {
	net.Conn
	s *Server

	// tls is set for TLS connections. The handshake runs on the first Read,
	// in pion/turn's goroutine for this connection, bounded by
	// handshakeTimeout so a silent client cannot hold it forever.
	tls              *tls.Conn
	handshakeTimeout time.Duration
	handshakeOnce    sync.Once
	handshakeErr     error
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
	return c.Conn.Read(p)
}

func (c *clientStreamConn) Write(p []byte) (int, error) {
	out, send := c.s.egress(p, c.RemoteAddr(), c.LocalAddr())
	if !send {
		return len(p), nil
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, fmt.Errorf("write to client %v: %w", c.RemoteAddr(), err)
	}
	return len(p), nil
}
