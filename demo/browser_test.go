package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// requireAllEnv set to 1 turns a missing chromium into a failure (CI).
const requireAllEnv = "RTCMESH_REQUIRE_ALL"

// browserWait bounds every wait on the browser: generous, for a busy 2-core machine.
const browserWait = 90 * time.Second

// chromiumPath finds Chromium, or skips (fails under RTCMESH_REQUIRE_ALL=1) when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requireAllEnv) == "1" {
		t.Fatalf("chromium is not installed (%s=1)", requireAllEnv)
	}
	t.Skip("chromium is not installed: the browser tests need it")
	return ""
}

// tab is one page of the demo in its own browser context (its own cookies, storage and
// certificate), with what it logged and downloaded.
type tab struct {
	name string
	ctx  context.Context

	mu       sync.Mutex
	errors   []string
	warnings []string
	urls     map[network.RequestID]string
	encoded  map[string]float64
	loadedAt time.Time
}

// openTab opens a tab in a browser context of its own.
func openTab(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return listenTab(t, ctx, name)
}

// openTabBeside opens a second tab in other's browser context: same cookies and IndexedDB,
// its own sessionStorage, as when a person opens a new tab.
func openTabBeside(t *testing.T, other *tab, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(other.ctx)
	t.Cleanup(cancel)
	return listenTab(t, ctx, name)
}

func listenTab(t *testing.T, ctx context.Context, name string) *tab {
	t.Helper()
	tb := &tab{name: name, ctx: ctx, urls: map[network.RequestID]string{}, encoded: map[string]float64{}}
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				tb.errors = append(tb.errors, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
			}
			if ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				tb.warnings = append(tb.warnings, strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			tb.errors = append(tb.errors, "exception: "+(&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				tb.errors = append(tb.errors, fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventResponseReceived:
			tb.urls[ev.RequestID] = ev.Response.URL
		case *network.EventLoadingFinished:
			if u, ok := tb.urls[ev.RequestID]; ok {
				tb.encoded[u] += ev.EncodedDataLength
			}
		}
	})
	if err != nil {
		t.Fatalf("%s: starting the browser: %v", name, err)
	}
	return tb
}

// eval runs a JavaScript expression (awaiting a Promise) and decodes its result.
func eval[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitFor polls cond until it returns true, failing the test after browserWait.
func (tb *tab) waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	pollPage(t, tb.name, tb.pageErrors, what, cond)
}

// pollPage polls cond until it returns true, failing the test after browserWait with the
// last error and what the page (named name) logged as errors.
func pollPage(t *testing.T, name string, pageErrors func() []string, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: not within %v (last error: %v); page errors: %q", name, what, browserWait, last, pageErrors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pageWarnings returns what the page logged with console.warn (the peer's warnings).
func (tb *tab) pageWarnings() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.warnings...)
}

func (tb *tab) pageErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.errors...)
}

// open loads the page and waits for the peer to be ready and to have a neighbour. It returns
// the peer's ID and the time from navigation start to the first neighbour, by the page's
// clock.
func (tb *tab) open(t *testing.T, url string) (id string, toNeighbour time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: loading %s: %v", tb.name, url, err)
	}
	tb.waitFor(t, "the peer is ready", func() (bool, error) {
		v, err := eval[string](tb, `(globalThis.rtcmesh && globalThis.rtcmesh.id) || ""`)
		id = v
		return v != "", err
	})
	// A tab that never gets a neighbour (seen once in CI under load) leaves its own account:
	// the peer's snapshot (links, refusals, passive peers) when the wait failed.
	defer func() {
		if t.Failed() {
			s, err := eval[string](tb, `globalThis.rtcmesh.snapshot().then(s => JSON.stringify(s))`)
			t.Logf("%s: the peer's snapshot when the wait failed: %s (error: %v)", tb.name, s, err)
		}
	}()
	var ms float64
	tb.waitFor(t, "the peer has a neighbour", func() (bool, error) {
		v, err := eval[float64](tb, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.length > 0 ? performance.now() : -1)`)
		ms = v
		return v >= 0, err
	})
	return id, time.Duration(ms * float64(time.Millisecond))
}

// reload reloads the page, as a person pressing F5 would, and waits for the new document's peer
// to be ready and to have a neighbour; it returns the peer's ID.
func (tb *tab) reload(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserWait)
	defer cancel()
	// Mark the old document, so the new one is told apart even if the ID stays the same.
	if _, err := eval[bool](tb, `(globalThis.rtcmeshOldDocument = true)`); err != nil {
		t.Fatalf("%s: marking the document: %v", tb.name, err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("%s: reloading: %v", tb.name, err)
	}
	var id string
	tb.waitFor(t, "the reloaded peer is ready", func() (bool, error) {
		v, err := eval[string](tb, `(!globalThis.rtcmeshOldDocument && globalThis.rtcmesh && globalThis.rtcmesh.id) || ""`)
		id = v
		return v != "", err
	})
	tb.waitFor(t, "the reloaded peer has a neighbour", func() (bool, error) {
		return eval[bool](tb, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.length > 0)`)
	})
	return id
}

// send types text into the page's box and presses Enter, as a person would.
func (tb *tab) send(t *testing.T, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.WaitEnabled(chromedp.ID("send-text")),
		chromedp.SendKeys(chromedp.ID("send-text"), text+kb.Enter),
	); err != nil {
		t.Fatalf("%s: typing %q: %v", tb.name, text, err)
	}
}

// shownMessage is a message as the page lists it.
type shownMessage struct {
	Text    string `json:"text"`
	Origin  string `json:"origin"`
	Hops    string `json:"hops"`
	Latency string `json:"latency"`
	Own     bool   `json:"own"`
}

// waitShown waits until the page lists a message with this text and returns it.
func (tb *tab) waitShown(t *testing.T, text string) shownMessage {
	t.Helper()
	var got shownMessage
	tb.waitFor(t, fmt.Sprintf("the page shows %q", text), func() (ok bool, err error) {
		got, ok, err = findShown(eval[[]shownMessage](tb, shownMessagesJS))(text)
		return ok, err
	})
	return got
}

// shownMessagesJS lists the messages the page shows, as shownMessage values.
const shownMessagesJS = `[...document.querySelectorAll("#messages li")].map(li => ({
	text: li.querySelector(".text").textContent, origin: li.dataset.origin, hops: li.dataset.hops,
	latency: li.querySelector(".latency").textContent, own: li.classList.contains("own")}))`

// findShown takes the result of evaluating shownMessagesJS and returns a lookup of the
// message with a given text.
func findShown(listed []shownMessage, err error) func(text string) (shownMessage, bool, error) {
	return func(text string) (shownMessage, bool, error) {
		for _, m := range listed {
			if m.Text == text {
				return m, true, nil
			}
		}
		return shownMessage{}, false, err
	}
}

// aNeighbourOf reports whether one of the Go nodes lists peer as its neighbour.
func aNeighbourOf(nodes []*Node, peer string) bool {
	for _, n := range nodes {
		for _, nb := range n.WebRTC().Neighbors() {
			if nb.ID == peer {
				return true
			}
		}
	}
	return false
}

// goNodesDeliver waits until every Go node delivered the chat line text and checks it came
// from origin (a tab), relayed, with its latency.
func goNodesDeliver(t *testing.T, nodes []*Node, text, origin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	for i, n := range nodes {
		m, err := n.WaitMessage(ctx, text)
		if err != nil {
			t.Fatalf("Go node %d: %v", i+1, err)
		}
		if m.Origin != origin || m.Hops < 1 || !m.Chat || m.Latency < 0 {
			t.Errorf("Go node %d delivered %+v, want a chat line from %s, relayed", i+1, m, origin)
		}
	}
}

// screenshot saves the whole page as name in the test screenshots' directory and returns
// its path.
func (tb *tab) screenshot(t *testing.T, name string) string {
	t.Helper()
	shot, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	return saveScreenshot(t, name, shot)
}

// saveScreenshot writes png as name in the test screenshots' directory, for a person to look
// at, and returns its path.
func saveScreenshot(t *testing.T, name string, png []byte) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "rtcmesh-browser-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// transferred reports the bytes the tab downloaded (encoded, so gzipped where the server
// gzips, headers included) per path of the page.
func (tb *tab) transferred(base string) (map[string]int64, int64) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	out := map[string]int64{}
	var total int64
	for u, n := range tb.encoded {
		if !strings.HasPrefix(u, base) {
			continue
		}
		p := "/" + strings.TrimPrefix(u, base)
		out[p] += int64(n)
		total += int64(n)
	}
	return out, total
}

// startBrowserDemo starts a demo with nodes Go nodes on loopback, waits for them to connect,
// and starts headless Chromium (skipping without it). Both are closed when the test ends.
func startBrowserDemo(t *testing.T, nodes int, seed uint64) (*Demo, context.Context) {
	t.Helper()
	return startBrowserDemoWith(t, demoConfig(nodes, seed))
}

// startBrowserDemoWith is startBrowserDemo with a demo configuration of the test's own.
func startBrowserDemoWith(t *testing.T, cfg Config) (*Demo, context.Context) {
	t.Helper()
	chromium := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	d := startPageDemo(t, cfg)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return d, browser
}

// TestBrowser runs the demo with its 8 Go nodes and real headless Chromium tabs as peers.
func TestBrowser(t *testing.T) {
	d, browser := startBrowserDemo(t, DefaultConfig().Nodes, 11)

	a := openTab(t, browser, "tab A")
	idA, firstNeighbour := a.open(t, d.URL())
	t.Logf("tab A is peer %s; page load to first neighbour: %v", idA, firstNeighbour.Round(time.Millisecond))

	nodes := d.Nodes()
	t.Run("JoinsTheMesh", func(t *testing.T) {
		// The tab is a member, not a client: its neighbours are Go nodes that list it back.
		a.waitFor(t, "a Go node lists the tab as its neighbour", func() (bool, error) { return aNeighbourOf(nodes, idA), nil })
		nbs, err := eval[[]string](a, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.map(n => n.id))`)
		if err != nil || len(nbs) == 0 {
			t.Fatalf("tab A's neighbours: %v %v", nbs, err)
		}
		shown, err := eval[int](a, `document.querySelectorAll("#overlay .node.active").length`)
		if err != nil || shown == 0 {
			t.Errorf("the picture shows %d neighbours (%v), the peer has %d", shown, err, len(nbs))
		}
	})

	t.Run("BroadcastError", func(t *testing.T) {
		// 1,500 three-byte characters fit the box's 4,096-character limit but not chat's
		// 4,096-byte one: the peer refuses the broadcast and the page says so.
		if _, err := eval[bool](a, `(() => { document.getElementById("send-text").value = "€".repeat(1500);
			document.getElementById("send-button").click(); return true })()`); err != nil {
			t.Fatal(err)
		}
		a.waitFor(t, "the page shows the broadcast error", func() (bool, error) {
			return eval[bool](a, `(() => { const e = document.getElementById("send-error");
				return !e.hidden && e.textContent.startsWith("Broadcast failed") })()`)
		})
		if _, err := eval[bool](a, `(() => { document.getElementById("send-text").value = ""; return true })()`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PageToGoNodes", func(t *testing.T) {
		text := "hello from tab A"
		a.send(t, text)
		own := a.waitShown(t, text)
		if hidden, err := eval[bool](a, `document.getElementById("send-error").hidden`); err != nil || !hidden {
			t.Errorf("the error of the refused broadcast is still shown after a good one (%v)", err)
		}
		if !own.Own || own.Origin != idA || own.Hops != "0" {
			t.Errorf("the page lists its own message as %+v", own)
		}
		goNodesDeliver(t, nodes, text, idA)
	})

	t.Run("GoNodeToPage", func(t *testing.T) {
		text := "hello from Go node 5"
		if _, err := nodes[4].Say(text); err != nil {
			t.Fatal(err)
		}
		m := a.waitShown(t, text)
		if m.Own || m.Origin != nodes[4].ID() || m.Hops == "0" || !strings.HasSuffix(m.Latency, " ms") {
			t.Errorf("the page shows %+v", m)
		}
	})

	t.Run("CryptoBenchmark", func(t *testing.T) {
		// What a browser peer pays per broadcast: the origin signs with its WebCrypto
		// Ed25519 key, every receiver verifies with Go's crypto/ed25519 compiled to wasm.
		const n = 200
		type result struct {
			N        int     `json:"n"`
			Bytes    int     `json:"bytes"`
			SignMs   float64 `json:"signMs"`
			VerifyMs float64 `json:"verifyMs"`
		}
		r, err := eval[result](a, fmt.Sprintf(`globalThis.rtcmesh.benchmarkCrypto(%d)`, n))
		if err != nil {
			t.Fatal(err)
		}
		if r.N != n || r.SignMs <= 0 || r.VerifyMs <= 0 {
			t.Fatalf("benchmarkCrypto(%d) = %+v", n, r)
		}
		t.Logf("Chromium, %d broadcasts of %d bytes: WebCrypto Ed25519 sign %.3f ms/op, wasm identity.Verify %.3f ms/op",
			r.N, r.Bytes, r.SignMs, r.VerifyMs)
		if _, err := eval[map[string]any](a, `globalThis.rtcmesh.benchmarkCrypto(0)`); err == nil {
			t.Errorf("benchmarkCrypto(0) did not fail")
		}
	})

	b := openTab(t, browser, "tab B")
	idB, _ := b.open(t, d.URL())
	if idB == idA {
		t.Fatalf("both tabs are peer %s: the browser contexts are not separate", idA)
	}
	t.Run("TwoBrowsers", func(t *testing.T) {
		b.send(t, "hello A, this is tab B")
		if m := a.waitShown(t, "hello A, this is tab B"); m.Origin != idB || m.Own {
			t.Errorf("tab A shows %+v", m)
		}
		a.send(t, "hello B, tab A here")
		if m := b.waitShown(t, "hello B, tab A here"); m.Origin != idA || m.Own {
			t.Errorf("tab B shows %+v", m)
		}
	})

	// A little traffic from the Go nodes, so the screenshot shows a lived-in page.
	for i, n := range nodes[:3] {
		text := fmt.Sprintf("greetings from Go node %d", i+1)
		if _, err := n.Say(text); err != nil {
			t.Fatal(err)
		}
		a.waitShown(t, text)
	}
	a.waitFor(t, "the picture shows the neighbours", func() (bool, error) {
		return eval[bool](a, `document.querySelectorAll("#overlay .node.active").length > 0`)
	})
	// New lines fade in over 0.4 s and links widen over 0.3 s: let that finish before the picture.
	time.Sleep(1500 * time.Millisecond)
	shotPath := a.screenshot(t, "page.png")
	t.Logf("screenshot of tab A after the exchange: %s", shotPath)

	// Figures: what a browser downloads to become a peer.
	per, total := a.transferred(d.URL())
	var paths []string
	for p := range per {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var lines []string
	for _, p := range paths {
		lines = append(lines, fmt.Sprintf("%s %d", p, per[p]))
	}
	t.Logf("tab A downloaded %d bytes (encoded, headers included): %s", total, strings.Join(lines, ", "))
	var served int64
	for _, n := range d.Page().Sizes() {
		served += n
	}
	sizes := d.Page().Sizes()
	t.Logf("page and code gzipped, as served: %d bytes (peer.wasm %d, app.js %d, wasm_exec.js %d, index.html %d, style.css %d)",
		served-sizes["/"], sizes["/peer.wasm"], sizes["/app.js"], sizes["/wasm_exec.js"], sizes["/index.html"], sizes["/style.css"])
	t.Logf("page load to first neighbour: %v (tab A)", firstNeighbour.Round(time.Millisecond))

	for _, tb := range []*tab{a, b} {
		if errs := tb.pageErrors(); len(errs) > 0 {
			t.Errorf("%s logged errors:\n%s", tb.name, strings.Join(errs, "\n"))
		}
	}
}
