package resilient

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// cancelStep is what cancelBase does for one attempt: answer with status
// after delay, its body stalled when stall, or, with status 0, wait until
// the attempt's context ends or its Cancel channel is closed, as net/http's
// Transport does; so does a stalled body's Read.
type cancelStep struct {
	status int
	delay  time.Duration
	stall  bool
}

// stalledEnvelope is a response body that has sent the start of an envelope
// and then waits until its request's context ends or its Cancel channel is
// closed.
type stalledEnvelope struct {
	req  *http.Request
	sent bool
}

func (b *stalledEnvelope) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, `{"error":`), nil
	}
	select {
	case <-b.req.Context().Done():
		return 0, context.Cause(b.req.Context())
	case <-cancelOf(b.req):
		return 0, errRequestCanceled
	}
}

func (b *stalledEnvelope) Close() error { return nil }

// cancelBase is a RoundTripper that answers attempts with its steps in
// order, repeating the last one.
// It is safe for concurrent use (hedged copies).
type cancelBase struct {
	steps []cancelStep

	mu sync.Mutex
	n  int
}

func (b *cancelBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	st := b.steps[min(b.n, len(b.steps)-1)]
	b.n++
	b.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	if st.status == 0 {
		select {
		case <-req.Context().Done():
			return nil, context.Cause(req.Context())
		case <-cancelOf(req):
			return nil, errRequestCanceled
		}
	}
	time.Sleep(st.delay)
	resp := &http.Response{StatusCode: st.status, Header: http.Header{}, Body: http.NoBody, Request: req}
	if st.stall {
		resp.Header.Set("Content-Type", "application/json")
		resp.Body, resp.ContentLength = &stalledEnvelope{req: req}, -1
	}
	return resp, nil
}

// TestLogLevelOfCanceledCall: a call the caller canceled is logged at Info,
// whenever its cancel came: during an attempt, as a retryable answer
// arrived (the call ends with that answer, its retry canceled), while a
// hedged attempt's 503 waited for its copy, while the call waited to retry;
// and whether the caller canceled its context or closed the request's
// Cancel channel (deprecated, still honored). A deadline that ends the
// call is a failure, logged at Error: the context's, and http.Client's
// Timeout, which sets the context's deadline and closes the Cancel channel
// at once. Before, a cancel after a retryable answer was logged at Error
// with stop_reason canceled, as was every cancel by the Cancel channel.
func TestLogLevelOfCanceledCall(t *testing.T) {
	const (
		byContext = iota
		byCancelChannel
		byDeadline
		byClientTimeout
	)
	for _, tc := range []struct {
		name  string
		steps []cancelStep
		opts  []Option
		how   int
		at    time.Duration // when the caller gives up
		want  []string
	}{
		{"context canceled during the attempt", []cancelStep{{}}, nil, byContext, time.Second, []string{"INFO"}},
		{"context canceled while a 503 body is read", []cancelStep{{status: 503, stall: true}}, nil, byContext, time.Second, []string{"INFO"}},
		{"context canceled while a hedged 503 waits for its copy", []cancelStep{{status: 503, delay: 100 * time.Millisecond}, {}},
			[]Option{WithHedging(Hedging{Delay: 50 * time.Millisecond, MaxHedges: 1})}, byContext, 120 * time.Millisecond, []string{"INFO"}},
		{"context canceled while waiting to retry", []cancelStep{{status: 503}}, nil, byContext, time.Second, []string{"WARN", "INFO"}},
		{"Cancel closed during the attempt", []cancelStep{{}}, nil, byCancelChannel, time.Second, []string{"INFO"}},
		{"Cancel closed while a 503 body is read", []cancelStep{{status: 503, stall: true}}, nil, byCancelChannel, time.Second, []string{"INFO"}},
		{"Cancel closed while waiting to retry", []cancelStep{{status: 503}}, nil, byCancelChannel, time.Second, []string{"WARN", "INFO"}},
		{"deadline during the attempt", []cancelStep{{}}, nil, byDeadline, time.Second, []string{"ERROR"}},
		{"deadline while a 503 body is read", []cancelStep{{status: 503, stall: true}}, nil, byDeadline, time.Second, []string{"ERROR"}},
		{"http.Client.Timeout during the attempt", []cancelStep{{}}, nil, byClientTimeout, time.Second, []string{"ERROR"}},
		{"http.Client.Timeout while a 503 body is read", []cancelStep{{status: 503, stall: true}}, nil, byClientTimeout, time.Second, []string{"ERROR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				// A deadline past the first attempt's end is no
				// reason to stop at a 503: the retry waits 10s.
				opts := append([]Option{WithBackoff(10*time.Second, 10*time.Second), WithMaxRetries(1), WithoutRateLimit(), WithLogger(logger)}, tc.opts...)
				tr := New(&cancelBase{steps: tc.steps}, opts...)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				req := newRequest(t, ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
				var resp *http.Response
				var err error
				switch tc.how {
				case byContext:
					time.AfterFunc(tc.at, cancel)
					resp, err = tr.RoundTrip(req)
				case byCancelChannel:
					ch := make(chan struct{})
					req.Cancel = ch //lint:ignore SA1019 the deprecated channel under test.
					time.AfterFunc(tc.at, func() { close(ch) })
					resp, err = tr.RoundTrip(req)
				case byDeadline:
					dctx, dcancel := context.WithTimeout(ctx, tc.at)
					defer dcancel()
					resp, err = tr.RoundTrip(req.WithContext(dctx))
				case byClientTimeout:
					resp, err = (&http.Client{Transport: tr, Timeout: tc.at}).Do(req)
				}
				if err == nil {
					resp.Body.Close()
				}
				synctest.Wait()
				recs := logRecords(t, &buf)
				var levels []string
				for _, rec := range recs {
					levels = append(levels, rec["level"].(string))
				}
				if len(recs) == 0 {
					t.Fatal("no records")
				}
				if last := recs[len(recs)-1]; (tc.how == byContext || tc.how == byCancelChannel) && last["stop_reason"] != "canceled" {
					t.Errorf("last record's stop_reason %v, want canceled", last["stop_reason"])
				}
				if !slices.Equal(levels, tc.want) {
					t.Errorf("levels %v, want %v; records:\n%s", levels, tc.want, buf.String())
				}
			})
		})
	}
}
