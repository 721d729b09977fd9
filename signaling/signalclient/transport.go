package signalclient

import (
	"strconv"
	"time"
)

// transport is one WebSocket connection to the server. This seam keeps the WebSocket library
// out of the client logic: transport_gorilla.go (built for !js) implements it with
// gorilla/websocket; a transport_js.go twin can implement it on the browser's WebSocket with
// the same dial function, and the rest of the package compiles unchanged for js/wasm.
type transport interface {
	// ReadMessage returns the next text frame. It fails when the connection ends (returning
	// the close frame's code and reason if there was one), when a frame exceeds the size
	// limit, or when the server stays silent for the idle timeout. Called by one goroutine.
	ReadMessage() ([]byte, error)
	// WriteMessage sends one text frame within the write timeout. Called by one goroutine,
	// possibly concurrently with ReadMessage.
	WriteMessage(frame []byte) error
	// Close sends a normal close frame (best effort) and releases the connection, which
	// makes pending ReadMessage and WriteMessage calls fail. Safe to call concurrently and
	// more than once.
	Close() error
}

// dialOptions is what a transport needs to know; every field comes from Config.
type dialOptions struct {
	url          string
	header       map[string][]string
	maxFrameSize int
	writeTimeout time.Duration
	idleTimeout  time.Duration
	// maxUnread bounds the frames received and not yet read. Only the browser transport
	// needs it (a page cannot stop a WebSocket from reading); it is Config.EventQueueLength,
	// the client's own bound on what it holds for a slow reader.
	maxUnread int
}

// CloseError is how a transport reports the server's close frame, whatever the library.
type CloseError struct {
	// Code is the WebSocket close code, e.g. 1001 going away, 1008 policy violation.
	Code int
	// Reason is the close frame's text; after a fatal error it is the signaling.ErrorCode.
	Reason string
}

func (e *CloseError) Error() string {
	return "websocket closed by server: " + strconv.Itoa(e.Code) + " " + e.Reason
}
