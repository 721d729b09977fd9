// Package bidi is a small client of WebDriver BiDi (https://w3c.github.io/webdriver-bidi/), the
// remote protocol Firefox speaks over a WebSocket when started with --remote-debugging-port.
// It covers what rtcmesh's browser tests need: a session, tabs in user contexts of their own,
// navigation, running JavaScript, typing, console log entries and screenshots. Launch starts a
// headless Firefox with a fresh profile and connects to it; no geckodriver is involved.
package bidi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
)

// Error is a command's error response.
type Error struct {
	Method  string
	Code    string // the spec's error code, e.g. "no such frame"
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("bidi: %s: %s: %s", e.Method, e.Code, e.Message) }

// ErrClosed is returned by calls on a closed client or after the connection is lost.
var ErrClosed = errors.New("bidi: connection closed")

// Event is an event the remote end sent, such as log.entryAdded.
type Event struct {
	Method string
	Params json.RawMessage
}

// message is any message on the wire: a command, its response, or an event.
type message struct {
	ID      *int64          `json:"id,omitempty"`
	Type    string          `json:"type,omitempty"` // success, error or event
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   string          `json:"error,omitempty"`
	Message string          `json:"message,omitempty"`
}

// Client is a connection to a WebDriver BiDi remote end. It is safe for concurrent use.
type Client struct {
	conn *websocket.Conn

	writeMu sync.Mutex
	mu      sync.Mutex
	next    int64
	pending map[int64]chan message
	onEvent func(Event)
	err     error
	done    chan struct{}
}

// Dial connects to a BiDi WebSocket URL (for Firefox, ws://127.0.0.1:port/session).
func Dial(ctx context.Context, url string) (*Client, error) {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bidi: dialing %s: %w", url, err)
	}
	conn.SetReadLimit(64 << 20) // screenshots come back base64-encoded
	c := &Client{conn: conn, pending: map[int64]chan message{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

// OnEvent sets the function called, on the client's reading goroutine, for every event. It
// must not block or call the client.
func (c *Client) OnEvent(f func(Event)) {
	c.mu.Lock()
	c.onEvent = f
	c.mu.Unlock()
}

func (c *Client) read() {
	defer close(c.done)
	for {
		var m message
		if err := c.conn.ReadJSON(&m); err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("%w: %v", ErrClosed, err)
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if m.Type == "event" {
			f := c.onEvent
			c.mu.Unlock()
			if f != nil {
				f(Event{Method: m.Method, Params: m.Params})
			}
			continue
		}
		if m.ID != nil {
			if ch, ok := c.pending[*m.ID]; ok {
				delete(c.pending, *m.ID)
				ch <- m
			}
		}
		c.mu.Unlock()
	}
}

// Call sends a command and waits for its response, decoding its result into result (if not
// nil). A nil params sends {}.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("bidi: %s: %w", method, err)
	}
	ch := make(chan message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()

	c.writeMu.Lock()
	err = c.conn.WriteJSON(message{ID: &id, Method: method, Params: raw})
	c.writeMu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("bidi: sending %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.err
		}
		if m.Type == "error" {
			return &Error{Method: method, Code: m.Error, Message: m.Message}
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("bidi: %s: decoding the result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("bidi: %s: %w", method, ctx.Err())
	}
}

func (c *Client) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Close closes the connection.
func (c *Client) Close() error {
	c.writeMu.Lock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadlineSoon())
	c.writeMu.Unlock()
	err := c.conn.Close()
	<-c.done
	return err
}

// NewSession starts the session (session.new) with no particular capabilities.
func (c *Client) NewSession(ctx context.Context) error {
	return c.Call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, nil)
}

// Subscribe subscribes to events (e.g. "log.entryAdded") in every context.
func (c *Client) Subscribe(ctx context.Context, events ...string) error {
	return c.Call(ctx, "session.subscribe", map[string]any{"events": events}, nil)
}

// CreateUserContext creates a user context: its own cookies and storage, like a private
// window or a Chromium browser context.
func (c *Client) CreateUserContext(ctx context.Context) (string, error) {
	var r struct {
		UserContext string `json:"userContext"`
	}
	err := c.Call(ctx, "browser.createUserContext", nil, &r)
	return r.UserContext, err
}

// CreateTab opens a tab in userContext ("" for the default one) and returns its browsing
// context ID.
func (c *Client) CreateTab(ctx context.Context, userContext string) (string, error) {
	p := map[string]any{"type": "tab"}
	if userContext != "" {
		p["userContext"] = userContext
	}
	var r struct {
		Context string `json:"context"`
	}
	err := c.Call(ctx, "browsingContext.create", p, &r)
	return r.Context, err
}

// Navigate loads url in the browsing context and waits for the load event.
func (c *Client) Navigate(ctx context.Context, browsingContext, url string) error {
	return c.Call(ctx, "browsingContext.navigate", map[string]any{"context": browsingContext, "url": url, "wait": "complete"}, nil)
}

// Screenshot captures the browsing context's viewport as a PNG.
func (c *Client) Screenshot(ctx context.Context, browsingContext string) ([]byte, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := c.Call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": browsingContext}, &r); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(r.Data)
}

// SetViewport sets the browsing context's viewport size in CSS pixels.
func (c *Client) SetViewport(ctx context.Context, browsingContext string, width, height int) error {
	return c.Call(ctx, "browsingContext.setViewport", map[string]any{
		"context": browsingContext, "viewport": map[string]int{"width": width, "height": height}}, nil)
}

// ScriptError is a JavaScript exception thrown by an evaluated script.
type ScriptError struct{ Text string }

func (e *ScriptError) Error() string { return "bidi: script threw: " + e.Text }

// Eval evaluates the JavaScript expression expr in the browsing context, awaits it if it is a
// Promise, and decodes its value, passed through JSON.stringify, into out (if not nil).
func (c *Client) Eval(ctx context.Context, browsingContext, expr string, out any) error {
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	wrapped := "(async () => JSON.stringify(await (" + expr + "\n)))()"
	err := c.Call(ctx, "script.evaluate", map[string]any{
		"expression":      wrapped,
		"target":          map[string]any{"context": browsingContext},
		"awaitPromise":    true,
		"resultOwnership": "none",
	}, &r)
	if err != nil {
		return err
	}
	if r.Type == "exception" {
		return &ScriptError{Text: r.ExceptionDetails.Text}
	}
	if out == nil {
		return nil
	}
	if r.Result.Type != "string" {
		return fmt.Errorf("bidi: script returned %s, not a value JSON can carry", r.Result.Type)
	}
	var s string
	if err := json.Unmarshal(r.Result.Value, &s); err != nil {
		return fmt.Errorf("bidi: decoding the script's result: %w", err)
	}
	return json.Unmarshal([]byte(s), out)
}

// Type sends text as key presses to the browsing context's focused element, as a person typing
// would (keyDown and keyUp per character). "\n" presses Enter.
func (c *Client) Type(ctx context.Context, browsingContext, text string) error {
	var keys []map[string]string
	for _, r := range text {
		k := string(r)
		if r == '\n' {
			k = "\uE007" // WebDriver's Enter key
		}
		keys = append(keys, map[string]string{"type": "keyDown", "value": k}, map[string]string{"type": "keyUp", "value": k})
	}
	return c.Call(ctx, "input.performActions", map[string]any{
		"context": browsingContext,
		"actions": []any{map[string]any{"type": "key", "id": "keyboard", "actions": keys}},
	}, nil)
}

// LogEntry is the part of a log.entryAdded event the tests read.
type LogEntry struct {
	Type   string `json:"type"`  // console or javascript (an uncaught exception)
	Level  string `json:"level"` // debug, info, warn or error
	Text   string `json:"text"`
	Method string `json:"method"` // for console entries: log, warn, error, assert…
	Source struct {
		Context string `json:"context"`
	} `json:"source"`
}
