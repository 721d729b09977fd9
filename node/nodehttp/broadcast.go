// Package nodehttp serves a running node over HTTP for operators: POST /broadcast, which
// broadcasts its body as one message. It exists for hosts that cannot reach a node's standard
// input (a container) and for smoke tests. Metrics and health endpoints live in package
// metrics; this package only adds what acts on the overlay.
package nodehttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/node"
)

// BroadcastFunc broadcasts one message and returns its ID: what POST /broadcast needs of a
// node.
type BroadcastFunc func(data []byte) (id string, err error)

// BroadcastResponse is the JSON body of a successful POST /broadcast.
type BroadcastResponse struct {
	// ID is the message ID, as the deliver events on every node's standard output name it.
	ID string `json:"id"`
	// Bytes is the payload's length.
	Bytes int `json:"bytes"`
	// Queued is true when the node had no neighbour: the message is held and pushed to the
	// first neighbour the node finds (gossip.Config.MaxUnsent bounds how many wait), so it is
	// not lost, but nobody has it yet. The status is then 202 Accepted instead of 200.
	Queued bool `json:"queued,omitempty"`
}

// BroadcastHandler broadcasts the body of a POST as one message and answers its ID as JSON.
// It exists for operators and smoke tests that have no access to a node's standard input (a
// container). The body is bounded by maxPayload, the largest payload gossip accepts; a body
// over it is refused with 413 before more of it is read. An empty body is 400, a method other
// than POST 405, and a node shutting down 503. A node with no neighbour still broadcasts: the
// gossip core keeps the message for its first neighbour (store-and-forward), and the answer is
// 202 Accepted with "queued": true rather than 200, so a caller can tell that nobody has it yet.
// hasNeighbour reports whether the node has one.
func BroadcastHandler(broadcast BroadcastFunc, hasNeighbour func() bool, maxPayload int, log zerolog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fail := func(code int, format string, args ...any) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, format+"\n", args...)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(http.StatusMethodNotAllowed, "method %s not allowed: POST the message as the request body", r.Method)
			return
		}
		if r.ContentLength > int64(maxPayload) {
			fail(http.StatusRequestEntityTooLarge, "body of %d bytes exceeds the largest message, %d bytes", r.ContentLength, maxPayload)
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(maxPayload)))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				fail(http.StatusRequestEntityTooLarge, "body exceeds the largest message, %d bytes", maxPayload)
				return
			}
			fail(http.StatusBadRequest, "reading the body: %v", err)
			return
		}
		if len(data) == 0 {
			fail(http.StatusBadRequest, "empty body: POST the message as the request body")
			return
		}
		queued := !hasNeighbour()
		id, err := broadcast(data)
		if err != nil {
			if errors.Is(err, node.ErrClosed) {
				fail(http.StatusServiceUnavailable, "the node is shutting down")
				return
			}
			log.Error().Err(err).Int("bytes", len(data)).Msg("broadcast over HTTP")
			fail(http.StatusInternalServerError, "broadcast: %v", err)
			return
		}
		log.Info().Str("msg_id", id).Int("bytes", len(data)).Bool("queued", queued).Str("remote", r.RemoteAddr).Msg("broadcast over HTTP")
		w.Header().Set("Content-Type", "application/json")
		if queued {
			w.WriteHeader(http.StatusAccepted)
		}
		_ = json.NewEncoder(w).Encode(BroadcastResponse{ID: id, Bytes: len(data), Queued: queued})
	}
}
