package resilient

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is a bytes.Buffer that a log handler writes from several
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHedgeLostCopyPanicLogged: a hedged copy whose base panics after
// another copy decided the attempt (a base that panics once its context is
// canceled) runs on a goroutine of the Transport's, which no caller waits
// for any more: its panic was recovered and dropped, and the base's bug
// went unseen. It is logged, at Error level, its value redacted as an
// error's text is; the call is the winner's, as before.
func TestHedgeLostCopyPanicLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				time.Sleep(100 * time.Millisecond) // slow, but it wins
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			}
			<-req.Context().Done()
			panic("base: use of a canceled request https://api.test/v1?access_token=s3cr3t-token-value")
		})
		var logs syncBuffer
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}),
			WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/posts", nil))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("RoundTrip = %v, %v; want the first attempt's 200", resp, err)
		}
		resp.Body.Close()
		synctest.Wait() // the losing copy ends
		if calls.Load() != 2 {
			t.Fatalf("the base got %d requests, want 2 (the attempt and its copy)", calls.Load())
		}
		out := logs.String()
		if !strings.Contains(out, "panicked") || !strings.Contains(out, "use of a canceled request") || !strings.Contains(out, `"level":"ERROR"`) {
			t.Errorf("no Error record of the losing copy's panic:\n%s", out)
		}
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("the record holds the secret the panic's text quotes:\n%s", out)
		}
	})
}

// panickingHandler is a slog.Handler whose Handle panics on records at
// Error level and above (a handler that forwards errors to a channel
// closed at shutdown, say), and counts the records it got.
type panickingHandler struct{ records *atomic.Int32 }

func (h panickingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h panickingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h panickingHandler) WithGroup(string) slog.Handler            { return h }

func (h panickingHandler) Handle(_ context.Context, r slog.Record) error {
	h.records.Add(1)
	if r.Level >= slog.LevelError {
		panic("handler: send on closed channel")
	}
	return nil
}

// bombError is a panic value whose Error panics with itself: fmt.Sprint
// recovers the first panic, and re-panics the second.
type bombError struct{}

func (bombError) Error() string { panic(bombError{}) }

// TestHedgeLostCopyPanicLogNeverPanics: the record of a losing copy's
// panic (TestHedgeLostCopyPanicLogged) is written on the copy's goroutine,
// which no caller waits for: a logger's handler that panics there, or a
// panic value that fmt cannot print, would crash the process, where the
// copy's panic itself was recovered. The record is given up instead, and
// the call is the winner's, as before.
func TestHedgeLostCopyPanicLogNeverPanics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value any
	}{
		{"handler panics", "base: use of a canceled request"},
		{"value unprintable", bombError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls, records atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						time.Sleep(100 * time.Millisecond) // slow, but it wins
						return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					}
					<-req.Context().Done()
					panic(tc.value)
				})
				tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}),
					WithLogger(slog.New(panickingHandler{&records})))
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/posts", nil))
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("RoundTrip = %v, %v; want the first attempt's 200", resp, err)
				}
				resp.Body.Close()
				synctest.Wait() // the losing copy ends, without crashing the process
				if calls.Load() != 2 {
					t.Fatalf("the base got %d requests, want 2 (the attempt and its copy)", calls.Load())
				}
			})
		})
	}
}
