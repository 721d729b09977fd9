//go:build js && wasm

package signalclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"github.com/rtcmesh/rtcmesh/internal/browser"
)

// browserTransport is the transport in a browser: the page's own WebSocket. The browser sets
// the handshake headers (Config.Header is ignored) and answers the server's pings itself,
// invisibly to the page, so this transport has no idle timeout: a dead connection surfaces as
// the WebSocket's close event.
type browserTransport struct {
	ws    js.Value
	opts  dialOptions
	funcs []js.Func

	mu     sync.Mutex
	inbox  [][]byte
	ended  error // why the connection ended; set once
	wake   chan struct{}
	opened chan error // receives the outcome of the opening handshake once
}

func dial(ctx context.Context, opts dialOptions) (transport, error) {
	ctor := js.Global().Get("WebSocket")
	if ctor.Type() != js.TypeFunction {
		return nil, errors.New("websocket dial: this browser has no WebSocket")
	}
	t := &browserTransport{opts: opts, wake: make(chan struct{}, 1), opened: make(chan error, 1)}
	ws, err := browser.New(ctor, opts.url)
	if err != nil {
		return nil, fmt.Errorf("websocket dial %s: %w", opts.url, err)
	}
	t.ws = ws
	t.ws.Set("binaryType", "arraybuffer")
	t.on("open", func(js.Value) { t.signalOpened(nil) })
	t.on("error", func(js.Value) {
		// The browser hides the cause of a failed handshake from pages; the close event
		// that follows carries the code.
		t.signalOpened(errors.New("connection failed"))
	})
	t.on("message", t.onMessage)
	t.on("close", func(ev js.Value) {
		ce := &CloseError{Code: ev.Get("code").Int(), Reason: ev.Get("reason").String()}
		t.signalOpened(ce)
		t.end(ce)
		for _, name := range []string{"onopen", "onerror", "onmessage", "onclose"} {
			t.ws.Set(name, js.Null())
		}
		funcs := t.funcs
		go func() { // not from inside the callback being released
			for _, f := range funcs {
				f.Release()
			}
		}()
	})
	select {
	case err := <-t.opened:
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("websocket dial %s: %w", opts.url, err)
		}
		return t, nil
	case <-ctx.Done():
		t.Close()
		return nil, fmt.Errorf("websocket dial %s: %w", opts.url, ctx.Err())
	}
}

// on installs handler as the WebSocket's on<event> callback.
func (t *browserTransport) on(event string, handler func(ev js.Value)) {
	t.funcs = append(t.funcs, browser.On(t.ws, event, handler))
}

func (t *browserTransport) signalOpened(err error) {
	select {
	case t.opened <- err:
	default: // already decided
	}
}

func (t *browserTransport) onMessage(ev js.Value) {
	data := ev.Get("data")
	if data.Type() != js.TypeString {
		t.fail(errors.New("server sent a binary frame; the protocol uses text frames only"))
		return
	}
	frame := data.String()
	if len(frame) > t.opts.maxFrameSize {
		t.fail(fmt.Errorf("server sent a %d-byte frame, above the %d-byte limit", len(frame), t.opts.maxFrameSize))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended != nil {
		return
	}
	// A page cannot stop a WebSocket from reading, so instead of growing without bound the
	// connection is closed (and the client reconnects) if the reader falls this far behind;
	// the client's read loop normally keeps the inbox near empty.
	if len(t.inbox) >= t.opts.maxUnread {
		t.ended = fmt.Errorf("more than %d unread frames from the server", t.opts.maxUnread)
		t.ws.Call("close", 1008, "reader too slow")
	} else {
		t.inbox = append(t.inbox, []byte(frame))
	}
	t.notify()
}

// fail ends the connection for err: pending and later reads return it.
func (t *browserTransport) fail(err error) {
	t.end(err)
	t.ws.Call("close", 1008, "protocol violation")
}

func (t *browserTransport) end(err error) {
	t.mu.Lock()
	if t.ended == nil {
		t.ended = err
	}
	t.notify()
	t.mu.Unlock()
}

// notify wakes a waiting reader. t.mu must be held.
func (t *browserTransport) notify() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *browserTransport) ReadMessage() ([]byte, error) {
	for {
		t.mu.Lock()
		if len(t.inbox) > 0 {
			frame := t.inbox[0]
			t.inbox[0] = nil
			t.inbox = t.inbox[1:]
			t.mu.Unlock()
			return frame, nil
		}
		ended := t.ended
		t.mu.Unlock()
		if ended != nil {
			return nil, ended
		}
		<-t.wake
	}
}

func (t *browserTransport) WriteMessage(frame []byte) error {
	t.mu.Lock()
	ended := t.ended
	t.mu.Unlock()
	if ended != nil {
		return ended
	}
	if _, err := browser.Call(t.ws, "send", string(frame)); err != nil {
		return fmt.Errorf("websocket send: %w", err)
	}
	return nil
}

func (t *browserTransport) Close() error {
	t.end(errors.New("websocket closed"))
	// close() on a closing or closed socket is a no-op; it never throws for these arguments.
	t.ws.Call("close", 1000)
	return nil
}
