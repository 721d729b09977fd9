package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/pion/stun/v4"
)

// Several secrets at once. pion/turn's AuthHandler is given the username and realm of a
// request but not the request, and must return the one key MESSAGE-INTEGRITY is then checked
// with; it cannot say "try each of these". So the server checks MESSAGE-INTEGRITY itself first,
// on the client-facing sockets, before pion/turn sees the request (see clientPacketConn.ReadFrom
// and streamFramer): against the key of every accepted secret and, for a request on an existing
// allocation, the key that allocation last authenticated with, even if its secret has since been
// removed. The key that signs is recorded for the client's transport address (a verdict), and
// the AuthHandler returns it. pion/turn reads and handles one message at a time per socket or
// connection, so the verdict recorded for a message is the one its AuthHandler call reads.
//
// So after a secret is removed:
//   - an allocation made under it keeps working: its Refresh, CreatePermission and ChannelBind
//     requests are signed with the key it last used, which it keeps (Stats.RetiredSecretAuths);
//   - a new Allocate under it is refused with 401, like any wrong password.

// secretSet is the secrets the server accepts. It is immutable: Reload swaps in a new one.
type secretSet struct {
	mint string   // Config.Secret: mints credentials, and is accepted
	all  []string // mint first, then Config.AcceptedSecrets, without duplicates
}

func newSecretSet(mint string, accepted []string) *secretSet {
	all := []string{mint}
	for _, s := range accepted {
		if !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	return &secretSet{mint: mint, all: all}
}

// checkSecrets reports a secret that is too short. Secrets are never printed.
func checkSecrets(mint string, accepted []string, maxAccepted int) []error {
	var errs []error
	if len(mint) < MinSecretLength {
		errs = append(errs, fmt.Errorf("Secret must be at least %d bytes, got %d: credentials are visible to every client, so a short secret can be brute forced offline",
			MinSecretLength, len(mint)))
	}
	if len(accepted) > maxAccepted {
		errs = append(errs, fmt.Errorf("AcceptedSecrets holds %d secrets, at most %d (MaxAcceptedSecrets: each costs an HMAC per request)", len(accepted), maxAccepted))
	}
	for i, s := range accepted {
		if len(s) < MinSecretLength {
			errs = append(errs, fmt.Errorf("AcceptedSecrets[%d] must be at least %d bytes, got %d", i, MinSecretLength, len(s)))
		}
	}
	return errs
}

// clientKey identifies a client by its transport address; a verdict is recorded under it.
type clientKey struct {
	tcp    bool
	client netip.AddrPort
}

func clientKeyOf(addr net.Addr) (clientKey, bool) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return clientKey{client: unmapPort(a.AddrPort())}, true
	case *net.TCPAddr:
		return clientKey{tcp: true, client: unmapPort(a.AddrPort())}, true
	default:
		return clientKey{}, false
	}
}

// verdict is the outcome of checking one request's MESSAGE-INTEGRITY against the candidate keys.
type verdict struct {
	username string
	key      []byte
	retired  bool // signed with an allocation's key whose secret is no longer accepted
}

// isSTUNRequest reports whether p looks like a STUN request (RFC 8489: the two top bits zero,
// the magic cookie, class request). ChannelData and indications, the relayed traffic, fail at
// the first or second test.
func isSTUNRequest(p []byte) bool {
	return len(p) >= stunHeaderSize && p[0]&0xc0 == 0 && p[1]&0x10 == 0 && p[0]&0x01 == 0 &&
		p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xa4 && p[7] == 0x42
}

// inspectRequest checks the MESSAGE-INTEGRITY of a request read from client on local against
// the candidate keys and records the verdict. It costs at most 1+Config.MaxAcceptedSecrets+1 integrity
// checks per request with a well-formed, unexpired username (pion/turn then checks once more);
// relayed data (ChannelData, Send indications) is never inspected. A message that is not a
// signed request, or whose integrity no candidate key confirms, records nothing: pion/turn then
// challenges it or, through authenticate, answers 401.
func (s *Server) inspectRequest(p []byte, client, local net.Addr) {
	if !isSTUNRequest(p) {
		return
	}
	ck, ok := clientKeyOf(client)
	if !ok {
		return
	}
	msg := &stun.Message{Raw: append([]byte(nil), p...)} // Check rewrites the length in place
	// pion/turn answers Binding requests without authenticating them, so a verdict for one
	// would only linger in the table.
	if msg.Decode() != nil || msg.Type.Method == stun.MethodBinding || !msg.Contains(stun.AttrMessageIntegrity) {
		return
	}
	var username stun.Username
	var realm stun.Realm
	if username.GetFrom(msg) != nil || realm.GetFrom(msg) != nil || realm.String() != s.cfg.Realm ||
		len(username) > MaxUsernameLength {
		return
	}
	user := username.String()
	if _, err := checkUsername(user, s.cfg.Now()); err != nil {
		return // authenticate refuses it without a key; spare the HMACs
	}
	v := verdict{username: user}
	for _, secret := range s.secrets.Load().all {
		key := longTermKey(user, s.cfg.Realm, restPassword(secret, user))
		if stun.MessageIntegrity(key).Check(msg) == nil {
			v.key = key
			break
		}
	}
	if v.key == nil && msg.Type.Method != stun.MethodAllocate {
		if tk, ok := keyOf(client, local); ok {
			s.allocMu.RLock()
			var key []byte
			if entry := s.allocs[tk]; entry != nil {
				key = entry.auth.key
			}
			s.allocMu.RUnlock()
			if key != nil && stun.MessageIntegrity(key).Check(msg) == nil {
				v.key, v.retired = key, true
			}
		}
	}
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if v.key == nil {
		delete(s.verdicts, ck)
		return
	}
	// The table (Config.MaxVerdicts) holds about one entry per socket or connection busy with a
	// request; entries of requests pion/turn refused before authenticating them (a stale nonce,
	// say) linger until the client's next request, and beyond the bound an arbitrary one is
	// evicted. Only correctly signed requests make a verdict.
	if _, ok := s.verdicts[ck]; !ok && len(s.verdicts) >= s.cfg.MaxVerdicts {
		for k := range s.verdicts {
			delete(s.verdicts, k)
			break
		}
	}
	s.verdicts[ck] = v
}

// verdictFor returns the key recorded for username's latest request from client.
func (s *Server) verdictFor(client net.Addr, username string) (verdict, bool) {
	ck, ok := clientKeyOf(client)
	if !ok {
		return verdict{}, false
	}
	s.allocMu.RLock()
	defer s.allocMu.RUnlock()
	v, ok := s.verdicts[ck]
	if !ok || v.username != username {
		return verdict{}, false
	}
	return v, true
}

var errNoSecret = errors.New("MESSAGE-INTEGRITY matches no accepted secret: wrong password, or a removed secret")

// streamFramer cuts a TCP or TLS client's byte stream into whole TURN frames (STUN messages and
// ChannelData, RFC 8656 section 11.5), so that each Read returns exactly one and a request can
// be inspected before pion/turn handles it. pion/turn's own framer, reading from it, then sees
// one frame per read as well.
type streamFramer struct {
	size       int    // of buf, Config.StreamReadBuffer
	buf        []byte // received bytes; buf[start:end] are not yet returned
	start, end int
}

var errFrameTooLarge = errors.New("TURN frame larger than the read buffer")

// frameSize returns the size of the frame at the start of b, 0 if more bytes are needed to
// know it, or -1 if b does not start with a STUN message or ChannelData.
func frameSize(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	n := int(b[2])<<8 | int(b[3])
	switch {
	case b[0]&0xc0 == 0:
		return stunHeaderSize + n
	case b[0] >= 0x40 && b[0] <= 0x7f: // channels 0x4000-0x7fff (RFC 5766), as pion/turn accepts
		return channelDataHeaderSize + (n+3)&^3
	default:
		return -1
	}
}

// read returns the next frame from r into p, inspecting a request before it is returned.
// Bytes that are not a frame are passed on as they are, so pion/turn fails on them as it would
// have. A frame inspect reports as handled (true) is not returned, and the next one is read.
func (f *streamFramer) read(r func([]byte) (int, error), p []byte, inspect func([]byte) bool) (int, error) {
	if f.buf == nil {
		f.buf = make([]byte, f.size)
	}
	for {
		have := f.buf[f.start:f.end]
		size := frameSize(have)
		switch {
		case size < 0:
			n := copy(p, have)
			f.start += n
			return n, nil
		case size > len(p) || size > len(f.buf):
			return 0, fmt.Errorf("%w: %d bytes", errFrameTooLarge, size)
		case size > 0 && size <= len(have):
			if inspect(have[:size]) {
				f.start += size
				if f.start == f.end {
					f.start, f.end = 0, 0
				}
				continue
			}
			n := copy(p, have[:size])
			f.start += n
			if f.start == f.end {
				f.start, f.end = 0, 0
			}
			return n, nil
		}
		if f.start > 0 && (f.end == len(f.buf) || size > len(f.buf)-f.start) {
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		}
		n, err := r(f.buf[f.end:])
		f.end += n
		if err != nil && n == 0 {
			if f.start < f.end { // a partial frame before the end: pass it on, then the error
				n := copy(p, f.buf[f.start:f.end])
				f.start += n
				return n, nil
			}
			return 0, err
		}
	}
}
