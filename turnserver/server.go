package turnserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/rs/zerolog"
)

// Server is a running TURN/STUN relay.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	noisyLog zerolog.Logger // sampled, for events a client can trigger at will
	quota    *quota
	counters counters

	randMu sync.Mutex
	rand   *mathrand.Rand

	// secrets and policy are what Reload replaces; readers load them once per use.
	secrets  atomic.Pointer[secretSet]
	policy   atomic.Pointer[peerPolicy]
	reloadMu sync.Mutex // serialises Reload

	allocMu        sync.RWMutex
	allocs         map[tupleKey]*allocationEntry
	pendingAuth    map[tupleKey]authRecord // authenticated Allocates awaiting their response
	verdicts       map[clientKey]verdict   // the key that signed each client's latest request
	familyRefusals map[string]int          // user -> Allocates refused for their address family

	udpConns []net.PacketConn // UDPSockets sockets sharing one port
	// clientPackets wrap udpConns; relays and streams are the open relay sockets by
	// advertised address and the TCP and TLS client connections by 5-tuple, where channel
	// bindings find their allocation's sockets (see forward.go).
	clientPackets []*clientPacketConn
	relaysMu      sync.Mutex
	relays        map[netip.AddrPort]*relayConn
	streamsMu     sync.Mutex
	streams       map[tupleKey]*clientStreamConn
	udpAllocsMu   sync.RWMutex
	udpAllocs     map[tupleKey]*relayConn // UDP allocations with channels, by client 5-tuple
	tcpListener   net.Listener
	tlsListener   net.Listener
	turn          *turn.Server

	closeOnce sync.Once
	closeErr  error
}

// refusalLogBurst bounds how many refusals and authentication failures are
// logged per second: clients can cause them at will.
const refusalLogBurst = 20

// New validates cfg, opens the listeners and starts serving.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		noisyLog: cfg.Logger.Sample(&zerolog.BurstSampler{Burst: refusalLogBurst, Period: time.Second}),
		quota:    newQuota(cfg.MaxAllocationsPerUser, cfg.MaxAllocations),
		rand:     cfg.Rand,
		allocs:   make(map[tupleKey]*allocationEntry),

		pendingAuth:    make(map[tupleKey]authRecord),
		familyRefusals: make(map[string]int),
		verdicts:       make(map[clientKey]verdict),
		relays:         make(map[netip.AddrPort]*relayConn),
		streams:        make(map[tupleKey]*clientStreamConn),
		udpAllocs:      make(map[tupleKey]*relayConn),
	}
	s.secrets.Store(newSecretSet(cfg.Secret, cfg.AcceptedSecrets))
	s.policy.Store(&peerPolicy{allowed: cfg.AllowedPeers, denied: cfg.DeniedPeers})
	if s.rand == nil {
		var seed [32]byte
		if _, err := rand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("turnserver: seeding relay port generator: %w", err)
		}
		s.rand = mathrand.New(mathrand.NewChaCha8(seed))
	}
	if err := s.listen(); err != nil {
		s.closeListeners()
		return nil, err
	}

	generator := relayGenerator{s: s}
	serverConfig := turn.ServerConfig{
		LoggerFactory: pionLoggerFactory{log: cfg.Logger},
		Realm:         cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.admitAllocation,
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnChannelCreated:    s.onChannelCreated,
			OnChannelDeleted:    s.onChannelDeleted,
		},
	}
	// One allocation manager per socket: the kernel keeps each client on
	// one socket, so its allocation is always found where it was made.
	for _, conn := range s.udpConns {
		client := &clientPacketConn{PacketConn: conn, s: s, raw: newRawUDP(conn, cfg.ReadBatch)}
		s.clientPackets = append(s.clientPackets, client)
		serverConfig.PacketConnConfigs = append(serverConfig.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn:            client,
			RelayAddressGenerator: generator,
			PermissionHandler:     s.permitPeer,
		})
	}
	for _, ln := range []net.Listener{s.tcpListener, s.tlsListener} {
		if ln != nil {
			serverConfig.ListenerConfigs = append(serverConfig.ListenerConfigs, turn.ListenerConfig{
				Listener:              ln,
				RelayAddressGenerator: generator,
				PermissionHandler:     s.permitPeer,
			})
		}
	}
	s.turn, err = turn.NewServer(serverConfig)
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("turnserver: starting pion/turn: %w", err)
	}
	ev := s.log.Info().Stringer("udp", s.UDPAddr()).Stringer("tcp", s.TCPAddr()).Stringer("tls", s.TLSAddr()).
		Stringer("public_ip", cfg.PublicIP)
	if cfg.PublicIPv6.IsValid() {
		ev = ev.Stringer("public_ipv6", cfg.PublicIPv6)
	}
	ev.Int("secrets", len(s.secrets.Load().all)).Msg("turnserver: listening")
	return s, nil
}

// listen opens the configured listeners. The TCP and TLS listeners are
// wrapped in clientListener.
func (s *Server) listen() error {
	cfg := &s.cfg
	if cfg.ListenUDP != "" {
		lc := net.ListenConfig{}
		if cfg.UDPSockets > 1 {
			lc.Control = func(_, _ string, c syscall.RawConn) error { return setReusePort(c) }
		}
		addr := cfg.ListenUDP
		granted := 0
		for range cfg.UDPSockets {
			conn, err := lc.ListenPacket(context.Background(), "udp", addr)
			if err != nil {
				return fmt.Errorf("turnserver: listen UDP %s (socket %d of %d): %w", addr, len(s.udpConns)+1, cfg.UDPSockets, err)
			}
			s.udpConns = append(s.udpConns, conn)
			addr = conn.LocalAddr().String() // the port picked for ":0"
			granted = setSocketBuffers(conn, cfg.UDPSocketBuffer)
		}
		if cfg.UDPSocketBuffer > 0 && granted < cfg.UDPSocketBuffer {
			s.log.Warn().Int("requested", cfg.UDPSocketBuffer).Int("granted", granted).
				Msg("turnserver: UDP receive buffer capped by net.core.rmem_max; raise it (sysctl) or grant CAP_NET_ADMIN")
		}
	}
	if cfg.ListenTCP != "" {
		ln, err := net.Listen("tcp", cfg.ListenTCP)
		if err != nil {
			return fmt.Errorf("turnserver: listen TCP %s: %w", cfg.ListenTCP, err)
		}
		s.tcpListener = &clientListener{Listener: ln, s: s}
	}
	if cfg.ListenTLS != "" {
		tlsConfig := cfg.TLSConfig
		if tlsConfig == nil {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
			if err != nil {
				return fmt.Errorf("turnserver: loading TLS key pair %s, %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
			}
			tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		ln, err := net.Listen("tcp", cfg.ListenTLS)
		if err != nil {
			return fmt.Errorf("turnserver: listen TLS %s: %w", cfg.ListenTLS, err)
		}
		s.tlsListener = &clientListener{Listener: ln, s: s, tlsConfig: tlsConfig, handshakeTimeout: cfg.TLSHandshakeTimeout}
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, conn := range s.udpConns {
		_ = conn.Close()
	}
	for _, ln := range []net.Listener{s.tcpListener, s.tlsListener} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// Close stops the listeners; pion/turn then closes every allocation's relay
// socket. It logs what the relay did over its life, so that every program
// running one reports the same figures. Calling Close more than once returns
// the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		st := s.Stats()
		if err := s.turn.Close(); err != nil {
			s.closeErr = fmt.Errorf("turnserver: close: %w", err)
			return
		}
		s.log.Info().Uint64("allocations", st.AllocationsTotal).Uint64("bytes_relayed", st.BytesRelayed()).
			Uint64("auth_failures", st.AuthFailures).Uint64("permission_refusals", st.PermissionRefusals).
			Uint64("quota_refusals", st.QuotaRefusals).Uint64("bandwidth_drops", st.BandwidthDrops).Msg("TURN relay closed")
	})
	return s.closeErr
}

// UDPAddr is the UDP listener's address, nil when UDP is off.
func (s *Server) UDPAddr() net.Addr {
	if len(s.udpConns) == 0 {
		return nil
	}
	return s.udpConns[0].LocalAddr()
}

// TCPAddr is the TCP listener's address, nil when TCP is off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcpListener == nil {
		return nil
	}
	return s.tcpListener.Addr()
}

// TLSAddr is the TLS listener's address, nil when TLS is off.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsListener == nil {
		return nil
	}
	return s.tlsListener.Addr()
}

// URLs returns the ICE server URLs for this relay: stun: and turn: on UDP,
// turn: with transport=tcp, and turns: for TLS, on the ports actually bound.
// host names the server in the URLs; empty means Config.PublicIP. A turns:
// URL should name the host the certificate is for.
func (s *Server) URLs(host string) []string {
	if host == "" {
		host = s.cfg.PublicIP.String()
	}
	hostPort := func(addr net.Addr) string {
		port := 0
		switch a := addr.(type) {
		case *net.UDPAddr:
			port = a.Port
		case *net.TCPAddr:
			port = a.Port
		}
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	var urls []string
	if a := s.UDPAddr(); a != nil {
		urls = append(urls, "stun:"+hostPort(a), "turn:"+hostPort(a)+"?transport=udp")
	}
	if a := s.TCPAddr(); a != nil {
		urls = append(urls, "turn:"+hostPort(a)+"?transport=tcp")
	}
	if a := s.TLSAddr(); a != nil {
		urls = append(urls, "turns:"+hostPort(a)+"?transport=tcp")
	}
	return urls
}

// Credentials mints credentials for nodeID valid for Config.CredentialTTL
// from Config.Now.
func (s *Server) Credentials(nodeID string) (username, password string) {
	return Credentials(s.secrets.Load().mint, nodeID, s.cfg.CredentialTTL, s.cfg.Now())
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := s.counters.snapshot()
	st.UserAllocations = s.quota.histogram()
	return st
}

// randomRelayPort picks a port in the relay range.
func (s *Server) randomRelayPort() int {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	span := int(s.cfg.RelayPortMax) - int(s.cfg.RelayPortMin) + 1
	return int(s.cfg.RelayPortMin) + s.rand.IntN(span)
}

// authenticate is pion/turn's AuthHandler: it accepts unexpired TURN REST
// usernames in this server's realm and returns the node ID as the user ID
// (which quotas count by) and the long-term key that signed the request, found
// by inspectRequest before pion/turn read it. A request no accepted secret
// signs has no key and is answered 401, as pion/turn answers a wrong password.
func (s *Server) authenticate(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	if ra.Realm != s.cfg.Realm {
		s.authFailed(ra.SrcAddr, ra.Username, fmt.Errorf("realm %q is not %q", ra.Realm, s.cfg.Realm))
		return "", nil, false
	}
	nodeID, err := checkUsername(ra.Username, s.cfg.Now())
	if err != nil {
		s.authFailed(ra.SrcAddr, ra.Username, err)
		return "", nil, false
	}
	v, ok := s.verdictFor(ra.SrcAddr, ra.Username)
	if !ok {
		s.authFailed(ra.SrcAddr, ra.Username, errNoSecret)
		return "", nil, false
	}
	return nodeID, v.key, true
}

func (s *Server) authFailed(client net.Addr, username string, err error) {
	s.counters.authFailures.Add(1)
	s.noisyLog.Warn().Err(err).Stringer("client", client).Str("username", username).
		Msg("turnserver: authentication failed")
}

// onAuth receives pion/turn's verdict on MESSAGE-INTEGRITY. It counts
// failures, and records the credentials of an authenticated request so that
// an error response to it can be re-signed (see rewriteErrorResponse): on
// the allocation for requests on an existing allocation, and for an Allocate
// in pendingAuth until its response leaves.
func (s *Server) onAuth(client, local net.Addr, _, username, realm, method string, verdict bool) {
	if !verdict {
		s.authFailed(client, username, errors.New("MESSAGE-INTEGRITY does not match: wrong password"))
		return
	}
	key, ok := keyOf(client, local)
	ck, ok2 := clientKeyOf(client)
	if !ok || !ok2 {
		return
	}
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	v, ok := s.verdicts[ck]
	if !ok || v.username != username {
		return // cannot happen: authenticate found it a moment ago, in this goroutine
	}
	delete(s.verdicts, ck)
	if v.retired {
		s.counters.retiredSecretAuths.Add(1)
	}
	rec := authRecord{username: username, realm: realm, key: v.key}
	if entry := s.allocs[key]; entry != nil {
		entry.auth = rec
		return
	}
	// Bounded: a flood of authenticated Allocate requests whose responses
	// never leave must not grow the table; beyond the bound an error response
	// keeps pion/turn's form.
	if method == stun.MethodAllocate.String() && len(s.pendingAuth) < maxPendingAuth {
		s.pendingAuth[key] = rec
	}
}

// maxPendingAuth bounds Server.pendingAuth.
const maxPendingAuth = 4096

// authRecord is the credentials of an authenticated request and the key that
// signed it.
type authRecord struct {
	username, realm string
	key             []byte
}

// recordedAuth returns the credentials recorded for the latest authenticated
// request on the 5-tuple; allocate says the response is to an Allocate,
// whose record is then forgotten.
func (s *Server) recordedAuth(client, local net.Addr, allocate bool) authRecord {
	key, ok := keyOf(client, local)
	if !ok {
		return authRecord{}
	}
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if allocate {
		if r, ok := s.pendingAuth[key]; ok {
			delete(s.pendingAuth, key)
			return r
		}
	}
	if entry := s.allocs[key]; entry != nil {
		return entry.auth
	}
	return authRecord{}
}

// forgetPendingAuth drops the record of an Allocate that succeeded.
func (s *Server) forgetPendingAuth(client, local net.Addr) {
	if key, ok := keyOf(client, local); ok {
		s.allocMu.Lock()
		delete(s.pendingAuth, key)
		s.allocMu.Unlock()
	}
}

// noteFamilyRefusal records that an Allocate of user asked for an address
// family the relay does not serve, so that pion/turn's 508 answer becomes 440.
func (s *Server) noteFamilyRefusal(user string) {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if len(s.familyRefusals) < maxPendingAuth {
		s.familyRefusals[user]++
	}
}

// takeFamilyRefusal consumes a refusal recorded for the user of username.
func (s *Server) takeFamilyRefusal(username string) bool {
	_, user, err := parseUsername(username)
	if err != nil {
		return false
	}
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if s.familyRefusals[user] == 0 {
		return false
	}
	if s.familyRefusals[user]--; s.familyRefusals[user] == 0 {
		delete(s.familyRefusals, user)
	}
	return true
}

// admitAllocation is pion/turn's QuotaHandler: false makes pion/turn answer
// 486 Allocation Quota Reached.
func (s *Server) admitAllocation(userID, _ string, client net.Addr) bool {
	if s.quota.admits(userID) {
		return true
	}
	s.counters.quotaRefusals.Add(1)
	s.noisyLog.Warn().Str("user", userID).Stringer("client", client).Msg("turnserver: allocation quota reached")
	return false
}

// permitPeer is pion/turn's PermissionHandler for CreatePermission,
// ChannelBind and Connect: false makes pion/turn answer 403 (ChannelBind's
// 401 is rewritten to 403 on the way out). Send indications and ChannelData
// need an existing permission or channel, so they are covered too, and
// relayConn.WriteTo checks the policy once more.
func (s *Server) permitPeer(client net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if ok && s.policy.Load().allows(ip) {
		return true
	}
	s.counters.permissionRefusals.Add(1)
	s.noisyLog.Warn().Stringer("client", client).Stringer("peer", ip).Msg("turnserver: peer address refused")
	return false
}

func (s *Server) onAllocationCreated(client, local net.Addr, _, userID, _ string, relay net.Addr, _ int) {
	s.counters.allocationsTotal.Add(1)
	s.counters.allocationsActive.Add(1)
	entry := &allocationEntry{user: userID}
	if s.cfg.BandwidthPerAllocation > 0 {
		entry.fromPeers = newTokenBucket(s.cfg.BandwidthPerAllocation, s.cfg.BandwidthBurst, s.cfg.Now())
	}
	if key, ok := keyOf(client, local); ok {
		s.allocMu.Lock()
		// The Allocate's credentials, recorded by onAuth, stay with the
		// allocation: its later requests may be signed with that key even
		// after Reload removes the secret it came from.
		entry.auth = s.pendingAuth[key]
		s.allocs[key] = entry
		s.allocMu.Unlock()
	}
	s.log.Debug().Str("user", userID).Stringer("client", client).Stringer("relay", relay).Msg("turnserver: allocation created")
}

func (s *Server) onAllocationDeleted(client, local net.Addr, _, userID, _ string) {
	s.counters.allocationsActive.Add(-1)
	if key, ok := keyOf(client, local); ok {
		s.allocMu.Lock()
		delete(s.allocs, key)
		s.allocMu.Unlock()
	}
	s.log.Debug().Str("user", userID).Stringer("client", client).Msg("turnserver: allocation deleted")
}
