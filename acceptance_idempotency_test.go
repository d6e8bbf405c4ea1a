package resilient_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestKeyRequiredProblemOfTheDraft: the IETF Idempotency-Key draft's own
// answer to a write sent without a key (a 400 problem document whose type
// is ".../idempotency" and whose title says "Idempotency-Key is missing";
// the same type names its 409 and 422) is a key-required answer, as issue
// 4 words it ("an RFC 9457 problem saying so"): the write is sent once
// more, with a generated key, and never a third time. It was returned after
// one attempt: only a code that itself said "required" or "missing" was
// recognized.
func TestKeyRequiredProblemOfTheDraft(t *testing.T) {
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	for _, tc := range []struct {
		name     string
		body     string
		opts     []resilient.Option
		attempts int
	}{
		{"draft", `{"type":"https://developer.example.com/idempotency","title":"Idempotency-Key is missing","detail":"This operation is idempotent and it requires correct usage of Idempotency Key."}`, nil, 2},
		{"about:blank", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"The Idempotency-Key header is missing."}`, nil, 2},
		{"generation off", `{"type":"https://developer.example.com/idempotency","title":"Idempotency-Key is missing","detail":"This operation is idempotent and it requires correct usage of Idempotency Key."}`, []resilient.Option{resilient.WithoutIdempotencyKeys()}, 1},
		{"another 400", `{"type":"https://developer.example.com/validation","title":"Invalid payload","detail":"The field content is missing."}`, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The server asks again: the key is added once, not twice.
			base := &answers{steps: []answer{{status: 400, header: problem, body: tc.body}}}
			var atts []resilient.Attempt
			// PUT gets no automatic key: the first attempt has none.
			opts := append([]resilient.Option{resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) })}, tc.opts...)
			status, body, err := call(t, resilient.New(base, opts...), context.Background(), http.MethodPut, "http://api.test/v1/posts/1", strings.NewReader("payload"))
			_, bodies, _ := base.sent()
			if status != 400 || body != tc.body || err != nil || len(bodies) != tc.attempts {
				t.Fatalf("%d, %v after %d attempts; want the 400, whole, after %d", status, err, len(bodies), tc.attempts)
			}
			if atts[0].IdempotencyKey != "" {
				t.Errorf("attempt 1 carried key %q, want none", atts[0].IdempotencyKey)
			}
			if tc.attempts == 2 && (!keyUUID4.MatchString(atts[1].IdempotencyKey) || bodies[1] != "payload") {
				t.Errorf("attempt 2: key %q, body %q; want a generated key and the same payload", atts[1].IdempotencyKey, bodies[1])
			}
		})
	}
}

// keyUUID4 matches a version 4 UUID in its canonical text form.
var keyUUID4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestKeyRequiredAttemptsReportTheirOwnKey: after a key-required answer,
// each Attempt given to the observer holds the key its request carried:
// none for the first, the generated one for the retry, as the server saw
// them. The first attempt's Attempt held the key generated for the retry,
// which it never sent.
func TestKeyRequiredAttemptsReportTheirOwnKey(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Missing Idempotency-Key on write"},"request_id":"r1"}`
	base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: required}, {status: 201}}}
	var atts []resilient.Attempt
	// No method gets an automatic key: the POST goes without one until the
	// server asks for it.
	tr := resilient.New(base, resilient.WithIdempotencyMethods(), resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) }))
	status, _, err := call(t, tr, context.Background(), http.MethodPost, "http://api.test/v1/posts", strings.NewReader("{}"))
	_, _, headers := base.sent()
	if status != 201 || err != nil || len(headers) != 2 || len(atts) != 2 {
		t.Fatalf("%d, %v after %d attempts (%d observed); want the 201 after 2", status, err, len(headers), len(atts))
	}
	for i, a := range atts {
		var sent string
		for k, v := range headers[i] {
			if strings.EqualFold(k, "Idempotency-Key") {
				sent = v[0]
			}
		}
		if a.IdempotencyKey != sent {
			t.Errorf("attempt %d: Attempt.IdempotencyKey %q, the request carried %q", i+1, a.IdempotencyKey, sent)
		}
	}
	if atts[0].IdempotencyKey != "" || !keyUUID4.MatchString(atts[1].IdempotencyKey) {
		t.Errorf("keys %q, %q; want none, then a generated one", atts[0].IdempotencyKey, atts[1].IdempotencyKey)
	}
}

// TestKeyRequiredMessageSpeaksOfTheKey: a 400 whose message names
// idempotency beside some other missing or required thing, in another
// sentence, is no key-required answer: the request is not sent again with
// a generated key, and its host, which never said it deduplicates by key,
// is not taken for one that does, so that a later write's 502 is not
// resent there. The message rule (8724361) took any message holding
// "idempotency" and "required" for one, and the host's next POST was sent
// twice after a 502.
func TestKeyRequiredMessageSpeaksOfTheKey(t *testing.T) {
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	for _, tc := range []struct {
		detail   string
		attempts int // of the PUT; the POST's 502 is resent only after a key-required answer
	}{
		{"The field currency is required. Idempotency is not guaranteed for rejected requests.", 1},
		{"Missing field: currency; see the idempotency guide.", 1},
		{"The Idempotency-Key header is missing.", 2},
		{"This operation requires an idempotency key", 2},
	} {
		// The retry with a key is refused on another ground: a host that
		// refused it as missing too would not read the key, and teach
		// nothing (TestKeyRequiredRetryUnreadKeyTeachesNothing).
		put := &answers{steps: []answer{
			{status: 400, header: problem, body: `{"type":"about:blank","title":"Bad Request","status":400,"detail":"` + tc.detail + `"}`},
			{status: 400, header: problem, body: `{"type":"about:blank","title":"Bad Request","status":400,"detail":"The field content is too long."}`},
		}}
		post := &answers{steps: []answer{{status: 502}, {status: 201}}}
		base := roundTrip(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPost {
				return post.RoundTrip(req)
			}
			return put.RoundTrip(req)
		})
		tr := resilient.New(base, resilient.WithBackoff(0, 0))
		if status, _, err := call(t, tr, context.Background(), http.MethodPut, "http://api.test/v1/posts/1", strings.NewReader("payload")); status != 400 || err != nil {
			t.Fatalf("%q: PUT = %d, %v; want the 400", tc.detail, status, err)
		}
		call(t, tr, context.Background(), http.MethodPost, "http://api.test/v1/posts", strings.NewReader("payload"))
		_, puts, _ := put.sent()
		_, posts, _ := post.sent()
		if len(puts) != tc.attempts || len(posts) != tc.attempts {
			t.Errorf("%q: PUT sent %d times, then POST after a 502 %d times; want %d and %d", tc.detail, len(puts), len(posts), tc.attempts, tc.attempts)
		}
	}
}

// TestIdempotencyMethodsAfterWithout: a later option of the same kind
// overrides an earlier one, as for the breaker, the rate limiter, the
// budget and hedging: WithIdempotencyMethods given after
// WithoutIdempotencyKeys (to New, or per call with WithCallOptions) turns
// automatic keys back on for its methods, and WithoutIdempotencyKeys given
// after it turns them off. WithIdempotencyMethods left keys off.
func TestIdempotencyMethodsAfterWithout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []resilient.Option
		call     []resilient.Option
		method   string
		wantsKey bool
	}{
		{"methods after without", []resilient.Option{resilient.WithoutIdempotencyKeys(), resilient.WithIdempotencyMethods(http.MethodPut)}, nil, http.MethodPut, true},
		{"methods after without, another method", []resilient.Option{resilient.WithoutIdempotencyKeys(), resilient.WithIdempotencyMethods(http.MethodPut)}, nil, http.MethodPost, false},
		{"without after methods", []resilient.Option{resilient.WithIdempotencyMethods(http.MethodPut), resilient.WithoutIdempotencyKeys()}, nil, http.MethodPut, false},
		{"per call methods on a Transport without", []resilient.Option{resilient.WithoutIdempotencyKeys()}, []resilient.Option{resilient.WithIdempotencyMethods(http.MethodPost)}, http.MethodPost, true},
		{"per call without on a Transport with methods", []resilient.Option{resilient.WithIdempotencyMethods(http.MethodPost)}, []resilient.Option{resilient.WithoutIdempotencyKeys()}, http.MethodPost, false},
		{"empty methods after without", []resilient.Option{resilient.WithoutIdempotencyKeys(), resilient.WithIdempotencyMethods()}, nil, http.MethodPost, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &answers{steps: []answer{{status: 201}}}
			ctx := context.Background()
			if tc.call != nil {
				ctx = resilient.WithCallOptions(ctx, tc.call...)
			}
			if _, _, err := call(t, resilient.New(base, tc.opts...), ctx, tc.method, "http://api.test/v1/posts", strings.NewReader("payload")); err != nil {
				t.Fatal(err)
			}
			base.mu.Lock()
			defer base.mu.Unlock()
			if len(base.header) != 1 {
				t.Fatalf("%d attempts, want 1", len(base.header))
			}
			got := false // a write's key may travel under a lower-case entry, which the wire spells alike
			for name, v := range base.header[0] {
				got = got || strings.EqualFold(name, "Idempotency-Key") && len(v) == 1 && v[0] != ""
			}
			if got != tc.wantsKey {
				t.Errorf("%s carries a key: %v, want %v", tc.method, got, tc.wantsKey)
			}
		})
	}
}

// TestKeyRequiredOnTheLastAttempt: a key-required answer that the call
// would have sent again with a key, had WithMaxRetries allowed another
// attempt, is returned with StopReason max_attempts in the Report and the
// Attempt, as a retryable answer on the last attempt is. It read "", while
// the same answer to a body that could not be replayed said
// body_not_replayable.
func TestKeyRequiredOnTheLastAttempt(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Missing Idempotency-Key on write"},"request_id":"r1"}`
	base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: required}, {status: 201}}}
	var atts []resilient.Attempt
	tr := resilient.New(base, resilient.WithMaxRetries(0), resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) }))
	var r resilient.Report
	status, _, err := call(t, tr, resilient.WithReport(context.Background(), &r), http.MethodPut, "http://api.test/v1/posts/1", strings.NewReader("{}"))
	if status != 400 || err != nil || len(atts) != 1 {
		t.Fatalf("%d, %v after %d attempts; want the 400 after 1", status, err, len(atts))
	}
	if atts[0].StopReason != resilient.StopMaxAttempts || r.StopReason != resilient.StopMaxAttempts {
		t.Errorf("StopReason: Attempt %q, Report %q; want %q", atts[0].StopReason, r.StopReason, resilient.StopMaxAttempts)
	}
}
