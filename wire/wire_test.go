package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

// h decodes hex written with spaces between fields for readability.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// uv is v's uvarint encoding.
func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func TestRoundTrip(t *testing.T) {
	maxID := strings.Repeat("z", DefaultLimits().MaxIDLength)
	maxNodes := make([]string, DefaultLimits().MaxNodes)
	for i := range maxNodes {
		maxNodes[i] = nodeID(strings.Repeat("n", i%40+1))
	}
	maxNodes[0] = maxID
	maxPayload := bytes.Repeat([]byte{0xa5}, DefaultLimits().MaxPayload)
	maxIHave := make([]gossip.Announcement, DefaultLimits().MaxAnnouncements)
	for i := range maxIHave {
		maxIHave[i] = gossip.Announcement{ID: msgID(byte(i)), Hops: uint16(i * 257)}
	}
	utf8ID := "nœud-ノード-🛰"

	cases := append(goldenSamples(),
		sample{"forward_join max id max ttl", mem(membership.Message{Type: membership.ForwardJoin, Node: maxID, TTL: 255})},
		sample{"forward_join utf8 id", mem(membership.Message{Type: membership.ForwardJoin, Node: utf8ID, TTL: 1})},
		sample{"shuffle empty nodes slice", mem(membership.Message{Type: membership.Shuffle, Node: "o", TTL: 3, Nodes: []string{}})},
		sample{"shuffle max nodes max ids", mem(membership.Message{Type: membership.Shuffle, Node: maxID, TTL: 6, Nodes: maxNodes})},
		sample{"shuffle_reply max nodes", mem(membership.Message{Type: membership.ShuffleReply, Nodes: maxNodes})},
		sample{"gossip max payload max origin max hops", gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(0xf0),
			Origin: maxID, Hops: MaxHops, Payload: maxPayload})},
		sample{"gossip zero id hops 0 empty payload slice", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Payload: []byte{}})},
		sample{"gossip hops 127/128 boundary", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Hops: 128, Payload: []byte{0}})},
		sample{"gossip max seq min time max proof", gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(1), Origin: "o", Hops: 1,
			Seq: ^uint64(0), Time: -1 << 63, Payload: []byte("p"), Proof: bytes.Repeat([]byte{0x3c}, DefaultLimits().MaxProof)})},
		sample{"gossip max time empty proof slice", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Hops: 1,
			Seq: 1, Time: 1<<63 - 1, Proof: []byte{}})},
		sample{"gossip signed 1 KiB", gsp(signedGossip1KiB())},
		sample{"ihave max announcements", gsp(gossip.Message{Type: gossip.IHave, IHave: maxIHave})},
		sample{"ihave hops 127/128 boundary", gsp(gossip.Message{Type: gossip.IHave, IHave: []gossip.Announcement{
			{ID: msgID(1), Hops: 127}, {ID: msgID(2), Hops: 128}, {ID: msgID(3), Hops: 0}}})},
		sample{"ihave empty slice", gsp(gossip.Message{Type: gossip.IHave, IHave: []gossip.Announcement{}})},
		sample{"graft all-ones id", gsp(gossip.Message{Type: gossip.Graft, ID: gossip.MessageID{
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})},
		sample{"hello max id max network", ctl(Control{Type: ControlHello, NodeID: maxID, Network: maxID})},
		sample{"hello utf8", ctl(Control{Type: ControlHello, NodeID: utf8ID, Network: "réseau"})},
		sample{"ping seq 0", ctl(Control{Type: ControlPing})},
		sample{"pong seq 2^63", ctl(Control{Type: ControlPong, Seq: 1 << 63})},
		sample{"close max reason", ctl(Control{Type: ControlClose, Reason: strings.Repeat("r", DefaultLimits().MaxReasonLength)})},
	)
	limits := DefaultLimits()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte("prefix")
			frame, err := appendFrame(bytes.Clone(prefix), c.frame)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.HasPrefix(frame, prefix) {
				t.Fatalf("encode overwrote the buffer's existing bytes: %x", frame)
			}
			frame = frame[len(prefix):]
			if len(frame) > limits.MaxFrameSize {
				t.Fatalf("frame of %d bytes exceeds the default MaxFrameSize %d", len(frame), limits.MaxFrameSize)
			}
			got, err := limits.Decode(frame)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !framesEqual(got, c.frame) {
				t.Fatalf("decoded %+v\nwant %+v", got, c.frame)
			}
			again, err := appendFrame(nil, got)
			if err != nil || !bytes.Equal(again, frame) {
				t.Fatalf("re-encoding the decoded frame gave %x, %v; want %x", again, err, frame)
			}
		})
	}
}

func TestRoundTripFormatMaxStrings(t *testing.T) {
	// With limits raised to the format's bounds, 255-byte strings (two-byte length) cross.
	l := DefaultLimits()
	l.MaxIDLength, l.MaxReasonLength = MaxStringLength, MaxStringLength
	l.MaxFrameSize = 128 * 1024
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxStringLength)
	for _, f := range []Frame{
		mem(membership.Message{Type: membership.Shuffle, Node: long, TTL: 1, Nodes: []string{long, long}}),
		gsp(gossip.Message{Type: gossip.Gossip, Origin: long, Payload: []byte("p")}),
		ctl(Control{Type: ControlHello, NodeID: long, Network: long}),
		ctl(Control{Type: ControlClose, Reason: long}),
	} {
		frame, err := appendFrame(nil, f)
		if err != nil {
			t.Fatalf("encode %+v: %v", f, err)
		}
		got, err := l.Decode(frame)
		if err != nil || !framesEqual(got, f) {
			t.Fatalf("decode: %+v, %v; want %+v", got, err, f)
		}
	}
}

func TestDecodedPayloadAliasesFrameWithCappedCapacity(t *testing.T) {
	// The frame ends with the payload (length 3, "abc") and the proof (length 2, "pf").
	frame, err := AppendGossip(nil, gossip.Message{Type: gossip.Gossip, Origin: "o", Payload: []byte("abc"), Proof: []byte("pf")})
	if err != nil {
		t.Fatal(err)
	}
	frame = append(frame, "tail"...)[:len(frame)] // spare capacity after the frame
	f, err := DefaultLimits().Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Gossip.Payload
	if &p[0] != &frame[len(frame)-6] {
		t.Errorf("payload does not alias the frame")
	}
	if cap(p) != len(p) {
		t.Errorf("payload cap %d, want %d so appends cannot reach the frame", cap(p), len(p))
	}
	pf := f.Gossip.Proof
	if &pf[0] != &frame[len(frame)-2] {
		t.Errorf("proof does not alias the frame")
	}
	if cap(pf) != len(pf) {
		t.Errorf("proof cap %d, want %d so appends cannot reach the frame", cap(pf), len(pf))
	}
}

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", MaxStringLength+1)
	bad := string([]byte{0xff, 0xfe})
	cases := []struct {
		name  string
		frame Frame
		want  string
	}{
		{"membership type 0", mem(membership.Message{}),
			"wire: encode membership MessageType(0): type: invalid message: unknown membership message type 0"},
		{"membership type 9", mem(membership.Message{Type: 9}),
			"wire: encode membership MessageType(9): type: invalid message: unknown membership message type 9"},
		{"forward_join empty node", mem(membership.Message{Type: membership.ForwardJoin, TTL: 3}),
			"wire: encode membership FORWARD_JOIN: node: invalid message: empty node ID"},
		{"forward_join long node", mem(membership.Message{Type: membership.ForwardJoin, Node: long}),
			"wire: encode membership FORWARD_JOIN: node: invalid message: length 256 > 255, the format's bound"},
		{"shuffle node not utf8", mem(membership.Message{Type: membership.Shuffle, Node: bad}),
			"wire: encode membership SHUFFLE: node: invalid message: not valid UTF-8"},
		{"shuffle empty entry", mem(membership.Message{Type: membership.Shuffle, Node: "o", Nodes: []string{"a", ""}}),
			"wire: encode membership SHUFFLE: nodes[1]: invalid message: empty node ID"},
		{"shuffle_reply long entry", mem(membership.Message{Type: membership.ShuffleReply, Nodes: []string{long}}),
			"wire: encode membership SHUFFLE_REPLY: nodes[0]: invalid message: length 256 > 255, the format's bound"},
		{"join with node", mem(membership.Message{Type: membership.Join, Node: "n"}),
			"wire: encode membership JOIN: node: invalid message: set, but JOIN does not carry it"},
		{"join_reply with ttl", mem(membership.Message{Type: membership.JoinReply, TTL: 1}),
			"wire: encode membership JOIN_REPLY: ttl: invalid message: set, but JOIN_REPLY does not carry it"},
		{"neighbor_reply with high priority", mem(membership.Message{Type: membership.NeighborReply, HighPriority: true}),
			"wire: encode membership NEIGHBOR_REPLY: high_priority: invalid message: set, but NEIGHBOR_REPLY does not carry it"},
		{"neighbor with accepted", mem(membership.Message{Type: membership.Neighbor, Accepted: true}),
			"wire: encode membership NEIGHBOR: accepted: invalid message: set, but NEIGHBOR does not carry it"},
		{"neighbor with leaving", mem(membership.Message{Type: membership.Neighbor, Leaving: true}),
			"wire: encode membership NEIGHBOR: leaving: invalid message: set, but NEIGHBOR does not carry it"},
		{"forward_join with nodes", mem(membership.Message{Type: membership.ForwardJoin, Node: "n", Nodes: []string{"a"}}),
			"wire: encode membership FORWARD_JOIN: nodes: invalid message: set, but FORWARD_JOIN does not carry it"},
		{"gossip type 0", gsp(gossip.Message{}),
			"wire: encode gossip MessageType(0): type: invalid message: unknown gossip message type 0"},
		{"gossip type 9", gsp(gossip.Message{Type: 9}),
			"wire: encode gossip MessageType(9): type: invalid message: unknown gossip message type 9"},
		{"gossip empty origin", gsp(gossip.Message{Type: gossip.Gossip, Payload: []byte("p")}),
			"wire: encode gossip GOSSIP: origin: invalid message: empty node ID"},
		{"gossip origin not utf8", gsp(gossip.Message{Type: gossip.Gossip, Origin: bad}),
			"wire: encode gossip GOSSIP: origin: invalid message: not valid UTF-8"},
		{"gossip with ihave", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", IHave: []gossip.Announcement{{}}}),
			"wire: encode gossip GOSSIP: ihave: invalid message: set, but GOSSIP does not carry it"},
		{"ihave with id", gsp(gossip.Message{Type: gossip.IHave, ID: msgID(1)}),
			"wire: encode gossip IHAVE: id: invalid message: set, but IHAVE does not carry it"},
		{"graft with origin", gsp(gossip.Message{Type: gossip.Graft, Origin: "o"}),
			"wire: encode gossip GRAFT: origin: invalid message: set, but GRAFT does not carry it"},
		{"graft with hops", gsp(gossip.Message{Type: gossip.Graft, Hops: 1}),
			"wire: encode gossip GRAFT: hops: invalid message: set, but GRAFT does not carry it"},
		{"prune with payload", gsp(gossip.Message{Type: gossip.Prune, Payload: []byte("p")}),
			"wire: encode gossip PRUNE: payload: invalid message: set, but PRUNE does not carry it"},
		{"prune with id", gsp(gossip.Message{Type: gossip.Prune, ID: msgID(1)}),
			"wire: encode gossip PRUNE: id: invalid message: set, but PRUNE does not carry it"},
		{"graft with seq", gsp(gossip.Message{Type: gossip.Graft, Seq: 1}),
			"wire: encode gossip GRAFT: seq: invalid message: set, but GRAFT does not carry it"},
		{"ihave with time", gsp(gossip.Message{Type: gossip.IHave, Time: -1}),
			"wire: encode gossip IHAVE: time: invalid message: set, but IHAVE does not carry it"},
		{"prune with proof", gsp(gossip.Message{Type: gossip.Prune, Proof: []byte{1}}),
			"wire: encode gossip PRUNE: proof: invalid message: set, but PRUNE does not carry it"},
		{"control type 0", ctl(Control{}),
			"wire: encode control ControlType(0): type: invalid message: unknown control message type 0"},
		{"control type 5", ctl(Control{Type: 5}),
			"wire: encode control ControlType(5): type: invalid message: unknown control message type 5"},
		{"hello empty node id", ctl(Control{Type: ControlHello, Network: "n"}),
			"wire: encode control HELLO: node_id: invalid message: empty node ID"},
		{"hello long network", ctl(Control{Type: ControlHello, NodeID: "a", Network: long}),
			"wire: encode control HELLO: network: invalid message: length 256 > 255, the format's bound"},
		{"hello with seq", ctl(Control{Type: ControlHello, NodeID: "a", Seq: 1}),
			"wire: encode control HELLO: seq: invalid message: set, but HELLO does not carry it"},
		{"ping with node id", ctl(Control{Type: ControlPing, NodeID: "a"}),
			"wire: encode control PING: node_id: invalid message: set, but PING does not carry it"},
		{"pong with network", ctl(Control{Type: ControlPong, Network: "n"}),
			"wire: encode control PONG: network: invalid message: set, but PONG does not carry it"},
		{"ping with reason", ctl(Control{Type: ControlPing, Reason: "r"}),
			"wire: encode control PING: reason: invalid message: set, but PING does not carry it"},
		{"close with seq", ctl(Control{Type: ControlClose, Seq: 1}),
			"wire: encode control CLOSE: seq: invalid message: set, but CLOSE does not carry it"},
		{"close long reason", ctl(Control{Type: ControlClose, Reason: long}),
			"wire: encode control CLOSE: reason: invalid message: length 256 > 255, the format's bound"},
		{"close reason not utf8", ctl(Control{Type: ControlClose, Reason: bad}),
			"wire: encode control CLOSE: reason: invalid message: not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := appendFrame(dst, c.frame)
			if err == nil {
				t.Fatalf("encoded %x, want error %q", out, c.want)
			}
			if err.Error() != c.want {
				t.Errorf("error\n  %q\nwant\n  %q", err, c.want)
			}
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("error %v does not wrap ErrInvalidMessage", err)
			}
			var we *Error
			if !errors.As(err, &we) || we.Offset != -1 {
				t.Errorf("error %#v is not an *Error with Offset -1", err)
			}
			if string(out) != "keep" {
				t.Errorf("dst changed to %q on error", out)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	def := DefaultLimits()
	huge := def
	huge.MaxNodes, huge.MaxAnnouncements, huge.MaxPayload = 1<<40, 1<<40, 1<<40
	id := func(s string) []byte { return cat(uv(uint64(len(s))), []byte(s)) }
	mid := bytes.Repeat([]byte{0x11}, 16)

	cases := []struct {
		name   string
		limits *Limits // nil: DefaultLimits
		frame  []byte
		kind   error
		want   string
	}{
		// Frame and header.
		{"frame too large", nil, cat(h("020101"), make([]byte, 64*1024-2)), ErrTooLarge,
			"wire: decode: frame at offset 0: limit exceeded: 65537 bytes > MaxFrameSize 65536"},
		{"empty frame", nil, nil, ErrMalformed,
			"wire: decode: version at offset 0: malformed frame: empty frame"},
		{"version 0", nil, h("000101"), ErrVersion,
			"wire: decode: version at offset 0: unsupported version: frame version 0, this node speaks version 2"},
		// Version 1, the format before signed broadcasts: a GOSSIP and a JOIN of version 1.
		{"version 1 gossip", nil, cat(h("010201"), mid, h("016f 01 01 68")), ErrVersion,
			"wire: decode: version at offset 0: unsupported version: frame version 1, this node speaks version 2"},
		{"version 1 join", nil, h("010101"), ErrVersion,
			"wire: decode: version at offset 0: unsupported version: frame version 1, this node speaks version 2"},
		{"version 3", nil, h("030101 deadbeef"), ErrVersion,
			"wire: decode: version at offset 0: unsupported version: frame version 3, this node speaks version 2"},
		{"version 3 short", nil, h("03"), ErrVersion,
			"wire: decode: version at offset 0: unsupported version: frame version 3, this node speaks version 2"},
		{"header of 1 byte", nil, h("02"), ErrMalformed,
			"wire: decode: header at offset 0: malformed frame: 1 bytes, a header has 3"},
		{"header of 2 bytes", nil, h("0201"), ErrMalformed,
			"wire: decode: header at offset 0: malformed frame: 2 bytes, a header has 3"},
		{"protocol 0", nil, h("020001"), ErrMalformed,
			"wire: decode: protocol at offset 1: malformed frame: unknown protocol 0"},
		{"protocol 4", nil, h("020401"), ErrMalformed,
			"wire: decode: protocol at offset 1: malformed frame: unknown protocol 4"},

		// Membership.
		{"membership type 0", nil, h("020100"), ErrMalformed,
			"wire: decode membership MessageType(0): type at offset 2: malformed frame: unknown membership message type 0"},
		{"membership type 9", nil, h("020109"), ErrMalformed,
			"wire: decode membership MessageType(9): type at offset 2: malformed frame: unknown membership message type 9"},
		{"join trailing byte", nil, h("020101 00"), ErrMalformed,
			"wire: decode membership JOIN: end at offset 3: malformed frame: 1 trailing bytes after the last field"},
		{"forward_join no node", nil, h("020103"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: truncated varint"},
		{"forward_join no ttl", nil, h("020103 026e31"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: ttl at offset 6: malformed frame: truncated: needs 1 bytes, 0 remain"},
		{"forward_join empty node", nil, h("020103 00 06"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: empty node ID"},
		{"forward_join node over MaxIDLength", nil, cat(h("020103"), id(strings.Repeat("n", 65)), h("06")), ErrTooLarge,
			"wire: decode membership FORWARD_JOIN: node at offset 3: limit exceeded: length 65 > MaxIDLength 64"},
		{"forward_join node over format bound", nil, cat(h("020103"), uv(256), make([]byte, 257)), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: length 256 > 255, the format's bound"},
		{"forward_join node past end", nil, h("020103 05 6e31"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: length 5 needs 5 bytes, 2 remain"},
		{"forward_join node not utf8", nil, h("020103 02 c328 06"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: not valid UTF-8"},
		{"forward_join length not minimal", nil, h("020103 8200 6e31 06"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: varint not minimal"},
		{"forward_join length truncated varint", nil, h("020103 80"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: node at offset 3: malformed frame: truncated varint"},
		{"forward_join trailing", nil, h("020103 026e31 06 07"), ErrMalformed,
			"wire: decode membership FORWARD_JOIN: end at offset 7: malformed frame: 1 trailing bytes after the last field"},
		{"neighbor no flags", nil, h("020104"), ErrMalformed,
			"wire: decode membership NEIGHBOR: flags at offset 3: malformed frame: truncated: needs 1 bytes, 0 remain"},
		{"neighbor unknown flag", nil, h("020104 02"), ErrMalformed,
			"wire: decode membership NEIGHBOR: flags at offset 3: malformed frame: unknown flag bits 0x02"},
		{"neighbor_reply unknown flags", nil, h("020105 81"), ErrMalformed,
			"wire: decode membership NEIGHBOR_REPLY: flags at offset 3: malformed frame: unknown flag bits 0x80"},
		{"disconnect unknown flags", nil, h("020106 ff"), ErrMalformed,
			"wire: decode membership DISCONNECT: flags at offset 3: malformed frame: unknown flag bits 0xfe"},
		{"shuffle no ttl", nil, h("020107 016f"), ErrMalformed,
			"wire: decode membership SHUFFLE: ttl at offset 5: malformed frame: truncated: needs 1 bytes, 0 remain"},
		{"shuffle no count", nil, h("020107 016f 03"), ErrMalformed,
			"wire: decode membership SHUFFLE: nodes at offset 6: malformed frame: truncated varint"},
		{"shuffle count over MaxNodes", nil, h("020107 016f 03 41"), ErrTooLarge,
			"wire: decode membership SHUFFLE: nodes at offset 6: limit exceeded: length 65 > MaxNodes 64"},
		{"shuffle hostile count", &huge, cat(h("020107 016f 03"), uv(1e9), h("0161")), ErrMalformed,
			"wire: decode membership SHUFFLE: nodes at offset 6: malformed frame: length 1000000000 needs at least 2000000000 bytes, 2 remain"},
		{"shuffle count past end", nil, h("020107 016f 03 03 0161 0162"), ErrMalformed,
			"wire: decode membership SHUFFLE: nodes at offset 6: malformed frame: length 3 needs at least 6 bytes, 4 remain"},
		{"shuffle empty entry", nil, h("020107 016f 03 02 0161 00 00"), ErrMalformed,
			"wire: decode membership SHUFFLE: nodes[1] at offset 9: malformed frame: empty node ID"},
		{"shuffle_reply entry over MaxIDLength", nil, cat(h("020108 01"), id(strings.Repeat("q", 65))), ErrTooLarge,
			"wire: decode membership SHUFFLE_REPLY: nodes[0] at offset 4: limit exceeded: length 65 > MaxIDLength 64"},
		{"shuffle_reply entry truncated", nil, h("020108 02 0161 0362"), ErrMalformed,
			"wire: decode membership SHUFFLE_REPLY: nodes[1] at offset 6: malformed frame: length 3 needs 3 bytes, 1 remain"},
		{"shuffle_reply count varint overflow", nil, h("020108 ffffffffffffffffff02"), ErrMalformed,
			"wire: decode membership SHUFFLE_REPLY: nodes at offset 3: malformed frame: varint overflows 64 bits"},
		{"shuffle_reply count varint 11 bytes", nil, h("020108 ffffffffffffffffff8001"), ErrMalformed,
			"wire: decode membership SHUFFLE_REPLY: nodes at offset 3: malformed frame: varint overflows 64 bits"},
		{"shuffle_reply trailing", nil, h("020108 00 00"), ErrMalformed,
			"wire: decode membership SHUFFLE_REPLY: end at offset 4: malformed frame: 1 trailing bytes after the last field"},

		// Gossip.
		{"gossip type 0", nil, h("020200"), ErrMalformed,
			"wire: decode gossip MessageType(0): type at offset 2: malformed frame: unknown gossip message type 0"},
		{"gossip type 9", nil, h("020209"), ErrMalformed,
			"wire: decode gossip MessageType(9): type at offset 2: malformed frame: unknown gossip message type 9"},
		{"gossip truncated id", nil, h("020201 1111"), ErrMalformed,
			"wire: decode gossip GOSSIP: id at offset 3: malformed frame: truncated: needs 16 bytes, 2 remain"},
		{"gossip empty origin", nil, cat(h("020201"), mid, h("00 01 00")), ErrMalformed,
			"wire: decode gossip GOSSIP: origin at offset 19: malformed frame: empty node ID"},
		{"gossip origin over MaxIDLength", nil, cat(h("020201"), mid, id(strings.Repeat("o", 80)), h("01 00")), ErrTooLarge,
			"wire: decode gossip GOSSIP: origin at offset 19: limit exceeded: length 80 > MaxIDLength 64"},
		{"gossip no hops", nil, cat(h("020201"), mid, h("016f")), ErrMalformed,
			"wire: decode gossip GOSSIP: hops at offset 21: malformed frame: truncated varint"},
		{"gossip hops 65536", nil, cat(h("020201"), mid, h("016f 808004 00")), ErrMalformed,
			"wire: decode gossip GOSSIP: hops at offset 21: malformed frame: hops 65536 > 65535"},
		{"gossip hops not minimal", nil, cat(h("020201"), mid, h("016f 8100 00")), ErrMalformed,
			"wire: decode gossip GOSSIP: hops at offset 21: malformed frame: varint not minimal"},
		{"gossip no seq", nil, cat(h("020201"), mid, h("016f 01")), ErrMalformed,
			"wire: decode gossip GOSSIP: seq at offset 22: malformed frame: truncated varint"},
		{"gossip seq overflow", nil, cat(h("020201"), mid, h("016f 01 ffffffffffffffffff02")), ErrMalformed,
			"wire: decode gossip GOSSIP: seq at offset 22: malformed frame: varint overflows 64 bits"},
		{"gossip seq not minimal", nil, cat(h("020201"), mid, h("016f 01 8100 00 00 00")), ErrMalformed,
			"wire: decode gossip GOSSIP: seq at offset 22: malformed frame: varint not minimal"},
		{"gossip no time", nil, cat(h("020201"), mid, h("016f 01 01")), ErrMalformed,
			"wire: decode gossip GOSSIP: time at offset 23: malformed frame: truncated varint"},
		{"gossip time not minimal", nil, cat(h("020201"), mid, h("016f 01 01 8000 00 00")), ErrMalformed,
			"wire: decode gossip GOSSIP: time at offset 23: malformed frame: varint not minimal"},
		{"gossip no payload length", nil, cat(h("020201"), mid, h("016f 01 01 00")), ErrMalformed,
			"wire: decode gossip GOSSIP: payload at offset 24: malformed frame: truncated varint"},
		{"gossip payload over MaxPayload", nil, cat(h("020201"), mid, h("016f 01 01 00"), uv(60*1024+1), make([]byte, 60*1024+1)), ErrTooLarge,
			"wire: decode gossip GOSSIP: payload at offset 24: limit exceeded: length 61441 > MaxPayload 61440"},
		{"gossip payload past end", nil, cat(h("020201"), mid, h("016f 01 01 00 05 6869")), ErrMalformed,
			"wire: decode gossip GOSSIP: payload at offset 24: malformed frame: length 5 needs at least 5 bytes, 2 remain"},
		{"gossip hostile payload length", &huge, cat(h("020201"), mid, h("016f 01 01 00"), uv(1<<39)), ErrMalformed,
			"wire: decode gossip GOSSIP: payload at offset 24: malformed frame: length 549755813888 needs at least 549755813888 bytes, 0 remain"},
		{"gossip no proof length", nil, cat(h("020201"), mid, h("016f 01 01 00 01 68")), ErrMalformed,
			"wire: decode gossip GOSSIP: proof at offset 26: malformed frame: truncated varint"},
		{"gossip proof over MaxProof", nil, cat(h("020201"), mid, h("016f 01 01 00 01 68"), uv(129), make([]byte, 129)), ErrTooLarge,
			"wire: decode gossip GOSSIP: proof at offset 26: limit exceeded: length 129 > MaxProof 128"},
		{"gossip proof past end", nil, cat(h("020201"), mid, h("016f 01 01 00 01 68 60 0102")), ErrMalformed,
			"wire: decode gossip GOSSIP: proof at offset 26: malformed frame: length 96 needs at least 96 bytes, 2 remain"},
		{"gossip trailing", nil, cat(h("020201"), mid, h("016f 01 01 00 01 68 01 70 69")), ErrMalformed,
			"wire: decode gossip GOSSIP: end at offset 28: malformed frame: 1 trailing bytes after the last field"},
		{"ihave no count", nil, h("020202"), ErrMalformed,
			"wire: decode gossip IHAVE: ihave at offset 3: malformed frame: truncated varint"},
		{"ihave count over MaxAnnouncements", nil, cat(h("020202"), uv(257)), ErrTooLarge,
			"wire: decode gossip IHAVE: ihave at offset 3: limit exceeded: length 257 > MaxAnnouncements 256"},
		{"ihave hostile count", &huge, cat(h("020202"), uv(1e12), mid, h("01")), ErrMalformed,
			"wire: decode gossip IHAVE: ihave at offset 3: malformed frame: length 1000000000000 needs at least 17000000000000 bytes, 17 remain"},
		{"ihave count past end", nil, cat(h("020202 02"), mid, h("01"), mid), ErrMalformed,
			"wire: decode gossip IHAVE: ihave at offset 3: malformed frame: length 2 needs at least 34 bytes, 33 remain"},
		{"ihave hops too large", nil, cat(h("020202 02"), mid, h("01"), mid, h("ffff7f")), ErrMalformed,
			"wire: decode gossip IHAVE: ihave[1] at offset 37: malformed frame: hops 2097151 > 65535"},
		{"ihave hops truncated", nil, cat(h("020202 01"), mid, h("ff")), ErrMalformed,
			"wire: decode gossip IHAVE: ihave[0] at offset 20: malformed frame: truncated varint"},
		{"ihave trailing", nil, cat(h("020202 01"), mid, h("01 00")), ErrMalformed,
			"wire: decode gossip IHAVE: end at offset 21: malformed frame: 1 trailing bytes after the last field"},
		{"graft no id", nil, h("020203"), ErrMalformed,
			"wire: decode gossip GRAFT: id at offset 3: malformed frame: truncated: needs 16 bytes, 0 remain"},
		{"graft trailing", nil, cat(h("020203"), mid, h("00")), ErrMalformed,
			"wire: decode gossip GRAFT: end at offset 19: malformed frame: 1 trailing bytes after the last field"},
		{"prune trailing", nil, h("020204 00"), ErrMalformed,
			"wire: decode gossip PRUNE: end at offset 3: malformed frame: 1 trailing bytes after the last field"},

		// Link control.
		{"control type 0", nil, h("020300"), ErrMalformed,
			"wire: decode control ControlType(0): type at offset 2: malformed frame: unknown control message type 0"},
		{"control type 5", nil, h("020305"), ErrMalformed,
			"wire: decode control ControlType(5): type at offset 2: malformed frame: unknown control message type 5"},
		{"hello empty node id", nil, h("020301 00 00"), ErrMalformed,
			"wire: decode control HELLO: node_id at offset 3: malformed frame: empty node ID"},
		{"hello no network", nil, h("020301 0161"), ErrMalformed,
			"wire: decode control HELLO: network at offset 5: malformed frame: truncated varint"},
		{"hello network over MaxIDLength", nil, cat(h("020301 0161"), id(strings.Repeat("w", 65))), ErrTooLarge,
			"wire: decode control HELLO: network at offset 5: limit exceeded: length 65 > MaxIDLength 64"},
		{"hello network not utf8", nil, h("020301 0161 01 80"), ErrMalformed,
			"wire: decode control HELLO: network at offset 5: malformed frame: not valid UTF-8"},
		{"ping no seq", nil, h("020302"), ErrMalformed,
			"wire: decode control PING: seq at offset 3: malformed frame: truncated varint"},
		{"pong seq overflow", nil, h("020303 ffffffffffffffffff7f"), ErrMalformed,
			"wire: decode control PONG: seq at offset 3: malformed frame: varint overflows 64 bits"},
		{"pong seq not minimal", nil, h("020303 ff80 00"), ErrMalformed,
			"wire: decode control PONG: seq at offset 3: malformed frame: varint not minimal"},
		{"ping trailing", nil, h("020302 01 00"), ErrMalformed,
			"wire: decode control PING: end at offset 4: malformed frame: 1 trailing bytes after the last field"},
		{"close no reason", nil, h("020304"), ErrMalformed,
			"wire: decode control CLOSE: reason at offset 3: malformed frame: truncated varint"},
		{"close reason over MaxReasonLength", nil, cat(h("020304"), id(strings.Repeat("r", 129))), ErrTooLarge,
			"wire: decode control CLOSE: reason at offset 3: limit exceeded: length 129 > MaxReasonLength 128"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := def
			if c.limits != nil {
				l = *c.limits
			}
			f, err := l.Decode(c.frame)
			if err == nil {
				t.Fatalf("decoded %+v, want error %q", f, c.want)
			}
			if err.Error() != c.want {
				t.Errorf("error\n  %q\nwant\n  %q", err, c.want)
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error %v does not wrap %v", err, c.kind)
			}
			var we *Error
			if !errors.As(err, &we) {
				t.Errorf("error %#v is not an *Error", err)
			}
			if !framesEqual(f, Frame{}) {
				t.Errorf("decode returned a non-zero frame %+v with its error", f)
			}
		})
	}
}

func TestZeroLimitsRefuseEverything(t *testing.T) {
	_, err := Limits{}.Decode(h("020101"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("zero Limits decoded a frame: %v", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("DefaultLimits: %v", err)
	}
	mod := func(f func(*Limits)) Limits { l := DefaultLimits(); f(&l); return l }
	cases := []struct {
		name   string
		limits Limits
		want   string
	}{
		{"zero", Limits{}, "wire: Limits.MaxFrameSize is 0, must be positive"},
		{"negative payload", mod(func(l *Limits) { l.MaxPayload = -1 }), "wire: Limits.MaxPayload is -1, must be positive"},
		{"zero reason", mod(func(l *Limits) { l.MaxReasonLength = 0 }), "wire: Limits.MaxReasonLength is 0, must be positive"},
		{"id over format", mod(func(l *Limits) { l.MaxIDLength = 256 }), "wire: Limits.MaxIDLength is 256, the format allows at most 255"},
		{"reason over format", mod(func(l *Limits) { l.MaxReasonLength = 300 }), "wire: Limits.MaxReasonLength is 300, the format allows at most 255"},
		{"zero proof", mod(func(l *Limits) { l.MaxProof = 0 }), "wire: Limits.MaxProof is 0, must be positive"},
		// 3 header + 16 id + 65 origin + 3 hops + 10 seq + 10 time + 3 length + 65536 payload
		// + 2 length + 128 proof.
		{"payload needs bigger frames", mod(func(l *Limits) { l.MaxPayload = 64 * 1024 }),
			"wire: Limits.MaxFrameSize is 65536, the other limits admit frames of up to 65776 bytes"},
		// 3 header + 2 count + 4096 * (16 + 3).
		{"announcements need bigger frames", mod(func(l *Limits) { l.MaxAnnouncements = 4096 }),
			"wire: Limits.MaxFrameSize is 65536, the other limits admit frames of up to 77829 bytes"},
	}
	for _, c := range cases {
		err := c.limits.Validate()
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: Validate() = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestDefaultLimitsCoverCoreDefaults: default cores never send what default receivers refuse.
func TestDefaultLimitsCoverCoreDefaults(t *testing.T) {
	l := DefaultLimits()
	if m := membership.DefaultConfig().MaxMessageNodes; l.MaxNodes < m {
		t.Errorf("MaxNodes %d < membership MaxMessageNodes %d", l.MaxNodes, m)
	}
	g := gossip.DefaultConfig()
	if l.MaxAnnouncements < g.LazyBatchMax {
		t.Errorf("MaxAnnouncements %d < gossip LazyBatchMax %d", l.MaxAnnouncements, g.LazyBatchMax)
	}
	if l.MaxPayload < g.MaxPayload {
		t.Errorf("MaxPayload %d < gossip MaxPayload %d", l.MaxPayload, g.MaxPayload)
	}
	if l.MaxProof < 32+64 {
		t.Errorf("MaxProof %d < 96, an Ed25519 public key and signature", l.MaxProof)
	}
	if l.MaxFrameSize > 64*1024 {
		t.Errorf("MaxFrameSize %d exceeds 64 KiB, the data channel message size every browser accepts", l.MaxFrameSize)
	}
}

func TestEncodeIntoSizedBufferDoesNotAllocate(t *testing.T) {
	payload := bytes.Repeat([]byte{1}, 1024)
	ihave := make([]gossip.Announcement, 64)
	nodes := []string{nodeID("a"), nodeID("b"), nodeID("c")}
	buf := make([]byte, 0, 4096)
	cases := []Frame{
		mem(membership.Message{Type: membership.Shuffle, Node: nodeID("o"), TTL: 6, Nodes: nodes}),
		mem(membership.Message{Type: membership.Neighbor, HighPriority: true}),
		gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(1), Origin: nodeID("o"), Hops: 3, Payload: payload}),
		gsp(signedGossip1KiB()),
		gsp(gossip.Message{Type: gossip.IHave, IHave: ihave}),
		gsp(gossip.Message{Type: gossip.Graft, ID: msgID(2)}),
		ctl(Control{Type: ControlHello, NodeID: nodeID("h"), Network: "lobby"}),
		ctl(Control{Type: ControlPing, Seq: 12345}),
		ctl(Control{Type: ControlClose, Reason: "shutting down"}),
	}
	for _, f := range cases {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			switch f.Protocol {
			case ProtocolMembership:
				buf, err = AppendMembership(buf[:0], f.Membership)
			case ProtocolGossip:
				buf, err = AppendGossip(buf[:0], f.Gossip)
			case ProtocolControl:
				buf, err = AppendControl(buf[:0], f.Control)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("encoding %+v into a sized buffer: %v allocations per run, want 0", f, allocs)
		}
	}
}

// TestHostileCountDoesNotAllocate: a count or length far beyond the frame is refused before
// anything is allocated for it, even when the limits would allow it.
func TestHostileCountDoesNotAllocate(t *testing.T) {
	huge := DefaultLimits()
	huge.MaxNodes, huge.MaxAnnouncements, huge.MaxPayload, huge.MaxProof = 1<<40, 1<<40, 1<<40, 1<<40
	frames := map[string][]byte{
		"shuffle_reply 1e9 nodes": cat(h("020108"), uv(1e9), h("0161")),
		"ihave 1e9 announcements": cat(h("020202"), uv(1e9), make([]byte, 17)),
		"gossip 2^39 payload":     cat(h("020201"), make([]byte, 16), h("016f 01 01 00"), uv(1<<39)),
		"gossip 2^39 proof":       cat(h("020201"), make([]byte, 16), h("016f 01 01 00 00"), uv(1<<39)),
	}
	for name, frame := range frames {
		var err error
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const runs = 100
		allocs := testing.AllocsPerRun(runs, func() { _, err = huge.Decode(frame) })
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: decode error %v, want ErrMalformed", name, err)
		}
		// The error itself costs a few small allocations (the *Error and its detail).
		if allocs > 8 {
			t.Errorf("%s: %v allocations per decode", name, allocs)
		}
		if perRun := (after.TotalAlloc - before.TotalAlloc) / (runs + 1); perRun > 1024 {
			t.Errorf("%s: %d bytes allocated per decode, want well under 1 KiB", name, perRun)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{ProtocolMembership.String(), "membership"}, {ProtocolGossip.String(), "gossip"},
		{ProtocolControl.String(), "control"}, {Protocol(9).String(), "Protocol(9)"},
		{ControlHello.String(), "HELLO"}, {ControlPing.String(), "PING"}, {ControlPong.String(), "PONG"},
		{ControlClose.String(), "CLOSE"}, {ControlType(0).String(), "ControlType(0)"},
		{ControlType(200).String(), "ControlType(200)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
