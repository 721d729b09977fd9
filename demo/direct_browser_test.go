package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/node"
)

// pageDriver is what the direct-message checks need of a tab of the page, in Chromium or in
// Firefox.
type pageDriver struct {
	name string
	// evalString evaluates a JavaScript expression that yields a string (awaiting a Promise).
	evalString func(expr string) (string, error)
	// typeLine types text into the page's box and presses Enter, as a person would.
	typeLine func(t *testing.T, text string)
	// click clicks the element selector names, with the browser's pointer where the driver
	// has one.
	click   func(t *testing.T, selector string)
	waitFor func(t *testing.T, what string, cond func() (bool, error))
	// screenshot saves the page as name and returns the file's path.
	screenshot func(t *testing.T, name string) string
}

// chromiumDriver drives a Chromium tab.
func chromiumDriver(tb *tab) pageDriver {
	return pageDriver{
		name:       tb.name,
		evalString: func(expr string) (string, error) { return eval[string](tb, expr) },
		typeLine:   tb.send,
		click: func(t *testing.T, selector string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(tb.ctx, browserWait)
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
				t.Fatalf("%s: clicking %s: %v", tb.name, selector, err)
			}
		},
		waitFor:    tb.waitFor,
		screenshot: tb.screenshot,
	}
}

// firefoxDriver drives a Firefox tab. WebDriver BiDi's pointer actions are not in
// internal/bidi: a click is a DOM click event, which the page handles the same way.
func firefoxDriver(tb *fxTab) pageDriver {
	p := pageDriver{
		name:       tb.name,
		evalString: func(expr string) (string, error) { return fxEval[string](tb, expr) },
		typeLine:   tb.send,
		waitFor:    tb.waitFor,
		screenshot: tb.screenshot,
	}
	p.click = func(t *testing.T, selector string) {
		t.Helper()
		ok, err := evalJSON[bool](p, fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false;
			el.dispatchEvent(new MouseEvent("click", {bubbles: true})); return true })()`, selector))
		if err != nil || !ok {
			t.Fatalf("%s: clicking %s: found %v, %v", tb.name, selector, ok, err)
		}
	}
	return p
}

// clickPeer clicks peer id's disc in the page's picture until the page has chosen it. The
// picture is laid out again whenever the views change (every 500 ms at most), so a pointer
// aimed at a disc can land on another peer that took its place in between: that is retried,
// as a person would click again, but only when the disc did move, so that a click the page
// mishandles still fails.
func clickPeer(t *testing.T, p pageDriver, id string) {
	t.Helper()
	sel := fmt.Sprintf(`#overlay g.node[data-peer=%q]`, id)
	placeJS := fmt.Sprintf(`(document.querySelector(%q) || {getAttribute: () => ""}).getAttribute("transform")`, sel)
	for attempt := 1; ; attempt++ {
		before, err := evalJSON[string](p, placeJS)
		if err != nil {
			t.Fatalf("%s: where %s is drawn: %v", p.name, id, err)
		}
		p.click(t, sel)
		to, err := evalJSON[string](p, `document.getElementById("send-to").value`)
		if err != nil {
			t.Fatalf("%s: the chosen peer: %v", p.name, err)
		}
		after, err := evalJSON[string](p, placeJS)
		if err != nil {
			t.Fatalf("%s: where %s is drawn: %v", p.name, id, err)
		}
		if to == id || before == after || attempt == 5 {
			if to != id {
				t.Logf("%s: clicking %s (drawn at %q, then %q) chose %q", p.name, id, before, after, to)
			}
			return
		}
		t.Logf("%s: %s moved from %q to %q while clicked (the views changed); clicking again", p.name, id, before, after)
	}
}

// evalJSON evaluates a JavaScript expression (awaiting a Promise) and decodes its value,
// carried as JSON.
func evalJSON[T any](p pageDriver, expr string) (T, error) {
	var v T
	s, err := p.evalString(fmt.Sprintf(`Promise.resolve(%s).then(v => JSON.stringify(v === undefined ? null : v))`, expr))
	if err != nil {
		return v, err
	}
	err = json.Unmarshal([]byte(s), &v)
	return v, err
}

// shownDirect is a direct message as the page lists it.
type shownDirect struct {
	Text  string `json:"text"`
	Dir   string `json:"dir"`  // "in" or "out"
	Peer  string `json:"peer"` // the sender (in) or the addressee (out), full ID
	Short string `json:"short"`
	Badge string `json:"badge"`
	// Proven is the mark of a received message's signed sender.
	Proven  string `json:"proven"`
	Latency string `json:"latency"`
}

const shownDirectsJS = `[...document.querySelectorAll("#messages li.direct")].map(li => ({
	text: li.querySelector(".text").textContent, dir: li.dataset.direct, peer: li.dataset.peer,
	short: li.querySelector("code.peer").textContent, badge: li.querySelector(".badge").textContent,
	proven: (li.querySelector(".proven") || {}).textContent || "", latency: li.querySelector(".latency").textContent}))`

// waitDirectShown waits until the page lists the direct message text in direction dir.
func waitDirectShown(t *testing.T, p pageDriver, dir, text string) shownDirect {
	t.Helper()
	var got shownDirect
	p.waitFor(t, fmt.Sprintf("the page lists the direct message %q (%s)", text, dir), func() (bool, error) {
		list, err := evalJSON[[]shownDirect](p, shownDirectsJS)
		for _, m := range list {
			if m.Text == text && m.Dir == dir {
				got = m
				return true, nil
			}
		}
		return false, err
	})
	return got
}

// sendResult is what rtcmesh.send resolves to, or the code and message of its rejection.
type sendResult struct {
	To      string  `json:"to"`
	SentAt  float64 `json:"sentAtMs"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
}

// directRetry is how long the tests wait for a direct message sent through the overlay
// before they send it again (it is not acknowledged, and a relay may drop it).
const directRetry = 20 * time.Second

// apiSend calls rtcmesh.send(to, text) in the page.
func apiSend(p pageDriver, to, text string) (sendResult, error) {
	return evalJSON[sendResult](p, fmt.Sprintf(`globalThis.rtcmesh.send(%q, %q).catch(e => ({code: e.code || "", message: e.message}))`, to, text))
}

// sendError is the page's error line under the box and its code.
type sendErrorLine struct {
	Shown bool   `json:"shown"`
	Text  string `json:"text"`
	Code  string `json:"code"`
}

const sendErrorJS = `(() => { const e = document.getElementById("send-error");
	return {shown: !e.hidden, text: e.textContent, code: e.dataset.code || ""} })()`

// nobody returns a node ID that no peer of the mesh has.
func nobody(t *testing.T) string {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// checkDirectMessages runs the direct-message checks on a tab (peer idTab) of demo d: the page
// sends to a Go node chosen in the picture and to one through the overlay, a Go node sends to
// the page, and every refusal is shown. It saves a screenshot as shot and returns its path.
func checkDirectMessages(t *testing.T, p pageDriver, d *Demo, idTab, shot string) string {
	nodes := d.Nodes()
	byID := map[string]*Node{}
	for _, n := range nodes {
		byID[n.ID()] = n
	}
	// What the hook receives, beside what the page lists.
	if _, err := evalJSON[bool](p, `(() => { const h = globalThis.rtcmeshHooks, page = h.onDirectMessage;
		globalThis.hookedDirect = [];
		h.onDirectMessage = (m) => { globalThis.hookedDirect.push(m); page(m) }; return true })()`); err != nil {
		t.Fatal(err)
	}
	neighbours := func() []string {
		ids, err := evalJSON[[]string](p, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.map(n => n.id))`)
		if err != nil {
			t.Fatalf("%s: neighbours: %v", p.name, err)
		}
		return ids
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()

	t.Run("ToANeighbourClickedInThePicture", func(t *testing.T) {
		var target *Node
		for _, id := range neighbours() {
			if n := byID[id]; n != nil {
				target = n
				break
			}
		}
		if target == nil {
			t.Fatalf("%s: no Go node among the tab's neighbours", p.name)
		}
		sel := fmt.Sprintf(`#overlay g.node[data-peer=%q]`, target.ID())
		p.waitFor(t, "the picture shows the neighbour", func() (bool, error) {
			return evalJSON[bool](p, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
		})
		clickPeer(t, p, target.ID())
		type chosen struct {
			To, Button, Placeholder string
			Ringed                  bool
		}
		c, err := evalJSON[chosen](p, fmt.Sprintf(`({To: document.getElementById("send-to").value,
			Button: document.getElementById("send-button").textContent,
			Placeholder: document.getElementById("send-text").placeholder,
			Ringed: document.querySelector(%q).classList.contains("chosen")})`, sel))
		short := target.ID()[:6]
		if err != nil || c.To != target.ID() || c.Button != "Send to "+short || !strings.Contains(c.Placeholder, short) || !c.Ringed {
			t.Fatalf("after clicking Go node %s in the picture the box shows %+v (%v)", short, c, err)
		}
		text := "a word for you alone, " + short
		p.typeLine(t, text)
		dm, err := target.WaitDirect(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		if dm.From != idTab || !dm.Chat || dm.Latency < 0 {
			t.Errorf("the Go node received %+v, want a chat message from the tab %s", dm, idTab)
		}
		if out := waitDirectShown(t, p, "out", text); out.Peer != target.ID() || out.Short != short || out.Badge != "direct" {
			t.Errorf("the page lists its direct message as %+v", out)
		}
		// The Go node answers (Config.Answer): a direct message to the page, from its proven ID.
		in := waitDirectShown(t, p, "in", AnswerText(target.index, text))
		if in.Peer != target.ID() || in.Short != short || in.Badge != "direct" || in.Proven == "" || !strings.HasSuffix(in.Latency, " ms") {
			t.Errorf("the page lists the answer as %+v, want one from %s", in, short)
		}
	})

	isNeighbour := func(id string) bool {
		for _, nb := range neighbours() {
			if nb == id {
				return true
			}
		}
		return false
	}
	// A Go node that is not the tab's neighbour (the tab has at most a few of the 8): a
	// message to or from it travels through the overlay, unless a link between them is still
	// open for another reason (a shuffle's, a former neighbour's), which node.Send then uses.
	// Which way it went is logged, not checked: routing itself is tested in node and rtcnode.
	far := func() *Node {
		for _, n := range nodes {
			if !isNeighbour(n.ID()) {
				return n
			}
		}
		t.Fatalf("%s: every Go node is the tab's neighbour", p.name)
		return nil
	}
	// relayed sums the routed envelopes the Go nodes relayed (direct messages and link
	// signals alike).
	relayed := func() (sum uint64) {
		for _, n := range nodes {
			sum += n.WebRTC().Stats().Routing.Forwarded
		}
		return sum
	}

	t.Run("ToANonNeighbourThroughTheAPI", func(t *testing.T) {
		target := far()
		text := "to a Go node that is not my neighbour: " + target.ID()[:6]
		before := relayed()
		// A direct message is not acknowledged (node.Send): a relay whose route went stale
		// drops it, as happened once on a loaded CI machine. So the test does what an
		// application would, and sends again when no answer came, every directRetry until
		// browserWait is up; it logs how many sends it took.
		var dm Direct
		for attempt := 1; ; attempt++ {
			// The tab learns its neighbours' views within a round: until then no route is known.
			var res sendResult
			p.waitFor(t, "rtcmesh.send finds a route", func() (bool, error) {
				r, err := apiSend(p, target.ID(), text)
				res = r
				if err == nil && r.Code != "" && r.Code != "no_route" {
					t.Fatalf("rtcmesh.send refused: %+v", r)
				}
				return err == nil && r.Code == "", err
			})
			if res.To != target.ID() || res.SentAt <= 0 {
				t.Errorf("rtcmesh.send resolved to %+v", res)
			}
			wait, cancelWait := context.WithTimeout(ctx, directRetry)
			got, err := target.WaitDirect(wait, text)
			cancelWait()
			if err == nil {
				dm = got
				t.Logf("delivered after %d send(s)", attempt)
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("after %d sends: %v", attempt, err)
			}
			t.Logf("send %d: nothing arrived within %v; sending again", attempt, directRetry)
		}
		if dm.From != idTab || !dm.Chat {
			t.Errorf("the Go node received %+v, want a chat message from the tab %s", dm, idTab)
		}
		t.Logf("Go node %d (not the tab's neighbour when sent; now: %v) received it %v after it was sent; the Go nodes relayed %d routed envelopes meanwhile",
			target.index+1, isNeighbour(target.ID()), dm.Latency, relayed()-before)
	})

	t.Run("ToANeighbourByAtPrefix", func(t *testing.T) {
		var target *Node
		for _, id := range neighbours() {
			if n := byID[id]; n != nil {
				target = n
			}
		}
		if target == nil {
			t.Fatalf("%s: no Go node among the tab's neighbours", p.name)
		}
		text := "typed with an at sign"
		p.typeLine(t, fmt.Sprintf("@%s %s", target.ID()[:10], text))
		dm, err := target.WaitDirect(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		if dm.From != idTab {
			t.Errorf("the Go node received %+v from %s, want it from the tab %s", dm, dm.From, idTab)
		}
		waitDirectShown(t, p, "out", text)
	})

	t.Run("GoNodeToPage", func(t *testing.T) {
		sender := far()
		text := fmt.Sprintf("Go node %d writes to the tab alone", sender.index+1)
		before := relayed()
		// The Go node learns a route to the tab within a round, if it is not its neighbour.
		p.waitFor(t, "the Go node finds a route to the tab", func() (bool, error) {
			err := sender.Tell(idTab, text)
			if err != nil && !errors.Is(err, node.ErrNoRoute) {
				t.Fatal(err)
			}
			return err == nil, err
		})
		in := waitDirectShown(t, p, "in", text)
		if in.Peer != sender.ID() || in.Short != sender.ID()[:6] || in.Proven == "" || !strings.HasSuffix(in.Latency, " ms") {
			t.Errorf("the page lists %+v, want a direct message from %s", in, sender.ID())
		}
		t.Logf("Go node %d (not the tab's neighbour when it sent; now: %v): the page shows it %s after it was sent; the Go nodes relayed %d routed envelopes meanwhile",
			sender.index+1, isNeighbour(sender.ID()), in.Latency, relayed()-before)
		type hooked struct {
			From      string  `json:"from"`
			Text      string  `json:"text"`
			Chat      bool    `json:"chat"`
			SentAtMs  float64 `json:"sentAtMs"`
			LatencyMs float64 `json:"latencyMs"`
		}
		got, err := evalJSON[[]hooked](p, `globalThis.hookedDirect`)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, h := range got {
			if h.Text == text {
				found = true
				if h.From != sender.ID() || !h.Chat || h.SentAtMs <= 0 || h.LatencyMs < 0 {
					t.Errorf("onDirectMessage got %+v", h)
				}
			}
		}
		if !found {
			t.Errorf("onDirectMessage never got %q: %+v", text, got)
		}
		// Not a broadcast: no other Go node received it.
		for _, n := range nodes {
			for _, m := range n.Messages() {
				if m.Text == text {
					t.Errorf("Go node %d delivered the direct message as a broadcast", n.index+1)
				}
			}
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		someone := nodes[0].ID()
		for _, c := range []struct{ to, text, code string }{
			{"not-an-id", "hello", "invalid_id"},
			{strings.ToUpper(someone), "hello", "invalid_id"},
			{idTab, "hello", "self"},
			{someone, "", "empty"},
			{someone, strings.Repeat("€", 1500), "too_large"},
			{nobody(t), "hello", "no_route"},
		} {
			r, err := apiSend(p, c.to, c.text)
			if err != nil || r.Code != c.code || r.Message == "" {
				t.Errorf("rtcmesh.send(%.12q, %d bytes) = %+v, %v; want code %s", c.to, len(c.text), r, err, c.code)
			}
		}
		// What a person sees for each.
		errorShown := func(what, prefix, code string) {
			t.Helper()
			var last sendErrorLine
			p.waitFor(t, what, func() (bool, error) {
				e, err := evalJSON[sendErrorLine](p, sendErrorJS)
				last = e
				return e.Shown && strings.HasPrefix(e.Text, prefix) && (code == "" || e.Code == code), err
			})
			t.Logf("%s: %q", what, last.Text)
		}
		// A refused line stays in the box, for the person to correct: empty it before the next.
		clear := func() {
			t.Helper()
			if _, err := evalJSON[bool](p, `(() => { document.getElementById("send-text").value = ""; return true })()`); err != nil {
				t.Fatal(err)
			}
		}
		p.typeLine(t, "@9 hello")
		errorShown("an unknown peer is refused", "Direct message not sent: no known peer's ID starts with “9”", "")
		clear()
		p.typeLine(t, "@"+nobody(t)+" hello")
		errorShown("a peer with no route is refused", "Direct message to ", "no_route")
		clear()
		// A message too large for a chat message, to the peer chosen in the box.
		if _, err := evalJSON[bool](p, `(() => { document.getElementById("send-text").value = "€".repeat(1500);
			document.getElementById("send-button").click(); return true })()`); err != nil {
			t.Fatal(err)
		}
		errorShown("a message too large is refused", "Direct message to ", "too_large")
		clear()
		// A good one clears the error.
		text := "after the refusals " + strconv.Itoa(len(nodes))
		p.typeLine(t, text)
		waitDirectShown(t, p, "out", text)
		if e, err := evalJSON[sendErrorLine](p, sendErrorJS); err != nil || e.Shown {
			t.Errorf("the error is still shown after a direct message left: %+v %v", e, err)
		}
		// Back to everyone: the next line is a broadcast.
		p.click(t, "#send-to-clear")
		bc := "and now to everyone"
		p.typeLine(t, bc)
		goNodesDeliver(t, nodes, bc, idTab)
	})

	// For the picture: a neighbour chosen again, the counters refreshed (every 500 ms) and the
	// new lines faded in (0.4 s).
	if nbs := neighbours(); len(nbs) > 0 {
		clickPeer(t, p, nbs[0])
	}
	time.Sleep(1500 * time.Millisecond)
	return p.screenshot(t, shot)
}

// TestBrowserDirectMessages runs the demo with its 8 Go nodes and a headless Chromium tab:
// direct messages from the page to Go nodes (chosen in the picture, typed "@ID", through
// rtcmesh.send), from a Go node to the page, and the refusals, as the page shows them; then
// from a second tab (another peer) to the first.
func TestBrowserDirectMessages(t *testing.T) {
	d, browser := startBrowserDemo(t, DefaultConfig().Nodes, 23)
	a := openTab(t, browser, "tab A")
	idA, _ := a.open(t, d.URL())
	pa := chromiumDriver(a)
	shot := checkDirectMessages(t, pa, d, idA, "direct.png")
	t.Logf("screenshot of the page after the direct messages: %s", shot)

	t.Run("TabToTab", func(t *testing.T) {
		b := openTab(t, browser, "tab B")
		idB, _ := b.open(t, d.URL())
		pb := chromiumDriver(b)
		text := "from tab B to tab A alone"
		// Tab B learns a route to tab A through its neighbours' views, or links to it.
		pb.waitFor(t, "tab B finds a route to tab A", func() (bool, error) {
			r, err := apiSend(pb, idA, text)
			if err == nil && r.Code != "" && r.Code != "no_route" {
				t.Fatalf("rtcmesh.send refused: %+v", r)
			}
			return err == nil && r.Code == "", err
		})
		if in := waitDirectShown(t, pa, "in", text); in.Peer != idB || in.Short != idB[:6] || in.Proven == "" {
			t.Errorf("tab A lists %+v, want a direct message from tab B %s", in, idB)
		}
		if errs := b.pageErrors(); len(errs) > 0 {
			t.Errorf("%s logged errors:\n%s", b.name, strings.Join(errs, "\n"))
		}
	})
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("%s logged errors:\n%s", a.name, strings.Join(errs, "\n"))
	}
}

// TestFirefoxDirectMessages is TestBrowserDirectMessages in headless Firefox.
func TestFirefoxDirectMessages(t *testing.T) {
	d, fx := startFirefoxDemo(t, DefaultConfig().Nodes, 29)
	tb := fx.openTab(t, "Firefox tab")
	id, _ := tb.open(t, d.URL())
	shot := checkDirectMessages(t, firefoxDriver(tb), d, id, "direct-firefox.png")
	t.Logf("screenshot of the page after the direct messages: %s", shot)
	if errs := tb.pageErrors(); len(errs) > 0 {
		t.Errorf("%s logged errors:\n%s", tb.name, strings.Join(errs, "\n"))
	}
}
