package signaling

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testID = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst" // 52 chars of base32

// Well-formed binary fields: 43 characters encode 32 bytes, 86 encode 64. The last character
// of a 32-byte value must leave its 2 unused bits zero ("A", "Q", "g" or "w").
var (
	testKey   = strings.Repeat("k", 42) + "w"
	testNonce = strings.Repeat("n", 42) + "A"
	testSig   = strings.Repeat("s", 85) + "w"
)

// testHello is a well-formed v2 hello frame (its signature proves nothing).
func testHello(extra string) string {
	return `{"type":"hello","version":2,"network":"lobby","public_key":"` + testKey + `","signature":"` + testSig + `"` + extra + `}`
}

func TestParseValidMessages(t *testing.T) {
	cases := []struct {
		in   string
		want Message
	}{
		{`{"type":"hello","version":2,"id":"` + testID + `","network":"lobby","token":"x","public_key":"` + testKey + `","signature":"` + testSig + `"}`,
			&Hello{Version: 2, ID: testID, Network: "lobby", Token: "x", PublicKey: testKey, Signature: testSig}},
		{testHello(""), &Hello{Version: 2, Network: "lobby", PublicKey: testKey, Signature: testSig}},
		{`{"type":"challenge","version":2,"nonce":"` + testNonce + `"}`, &Challenge{Version: 2, Nonce: testNonce}},
		{`{"type":"challenge","version":2,"nonce":"` + testNonce + `","pow_bits":20}`, &Challenge{Version: 2, Nonce: testNonce, PowBits: 20}},
		{testHello(`,"work":"AAAAAAAAAAE"`), &Hello{Version: 2, Network: "lobby", PublicKey: testKey, Signature: testSig, Work: "AAAAAAAAAAE"}},
		{`{"type":"welcome","id":"a","limits":{"max_frame_size":1,"rate":1,"burst":1},"pow_bits":8}`, &Welcome{ID: "a", Limits: Limits{MaxFrameSize: 1, Rate: 1, Burst: 1}, PowBits: 8}},
		{`{"type":"welcome","id":"a","ice_servers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:127.0.0.1"],"username":"u","credential":"c"}],"contacts":["b","c"],"limits":{"max_frame_size":65536,"rate":20,"burst":100}}`,
			&Welcome{ID: "a", ICEServers: []ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}, {URLs: []string{"turn:127.0.0.1"}, Username: "u", Credential: "c"}},
				Contacts: []string{"b", "c"}, Limits: Limits{MaxFrameSize: 65536, Rate: 20, Burst: 100}}},
		{`{"type":"offer","to":"b","sdp":"v=0"}`, &Offer{To: "b", SDP: "v=0"}},
		{`{"type":"answer","from":"b","sdp":"v=0"}`, &Answer{From: "b", SDP: "v=0"}},
		{`{"type":"candidate","to":"b","candidate":"{\"candidate\":\"x\"}"}`, &Candidate{To: "b", Candidate: `{"candidate":"x"}`}},
		{`{"type":"peers"}`, &PeersRequest{}},
		{`{"type":"peers","max":5}`, &PeersRequest{Max: 5}},
		{`{"type":"peer-list","peers":[]}`, &PeerList{Peers: []string{}}},
		{`{"type":"peer-left","id":"x.y_z-1"}`, &PeerLeft{ID: "x.y_z-1"}},
		{`{"type":"error","code":"unknown_target","message":"nope","to":"b"}`, &Error{Code: CodeUnknownTarget, Message: "nope", To: "b"}},
		{`{"type":"bye","reason":"maintenance"}`, &Bye{Reason: "maintenance"}},
		{` {"sdp":"s", "type":"offer", "to":"b"} `, &Offer{To: "b", SDP: "s"}},
	}
	for _, tc := range cases {
		got, err := ParseMessage([]byte(tc.in), 0)
		if err != nil {
			t.Errorf("ParseMessage(%s): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMessage(%s) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", MaxIDLength+1)
	cases := []struct {
		name    string
		in      string
		max     int
		want    error
		typ     Type
		contain string
	}{
		{"too large", `{"type":"peers"}`, 10, ErrTooLarge, "", "limit 10"},
		{"not json", `{"type":`, 0, ErrMalformed, "", "not a JSON object"},
		{"array", `[1,2]`, 0, ErrMalformed, "", "not a JSON object"},
		{"null", `null`, 0, ErrMalformed, "", "null"},
		{"string", `"hello"`, 0, ErrMalformed, "", "not a JSON object"},
		{"missing type", `{"id":"a"}`, 0, ErrMalformed, "", `missing "type"`},
		{"type not string", `{"type":7}`, 0, ErrMalformed, "", "not a string"},
		{"trailing data", `{"type":"peers"} {}`, 0, ErrMalformed, "", ""},
		{"unknown type", `{"type":"subscribe"}`, 0, ErrUnknownType, "subscribe", `"subscribe"`},
		{"unknown field", `{"type":"offer","to":"b","sdp":"s","priority":1}`, 0, ErrUnknownField, TypeOffer, `"priority"`},
		{"wrong case", `{"type":"offer","to":"b","SDP":"s"}`, 0, ErrUnknownField, TypeOffer, `"SDP"`},
		{"field of another type", testHello(`,"sdp":"s"`), 0, ErrUnknownField, TypeHello, `"sdp"`},
		{"nested unknown field", `{"type":"welcome","id":"a","limits":{"rate":1,"x":2}}`, 0, ErrUnknownField, TypeWelcome, "limits"},
		{"ice unknown field", `{"type":"welcome","id":"a","ice_servers":[{"urls":["stun:x"],"url":"y"}]}`, 0, ErrUnknownField, TypeWelcome, "ice_servers[0]"},
		{"wrong field type", `{"type":"peers","max":"3"}`, 0, ErrMalformed, TypePeers, ""},
		{"fraction", `{"type":"peers","max":1.5}`, 0, ErrMalformed, TypePeers, ""},
		{"hello bad id", testHello(`,"id":"a b"`), 0, ErrInvalidField, TypeHello, "character"},
		{"hello long id", testHello(`,"id":"` + long + `"`), 0, ErrInvalidField, TypeHello, "limit 64"},
		{"hello bad network", `{"type":"hello","version":2,"network":"a/b","public_key":"` + testKey + `","signature":"` + testSig + `"}`, 0, ErrInvalidField, TypeHello, "network"},
		{"hello token space", testHello(`,"token":"a b"`), 0, ErrInvalidField, TypeHello, "token"},
		{"hello v1", `{"type":"hello","id":"a","network":"n"}`, 0, ErrUnsupportedVersion, TypeHello, "hello had version 1 (no version field)"},
		{"hello v1 explicit", `{"type":"hello","version":1,"id":"a","network":"n"}`, 0, ErrUnsupportedVersion, TypeHello, "hello had version 1"},
		{"hello v3 with new fields", `{"type":"hello","version":3,"future":true}`, 0, ErrUnsupportedVersion, TypeHello, "hello had version 3"},
		{"hello version string", `{"type":"hello","version":"2"}`, 0, ErrMalformed, TypeHello, "version"},
		{"hello version float", `{"type":"hello","version":2.5}`, 0, ErrMalformed, TypeHello, "version"},
		{"hello version null", `{"type":"hello","version":null,"network":"lobby","public_key":"` + testKey + `","signature":"` + testSig + `"}`, 0, ErrUnsupportedVersion, TypeHello, "version 0"},
		{"hello no key", `{"type":"hello","version":2,"network":"n","signature":"` + testSig + `"}`, 0, ErrInvalidField, TypeHello, "public_key is 0 characters"},
		{"hello no signature", `{"type":"hello","version":2,"network":"n","public_key":"` + testKey + `"}`, 0, ErrInvalidField, TypeHello, "signature is 0 characters"},
		{"hello short key", testHello(`,"public_key":"` + testKey[1:] + `"`), 0, ErrInvalidField, TypeHello, "public_key is 42 characters, want 43"},
		{"hello padded key", testHello(`,"public_key":"` + testKey + `="`), 0, ErrInvalidField, TypeHello, "public_key is 44"},
		{"hello non-canonical key", testHello(`,"public_key":"` + testKey[:42] + `x"`), 0, ErrInvalidField, TypeHello, "canonical"},
		{"hello std base64 key", testHello(`,"public_key":"` + testKey[:41] + `+w"`), 0, ErrInvalidField, TypeHello, "canonical"},
		{"hello long signature", testHello(`,"signature":"` + testSig + `AA"`), 0, ErrInvalidField, TypeHello, "signature is 88"},
		{"hello key wrong case", testHello(`,"Public_Key":"x"`), 0, ErrUnknownField, TypeHello, "Public_Key"},
		{"hello short work", testHello(`,"work":"AAAAAAAAAA"`), 0, ErrInvalidField, TypeHello, "work is 10 characters, want 11"},
		{"hello non-canonical work", testHello(`,"work":"AAAAAAAAAAF"`), 0, ErrInvalidField, TypeHello, "work is not canonical"},
		{"challenge pow too high", `{"type":"challenge","version":2,"nonce":"` + testNonce + `","pow_bits":33}`, 0, ErrInvalidField, TypeChallenge, "pow_bits is 33"},
		{"challenge pow negative", `{"type":"challenge","version":2,"nonce":"` + testNonce + `","pow_bits":-1}`, 0, ErrInvalidField, TypeChallenge, "pow_bits is -1"},
		{"welcome pow too high", `{"type":"welcome","id":"a","pow_bits":99}`, 0, ErrInvalidField, TypeWelcome, "pow_bits"},
		{"challenge v1", `{"type":"challenge","nonce":"` + testNonce + `"}`, 0, ErrUnsupportedVersion, TypeChallenge, "challenge had version 1"},
		{"challenge v3", `{"type":"challenge","version":3,"salt":"x"}`, 0, ErrUnsupportedVersion, TypeChallenge, "challenge had version 3"},
		{"challenge short nonce", `{"type":"challenge","version":2,"nonce":"abc"}`, 0, ErrInvalidField, TypeChallenge, "nonce is 3 characters"},
		{"challenge no nonce", `{"type":"challenge","version":2}`, 0, ErrInvalidField, TypeChallenge, "nonce"},
		{"challenge nonce not string", `{"type":"challenge","version":2,"nonce":7}`, 0, ErrMalformed, TypeChallenge, "nonce"},
		{"offer no sdp", `{"type":"offer","to":"b"}`, 0, ErrInvalidField, TypeOffer, "sdp is empty"},
		{"offer no address", `{"type":"offer","sdp":"s"}`, 0, ErrInvalidField, TypeOffer, "neither"},
		{"candidate empty", `{"type":"candidate","to":"b","candidate":""}`, 0, ErrInvalidField, TypeCandidate, "candidate is empty"},
		{"peers negative", `{"type":"peers","max":-1}`, 0, ErrInvalidField, TypePeers, "max"},
		{"error no code", `{"type":"error"}`, 0, ErrInvalidField, TypeError, "code"},
		{"welcome empty urls", `{"type":"welcome","id":"a","ice_servers":[{"urls":[]}]}`, 0, ErrInvalidField, TypeWelcome, "urls is empty"},
		{"peer list bad id", `{"type":"peer-list","peers":["ok","n o"]}`, 0, ErrInvalidField, TypePeerList, "peers[1]"},
	}
	for _, tc := range cases {
		_, err := ParseMessage([]byte(tc.in), tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		var me *MessageError
		if !errors.As(err, &me) {
			t.Errorf("%s: %T is not a *MessageError", tc.name, err)
			continue
		}
		if me.Type != tc.typ {
			t.Errorf("%s: MessageError.Type = %q, want %q", tc.name, me.Type, tc.typ)
		}
		if !strings.Contains(err.Error(), tc.contain) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.contain)
		}
	}
}

func TestCodeFor(t *testing.T) {
	parse := func(s string) error { _, err := ParseMessage([]byte(s), 100); return err }
	cases := []struct {
		err        error
		helloPhase bool
		want       ErrorCode
	}{
		{parse(strings.Repeat(" ", 101)), false, CodeFrameTooLarge},
		{parse(`{`), true, CodeMalformed},
		{parse(`{"type":"nope"}`), false, CodeUnknownType},
		{parse(`{"type":"hello","version":2,"network":"n"}`), true, CodeBadHello},
		{parse(`{"type":"hello","version":2,"network":"n","x":1}`), true, CodeBadHello},
		{parse(`{"type":"hello","version":2,"network":"n"}`), false, CodeMalformed},
		{parse(`{"type":"hello","id":"a","network":"n"}`), true, CodeUnsupportedVersion},
		{parse(`{"type":"hello","version":7}`), false, CodeUnsupportedVersion},
		{parse(`{"type":"challenge","version":1}`), false, CodeUnsupportedVersion},
		{parse(`{"type":"offer","to":"b"}`), false, CodeMalformed},
	}
	for i, tc := range cases {
		if got := CodeFor(tc.err, tc.helloPhase); got != tc.want {
			t.Errorf("case %d (%v): CodeFor = %q, want %q", i, tc.err, got, tc.want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	msgs := []Message{
		&Challenge{Version: ProtocolVersion, Nonce: testNonce},
		&Hello{Version: ProtocolVersion, ID: testID, Network: "lobby", PublicKey: testKey, Signature: testSig},
		&Welcome{ID: "a", Limits: Limits{MaxFrameSize: 1, Rate: 0.5, Burst: 2}},
		&Offer{From: "a", SDP: "v=0\r\n"},
		&Answer{To: "a", SDP: "v=0\r\n"},
		&Candidate{To: "a", Candidate: `{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}`},
		&PeersRequest{},
		&PeerList{Peers: []string{"a", "b"}},
		&PeerLeft{ID: "a"},
		&Error{Code: CodeReplaced, Message: "m", Fatal: true},
		&Bye{},
	}
	for _, m := range msgs {
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", m, err)
		}
		if !strings.HasPrefix(string(b), `{"type":"`+string(m.Type())+`"`) {
			t.Errorf("Marshal(%T) = %s, want type first", m, b)
		}
		got, err := ParseMessage(b, 0)
		if err != nil {
			t.Fatalf("ParseMessage(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %s: got %#v, want %#v", b, got, m)
		}
	}
	if got := len(KnownTypes()); got != len(msgs) {
		t.Errorf("KnownTypes has %d types, test covers %d", got, len(msgs))
	}
}

func TestMarshalValidates(t *testing.T) {
	if _, err := Marshal(&Offer{To: "not valid!", SDP: "s"}); err == nil {
		t.Error("Marshal accepted an invalid target")
	}
	if _, err := Marshal(&Welcome{ID: "a", ICEServers: []ICEServer{{}}}); err == nil {
		t.Error("Marshal accepted an ICE server without URLs")
	}
	if _, err := Marshal(nil); err == nil {
		t.Error("Marshal accepted nil")
	}
}

func TestNetworkToken(t *testing.T) {
	secret := []byte("s3cret")
	tok := NetworkToken(secret, "team")
	if len(tok) != 64 {
		t.Fatalf("token %q is not 64 hex chars", tok)
	}
	mac := networkMAC(secret, "team")
	encodings := map[string]string{
		"hex":           tok,
		"upper hex":     strings.ToUpper(tok),
		"base64url":     b64(mac, false),
		"base64url pad": b64(mac, true),
	}
	for name, s := range encodings {
		if !VerifyNetworkToken(secret, "team", s) {
			t.Errorf("%s token %q rejected", name, s)
		}
	}
	bad := map[string]string{
		"other network": NetworkToken(secret, "other"),
		"other secret":  NetworkToken([]byte("x"), "team"),
		"empty":         "",
		"truncated":     tok[:63],
		"not hex":       strings.Repeat("z", 64),
	}
	for name, s := range bad {
		if VerifyNetworkToken(secret, "team", s) {
			t.Errorf("%s token %q accepted", name, s)
		}
	}
}

// A relayed SDP full of '<', '>' and '&' must not grow sixfold on the way through the server.
func TestMarshalDoesNotEscapeHTML(t *testing.T) {
	sdp := strings.Repeat("<>&", 1000)
	b, err := Marshal(&Offer{From: "alice", SDP: sdp})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), sdp) || len(b) > len(sdp)+64 {
		t.Fatalf("marshalled offer is %d bytes for a %d-byte SDP: %.80s", len(b), len(sdp), b)
	}
	m, err := ParseMessage(b, 1<<20)
	if err != nil || m.(*Offer).SDP != sdp {
		t.Fatalf("round trip: %v", err)
	}
}
