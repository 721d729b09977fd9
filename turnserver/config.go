// Package turnserver is rtcmesh's bundled TURN/STUN relay: a pion/turn server
// with TURN REST API style ephemeral credentials, a relay deny-list that keeps
// clients from using the relay to reach private or special-purpose addresses,
// allocation quotas and a per-allocation bandwidth limit.
//
// Nodes whose NATs defeat hole punching fall back to relaying through this
// server. Because a TURN relay sends UDP wherever its clients ask, an open
// relay is a ready-made tool for reaching the relay host's own loopback,
// its private network or a cloud metadata service; the deny-list exists to
// make that impossible by default.
package turnserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a Server. Start from DefaultConfig and fill in at least
// Secret, PublicIP (or a specific RelayBindIP) and one listen address.
type Config struct {
	// ListenUDP is the address of the UDP listener for STUN binding requests
	// and TURN over UDP, e.g. "0.0.0.0:3478". Empty disables UDP.
	ListenUDP string
	// ListenTCP is the address of the plain TCP listener for TURN over TCP
	// ("turn:host:port?transport=tcp"), which gets clients through networks
	// that block UDP. Empty disables it.
	ListenTCP string
	// ListenTLS is the address of the TLS listener ("turns:"), which gets
	// clients through proxies and firewalls that only pass TLS, typically on
	// port 443. Empty disables it; when set, TLSConfig or TLSCertFile and
	// TLSKeyFile must be set too.
	ListenTLS string
	// TLSCertFile and TLSKeyFile are PEM files for the TLS listener. They are
	// ignored when TLSConfig is set.
	TLSCertFile string
	TLSKeyFile  string
	// TLSConfig, when non-nil, is used for the TLS listener as is (it must
	// carry certificates or GetCertificate).
	TLSConfig *tls.Config
	// TLSHandshakeTimeout bounds how long a TLS client may take to finish its
	// handshake, so that silent connections do not pin a goroutine forever.
	TLSHandshakeTimeout time.Duration
	// UDPSockets is how many UDP listener sockets share ListenUDP, each with
	// its own read loop, so that several cores take client datagrams at once.
	// They share the port with SO_REUSEPORT (Linux; elsewhere there is one),
	// and the kernel keeps each client on one socket by its address. Zero
	// means one per GOMAXPROCS. At most MaxUDPSockets.
	UDPSockets int
	// UDPSocketBuffer is the receive and send buffer (SO_RCVBUF, SO_SNDBUF)
	// of each UDP listener socket, in bytes: it absorbs bursts while the read
	// loops are busy. Above net.core.rmem_max (wmem_max) the kernel caps it
	// unless the process has CAP_NET_ADMIN; New logs what was granted. Zero
	// leaves the system default (about 208 KiB on Linux).
	UDPSocketBuffer int
	// ReadBatch is how many queued datagrams one system call (recvmmsg, on
	// Linux) takes at most from a UDP listener socket; its read loop then
	// handles them one by one. A burst from many clients thus costs one
	// call rather than one per datagram, for ReadBatch×MaxDatagramSize
	// bytes of buffers per listener socket. Relay sockets read with
	// RelayReadBatch. Between 1 and MaxReadBatch; zero means the default, 16.
	ReadBatch int
	// RelayReadBatch is the same for each allocation's relay socket: how
	// many queued peer datagrams one recvmmsg call takes at most. Those from
	// peers with a channel go to a UDP client together, in one sendmmsg call
	// on the listener socket (TCP and TLS clients get them one by one). It
	// costs about RelayReadBatch×1.8 KB (a MaxDatagramSize buffer, room for
	// the ChannelData header and padding, the source address and the call's
	// headers) per allocation, taken on its first read. Between 1 and
	// MaxReadBatch; zero means the default, 8.
	RelayReadBatch int
	// RelaySocketBuffer is the same for each allocation's relay socket, which
	// receives the peers' datagrams. Zero leaves the system default.
	RelaySocketBuffer int
	// TCPSendBuffer is the kernel send buffer (SO_SNDBUF) of each TCP and TLS
	// client connection, in bytes; Linux doubles it for bookkeeping. It bounds
	// how much relayed data can wait for a slow client, and so the delay it
	// adds: an unbounded (autotuned, up to 4 MiB) buffer holds seconds of
	// media. Zero leaves the system default.
	TCPSendBuffer int
	// TCPQueueSize bounds the bytes of messages waiting for a TCP or TLS
	// client connection whose send buffer is full. Peer data arriving while
	// it is full is dropped (Stats.TCPQueueDrops), so a slow client never
	// stalls its allocation's relay socket. At least MaxDatagramSize.
	TCPQueueSize int
	// StreamReadBuffer is the read buffer of each TCP or TLS client
	// connection, in bytes: a busy connection gets several frames per read
	// system call. A frame larger than it ends the connection, so it must hold
	// the largest frame pion/turn reads (MaxDatagramSize); at most
	// maxSocketBuffer. Zero means the default, 8 KiB.
	StreamReadBuffer int

	// PublicIP is the relay address advertised to clients in
	// XOR-RELAYED-ADDRESS and used by URLs. It must be reachable by peers,
	// so behind a 1:1 NAT (a cloud VM) it is the public address, not the
	// interface address. When zero, RelayBindIP is used, which must then be
	// a specific address.
	PublicIP netip.Addr
	// RelayBindIP is the local address relay sockets bind to. The zero value
	// means 0.0.0.0 (all IPv4 interfaces).
	RelayBindIP netip.Addr
	// PublicIPv6 makes an IPv4 relay dual-stack: an Allocate asking for an
	// IPv6 relay (REQUESTED-ADDRESS-FAMILY, RFC 8656) gets a relay socket on
	// RelayBindIPv6, advertised as PublicIPv6. Zero serves IPv4 relays only
	// (an Allocate for IPv6 is then answered 440 Address Family not
	// Supported). It must be an IPv6 address, and PublicIP an IPv4 one; a
	// relay whose PublicIP is IPv6 serves IPv6 only.
	PublicIPv6 netip.Addr
	// RelayBindIPv6 is the local address IPv6 relay sockets bind to. Zero
	// means PublicIPv6 itself: IPv6 hosts are rarely behind NAT, and binding
	// to the advertised address makes replies leave from it even on a host
	// with several (temporary, privacy) IPv6 addresses. Set :: to bind all.
	RelayBindIPv6 netip.Addr
	// RelayPortMin and RelayPortMax bound the relay ports (inclusive), so a
	// firewall can open exactly that range. Both zero lets the operating
	// system pick ephemeral ports.
	RelayPortMin uint16
	RelayPortMax uint16
	// RelayPortAttempts is how many random ports in the range are tried
	// before an allocation fails with 508 Insufficient Capacity.
	RelayPortAttempts int

	// Realm is the TURN realm (RFC 8489 long-term credentials).
	Realm string
	// Secret is the shared secret for ephemeral credentials: the signaling
	// server mints credentials with Credentials and this server checks them.
	// A coturn configured with use-auth-secret and the same static-auth-secret
	// accepts the same credentials. At least MinSecretLength bytes.
	Secret string
	// AcceptedSecrets are further shared secrets whose credentials are
	// accepted (never minted), so that a secret can rotate without dropping
	// allocations: accept the new secret here, move the signaling servers to
	// it, then make it Secret and drop the old one (Server.Reload does each
	// step on a running relay). An allocation made under a secret that is
	// later removed keeps working until it ends; a new allocation under it is
	// refused with 401. Each costs an HMAC per request; at most
	// MaxAcceptedSecrets, each at least MinSecretLength bytes. coturn accepts
	// the same with several static-auth-secret lines.
	AcceptedSecrets []string
	// MaxAcceptedSecrets bounds AcceptedSecrets, here and in every Reload:
	// each request is checked against every accepted secret, so each costs
	// an HMAC per request. Between 1 and MaxAcceptedSecretsLimit; zero means
	// the default, 8.
	MaxAcceptedSecrets int
	// MaxVerdicts bounds the table of MESSAGE-INTEGRITY verdicts, the key
	// that signed each client's latest request (see inspectRequest). An
	// entry lives from the moment a request is read until pion/turn has
	// authenticated it, so the table holds about one per socket or
	// connection busy with a request; beyond the bound an arbitrary entry is
	// evicted, and that client's request is answered 401 and retried. At
	// least 1, at most maxTableSize; zero means the default, 4,096.
	MaxVerdicts int
	// MaxListFile bounds the size in bytes of a secrets or peer list file
	// (ReadSecretsFile, ReadPrefixFile, which callers pass it to), so that a
	// wrong path (a log, a device) is refused rather than read without end.
	// At least 1, at most maxTableSize×64 bytes; zero means the default, 1 MiB.
	MaxListFile int
	// CredentialTTL is the lifetime of credentials minted by
	// Server.Credentials. Allocations outlive it only until their next
	// refresh, which needs valid credentials.
	CredentialTTL time.Duration

	// AllowedPeers lists peer address ranges that are always allowed,
	// overriding DeniedPeers. Use it for private deployments (a relay on a
	// LAN relaying to 10.0.0.0/8) and for tests on loopback.
	AllowedPeers []netip.Prefix
	// DeniedPeers lists peer address ranges that clients may not create
	// permissions or channels to. Nil means DefaultDeniedPeers(); an empty
	// non-nil slice denies nothing. IPv4-mapped IPv6, NAT64 (64:ff9b::/96)
	// and 6to4 (2002::/16) addresses are checked by the IPv4 address they
	// embed as well.
	DeniedPeers []netip.Prefix

	// MaxAllocationsPerUser bounds concurrent allocations per user (the node
	// ID part of the credential's username). A browser makes one allocation
	// per PeerConnection and transport, so this must allow a node's whole
	// active view plus churn. Exceeding it answers 486 Allocation Quota
	// Reached.
	MaxAllocationsPerUser int
	// MaxAllocations bounds concurrent allocations on the whole server.
	// Exceeding it answers 486 Allocation Quota Reached.
	MaxAllocations int
	// BandwidthPerAllocation limits relayed payload bytes per second, per
	// allocation and per direction (client to peers, peers to client).
	// Datagrams over the limit are dropped, as a congested UDP path would.
	// Zero means unlimited.
	BandwidthPerAllocation int64
	// BandwidthBurst is the token bucket depth in bytes: how much may be
	// relayed at once after a quiet period. Zero means one second's worth of
	// BandwidthPerAllocation (but at least MaxDatagramSize). It must be at
	// least MaxDatagramSize or large datagrams could never pass.
	BandwidthBurst int64

	// Logger receives the server's logs, including pion/turn's own.
	Logger zerolog.Logger
	// Now is the clock for credential expiry and bandwidth accounting.
	// Nil means time.Now. Tests inject a fixed clock.
	Now func() time.Time
	// Rand picks relay ports within the range. Nil means a generator seeded
	// from crypto/rand (unpredictable ports make blind injection harder).
	// It is used under the server's lock.
	Rand *rand.Rand
}

// MinSecretLength is the shortest accepted Config.Secret: credentials are
// visible to every client, so a short secret could be brute forced offline.
const MinSecretLength = 16

// MaxDatagramSize is the largest datagram the relay reads from peers; it
// matches pion/turn's relay read buffer.
const MaxDatagramSize = 1600

// MaxUDPSockets bounds Config.UDPSockets.
const MaxUDPSockets = 64

// MaxReadBatch bounds Config.ReadBatch and Config.RelayReadBatch.
const MaxReadBatch = 1024

// MaxAcceptedSecretsLimit bounds Config.MaxAcceptedSecrets: with more, every
// request would cost that many HMACs.
const MaxAcceptedSecretsLimit = 64

// The defaults of the bounds that zero leaves at their default (see Config).
const (
	defaultStreamReadBuffer   = 8 << 10
	defaultReadBatch          = 16
	defaultRelayReadBatch     = 8
	defaultMaxAcceptedSecrets = 8
	defaultMaxVerdicts        = 4096
	defaultMaxListFile        = 1 << 20
)

// maxTableSize bounds Config.MaxVerdicts (1 Mi entries), far above any useful
// value, so a typo cannot let a table grow without end.
const maxTableSize = 1 << 20

// maxSocketBuffer bounds the socket buffer and queue sizes (256 MiB), far
// above any useful value, so a typo cannot ask the kernel for gigabytes.
const maxSocketBuffer = 256 << 20

// maxBandwidth bounds BandwidthPerAllocation and BandwidthBurst (4 GiB) so the
// token bucket's arithmetic cannot overflow.
const maxBandwidth = 1 << 32

// DefaultConfig returns a configuration for a public relay: UDP and TCP on
// 3478, relay ports 49152–65535, the default deny-list, 10,000 allocations,
// 32 per user, 1 MiB/s per allocation and direction, one UDP listener socket
// per GOMAXPROCS with 4 MiB buffers read 16 datagrams per call, 1 MiB relay
// socket buffers, for TCP
// and TLS clients a 256 KiB send buffer, a 64 KiB queue and an 8 KiB read
// buffer, up to 8 accepted secrets besides Secret, 4,096 pending verdicts and
// list files of up to 1 MiB. Secret and PublicIP must still be set.
func DefaultConfig() Config {
	return Config{
		ListenUDP:              "0.0.0.0:3478",
		ListenTCP:              "0.0.0.0:3478",
		TLSHandshakeTimeout:    10 * time.Second,
		UDPSocketBuffer:        4 << 20,
		ReadBatch:              defaultReadBatch,
		RelayReadBatch:         defaultRelayReadBatch,
		RelaySocketBuffer:      1 << 20,
		TCPSendBuffer:          256 << 10,
		TCPQueueSize:           64 << 10,
		StreamReadBuffer:       defaultStreamReadBuffer,
		MaxAcceptedSecrets:     defaultMaxAcceptedSecrets,
		MaxVerdicts:            defaultMaxVerdicts,
		MaxListFile:            defaultMaxListFile,
		RelayPortMin:           49152,
		RelayPortMax:           65535,
		RelayPortAttempts:      16,
		Realm:                  "rtcmesh",
		CredentialTTL:          12 * time.Hour,
		MaxAllocationsPerUser:  32,
		MaxAllocations:         10000,
		BandwidthPerAllocation: 1 << 20,
		Logger:                 zerolog.Nop(),
	}
}

// Validate reports every invalid field of cfg, as New would, without opening a listener: a
// caller (the signaling service, a command line) can refuse a configuration before it binds
// anything.
func (cfg Config) Validate() error {
	_, err := cfg.validate()
	return err
}

// validate checks cfg, in the order its fields are declared, and fills in derived defaults.
// It returns a copy.
func (cfg Config) validate() (Config, error) {
	var errs []error
	if cfg.ListenUDP == "" && cfg.ListenTCP == "" && cfg.ListenTLS == "" {
		errs = append(errs, errors.New("no listener: set ListenUDP, ListenTCP or ListenTLS"))
	}
	if cfg.ListenTLS != "" && cfg.TLSConfig == nil && (cfg.TLSCertFile == "" || cfg.TLSKeyFile == "") {
		errs = append(errs, errors.New("ListenTLS needs TLSCertFile and TLSKeyFile, or TLSConfig"))
	}
	if cfg.ListenTLS != "" && cfg.TLSHandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("TLSHandshakeTimeout must be positive, got %v", cfg.TLSHandshakeTimeout))
	}
	if cfg.UDPSockets < 0 || cfg.UDPSockets > MaxUDPSockets {
		errs = append(errs, fmt.Errorf("UDPSockets must be between 0 (one per GOMAXPROCS) and %d, got %d", MaxUDPSockets, cfg.UDPSockets))
	}
	if cfg.UDPSockets == 0 {
		cfg.UDPSockets = min(runtime.GOMAXPROCS(0), MaxUDPSockets)
	}
	if !reusePortSupported {
		cfg.UDPSockets = 1
	}
	if cfg.UDPSocketBuffer < 0 || cfg.UDPSocketBuffer > maxSocketBuffer {
		errs = append(errs, fmt.Errorf("UDPSocketBuffer must be between 0 and %d, got %d", maxSocketBuffer, cfg.UDPSocketBuffer))
	}
	if cfg.RelaySocketBuffer < 0 || cfg.RelaySocketBuffer > maxSocketBuffer {
		errs = append(errs, fmt.Errorf("RelaySocketBuffer must be between 0 and %d, got %d", maxSocketBuffer, cfg.RelaySocketBuffer))
	}
	if cfg.TCPSendBuffer < 0 || cfg.TCPSendBuffer > maxSocketBuffer {
		errs = append(errs, fmt.Errorf("TCPSendBuffer must be between 0 and %d, got %d", maxSocketBuffer, cfg.TCPSendBuffer))
	}
	if (cfg.ListenTCP != "" || cfg.ListenTLS != "") && (cfg.TCPQueueSize < MaxDatagramSize || cfg.TCPQueueSize > maxSocketBuffer) {
		errs = append(errs, fmt.Errorf("TCPQueueSize must be between MaxDatagramSize (%d) and %d, got %d", MaxDatagramSize, maxSocketBuffer, cfg.TCPQueueSize))
	}
	cfg.StreamReadBuffer = orDefault(cfg.StreamReadBuffer, defaultStreamReadBuffer)
	cfg.ReadBatch = orDefault(cfg.ReadBatch, defaultReadBatch)
	if cfg.ReadBatch < 1 || cfg.ReadBatch > MaxReadBatch {
		errs = append(errs, fmt.Errorf("ReadBatch must be between 1 and %d, got %d", MaxReadBatch, cfg.ReadBatch))
	}
	cfg.RelayReadBatch = orDefault(cfg.RelayReadBatch, defaultRelayReadBatch)
	if cfg.RelayReadBatch < 1 || cfg.RelayReadBatch > MaxReadBatch {
		errs = append(errs, fmt.Errorf("RelayReadBatch must be between 1 and %d, got %d", MaxReadBatch, cfg.RelayReadBatch))
	}
	cfg.MaxAcceptedSecrets = orDefault(cfg.MaxAcceptedSecrets, defaultMaxAcceptedSecrets)
	cfg.MaxVerdicts = orDefault(cfg.MaxVerdicts, defaultMaxVerdicts)
	cfg.MaxListFile = orDefault(cfg.MaxListFile, defaultMaxListFile)
	if (cfg.ListenTCP != "" || cfg.ListenTLS != "") && (cfg.StreamReadBuffer < MaxDatagramSize || cfg.StreamReadBuffer > maxSocketBuffer) {
		errs = append(errs, fmt.Errorf("StreamReadBuffer must be between MaxDatagramSize (%d) and %d, got %d", MaxDatagramSize, maxSocketBuffer, cfg.StreamReadBuffer))
	}
	if !cfg.RelayBindIP.IsValid() {
		cfg.RelayBindIP = netip.IPv4Unspecified()
	}
	switch {
	case !cfg.PublicIP.IsValid() && cfg.RelayBindIP.IsUnspecified():
		errs = append(errs, errors.New("PublicIP is required when RelayBindIP is unspecified"))
	case !cfg.PublicIP.IsValid():
		cfg.PublicIP = cfg.RelayBindIP
	case cfg.PublicIP.IsUnspecified():
		errs = append(errs, fmt.Errorf("PublicIP %v is unspecified; clients cannot reach it", cfg.PublicIP))
	}
	cfg.PublicIP = cfg.PublicIP.Unmap()
	cfg.RelayBindIP = cfg.RelayBindIP.Unmap()
	if cfg.PublicIP.IsValid() && cfg.PublicIP.Is4() != cfg.RelayBindIP.Is4() {
		errs = append(errs, fmt.Errorf("PublicIP %v and RelayBindIP %v are of different address families",
			cfg.PublicIP, cfg.RelayBindIP))
	}
	switch {
	case !cfg.PublicIPv6.IsValid() && cfg.RelayBindIPv6.IsValid():
		errs = append(errs, errors.New("RelayBindIPv6 is set but PublicIPv6 is not"))
	case !cfg.PublicIPv6.IsValid():
	case !cfg.PublicIPv6.Is6() || cfg.PublicIPv6.Is4In6() || cfg.PublicIPv6.IsUnspecified():
		errs = append(errs, fmt.Errorf("PublicIPv6 %v is not a specific IPv6 address", cfg.PublicIPv6))
	case cfg.PublicIP.IsValid() && !cfg.PublicIP.Is4():
		errs = append(errs, fmt.Errorf("PublicIPv6 %v needs an IPv4 PublicIP, got %v: a relay whose PublicIP is IPv6 serves IPv6 only", cfg.PublicIPv6, cfg.PublicIP))
	case cfg.RelayBindIPv6.IsValid() && (!cfg.RelayBindIPv6.Is6() || cfg.RelayBindIPv6.Is4In6()):
		errs = append(errs, fmt.Errorf("RelayBindIPv6 %v is not an IPv6 address", cfg.RelayBindIPv6))
	case !cfg.RelayBindIPv6.IsValid():
		cfg.RelayBindIPv6 = cfg.PublicIPv6
	}
	switch {
	case cfg.RelayPortMin == 0 && cfg.RelayPortMax == 0:
	case cfg.RelayPortMin == 0 || cfg.RelayPortMax < cfg.RelayPortMin:
		errs = append(errs, fmt.Errorf("relay port range %d-%d is invalid", cfg.RelayPortMin, cfg.RelayPortMax))
	}
	if cfg.RelayPortAttempts <= 0 {
		errs = append(errs, fmt.Errorf("RelayPortAttempts must be positive, got %d", cfg.RelayPortAttempts))
	}
	if cfg.Realm == "" {
		errs = append(errs, errors.New("Realm is empty"))
	}
	if cfg.MaxAcceptedSecrets < 1 || cfg.MaxAcceptedSecrets > MaxAcceptedSecretsLimit {
		errs = append(errs, fmt.Errorf("MaxAcceptedSecrets must be between 1 and %d, got %d", MaxAcceptedSecretsLimit, cfg.MaxAcceptedSecrets))
	} else {
		errs = append(errs, checkSecrets(cfg.Secret, cfg.AcceptedSecrets, cfg.MaxAcceptedSecrets)...)
	}
	if cfg.MaxVerdicts < 1 || cfg.MaxVerdicts > maxTableSize {
		errs = append(errs, fmt.Errorf("MaxVerdicts must be between 1 and %d, got %d", maxTableSize, cfg.MaxVerdicts))
	}
	if cfg.MaxListFile < 1 || cfg.MaxListFile > maxListFileLimit {
		errs = append(errs, fmt.Errorf("MaxListFile must be between 1 and %d bytes, got %d", maxListFileLimit, cfg.MaxListFile))
	}
	if cfg.CredentialTTL <= 0 {
		errs = append(errs, fmt.Errorf("CredentialTTL must be positive, got %v", cfg.CredentialTTL))
	}
	if cfg.DeniedPeers == nil {
		cfg.DeniedPeers = DefaultDeniedPeers()
	}
	errs = append(errs, checkPeers(cfg.AllowedPeers, cfg.DeniedPeers)...)
	if cfg.MaxAllocationsPerUser <= 0 {
		errs = append(errs, fmt.Errorf("MaxAllocationsPerUser must be positive, got %d", cfg.MaxAllocationsPerUser))
	}
	if cfg.MaxAllocations <= 0 {
		errs = append(errs, fmt.Errorf("MaxAllocations must be positive, got %d", cfg.MaxAllocations))
	}
	if cfg.BandwidthPerAllocation < 0 {
		errs = append(errs, fmt.Errorf("BandwidthPerAllocation must not be negative, got %d", cfg.BandwidthPerAllocation))
	}
	if cfg.BandwidthPerAllocation > maxBandwidth || cfg.BandwidthBurst > maxBandwidth {
		errs = append(errs, fmt.Errorf("BandwidthPerAllocation and BandwidthBurst must not exceed %d", int64(maxBandwidth)))
	}
	if cfg.BandwidthPerAllocation > 0 {
		if cfg.BandwidthBurst == 0 {
			cfg.BandwidthBurst = max(cfg.BandwidthPerAllocation, MaxDatagramSize)
		}
		if cfg.BandwidthBurst < MaxDatagramSize {
			errs = append(errs, fmt.Errorf("BandwidthBurst %d is below MaxDatagramSize %d", cfg.BandwidthBurst, MaxDatagramSize))
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("turnserver: invalid config: %w", err)
	}
	return cfg, nil
}

// orDefault is v, or def when v is zero.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
