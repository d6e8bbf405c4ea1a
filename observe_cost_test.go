package resilient

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// TestDisabledLogRecordCostsNothing: a Transport whose only observation is
// a logger that does not write a first attempt's success (Info, the usual
// level) built that success's record all the same, and redacted it: a
// Discord webhook's path, whose token is REDACTED, cost two allocations a
// call that nothing records. Redaction runs only when something is
// recorded (see README): the call costs what it costs without the logger.
func TestDisabledLogRecordCostsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	info := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for _, url := range []string{
		"https://api.example.com/v1/posts",
		"https://discord.com/api/webhooks/123456/s3cr3t-webhook-token",
	} {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		bare, logged := New(base), New(base, WithLogger(info))
		roundTripOK(t, bare, req) // the pools
		roundTripOK(t, logged, req)
		without := testing.AllocsPerRun(1000, func() { roundTripOK(t, bare, req) })
		if with := testing.AllocsPerRun(1000, func() { roundTripOK(t, logged, req) }); with != without {
			t.Errorf("GET %s: a success an Info logger does not write allocates %v times, %v without the logger", url, with, without)
		}
	}
}
