package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The overlay picture's layout (globalThis.rtcmeshLayout in web/static/app.js) is checked in
// each browser twice: the pure function for every view size a browser peer can have (and
// more), and the drawn picture, in the DOM and in a screenshot, for a few sizes fed to the page
// as fake snapshots.

// disc is a drawn peer: centre and radius.
type disc struct {
	X, Y, R float64
	Label   bool
}

type placement struct {
	Self    disc   `json:"self"`
	Active  []disc `json:"active"`
	Passive []disc `json:"passive"`
}

// The picture's geometry, as app.js and index.html draw it: the viewBox, and the text boxes
// under the centre (its ID) and under a passive peer (its short ID).
const (
	viewW, viewH = 720, 600
	labelHalfW   = 24 // 6 characters of 12 px monospace, and a little room
)

type box struct{ x0, y0, x1, y1 float64 }

func (b box) overlaps(c box) bool { return b.x0 < c.x1 && c.x0 < b.x1 && b.y0 < c.y1 && c.y0 < b.y1 }

func (d disc) overlapsBox(b box) bool {
	cx, cy := math.Max(b.x0, math.Min(d.X, b.x1)), math.Max(b.y0, math.Min(d.Y, b.y1))
	return math.Hypot(d.X-cx, d.Y-cy) < d.R
}

// checkPlacement reports every overlap in a layout of nActive and nPassive peers.
func checkPlacement(nActive, nPassive int, p placement) []string {
	var bad []string
	if len(p.Active) != nActive || len(p.Passive) != nPassive {
		return []string{fmt.Sprintf("%d active and %d passive places", len(p.Active), len(p.Passive))}
	}
	type item struct {
		name  string
		d     disc
		label *box
	}
	items := []item{{name: "centre", d: p.Self, label: &box{-labelHalfW, p.Self.R + 8, labelHalfW, p.Self.R + 24}}}
	for i, d := range p.Active {
		items = append(items, item{name: fmt.Sprintf("active %d", i), d: d})
	}
	for i, d := range p.Passive {
		it := item{name: fmt.Sprintf("passive %d", i), d: d}
		if d.Label {
			it.label = &box{d.X - labelHalfW, d.Y + d.R + 6, d.X + labelHalfW, d.Y + d.R + 20}
		}
		items = append(items, it)
	}
	for i, a := range items {
		if a.d.R < 2 {
			bad = append(bad, fmt.Sprintf("%s: radius %.1f", a.name, a.d.R))
		}
		if math.Abs(a.d.X)+a.d.R > viewW/2 || math.Abs(a.d.Y)+a.d.R > viewH/2 {
			bad = append(bad, fmt.Sprintf("%s at %.0f,%.0f is outside the picture", a.name, a.d.X, a.d.Y))
		}
		if a.label != nil && (a.label.x0 < -viewW/2 || a.label.x1 > viewW/2 || a.label.y0 < -viewH/2 || a.label.y1 > viewH/2) {
			bad = append(bad, fmt.Sprintf("%s: label outside the picture", a.name))
		}
		for _, b := range items[i+1:] {
			if math.Hypot(a.d.X-b.d.X, a.d.Y-b.d.Y) < a.d.R+b.d.R+1 {
				bad = append(bad, fmt.Sprintf("%s and %s overlap", a.name, b.name))
			}
			if a.label != nil && b.d.overlapsBox(*a.label) {
				bad = append(bad, fmt.Sprintf("%s's label is under %s", a.name, b.name))
			}
			if b.label != nil && a.d.overlapsBox(*b.label) {
				bad = append(bad, fmt.Sprintf("%s's label is under %s", b.name, a.name))
			}
			if a.label != nil && b.label != nil && a.label.overlaps(*b.label) {
				bad = append(bad, fmt.Sprintf("the labels of %s and %s overlap", a.name, b.name))
			}
		}
	}
	return bad
}

// layoutsJS computes the layout of every size up to maxActive and maxPassive in the page.
func layoutsJS(maxActive, maxPassive int) string {
	return fmt.Sprintf(`(() => { const out = [];
		for (let a = 0; a <= %d; a++) for (let p = 0; p <= %d; p++) out.push(globalThis.rtcmeshLayout(a, p));
		return out })()`, maxActive, maxPassive)
}

// checkLayouts checks the pure layout: every size a browser peer's views can have (an
// active view of up to 5, a passive one of up to 30), and larger ones.
func checkLayouts(t *testing.T, browser string, eval func(expr string, out any) error) {
	t.Helper()
	for _, lim := range []struct{ active, passive int }{{5, 30}, {12, 120}} {
		var all []placement
		if err := eval(layoutsJS(lim.active, lim.passive), &all); err != nil {
			t.Fatalf("%s: computing the layouts: %v", browser, err)
		}
		if len(all) != (lim.active+1)*(lim.passive+1) {
			t.Fatalf("%s: %d layouts", browser, len(all))
		}
		for i, p := range all {
			a, q := i/(lim.passive+1), i%(lim.passive+1)
			if bad := checkPlacement(a, q, p); len(bad) > 0 {
				t.Errorf("%s: %d active and %d passive peers: %v", browser, a, q, bad)
			}
		}
	}
}

// fakeSnapshotJS makes the page draw a snapshot with nActive neighbours and nPassive passive
// peers instead of its peer's own: the page reads globalThis.rtcmesh.snapshot() every 500 ms.
func fakeSnapshotJS(nActive, nPassive int) string {
	return fmt.Sprintf(`(() => {
		const real = globalThis.rtcmeshReal || globalThis.rtcmesh;
		globalThis.rtcmeshReal = real;
		const id = (k, i) => (k + i).padEnd(52, "q");
		const snap = {signaling: true, stats: {},
			neighbors: Array.from({length: %d}, (_, i) => ({id: id("a", i), path: ["host", "srflx", "prflx", "relay"][i %% 4], eager: i %% 2 === 0, rttMs: 1 + i})),
			passive: Array.from({length: %d}, (_, i) => id("p", i))};
		globalThis.rtcmesh = Object.assign(Object.create(real), {snapshot: () => Promise.resolve(snap)});
		return true })()`, nActive, nPassive)
}

// drawnJS reads where the page drew the centre and every peer, in screen pixels.
const drawnJS = `(() => [...document.querySelectorAll("#overlay .node")].map(g => {
	const r = g.querySelector("circle").getBoundingClientRect();
	return {x: r.x + r.width / 2, y: r.y + r.height / 2, r: r.width / 2, label: g.classList.contains("self")};
}))()`

// checkDrawn feeds the page fake snapshots and checks the drawn discs do not overlap, then
// screenshots the page with an active view of 3 and 4 passive peers (the case) and
// with full views.
func checkDrawn(t *testing.T, browser string, eval func(expr string, out any) error, shoot func(name string) string) {
	t.Helper()
	for _, size := range []struct{ active, passive int }{{0, 4}, {2, 4}, {3, 4}, {5, 30}, {0, 0}, {1, 1}, {5, 13}} {
		if err := eval(fakeSnapshotJS(size.active, size.passive), nil); err != nil {
			t.Fatalf("%s: %v", browser, err)
		}
		// A refresh (500 ms) and the easing (about half a second).
		var ds []disc
		deadline := time.Now().Add(20 * time.Second)
		for {
			time.Sleep(1500 * time.Millisecond)
			if err := eval(drawnJS, &ds); err != nil {
				t.Fatalf("%s: %v", browser, err)
			}
			if len(ds) == 1+size.active+size.passive || time.Now().After(deadline) {
				break
			}
		}
		if len(ds) != 1+size.active+size.passive {
			t.Fatalf("%s: %d active and %d passive peers: the page drew %d discs", browser, size.active, size.passive, len(ds))
		}
		for i, a := range ds {
			for j, b := range ds[i+1:] {
				if math.Hypot(a.X-b.X, a.Y-b.Y) < a.R+b.R {
					t.Errorf("%s: %d active and %d passive peers: disc %d (%.0f,%.0f r%.0f) overlaps disc %d (%.0f,%.0f r%.0f)",
						browser, size.active, size.passive, i, a.X, a.Y, a.R, i+1+j, b.X, b.Y, b.R)
				}
			}
		}
		if size == (struct{ active, passive int }{3, 4}) || size == (struct{ active, passive int }{5, 30}) {
			t.Logf("%s, %d active and %d passive peers: %s", browser, size.active, size.passive,
				shoot(fmt.Sprintf("layout-%s-%d-%d.png", browser, size.active, size.passive)))
		}
	}
}

// TestBrowserLayout checks the overlay picture's layout in headless Chromium.
func TestBrowserLayout(t *testing.T) {
	d, browser := startBrowserDemo(t, 0, 41)
	a := openTab(t, browser, "Chromium tab")
	ctx, cancel := context.WithTimeout(a.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(d.URL())); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the peer is ready", func() (bool, error) {
		return eval[bool](a, `!!(globalThis.rtcmesh && globalThis.rtcmesh.id && globalThis.rtcmeshLayout)`)
	})
	run := func(expr string, out any) error {
		ctx, cancel := context.WithTimeout(a.ctx, 20*time.Second)
		defer cancel()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
		if err != nil || out == nil {
			return err
		}
		return json.Unmarshal(raw, out)
	}
	checkLayouts(t, "chromium", run)
	checkDrawn(t, "chromium", run, func(name string) string {
		shot, err := chromedp.Run(a.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return saveScreenshot(t, name, shot)
	})
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}
}

// TestFirefoxLayout checks the overlay picture's layout in headless Firefox.
func TestFirefoxLayout(t *testing.T) {
	d, fx := startFirefoxDemo(t, 0, 42)
	a := fx.openTab(t, "Firefox tab")
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	if err := fx.Navigate(ctx, a.ctx, d.URL()); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "the peer is ready", func() (bool, error) {
		return fxEval[bool](a, `!!(globalThis.rtcmesh && globalThis.rtcmesh.id && globalThis.rtcmeshLayout)`)
	})
	run := func(expr string, out any) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return fx.Eval(ctx, a.ctx, expr, out)
	}
	checkLayouts(t, "firefox", run)
	checkDrawn(t, "firefox", run, func(name string) string { return a.screenshot(t, name) })
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}
}
