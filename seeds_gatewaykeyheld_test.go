package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestSeedsKeyHeldAfterGatewayFailure: Postato honors Idempotency-Key on
// POST /posts and says to retry its 502 and 504 ("transient server /
// upstream error") with backoff, the caller's stable key per post keeping
// the retries from duplicating the post. A 502 or a 504 (a CDN's 520 or
// 524) is a gateway's word that the server behind it did not answer, in
// time or at all: the server may still be processing the write, and holds
// its key, as after a connection lost. The resend's 409, the key still
// held, is then retried with backoff until the key's first answer comes,
// as it is after a connection lost (TestKeyHeldByLostAttemptIsRetried);
// it was returned, telling the caller that its post failed while it was
// being created, and that a new key was needed (a second post). A 409
// after the server's own answer (a 500, a 503) is its word, returned
// (TestKeyHeldByLostAttemptIsRetried), and so is one after a 429, which
// refused the write unprocessed.
func TestSeedsKeyHeldAfterGatewayFailure(t *testing.T) {
	const held = `{"error":"CONFLICT","message":"A request with this key is still being processed"}`
	runGatewayThen409(t, "https://api.postato.test/v1/posts", held, []gatewayCase{
		{"504", `{"error":"GATEWAY_TIMEOUT","message":"Upstream timed out"}`, 504, 3},
		{"502", `{"error":"BAD_GATEWAY","message":"Upstream error"}`, 502, 3},
		{"524", `<html>A timeout occurred</html>`, 524, 3},
		{"520", `<html>Web server is returning an unknown error</html>`, 520, 3},
		{"500, the server's own", `{"error":"INTERNAL_ERROR","message":"Transient server error"}`, 500, 2},
		{"503, the server's own", `{"error":"SERVICE_UNAVAILABLE","message":"Service temporarily unavailable"}`, 503, 2},
		{"429, refused", `{"error":"RATE_LIMITED","message":"Rate limit hit"}`, 429, 2},
	})
}

// TestSeedsOwnBadGatewayIsAnAnswer: a 502 or a 504 whose error envelope
// carries a code of the server's own (Aidelly's PUBLIC_API_POST_CREATE_FAILED
// with its request_id, Altyaa's service_unavailable, an external dependency
// failing) is the server's answer, not a gateway's word that the server
// behind it gave none (see noAnswerBehind): the server ended its work on the
// attempt, whose key it no longer holds, as after its own 500 or 503. The
// resend's 409, a conflict of the server's (a duplicate slug), is returned,
// as the README's 'What is retried' row says ("the server's own 5xx is
// one"); it was retried with backoff up to WithMaxRetries (4 requests more,
// some 25 s of backoff by default). A gateway's code (BAD_GATEWAY,
// GATEWAY_TIMEOUT, an upstream's timeout) or none is still no answer
// (TestSeedsKeyHeldAfterGatewayFailure).
func TestSeedsOwnBadGatewayIsAnAnswer(t *testing.T) {
	runGatewayThen409(t, "https://api.example.test/v1/posts", slugConflict, []gatewayCase{
		{"aidelly 502", `{"success":false,"error":{"code":"PUBLIC_API_POST_CREATE_FAILED","message":"Post persistence failed"},"request_id":"r1"}`, 502, 2},
		{"altyaa 502", serviceUnavailable, 502, 2},
		{"altyaa 504", serviceUnavailable, 504, 2},
		{"upstream timeout", `{"error":{"code":"upstream_timeout","message":"Upstream timed out"}}`, 504, 3},
		{"no code", `{"message":"Endpoint request timed out"}`, 504, 3},
	})
}

// Altyaa's envelopes of the tests below: a dependency that failed, and a
// business conflict.
const (
	serviceUnavailable = `{"error":{"code":"service_unavailable","message":"External dependency failure"}}`
	slugConflict       = `{"error":{"code":"conflict","message":"Slug already in use"}}`
)

// gatewayCase is a keyed write's first answer (status and body), then a
// 409, then a 201: want is the attempts the call makes, 3 when the 409 is
// the key still held (retried: the call ends on the 201), 2 when it is
// returned.
type gatewayCase struct {
	name, body string
	status     int
	want       int
}

// runGatewayThen409 runs each case of cases as a keyed POST to url whose
// second answer is a 409 with body conflict.
func runGatewayThen409(t *testing.T, url, conflict string, cases []gatewayCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{{status: tc.status, body: tc.body}, {status: 409, body: conflict}, {status: 201}}}
				resp := postKeyed(t, New(rt, fastRetries), url, "post-1")
				if code := map[int]int{2: 409, 3: 201}[tc.want]; resp.StatusCode != code || rt.numCalls() != tc.want {
					t.Errorf("status %d after %d attempts, want %d after %d", resp.StatusCode, rt.numCalls(), code, tc.want)
				}
			})
		})
	}
}

// TestSeedsKeyHeldAfterGatewayFailureHedged: as
// TestSeedsKeyHeldAfterGatewayFailure, for a hedged keyed write one of
// whose copies got a gateway's 504, whichever copy decides the attempt:
// the retry's 409 is the key held, retried until the stored answer comes.
func TestSeedsKeyHeldAfterGatewayFailureHedged(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, copy hedgedAnswer
	}{
		{"copy's 504", hedgedAnswer{500, "", 100 * time.Millisecond}, hedgedAnswer{504, "", 20 * time.Millisecond}},
		{"attempt's 504", hedgedAnswer{504, "", 100 * time.Millisecond}, hedgedAnswer{500, "", 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The third request: the key held by the request behind the 504.
			status, n := hedgedKeyedPost(t, tc.first, tc.copy, hedgedAnswer{status: http.StatusConflict})
			if status != http.StatusCreated || n != 4 {
				t.Errorf("status %d after %d requests; want 201 (the stored answer) after 4", status, n)
			}
		})
	}
}

// TestSeedsOwnBadGatewayIsAnAnswerHedged: as TestSeedsOwnBadGatewayIsAnAnswer,
// for a hedged keyed write a copy of which, losing to the attempt's 500, got
// the server's own 502: the retry's 409 is returned.
func TestSeedsOwnBadGatewayIsAnAnswerHedged(t *testing.T) {
	status, n := hedgedKeyedPost(t, hedgedAnswer{500, "", 100 * time.Millisecond},
		hedgedAnswer{502, serviceUnavailable, 20 * time.Millisecond}, hedgedAnswer{409, slugConflict, 0})
	if status != http.StatusConflict || n != 3 {
		t.Errorf("status %d after %d requests; want 409 after 3", status, n)
	}
}

// hedgedAnswer is an answer of a scripted base: its status and JSON body,
// after a wait.
type hedgedAnswer struct {
	status int
	body   string
	after  time.Duration
}

// hedgedKeyedPost sends a POST to a host honoring keys, hedged after 50ms,
// in a synctest bubble, over a base that answers the attempt first, its
// copy copy, the retry retry, and any request after them 201. It returns
// the call's status and the requests the base got.
func hedgedKeyedPost(t *testing.T, first, copy, retry hedgedAnswer) (status, requests int) {
	synctest.Test(t, func(t *testing.T) {
		rt := numbered(func(i int, req *http.Request) (*http.Response, error) {
			a := hedgedAnswer{status: http.StatusCreated}
			if i < 3 {
				a = []hedgedAnswer{first, copy, retry}[i]
			}
			time.Sleep(a.after)
			return &http.Response{StatusCode: a.status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(a.body)), Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://api.test/", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status, requests = resp.StatusCode, rt.requests()
	})
	return status, requests
}
