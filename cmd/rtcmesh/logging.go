package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// logLevel is the value of --log-level. It is a flag.Value so that a bad level, on the command
// line or in RTCMESH_LOG_LEVEL, is refused while the flags are parsed (exit code 2), before
// anything starts.
type logLevel struct{ level zerolog.Level }

// logLevels are the accepted names, in increasing severity. Trace, fatal and panic are left out:
// the commands never log at those levels, so offering them would only confuse.
var logLevels = []zerolog.Level{zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel, zerolog.ErrorLevel}

func (l *logLevel) String() string {
	if l == nil {
		return zerolog.InfoLevel.String()
	}
	return l.level.String()
}

func (l *logLevel) Set(s string) error {
	for _, lvl := range logLevels {
		if s == lvl.String() {
			l.level = lvl
			return nil
		}
	}
	return fmt.Errorf("unknown log level %q: want debug, info, warn or error", s)
}

// addLogLevelFlag registers --log-level (default info) on fs.
func addLogLevelFlag(fs *flag.FlagSet) *logLevel {
	l := &logLevel{level: zerolog.InfoLevel}
	fs.Var(l, "log-level", "least severe log level written: debug, info, warn or error")
	return l
}

// newLogger returns the logger of a long-running command, writing to w (the command's
// stderr): human-readable lines when w is a terminal, one JSON object per line otherwise, so
// that log collectors (journald, docker, Kubernetes) get structured records. The level is set
// on the logger itself, not through zerolog's global level, so that tests running several
// commands in one process do not interfere.
func newLogger(w io.Writer, level zerolog.Level) zerolog.Logger {
	out := w
	if isTerminal(w) {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}
