package rtclink

import (
	"errors"

	"github.com/rtcmesh/rtcmesh/link"
)

// The Transport (transport.go) is the same in both builds; what differs is the WebRTC stack
// underneath: pion in a Go process (transport_pion.go), the page's RTCPeerConnection in a
// browser (transport_js.go). Each build implements the two interfaces below, so that the
// compiler checks both against one contract.

// stack is a build's WebRTC implementation: it holds what every connection of the Transport
// shares (the Transport's disposable DTLS certificate, pion's API) and opens connections. Each build provides
// newStack(cfg *Config, log zerolog.Logger) (stack, error), which New calls once.
type stack interface {
	// newPeerConn creates one link attempt's connection (offerer: this end dialled and makes
	// the offer; otherwise it answers) with the ICE servers servers and its
	// one data channel (pre-negotiated, id dataChannelID), and wires the connection's events
	// to h.
	newPeerConn(servers []ICEServer, offerer bool, h peerHandlers) (peerConn, error)
	// close releases what the stack holds for all connections (the pion build's own shared
	// UDP socket), once every connection is closed.
	close() error
}

// peerConn is one link attempt's connection and its data channel. A replaced attempt (glare,
// reconnect) gets a new peerConn, so events of an old one concern only its own, closed, conn.
//
// The Transport calls the signalling methods (createOffer to addCandidate) one at a time under
// conn.opMu; fingerprints to path once, when the data channel has opened, before the link is
// up; send one at a time under conn.writeMu; receive from the link's one reader goroutine; and
// close once, when the link is closed.
type peerConn interface {
	// createOffer creates an offer, sets it as the local description and returns its SDP.
	createOffer() (sdp string, err error)
	// setRemoteOffer sets the peer's offer as the remote description.
	setRemoteOffer(sdp string) error
	// createAnswer answers the remote offer, sets the answer as the local description and
	// returns its SDP.
	createAnswer() (sdp string, err error)
	// setRemoteAnswer sets the peer's answer to our offer as the remote description.
	setRemoteAnswer(sdp string) error
	// addCandidate adds a remote ICE candidate, given as RTCIceCandidateInit JSON that has
	// been checked to name a candidate.
	addCandidate(init string) error

	// fingerprints returns the SHA-256 of this end's DTLS certificate and of the one the
	// peer presented, as the DTLS handshake verified it. Both ends sign the pair with their
	// identity keys (see proof.go): that binds the node IDs to this very DTLS session.
	fingerprints() (local, remote []byte, err error)
	// startChannel readies the open data channel for send and receive.
	startChannel() error
	// maxMessageSize is the largest message the peer accepts (its SCTP max-message-size), or
	// 0 if it set no limit.
	maxMessageSize() int
	// selectedPair returns the ICE candidate types ("host", "srflx", "prflx", "relay") of the
	// two ends of the selected candidate pair; ok is false if there is none yet.
	selectedPair() (local, remote string, ok bool)

	// send queues one message on the data channel: a frame, or link control if text. It does
	// not keep msg.
	send(msg []byte, text bool) error
	// bufferedAmount is the number of bytes queued on the data channel and not yet sent.
	bufferedAmount() int
	// receive waits for the next message from the peer. Its error ends the link: errConnClosed
	// after close, a downReason when the peer or the platform ended it, or any other error
	// for a failed read.
	receive() (inMessage, error)
	// close closes the connection and releases what it holds.
	close() error
}

// peerHandlers are the Transport's callbacks for the events of one peerConn. All but
// arrived may block for a while (they take the Transport's locks, call the Signaler, and open
// waits for the connection's statistics), so a platform whose callbacks must never block (the
// browser's event loop) calls them on goroutines of their own.
type peerHandlers struct {
	// candidate takes a local ICE candidate, as RTCIceCandidateInit JSON, to the peer.
	candidate func(init string)
	// down reports that the connection failed or closed, with the LinkDown reason.
	down func(reason string)
	// open reports that pc's data channel opened: DTLS and SCTP are up.
	open func(pc peerConn)
	// arrived is called as each message arrives, before it is kept for receive: it records
	// the sign of life for the heartbeat. When it returns false (a frozen Transport) the
	// message is dropped.
	arrived func() bool
}

// inMessage is one message received on a data channel.
type inMessage struct {
	data []byte
	text bool // link control rather than a frame
}

// downReason is an error of receive that gives the reason of the LinkDown it causes.
type downReason string

func (r downReason) Error() string { return string(r) }

// errConnClosed is receive's error once the connection has been closed locally: the link is
// down already and nothing is to be reported.
var errConnClosed = errors.New("rtclink: connection closed")

// pathOf maps the selected ICE candidate pair to a Path: the least direct of the two ends, in
// the order relay, srflx, prflx, host. (On loopback the remote end is often prflx: the peer's
// check arrives before its candidate.)
func pathOf(pc peerConn) link.Path {
	local, remote, ok := pc.selectedPair()
	if !ok {
		return ""
	}
	has := func(typ string) bool { return local == typ || remote == typ }
	switch {
	case has("relay"):
		return link.PathRelay
	case has("srflx"):
		return link.PathSrflx
	case has("prflx"):
		return link.PathPrflx
	default:
		return link.PathHost
	}
}
