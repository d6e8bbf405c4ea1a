package resilient_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestKeyHonoringHostsIPv6: WithKeyHonoringHosts takes "a host or
// host:port" (issue 12), and its doc "a name or an address": an IPv6
// address is named as it is written alone ("::1") or in a URL ("[::1]",
// "[::1]:8080"), and a write to it that failed ambiguously (a 503) is
// resent with its key. Named bare, it was never matched (the request's
// host is bracketed), and the write was returned after one attempt.
func TestKeyHonoringHostsIPv6(t *testing.T) {
	for _, tc := range []struct {
		named    string
		url      string
		attempts int
	}{
		{"::1", "http://[::1]:8080/v1/posts", 2},
		{"::1", "http://[::1]/v1/posts", 2},
		{"[::1]", "http://[::1]:8080/v1/posts", 2},
		{"[::1]:8080", "http://[::1]:8080/v1/posts", 2},
		{"[::1]:8080", "http://[::1]:9090/v1/posts", 1},
		{"2001:DB8::1", "https://[2001:db8::1]/v1/posts", 2},
		{"2001:db8::1", "https://[2001:db8::2]/v1/posts", 1},
	} {
		base := &answers{steps: []answer{{status: 503}, {status: 201}}}
		var atts []resilient.Attempt
		tr := resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithKeyHonoringHosts(tc.named),
			resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) }))
		status, _, err := call(t, tr, context.Background(), http.MethodPost, tc.url, strings.NewReader("{}"))
		at, _, _ := base.sent()
		if len(at) != tc.attempts || err != nil {
			t.Errorf("named %q, POST %s: %d, %v after %d attempts; want %d", tc.named, tc.url, status, err, len(at), tc.attempts)
			continue
		}
		if tc.attempts == 1 && atts[0].StopReason != resilient.StopUnsafeWrite {
			t.Errorf("named %q, POST %s: stop reason %q, want %q", tc.named, tc.url, atts[0].StopReason, resilient.StopUnsafeWrite)
		}
	}
}

// rollback serves a create route that deduplicates writes by key until
// rolledBack is set, and ignores keys from then on: a deploy rolled back
// to a version without deduplication. The scripts of front apply to both.
type rollback struct {
	honoring, ignoring, front *resilienttest.Server
	rolledBack                atomic.Bool
}

func newRollback(t *testing.T) *rollback {
	t.Helper()
	rb := &rollback{
		honoring: resilienttest.NewServer(resilienttest.Altyaa),
		ignoring: resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true)),
	}
	rb.front = resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rb.rolledBack.Load() {
			rb.ignoring.ServeHTTP(w, r)
			return
		}
		rb.honoring.ServeHTTP(w, r)
	})))
	t.Cleanup(func() { rb.front.Close(); rb.honoring.Close(); rb.ignoring.Close() })
	return rb
}

// teach has tr learn that the host deduplicates by key: a write under a
// key tr drew answered with a code saying that the key was reused (an
// answer to the caller's own key teaches nothing of the host's other
// writes: TestReplayToCallersKeyTeachesNothingOfOtherWrites); a write
// failed after it was stored is then resent, and replayed.
func (rb *rollback) teach(t *testing.T, tr http.RoundTripper) {
	t.Helper()
	rb.front.SetScript(resilienttest.RouteCreatePost,
		resilienttest.RespondCode(http.StatusUnprocessableEntity, "idempotency_key_reused"), resilienttest.FailAfterStoring())
	for i, want := range []int{http.StatusUnprocessableEntity, http.StatusCreated} {
		if status, _, err := call(t, tr, context.Background(), http.MethodPost, rb.front.URL+"/v1/posts", strings.NewReader(`{"content":"teach"}`)); err != nil || status != want {
			t.Fatalf("teaching, write %d: %d, %v; want %d", i+1, status, err, want)
		}
	}
	if st := rb.honoring.Stats(); st.StoredWrites != 1 || st.Replays != 1 {
		t.Fatalf("teaching: %d stored, %d replays; want 1 and 1", st.StoredWrites, st.Replays)
	}
}

// post sends a write of body through tr, and reads its answer, whole or
// not: a body cut on its way is the caller's to see.
func (rb *rollback) post(t *testing.T, tr http.RoundTripper, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rb.front.URL+"/v1/posts", strings.NewReader(body))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestWriteRuleForgetsHostThatStopsDeduplicating: a host learned to
// deduplicate by key (its answer was a replay) is rolled back to a version
// that ignores keys. A success whose body breaks on its way (with
// WithBufferedResponse) is resent to a host that honors keys, and the
// resend, which carries the same key, gets a second success that is no
// replay: two creates for one key, which only a host that ignores keys
// answers. The host is then forgotten, and its later writes are not
// resent. Before, it stayed learned: each of 3 writes whose first answer
// was cut was stored twice (6 objects, where a plain client stores 3);
// now only the first, which proves it (4).
func TestWriteRuleForgetsHostThatStopsDeduplicating(t *testing.T) {
	rb := newRollback(t)
	tr := resilient.New(rb.front.Transport(), resilient.WithBackoff(0, 0), resilient.WithBufferedResponse(1<<20))
	rb.teach(t, tr)
	rb.rolledBack.Store(true)
	for i := range 3 {
		rb.front.SetScript(resilienttest.RouteCreatePost, resilienttest.CutBody())
		rb.post(t, tr, fmt.Sprintf(`{"content":"post %d"}`, i))
	}
	if n := rb.ignoring.Stats().StoredWrites; n != 4 {
		t.Errorf("3 writes after the rollback stored %d objects, want 4 (the first one resent, which proves the host ignores keys)", n)
	}
}

// TestWriteRuleForgetsHostThatRefusesKeys: a host learned to deduplicate
// by key that then answers a write with a code saying that it does not
// take keys (idempotency_key_not_supported: rolled back to a version
// without them) is forgotten: its next write, stored and then failed with
// a 500, is returned, not resent. Before, the code taught nothing and
// changed nothing: the write was resent and stored twice, where a plain
// client stores it once.
func TestWriteRuleForgetsHostThatRefusesKeys(t *testing.T) {
	rb := newRollback(t)
	tr := resilient.New(rb.front.Transport(), resilient.WithBackoff(0, 0))
	rb.teach(t, tr)
	rb.rolledBack.Store(true)
	rb.front.SetScript(resilienttest.RouteCreatePost,
		resilienttest.RespondCode(http.StatusBadRequest, "idempotency_key_not_supported"), resilienttest.FailAfterStoring())
	rb.post(t, tr, `{"content":"refused"}`)
	rb.post(t, tr, `{"content":"failed after storing"}`)
	if n := rb.ignoring.Stats().StoredWrites; n != 1 {
		t.Errorf("a write failed after storing was stored %d times, want once", n)
	}
}

// TestWriteRuleFeaturesCombined counts what a server that ignores keys
// stores when the features that resend are combined, each write failing
// after the server stored it (a 500, a dropped connection, a success whose
// body breaks): hedging, a buffered response, a Transport nested in
// another, automatic keys turned off and back on per call, a retry budget
// turned off, a rate limiter. A plain http.Client stores each write once;
// so must the Transport, which returns each failure after one attempt.
func TestWriteRuleFeaturesCombined(t *testing.T) {
	fail := []struct {
		name string
		step resilienttest.Step
	}{
		{"500 after storing", resilienttest.FailAfterStoring()},
		{"dropped after storing", resilienttest.DropAfter()},
		{"body cut after storing", resilienttest.CutBody()},
	}
	for _, tc := range []struct {
		name string
		tr   func(base http.RoundTripper) http.RoundTripper
		ctx  func() context.Context
	}{
		{"hedging", func(base http.RoundTripper) http.RoundTripper {
			return resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithHedging(resilient.Hedging{Delay: time.Millisecond}))
		}, nil},
		{"buffered response", func(base http.RoundTripper) http.RoundTripper {
			return resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithBufferedResponse(1<<20))
		}, nil},
		{"nested, hedging and buffered", func(base http.RoundTripper) http.RoundTripper {
			opts := []resilient.Option{resilient.WithBackoff(0, 0), resilient.WithBufferedResponse(1 << 20),
				resilient.WithHedging(resilient.Hedging{Delay: time.Millisecond})}
			return resilient.New(resilient.New(base, opts...), opts...)
		}, nil},
		{"keys off, then on per call", func(base http.RoundTripper) http.RoundTripper {
			return resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithoutIdempotencyKeys())
		}, func() context.Context {
			return resilient.WithCallOptions(context.Background(), resilient.WithIdempotencyMethods(http.MethodPost))
		}},
		{"no retry budget, rate limited", func(base http.RoundTripper) http.RoundTripper {
			return resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithoutRetryBudget(), resilient.WithRateLimit(1000, 10))
		}, nil},
	} {
		for _, f := range fail {
			t.Run(tc.name+", "+f.name, func(t *testing.T) {
				srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true),
					resilienttest.WithScript(resilienttest.RouteCreatePost, f.step, f.step, f.step))
				defer srv.Close()
				tr := tc.tr(srv.Transport())
				for i := range 3 {
					ctx := context.Background()
					if tc.ctx != nil {
						ctx = tc.ctx()
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"content":"post %d"}`, i)))
					if resp, err := tr.RoundTrip(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
				if st := srv.Stats(); st.StoredWrites != 3 || st.Requests != 3 {
					t.Errorf("3 writes: %d requests, %d stored; want 3 and 3, as a plain client", st.Requests, st.StoredWrites)
				}
			})
		}
	}
}
