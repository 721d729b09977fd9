package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestParseNodeFlagsCreatesNothing: parsing only parses; the identity file is created by
// running the node (serveNode), not by reading its flags.
func TestParseNodeFlagsCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity.pem")
	cfg, err := parseNodeFlags([]string{"--identity", path}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("parsing the flags touched %s: %v", path, err)
	}
	if cfg.IdentityPath != path || cfg.Ephemeral || cfg.WebRTC.Key != nil {
		t.Errorf("identity path %q, ephemeral %v, identity %v: want the path only", cfg.IdentityPath, cfg.Ephemeral, cfg.WebRTC.Key)
	}
	id, err := loadIdentity(path, false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadIdentity(path, false)
	if err != nil || again.ID() != id.ID() {
		t.Errorf("second load: %v, ID %v, want %s", err, again, id.ID())
	}
}
