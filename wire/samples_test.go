package wire

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/membership"
)

// sample is one message of one protocol, with the frame it decodes to.
type sample struct {
	name  string
	frame Frame
}

func mem(m membership.Message) Frame { return Frame{Protocol: ProtocolMembership, Membership: m} }
func gsp(m gossip.Message) Frame     { return Frame{Protocol: ProtocolGossip, Gossip: m} }
func ctl(c Control) Frame            { return Frame{Protocol: ProtocolControl, Control: c} }

// msgID returns a recognisable message ID: bytes b, b+1, ..., b+15.
func msgID(b byte) gossip.MessageID {
	var id gossip.MessageID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// seqBytes returns 0, 1, ..., n-1.
func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// nodeID is a node ID as the runtime makes them: 52 characters of base32, here with a
// recognisable prefix.
func nodeID(prefix string) string {
	return prefix + strings.Repeat("a", 52-len(prefix))
}

// goldenSamples are the messages whose frames are committed in testdata/vectors.txt: at least
// one of every type of every protocol, with small recognisable values so the hex can be read.
func goldenSamples() []sample {
	return []sample{
		{"membership/join", mem(membership.Message{Type: membership.Join})},
		{"membership/join_reply", mem(membership.Message{Type: membership.JoinReply})},
		{"membership/forward_join", mem(membership.Message{Type: membership.ForwardJoin, Node: "n1", TTL: 6})},
		{"membership/neighbor_low", mem(membership.Message{Type: membership.Neighbor})},
		{"membership/neighbor_high", mem(membership.Message{Type: membership.Neighbor, HighPriority: true})},
		{"membership/neighbor_reply_refused", mem(membership.Message{Type: membership.NeighborReply})},
		{"membership/neighbor_reply_accepted", mem(membership.Message{Type: membership.NeighborReply, Accepted: true})},
		{"membership/disconnect", mem(membership.Message{Type: membership.Disconnect})},
		{"membership/disconnect_leaving", mem(membership.Message{Type: membership.Disconnect, Leaving: true})},
		{"membership/shuffle", mem(membership.Message{Type: membership.Shuffle, Node: "origin", TTL: 5,
			Nodes: []string{"a", "bb", "ccc"}})},
		{"membership/shuffle_empty", mem(membership.Message{Type: membership.Shuffle, Node: "o", TTL: 0})},
		{"membership/shuffle_reply", mem(membership.Message{Type: membership.ShuffleReply, Nodes: []string{"p1", "p2"}})},
		{"membership/shuffle_reply_empty", mem(membership.Message{Type: membership.ShuffleReply})},
		{"gossip/gossip", gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(0x10), Origin: "src", Hops: 1,
			Payload: []byte("hello")})},
		{"gossip/gossip_hops_300_empty_payload", gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(0x20), Origin: "x", Hops: 300})},
		// Sequence number 300, time 2023-11-14T22:13:20Z in ms, a 96-byte proof 00 01 ... 5f
		// (the size of an Ed25519 public key and signature).
		{"gossip/gossip_signed", gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(0x60), Origin: "src", Hops: 2,
			Seq: 300, Time: 1_700_000_000_000, Payload: []byte("hi"), Proof: seqBytes(96)})},
		{"gossip/gossip_negative_time", gsp(gossip.Message{Type: gossip.Gossip, ID: msgID(0x70), Origin: "y", Hops: 1,
			Seq: 1, Time: -2, Payload: []byte("t")})},
		{"gossip/ihave", gsp(gossip.Message{Type: gossip.IHave, IHave: []gossip.Announcement{
			{ID: msgID(0x30), Hops: 2}, {ID: msgID(0x40), Hops: 65535}}})},
		{"gossip/ihave_empty", gsp(gossip.Message{Type: gossip.IHave})},
		{"gossip/graft", gsp(gossip.Message{Type: gossip.Graft, ID: msgID(0x50)})},
		{"gossip/graft_repair_only", gsp(gossip.Message{Type: gossip.Graft})},
		{"gossip/prune", gsp(gossip.Message{Type: gossip.Prune})},
		// A summary DIGEST as a core sends it at 2023-11-14T22:13:20Z: one span from 290 s to
		// 2 s ago, 3 messages.
		{"gossip/digest", gsp(gossip.Message{Type: gossip.Digest, Salt: 0x0102030405060708, Spans: []gossip.Span{
			{From: 1_700_000_000_000 - 290_000, To: 1_700_000_000_000 - 2_000, Count: 3, Hash: 0x1122334455667788}}})},
		{"gossip/digest_detailed", gsp(gossip.Message{Type: gossip.Digest, Salt: 0xffffffffffffffff, Spans: []gossip.Span{
			{From: -5, To: 0}, {From: 0, To: 10, Count: 2, Hash: 1}, {From: 10, To: 11, Count: 300, Hash: 0xfedcba9876543210}}})},
		{"gossip/have", gsp(gossip.Message{Type: gossip.Have, Spans: []gossip.Span{{From: 1000, To: 2000, Count: 2}},
			Refs: []gossip.MessageRef{{Time: 1000, ID: msgID(0x80)}, {Time: 1500, ID: msgID(0x90)}}})},
		{"gossip/have_reply", gsp(gossip.Message{Type: gossip.Have, Reply: true, Spans: []gossip.Span{
			{From: -10, To: -5, Count: 1}, {From: -5, To: 100}}, Refs: []gossip.MessageRef{{Time: -7, ID: msgID(0xa0)}}})},
		{"gossip/have_empty", gsp(gossip.Message{Type: gossip.Have})},
		// Refs need not be sorted: the second time is a negative delta.
		{"gossip/pull", gsp(gossip.Message{Type: gossip.Pull, Refs: []gossip.MessageRef{
			{Time: 1_700_000_000_000, ID: msgID(0xb0)}, {Time: 1_699_999_999_000, ID: msgID(0xc0)}}})},
		{"gossip/history", gsp(gossip.Message{Type: gossip.History, ID: msgID(0x60), Origin: "src", Hops: 3,
			Seq: 300, Time: 1_700_000_000_000, Payload: []byte("hi"), Proof: seqBytes(96)})},
		{"control/hello", ctl(Control{Type: ControlHello, NodeID: "node-a", Network: "lobby"})},
		{"control/hello_no_network", ctl(Control{Type: ControlHello, NodeID: "node-a"})},
		{"control/ping", ctl(Control{Type: ControlPing, Seq: 1})},
		{"control/ping_seq_300", ctl(Control{Type: ControlPing, Seq: 300})},
		{"control/pong_max_seq", ctl(Control{Type: ControlPong, Seq: ^uint64(0)})},
		{"control/close", ctl(Control{Type: ControlClose, Reason: "bye"})},
		{"control/close_no_reason", ctl(Control{Type: ControlClose})},
	}
}

// appendFrame encodes f with the Append function of its protocol.
func appendFrame(dst []byte, f Frame) ([]byte, error) {
	switch f.Protocol {
	case ProtocolMembership:
		return AppendMembership(dst, f.Membership)
	case ProtocolGossip:
		return AppendGossip(dst, f.Gossip)
	case ProtocolControl:
		return AppendControl(dst, f.Control)
	case ProtocolRouting:
		return AppendRouting(dst, f.Routing)
	}
	return dst, fmt.Errorf("frame of unknown protocol %d", f.Protocol)
}

// framesEqual compares two frames field by field, treating nil and empty slices as equal
// (Decode returns nil for an empty list or payload).
func framesEqual(a, b Frame) bool {
	if a.Protocol != b.Protocol || a.Control != b.Control {
		return false
	}
	am, bm := a.Membership, b.Membership
	if am.Type != bm.Type || am.Node != bm.Node || am.TTL != bm.TTL || am.HighPriority != bm.HighPriority ||
		am.Accepted != bm.Accepted || am.Leaving != bm.Leaving || len(am.Nodes) != len(bm.Nodes) {
		return false
	}
	for i := range am.Nodes {
		if am.Nodes[i] != bm.Nodes[i] {
			return false
		}
	}
	ag, bg := a.Gossip, b.Gossip
	if ag.Type != bg.Type || ag.ID != bg.ID || ag.Origin != bg.Origin || ag.Hops != bg.Hops ||
		ag.Seq != bg.Seq || ag.Time != bg.Time || !bytes.Equal(ag.Proof, bg.Proof) ||
		!bytes.Equal(ag.Payload, bg.Payload) || len(ag.IHave) != len(bg.IHave) {
		return false
	}
	for i := range ag.IHave {
		if ag.IHave[i] != bg.IHave[i] {
			return false
		}
	}
	return ag.Reply == bg.Reply && ag.Salt == bg.Salt && slices.Equal(ag.Spans, bg.Spans) && slices.Equal(ag.Refs, bg.Refs)
}
