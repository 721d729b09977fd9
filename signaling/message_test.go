package signaling

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testID = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst" // 52 chars of base32

func TestParseValidMessages(t *testing.T) {
	cases := []struct {
		in   string
		want Message
	}{
		{`{"type":"hello","id":"` + testID + `","network":"lobby","token":"x"}`,
			&Hello{ID: testID, Network: "lobby", Token: "x"}},
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
		{"field of another type", `{"type":"hello","id":"a","network":"n","sdp":"s"}`, 0, ErrUnknownField, TypeHello, `"sdp"`},
		{"nested unknown field", `{"type":"welcome","id":"a","limits":{"rate":1,"x":2}}`, 0, ErrUnknownField, TypeWelcome, "limits"},
		{"ice unknown field", `{"type":"welcome","id":"a","ice_servers":[{"urls":["stun:x"],"url":"y"}]}`, 0, ErrUnknownField, TypeWelcome, "ice_servers[0]"},
		{"wrong field type", `{"type":"peers","max":"3"}`, 0, ErrMalformed, TypePeers, ""},
		{"fraction", `{"type":"peers","max":1.5}`, 0, ErrMalformed, TypePeers, ""},
		{"hello no id", `{"type":"hello","network":"n"}`, 0, ErrInvalidField, TypeHello, "id is empty"},
		{"hello bad id", `{"type":"hello","id":"a b","network":"n"}`, 0, ErrInvalidField, TypeHello, "character"},
		{"hello long id", `{"type":"hello","id":"` + long + `","network":"n"}`, 0, ErrInvalidField, TypeHello, "limit 64"},
		{"hello bad network", `{"type":"hello","id":"a","network":"a/b"}`, 0, ErrInvalidField, TypeHello, "network"},
		{"hello token space", `{"type":"hello","id":"a","network":"n","token":"a b"}`, 0, ErrInvalidField, TypeHello, "token"},
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
		{parse(`{"type":"hello","id":"","network":"n"}`), true, CodeBadHello},
		{parse(`{"type":"hello","id":"a","network":"n","x":1}`), true, CodeBadHello},
		{parse(`{"type":"hello","id":"","network":"n"}`), false, CodeMalformed},
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
		&Hello{ID: testID, Network: "lobby"},
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
