// Package web is the demo page of rtcmesh: the HTML, JavaScript and CSS that run a browser tab
// as a full peer of the mesh (the Go/wasm peer of web/peer, embedded here as peer.wasm.gz), and
// the http.Handler that serves them. The signaling server mounts the handler at "/" next to
// "/ws", so the page finds signaling on its own origin.
//
// Everything is embedded at build time: a fresh clone serves the page with nothing but Go
// installed. Text assets are gzipped once when the handler is built; the wasm is stored
// gzipped and sent as is to clients that accept gzip (every browser), or decompressed on the
// fly for the others.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// static holds the page. It is read-only: embed.FS cannot change after the build.
//
//go:embed static
var static embed.FS

// WasmFile is the embedded, gzipped browser peer, served decompressed-on-the-wire at
// WasmPath.
const (
	WasmFile = "peer.wasm.gz"
	WasmPath = "/peer.wasm"
)

// servable reports whether the handler serves embedded files with extension ext.
func servable(ext string) bool {
	switch ext {
	case ".html", ".js", ".css", ".svg", ".png", ".ico", ".gz":
		return true
	}
	return false
}

// Config configures a Handler.
type Config struct {
	// Network is the network (room) the page joins unless its URL says ?network=. Required.
	Network string
	// MaxNetworkLength bounds Network, as the signaling protocol does. Default 64.
	MaxNetworkLength int
}

// DefaultConfig returns a Config for network.
func DefaultConfig(network string) Config {
	return Config{Network: network, MaxNetworkLength: 64}
}

// asset is one servable file: its bytes, and a gzipped copy when compression pays.
type asset struct {
	name        string
	contentType string
	// body is the identity encoding; nil for the wasm, which is kept only gzipped.
	body []byte
	// gz is the gzip encoding; nil when gzip would not make it smaller.
	gz []byte
	// size is the identity length (for the wasm, read from the gzip trailer).
	size int64
	etag string
	// cacheControl: every asset is revalidated (no-cache) because the URLs carry no version:
	// a rebuilt binary must never leave a browser running an old peer against a new page.
	// Revalidation costs one round trip and, thanks to the ETag, no body.
	cacheControl string
}

// Handler serves the page. It is safe for concurrent use and holds no mutable state.
type Handler struct {
	assets map[string]*asset
}

// NewHandler builds the handler: it reads and compresses every embedded asset once.
func NewHandler(cfg Config) (*Handler, error) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("web: embedded files: %w", err)
	}
	return newHandler(cfg, sub)
}

// newHandler serves the files of fsys (tests give their own).
func newHandler(cfg Config, fsys fs.FS) (*Handler, error) {
	if cfg.MaxNetworkLength == 0 {
		cfg.MaxNetworkLength = 64
	}
	if cfg.Network == "" {
		return nil, errors.New("web: Config.Network is empty")
	}
	if len(cfg.Network) > cfg.MaxNetworkLength {
		return nil, fmt.Errorf("web: network name is %d bytes, longer than %d", len(cfg.Network), cfg.MaxNetworkLength)
	}
	h := &Handler{assets: map[string]*asset{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if !servable(path.Ext(p)) {
			return nil // build records (peer.sources) are not part of the page
		}
		if p == WasmFile {
			a, err := wasmAsset(data)
			if err != nil {
				return err
			}
			h.assets[WasmPath] = a
			return nil
		}
		h.assets["/"+p] = textAsset("/"+p, data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: reading embedded files: %w", err)
	}
	cj, err := json.Marshal(struct {
		Network string `json:"network"`
	}{cfg.Network})
	if err != nil {
		return nil, fmt.Errorf("web: config.json: %w", err)
	}
	h.assets["/config.json"] = textAsset("/config.json", cj)
	if idx, ok := h.assets["/index.html"]; ok {
		h.assets["/"] = idx
	}
	return h, nil
}

// HasPeer reports whether the browser peer (peer.wasm.gz) is embedded in this build.
func (h *Handler) HasPeer() bool { return h.assets[WasmPath] != nil }

// Sizes reports, for each served path, the bytes a gzip-accepting client downloads.
func (h *Handler) Sizes() map[string]int64 {
	out := make(map[string]int64, len(h.assets))
	for p, a := range h.assets {
		if a.gz != nil {
			out[p] = int64(len(a.gz))
		} else {
			out[p] = int64(len(a.body))
		}
	}
	return out
}

func textAsset(name string, data []byte) *asset {
	a := &asset{name: name, body: data, size: int64(len(data)), etag: etagOf(data), cacheControl: "no-cache"}
	a.contentType = mime.TypeByExtension(path.Ext(name))
	if a.contentType == "" {
		a.contentType = http.DetectContentType(data)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid: no error
	_, _ = zw.Write(data)                                    // a bytes.Buffer does not fail
	_ = zw.Close()
	if buf.Len() < len(data) {
		a.gz = buf.Bytes()
	}
	return a
}

// wasmAsset checks the embedded gzip stream (so a corrupt build fails at start, not in a
// browser) and reads the decompressed size from its trailer.
func wasmAsset(gz []byte) (*asset, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", WasmFile, err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", WasmFile, err)
	}
	return &asset{name: WasmPath, contentType: "application/wasm", gz: gz, size: n, etag: etagOf(gz), cacheControl: "no-cache"}, nil
}

func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// ServeHTTP serves GET and HEAD of the page's files; anything else is 405, an unknown path
// 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		if r.URL.Path == WasmPath {
			http.Error(w, "the browser peer is not embedded in this build: run go generate ./web", http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", a.cacheControl)
	hd.Set("X-Content-Type-Options", "nosniff")
	useGzip := a.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding"))
	if a.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
	}
	// The two encodings are different representations, so they carry different ETags.
	etag := a.etag
	if useGzip {
		etag = strings.TrimSuffix(etag, `"`) + `-gz"`
	}
	hd.Set("ETag", etag)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	switch {
	case useGzip:
		hd.Set("Content-Encoding", "gzip")
		hd.Set("Content-Length", strconv.Itoa(len(a.gz)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(a.gz) // the client went away: nothing to do
		}
	case a.body != nil:
		hd.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(a.body)
		}
	default:
		// Only the gzipped wasm is stored; a client without gzip gets it decompressed as it
		// streams, so it costs no memory per request beyond the decompressor.
		hd.Set("Content-Length", strconv.FormatInt(a.size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			zr, err := gzip.NewReader(bytes.NewReader(a.gz))
			if err != nil {
				return // checked by NewHandler; unreachable for the embedded bytes
			}
			_, _ = io.Copy(w, zr)
		}
	}
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (an explicit "gzip" or
// "*" without q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}

// etagMatches implements If-None-Match's weak comparison for a list of tags or "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
