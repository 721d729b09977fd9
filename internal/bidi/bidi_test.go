package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeRemote is a BiDi remote end that answers a few commands the way Firefox does.
func fakeRemote(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/session" {
			http.NotFound(w, r)
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			var m map[string]json.RawMessage
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			var id int64
			var method string
			_ = json.Unmarshal(m["id"], &id)
			_ = json.Unmarshal(m["method"], &method)
			reply := map[string]any{"id": id, "type": "success"}
			switch method {
			case "session.new":
				reply["result"] = map[string]any{"sessionId": "s1", "capabilities": map[string]any{}}
			case "browsingContext.create":
				// An event first, as the remote end may interleave them with responses.
				_ = conn.WriteJSON(map[string]any{"type": "event", "method": "log.entryAdded",
					"params": map[string]any{"type": "console", "level": "error", "text": "boom", "method": "error"}})
				reply["result"] = map[string]any{"context": "ctx-1"}
			case "script.evaluate":
				var p struct {
					Expression string `json:"expression"`
				}
				_ = json.Unmarshal(m["params"], &p)
				if strings.Contains(p.Expression, "throw") {
					reply["result"] = map[string]any{"type": "exception", "exceptionDetails": map[string]any{"text": "Error: nope"}}
				} else {
					reply["result"] = map[string]any{"type": "success", "result": map[string]any{"type": "string", "value": `{"a":[1,2]}`}}
				}
			case "browsingContext.captureScreenshot":
				reply["result"] = map[string]any{"data": "iVBORw=="}
			case "hang":
				continue
			default:
				reply = map[string]any{"id": id, "type": "error", "error": "unknown command", "message": method}
			}
			if err := conn.WriteJSON(reply); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/session"
}

func TestClientAgainstFakeRemote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, fakeRemote(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	events := make(chan Event, 4)
	c.OnEvent(func(e Event) { events <- e })
	if err := c.NewSession(ctx); err != nil {
		t.Fatal(err)
	}
	tab, err := c.CreateTab(ctx, "")
	if err != nil || tab != "ctx-1" {
		t.Fatalf("CreateTab = %q, %v", tab, err)
	}
	select {
	case e := <-events:
		var le LogEntry
		if e.Method != "log.entryAdded" || json.Unmarshal(e.Params, &le) != nil || le.Level != "error" || le.Text != "boom" {
			t.Errorf("event %s %s", e.Method, e.Params)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	var out struct{ A []int }
	if err := c.Eval(ctx, tab, "({a: [1, 2]})", &out); err != nil || len(out.A) != 2 {
		t.Errorf("Eval = %+v, %v", out, err)
	}
	var se *ScriptError
	if err := c.Eval(ctx, tab, "(() => { throw new Error('nope') })()", nil); !errors.As(err, &se) || se.Text != "Error: nope" {
		t.Errorf("Eval of a throw = %v", err)
	}
	if png, err := c.Screenshot(ctx, tab); err != nil || string(png) != "\x89PNG" {
		t.Errorf("Screenshot = %d bytes, %v", len(png), err)
	}
	var be *Error
	if err := c.Call(ctx, "no.such", nil, nil); !errors.As(err, &be) || be.Code != "unknown command" {
		t.Errorf("unknown command: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if err := c.Call(short, "hang", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call with no answer: %v", err)
	}
	c.Close()
	if err := c.Call(ctx, "session.new", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("a call after Close: %v", err)
	}
}

func TestListeningURL(t *testing.T) {
	u, ok := ListeningURL("WebDriver BiDi listening on ws://127.0.0.1:40123")
	if !ok || u != "ws://127.0.0.1:40123" {
		t.Errorf("ListeningURL = %q, %v", u, ok)
	}
	if _, ok := ListeningURL("*** You are running in headless mode."); ok {
		t.Error("matched an unrelated line")
	}
}

// TestLaunchFirefox drives a real headless Firefox when one is installed.
func TestLaunchFirefox(t *testing.T) {
	path, err := exec.LookPath("firefox-esr")
	if err != nil {
		if os.Getenv("RTCMESH_REQUIRE_ALL") == "1" {
			t.Fatal("firefox-esr is not installed (RTCMESH_REQUIRE_ALL=1)")
		}
		t.Skip("firefox-esr is not installed")
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := Launch(ctx, Options{Path: path, Profile: t.TempDir(), Width: 800, Height: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	uc, err := b.CreateUserContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := b.CreateTab(ctx, uc)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(ctx, tab, `data:text/html,<input id=i autofocus><script>console.error("oops")</script>`); err != nil {
		t.Fatal(err)
	}
	if err := b.Eval(ctx, tab, `document.getElementById("i").focus()`, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Type(ctx, tab, "héllo"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := b.Eval(ctx, tab, `document.getElementById("i").value`, &v); err != nil || v != "héllo" {
		t.Errorf("typed %q, %v", v, err)
	}
	if png, err := b.Screenshot(ctx, tab); err != nil || len(png) < 100 {
		t.Errorf("Screenshot: %d bytes, %v", len(png), err)
	}
}
