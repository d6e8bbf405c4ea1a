package resilient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// jsonRecords returns the records a slog.JSONHandler wrote to buf.
func jsonRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// TestLogShowsHedges: issue 14 asks that the observer and slog show the
// hedges sent. A hedged attempt's record says how many copies of it were
// sent ("hedges", as Attempt.Hedges), and which copy answered when one did
// ("hedge", as Attempt.Hedge); an attempt that got no copy carries
// neither.
func TestLogShowsHedges(t *testing.T) {
	for _, tc := range []struct {
		name          string
		firstDelay    time.Duration // the first request's time to answer; the others answer after 10ms
		hedges, hedge int
	}{
		{"the copy answers first", time.Second, 1, 1},
		{"the attempt answers first", 150 * time.Millisecond, 1, 0},
		{"no copy needed", 10 * time.Millisecond, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				base := roundTrip(func(req *http.Request) (*http.Response, error) {
					d := 200 * time.Millisecond
					if n.Add(1) == 1 {
						d = tc.firstDelay
					}
					select {
					case <-time.After(d):
					case <-req.Context().Done():
						return nil, context.Cause(req.Context())
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
				})
				var buf bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				var seen []resilient.Attempt
				tr := resilient.New(base, resilient.WithLogger(logger),
					resilient.WithHedging(resilient.Hedging{Delay: 100 * time.Millisecond}),
					resilient.WithObserver(func(a resilient.Attempt) { seen = append(seen, a) }))
				var r resilient.Report
				if status, _, err := call(t, tr, resilient.WithReport(context.Background(), &r), "GET", "http://api.test/v1/posts", nil); status != 200 {
					t.Fatalf("%d, %v; want 200", status, err)
				}
				synctest.Wait()
				recs := jsonRecords(t, &buf)
				if len(recs) != 1 || len(seen) != 1 {
					t.Fatalf("%d records and %d observed attempts, want 1 of each", len(recs), len(seen))
				}
				a, rec := seen[0], recs[0]
				if a.Hedges != tc.hedges || a.Hedge != tc.hedge || r.Hedges != tc.hedges {
					t.Errorf("Attempt.Hedges %d, Attempt.Hedge %d, Report.Hedges %d; want %d, %d, %d", a.Hedges, a.Hedge, r.Hedges, tc.hedges, tc.hedge, tc.hedges)
				}
				for _, attr := range []struct {
					key  string
					want int
				}{{"hedges", tc.hedges}, {"hedge", tc.hedge}} {
					v, ok := rec[attr.key]
					switch {
					case attr.want == 0 && ok:
						t.Errorf("record has %q: %v, want none: %v", attr.key, v, rec)
					case attr.want != 0 && v != float64(attr.want):
						t.Errorf("record's %q = %v, want %d: %v", attr.key, v, attr.want, rec)
					}
				}
			})
		})
	}
}

// TestRedactsURLsWithoutScheme: a base RoundTripper built on an http.Client
// quotes the request's URL in its *url.Error as the request has it; when
// that URL has no scheme:// (a caller who forgot "https://", a path alone,
// a scheme-relative or an opaque URL), its query was kept in the *Error,
// Attempt.Err and the log's error attribute: every error the Transport
// returns or records has the URLs it quotes redacted (issue 13, defect 10).
func TestRedactsURLsWithoutScheme(t *testing.T) {
	base := roundTrip(func(req *http.Request) (*http.Response, error) {
		return (&http.Client{Transport: http.DefaultTransport}).Do(req)
	})
	for _, raw := range []string{
		"api.example.com/v1/posts?api_key=topsecret", // the scheme forgotten
		"/v1/posts?api_key=topsecret#frag-topsecret",
		"//user:pw-topsecret@api.example.com/v1/posts?api_key=topsecret",
		"https:opaque?api_key=topsecret",
		// A query that quotes an absolute URL (OAuth's redirect_uri).
		"auth.example.com/authorize?client_secret=topsecret&redirect_uri=https://app.example.com/cb",
		// User info without a scheme, or before a host that lost its slashes.
		"topsecret@api.example.com/v1/posts",
		"user:topsecret@api.example.com/v1/posts",
		"https:user:topsecret@api.example.com/v1/posts",
	} {
		t.Run(raw, func(t *testing.T) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			var seen []resilient.Attempt
			tr := resilient.New(base, resilient.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))),
				resilient.WithObserver(func(a resilient.Attempt) { seen = append(seen, a) }))
			_, err = tr.RoundTrip(&http.Request{Method: "GET", URL: u, Header: http.Header{}})
			if err == nil {
				t.Fatal("RoundTrip succeeded, want an error")
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("error %v does not reach the base's *url.Error", err)
			}
			texts := map[string]string{"error": err.Error(), "log": buf.String()}
			for i, a := range seen {
				if a.Err != nil {
					texts[fmt.Sprintf("Attempt %d's Err", i+1)] = a.Err.Error()
				}
			}
			for what, s := range texts {
				if strings.Contains(s, "topsecret") {
					t.Errorf("%s leaks the URL's secret: %s", what, s)
				}
			}
		})
	}
}

// callTag is the key of a value the caller puts in its request's context.
type callTag struct{}

// TestContextObserverGetsTheCallersContext: issue 17's "observer that
// receives the call's context", through an http.Client with a Timeout (which
// derives its own context from the request's) and without a Tracer: every
// attempt, a retry and one the open breaker refuses included, reaches the
// function set with WithContextObserver with a context that carries the
// caller's values, and the one set with WithObserver too (each adds to the
// Transport's observers).
func TestContextObserverGetsTheCallersContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &answers{steps: []answer{{status: 503}}}
		var tags []any
		var plain []resilient.Outcome
		tr := resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithMaxRetries(2),
			resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 2}),
			resilient.WithContextObserver(func(ctx context.Context, a resilient.Attempt) { tags = append(tags, ctx.Value(callTag{})) }),
			resilient.WithObserver(func(a resilient.Attempt) { plain = append(plain, a.Outcome) }))
		client := &http.Client{Transport: tr, Timeout: time.Minute}
		req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), callTag{}, "call-1"), "GET", "http://api.test/v1/posts", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := []resilient.Outcome{resilient.OutcomeTransient, resilient.OutcomeTransient, resilient.OutcomeCircuitOpen}
		if len(tags) != 3 || tags[0] != "call-1" || tags[1] != "call-1" || tags[2] != "call-1" {
			t.Errorf("context observer saw %v, want the caller's value for each of 3 attempts", tags)
		}
		if !slices.Equal(plain, want) {
			t.Errorf("observer saw %v, want %v", plain, want)
		}
	})
}
