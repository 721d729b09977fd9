package signaling

import (
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ValidateID checks a node ID: 1..MaxIDLength characters of [A-Za-z0-9._-].
func ValidateID(id string) error {
	return validateName("id", id)
}

// ValidateNetwork checks a network name: same rule as ValidateID.
func ValidateNetwork(network string) error {
	return validateName("network", network)
}

func validateName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxIDLength {
		return fmt.Errorf("%s is %d characters, limit %d", what, len(s), MaxIDLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%s has character %q at %d; allowed are [A-Za-z0-9._-]", what, c, i)
		}
	}
	return nil
}

func validateText(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes, limit %d", what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	return nil
}

func validateIDList(what string, ids []string) error {
	if len(ids) > MaxListLength {
		return fmt.Errorf("%s has %d entries, limit %d", what, len(ids), MaxListLength)
	}
	for i, id := range ids {
		if err := ValidateID(id); err != nil {
			return fmt.Errorf("%s[%d]: %w", what, i, err)
		}
	}
	return nil
}

// validateRelay checks the addressing of a relayed message: a client sets to, the server sets
// from, so at least one is present; whichever is present must be a valid ID.
func validateRelay(to, from string) error {
	if to == "" && from == "" {
		return errors.New(`neither "to" nor "from" is set`)
	}
	if to != "" {
		if err := ValidateID(to); err != nil {
			return fmt.Errorf("to: %w", err)
		}
	}
	if from != "" {
		if err := ValidateID(from); err != nil {
			return fmt.Errorf("from: %w", err)
		}
	}
	return nil
}

// ValidateToken checks a network token: at most MaxTokenLength printable ASCII bytes.
func ValidateToken(token string) error {
	if len(token) > MaxTokenLength {
		return fmt.Errorf("token is %d bytes, limit %d", len(token), MaxTokenLength)
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return fmt.Errorf("token has a non-printable or non-ASCII byte at %d", i)
		}
	}
	return nil
}

// EncodeBinary encodes b as challenge.nonce, hello.public_key and hello.signature are
// encoded: unpadded base64url.
func EncodeBinary(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeBinary decodes a field written by EncodeBinary that must hold exactly size bytes;
// what names the field in the error. The length is checked before decoding, and decoding is
// strict (the unused bits of the last character must be zero), so every value has exactly
// one spelling.
func DecodeBinary(what, s string, size int) ([]byte, error) {
	if want := base64.RawURLEncoding.EncodedLen(size); len(s) != want {
		return nil, fmt.Errorf("%s is %d characters, want %d (%d bytes in unpadded base64url)", what, len(s), want, size)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s is not canonical unpadded base64url: %w", what, err)
	}
	if len(b) != size { // unreachable for a canonical encoding of that length
		return nil, fmt.Errorf("%s decodes to %d bytes, want %d", what, len(b), size)
	}
	return b, nil
}

// NonceBytes decodes the nonce.
func (m *Challenge) NonceBytes() ([]byte, error) { return DecodeBinary("nonce", m.Nonce, NonceSize) }

// Validate implements Message.
func (m *Challenge) Validate() error {
	if m.Version != ProtocolVersion {
		return fmt.Errorf("version is %d, want %d", m.Version, ProtocolVersion)
	}
	if err := validatePowBits(m.PowBits); err != nil {
		return err
	}
	_, err := m.NonceBytes()
	return err
}

func validatePowBits(bits int) error {
	if bits < 0 || bits > MaxPowBits {
		return fmt.Errorf("pow_bits is %d, want 0..%d", bits, MaxPowBits)
	}
	return nil
}

// WorkBytes decodes the work nonce; it is nil when the hello carries none.
func (m *Hello) WorkBytes() ([]byte, error) {
	if m.Work == "" {
		return nil, nil
	}
	return DecodeBinary("work", m.Work, WorkNonceSize)
}

// PublicKeyBytes decodes the public key.
func (m *Hello) PublicKeyBytes() ([]byte, error) {
	return DecodeBinary("public_key", m.PublicKey, PublicKeySize)
}

// SignatureBytes decodes the signature.
func (m *Hello) SignatureBytes() ([]byte, error) {
	return DecodeBinary("signature", m.Signature, SignatureSize)
}

// Validate implements Message. It checks the encoding of the proof, not the proof itself,
// which needs the connection's nonce and the identity package.
func (m *Hello) Validate() error {
	if m.Version != ProtocolVersion {
		return fmt.Errorf("version is %d, want %d", m.Version, ProtocolVersion)
	}
	if m.ID != "" {
		if err := ValidateID(m.ID); err != nil {
			return err
		}
	}
	if err := ValidateNetwork(m.Network); err != nil {
		return err
	}
	if err := ValidateToken(m.Token); err != nil {
		return err
	}
	if _, err := m.PublicKeyBytes(); err != nil {
		return err
	}
	if _, err := m.WorkBytes(); err != nil {
		return err
	}
	_, err := m.SignatureBytes()
	return err
}

// Validate implements Message.
func (s *ICEServer) Validate() error {
	if len(s.URLs) == 0 {
		return errors.New("urls is empty")
	}
	if len(s.URLs) > MaxListLength {
		return fmt.Errorf("urls has %d entries, limit %d", len(s.URLs), MaxListLength)
	}
	for i, u := range s.URLs {
		if u == "" {
			return fmt.Errorf("urls[%d] is empty", i)
		}
		if err := validateText(fmt.Sprintf("urls[%d]", i), u, MaxURLLength); err != nil {
			return err
		}
	}
	if err := validateText("username", s.Username, MaxURLLength); err != nil {
		return err
	}
	return validateText("credential", s.Credential, MaxURLLength)
}

// Validate implements Message.
func (m *Welcome) Validate() error {
	if err := ValidateID(m.ID); err != nil {
		return err
	}
	if len(m.ICEServers) > MaxListLength {
		return fmt.Errorf("ice_servers has %d entries, limit %d", len(m.ICEServers), MaxListLength)
	}
	for i := range m.ICEServers {
		if err := m.ICEServers[i].Validate(); err != nil {
			return fmt.Errorf("ice_servers[%d]: %w", i, err)
		}
	}
	if err := validateIDList("contacts", m.Contacts); err != nil {
		return err
	}
	if m.Limits.MaxFrameSize < 0 || m.Limits.Burst < 0 || m.Limits.Rate < 0 {
		return errors.New("limits must not be negative")
	}
	return validatePowBits(m.PowBits)
}

// Validate implements Message.
func (m *Offer) Validate() error {
	if m.SDP == "" {
		return errors.New("sdp is empty")
	}
	return validateRelay(m.To, m.From)
}

// Validate implements Message.
func (m *Answer) Validate() error {
	if m.SDP == "" {
		return errors.New("sdp is empty")
	}
	return validateRelay(m.To, m.From)
}

// Validate implements Message.
func (m *Candidate) Validate() error {
	if m.Candidate == "" {
		return errors.New("candidate is empty")
	}
	return validateRelay(m.To, m.From)
}

// Validate implements Message.
func (m *PeersRequest) Validate() error {
	if m.Max < 0 || m.Max > MaxListLength {
		return fmt.Errorf("max is %d, want 0..%d", m.Max, MaxListLength)
	}
	return nil
}

// Validate implements Message.
func (m *PeerList) Validate() error { return validateIDList("peers", m.Peers) }

// Validate implements Message.
func (m *PeerLeft) Validate() error { return ValidateID(m.ID) }

// Validate implements Message.
func (m *Error) Validate() error {
	if err := validateName("code", string(m.Code)); err != nil {
		return err
	}
	if m.To != "" {
		if err := ValidateID(m.To); err != nil {
			return fmt.Errorf("to: %w", err)
		}
	}
	return validateText("message", m.Message, MaxTextLength)
}

// Validate implements Message.
func (m *Bye) Validate() error { return validateText("reason", m.Reason, MaxTextLength) }
