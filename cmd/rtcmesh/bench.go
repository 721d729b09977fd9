package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/rtcmesh/rtcmesh/rtcnode/meshbench"
)

// benchFlagSet binds the bench command's flags to the fields of c; jsonOut is the one flag
// that is not the ladder's.
func benchFlagSet(stderr io.Writer, c *meshbench.Config) (fs *flag.FlagSet, jsonOut *bool) {
	fs = newFlagSet("bench", stderr)
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "number of real WebRTC nodes")
	fs.IntVar(&c.Procs, "procs", c.Procs, "worker processes the nodes are split over (0: all in this process, with the signaling server)")
	fs.StringVar(&c.Profile, "profile", c.Profile, "the nodes' timing profile: lan or wan")
	fs.IntVar(&c.Broadcasts, "broadcasts", c.Broadcasts, "broadcasts measured, from random nodes, one after the other")
	fs.IntVar(&c.Warmup, "warmup", c.Warmup, "broadcasts sent before the measured ones, while the broadcast tree forms")
	fs.DurationVar(&c.BroadcastTimeout, "broadcast-timeout", c.BroadcastTimeout, "how long each broadcast may take to reach every node before the next is sent")
	fs.DurationVar(&c.FormTimeout, "form-timeout", c.FormTimeout, "how long the nodes may take to form one connected overlay")
	fs.DurationVar(&c.Settle, "settle", c.Settle, "wait after the overlay formed before idle is measured")
	fs.DurationVar(&c.Idle, "idle", c.Idle, "period over which idle CPU is measured; links, goroutines and RSS are read at its end")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seeds the nodes' cores and the choice of broadcasting nodes")
	fs.StringVar(&c.UDPSockets, "udp-sockets", c.UDPSockets, "the links' UDP sockets: node (one per node, shared by its links: a node's default) or link (one per link)")
	fs.DurationVar(&c.TransientLinkTimeout, "transient-link-timeout", 0, "close links that never carried a neighbour after this long without a frame; 0: the profile's")
	fs.DurationVar(&c.ShuffleInterval, "shuffle-interval", 0, "HyParView shuffle period of every node (each shuffle's reply may open a link); 0: the profile's")
	fs.BoolVar(&c.LinkShuffleReplies, "link-shuffle-replies", c.LinkShuffleReplies, "open a link for every shuffle reply to a peer with no open link, instead of sending it through the overlay (for a side-by-side run)")
	return fs, fs.Bool("json", false, "print one JSON object instead of a table")
}

func runBench(args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "mesh-worker":
		// A child of `bench mesh`: not for people, so it has no flags and no help.
		return meshbench.RunWorker(os.Stdin, stdout)
	case len(args) > 0 && args[0] == "mesh":
		args = args[1:]
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		return usageError{fmt.Errorf("unknown benchmark %q: want mesh", args[0])}
	}
	c := meshbench.DefaultConfig()
	fs, jsonOut := benchFlagSet(stderr, &c)
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start workers: %w", err)
	}
	c.WorkerCommand = func() *exec.Cmd {
		cmd := exec.Command(exe, "bench", "mesh-worker")
		cmd.Stderr = stderr
		return cmd
	}
	if !*jsonOut {
		c.Progress = stderr
	}
	res, err := meshbench.Run(c)
	if err != nil {
		if errors.Is(err, meshbench.ErrConfig) {
			return usageError{err}
		}
		return err
	}
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(res)
	}
	return res.WriteTable(stdout)
}
