package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// simJSON runs `rtcmesh sim --json` over a small network with args added and decodes the
// figures this file looks at.
func simJSON(t *testing.T, args ...string) map[string]float64 {
	t.Helper()
	var out, errOut bytes.Buffer
	base := []string{"sim", "--nodes", "100", "--messages", "20", "--rounds", "5", "--fail", "0.8", "--seed", "3", "--json"}
	if code := realMain(append(base, args...), &out, &errOut); code != 0 {
		t.Fatalf("rtcmesh %s exited %d: %s", strings.Join(append(base, args...), " "), code, errOut.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("sim --json printed %q: %v", out.String(), err)
	}
	figures := map[string]float64{}
	for _, k := range []string{"reliability", "eventual_reliability", "eventual_reliability_min",
		"catch_up_bytes_per_node_round", "payload_bytes_per_node_round", "history_deliveries"} {
		v, ok := r[k].(float64)
		if !ok {
			t.Fatalf("sim --json has no number %q: %s", k, out.String())
		}
		figures[k] = v
	}
	return figures
}

// TestSimCatchUpFlag: --catch-up sets the window, 0 turns catch-up off, and the eventual
// reliability and byte figures follow. On this seed 80% of 100 nodes crash and the tree
// loses broadcasts that catch-up then brings to every survivor.
func TestSimCatchUpFlag(t *testing.T) {
	off := simJSON(t, "--catch-up", "0")
	if off["catch_up_bytes_per_node_round"] != 0 || off["history_deliveries"] != 0 {
		t.Errorf("--catch-up 0: %v catch-up bytes per node-round, %v deliveries by catch-up; want none", off["catch_up_bytes_per_node_round"], off["history_deliveries"])
	}
	if off["payload_bytes_per_node_round"] <= 0 {
		t.Errorf("--catch-up 0: no payload bytes counted")
	}
	if off["eventual_reliability"] >= 1 {
		t.Errorf("--catch-up 0: eventual reliability %v; this seed loses broadcasts the tree cannot repair", off["eventual_reliability"])
	}
	on := simJSON(t, "--catch-up", "2m", "--payload", "512", "--drain-rounds", "3")
	if on["eventual_reliability"] != 1 || on["eventual_reliability_min"] != 1 || on["history_deliveries"] == 0 {
		t.Errorf("--catch-up 2m: eventual reliability %v (min %v) after %v deliveries by catch-up; want 1, 1, some",
			on["eventual_reliability"], on["eventual_reliability_min"], on["history_deliveries"])
	}
	if on["catch_up_bytes_per_node_round"] <= 0 {
		t.Error("--catch-up 2m: no catch-up bytes counted")
	}
	// --payload doubles the payload bytes (about: the same broadcasts, twice the size), other
	// flags equal.
	small := simJSON(t, "--catch-up", "2m", "--drain-rounds", "3")
	if r := on["payload_bytes_per_node_round"] / small["payload_bytes_per_node_round"]; r < 1.8 || r > 2.3 {
		t.Errorf("--payload 512 carried %.2f times the payload bytes of the default 256", r)
	}
}

func TestSimCatchUpFlagRefused(t *testing.T) {
	for _, v := range []string{"-1s", "5s"} { // negative; shorter than a Digest's interval
		var out, errOut bytes.Buffer
		code := realMain([]string{"sim", "--nodes", "10", "--messages", "1", "--catch-up", v}, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), "CatchUpWindow") {
			t.Errorf("--catch-up %s: exit %d, %q; want 2 and an error naming CatchUpWindow", v, code, errOut.String())
		}
	}
	var help bytes.Buffer
	realMain([]string{"sim", "--help"}, &help, &help)
	for _, want := range []string{"--catch-up (RTCMESH_CATCH_UP, default 1m0s)", "--drain-rounds", "--payload", "eventually"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("sim --help does not mention %q", want)
		}
	}
}

// TestSimMemProfile: --memprofile writes a heap profile (gzipped protobuf naming the protocol
// cores' allocation sites); without broadcasts to wait for, or with a path that cannot be
// created, it is refused before anything runs.
func TestSimMemProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.prof")
	simJSON(t, "--memprofile", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("--memprofile wrote no gzipped profile: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("--memprofile wrote a broken profile: %v", err)
	}
	if !bytes.Contains(raw, []byte("rtcmesh/membership.New")) {
		t.Error("the heap profile names no allocation by membership.New")
	}
	var out, errOut bytes.Buffer
	code := realMain([]string{"sim", "--nodes", "50", "--messages", "0", "--memprofile", path}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "--memprofile needs broadcasts") {
		t.Errorf("--messages 0 --memprofile: exit %d, %q; want a refusal", code, errOut.String())
	}
	// A path that cannot be written fails before the run.
	errOut.Reset()
	bad := filepath.Join(t.TempDir(), "missing", "heap.prof")
	code = realMain([]string{"sim", "--nodes", "50", "--messages", "2", "--memprofile", bad}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "heap profile") {
		t.Errorf("--memprofile %s: exit %d, %q; want an error naming the heap profile", bad, code, errOut.String())
	}
}
