//go:build js && wasm

// Command peer is the rtcmesh browser peer, built for GOOS=js GOARCH=wasm and loaded by the
// demo page (package web). It is a full member of the mesh: the same node runtime, HyParView
// and Plumtree cores and wire format as a Go node, with the browser's RTCPeerConnection and
// WebSocket underneath (the js twins in link/rtclink, signaling/signalclient and identity).
//
// The page configures it through globalThis.rtcmeshConfig ({signalURL, network, logLevel})
// and receives its events through globalThis.rtcmeshHooks ({onReady, onMessage, onLinkEvent,
// onError}); once joined it exposes globalThis.rtcmesh with id, broadcast(text),
// snapshot() and close(), which return Promises because a Go callback must never block the
// page's event loop. Broadcasts are chat messages (package chat), so every receiver can
// show their latency.
package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall/js"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/chat"
	"github.com/rtcmesh/rtcmesh/gossip"
	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/node"
)

func main() {
	hooks := js.Global().Get("rtcmeshHooks")
	p, err := start(js.Global().Get("rtcmeshConfig"), hooks)
	if err != nil {
		callHook(hooks, "onError", err.Error())
		return
	}
	js.Global().Set("rtcmesh", p.api())
	callHook(hooks, "onReady", p.node.ID())
	select {} // the exported functions live as long as the page
}

// peer is the running browser peer.
type peer struct {
	node  *node.WebRTCNode
	hooks js.Value
	funcs []js.Func
}

// start reads the page's configuration and starts the node.
func start(cfg, hooks js.Value) (*peer, error) {
	if cfg.Type() != js.TypeObject {
		return nil, errors.New("rtcmeshConfig is not set: the page must set it before starting the peer")
	}
	signalURL := stringField(cfg, "signalURL", "")
	network := stringField(cfg, "network", "demo")
	if signalURL == "" {
		return nil, errors.New("rtcmeshConfig.signalURL is empty")
	}
	level, err := zerolog.ParseLevel(stringField(cfg, "logLevel", "info"))
	if err != nil {
		return nil, fmt.Errorf("rtcmeshConfig.logLevel: %w", err)
	}
	id, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	logger := zerolog.New(consoleWriter{}).Level(level).With().Timestamp().Logger()
	wc := node.DefaultWebRTCConfig(id, signalURL, network)
	wc.Node.Logger = logger
	wc.Signal.Logger = logger
	wc.Link.Logger = logger
	n, err := node.StartWebRTC(wc)
	if err != nil {
		return nil, err
	}
	p := &peer{node: n, hooks: hooks}
	go p.forwardDeliveries()
	go p.forwardEvents()
	return p, nil
}

func stringField(v js.Value, name, def string) string {
	if f := v.Get(name); f.Type() == js.TypeString {
		return f.String()
	}
	return def
}

// api builds the globalThis.rtcmesh object.
func (p *peer) api() js.Value {
	obj := js.Global().Get("Object").New()
	obj.Set("id", p.node.ID())
	obj.Set("broadcast", p.promiseFunc(func(args []js.Value) (any, error) {
		if len(args) < 1 || args[0].Type() != js.TypeString {
			return nil, errors.New("broadcast takes the text to send")
		}
		payload, err := chat.Encode(chat.Message{Text: args[0].String(), SentAt: time.Now()})
		if err != nil {
			return nil, err
		}
		mid, err := p.node.Broadcast(payload)
		if err != nil {
			return nil, err
		}
		return mid.String(), nil
	}))
	obj.Set("snapshot", p.promiseFunc(func([]js.Value) (any, error) { return p.snapshot(), nil }))
	obj.Set("close", p.promiseFunc(func([]js.Value) (any, error) { return nil, p.node.Close() }))
	return obj
}

// promiseFunc wraps fn as a JavaScript function returning a Promise. fn runs on its own
// goroutine: it may wait for the node, which a callback on the page's event loop must not.
func (p *peer) promiseFunc(fn func(args []js.Value) (any, error)) js.Func {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		args = append([]js.Value(nil), args...)
		var executor js.Func
		executor = js.FuncOf(func(_ js.Value, settle []js.Value) any {
			resolve, reject := settle[0], settle[1]
			go func() {
				defer executor.Release()
				v, err := fn(args)
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				resolve.Invoke(v)
			}()
			return nil
		})
		return js.Global().Get("Promise").New(executor)
	})
	p.funcs = append(p.funcs, f)
	return f
}

// snapshot describes the peer's view of the mesh for the page.
func (p *peer) snapshot() map[string]any {
	now := time.Now()
	neighbors := []any{}
	for _, nb := range p.node.Neighbors() {
		neighbors = append(neighbors, map[string]any{
			"id":      nb.ID,
			"path":    string(nb.Path),
			"eager":   nb.Eager,
			"rttMs":   float64(nb.RTT.Microseconds()) / 1000,
			"sinceMs": now.Sub(nb.Since).Milliseconds(),
		})
	}
	passive := []any{}
	for _, id := range p.node.PassiveView() {
		passive = append(passive, id)
	}
	st := p.node.Stats()
	g := st.Gossip
	return map[string]any{
		"id":        p.node.ID(),
		"signaling": p.node.SignalingConnected(),
		"neighbors": neighbors,
		"passive":   passive,
		"stats": map[string]any{
			"sent":       g.Broadcasts,
			"delivered":  g.Delivered,
			"duplicates": g.Duplicates,
			"ihave":      g.Sent[gossip.IHave],
			"graft":      g.Sent[gossip.Graft],
			"prune":      g.Sent[gossip.Prune],
			"links":      st.Links,
		},
	}
}

// forwardDeliveries hands every delivered broadcast to the page.
func (p *peer) forwardDeliveries() {
	for d := range p.node.Deliveries() {
		m := map[string]any{
			"id":           d.ID.String(),
			"origin":       d.Origin,
			"hops":         d.Hops,
			"receivedAtMs": d.ReceivedAt.UnixMilli(),
			"sentAtMs":     0,
			"latencyMs":    -1,
			"own":          d.Origin == p.node.ID(),
		}
		if msg, err := chat.Decode(d.Data); err == nil {
			m["text"] = msg.Text
			if !msg.SentAt.IsZero() {
				m["sentAtMs"] = msg.SentAt.UnixMilli()
			}
			if lat, ok := chat.Latency(msg, d.ReceivedAt); ok {
				m["latencyMs"] = float64(lat.Microseconds()) / 1000
			}
		} else {
			// Not a chat message: show the bytes as text, marked.
			m["text"] = fmt.Sprintf("[%d bytes, not a chat message] %s", len(d.Data), printable(d.Data))
		}
		callHook(p.hooks, "onMessage", m)
	}
}

// forwardEvents hands neighbour changes to the page.
func (p *peer) forwardEvents() {
	for ev := range p.node.Events() {
		typ := "up"
		if ev.Type == node.NeighborDown {
			typ = "down"
		}
		callHook(p.hooks, "onLinkEvent", map[string]any{
			"type": typ, "peer": ev.Peer, "path": string(ev.Path), "reason": ev.Reason,
		})
	}
}

// printable keeps the first bytes of a foreign payload, with anything unprintable replaced.
func printable(b []byte) string {
	const max = 64
	if len(b) > max {
		b = b[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '.'
		}
		return r
	}, string(b))
}

// callHook calls hooks[name](arg) if the page defined it. An exception in the page's hook
// is reported on the console and otherwise ignored: the peer keeps running.
func callHook(hooks js.Value, name string, arg any) {
	if hooks.Type() != js.TypeObject {
		return
	}
	f := hooks.Get(name)
	if f.Type() != js.TypeFunction {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			js.Global().Get("console").Call("error", fmt.Sprintf("rtcmeshHooks.%s threw: %v", name, r))
		}
	}()
	f.Invoke(arg)
}

// consoleWriter sends each zerolog line to the browser console, at the matching level.
type consoleWriter struct{}

func (consoleWriter) Write(b []byte) (int, error) {
	js.Global().Get("console").Call("log", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func (consoleWriter) WriteLevel(level zerolog.Level, b []byte) (int, error) {
	method := "log"
	switch {
	case level >= zerolog.ErrorLevel:
		method = "error"
	case level == zerolog.WarnLevel:
		method = "warn"
	case level <= zerolog.DebugLevel:
		method = "debug"
	}
	js.Global().Get("console").Call(method, strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
