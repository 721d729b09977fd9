package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// listedMessage is a message as the page lists it, with the catch-up marks.
type listedMessage struct {
	Text    string  `json:"text"`
	Origin  string  `json:"origin"`
	SentAt  float64 `json:"sentAt"`
	History bool    `json:"history"`
	Badge   string  `json:"badge"`
	Sent    string  `json:"sent"`
	Latency string  `json:"latency"`
}

// listed returns the page's message list, top (newest) first.
func listed(tb *tab) ([]listedMessage, error) {
	return eval[[]listedMessage](tb, `[...document.querySelectorAll("#messages li")].map(li => ({
		text: li.querySelector(".text").textContent, origin: li.dataset.origin, sentAt: Number(li.dataset.sentAt),
		history: li.classList.contains("history"),
		badge: (li.querySelector(".badge") || {}).textContent || "",
		sent: (li.querySelector(".sent-at") || {}).textContent || "",
		latency: li.querySelector(".latency").textContent}))`)
}

// TestBrowserCatchesUp: a Go node broadcasts lines before any tab is open; a tab opened
// afterwards shows them, fetched by catch-up from its Go neighbours, marked as history with
// their original send time and in the order they were sent; a line said after it joined is
// shown live, as always.
func TestBrowserCatchesUp(t *testing.T) {
	d, browser := startBrowserDemo(t, 3, 31)
	nodes := d.Nodes()

	const lines = 6
	var texts []string
	sentAt := map[string]time.Time{}
	for i := range lines {
		text := fmt.Sprintf("said before the tab opened, line %d", i+1)
		texts = append(texts, text)
		if _, err := nodes[i%len(nodes)].Say(text); err != nil {
			t.Fatal(err)
		}
		// Distinct send times (they are milliseconds), so the order is defined.
		time.Sleep(20 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	for _, text := range texts {
		for k, n := range nodes {
			m, err := n.WaitMessage(wctx, text)
			if err != nil {
				t.Fatal(err)
			}
			if m.History {
				t.Errorf("Go node %d got %q as history; it was linked when it was sent", k+1, text)
			}
			if k == 0 {
				sentAt[text] = m.SentAt
			}
		}
	}

	// A Digest leaves out what was sent in the last Gossip.CatchUpSettle (2 s in the tab's WAN
	// profile), which the tree may still be delivering; the figure below is for a tab opened
	// after that.
	time.Sleep(2 * time.Second)

	a := openTab(t, browser, "late tab")
	idA, firstNeighbour := a.open(t, d.URL())
	var shown []listedMessage
	var shownAt float64
	a.waitFor(t, "the page shows the earlier lines", func() (bool, error) {
		v, err := listed(a)
		if err != nil {
			return false, err
		}
		shown = v
		for _, text := range texts {
			if !slices.ContainsFunc(v, func(m listedMessage) bool { return m.Text == text }) {
				return false, nil
			}
		}
		shownAt, err = eval[float64](a, `performance.now()`)
		return err == nil, err
	})
	toHistory := time.Duration(shownAt * float64(time.Millisecond))
	t.Logf("late tab %s: page load to first neighbour %v, to all %d earlier lines shown as history %v",
		idA[:8], firstNeighbour.Round(time.Millisecond), lines, toHistory.Round(time.Millisecond))

	// Newest first: the earlier lines, read from the bottom up, are in the order they were
	// sent, each marked as history with its origin's send time.
	var order []string
	for _, m := range shown {
		if !slices.Contains(texts, m.Text) {
			continue
		}
		order = append([]string{m.Text}, order...)
		want := sentAt[m.Text]
		switch {
		case !m.History || m.Badge != "history":
			t.Errorf("%q is not marked as history: %+v", m.Text, m)
		case int64(m.SentAt) != want.UnixMilli():
			t.Errorf("%q: sent at %v on the page, %v by the Go node", m.Text, time.UnixMilli(int64(m.SentAt)), want)
		case !strings.HasPrefix(m.Sent, "sent "):
			t.Errorf("%q shows no send time: %+v", m.Text, m)
		}
	}
	if !slices.Equal(order, texts) {
		t.Errorf("the page lists the earlier lines, oldest first, as %q; want the order they were sent", order)
	}
	if s, err := eval[map[string]any](a, `globalThis.rtcmesh.snapshot().then(s => s.stats)`); err != nil {
		t.Error(err)
	} else if h, _ := s["history"].(float64); h < lines {
		t.Errorf("the peer counts %v deliveries from history, want at least %d", s["history"], lines)
	}

	// A line said now is live, as before catch-up existed: on top, with its latency in ms.
	live := "said after the tab joined"
	if _, err := nodes[1].Say(live); err != nil {
		t.Fatal(err)
	}
	a.waitShown(t, live)
	now, err := listed(a)
	if err != nil {
		t.Fatal(err)
	}
	if top := now[0]; top.Text != live || top.History || top.Badge != "" || !strings.HasSuffix(top.Latency, " ms") {
		t.Errorf("the live line is shown as %+v, want it on top, not history, with its latency", top)
	}

	// The picture settles, then the page is photographed for a person to look at.
	a.waitFor(t, "the picture shows the neighbours", func() (bool, error) {
		return eval[bool](a, `document.querySelectorAll("#overlay .node.active").length > 0`)
	})
	time.Sleep(1500 * time.Millisecond)
	shotPath := a.screenshot(t, "history.png")
	t.Logf("screenshot of the late tab: %s", shotPath)
	if errs := a.pageErrors(); len(errs) > 0 {
		t.Errorf("the late tab logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
