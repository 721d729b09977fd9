package rtclink

// Signal types.
const (
	SignalOffer     = "offer"
	SignalAnswer    = "answer"
	SignalCandidate = "candidate"
)

// Signal is one signaling message between two Transports. The signaling
// service relays it unchanged and stamps the sender's ID on delivery.
type Signal struct {
	Type string // SignalOffer, SignalAnswer or SignalCandidate
	// SDP is the session description (offer and answer).
	SDP string
	// Candidate is the JSON encoding of a webrtc.ICECandidateInit (candidate).
	Candidate string
}

// Signaler sends signals to peers, typically through the signaling client.
// SendSignal is called from several goroutines and should not block for long
// (queue and return). Signals to one peer must be delivered in the order of
// the SendSignal calls, and an error means the signal was not sent.
type Signaler interface {
	SendSignal(to string, s Signal) error
}
