package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeWasm is bytes that start like a wasm module; the handler never looks inside.
var fakeWasm = append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte("peer code "), 5000)...)

func testHandler(t *testing.T) *Handler {
	t.Helper()
	fsys := fstest.MapFS{
		"index.html":   {Data: []byte("<!doctype html><title>t</title>" + strings.Repeat("<p>page</p>", 100))},
		"app.js":       {Data: []byte(strings.Repeat("console.log('app');\n", 100))},
		"style.css":    {Data: []byte("body{}")},
		"wasm_exec.js": {Data: []byte(strings.Repeat("// go runtime glue\n", 100))},
		WasmFile:       {Data: gzipped(t, fakeWasm)},
	}
	h, err := newHandler(DefaultConfig("demo"), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestWasmGzip(t *testing.T) {
	h := testHandler(t)
	w := do(h, "GET", WasmPath, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if ce := w.Header().Get("Content-Encoding"); ce != "gzip" {
		t.Errorf("Content-Encoding %q, want gzip", ce)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/wasm" {
		t.Errorf("Content-Type %q, want application/wasm", ct)
	}
	if !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary %q lacks Accept-Encoding", w.Header().Get("Vary"))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fakeWasm) {
		t.Errorf("gzipped body decodes to %d bytes, want the %d of the module", len(got), len(fakeWasm))
	}
	if w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Errorf("Content-Length %q", w.Header().Get("Content-Length"))
	}
}

func TestWasmIdentity(t *testing.T) {
	h := testHandler(t)
	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		w := do(h, "GET", WasmPath, map[string]string{"Accept-Encoding": ae})
		if w.Code != 200 {
			t.Fatalf("Accept-Encoding %q: status %d", ae, w.Code)
		}
		if ce := w.Header().Get("Content-Encoding"); ce != "" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want none", ae, ce)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/wasm" {
			t.Errorf("Content-Type %q", ct)
		}
		if !bytes.Equal(w.Body.Bytes(), fakeWasm) {
			t.Errorf("Accept-Encoding %q: body is %d bytes, want the %d-byte module", ae, w.Body.Len(), len(fakeWasm))
		}
		if cl := w.Header().Get("Content-Length"); cl != "50008" {
			t.Errorf("Content-Length %q, want 50008", cl)
		}
	}
}

func TestTextAssets(t *testing.T) {
	h := testHandler(t)
	for path, ct := range map[string]string{
		"/":             "text/html; charset=utf-8",
		"/index.html":   "text/html; charset=utf-8",
		"/app.js":       "text/javascript; charset=utf-8",
		"/wasm_exec.js": "text/javascript; charset=utf-8",
		"/style.css":    "text/css; charset=utf-8",
	} {
		plain := do(h, "GET", path, nil)
		if plain.Code != 200 || plain.Header().Get("Content-Type") != ct {
			t.Errorf("%s: status %d, Content-Type %q, want 200 %q", path, plain.Code, plain.Header().Get("Content-Type"), ct)
		}
		if plain.Header().Get("Cache-Control") != "no-cache" || plain.Header().Get("ETag") == "" {
			t.Errorf("%s: Cache-Control %q ETag %q", path, plain.Header().Get("Cache-Control"), plain.Header().Get("ETag"))
		}
		gz := do(h, "GET", path, map[string]string{"Accept-Encoding": "gzip"})
		if path == "/style.css" { // too small to gain from gzip
			if gz.Header().Get("Content-Encoding") != "" || gz.Body.String() != "body{}" {
				t.Errorf("%s: got an encoded body for a file gzip does not shrink", path)
			}
			continue
		}
		if gz.Header().Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: not gzipped", path)
			continue
		}
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(zr)
		if !bytes.Equal(got, plain.Body.Bytes()) {
			t.Errorf("%s: gzip and identity bodies differ", path)
		}
		if gz.Header().Get("ETag") == plain.Header().Get("ETag") {
			t.Errorf("%s: both encodings carry ETag %s", path, gz.Header().Get("ETag"))
		}
	}
}

func TestConditionalAndHead(t *testing.T) {
	h := testHandler(t)
	first := do(h, "GET", "/app.js", map[string]string{"Accept-Encoding": "gzip"})
	etag := first.Header().Get("ETag")
	again := do(h, "GET", "/app.js", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag})
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidation: status %d with %d body bytes, want 304 and none", again.Code, again.Body.Len())
	}
	other := do(h, "GET", "/app.js", map[string]string{"If-None-Match": etag})
	if other.Code != 200 {
		t.Errorf("the gzip ETag revalidated the identity encoding: status %d", other.Code)
	}
	head := do(h, "HEAD", WasmPath, map[string]string{"Accept-Encoding": "gzip"})
	if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %q", head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
	}
}

func TestMethodsAndNotFound(t *testing.T) {
	h := testHandler(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		w := do(h, m, "/", nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: status %d Allow %q, want 405 'GET, HEAD'", m, w.Code, w.Header().Get("Allow"))
		}
	}
	for _, p := range []string{"/nope", "/static/app.js", "/peer.wasm.gz", "/../web.go", "/index.html/"} {
		if w := do(h, "GET", p, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	h := testHandler(t)
	w := do(h, "GET", "/config.json", nil)
	var cfg struct{ Network string }
	if err := json.Unmarshal(w.Body.Bytes(), &cfg); err != nil || cfg.Network != "demo" {
		t.Errorf("config.json %q: %v", w.Body.String(), err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := NewHandler(Config{}); err == nil {
		t.Error("empty network accepted")
	}
	if _, err := NewHandler(DefaultConfig(strings.Repeat("n", 65))); err == nil {
		t.Error("65-byte network accepted")
	}
	if _, err := newHandler(DefaultConfig("x"), fstest.MapFS{WasmFile: {Data: []byte("not gzip")}}); err == nil {
		t.Error("corrupt peer.wasm.gz accepted")
	}
}

// TestEmbedded checks the page this build really serves.
func TestEmbedded(t *testing.T) {
	h, err := NewHandler(DefaultConfig("demo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/app.js", "/style.css"} {
		if w := do(h, "GET", p, nil); w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("GET %s: status %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}
	if !h.HasPeer() {
		t.Logf("%s is not embedded yet: /peer.wasm answers 503", WasmFile)
		if w := do(h, "GET", WasmPath, nil); w.Code != http.StatusServiceUnavailable {
			t.Errorf("GET %s without the peer: status %d, want 503", WasmPath, w.Code)
		}
		return
	}
	w := do(h, "GET", WasmPath, map[string]string{"Accept-Encoding": "gzip"})
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET %s: status %d, encoding %q", WasmPath, w.Code, w.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 4)
	if _, err := io.ReadFull(zr, magic); err != nil || string(magic) != "\x00asm" {
		t.Errorf("%s does not start with the wasm magic: %q %v", WasmPath, magic, err)
	}
}
