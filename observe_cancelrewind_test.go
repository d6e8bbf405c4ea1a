package resilient

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestLogLevelOfCallCanceledWhileTheBodyRewinds: a call whose caller
// cancels it while its retry waits for the earlier attempt's read of a
// seekable body (net/http's writer still reading it after a 503 came) was
// canceled as a retryable answer came: its record is at Info with
// stop_reason canceled, and its Report says canceled, whether the caller
// canceled its context or closed the request's Cancel channel. A deadline
// that the retry's wait would pass ends it there as a deadline: Error,
// stop_reason deadline. Before, the cancel read as a body that cannot
// be sent again (stop_reason body_not_replayable), a failed call logged at
// Error.
func TestLogLevelOfCallCanceledWhileTheBodyRewinds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		how       string
		wantLevel string
		wantStop  StopReason
	}{
		{"context canceled", "context", "INFO", StopCanceled},
		{"Cancel closed", "channel", "INFO", StopCanceled},
		{"deadline", "deadline", "ERROR", StopDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				src := &stuckSeeker{Reader: strings.NewReader("0123456789abcdef"), stuck: make(chan struct{}), release: make(chan struct{})} // body_test.go
				defer close(src.release)
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					go io.Copy(io.Discard, req.Body) // net/http's writer, still reading
					time.Sleep(time.Millisecond)
					return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				// The deadline's retry waits 10ms, so that the rewind's wait
				// ends 10ms before the deadline, where the retry no
				// longer fits.
				backoff := fastRetries
				if tc.how == "deadline" {
					backoff = WithBackoff(10*time.Millisecond, 10*time.Millisecond)
				}
				tr := New(base, backoff, WithoutRateLimit(), WithoutBreaker(), WithLogger(logger))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var r Report
				ctx = WithReport(ctx, &r)
				req := newRequest(t, ctx, http.MethodPut, "https://api.example.com/v1/files/1", nil)
				req.Body, req.ContentLength = struct {
					io.ReadSeeker
					io.Closer
				}{src, io.NopCloser(nil)}, 16
				switch tc.how {
				case "context":
					time.AfterFunc(time.Second, cancel)
				case "channel":
					ch := make(chan struct{})
					req.Cancel = ch //lint:ignore SA1019 the deprecated channel under test.
					time.AfterFunc(time.Second, func() { close(ch) })
				case "deadline":
					dctx, dcancel := context.WithTimeout(ctx, time.Second)
					defer dcancel()
					req = req.WithContext(dctx)
				}
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				recs := logRecords(t, &buf)
				if len(recs) != 1 {
					t.Fatalf("%d records, want 1:\n%s", len(recs), buf.String())
				}
				if rec := recs[0]; rec["level"] != tc.wantLevel || rec["stop_reason"] != string(tc.wantStop) {
					t.Errorf("record at %v, stop_reason %v; want %s, %s", rec["level"], rec["stop_reason"], tc.wantLevel, tc.wantStop)
				}
				if r.StopReason != tc.wantStop {
					t.Errorf("Report.StopReason = %q, want %q", r.StopReason, tc.wantStop)
				}
			})
		})
	}
}
