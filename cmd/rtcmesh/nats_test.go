package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestSignalNATSFlags(t *testing.T) {
	env := map[string]string{"RTCMESH_NATS_TOKEN": "t0ken", "RTCMESH_NATS_INSTANCE": "east-1"}
	cfg, _, err := parseSignalFlags([]string{"--nats", "nats://a:4222", "--nats", "nats://b:4222,nats://c:4222"}, io.Discard, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("parseSignalFlags: %v", err)
	}
	if cfg.NATS == nil || !slices.Equal(cfg.NATS.URLs, []string{"nats://a:4222", "nats://b:4222", "nats://c:4222"}) {
		t.Fatalf("NATS config %+v, want three URLs", cfg.NATS)
	}
	if cfg.NATS.Token != "t0ken" || cfg.NATS.Instance != "east-1" || cfg.NATS.Prefix != "rtcmesh" {
		t.Errorf("token %q, instance %q, prefix %q: the environment and defaults were not applied", cfg.NATS.Token, cfg.NATS.Instance, cfg.NATS.Prefix)
	}
	cfg, _, err = parseSignalFlags(nil, io.Discard, func(string) string { return "" })
	if err != nil || cfg.NATS != nil {
		t.Fatalf("without --nats: %v, NATS %+v; want a single instance", err, cfg.NATS)
	}
	for args, want := range map[string]string{
		"--nats http://a:4222":                                "--nats",
		"--nats nats://a:4222 --nats-presence-ttl 1s":         "--nats-presence-ttl",
		"--nats nats://a:4222 --nats-prefix a.b":              "--nats-prefix",
		"--nats nats://a:4222 --nats-user u --nats-token t":   "--nats-user",
		"--nats nats://a:4222 --nats-instance has.dots.in.it": "--nats-instance",
	} {
		_, _, err := parseSignalFlags(strings.Fields(args), io.Discard, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", args, err, want)
		}
	}
}

func TestNodeSignalURLs(t *testing.T) {
	cfg, err := parseNodeFlags([]string{"--signal", "ws://a:8080/ws", "--signal", "ws://b:8080/ws,ws://c:8080/ws", "--ephemeral"}, io.Discard, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.WebRTC.Signal
	if s.URL != "ws://a:8080/ws" || !slices.Equal(s.FallbackURLs, []string{"ws://b:8080/ws", "ws://c:8080/ws"}) {
		t.Errorf("URL %q, fallbacks %q", s.URL, s.FallbackURLs)
	}
	cfg, err = parseNodeFlags([]string{"--ephemeral"}, io.Discard, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.WebRTC.Signal; s.URL != "ws://127.0.0.1:8080/ws" || len(s.FallbackURLs) != 0 {
		t.Errorf("default: URL %q, fallbacks %q", s.URL, s.FallbackURLs)
	}
}
