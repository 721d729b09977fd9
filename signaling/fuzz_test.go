package signaling

import (
	"encoding/base64"
	"reflect"
	"testing"
)

func b64(b []byte, padded bool) string {
	if padded {
		return base64.URLEncoding.EncodeToString(b)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// FuzzParseMessage checks that no input panics the parser, and that whatever it accepts
// survives Marshal and parses back to the same message.
func FuzzParseMessage(f *testing.F) {
	seeds := []string{
		`{"type":"hello","id":"a","network":"n","token":"t"}`, // version 1
		`{"type":"challenge","version":2,"nonce":"` + testNonce + `"}`,
		`{"type":"challenge","nonce":"` + testNonce + `"}`,
		`{"type":"challenge","version":3,"nonce":"x"}`,
		`{"type":"challenge","version":2,"nonce":"` + testNonce[:42] + `B"}`,
		testHello(""),
		testHello(`,"id":"` + testID + `","token":"t"`),
		testHello(`,"version":1`),
		testHello(`,"version":-9223372036854775808`),
		testHello(`,"version":1e3`),
		testHello(`,"public_key":"` + testKey + `=="`),
		testHello(`,"signature":"` + testSig[:85] + `_"`),
		testHello(`,"signature":null`),
		testHello(`,"work":"AAAAAAAAAAE"`),
		testHello(`,"work":"AAAAAAAAAAF"`),
		testHello(`,"work":""`),
		`{"type":"challenge","version":2,"nonce":"` + testNonce + `","pow_bits":20}`,
		`{"type":"challenge","version":2,"nonce":"` + testNonce + `","pow_bits":33}`,
		`{"type":"welcome","id":"a","limits":{"max_frame_size":1,"rate":1,"burst":1},"pow_bits":-1}`,
		`{"type":"hello","version":2}`,
		`{"type":"welcome","id":"a","ice_servers":[{"urls":["stun:x"],"username":"u","credential":"c"}],"contacts":["b"],"limits":{"max_frame_size":1,"rate":1,"burst":1}}`,
		`{"type":"offer","to":"b","sdp":"v=0"}`,
		`{"type":"answer","from":"b","sdp":"v=0"}`,
		`{"type":"candidate","to":"b","from":"c","candidate":"{}"}`,
		`{"type":"peers","max":3}`,
		`{"type":"peer-list","peers":["a"]}`,
		`{"type":"peer-left","id":"a"}`,
		`{"type":"error","code":"x","message":"m","fatal":true,"to":"b"}`,
		`{"type":"bye","reason":"r"}`,
		`{"type":"offer","to":"b","sdp":"\ud800"}`,
		`{"type":"welcome","id":"a","limits":null,"ice_servers":null}`,
		`null`, `[]`, `{}`, `{"type":null}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data, 4096)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseMessage returned both %#v and %v", m, err)
			}
			return
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("accepted %q but cannot marshal %#v: %v", data, m, err)
		}
		again, err := ParseMessage(b, 0)
		if err != nil {
			t.Fatalf("re-parse of %s (from %q): %v", b, data, err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("round trip changed the message: %#v → %s → %#v", m, b, again)
		}
	})
}

// normalize maps empty slices to nil: omitempty drops an empty list, which then parses as nil.
func normalize(m Message) Message {
	switch m := m.(type) {
	case *Welcome:
		c := *m
		if len(c.ICEServers) == 0 {
			c.ICEServers = nil
		}
		if len(c.Contacts) == 0 {
			c.Contacts = nil
		}
		return &c
	case *PeerList:
		c := *m
		if len(c.Peers) == 0 {
			c.Peers = nil
		}
		return &c
	}
	return m
}
