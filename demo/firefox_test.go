package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcmesh/rtcmesh/internal/bidi"
)

// firefoxPath finds Firefox (Debian's firefox-esr), or skips (fails under
// RTCMESH_REQUIRE_ALL=1) when it is missing.
func firefoxPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requireAllEnv) == "1" {
		t.Fatalf("firefox-esr is not installed (%s=1)", requireAllEnv)
	}
	t.Skip("firefox-esr is not installed: the Firefox tests need it")
	return ""
}

// firefox is a headless Firefox driven over WebDriver BiDi, with the console errors of its
// tabs.
type firefox struct {
	*bidi.Browser
	mu   sync.Mutex
	tabs map[string]*fxTab
}

// startFirefox starts headless Firefox with a fresh profile; it is closed when the test ends.
func startFirefox(t *testing.T) *firefox {
	t.Helper()
	path := firefoxPath(t)
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	b, err := bidi.Launch(ctx, bidi.Options{Path: path, Profile: t.TempDir(), Width: 1440, Height: 900})
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	fx := &firefox{Browser: b, tabs: map[string]*fxTab{}}
	b.OnEvent(func(e bidi.Event) {
		if e.Method != "log.entryAdded" {
			return
		}
		var le bidi.LogEntry
		if json.Unmarshal(e.Params, &le) != nil {
			return
		}
		fx.mu.Lock()
		tb := fx.tabs[le.Source.Context]
		fx.mu.Unlock()
		if tb == nil {
			return
		}
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch {
		case le.Level == "error":
			tb.errors = append(tb.errors, fmt.Sprintf("%s %s: %s", le.Type, le.Method, le.Text))
		case le.Level == "warn":
			tb.warnings = append(tb.warnings, le.Text)
		}
	})
	if err := b.Subscribe(ctx, "log.entryAdded"); err != nil {
		t.Fatal(err)
	}
	return fx
}

// fxTab is one page of the demo in a Firefox tab of its own user context (its own cookies and
// storage).
type fxTab struct {
	name string
	fx   *firefox
	ctx  string // the browsing context

	mu       sync.Mutex
	errors   []string
	warnings []string
}

func (fx *firefox) openTab(t *testing.T, name string) *fxTab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	uc, err := fx.CreateUserContext(ctx)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	bc, err := fx.CreateTab(ctx, uc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tb := &fxTab{name: name, fx: fx, ctx: bc}
	fx.mu.Lock()
	fx.tabs[bc] = tb
	fx.mu.Unlock()
	return tb
}

// fxEval runs a JavaScript expression in the tab (awaiting a Promise) and decodes its result.
func fxEval[T any](tb *fxTab, expr string) (T, error) {
	var v T
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := tb.fx.Eval(ctx, tb.ctx, expr, &v)
	return v, err
}

func (tb *fxTab) pageErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.errors...)
}

func (tb *fxTab) waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	pollPage(t, tb.name, tb.pageErrors, what, cond)
}

// open loads the page and waits for the peer to be ready and to have a neighbour. It returns
// the peer's ID and the time from navigation start to the first neighbour, by the page's clock.
func (tb *fxTab) open(t *testing.T, url string) (id string, toNeighbour time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	if err := tb.fx.Navigate(ctx, tb.ctx, url); err != nil {
		t.Fatalf("%s: loading %s: %v", tb.name, url, err)
	}
	tb.waitFor(t, "the peer is ready", func() (bool, error) {
		v, err := fxEval[string](tb, `(globalThis.rtcmesh && globalThis.rtcmesh.id) || ""`)
		id = v
		return v != "", err
	})
	var ms float64
	tb.waitFor(t, "the peer has a neighbour", func() (bool, error) {
		v, err := fxEval[float64](tb, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.length > 0 ? performance.now() : -1)`)
		ms = v
		return v >= 0, err
	})
	return id, time.Duration(ms * float64(time.Millisecond))
}

// send types text into the page's box and presses Enter, as a person would.
func (tb *fxTab) send(t *testing.T, text string) {
	t.Helper()
	tb.waitFor(t, "the box is enabled", func() (bool, error) {
		return fxEval[bool](tb, `(() => { const e = document.getElementById("send-text"); e.focus(); return !e.disabled && document.activeElement === e })()`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	if err := tb.fx.Type(ctx, tb.ctx, text+"\n"); err != nil {
		t.Fatalf("%s: typing %q: %v", tb.name, text, err)
	}
}

// waitShown waits until the page lists a message with this text and returns it.
func (tb *fxTab) waitShown(t *testing.T, text string) shownMessage {
	t.Helper()
	var got shownMessage
	tb.waitFor(t, fmt.Sprintf("the page shows %q", text), func() (ok bool, err error) {
		got, ok, err = findShown(fxEval[[]shownMessage](tb, shownMessagesJS))(text)
		return ok, err
	})
	return got
}

// transferredJS sums what the page downloaded by the Resource Timing API (transferSize:
// headers and encoded body), the same measure in every browser.
const transferredJS = `(() => {
	const out = {};
	for (const e of [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]) {
		const p = new URL(e.name).pathname;
		out[p] = (out[p] || 0) + e.transferSize;
	}
	return out;
})()`

// screenshot saves the tab's viewport as name in the test screenshots' directory.
func (tb *fxTab) screenshot(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	png, err := tb.fx.Screenshot(ctx, tb.ctx)
	if err != nil {
		t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	return saveScreenshot(t, name, png)
}

// startFirefoxDemo starts a demo with nodes Go nodes, waits for them to connect, and starts
// headless Firefox (skipping without it). Both are closed when the test ends.
func startFirefoxDemo(t *testing.T, nodes int, seed uint64) (*Demo, *firefox) {
	t.Helper()
	fx := startFirefox(t)
	d := startPageDemo(t, demoConfig(nodes, seed))
	return d, fx
}

// TestFirefox runs the demo, with its default configuration, with its 8 Go nodes and a
// headless Firefox tab as a peer: the tab joins, and broadcasts cross both ways.
func TestFirefox(t *testing.T) {
	d, fx := startFirefoxDemo(t, DefaultConfig().Nodes, 31)
	a := fx.openTab(t, "Firefox tab A")
	idA, firstNeighbour := a.open(t, d.URL())
	t.Logf("Firefox tab A is peer %s; page load to first neighbour: %v", idA, firstNeighbour.Round(time.Millisecond))
	nodes := d.Nodes()

	t.Run("JoinsTheMesh", func(t *testing.T) {
		a.waitFor(t, "a Go node lists the tab as its neighbour", func() (bool, error) { return aNeighbourOf(nodes, idA), nil })
		a.waitFor(t, "the picture shows the neighbours", func() (bool, error) {
			return fxEval[bool](a, `document.querySelectorAll("#overlay .node.active").length > 0`)
		})
	})

	t.Run("PageToGoNodes", func(t *testing.T) {
		text := "hello from Firefox"
		a.send(t, text)
		if own := a.waitShown(t, text); !own.Own || own.Origin != idA || own.Hops != "0" {
			t.Errorf("the page lists its own message as %+v", own)
		}
		goNodesDeliver(t, nodes, text, idA)
	})

	t.Run("GoNodeToPage", func(t *testing.T) {
		text := "hello Firefox, from Go node 3"
		if _, err := nodes[2].Say(text); err != nil {
			t.Fatal(err)
		}
		m := a.waitShown(t, text)
		if m.Own || m.Origin != nodes[2].ID() || m.Hops == "0" || !strings.HasSuffix(m.Latency, " ms") {
			t.Errorf("the page shows %+v", m)
		}
	})

	paths, err := fxEval[[]string](a, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.map(n => n.path))`)
	t.Logf("Firefox tab A's links by path: %v (%v)", paths, err)
	// New lines fade in over 0.4 s and links widen over 0.3 s: let that finish before the picture.
	time.Sleep(1500 * time.Millisecond)
	t.Logf("screenshot of Firefox tab A: %s", a.screenshot(t, "firefox.png"))
	if per, err := fxEval[map[string]float64](a, transferredJS); err == nil {
		var total float64
		for _, n := range per {
			total += n
		}
		t.Logf("Firefox tab A downloaded %.0f bytes (Resource Timing transferSize): %v", total, per)
	}
	t.Logf("page load to first neighbour: %v (Firefox tab A)", firstNeighbour.Round(time.Millisecond))
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("%s logged errors:\n%s", a.name, strings.Join(errs, "\n"))
	}
}

// TestBrowserFirefoxAndChromium puts a Firefox tab and a Chromium tab into one demo mesh and
// checks a broadcast from each reaches the other (and every Go node), with the figures of both.
func TestBrowserFirefoxAndChromium(t *testing.T) {
	fx := startFirefox(t)
	d, chromium := startBrowserDemo(t, DefaultConfig().Nodes, 51)
	f := fx.openTab(t, "Firefox tab")
	c := openTab(t, chromium, "Chromium tab")
	idF, fFirst := f.open(t, d.URL())
	idC, cFirst := c.open(t, d.URL())
	t.Logf("page load to first neighbour: Firefox %v, Chromium %v", fFirst.Round(time.Millisecond), cFirst.Round(time.Millisecond))

	wctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	f.send(t, "hello Chromium, from Firefox")
	if m := c.waitShown(t, "hello Chromium, from Firefox"); m.Origin != idF || m.Own {
		t.Errorf("the Chromium tab shows %+v", m)
	}
	c.send(t, "hello Firefox, from Chromium")
	if m := f.waitShown(t, "hello Firefox, from Chromium"); m.Origin != idC || m.Own {
		t.Errorf("the Firefox tab shows %+v", m)
	}
	for i, n := range d.Nodes() {
		for _, text := range []string{"hello Chromium, from Firefox", "hello Firefox, from Chromium"} {
			if _, err := n.WaitMessage(wctx, text); err != nil {
				t.Errorf("Go node %d: %v", i+1, err)
			}
		}
	}

	// Figures, by the same measure in both browsers: bytes by Resource Timing.
	for _, b := range []struct {
		name string
		eval func(string) (map[string]float64, error)
	}{
		{"Firefox", func(e string) (map[string]float64, error) { return fxEval[map[string]float64](f, e) }},
		{"Chromium", func(e string) (map[string]float64, error) { return eval[map[string]float64](c, e) }},
	} {
		per, err := b.eval(transferredJS)
		var total float64
		for _, n := range per {
			total += n
		}
		t.Logf("%s tab downloaded %.0f bytes (Resource Timing transferSize, headers and gzipped bodies): %v %v", b.name, total, per, err)
	}
	fPaths, _ := fxEval[[]string](f, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.map(n => n.path))`)
	cPaths, _ := eval[[]string](c, `globalThis.rtcmesh.snapshot().then(s => s.neighbors.map(n => n.path))`)
	t.Logf("links by path: Firefox %v, Chromium %v", fPaths, cPaths)
	time.Sleep(1500 * time.Millisecond)
	t.Logf("screenshot of the Firefox tab: %s", f.screenshot(t, "cross-firefox.png"))
	t.Logf("screenshot of the Chromium tab: %s", c.screenshot(t, "cross-chromium.png"))
	for name, errs := range map[string][]string{f.name: f.pageErrors(), c.name: c.pageErrors()} {
		if len(errs) > 0 {
			t.Errorf("%s logged errors:\n%s", name, strings.Join(errs, "\n"))
		}
	}
}
