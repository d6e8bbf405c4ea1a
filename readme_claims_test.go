package resilient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// This file pins, from outside the package, claims of the README that a
// user writes code against and that no other test checks as written: its
// quick start, the sentences of the write rule, and the snippet of "Test
// your integration".

// quickStart is the README's quick start, verbatim but for the client and
// the URL it is given.
func quickStart(ctx context.Context, client *http.Client, url, token string, body io.Reader) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/posts", body)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req) // one Idempotency-Key on every attempt; resent after a 5xx only where the write rule allows
	if err != nil {
		return err // no response: network failure after every retry, breaker open (resilient.ErrCircuitOpen), …
	}
	defer resp.Body.Close()
	if apiErr := resilient.ParseError(resp); apiErr != nil {
		return apiErr // e.g. `409 PUBLIC_API_IDEMPOTENCY_CONFLICT: Reused key … (request_id 7f3…)`
	}
	return nil
}

// keysSeen is a resilienttest exchange hook that records the idempotency
// key of every request the server read, in order.
type keysSeen struct {
	mu   sync.Mutex
	keys []string
}

func (k *keysSeen) record(e resilienttest.Exchange) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, e.Header.Get("Idempotency-Key"))
}

func (k *keysSeen) all() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

// TestReadmeQuickStart runs the quick start against Aidelly's fault
// server: a POST that fails with a 503 before the server processed it is
// retried under the key of its first attempt and succeeds once; a key
// reused for another payload is returned as the APIError the comment
// shows, in that format.
func TestReadmeQuickStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen keysSeen
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithExchanges(seen.record),
			resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.RateLimited(0), resilienttest.Normal()))
		defer srv.Close()
		client := &http.Client{Transport: resilient.New(srv.Transport())}
		if err := quickStart(t.Context(), client, srv.URL, "t0k3n-secret", strings.NewReader(`{"content":"hello"}`)); err != nil {
			t.Fatalf("quick start after a 429: %v, want success", err)
		}
		keys := seen.all()
		if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
			t.Errorf("keys sent: %q; want one key, the same on both attempts", keys)
		}
		if st := srv.Stats(); st.StoredWrites != 1 || st.Duplicates != 0 {
			t.Errorf("%d stored, %d duplicates; want 1 and 0", st.StoredWrites, st.Duplicates)
		}

		// The same key for another payload: the conflict of the comment.
		ctx := resilient.WithIdempotencyKey(t.Context(), "quick-start-key")
		if err := quickStart(ctx, client, srv.URL, "t0k3n-secret", strings.NewReader(`{"content":"one"}`)); err != nil {
			t.Fatal(err)
		}
		err := quickStart(ctx, client, srv.URL, "t0k3n-secret", strings.NewReader(`{"content":"two"}`))
		var apiErr *resilient.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
			t.Fatalf("a key reused for another payload: %v; want a 409 *resilient.APIError", err)
		}
		if !regexp.MustCompile(`^409 PUBLIC_API_IDEMPOTENCY_CONFLICT: Reused key .* \(request_id [0-9a-f-]+\)$`).MatchString(err.Error()) {
			t.Errorf("the conflict reads %q; want the quick start's `409 PUBLIC_API_IDEMPOTENCY_CONFLICT: Reused key … (request_id 7f3…)`", err)
		}
	})
}

// TestReadmeWriteRule checks the sentences of the README's write rule one
// by one against a server that stores every write it processes and fails
// it after storing it (a 500): a write is resent after that ambiguous
// failure only with a key and to a host that deduplicates by key, named
// with WithKeyHonoringHosts or implied by the caller's own key; elsewhere
// it is returned at once with StopUnsafeWrite; a write that provably was
// not processed (a 429) is resent to any host.
func TestReadmeWriteRule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		aidelly  bool
		opts     func(host string) []resilient.Option
		ctx      func(context.Context) context.Context
		first    resilienttest.Step
		attempts int
		stop     resilient.StopReason
	}{
		{name: "500 after storing, host unknown", first: resilienttest.FailAfterStoring(), attempts: 1, stop: resilient.StopUnsafeWrite},
		{name: "dropped after storing, host unknown", first: resilienttest.DropAfter(), attempts: 1, stop: resilient.StopUnsafeWrite},
		{name: "500 after storing, host named", first: resilienttest.FailAfterStoring(), attempts: 2,
			opts: func(host string) []resilient.Option { return []resilient.Option{resilient.WithKeyHonoringHosts(host)} }},
		{name: "500 after storing, caller's key", first: resilienttest.FailAfterStoring(), attempts: 2,
			ctx: func(ctx context.Context) context.Context { return resilient.WithIdempotencyKey(ctx, "caller-key-1") }},
		{name: "500 after storing, host named, keys off", first: resilienttest.FailAfterStoring(), attempts: 1, stop: resilient.StopUnsafeWrite,
			opts: func(host string) []resilient.Option {
				return []resilient.Option{resilient.WithKeyHonoringHosts(host), resilient.WithoutIdempotencyKeys()}
			}},
		{name: "429, host unknown", first: resilienttest.RateLimited(0), attempts: 2},
		{name: "dropped before processing, host unknown", first: resilienttest.DropBefore(), attempts: 1, stop: resilient.StopUnsafeWrite},
		// Aidelly's envelope teaches that its host deduplicates: the
		// 500 it answers is itself that envelope.
		{name: "Aidelly, 500 after storing, host unknown", aidelly: true, first: resilienttest.FailAfterStoring(), attempts: 2},
		{name: "Aidelly, dropped after storing, host unknown", aidelly: true, first: resilienttest.DropAfter(), attempts: 1, stop: resilient.StopUnsafeWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Altyaa's server dedupes by key, but nothing in its
				// answers says so: only the caller's word makes a
				// resend safe. Aidelly's answers say so.
				dialect := resilienttest.Altyaa
				if tc.aidelly {
					dialect = resilienttest.Aidelly
				}
				srv := resilienttest.NewPipeServer(dialect,
					resilienttest.WithScript(resilienttest.RouteCreatePost, tc.first, resilienttest.Normal()))
				defer srv.Close()
				var opts []resilient.Option
				if tc.opts != nil {
					opts = tc.opts(strings.TrimPrefix(srv.URL, "http://"))
				}
				client := &http.Client{Transport: resilient.New(srv.Transport(), opts...)}
				var r resilient.Report
				ctx := resilient.WithReport(t.Context(), &r)
				if tc.ctx != nil {
					ctx = tc.ctx(ctx)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				st := srv.Stats()
				if st.Requests != tc.attempts || r.Attempts != tc.attempts {
					t.Errorf("%d requests (report: %d attempts), want %d", st.Requests, r.Attempts, tc.attempts)
				}
				if st.Duplicates != 0 {
					t.Errorf("%d duplicates, want none", st.Duplicates)
				}
				if tc.stop != "" && r.StopReason != tc.stop {
					t.Errorf("stop reason %q, want %q", r.StopReason, tc.stop)
				}
			})
		})
	}
}

// TestReadmeWriteRuleMethods: keys go on POST and PATCH, the same on every
// attempt, not on PUT and DELETE, which are resent after a 5xx as reads
// are, to any host; WithIdempotencyMethods names the methods that get one.
func TestReadmeWriteRuleMethods(t *testing.T) {
	for _, tc := range []struct {
		method   string
		opts     []resilient.Option
		keyed    bool
		attempts int
	}{
		{method: http.MethodPost, keyed: true, attempts: 1},
		{method: http.MethodPatch, keyed: true, attempts: 1},
		{method: http.MethodPut, attempts: 2},
		{method: http.MethodDelete, attempts: 2},
		{method: http.MethodGet, attempts: 2},
		{method: http.MethodPut, opts: []resilient.Option{resilient.WithIdempotencyMethods(http.MethodPut)}, keyed: true, attempts: 2},
		{method: http.MethodPost, opts: []resilient.Option{resilient.WithIdempotencyMethods(http.MethodPut)}, attempts: 1},
	} {
		t.Run(fmt.Sprint(tc.method, len(tc.opts)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &answers{steps: []answer{{status: 500}, {status: 200}}}
				status, _, err := call(t, resilient.New(base, tc.opts...), t.Context(), tc.method, "http://api.test/v1/things/1", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				_, _, headers := base.sent()
				if len(headers) != tc.attempts {
					t.Fatalf("%d attempts (last status %d), want %d", len(headers), status, tc.attempts)
				}
				for i, h := range headers {
					var key string
					for k, v := range h { // a key sent under any spelling of the name
						if strings.EqualFold(k, "Idempotency-Key") {
							key += strings.Join(v, "")
						}
					}
					if (key != "") != tc.keyed {
						t.Errorf("attempt %d: key %q, want a key: %v", i+1, key, tc.keyed)
					}
				}
			})
		})
	}
}

// TestReadmeTestYourIntegration runs the README's snippet: a client
// through resilient against Aidelly's bad day stores no write twice, and
// a server WithHandler answers its first scripted attempt as scripted.
func TestReadmeTestYourIntegration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithFaults(resilienttest.Faults{
			Seed: 1, ServerError: 0.1, DropAfter: 0.1, RateLimit: 0.05,
		}))
		defer srv.Close()
		client := &http.Client{Transport: resilient.New(srv.Transport())}
		for i := range 50 {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(fmt.Sprintf(`{"content":"post %d"}`, i)))
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		if st := srv.Stats(); st.Duplicates != 0 || st.StoredWrites == 0 {
			t.Errorf("%d writes were stored twice (of %d stored)", st.Duplicates, st.StoredWrites)
		}
	})

	myHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})
	api := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithHandler(myHandler), resilienttest.WithTLS(),
		resilienttest.WithScript("POST /v1/charges", resilienttest.Respond(503)))
	defer api.Close()
	var statuses []int
	client := &http.Client{Transport: resilient.New(api.Transport(),
		resilient.WithObserver(func(a resilient.Attempt) { statuses = append(statuses, a.StatusCode) }))}
	for range 2 {
		resp, err := client.Post(api.URL+"/v1/charges", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("%s, want HTTP/2", resp.Proto)
		}
	}
	if fmt.Sprint(statuses) != "[503 201]" {
		t.Errorf("statuses %v; want the scripted 503 (a write not resent), then the handler's 201", statuses)
	}
}

// levels is a slog.Handler that records the level and message of every
// record.
type levels struct {
	mu  sync.Mutex
	got []string
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, r.Level.String())
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

func (l *levels) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return ""
	}
	return l.got[len(l.got)-1]
}

// TestReadmeLogLevels checks WithLogger's levels as the option table
// gives them for a call's last record: Debug a first-try success; Info a
// success after retries and a final 4xx the API answered (Permanent, below
// 500, but 408 and 429); Warn a failed attempt that will be retried; Error
// a failed call: a final 5xx, 408 or 429, also when the server says not to
// retry it, a network error, a local refusal.
func TestReadmeLogLevels(t *testing.T) {
	down := errors.New("connection reset by peer")
	for _, tc := range []struct {
		name  string
		steps []answer
		err   error
		want  []string
	}{
		{name: "first-try success", steps: []answer{{status: 200}}, want: []string{"DEBUG"}},
		{name: "success after retries", steps: []answer{{status: 503}, {status: 200}}, want: []string{"WARN", "INFO"}},
		{name: "final 404", steps: []answer{{status: 404}}, want: []string{"INFO"}},
		{name: "final 422", steps: []answer{{status: 422}}, want: []string{"INFO"}},
		{name: "final 408", steps: []answer{{status: 408}}, want: []string{"WARN", "ERROR"}},
		{name: "final 429", steps: []answer{{status: 429, header: http.Header{"Retry-After": {"1"}}}}, want: []string{"WARN", "ERROR"}},
		{name: "final 500", steps: []answer{{status: 500}}, want: []string{"WARN", "ERROR"}},
		{name: "final 501", steps: []answer{{status: 501}}, want: []string{"ERROR"}},
		{name: "503 the server says not to retry", steps: []answer{{status: 503, header: http.Header{"X-Should-Retry": {"false"}}}}, want: []string{"ERROR"}},
		{name: "429 the server says not to retry", steps: []answer{{status: 429, header: http.Header{"X-Should-Retry": {"false"}}}}, want: []string{"ERROR"}},
		{name: "network error", err: down, want: []string{"WARN", "ERROR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var base http.RoundTripper = &answers{steps: tc.steps}
				if tc.err != nil {
					base = roundTrip(func(req *http.Request) (*http.Response, error) { return nil, tc.err })
				}
				var l levels
				tr := resilient.New(base, resilient.WithLogger(slog.New(&l)), resilient.WithMaxRetries(1), resilient.WithoutBreaker())
				call(t, tr, t.Context(), http.MethodGet, "http://api.test/v1/posts", nil)
				l.mu.Lock()
				got := append([]string(nil), l.got...)
				l.mu.Unlock()
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("log levels %v, want %v", got, tc.want)
				}
			})
		})
	}
	t.Run("breaker refusal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var l levels
			tr := resilient.New(&answers{steps: []answer{{status: 500}}}, resilient.WithLogger(slog.New(&l)), resilient.WithMaxRetries(0),
				resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1}))
			call(t, tr, t.Context(), http.MethodGet, "http://api.test/v1/posts", nil)
			_, _, err := call(t, tr, t.Context(), http.MethodGet, "http://api.test/v1/posts", nil)
			if !errors.Is(err, resilient.ErrCircuitOpen) {
				t.Fatalf("second call: %v, want ErrCircuitOpen", err)
			}
			if got := l.last(); got != "ERROR" {
				t.Errorf("a call the open breaker refused logs at %s, want ERROR", got)
			}
		})
	})
}

// TestReadmeKeyRequiredRetryTeachesTheHost checks the write rule's
// sentence that a host is learned to deduplicate by key from the host's
// answer to the retry of a key-required refusal: after a PATCH sent
// without a key was refused for want of one and its retry under a drawn
// key was answered, a POST of that host that is stored and then fails
// with a 500 is resent under its key and replayed, stored once. Without
// the refused PATCH first, the same POST is returned after one attempt.
func TestReadmeKeyRequiredRetryTeachesTheHost(t *testing.T) {
	for _, learn := range []bool{true, false} {
		t.Run(fmt.Sprintf("key retry answered first %v", learn), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				honoring := resilienttest.NewPipeServer(resilienttest.Altyaa)
				front := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPatch {
						io.Copy(io.Discard, r.Body)
						if r.Header.Get("Idempotency-Key") == "" {
							w.Header().Set("Content-Type", "application/json")
							w.WriteHeader(http.StatusBadRequest)
							io.WriteString(w, `{"error":{"code":"idempotency_key_required","message":"Idempotency-Key is required"}}`)
							return
						}
						w.WriteHeader(http.StatusOK)
						return
					}
					honoring.ServeHTTP(w, r)
				})), resilienttest.WithScript("POST /v1/posts", resilienttest.FailAfterStoring()))
				defer front.Close()
				defer honoring.Close()
				tr := resilient.New(front.Transport(), resilient.WithBackoff(time.Millisecond, time.Millisecond), resilient.WithoutBreaker(),
					resilient.WithoutRateLimit(), resilient.WithIdempotencyMethods(http.MethodPost))
				ctx := context.Background()
				if learn {
					if got, _, err := call(t, tr, ctx, http.MethodPatch, front.URL+"/v1/posts/p1", strings.NewReader(`{"content":"edited"}`)); err != nil || got != http.StatusOK {
						t.Fatalf("patch: %d, %v; want the key retry's 200", got, err)
					}
				}
				want := http.StatusInternalServerError
				if learn {
					want = http.StatusCreated
				}
				if got, _, err := call(t, tr, ctx, http.MethodPost, front.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`)); err != nil || got != want {
					t.Errorf("post: %d, %v; want %d", got, err, want)
				}
				if n := honoring.Stats().StoredWrites; n != 1 {
					t.Errorf("the post was stored %d times, want 1", n)
				}
			})
		})
	}
}

// TestReadmeNeverSentCountsAgainstNoHost checks the breaker's row of the
// README's option table: a request that could never be sent (a host name
// that does not exist, a certificate the client refuses, a proxy setting
// that does not parse) fails after one attempt, as a plain client's does,
// and counts nothing against the host's breaker, even one set to trip at
// its first failure.
func TestReadmeNeverSentCountsAgainstNoHost(t *testing.T) {
	for name, cause := range map[string]error{
		"no such host":        &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.test", IsNotFound: true}},
		"certificate refused": &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}},
		"invalid proxy":       errors.New(`invalid proxy address "http://[::1"`),
	} {
		t.Run(name, func(t *testing.T) {
			var sent int
			tr := resilient.New(roundTrip(func(req *http.Request) (*http.Response, error) {
				sent++
				return nil, cause
			}), resilient.WithBackoff(0, 0), resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1}))
			for i := range 3 {
				if _, _, err := call(t, tr, context.Background(), http.MethodGet, "https://api.test/v1/posts", nil); err == nil || errors.Is(err, resilient.ErrCircuitOpen) {
					t.Fatalf("call %d: %v; want the cause, not a refusal", i, err)
				}
			}
			if sent != 3 {
				t.Errorf("%d attempts over 3 calls, want 3 (one each)", sent)
			}
			if st := tr.BreakerState("https://api.test/"); st != resilient.BreakerClosed {
				t.Errorf("breaker %v, want %v", st, resilient.BreakerClosed)
			}
		})
	}
}
