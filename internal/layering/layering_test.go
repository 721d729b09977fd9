package layering

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rtcmesh/rtcmesh"

// rule says what the non-test files of one package may import. Standard-library imports are
// allowed unless listed in forbidStd; module packages and third-party modules only when listed
// (a third-party entry allows the module path and everything below it).
type rule struct {
	internal  []string // packages of this module, relative to the module root
	external  []string // third-party module path prefixes
	forbidStd []string // standard-library packages (and their subpackages) that are refused
	core      bool     // a protocol core: no go statements, no wall clock, no global random source
}

// coreForbidden keeps the cores free of I/O, concurrency and test code.
var coreForbidden = []string{"net", "sync", "os", "testing", "io/fs", "syscall", "unsafe", "math/rand"}

func layers() map[string]rule {
	return map[string]rule{
		"membership": {forbidStd: coreForbidden, core: true},
		"gossip":     {forbidStd: coreForbidden, core: true},
		// Peer scoring, composed by overlay: as pure as the cores.
		"scoring": {forbidStd: coreForbidden, core: true},
		// The composition of the two cores for one node: as pure as they are.
		// Routing of signed envelopes through the overlay, composed by overlay: as pure.
		"routing": {forbidStd: coreForbidden, core: true},
		"overlay": {internal: []string{"membership", "gossip", "scoring", "routing"}, forbidStd: coreForbidden, core: true},
		"wire":    {internal: []string{"membership", "gossip", "routing"}, forbidStd: []string{"net", "os"}},
		// link only for link.DefaultHeartbeatTimeout, the heartbeat the simulator models; wire
		// to count catch-up's bytes as the runtime would send them.
		"sim": {internal: []string{"membership", "gossip", "overlay", "scoring", "routing", "link", "wire"}, forbidStd: []string{"net"}},

		"signaling":                      {},
		"signaling/internal/tokenbucket": {},
		"signaling/signalserver": {internal: []string{"signaling", "signaling/internal/tokenbucket", "identity"},
			external: []string{"github.com/gorilla/websocket", "github.com/rs/zerolog"}},
		"signaling/signalclient": {internal: []string{"signaling", "signaling/internal/tokenbucket", "internal/browser", "identity"},
			external: []string{"github.com/gorilla/websocket", "github.com/rs/zerolog"}},
		// Several signaling instances sharing networks through NATS (signalserver.Cluster).
		"signaling/signalnats": {internal: []string{"signaling", "signaling/signalserver"},
			external: []string{"github.com/nats-io/nats.go", "github.com/rs/zerolog"}},
		"signaling/signalservice": {internal: []string{"signaling", "signaling/signalserver", "signaling/signalnats", "turnserver", "web", "metrics"},
			external: []string{"github.com/rs/zerolog"}},
		"turnserver": {external: []string{"github.com/pion/turn/v5", "github.com/pion/stun", "github.com/pion/transport/v5",
			"github.com/pion/logging", "github.com/rs/zerolog", "golang.org/x/time", "golang.org/x/sys"}},
		"turnserver/coturnbench": {}, // std lib only: it runs the rtcmesh binary and coturn's tools side by side

		"identity":     {internal: []string{"internal/browser"}}, // pure: keys and proofs, no WebRTC
		"link":         {},
		"link/memlink": {internal: []string{"link"}},
		"link/rtclink": {internal: []string{"link", "identity", "internal/browser"}, external: []string{"github.com/pion/webrtc/v4", "github.com/pion/ice/v4",
			"github.com/pion/interceptor", "github.com/pion/logging", "github.com/pion/transport/v5", "github.com/pion/dtls/v3",
			"github.com/pion/datachannel", "github.com/pion/sctp", "github.com/rs/zerolog"}},
		"node": {internal: []string{"membership", "gossip", "overlay", "scoring", "routing", "wire", "link", "identity"},
			external: []string{"github.com/rs/zerolog"}},
		"node/nodetest": {internal: []string{"gossip", "identity", "node"}},
		// The WebRTC node: the runtime over rtclink, meeting peers through signaling.
		"rtcnode": {internal: []string{"node", "identity", "link/rtclink", "signaling", "signaling/signalclient"},
			external: []string{"github.com/rs/zerolog"}},
		// The ladder of real nodes (`rtcmesh bench mesh`): a signaling server and rtcnode nodes
		// in worker processes.
		"rtcnode/meshbench": {internal: []string{"gossip", "identity", "link/rtclink", "node", "rtcnode", "signaling/signalserver"},
			external: []string{"github.com/rs/zerolog"}},
		"node/nodehttp": {internal: []string{"node"}, external: []string{"github.com/rs/zerolog"}},
		"metrics": {internal: []string{"membership", "gossip", "scoring", "link", "node", "signaling/signalserver", "signaling/signalnats", "turnserver"},
			external: []string{"github.com/prometheus/client_golang", "github.com/rs/zerolog"}},

		"cmd/rtcmesh": {internal: []string{"sim", "link", "signaling/signalservice", "signaling/signalnats", "turnserver", "node", "node/nodehttp", "rtcnode", "identity", "link/rtclink", "metrics",
			"chat", "web", "demo", "rtcnode/meshbench"},
			external: []string{"github.com/rs/zerolog"}},
		"chat":             {},
		"internal/browser": {}, // syscall/js helpers for the js/wasm twins
		// The browser peer: the same runtime and cores as a Go node, nothing of pion.
		"web/peer": {internal: []string{"chat", "gossip", "identity", "node", "rtcnode"}, external: []string{"github.com/rs/zerolog"}},
		"web":      {}, // the demo page's files and their handler: std lib only
		"demo": {internal: []string{"chat", "identity", "link/rtclink", "node", "rtcnode", "signaling/signalserver", "signaling/signalservice", "turnserver", "web"},
			external: []string{"github.com/rs/zerolog"}},
		"web/internal/wasmbuild": {},
		"web/internal/genwasm":   {internal: []string{"web/internal/wasmbuild"}},
		"internal/layering":      {},
		"internal/natlab":        {},                                                   // std lib only: it runs the rtcmesh binary, never imports it
		"internal/composetest":   {},                                                   // std lib only: it runs the image through docker-compose
		"internal/bidi":          {external: []string{"github.com/gorilla/websocket"}}, // test helper: drives Firefox over WebDriver BiDi
	}
}

func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	table := layers()
	pkgs := packagesUnder(t, root)
	for _, pkg := range pkgs {
		r, ok := table[pkg]
		if !ok {
			t.Errorf("package %s is not in the layering table: add it to layering_test.go and ARCHITECTURE.md", pkg)
			continue
		}
		checkPackage(t, root, pkg, r)
	}
	for pkg := range layers() {
		if !slices.Contains(pkgs, pkg) {
			t.Errorf("layering table names %s, which has no Go files", pkg)
		}
	}
}

// packagesUnder lists the directories below root that hold non-test Go files, relative to root.
func packagesUnder(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			// A folder with a go.mod of its own is another module (bench/gossipsub, which
			// must not bring libp2p into this one): the go tool leaves it out, and so does this.
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			seen[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func checkPackage(t *testing.T, root, pkg string, r rule) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if msg := importRefused(pkg, path, r); msg != "" {
				t.Errorf("%s imports %s: %s", rel(root, file), path, msg)
			}
		}
		if r.core {
			violations, err := coreViolations(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range violations {
				t.Error(v)
			}
		}
	}
}

func importRefused(pkg, path string, r rule) string {
	if strings.HasPrefix(path, module+"/") {
		target := strings.TrimPrefix(path, module+"/")
		if slices.Contains(r.internal, target) {
			return ""
		}
		return "not allowed by the layering table for " + pkg
	}
	first, _, _ := strings.Cut(path, "/")
	if !strings.Contains(first, ".") { // standard library
		for _, f := range r.forbidStd {
			if path == f || strings.HasPrefix(path, f+"/") {
				if f == "math/rand" && path == "math/rand/v2" {
					continue // allowed as *rand.Rand from Config; global functions are checked below
				}
				return "the " + pkg + " package must not use " + f
			}
		}
		return ""
	}
	for _, ext := range r.external {
		if path == ext || strings.HasPrefix(path, ext+"/") {
			return ""
		}
	}
	return "third-party import not allowed by the layering table for " + pkg
}

// coreViolations lists the goroutines, wall-clock reads and uses of the global random source
// in a core's source file.
func coreViolations(file string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		return nil, err
	}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}
	randAllowed := map[string]bool{"Rand": true, "New": true, "NewPCG": true, "NewChaCha8": true, "Source": true}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.GoStmt:
			out = append(out, fmt.Sprintf("%s: a protocol core must not start goroutines", fset.Position(x.Pos())))
		case *ast.SelectorExpr:
			id, ok := x.X.(*ast.Ident)
			if !ok {
				return true
			}
			if id.Name == "time" && clock[x.Sel.Name] {
				out = append(out, fmt.Sprintf("%s: a protocol core must not read the wall clock or sleep (time.%s); time comes from Tick", fset.Position(x.Pos()), x.Sel.Name))
			}
			if id.Name == "rand" && !randAllowed[x.Sel.Name] {
				out = append(out, fmt.Sprintf("%s: a protocol core must draw randomness from Config.Rand, not rand.%s", fset.Position(x.Pos()), x.Sel.Name))
			}
		}
		return true
	})
	return out, nil
}

func rel(root, path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return r
}

// TestLayeringCatchesViolations makes sure the checks above can fail.
func TestLayeringCatchesViolations(t *testing.T) {
	core := layers()["membership"]
	for path, want := range map[string]bool{"net": true, "net/http": true, "sync": true, "sync/atomic": true,
		"math/rand": true, "math/rand/v2": false, "time": false, "fmt": false, "github.com/pion/webrtc/v4": true,
		module + "/gossip": true} {
		if got := importRefused("membership", path, core) != ""; got != want {
			t.Errorf("membership importing %s: refused=%v, want %v", path, got, want)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.go")
	src := "package bad\nimport (\"time\"; \"math/rand/v2\")\nfunc f() { go f(); _ = time.Now(); _ = rand.IntN(3) }\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	violations, err := coreViolations(bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) != 3 || !strings.Contains(violations[0], "goroutines") ||
		!strings.Contains(violations[1], "time.Now") || !strings.Contains(violations[2], "rand.IntN") {
		t.Errorf("checking a bad core file found %q", violations)
	}
}
