//go:build js && wasm

// Command peer is the rtcmesh browser peer, built for GOOS=js GOARCH=wasm and loaded by the
// demo page (package web). It is a full member of the mesh: the same node runtime, HyParView
// and Plumtree cores and wire format as a Go node, with the browser's RTCPeerConnection and
// WebSocket underneath (the js twins in link/rtclink, signaling/signalclient and identity).
//
// The page configures it through globalThis.rtcmeshConfig ({signalURL, network, logLevel,
// ephemeralIdentity}) and receives its events through globalThis.rtcmeshHooks ({onReady,
// onMessage, onDirectMessage, onLinkEvent, onError}; a message carries sentAtMs, its origin's
// signed send time, and history, set when it came by catch-up: sent before the tab joined or
// while it was away; a direct message carries from, its sender's ID as its signature proved
// it). Once joined it exposes globalThis.rtcmesh with id, identity ("tab" or "ephemeral"),
// broadcast(text), send(id, text), snapshot(), benchmarkCrypto(n) and close(), which return
// Promises because a Go callback must never block the page's event loop. Broadcasts and
// direct messages are chat messages (package chat), so every receiver can show their latency.
//
// send(id, text) sends text to the one peer id (node.Send: over the link to it when one is
// open, otherwise through the overlay), signed end to end. It resolves to {to, sentAtMs} once
// the message has left (delivery is not acknowledged) and rejects with an Error whose code
// says why nothing was sent: "invalid_id", "self", "empty", "too_large", "invalid_text",
// "no_route" or "closed".
//
// The identity key is the tab's (identity.LoadOrCreateTabKey: kept in IndexedDB, so a reload
// keeps the ID), or with ephemeralIdentity one that lives as long as the page. Where the
// page cannot store a key, the peer falls back to an ephemeral one and warns on the console.
package main

import (
	"crypto/rand"
	"encoding/binary"
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
	"github.com/rtcmesh/rtcmesh/rtcnode"
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
	node *rtcnode.Node
	key  *identity.Key
	// keyKind is "tab" for the tab's stored key, "ephemeral" for one that lives as long as
	// the page.
	keyKind string
	hooks   js.Value
	funcs   []js.Func
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
	logger := zerolog.New(consoleWriter{}).Level(level).With().Timestamp().Logger()
	key, kind, err := loadKey(cfg.Get("ephemeralIdentity").Truthy(), logger)
	if err != nil {
		return nil, err
	}
	wc := rtcnode.DefaultConfig(key, signalURL, network)
	// A tab verifies a broadcast's signature in about a millisecond (wasm), thirty times a Go
	// node's time: a late joiner handed a neighbour's whole history (up to
	// Gossip.CatchUpMaxMessages) needs seconds to check it, and a History that arrives after
	// its Pull timed out is ignored, to be asked again at the next Digest. So the tab waits
	// longer for what it pulled.
	wc.Node.Gossip.CatchUpPullTimeout = 15 * time.Second
	wc.Node.Logger = logger
	wc.Signal.Logger = logger
	wc.Link.Logger = logger
	n, err := rtcnode.Start(wc)
	if err != nil {
		return nil, fmt.Errorf("start the peer: %w", err)
	}
	p := &peer{node: n, key: key, keyKind: kind, hooks: hooks}
	go p.forwardDeliveries()
	go p.forwardDirect()
	go p.forwardEvents()
	return p, nil
}

// loadKey returns the peer's identity key and its kind: the tab's stored key, or with
// ephemeral (or where the page cannot store one) a key that lives as long as the page.
func loadKey(ephemeral bool, log zerolog.Logger) (*identity.Key, string, error) {
	if !ephemeral {
		key, err := identity.LoadOrCreateTabKey()
		if err == nil {
			return key, "tab", nil
		}
		log.Warn().Err(err).Msg("cannot keep this tab's identity key: using an ephemeral one (a reload will change the ID)")
	}
	key, err := identity.GenerateKey()
	if err != nil {
		return nil, "", fmt.Errorf("identity key: %w", err)
	}
	return key, "ephemeral", nil
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
	obj.Set("identity", p.keyKind)
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
	obj.Set("send", p.promiseFunc(func(args []js.Value) (any, error) {
		if len(args) < 2 || args[0].Type() != js.TypeString || args[1].Type() != js.TypeString {
			return nil, sendError{code: "invalid_id", err: errors.New("send takes a peer ID and the text to send")}
		}
		return p.send(args[0].String(), args[1].String())
	}))
	obj.Set("snapshot", p.promiseFunc(func([]js.Value) (any, error) { return p.snapshot(), nil }))
	obj.Set("benchmarkCrypto", p.promiseFunc(func(args []js.Value) (any, error) {
		n := 100
		if len(args) > 0 && args[0].Type() == js.TypeNumber {
			n = args[0].Int()
		}
		if n < 1 || n > maxBenchmarkOps {
			return nil, fmt.Errorf("benchmarkCrypto takes a count from 1 to %d", maxBenchmarkOps)
		}
		return benchmarkCrypto(p.key, n)
	}))
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
					e := js.Global().Get("Error").New(err.Error())
					var se sendError
					if errors.As(err, &se) {
						e.Set("code", se.code)
					}
					reject.Invoke(e)
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

// sendError is a refused direct message: err says why, code names the reason for the page
// (see the package comment).
type sendError struct {
	code string
	err  error
}

func (e sendError) Error() string { return e.err.Error() }
func (e sendError) Unwrap() error { return e.err }

// send sends text to the peer to as a chat message, signed by this tab's key (node.Send).
func (p *peer) send(to, text string) (any, error) {
	if !identity.ValidID(to) {
		return nil, sendError{code: "invalid_id", err: fmt.Errorf("%q is not a node ID (%d characters of lowercase base32)", to, identity.IDLength)}
	}
	if to == p.node.ID() {
		return nil, sendError{code: "self", err: errors.New("that is this tab's own ID")}
	}
	now := time.Now()
	payload, err := chat.Encode(chat.Message{Text: text, SentAt: now})
	switch {
	case errors.Is(err, chat.ErrEmpty):
		return nil, sendError{code: "empty", err: errors.New("the message is empty")}
	case errors.Is(err, chat.ErrTooLong):
		return nil, sendError{code: "too_large", err: fmt.Errorf("the message is %d bytes, more than the %d a chat message may carry", len(text), chat.MaxTextBytes)}
	case err != nil:
		return nil, sendError{code: "invalid_text", err: err}
	}
	switch err := p.node.Send(to, payload); {
	case err == nil:
	case errors.Is(err, node.ErrNoRoute):
		return nil, sendError{code: "no_route", err: errors.New("no route to the peer: no link to it is open and the overlay knows no way to it (it may have left, or be too far away)")}
	case errors.Is(err, node.ErrClosed):
		return nil, sendError{code: "closed", err: errors.New("this peer has stopped")}
	default:
		return nil, err
	}
	return map[string]any{"to": to, "sentAtMs": now.UnixMilli()}, nil
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
	// routable lists the passive peers a direct message would reach now (an open link, or a
	// route through the overlay); every neighbour is.
	routable := []any{}
	for _, id := range p.node.PassiveView() {
		passive = append(passive, id)
		if p.node.RouteKnown(id) {
			routable = append(routable, id)
		}
	}
	st := p.node.Stats()
	g := st.Gossip
	return map[string]any{
		"id":        p.node.ID(),
		"signaling": p.node.SignalingConnected(),
		"neighbors": neighbors,
		"passive":   passive,
		"routable":  routable,
		"stats": map[string]any{
			"sent":       g.Broadcasts,
			"delivered":  g.Delivered,
			"duplicates": g.Duplicates,
			"history":    g.HistoryDelivered,
			"ihave":      g.Sent[gossip.IHave],
			"graft":      g.Sent[gossip.Graft],
			"prune":      g.Sent[gossip.Prune],
			"links":      st.Links,
			// Direct messages (and routed link signals) this peer sent and received, and
			// those refused (bad signature, stale time, replay).
			"routedSent":     st.RoutedSent,
			"routedReceived": st.RoutedReceived,
			"routedRefused":  st.RoutedRefused,
			// Broadcasts refused, by reason: never delivered nor forwarded.
			"refusedSignature":  g.RefusedSignature,
			"refusedReplay":     g.RefusedReplay,
			"refusedSelfOrigin": g.RefusedSelfOrigin,
			"refusedClock":      g.RefusedClock,
		},
	}
}

// maxBenchmarkOps bounds benchmarkCrypto's count, so a page cannot keep the peer busy for long.
const maxBenchmarkOps = 10_000

// benchmarkCrypto measures what the browser peer really does per broadcast: the origin signs
// with the tab's WebCrypto key, every receiver verifies with Go's Ed25519 compiled to wasm
// (identity.Verify). The transcripts are those of n broadcasts of 1 KiB (as node signs
// them), and every signature made is verified. It reports milliseconds per operation.
func benchmarkCrypto(key *identity.Key, n int) (any, error) {
	payload := make([]byte, 1024)
	if _, err := rand.Read(payload); err != nil {
		return nil, fmt.Errorf("benchmark payload: %w", err)
	}
	now := time.Now().UnixMilli()
	transcripts := make([][]byte, n)
	for i := range transcripts {
		var id [16]byte
		var seq, at [8]byte
		binary.BigEndian.PutUint64(id[:], uint64(i))
		binary.BigEndian.PutUint64(seq[:], uint64(i+1))
		binary.BigEndian.PutUint64(at[:], uint64(now))
		transcripts[i] = identity.Transcript(identity.LabelBroadcast, id[:], []byte(key.ID()), seq[:], at[:], payload)
	}
	sigs := make([][]byte, n)
	start := time.Now()
	for i, tr := range transcripts {
		sig, err := key.Sign(tr)
		if err != nil {
			return nil, fmt.Errorf("benchmark sign: %w", err)
		}
		sigs[i] = sig
	}
	signed := time.Since(start)
	pub := key.PublicKey()
	start = time.Now()
	for i, tr := range transcripts {
		if err := identity.Verify(key.ID(), pub, tr, sigs[i]); err != nil {
			return nil, fmt.Errorf("benchmark verify: %w", err)
		}
	}
	verified := time.Since(start)
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	return map[string]any{"n": n, "bytes": len(payload), "signMs": perOp(signed), "verifyMs": perOp(verified)}, nil
}

// forwardDeliveries hands every delivered broadcast to the page.
func (p *peer) forwardDeliveries() {
	for d := range p.node.Deliveries() {
		m := map[string]any{
			"id":           d.ID.String(),
			"origin":       d.Origin,
			"hops":         d.Hops,
			"receivedAtMs": d.ReceivedAt.UnixMilli(),
			// The broadcast's signed time, by the origin's clock: the order of sending.
			"sentAtMs":  d.SentAt.UnixMilli(),
			"history":   d.History,
			"latencyMs": -1,
			"own":       d.Origin == p.node.ID(),
		}
		if msg, err := chat.Decode(d.Data); err == nil {
			m["text"] = msg.Text
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

// forwardDirect hands every direct message to the page, with its sender's proven ID.
func (p *peer) forwardDirect() {
	for dm := range p.node.DirectMessages() {
		m := map[string]any{
			"from":         dm.From,
			"receivedAtMs": dm.ReceivedAt.UnixMilli(),
			// The sender's signed time, by its clock.
			"sentAtMs":  dm.SentAt.UnixMilli(),
			"latencyMs": -1,
			"chat":      true,
		}
		if lat := dm.ReceivedAt.Sub(dm.SentAt); lat >= 0 {
			m["latencyMs"] = float64(lat.Microseconds()) / 1000
		}
		if msg, err := chat.Decode(dm.Data); err == nil {
			m["text"] = msg.Text
		} else {
			// `rtcmesh node` sends its "@ID text" lines as they are: show them as text, marked.
			m["chat"] = false
			m["text"] = fmt.Sprintf("[%d bytes, not a chat message] %s", len(dm.Data), printable(dm.Data))
		}
		callHook(p.hooks, "onDirectMessage", m)
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
