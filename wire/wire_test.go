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
	maxSpans, maxHaveSpans := make([]gossip.Span, DefaultLimits().MaxSpans), make([]gossip.Span, DefaultLimits().MaxSpans)
	for i := range maxSpans {
		from := int64(-1<<63) + int64(i)<<57
		maxSpans[i] = gossip.Span{From: from, To: from + 1<<57, Count: ^uint32(0), Hash: ^uint64(0) - uint64(i)}
		maxHaveSpans[i] = gossip.Span{From: from + 1, To: from + 1<<57 - 1, Count: uint32(i)}
	}
	maxSpans[len(maxSpans)-1].To = 1<<63 - 1
	maxRefs := extremeRefs(DefaultLimits().MaxRefs)

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
		sample{"digest one span of the whole int64 range", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{
			{From: -1 << 63, To: 1<<63 - 1, Count: ^uint32(0), Hash: ^uint64(0)}}})},
		sample{"digest width 1 zero salt", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{{From: 7, To: 8}}})},
		sample{"digest max spans", gsp(gossip.Message{Type: gossip.Digest, Salt: 42, Spans: maxSpans})},
		sample{"digest 16 spans", gsp(benchDigest16())},
		sample{"have max spans max refs", gsp(gossip.Message{Type: gossip.Have, Spans: maxHaveSpans, Refs: maxRefs})},
		sample{"have reply refs only", gsp(gossip.Message{Type: gossip.Have, Reply: true,
			Refs: []gossip.MessageRef{{Time: 5, ID: msgID(1)}, {Time: 5, ID: msgID(2)}, {Time: 4}}})},
		sample{"have spans only, adjacent", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{
			{From: -1 << 63, To: 0, Count: 1}, {From: 0, To: 1<<63 - 1, Count: ^uint32(0)}}})},
		sample{"have empty slices", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{}, Refs: []gossip.MessageRef{}})},
		sample{"have 1024 refs", gsp(benchHave1024())},
		sample{"pull max refs, huge deltas", gsp(gossip.Message{Type: gossip.Pull, Refs: maxRefs})},
		sample{"pull int64 extremes", gsp(gossip.Message{Type: gossip.Pull, Refs: []gossip.MessageRef{
			{Time: 1<<63 - 1}, {Time: -1}, {Time: -1 << 63}, {Time: -1}, {Time: 0}, {Time: 1<<63 - 1}}})},
		sample{"pull 1024 refs", gsp(benchPull1024())},
		sample{"history max payload max origin max hops max proof", gsp(gossip.Message{Type: gossip.History, ID: msgID(0xf0),
			Origin: maxID, Hops: MaxHops, Seq: ^uint64(0), Time: -1 << 63, Payload: maxPayload,
			Proof: bytes.Repeat([]byte{0x3c}, DefaultLimits().MaxProof)})},
		sample{"history empty payload", gsp(gossip.Message{Type: gossip.History, Origin: "o", Hops: 1, Seq: 1, Time: 1})},
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
		// Catch-up: fields a type does not carry.
		{"gossip with reply", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Reply: true}),
			"wire: encode gossip GOSSIP: reply: invalid message: set, but GOSSIP does not carry it"},
		{"gossip with salt", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Salt: 1}),
			"wire: encode gossip GOSSIP: salt: invalid message: set, but GOSSIP does not carry it"},
		{"gossip with spans", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip GOSSIP: spans: invalid message: set, but GOSSIP does not carry it"},
		{"gossip with refs", gsp(gossip.Message{Type: gossip.Gossip, Origin: "o", Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip GOSSIP: refs: invalid message: set, but GOSSIP does not carry it"},
		{"ihave with refs", gsp(gossip.Message{Type: gossip.IHave, Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip IHAVE: refs: invalid message: set, but IHAVE does not carry it"},
		{"graft with spans", gsp(gossip.Message{Type: gossip.Graft, Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip GRAFT: spans: invalid message: set, but GRAFT does not carry it"},
		{"prune with salt", gsp(gossip.Message{Type: gossip.Prune, Salt: 1}),
			"wire: encode gossip PRUNE: salt: invalid message: set, but PRUNE does not carry it"},
		{"digest with reply", gsp(gossip.Message{Type: gossip.Digest, Reply: true, Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip DIGEST: reply: invalid message: set, but DIGEST does not carry it"},
		{"digest with refs", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{{To: 1}}, Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip DIGEST: refs: invalid message: set, but DIGEST does not carry it"},
		{"digest with id", gsp(gossip.Message{Type: gossip.Digest, ID: msgID(1), Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip DIGEST: id: invalid message: set, but DIGEST does not carry it"},
		{"digest with origin", gsp(gossip.Message{Type: gossip.Digest, Origin: "o", Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip DIGEST: origin: invalid message: set, but DIGEST does not carry it"},
		{"digest with time", gsp(gossip.Message{Type: gossip.Digest, Time: 5, Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip DIGEST: time: invalid message: set, but DIGEST does not carry it"},
		{"digest with ihave", gsp(gossip.Message{Type: gossip.Digest, IHave: []gossip.Announcement{{}}, Spans: []gossip.Span{{To: 1}}}),
			"wire: encode gossip DIGEST: ihave: invalid message: set, but DIGEST does not carry it"},
		{"have with salt", gsp(gossip.Message{Type: gossip.Have, Salt: 1}),
			"wire: encode gossip HAVE: salt: invalid message: set, but HAVE does not carry it"},
		{"have with id", gsp(gossip.Message{Type: gossip.Have, ID: msgID(1)}),
			"wire: encode gossip HAVE: id: invalid message: set, but HAVE does not carry it"},
		{"have with seq", gsp(gossip.Message{Type: gossip.Have, Seq: 1}),
			"wire: encode gossip HAVE: seq: invalid message: set, but HAVE does not carry it"},
		{"have span with hash", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{{To: 1}, {From: 1, To: 2, Hash: 9}}}),
			"wire: encode gossip HAVE: spans[1].hash: invalid message: set, but HAVE does not carry it"},
		{"pull with reply", gsp(gossip.Message{Type: gossip.Pull, Reply: true, Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip PULL: reply: invalid message: set, but PULL does not carry it"},
		{"pull with spans", gsp(gossip.Message{Type: gossip.Pull, Spans: []gossip.Span{{To: 1}}, Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip PULL: spans: invalid message: set, but PULL does not carry it"},
		{"pull with payload", gsp(gossip.Message{Type: gossip.Pull, Payload: []byte("p"), Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip PULL: payload: invalid message: set, but PULL does not carry it"},
		{"history empty origin", gsp(gossip.Message{Type: gossip.History, Payload: []byte("p")}),
			"wire: encode gossip HISTORY: origin: invalid message: empty node ID"},
		{"history with reply", gsp(gossip.Message{Type: gossip.History, Origin: "o", Reply: true}),
			"wire: encode gossip HISTORY: reply: invalid message: set, but HISTORY does not carry it"},
		{"history with refs", gsp(gossip.Message{Type: gossip.History, Origin: "o", Refs: []gossip.MessageRef{{}}}),
			"wire: encode gossip HISTORY: refs: invalid message: set, but HISTORY does not carry it"},
		{"history with salt", gsp(gossip.Message{Type: gossip.History, Origin: "o", Salt: 1}),
			"wire: encode gossip HISTORY: salt: invalid message: set, but HISTORY does not carry it"},
		// Catch-up: values the format cannot carry.
		{"digest without spans", gsp(gossip.Message{Type: gossip.Digest, Salt: 1}),
			"wire: encode gossip DIGEST: spans: invalid message: none: a DIGEST summarises at least one span"},
		{"digest empty span", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{{From: 5, To: 5}}}),
			"wire: encode gossip DIGEST: spans[0]: invalid message: empty or reversed: to 5 <= from 5"},
		{"digest reversed span", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{{From: 0, To: 2}, {From: 2, To: 1}}}),
			"wire: encode gossip DIGEST: spans[1]: invalid message: empty or reversed: to 1 <= from 2"},
		{"digest spans with a gap", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{{From: 0, To: 2}, {From: 3, To: 4}}}),
			"wire: encode gossip DIGEST: spans[1]: invalid message: from 3 is not the previous span's to 2: a DIGEST's spans are consecutive"},
		{"digest spans overlapping", gsp(gossip.Message{Type: gossip.Digest, Spans: []gossip.Span{{From: 0, To: 2}, {From: 1, To: 4}}}),
			"wire: encode gossip DIGEST: spans[1]: invalid message: from 1 is not the previous span's to 2: a DIGEST's spans are consecutive"},
		{"have empty span", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{{From: -1, To: -1}}}),
			"wire: encode gossip HAVE: spans[0]: invalid message: empty or reversed: to -1 <= from -1"},
		{"have spans overlapping", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{{From: 0, To: 10}, {From: 9, To: 20}}}),
			"wire: encode gossip HAVE: spans[1]: invalid message: from 9 < the previous span's to 10: a HAVE's spans increase and do not overlap"},
		{"have spans decreasing", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{{From: 10, To: 20}, {From: 0, To: 5}}}),
			"wire: encode gossip HAVE: spans[1]: invalid message: from 0 < the previous span's to 20: a HAVE's spans increase and do not overlap"},
		{"have ref delta overflows", gsp(gossip.Message{Type: gossip.Have, Refs: []gossip.MessageRef{{Time: -1 << 63}, {Time: 0}}}),
			"wire: encode gossip HAVE: refs[1].time: invalid message: time 0 minus the previous ref's -9223372036854775808 overflows int64"},
		{"pull without refs", gsp(gossip.Message{Type: gossip.Pull, Refs: []gossip.MessageRef{}}),
			"wire: encode gossip PULL: refs: invalid message: none: a PULL asks for at least one message"},
		{"pull ref negative delta overflows", gsp(gossip.Message{Type: gossip.Pull, Refs: []gossip.MessageRef{{Time: 5}, {Time: 1}, {Time: 1<<63 - 1}, {Time: -2}}}),
			"wire: encode gossip PULL: refs[3].time: invalid message: time -2 minus the previous ref's 9223372036854775807 overflows int64"},
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
	huge.MaxSpans, huge.MaxRefs = 1<<40, 1<<40
	id := func(s string) []byte { return cat(uv(uint64(len(s))), []byte(s)) }
	mid := bytes.Repeat([]byte{0x11}, 16)
	salt := bytes.Repeat([]byte{0x5a}, 8)
	hash := make([]byte, 8)
	vi := func(v int64) []byte { return binary.AppendVarint(nil, v) }

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
		{"protocol 5", nil, h("020501"), ErrMalformed,
			"wire: decode: protocol at offset 1: malformed frame: unknown protocol 5"},

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

		// Catch-up. DIGEST: salt at offset 3, span count at 11, the first From at 12. A DIGEST's
		// spans cannot be non-consecutive on the wire: each starts where the previous ends.
		{"digest no salt", nil, h("020205 0102"), ErrMalformed,
			"wire: decode gossip DIGEST: salt at offset 3: malformed frame: truncated: needs 8 bytes, 2 remain"},
		{"digest no span count", nil, cat(h("020205"), salt), ErrMalformed,
			"wire: decode gossip DIGEST: spans at offset 11: malformed frame: truncated varint"},
		{"digest zero spans", nil, cat(h("020205"), salt, h("00")), ErrMalformed,
			"wire: decode gossip DIGEST: spans at offset 11: malformed frame: count 0: a DIGEST summarises at least one span"},
		{"digest spans over MaxSpans", nil, cat(h("020205"), salt, uv(65)), ErrTooLarge,
			"wire: decode gossip DIGEST: spans at offset 11: limit exceeded: length 65 > MaxSpans 64"},
		{"digest hostile span count", &huge, cat(h("020205"), salt, uv(1e9), h("00 01 00"), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans at offset 11: malformed frame: length 1000000000 needs at least 10000000000 bytes, 11 remain"},
		{"digest span count past end", nil, cat(h("020205"), salt, h("02 00 01 00"), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans at offset 11: malformed frame: length 2 needs at least 20 bytes, 11 remain"},
		{"digest span count varint overflow", nil, cat(h("020205"), salt, h("ffffffffffffffffff02")), ErrMalformed,
			"wire: decode gossip DIGEST: spans at offset 11: malformed frame: varint overflows 64 bits"},
		{"digest from not minimal", nil, cat(h("020205"), salt, h("01 8000 01 00"), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans[0].from at offset 12: malformed frame: varint not minimal"},
		{"digest width 0", nil, cat(h("020205"), salt, h("01 00 00 00"), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans[0].width at offset 13: malformed frame: width 0: a span is never empty"},
		{"digest from + width overflows", nil, cat(h("020205"), salt, h("01"), vi(1<<63-2), h("02 00"), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans[0].width at offset 22: malformed frame: from 9223372036854775806 + width 2 overflows int64"},
		{"digest second span overflows", nil, cat(h("020205"), salt, h("02 00"), uv(1<<63-1), h("00"), hash, h("01 00"), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans[1].width at offset 31: malformed frame: from 9223372036854775807 + width 1 overflows int64"},
		{"digest count over uint32", nil, cat(h("020205"), salt, h("01 00 01"), uv(1<<32), hash), ErrMalformed,
			"wire: decode gossip DIGEST: spans[0].count at offset 14: malformed frame: count 4294967296 > 4294967295"},
		{"digest truncated hash", nil, cat(h("020205"), salt, h("01 00"), uv(1<<63-1), h("00 010203")), ErrMalformed,
			"wire: decode gossip DIGEST: spans[0].hash at offset 23: malformed frame: truncated: needs 8 bytes, 3 remain"},
		{"digest trailing", nil, cat(h("020205"), salt, h("01 00 01 00"), hash, h("00")), ErrMalformed,
			"wire: decode gossip DIGEST: end at offset 23: malformed frame: 1 trailing bytes after the last field"},
		// HAVE: flags at 3, span count at 4, the first span at 5.
		{"have no flags", nil, h("020206"), ErrMalformed,
			"wire: decode gossip HAVE: flags at offset 3: malformed frame: truncated: needs 1 bytes, 0 remain"},
		{"have unknown flags", nil, h("020206 03 00 00"), ErrMalformed,
			"wire: decode gossip HAVE: flags at offset 3: malformed frame: unknown flag bits 0x02"},
		{"have no span count", nil, h("020206 01"), ErrMalformed,
			"wire: decode gossip HAVE: spans at offset 4: malformed frame: truncated varint"},
		{"have spans over MaxSpans", nil, cat(h("020206 00"), uv(65)), ErrTooLarge,
			"wire: decode gossip HAVE: spans at offset 4: limit exceeded: length 65 > MaxSpans 64"},
		{"have hostile span count", &huge, cat(h("020206 00"), uv(1e9), h("00 01 00 00")), ErrMalformed,
			"wire: decode gossip HAVE: spans at offset 4: malformed frame: length 1000000000 needs at least 3000000000 bytes, 4 remain"},
		{"have span count past end", nil, h("020206 00 01 00 01"), ErrMalformed,
			"wire: decode gossip HAVE: spans at offset 4: malformed frame: length 1 needs at least 3 bytes, 2 remain"},
		{"have spans overlapping", nil, cat(h("020206 00 02 00 0a 00"), vi(9), h("01 00 00")), ErrMalformed,
			"wire: decode gossip HAVE: spans[1].from at offset 8: malformed frame: from 9 < the previous span's to 10: a HAVE's spans increase and do not overlap"},
		{"have spans decreasing", nil, cat(h("020206 00 02 00 0a 00"), vi(-1), h("01 00 00")), ErrMalformed,
			"wire: decode gossip HAVE: spans[1].from at offset 8: malformed frame: from -1 < the previous span's to 10: a HAVE's spans increase and do not overlap"},
		{"have width 0", nil, h("020206 00 01 00 00 00 00"), ErrMalformed,
			"wire: decode gossip HAVE: spans[0].width at offset 6: malformed frame: width 0: a span is never empty"},
		{"have from + width overflows", nil, cat(h("020206 00 01"), vi(1<<63-1), h("01 00 00")), ErrMalformed,
			"wire: decode gossip HAVE: spans[0].width at offset 15: malformed frame: from 9223372036854775807 + width 1 overflows int64"},
		{"have count over uint32", nil, cat(h("020206 00 01 00 01"), uv(1<<32), h("00")), ErrMalformed,
			"wire: decode gossip HAVE: spans[0].count at offset 7: malformed frame: count 4294967296 > 4294967295"},
		{"have no refs count", nil, h("020206 00 00"), ErrMalformed,
			"wire: decode gossip HAVE: refs at offset 5: malformed frame: truncated varint"},
		{"have refs over MaxRefs", nil, cat(h("020206 00 00"), uv(1025)), ErrTooLarge,
			"wire: decode gossip HAVE: refs at offset 5: limit exceeded: length 1025 > MaxRefs 1024"},
		{"have hostile refs count", &huge, cat(h("020206 00 00"), uv(1e12), h("00"), mid), ErrMalformed,
			"wire: decode gossip HAVE: refs at offset 5: malformed frame: length 1000000000000 needs at least 17000000000000 bytes, 17 remain"},
		{"have ref time overflows", nil, cat(h("020206 00 00 02"), vi(1<<63-1), mid, vi(1), mid), ErrMalformed,
			"wire: decode gossip HAVE: refs[1].time at offset 32: malformed frame: previous time 9223372036854775807 + delta 1 overflows int64"},
		{"have ref time underflows", nil, cat(h("020206 00 00 02"), vi(-1<<63), mid, vi(-1), mid), ErrMalformed,
			"wire: decode gossip HAVE: refs[1].time at offset 32: malformed frame: previous time -9223372036854775808 + delta -1 overflows int64"},
		{"have ref id truncated", nil, cat(h("020206 00 00 01 8001"), mid[:15]), ErrMalformed,
			"wire: decode gossip HAVE: refs[0].id at offset 8: malformed frame: truncated: needs 16 bytes, 15 remain"},
		{"have trailing", nil, h("020206 00 00 00 00"), ErrMalformed,
			"wire: decode gossip HAVE: end at offset 6: malformed frame: 1 trailing bytes after the last field"},
		// PULL: refs count at 3.
		{"pull no refs count", nil, h("020207"), ErrMalformed,
			"wire: decode gossip PULL: refs at offset 3: malformed frame: truncated varint"},
		{"pull zero refs", nil, h("020207 00"), ErrMalformed,
			"wire: decode gossip PULL: refs at offset 3: malformed frame: count 0: a PULL asks for at least one message"},
		{"pull refs over MaxRefs", nil, cat(h("020207"), uv(1025)), ErrTooLarge,
			"wire: decode gossip PULL: refs at offset 3: limit exceeded: length 1025 > MaxRefs 1024"},
		{"pull refs count past end", nil, cat(h("020207 02 00"), mid, h("00"), mid[:15]), ErrMalformed,
			"wire: decode gossip PULL: refs at offset 3: malformed frame: length 2 needs at least 34 bytes, 33 remain"},
		{"pull time not minimal", nil, cat(h("020207 01 8000"), mid), ErrMalformed,
			"wire: decode gossip PULL: refs[0].time at offset 4: malformed frame: varint not minimal"},
		{"pull time varint overflow", nil, cat(h("020207 01 ffffffffffffffffff02"), mid), ErrMalformed,
			"wire: decode gossip PULL: refs[0].time at offset 4: malformed frame: varint overflows 64 bits"},
		{"pull trailing", nil, cat(h("020207 01 00"), mid, h("00")), ErrMalformed,
			"wire: decode gossip PULL: end at offset 21: malformed frame: 1 trailing bytes after the last field"},
		// HISTORY: GOSSIP's fields.
		{"history truncated id", nil, h("020208 1111"), ErrMalformed,
			"wire: decode gossip HISTORY: id at offset 3: malformed frame: truncated: needs 16 bytes, 2 remain"},
		{"history empty origin", nil, cat(h("020208"), mid, h("00 01 00")), ErrMalformed,
			"wire: decode gossip HISTORY: origin at offset 19: malformed frame: empty node ID"},
		{"history payload over MaxPayload", nil, cat(h("020208"), mid, h("016f 01 01 00"), uv(60*1024+1), make([]byte, 60*1024+1)), ErrTooLarge,
			"wire: decode gossip HISTORY: payload at offset 24: limit exceeded: length 61441 > MaxPayload 61440"},
		{"history proof over MaxProof", nil, cat(h("020208"), mid, h("016f 01 01 00 01 68"), uv(129), make([]byte, 129)), ErrTooLarge,
			"wire: decode gossip HISTORY: proof at offset 26: limit exceeded: length 129 > MaxProof 128"},
		{"history trailing", nil, cat(h("020208"), mid, h("016f 01 01 00 01 68 01 70 69")), ErrMalformed,
			"wire: decode gossip HISTORY: end at offset 28: malformed frame: 1 trailing bytes after the last field"},

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
		// The largest ROUTED: 3 header + 3 * 65 source, target, via + 1 hop limit
		// + 1 waypoints + 1 kind + 10 time + 3 length + 65536 body + 2 length + 128 proof.
		{"payload needs bigger frames", mod(func(l *Limits) { l.MaxPayload = 64 * 1024 }),
			"wire: Limits.MaxFrameSize is 65536, the other limits admit frames of up to 65880 bytes"},
		// 3 header + 2 count + 4096 * (16 + 3).
		{"announcements need bigger frames", mod(func(l *Limits) { l.MaxAnnouncements = 4096 }),
			"wire: Limits.MaxFrameSize is 65536, the other limits admit frames of up to 77829 bytes"},
		{"zero spans", mod(func(l *Limits) { l.MaxSpans = 0 }), "wire: Limits.MaxSpans is 0, must be positive"},
		{"negative refs", mod(func(l *Limits) { l.MaxRefs = -1 }), "wire: Limits.MaxRefs is -1, must be positive"},
		// The largest HAVE: 3 header + 1 flags + 1 span count + 64 * (10 + 10 + 5)
		// + 2 ref count + 4096 * (10 + 16).
		{"refs need bigger frames", mod(func(l *Limits) { l.MaxRefs = 4096 }),
			"wire: Limits.MaxFrameSize is 65536, the other limits admit frames of up to 108103 bytes"},
		// The largest HAVE: 3 + 1 + 2 span count + 4096 * 25 + 3 + 1024 * 26.
		{"spans need bigger frames", mod(func(l *Limits) { l.MaxSpans = 4096 }),
			"wire: Limits.MaxFrameSize is 65536, the other limits admit frames of up to 129032 bytes"},
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
	if l.MaxSpans < g.CatchUpSpans {
		t.Errorf("MaxSpans %d < gossip CatchUpSpans %d", l.MaxSpans, g.CatchUpSpans)
	}
	if l.MaxRefs < g.CatchUpMaxRefs {
		t.Errorf("MaxRefs %d < gossip CatchUpMaxRefs %d", l.MaxRefs, g.CatchUpMaxRefs)
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
		gsp(benchDigest16()),
		gsp(gossip.Message{Type: gossip.Have, Reply: true, Spans: []gossip.Span{{From: 1, To: 5, Count: 2}},
			Refs: benchRefs(64)}),
		gsp(benchHave1024()),
		gsp(benchPull1024()),
		gsp(gossip.Message{Type: gossip.History, ID: msgID(3), Origin: nodeID("o"), Hops: 3, Seq: 9, Time: 7,
			Payload: payload, Proof: seqBytes(96)}),
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
	huge.MaxSpans, huge.MaxRefs = 1<<40, 1<<40
	frames := map[string][]byte{
		"digest 1e9 spans":        cat(h("020205"), make([]byte, 8), uv(1e9), make([]byte, 10)),
		"have 1e9 spans":          cat(h("020206 00"), uv(1e9), make([]byte, 3)),
		"have 1e9 refs":           cat(h("020206 00 00"), uv(1e9), make([]byte, 17)),
		"pull 1e9 refs":           cat(h("020207"), uv(1e9), make([]byte, 17)),
		"history 2^39 payload":    cat(h("020208"), make([]byte, 16), h("016f 01 01 00"), uv(1<<39)),
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

// TestDecodeAllocatesOnlyTheSlices: decoding a catch-up message allocates its Spans and Refs
// and nothing else (a HISTORY: its origin string, as a GOSSIP).
func TestDecodeAllocatesOnlyTheSlices(t *testing.T) {
	l := DefaultLimits()
	for _, c := range []struct {
		name   string
		m      gossip.Message
		allocs float64
	}{
		{"digest 16 spans", benchDigest16(), 1},
		{"have 1024 refs", benchHave1024(), 2},
		{"have empty", gossip.Message{Type: gossip.Have}, 0},
		{"pull 1024 refs", benchPull1024(), 1},
		{"history", gossip.Message{Type: gossip.History, ID: msgID(1), Origin: nodeID("o"), Hops: 1, Payload: []byte("p")}, 1},
	} {
		frame, err := AppendGossip(nil, c.m)
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() { _, err = l.Decode(frame) })
		if err != nil {
			t.Fatal(err)
		}
		if allocs != c.allocs {
			t.Errorf("%s: %v allocations per decode, want %v", c.name, allocs, c.allocs)
		}
	}
}

// TestTruncatedFramesAreRefused cuts every sample frame at every byte: each prefix is refused
// as malformed (no frame is a prefix of another), with an offset inside the prefix.
func TestTruncatedFramesAreRefused(t *testing.T) {
	samples := append(goldenSamples(),
		sample{"digest 16 spans", gsp(benchDigest16())},
		sample{"have extreme refs", gsp(gossip.Message{Type: gossip.Have, Reply: true,
			Spans: []gossip.Span{{From: -1 << 63, To: -5, Count: 1 << 31}, {From: 0, To: 1<<63 - 1}}, Refs: extremeRefs(5)})},
		sample{"pull extreme refs", gsp(gossip.Message{Type: gossip.Pull, Refs: extremeRefs(4)})},
	)
	l := DefaultLimits()
	for _, s := range samples {
		frame, err := appendFrame(nil, s.frame)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for n := range len(frame) {
			_, err := l.Decode(frame[:n])
			var we *Error
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &we) {
				t.Fatalf("%s cut to %d of %d bytes: error %v, want ErrMalformed", s.name, n, len(frame), err)
			}
			if we.Offset < 0 || we.Offset > n {
				t.Fatalf("%s cut to %d bytes: error %v has an offset outside the frame", s.name, n, err)
			}
		}
	}
}

// TestLargestCatchUpFrames checks the arithmetic of the largest DIGEST, HAVE and PULL under
// the default limits, that they fit MaxFrameSize, and that real frames as long as the format
// allows (every varint at its longest where the values permit) stay within it and decode.
func TestLargestCatchUpFrames(t *testing.T) {
	l := DefaultLimits()
	if l.MaxSpans != 64 || l.MaxRefs != 1024 {
		t.Fatalf("default MaxSpans %d, MaxRefs %d: update the arithmetic below", l.MaxSpans, l.MaxRefs)
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{
		// header + salt + span count + first From + 64 * (width + count + hash)
		{"DIGEST", l.largestDigest(), 3 + 8 + 1 + 10 + 64*(10+5+8)},
		// header + flags + span count + 64 * (From + width + count) + ref count + 1024 * (time + ID)
		{"HAVE", l.largestHave(), 3 + 1 + 1 + 64*(10+10+5) + 2 + 1024*(10+16)},
		// header + ref count + 1024 * (time + ID)
		{"PULL", l.largestPull(), 3 + 2 + 1024*(10+16)},
	} {
		if c.got != c.want {
			t.Errorf("largest %s: %d bytes, want %d", c.name, c.got, c.want)
		}
		if c.got > l.MaxFrameSize {
			t.Errorf("largest %s: %d bytes > MaxFrameSize %d", c.name, c.got, l.MaxFrameSize)
		}
		t.Logf("largest %s: %d bytes", c.name, c.got)
	}
	if got := l.largestFrame(); got > l.MaxFrameSize {
		t.Errorf("largest frame %d > MaxFrameSize %d", got, l.MaxFrameSize)
	}

	// Real frames: the DIGEST's spans cover the whole int64 range (widths of 2^58, 9 bytes, and
	// a last one of 10), counts and hashes at their maximum; the refs alternate between times
	// 2^63-1 apart (10-byte deltas).
	digest := make([]gossip.Span, l.MaxSpans)
	have := make([]gossip.Span, l.MaxSpans)
	for i := range digest {
		from := int64(-1<<63) + int64(i)<<58
		digest[i] = gossip.Span{From: from, To: from + 1<<58 - 1, Count: ^uint32(0), Hash: ^uint64(0)}
		if i > 0 {
			digest[i].From = digest[i-1].To
		}
		have[i] = gossip.Span{From: from, To: from + 1<<57, Count: ^uint32(0)}
	}
	digest[len(digest)-1].To = 1<<63 - 1
	refs := extremeRefs(l.MaxRefs)
	for _, c := range []struct {
		name  string
		m     gossip.Message
		bound int
	}{
		{"DIGEST", gossip.Message{Type: gossip.Digest, Salt: ^uint64(0), Spans: digest}, l.largestDigest()},
		{"HAVE", gossip.Message{Type: gossip.Have, Reply: true, Spans: have, Refs: refs}, l.largestHave()},
		{"PULL", gossip.Message{Type: gossip.Pull, Refs: refs}, l.largestPull()},
	} {
		frame, err := AppendGossip(nil, c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(frame) > c.bound {
			t.Errorf("%s of %d bytes exceeds the computed largest %d", c.name, len(frame), c.bound)
		}
		if _, err := l.Decode(frame); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		t.Logf("longest real %s: %d bytes (bound %d)", c.name, len(frame), c.bound)
	}
}

// TestCatchUpFrameSizes logs the sizes of catch-up frames as default cores send them.
func TestCatchUpFrameSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		m    gossip.Message
		max  int
	}{
		{"summary DIGEST", gossip.Message{Type: gossip.Digest, Salt: ^uint64(0) / 3, Spans: []gossip.Span{
			{From: benchRangeLo, To: benchRangeHi, Count: 1000, Hash: ^uint64(0) / 7}}}, 32},
		{"detailed DIGEST of 16 spans", benchDigest16(), 16 * 16},
		{"HAVE of 1024 refs", benchHave1024(), 1024 * 19},
		{"PULL of 1024 refs", benchPull1024(), 1024 * 19},
	} {
		frame, err := AppendGossip(nil, c.m)
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) > c.max {
			t.Errorf("%s: %d bytes, want at most %d", c.name, len(frame), c.max)
		}
		t.Logf("%s: %d bytes", c.name, len(frame))
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

// extremeRefs returns n refs whose times alternate between -2^62-1 and 2^62-2, so that the
// first time and every delta (±(2^63-1)) take the longest varint, 10 bytes.
func extremeRefs(n int) []gossip.MessageRef {
	refs := make([]gossip.MessageRef, n)
	for i := range refs {
		refs[i] = gossip.MessageRef{Time: -(1 << 62) - 1, ID: msgID(byte(i))}
		refs[i].ID[15] = byte(i >> 8)
		if i%2 == 1 {
			refs[i].Time = 1<<62 - 2
		}
	}
	return refs
}
