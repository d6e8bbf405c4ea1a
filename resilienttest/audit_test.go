package resilienttest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// auditAnswer is what a client saw of one request.
type auditAnswer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// auditDo sends method to url with body ("" for none) and the header pairs
// kv, and reads the whole answer.
func auditDo(t *testing.T, c *http.Client, method, url, body string, kv ...string) auditAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return auditAnswer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return auditAnswer{resp.StatusCode, resp.Header, b, err}
}

// TestReplayAnswersTheScriptedStatus proves that a replayed key answers
// the status the first answer said when a Respond step gave that answer
// another 2xx status: the stored answer is the one sent, not the route's
// own 201 or 200.
func TestReplayAnswersTheScriptedStatus(t *testing.T) {
	for _, d := range []resilienttest.Dialect{resilienttest.Aidelly, resilienttest.Altyaa, resilienttest.Postato} {
		for _, tt := range []struct {
			route, path string
			status      int
		}{
			{resilienttest.RouteCreatePost, "/v1/posts", http.StatusOK},
			{resilienttest.RouteCreatePost, "/v1/posts", http.StatusAccepted},
			{resilienttest.RouteUploadURL, "/v1/media/upload-url", http.StatusCreated},
		} {
			if d == resilienttest.Postato && tt.route == resilienttest.RouteUploadURL {
				continue // Postato does not dedupe upload URLs
			}
			t.Run(fmt.Sprintf("%v %s %d", d, tt.route, tt.status), func(t *testing.T) {
				srv := resilienttest.NewServer(d, resilienttest.WithScript(tt.route, resilienttest.Respond(tt.status)))
				defer srv.Close()
				first := auditDo(t, srv.Client(), "POST", srv.URL+tt.path, `{"content":"a"}`, "Idempotency-Key", "k")
				again := auditDo(t, srv.Client(), "POST", srv.URL+tt.path, `{"content":"a"}`, "Idempotency-Key", "k")
				if first.err != nil || again.err != nil {
					t.Fatalf("errors %v, %v", first.err, again.err)
				}
				if first.status != tt.status {
					t.Fatalf("first answer %d, want the scripted %d", first.status, tt.status)
				}
				if again.status != first.status || !bytes.Equal(again.body, first.body) {
					t.Errorf("replay %d %s, want the first answer %d %s", again.status, again.body, first.status, first.body)
				}
				if st := srv.Stats(); st.StoredWrites != 1 || st.Replays != 1 {
					t.Errorf("StoredWrites, Replays = %d, %d; want 1, 1", st.StoredWrites, st.Replays)
				}
			})
		}
	}
}

// TestCloseWithRequestsInFlightOverHTTP2 proves that Close, over HTTP/2,
// ends the requests in flight at once, a Slow step's of the dialect's API
// and those of a handler of the test's own waiting for its client alike:
// each client gets an error, Close takes no time, and no goroutine is
// left (synctest.Test fails on one).
func TestCloseWithRequestsInFlightOverHTTP2(t *testing.T) {
	waiting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	for name, opts := range map[string][]resilienttest.Option{
		"slow step": {resilienttest.WithFaults(resilienttest.Faults{Slow: 1, SlowDelay: time.Hour})},
		"handler":   {resilienttest.WithHandler(waiting)},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, append(opts, resilienttest.WithTLS())...)
				const n = 3
				errs := make(chan error, n)
				for range n {
					go func() { errs <- auditDo(t, srv.Client(), "GET", srv.URL+"/v1/posts", "").err }()
				}
				synctest.Wait()
				if got := srv.Stats().Requests; got != n {
					t.Fatalf("Requests = %d before Close, want %d in flight", got, n)
				}
				start := time.Now()
				srv.Close()
				if waited := time.Since(start); waited != 0 {
					t.Errorf("Close waited %v for the requests in flight", waited)
				}
				for range n {
					if err := <-errs; err == nil {
						t.Error("a request in flight at Close got an answer, want an error")
					}
				}
			})
		})
	}
}

// TestSameSeedSameFaultsOfEveryKind proves that a seed draws the same
// faults on every run, with all ten kinds in the mix (ServerErrorAfter
// and CutBody included), as a sequential client sees them: the status of
// each exchange, 0 for a drop. Keep-alives are off, so that net/http never
// resends a dropped request by itself.
func TestSameSeedSameFaultsOfEveryKind(t *testing.T) {
	run := func(seed int64) string {
		var out strings.Builder
		synctest.Test(t, func(t *testing.T) {
			f := resilienttest.Faults{
				Seed: seed, ServerError: 0.1, RateLimit: 0.1, DropBefore: 0.1, DropAfter: 0.1, Slow: 0.1,
				Malformed: 0.1, HTML: 0.1, Huge: 0.1, ServerErrorAfter: 0.1, CutBody: 0.1, HugeSize: 1000,
			}
			srv := resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithFaults(f),
				resilienttest.WithExchanges(func(e resilienttest.Exchange) { fmt.Fprintf(&out, "%d ", e.Status) }))
			defer srv.Close()
			tr := srv.Transport().Clone()
			tr.DisableKeepAlives = true
			c := &http.Client{Transport: tr}
			for i := range 100 {
				auditDo(t, c, "POST", srv.URL+"/v1/posts", fmt.Sprintf(`{"content":"%d"}`, i), "Idempotency-Key", fmt.Sprint(i))
			}
		})
		return out.String()
	}
	a, b := run(9), run(9)
	if a != b {
		t.Fatalf("seed 9 drew\n%s\nthen\n%s", a, b)
	}
	if c := run(10); c == a {
		t.Fatalf("seeds 9 and 10 drew the same faults: %s", a)
	}
	for _, status := range []string{"0 ", "201 ", "429 ", "500 ", "502 ", "503 "} {
		if !strings.Contains(a, status) {
			t.Errorf("status %s never drawn in %s", status, a)
		}
	}
}
