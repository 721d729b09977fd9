package turnserver

import (
	"time"

	"github.com/pion/logging"
	"github.com/rs/zerolog"
)

// pionLoggerFactory routes pion/turn's logs into the server's zerolog.Logger,
// so one logger (and one level setting) covers the whole relay. They are
// sampled (refusalLogBurst a second per scope): pion/turn logs some events
// per datagram at info level, such as "No Permission or Channel exists" for
// every datagram a stranger sends to a relay port, which would let anyone
// flood the log.
type pionLoggerFactory struct {
	log zerolog.Logger
}

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With().Str("pion", scope).Logger().
		Sample(&zerolog.BurstSampler{Burst: refusalLogBurst, Period: time.Second})}
}

// pionLogger adapts zerolog to pion's LeveledLogger. Disabled levels cost
// nothing: zerolog returns a nil event and Msgf does not format.
type pionLogger struct {
	log zerolog.Logger
}

func (l pionLogger) Trace(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.log.Trace().Msgf(format, args...) }
func (l pionLogger) Debug(msg string)                  { l.log.Debug().Msg(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.log.Debug().Msgf(format, args...) }
func (l pionLogger) Info(msg string)                   { l.log.Info().Msg(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.log.Info().Msgf(format, args...) }
func (l pionLogger) Warn(msg string)                   { l.log.Warn().Msg(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.log.Warn().Msgf(format, args...) }
func (l pionLogger) Error(msg string)                  { l.log.Error().Msg(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.log.Error().Msgf(format, args...) }
