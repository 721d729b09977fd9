//go:build !js

package rtclink

import (
	"fmt"

	"github.com/pion/logging"
	"github.com/rs/zerolog"
)

// pionLoggerFactory sends pion's logs to zerolog so that one Logger holds a
// node's whole story. pion's trace, debug and info go to zerolog's trace and
// debug levels; pion warns about many benign conditions, so its warnings are
// kept at debug too and only its errors become warnings.
type pionLoggerFactory struct{ log zerolog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With().Str("pion", scope).Logger()}
}

type pionLogger struct{ log zerolog.Logger }

// logf formats only when the level is enabled: pion traces per packet.
func logf(e *zerolog.Event, format string, args ...any) {
	if e.Enabled() {
		e.Msg(fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Tracef(format string, args ...any) { logf(l.log.Trace(), format, args...) }
func (l pionLogger) Debug(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Debugf(format string, args ...any) { logf(l.log.Trace(), format, args...) }
func (l pionLogger) Info(msg string)                   { l.log.Debug().Msg(msg) }
func (l pionLogger) Infof(format string, args ...any)  { logf(l.log.Debug(), format, args...) }
func (l pionLogger) Warn(msg string)                   { l.log.Debug().Msg(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { logf(l.log.Debug(), format, args...) }
func (l pionLogger) Error(msg string)                  { l.log.Warn().Msg(msg) }
func (l pionLogger) Errorf(format string, args ...any) { logf(l.log.Warn(), format, args...) }
