package metrics

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

// Moved from cmd/rtcmesh with ErrorLog (stdLogger there).
func TestStdLoggerWritesWarnings(t *testing.T) {
	var buf bytes.Buffer
	ErrorLog(zerolog.New(&buf).Level(zerolog.InfoLevel).With().Timestamp().Logger()).Printf("http: Accept error: %s", "too many open files")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%q is not one JSON record: %v", buf.String(), err)
	}
	if rec["level"] != "warn" || rec["message"] != "http: Accept error: too many open files" {
		t.Errorf("record %v", rec)
	}
}
