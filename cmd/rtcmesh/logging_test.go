package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestLoggerWritesJSONAtTheChosenLevel(t *testing.T) {
	var l logLevel
	if err := l.Set("warn"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := newLogger(&buf, l.level)
	log.Info().Msg("hidden")
	log.Warn().Str("addr", "127.0.0.1:1").Msg("shown")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("logged %q, want only the warning", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("log line %q is not JSON (stderr is not a terminal here): %v", lines[0], err)
	}
	if rec["level"] != "warn" || rec["message"] != "shown" || rec["addr"] != "127.0.0.1:1" || rec["time"] == nil {
		t.Errorf("log record %v", rec)
	}
}

func TestLogLevelNames(t *testing.T) {
	for name, want := range map[string]zerolog.Level{"debug": zerolog.DebugLevel, "info": zerolog.InfoLevel, "warn": zerolog.WarnLevel, "error": zerolog.ErrorLevel} {
		var l logLevel
		if err := l.Set(name); err != nil || l.level != want || l.String() != name {
			t.Errorf("Set(%q): level %v, %v", name, l.level, err)
		}
	}
	for _, bad := range []string{"", "trace", "WARN", "fatal", "verbose"} {
		var l logLevel
		if err := l.Set(bad); err == nil {
			t.Errorf("log level %q accepted", bad)
		}
	}
}
