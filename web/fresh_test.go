package web

import (
	"os/exec"
	"testing"

	"github.com/rtcmesh/rtcmesh/web/internal/wasmbuild"
)

// The committed browser peer must be built from the code as it is: a change to anything the
// peer compiles (the cores, the runtime, the js twins) needs `go generate ./web`.
func TestEmbeddedPeerIsFresh(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH: cannot list the peer's sources")
	}
	want, err := wasmbuild.Fingerprint("..")
	if err != nil {
		t.Fatal(err)
	}
	got, err := wasmbuild.RecordedFingerprint(".")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("web/%s was built from other sources than the current ones (recorded %.12s, now %.12s): run go generate ./web and commit the result",
			wasmbuild.WasmFile, got, want)
	}
}
