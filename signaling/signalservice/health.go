package signalservice

import (
	"io"
	stdlog "log"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

// Healthz answers 200 "ok" for as long as the process serves HTTP: liveness only. Every
// rtcmesh command that serves HTTP answers /healthz with it.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

// Readyz answers 200 "ready" when ready returns nil, else 503 with the reason, so a load
// balancer or orchestrator can tell why the process should get no traffic yet.
func Readyz(ready func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error())
			return
		}
		_, _ = io.WriteString(w, "ready")
	}
}

// ErrorLog adapts log for net/http's ErrorLog, so its rare complaints (accept errors,
// malformed requests) come out as warnings in the same format as everything else instead of
// as bare text lines.
func ErrorLog(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(warnWriter{log}, "", 0)
}

// warnWriter logs each write as one warning.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
