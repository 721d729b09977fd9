// Package wasmbuild builds the browser peer (web/peer) for GOOS=js GOARCH=wasm into the
// files the web page embeds, and fingerprints the sources they were built from. The
// committed build lets `go run ./cmd/rtcmesh demo` and the Docker image serve the page with
// nothing but Go installed; the fingerprint lets a test catch a build that no longer matches
// the code (web's TestEmbeddedPeerIsFresh).
package wasmbuild

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Package is the import path of the browser peer.
const Package = "github.com/rtcmesh/rtcmesh/web/peer"

// Output files, relative to the web package's directory.
const (
	WasmFile     = "static/peer.wasm.gz"   // the peer, gzip-compressed
	ExecFile     = "static/wasm_exec.js"   // Go's JavaScript support for wasm, from GOROOT
	SourcesFile  = "static/peer.sources"   // the fingerprint of the inputs
	wasmExecPath = "lib/wasm/wasm_exec.js" // inside GOROOT (Go 1.24 and later)
)

// jsEnv is the environment of every go command run here.
func jsEnv() []string {
	return append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
}

type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Module     *struct{ Path string }
}

// Fingerprint hashes what the browser peer is built from: every Go file of this module that
// the js/wasm build of web/peer compiles, and go.mod and go.sum (which pin every other
// dependency). It is independent of the Go version and of the checkout's location.
func Fingerprint(moduleRoot string) (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,Module", Package)
	cmd.Dir = moduleRoot
	cmd.Env = jsEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("wasmbuild: go list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	type file struct{ name, path string }
	var files []file
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			return "", fmt.Errorf("wasmbuild: go list output: %w", err)
		}
		if p.Module == nil || p.Module.Path != "github.com/rtcmesh/rtcmesh" {
			continue
		}
		for _, f := range p.GoFiles {
			files = append(files, file{name: p.ImportPath + "/" + f, path: filepath.Join(p.Dir, f)})
		}
	}
	files = append(files, file{"go.mod", filepath.Join(moduleRoot, "go.mod")}, file{"go.sum", filepath.Join(moduleRoot, "go.sum")})
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return "", fmt.Errorf("wasmbuild: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f.name, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Build compiles the browser peer and writes WasmFile, ExecFile and SourcesFile under
// webDir. It returns the uncompressed and compressed sizes of the peer.
func Build(moduleRoot, webDir string) (raw, gzipped int, err error) {
	tmp, err := os.MkdirTemp("", "rtcmesh-wasm-")
	if err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	wasmPath := filepath.Join(tmp, "peer.wasm")
	// -trimpath and -buildvcs=false keep the output independent of the checkout; -s -w drop
	// symbols the browser never uses (about a fifth of the size).
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", wasmPath, Package)
	cmd.Dir = moduleRoot
	cmd.Env = jsEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: go build: %w: %s", err, strings.TrimSpace(string(out)))
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: %w", err)
	}
	// No name and no modification time in the header: the same input gives the same bytes.
	if _, err := zw.Write(wasm); err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: compress: %w", err)
	}
	goroot, err := goEnv(moduleRoot, "GOROOT")
	if err != nil {
		return 0, 0, err
	}
	execJS, err := os.ReadFile(filepath.Join(goroot, wasmExecPath))
	if err != nil {
		return 0, 0, fmt.Errorf("wasmbuild: Go's wasm support file: %w", err)
	}
	fp, err := Fingerprint(moduleRoot)
	if err != nil {
		return 0, 0, err
	}
	goVersion, err := goEnv(moduleRoot, "GOVERSION")
	if err != nil {
		return 0, 0, err
	}
	sources := fmt.Sprintf("%s\n# built with %s; regenerate with: go generate ./web\n", fp, goVersion)
	for name, data := range map[string][]byte{
		WasmFile:    gz.Bytes(),
		ExecFile:    execJS,
		SourcesFile: []byte(sources),
	} {
		if err := os.WriteFile(filepath.Join(webDir, name), data, 0o644); err != nil {
			return 0, 0, fmt.Errorf("wasmbuild: %w", err)
		}
	}
	return len(wasm), gz.Len(), nil
}

// RecordedFingerprint reads the fingerprint written by the last Build.
func RecordedFingerprint(webDir string) (string, error) {
	f, err := os.Open(filepath.Join(webDir, SourcesFile))
	if err != nil {
		return "", fmt.Errorf("wasmbuild: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("wasmbuild: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line), nil
}

func goEnv(dir, name string) (string, error) {
	cmd := exec.Command("go", "env", name)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("wasmbuild: go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
