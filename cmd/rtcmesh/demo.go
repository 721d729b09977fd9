package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtcmesh/rtcmesh/demo"
)

const demoSynopsis = `Runs a whole rtcmesh network on this machine in one process: the signaling server, a TURN
relay, the demo web page and --nodes Go nodes, all on loopback. Open the URL it prints in a
browser: the tab joins the mesh as a full peer (the same Go code, compiled to
WebAssembly), draws the overlay as it sees it, and broadcasts what you type. Open more tabs to
add more browser peers. --chatter makes a random Go node say something now and then, so the
page shows traffic at once. Ctrl-C (or SIGTERM) makes every node leave the mesh and stops.

--listen :0 (or 127.0.0.1:0) picks a free port; the URL printed names it.`

// demoFlags are parsed into a demo.Config by parseDemoFlags.
func parseDemoFlags(args []string, stderr io.Writer, getenv func(string) string) (demo.Config, zerolog.Level, error) {
	def := demo.DefaultConfig()
	fs := newFlagSet("demo", demoSynopsis, stderr)
	nodes := fs.Int("nodes", def.Nodes, "Go nodes to run")
	listen := fs.String("listen", def.Listen, "HTTP address of the page and of signaling (/ws); a loopback address, :0 picks a free port")
	network := fs.String("network", def.Network, "network (room) the nodes and, by default, the page join")
	chatter := fs.Duration("chatter", 10*time.Second, "how often a random Go node broadcasts a line of its own; 0 disables")
	iceNetworks := prefixList(def.ICENetworks)
	fs.Var(&iceNetworks, "ice-networks", "comma-separated CIDRs the Go nodes also gather and check ICE candidates on, besides loopback (e.g. your LAN, 192.168.1.0/24, for a browser that will not link over loopback)")
	// The page is the interface of the demo: per-node info logs would bury the URL.
	level := &logLevel{level: zerolog.WarnLevel}
	fs.Var(level, "log-level", "least severe log level written: debug, info, warn or error")
	if err := parseFlags(fs, args, getenv); err != nil {
		return demo.Config{}, 0, err
	}
	cfg := def
	cfg.Nodes, cfg.Network, cfg.Chatter = *nodes, *network, *chatter
	cfg.Listen = *listen
	cfg.ICENetworks = iceNetworks
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return demo.Config{}, 0, usageError{fmt.Errorf("--listen %q: %w", cfg.Listen, err)}
	}
	switch ip, perr := netip.ParseAddr(host); {
	case host == "":
		// ":8080" would listen on every interface; the demo is for this machine only.
		cfg.Listen = net.JoinHostPort("127.0.0.1", port)
	case host == "localhost":
	case perr != nil || !ip.IsLoopback():
		return demo.Config{}, 0, usageError{fmt.Errorf("--listen %q: the demo's peers live on loopback; use a loopback address", cfg.Listen)}
	}
	var errs []error
	if cfg.Nodes < 0 {
		errs = append(errs, fmt.Errorf("--nodes is %d, must be at least 0", cfg.Nodes))
	}
	if cfg.Network == "" {
		errs = append(errs, errors.New("--network is empty"))
	}
	if cfg.Chatter < 0 {
		errs = append(errs, fmt.Errorf("--chatter is %v, must not be negative", cfg.Chatter))
	}
	if err := errors.Join(errs...); err != nil {
		return demo.Config{}, 0, usageError{err}
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
