// Package layering holds the test that enforces rtcmesh's layers: which package may import
// which, and the rules that keep the protocol cores deterministic state machines (no network,
// no locks, no goroutines, no wall clock, no global random source). The table in
// layering_test.go mirrors the one in ARCHITECTURE.md; a package missing from it fails the
// test, so a new package is a prompt to update both.
package layering
