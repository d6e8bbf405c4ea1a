package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"
)

// TestHedgedWriteTwoCreatesForgetWhateverTheOrder checks that a hedged
// keyed write whose two copies are both created (two successes that are
// no replay under one key) leaves its host unlearned, whichever copy wins:
// the winner's "Idempotent-Replayed: false" says the host speaks of keys,
// but the second create shows it ignores them, and what the host does
// outweighs what it says. The next write to the host under a key the
// Transport drew, failed with a 500, is then returned, not resent.
// Before, when the attempt itself lost, its second create was seen (and
// the host forgotten, a no-op) before the winner's header taught the host,
// which stayed learned.
func TestHedgedWriteTwoCreatesForgetWhateverTheOrder(t *testing.T) {
	for _, tc := range []struct {
		name          string
		attempt, copy time.Duration // when each answers, from the call's start
	}{
		{"copy wins", 100 * time.Millisecond, 60 * time.Millisecond},
		{"attempt wins", 70 * time.Millisecond, 150 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				rt := numbered(func(i int, req *http.Request) (*http.Response, error) {
					h := http.Header{"Idempotent-Replayed": {"false"}} // the host's fresh answers
					switch i {
					case 0: // the attempt itself
						time.Sleep(tc.attempt - time.Since(start))
					case 1: // its copy, sent at 50ms
						time.Sleep(tc.copy - time.Since(start))
					default: // the next write
						return &http.Response{StatusCode: 500, Body: http.NoBody, Request: req}, nil
					}
					// Both created: the base answers as the server did,
					// the loser's context canceled or not.
					return &http.Response{StatusCode: http.StatusCreated, Header: h, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, fastRetries, WithHedging(Hedging{Delay: 50 * time.Millisecond}))
				ctx := WithIdempotencyKey(context.Background(), "post-1")
				resp, err := roundTrip(t, tr, newRequest(t, ctx, "POST", "http://api.test/posts", strings.NewReader("x")))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				time.Sleep(time.Second) // the copy that lost has ended
				synctest.Wait()
				checkHostForgotten(t, tr, rt.requests, 3)
			})
		})
	}
}

// TestHedgedWriteCutCreateThenCreateForgets checks the same of a copy
// whose success broke on its way (WithBufferedResponse: it is no answer,
// and does not win) before another create under the key: that of another
// copy that won, or of the retry that follows a copy's 503. Two creates
// for one key, as a resend after a success cut makes without hedging (see
// TestWriteRuleForgetsHostWhoseFreshAnswersSayNotReplayed). Before, the
// cut success, of a copy that did not decide the attempt, was looked at by
// no one: the second create's "Idempotent-Replayed: false" taught the host.
func TestHedgedWriteCutCreateThenCreateForgets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		second   int // the status of the copy sent at 50ms, at 80ms
		requests int // those of the write
	}{
		{"copy wins", http.StatusCreated, 2},
		{"retry wins", http.StatusServiceUnavailable, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := numbered(func(i int, req *http.Request) (*http.Response, error) {
					h := http.Header{"Idempotent-Replayed": {"false"}}
					created := &http.Response{StatusCode: http.StatusCreated, Header: h, ContentLength: 2,
						Body: io.NopCloser(strings.NewReader("ok")), Request: req}
					switch {
					case i == 0: // the attempt itself, created: its body breaks at 60ms
						time.Sleep(60 * time.Millisecond)
						return &http.Response{StatusCode: http.StatusCreated, Header: h, ContentLength: 10,
							Body: io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF)), Request: req}, nil
					case i == 1: // its copy, sent at 50ms
						time.Sleep(30 * time.Millisecond)
						if tc.second == http.StatusCreated {
							return created, nil
						}
						return &http.Response{StatusCode: tc.second, Body: http.NoBody, Request: req}, nil
					case i < tc.requests: // the retry: created again
						return created, nil
					}
					return &http.Response{StatusCode: 500, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, fastRetries, WithBufferedResponse(1<<20), WithHedging(Hedging{Delay: 50 * time.Millisecond}))
				ctx := WithIdempotencyKey(context.Background(), "post-1")
				resp, err := roundTrip(t, tr, newRequest(t, ctx, "POST", "http://api.test/posts", strings.NewReader("x")))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("status %d, want a 201", resp.StatusCode)
				}
				time.Sleep(time.Second) // the copies have ended
				synctest.Wait()
				checkHostForgotten(t, tr, rt.requests, tc.requests+1)
			})
		})
	}
}

// checkHostForgotten checks that tr forgot api.test as a host that honors
// keys after two creates under one key: it is not learned, and its next
// write, answered 500, is sent once; requests reports the requests the
// server got, want after that write.
func checkHostForgotten(t *testing.T, tr *Transport, requests func() int, want int) {
	t.Helper()
	if tr.keys.isLearned("http", "api.test") {
		t.Errorf("host learned to honor keys after two creates under one key")
	}
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://api.test/other", strings.NewReader("y")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := requests(); resp.StatusCode != 500 || n != want {
		t.Errorf("next write: %d after %d requests; want its 500 after %d (sent once: its host ignores keys)", resp.StatusCode, n, want)
	}
}
