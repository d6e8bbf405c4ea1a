package resilient

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestCDNStatusCodes: a CDN's (Cloudflare's) 520–524 say that the origin
// behind it failed, refused the connection, could not be reached in time
// or did not answer in time: 502 and 504 by other numbers, and a GET
// answered one is retried as those are. They were Permanent, never
// retried. 525 and 526 (the TLS handshake to the origin failed, the
// origin's certificate is invalid) and 530 (an origin error of the CDN's
// own numbering, such as its DNS record) need a fix of the origin's
// configuration, as a certificate or handshake refusal of the host itself
// does: not retried. Every one of them still counts as a failure of the
// host for its breaker, and a write answered one follows the write rule
// as a 502 does: resent only to a host that deduplicates by key.
func TestCDNStatusCodes(t *testing.T) {
	t.Parallel()
	html := http.Header{"Content-Type": {"text/html"}}
	for _, tc := range []struct {
		status int
		want   Class
	}{
		{520, Transient}, {521, Transient}, {522, Transient}, {523, Transient}, {524, Transient},
		{525, Permanent}, {526, Permanent}, {530, Permanent},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			page := rtStep{status: tc.status, header: html, body: "<html><body>error code: " + strconv.Itoa(tc.status) + "</body></html>"}
			s := &rtScript{steps: []rtStep{page, {status: 200}}}
			var attempts []Attempt
			tr := New(s, fastRetries, WithoutRateLimit(), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/posts", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantCalls := map[bool]int{false: 1, true: 2}[tc.want.Retryable()]
			if attempts[0].Class != tc.want || s.numCalls() != wantCalls {
				t.Errorf("GET answered %d: class %v after %d attempts, want %v after %d", tc.status, attempts[0].Class, s.numCalls(), tc.want, wantCalls)
			}
			if e := ParseError(newResponse(page)); e.Retryable != tc.want.Retryable() {
				t.Errorf("ParseError(%d).Retryable = %v, want %v", tc.status, e.Retryable, tc.want.Retryable())
			}
			st := &attemptState{classified: true, class: attempts[0].Class}
			if o := attemptOutcome(st, newRequest(t, context.Background(), "GET", "http://api.test/", nil), newResponse(page), nil); o != errBreakerFailure {
				t.Errorf("breaker outcome of a %d: %v, want a failure", tc.status, o)
			}

			// A write: returned at once by a host not known to
			// deduplicate, resent under its key by one that does.
			for _, w := range []struct {
				name  string
				opts  []Option
				calls int
			}{
				{"any host", nil, 1},
				{"key-honoring host", []Option{WithKeyHonoringHosts("api.test")}, wantCalls},
			} {
				s := &rtScript{steps: []rtStep{page, {status: 201}}}
				tr := New(s, append([]Option{fastRetries, WithoutRateLimit(), WithoutBreaker()}, w.opts...)...)
				req := newRequest(t, context.Background(), "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`))
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if s.numCalls() != w.calls {
					t.Errorf("POST to %s answered %d: %d attempts, want %d", w.name, tc.status, s.numCalls(), w.calls)
				}
			}
		})
	}
}
