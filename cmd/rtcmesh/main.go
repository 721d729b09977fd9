// Command rtcmesh is the one binary of rtcmesh. Its subcommands run the parts of the system:
// `node` joins a network and broadcasts the lines of its standard input, `demo` runs a whole
// network with its web page on localhost, `signal` serves
// WebSocket signaling (optionally with an embedded TURN relay), `turn` runs
// the TURN/STUN relay on its own, `bench mesh` runs real nodes on loopback and measures what
// they cost, `sim` explores the protocols at scale in the deterministic
// simulator, and `version` prints build information. Every flag of every subcommand can also
// be set through an environment variable named RTCMESH_ followed by the flag's name in
// capitals with dashes as underscores (--fail → RTCMESH_FAIL); a flag given on the command
// line wins.
package main

import (
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	// run parses args with its own FlagSet (built by newFlagSet) and does the work.
	run func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{name: "node", summary: "join a network and broadcast the lines of standard input; events as JSON lines", run: runNode},
		{name: "demo", summary: "run signaling, TURN, the web page and 8 Go nodes on localhost; open the URL it prints", run: runDemo},
		{name: "signal", summary: "serve WebSocket signaling at /ws, optionally with an embedded TURN relay", run: runSignal},
		{name: "turn", summary: "run the TURN/STUN relay on its own", run: runTurn},
		{name: "bench", summary: "bench mesh: run real WebRTC nodes on loopback and print what they cost, idle and broadcasting", run: runBench},
		{name: "sim", summary: "simulate HyParView + Plumtree over thousands of nodes and print figures", run: runSim},
		{name: "version", summary: "print the version and build information", run: runVersion},
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the binary with args (without the program name) and returns the exit code.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "rtcmesh %s: %v\n", c.name, err)
				var ue usageError
				if errors.As(err, &ue) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "rtcmesh: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: rtcmesh <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'rtcmesh <command> --help' for a command's flags. Every flag can also be set")
	fmt.Fprintln(w, "with an RTCMESH_<FLAG> environment variable (dashes become underscores).")
}

// usageError marks an error in the command line or the environment (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// help holds the prose of each command's --help, help/<command>.txt: text, kept out of the
// code that parses the flags it describes.
//
//go:embed help/*.txt
var help embed.FS

// newFlagSet returns a FlagSet for a subcommand whose usage prints help/<name>.txt, then lists
// every flag with its default and its environment variable.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	text, err := help.ReadFile("help/" + name + ".txt")
	if err != nil {
		text = []byte("(no description: " + err.Error() + ")")
	}
	synopsis := strings.TrimRight(string(text), "\n") // a text file ends with a newline
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rtcmesh %s [flags]\n\n%s\n\nFlags (each also read from its environment variable):\n", name, synopsis)
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		sort.Strings(names)
		for _, n := range names {
			f := fs.Lookup(n)
			def := f.DefValue
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(stderr, "  --%s (%s, default %s)\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		}
	}
	return fs
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "RTCMESH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags parses args, then sets every flag not given on the command line from its
// environment variable, if that is set.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)}
			}
		}
	})
	return err
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build information in this binary")
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(stdout, "rtcmesh %s\ngo %s\n", version, info.GoVersion)
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH", "CGO_ENABLED":
			fmt.Fprintf(stdout, "%s %s\n", s.Key, s.Value)
		}
	}
	return nil
}
