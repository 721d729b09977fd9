package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/demo"
	"github.com/rtcmesh/rtcmesh/identity"
)

// demoFields names the flag that sets each field a demo validation error may name.
func demoFields() map[string]string {
	return map[string]string{"Listen": "--listen", "Network": "--network", "Nodes": "--nodes", "Chatter": "--chatter", "ICENetworks": "--ice-networks", "PowBits": "--pow-bits"}
}

// parseDemoFlags parses the demo command's flags into a demo.Config, which it validates.
func parseDemoFlags(args []string, stderr io.Writer, getenv func(string) string) (demo.Config, zerolog.Level, error) {
	cfg := demo.DefaultConfig()
	fs := newFlagSet("demo", stderr)
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "Go nodes to run")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTP address of the page and of signaling (/ws); a loopback address, :0 picks a free port")
	fs.StringVar(&cfg.Network, "network", cfg.Network, "network (room) the nodes and, by default, the page join")
	fs.DurationVar(&cfg.Chatter, "chatter", 10*time.Second, "how often a random Go node broadcasts a line of its own; 0 disables")
	catchUp := fs.Duration("catch-up", cfg.Node.Gossip.CatchUpWindow, "how far back the Go nodes keep broadcasts for peers that missed them: a tab opened late shows what was said in that time, marked as history; 0 turns catch-up off")
	fs.IntVar(&cfg.Signal.PowBits, "pow-bits", cfg.Signal.PowBits, fmt.Sprintf("proof-of-work difficulty the signaling server asks of every identity key, in bits (0 = off, at most %d): the Go nodes and the page's tab do the work before they are welcomed, and then require it of their link peers", identity.MaxWorkBits))
	fs.Var((*prefixList)(&cfg.ICENetworks), "ice-networks", "comma-separated CIDRs the Go nodes also gather and check ICE candidates on, besides loopback and this machine's own addresses")
	// The page is the interface of the demo: per-node info logs would bury the URL.
	level := &logLevel{level: zerolog.WarnLevel}
	fs.Var(level, "log-level", "least severe log level written: debug, info, warn or error")
	if err := parseFlags(fs, args, getenv); err != nil {
		return demo.Config{}, 0, err
	}
	if err := cfg.Node.SetCatchUp(*catchUp); err != nil {
		return demo.Config{}, 0, usageError{fmt.Errorf("--catch-up %v: must be 0 (off) or longer than %v",
			*catchUp, cfg.Node.Gossip.CatchUpInterval+cfg.Node.Gossip.CatchUpSettle)}
	}
	listen, err := demo.LoopbackListen(cfg.Listen)
	if err != nil {
		return demo.Config{}, 0, flagErrors(err, demoFields())
	}
	cfg.Listen = listen
	if err := cfg.Validate(); err != nil {
		return demo.Config{}, 0, flagErrors(err, demoFields())
	}
	return cfg, level.level, nil
}

func runDemo(args []string, stdout, stderr io.Writer) error {
	cfg, level, err := parseDemoFlags(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	cfg.Logger = newLogger(stderr, level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveDemo(ctx, cfg, stdout, nil)
}

// serveDemo runs the demo until ctx is done. ready, if not nil, is called once it runs.
func serveDemo(ctx context.Context, cfg demo.Config, stdout io.Writer, ready func(*demo.Demo)) error {
	started := time.Now()
	d, err := demo.Start(cfg)
	if err != nil {
		return err
	}
	if err := d.Describe(stdout); err != nil {
		_ = d.Close()
		return fmt.Errorf("writing to stdout: %w", err)
	}
	if ready != nil {
		ready(d)
	}
	// Tell the person when the Go nodes form a mesh, so they know the page will find peers.
	go func() {
		if err := d.WaitConnected(ctx); err == nil && cfg.Nodes > 0 {
			fmt.Fprintf(stdout, "The %d Go nodes formed a mesh %v after start.\n", cfg.Nodes, time.Since(started).Round(10*time.Millisecond))
		}
	}()
	<-ctx.Done()
	fmt.Fprintln(stdout, "Stopping: the nodes leave the mesh…")
	if err := d.Close(); err != nil {
		return err
	}
	return nil
}
