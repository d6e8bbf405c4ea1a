package resilienttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestDropBefore(t *testing.T) {
	s := NewServer(Postato, WithScript(RouteCreatePost, DropBefore()))
	defer s.Close()
	if r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"); r.err == nil {
		t.Fatalf("status %d, want a connection error", r.status)
	}
	st := s.Stats()
	if st.StoredWrites != 0 || st.Dropped != 1 || st.Attempts[RouteCreatePost] != 1 {
		t.Fatalf("StoredWrites, Dropped, Attempts = %d, %d, %d; want 0, 1, 1", st.StoredWrites, st.Dropped, st.Attempts[RouteCreatePost])
	}
	// The retry with the same key is processed: nothing was stored before.
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 201)
	if st := s.Stats(); st.StoredWrites != 1 || st.Replays != 0 {
		t.Fatalf("StoredWrites, Replays = %d, %d; want 1, 0", st.StoredWrites, st.Replays)
	}
}

func TestDropAfter(t *testing.T) {
	s := NewServer(Aidelly, WithScript(RouteCreatePost, DropAfter()))
	defer s.Close()
	if r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"); r.err == nil {
		t.Fatalf("status %d, want a connection error", r.status)
	}
	st := s.Stats()
	if st.StoredWrites != 1 || st.Dropped != 1 {
		t.Fatalf("StoredWrites, Dropped = %d, %d; want 1, 1", st.StoredWrites, st.Dropped)
	}
	// A retry with the same key gets the stored answer: no duplicate.
	r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
	mustStatus(t, r, 201)
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("retry not marked Idempotent-Replayed")
	}
	// A retry without the key, as a naive client would send, is a duplicate.
	s.SetScript(RouteCreatePost, Normal())
	s2 := NewServer(Altyaa, WithScript(RouteCreatePost, DropAfter()))
	defer s2.Close()
	send(t, s2, "POST", "/v1/posts", `{"content":"a"}`, "")
	mustStatus(t, send(t, s2, "POST", "/v1/posts", `{"content":"a"}`, ""), 201)
	if st := s2.Stats(); st.StoredWrites != 2 || st.Duplicates != 1 {
		t.Fatalf("unkeyed retry: StoredWrites, Duplicates = %d, %d; want 2, 1", st.StoredWrites, st.Duplicates)
	}
	if st := s.Stats(); st.Replays != 1 || st.Duplicates != 0 || st.StoredWrites != 1 {
		t.Fatalf("keyed retry: Replays, Duplicates, StoredWrites = %d, %d, %d; want 1, 0, 1", st.Replays, st.Duplicates, st.StoredWrites)
	}
}

// TestFailAfterStoring proves that the write is stored before the 500 with
// the route's code, so that a keyed retry is replayed and an unkeyed one
// duplicates; and that the random mix draws it.
func TestFailAfterStoring(t *testing.T) {
	s := NewServer(Aidelly, WithScript(RouteCreatePost, FailAfterStoring()))
	defer s.Close()
	r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
	mustStatus(t, r, 500)
	if e := parseError(t, Aidelly, r); e.code != "PUBLIC_API_POST_CREATE_FAILED" {
		t.Fatalf("code %q, want PUBLIC_API_POST_CREATE_FAILED", e.code)
	}
	if st := s.Stats(); st.StoredWrites != 1 || st.ServerErrors != 1 {
		t.Fatalf("StoredWrites, ServerErrors = %d, %d; want 1, 1", st.StoredWrites, st.ServerErrors)
	}
	r = send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
	mustStatus(t, r, 201)
	if st := s.Stats(); st.Replays != 1 || st.StoredWrites != 1 || st.Duplicates != 0 {
		t.Fatalf("keyed retry: Replays, StoredWrites, Duplicates = %d, %d, %d; want 1, 1, 0", st.Replays, st.StoredWrites, st.Duplicates)
	}
	if got := FailAfterStoring().String(); got != "FailAfterStoring()" {
		t.Errorf("String() = %q", got)
	}

	m := NewServer(Postato, WithFaults(Faults{Seed: 3, ServerErrorAfter: 1}))
	defer m.Close()
	mustStatus(t, send(t, m, "POST", "/v1/posts", `{"content":"b"}`, ""), 500)
	mustStatus(t, send(t, m, "POST", "/v1/posts", `{"content":"b"}`, ""), 500)
	if st := m.Stats(); st.StoredWrites != 2 || st.Duplicates != 1 {
		t.Fatalf("unkeyed: StoredWrites, Duplicates = %d, %d; want 2, 1", st.StoredWrites, st.Duplicates)
	}
}

// TestFailAfterStoringReplay proves that FailAfterStoring fails only a
// write it stores: a replay is sent as it is (the stored 201, marked
// Idempotent-Replayed), and the 500 after a commit carries none of the
// success's headers (its Location, or a replay's mark).
func TestFailAfterStoringReplay(t *testing.T) {
	for _, d := range dialects {
		s := NewServer(d, WithScript(RouteCreatePost, FailAfterStoring(), FailAfterStoring()))
		r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
		mustStatus(t, r, 500)
		if loc, rep := r.header.Get("Location"), r.header.Get("Idempotent-Replayed"); loc != "" || rep != "" {
			t.Errorf("%v: the 500 after storing carries Location %q, Idempotent-Replayed %q; want neither", d, loc, rep)
		}
		r = send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
		mustStatus(t, r, 201)
		if r.header.Get("Idempotent-Replayed") != replayMark(d) || r.header.Get("Location") == "" {
			t.Errorf("%v: replay: Idempotent-Replayed %q, Location %q", d, r.header.Get("Idempotent-Replayed"), r.header.Get("Location"))
		}
		if st := s.Stats(); st.StoredWrites != 1 || st.Replays != 1 || st.ServerErrors != 1 {
			t.Errorf("%v: StoredWrites, Replays, ServerErrors = %d, %d, %d; want 1, 1, 1", d, st.StoredWrites, st.Replays, st.ServerErrors)
		}
		s.Close()
	}
}

// TestCutBody proves that a CutBody step stores the write, then sends the
// success's status and headers with the whole body's Content-Length and
// half the body before it closes the connection, so that the client's
// read fails partway; that a keyed retry is replayed; that an answer with
// nothing to cut (a 404, a HEAD) is sent whole; that the exchange is told
// with the status sent; and that a handler's success is cut the same, over
// HTTP/1 and HTTP/2.
func TestCutBody(t *testing.T) {
	var told []Exchange
	var mu sync.Mutex
	s := NewServer(Aidelly, WithScript(RouteCreatePost, CutBody()), WithScript(RouteGetPost, CutBody(), CutBody()),
		WithExchanges(func(e Exchange) { mu.Lock(); told = append(told, e); mu.Unlock() }))
	defer s.Close()
	r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
	if r.status != 201 || !errors.Is(r.err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut: status %d, error %v; want 201 and io.ErrUnexpectedEOF", r.status, r.err)
	}
	if n, _ := strconv.Atoi(r.header.Get("Content-Length")); n == 0 || len(r.body) != n/2 {
		t.Errorf("cut: %d bytes of a Content-Length %d, want half", len(r.body), n)
	}
	if st := s.Stats(); st.StoredWrites != 1 || st.Injected != 1 {
		t.Fatalf("StoredWrites, Injected = %d, %d; want 1, 1", st.StoredWrites, st.Injected)
	}
	r = send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
	mustStatus(t, r, 201)
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Error("keyed retry not replayed")
	}
	if st := s.Stats(); st.StoredWrites != 1 || st.Replays != 1 || st.Duplicates != 0 {
		t.Errorf("keyed retry: StoredWrites, Replays, Duplicates = %d, %d, %d; want 1, 1, 0", st.StoredWrites, st.Replays, st.Duplicates)
	}
	mustStatus(t, send(t, s, "GET", "/v1/posts/nope", "", ""), 404) // nothing to cut: whole
	req, _ := http.NewRequest("HEAD", s.URL+"/v1/posts/nope", nil)
	if resp, err := s.Client().Do(req); err != nil {
		t.Errorf("HEAD: %v", err)
	} else {
		resp.Body.Close()
	}
	mu.Lock()
	if len(told) != 4 || told[0].Status != 201 || told[1].Status != 201 {
		t.Errorf("exchanges %+v, want 4, the cut one with its 201", told)
	}
	mu.Unlock()
	if got := CutBody().String(); got != "CutBody()" {
		t.Errorf("String() = %q", got)
	}

	for _, tls := range []bool{false, true} {
		opts := []Option{WithHandler(&things{}), WithScript("GET /v1/things/1", CutBody())}
		if tls {
			opts = append(opts, WithTLS())
		}
		h := NewServer(Altyaa, opts...)
		r := sendWith(t, h.Client(), h.URL, "GET", "/v1/things/1", "", "")
		if r.status != 200 || r.err == nil || len(r.body) != len(`{"id":1}`)/2 {
			t.Errorf("handler, TLS %v: status %d, %q, error %v; want 200, half the body, an error", tls, r.status, r.body, r.err)
		}
		mustStatus(t, sendWith(t, h.Client(), h.URL, "GET", "/v1/things/1", "", ""), 200)
		h.Close()
	}

	// Drawn: Faults.CutBody.
	f := NewServer(Altyaa, WithFaults(Faults{Seed: 1, CutBody: 1}))
	defer f.Close()
	for range 2 {
		if r := send(t, f, "GET", "/v1/posts", "", ""); r.status != 200 || !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Errorf("Faults.CutBody 1: status %d, error %v; want 200 and io.ErrUnexpectedEOF", r.status, r.err)
		}
	}
	if st := f.Stats(); st.Injected != 2 {
		t.Errorf("Faults.CutBody 1: Injected = %d, want 2", st.Injected)
	}
}

// TestSlow proves in fake time that a Slow step and WithLatency delay the
// answer by exactly their sum.
func TestSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Aidelly, WithLatency(250*time.Millisecond), WithScript(RouteListPosts, Slow(10*time.Second)))
		defer s.Close()
		start := time.Now()
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		if got := time.Since(start); got != 10250*time.Millisecond {
			t.Fatalf("slow answer took %v, want 10.25s", got)
		}
		start = time.Now()
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		if got := time.Since(start); got != 250*time.Millisecond {
			t.Fatalf("normal answer took %v, want 250ms", got)
		}
	})
}

// TestSlowCloseEndsWait proves that Close ends a slow answer's wait.
func TestSlowCloseEndsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Postato, WithScript(RouteUsage, Slow(time.Hour)))
		done := make(chan result)
		go func() { done <- send(t, s, "GET", "/v1/usage", "", "") }()
		synctest.Wait()
		start := time.Now()
		s.Close()
		if r := <-done; r.err == nil {
			t.Fatalf("status %d, want an error", r.status)
		}
		if time.Since(start) != 0 {
			t.Fatalf("Close waited %v", time.Since(start))
		}
	})
}

func TestMalformedAndHTML(t *testing.T) {
	for _, d := range dialects {
		s := NewServer(d, WithScript(RouteGetPost, Malformed(500), HTML(502)))
		r := send(t, s, "GET", "/v1/posts/x", "", "")
		mustStatus(t, r, 500)
		if r.header.Get("Content-Type") != "application/json" || json.Valid(r.body) || len(r.body) == 0 {
			t.Errorf("%v: malformed: Content-Type %q, body %q: want truncated JSON", d, r.header.Get("Content-Type"), r.body)
		}
		r = send(t, s, "GET", "/v1/posts/x", "", "")
		mustStatus(t, r, 502)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<h1>502 Bad Gateway</h1>") {
			t.Errorf("%v: HTML: Content-Type %q, body %q", d, r.header.Get("Content-Type"), r.body)
		}
		s.Close()
	}
}

func TestHuge(t *testing.T) {
	for _, d := range dialects {
		for _, size := range []int{0, 100 << 10, 1000, 10} {
			s := NewServer(d, WithScript(RouteUploadURL, Huge(503, size)))
			r := send(t, s, "POST", "/v1/media/upload-url", "", "k")
			mustStatus(t, r, 503)
			want := size
			if size == 0 {
				want = 1 << 20
			}
			if size == 10 {
				if len(r.body) <= 10 {
					t.Errorf("%v: Huge(503, 10): body of %d bytes, want the bare envelope", d, len(r.body))
				}
			} else if len(r.body) != want {
				t.Errorf("%v: Huge(503, %d): body of %d bytes, want %d", d, size, len(r.body), want)
			}
			e := parseError(t, d, r)
			if e.code != d.ErrorCode(RouteUploadURL, 503) {
				t.Errorf("%v: code %q", d, e.code)
			}
			s.Close()
		}
	}
}

func TestRateLimitedStep(t *testing.T) {
	tests := []struct {
		retryAfter time.Duration
		want       string
	}{
		{1500 * time.Millisecond, "2"},
		{30 * time.Second, "30"},
		{0, "0"},
		{-1, ""},
	}
	for _, d := range dialects {
		s := NewServer(d)
		for _, tt := range tests {
			s.SetScript(RouteListPosts, RateLimited(tt.retryAfter))
			r := send(t, s, "GET", "/v1/posts", "", "")
			mustStatus(t, r, 429)
			if got := r.header.Get("Retry-After"); got != tt.want {
				t.Errorf("%v: RateLimited(%v): Retry-After %q, want %q", d, tt.retryAfter, got, tt.want)
			}
			if e := parseError(t, d, r); e.code != d.ErrorCode(RouteListPosts, 429) {
				t.Errorf("%v: code %q", d, e.code)
			}
		}
		if st := s.Stats(); st.RateLimited != len(tests) {
			t.Errorf("%v: RateLimited = %d, want %d", d, st.RateLimited, len(tests))
		}
		s.Close()
	}
}

// outcome is a compact description of what a client saw.
func outcome(r result) string {
	if r.err != nil {
		return "err"
	}
	return strconv.Itoa(r.status)
}

// runFaults sends n sequential requests and returns their outcomes.
func runFaults(t *testing.T, d Dialect, f Faults, n int) []string {
	t.Helper()
	var got []string
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(d, WithFaults(f))
		defer s.Close()
		for i := range n {
			r := send(t, s, "POST", "/v1/posts", fmt.Sprintf(`{"n":%d}`, i), "k"+strconv.Itoa(i))
			got = append(got, outcome(r))
		}
	})
	return got
}

// TestFaultsDeterministic proves that a seed and a sequential order give
// the same faults on every run, and another seed other faults.
func TestFaultsDeterministic(t *testing.T) {
	f := Faults{Seed: 42, ServerError: 0.2, RateLimit: 0.1, DropBefore: 0.1, DropAfter: 0.1, Slow: 0.1, Malformed: 0.05, HTML: 0.05, Huge: 0.05, HugeSize: 2000}
	a := runFaults(t, Postato, f, 200)
	b := runFaults(t, Postato, f, 200)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	f.Seed = 43
	c := runFaults(t, Postato, f, 200)
	if strings.Join(a, " ") == strings.Join(c, " ") {
		t.Fatal("seeds 42 and 43 gave the same faults")
	}
	// Postato's server errors are drawn among 500, 502, 503 and 504.
	seen := map[string]bool{}
	for _, o := range a {
		seen[o] = true
	}
	for _, want := range []string{"500", "502", "503", "504", "429", "err", "201"} {
		if !seen[want] {
			t.Errorf("outcome %s never seen in %v", want, a)
		}
	}
}

// TestFaultsMix proves that each kind of fault is drawn about as often as
// its probability says, and is counted.
func TestFaultsMix(t *testing.T) {
	const n = 2000
	synctest.Test(t, func(t *testing.T) {
		f := Faults{Seed: 7, ServerError: 0.1, RateLimit: 0.1, DropBefore: 0.05, DropAfter: 0.05, Slow: 0.1, Malformed: 0.05, HTML: 0.05, Huge: 0.05, HugeSize: 4096, SlowDelay: time.Minute}
		s := NewPipeServer(Aidelly, WithFaults(f))
		defer s.Close()
		// Without keep-alives: net/http retries by itself an idempotent
		// request whose reused connection drops before an answer.
		tr := s.Transport().Clone()
		tr.DisableKeepAlives = true
		c := &http.Client{Transport: tr}
		counts := map[string]int{}
		start := time.Now()
		for range n {
			r := sendWith(t, c, s.URL, "GET", "/v1/usage", "", "")
			switch {
			case r.err != nil:
				counts["drop"]++
			case r.status == 429:
				if r.header.Get("Retry-After") != "0" {
					t.Fatalf("Retry-After %q, want 0", r.header.Get("Retry-After"))
				}
				counts["429"]++
			case r.status == 502 && strings.HasPrefix(r.header.Get("Content-Type"), "text/html"):
				counts["html"]++
			case r.status == 500 && len(r.body) == 4096:
				counts["huge"]++
			case r.status == 500 && !json.Valid(r.body):
				counts["malformed"]++
			case r.status == 500:
				counts["5xx"]++
			case r.status == 200:
				counts["200"]++
			default:
				t.Fatalf("unexpected status %d", r.status)
			}
		}
		slow := int(time.Since(start) / time.Minute)
		check := func(name string, got int, p float64) {
			t.Helper()
			want := p * n
			if math.Abs(float64(got)-want) > 4*math.Sqrt(want*(1-p)) {
				t.Errorf("%s: %d of %d, want about %.0f", name, got, n, want)
			}
		}
		check("server errors", counts["5xx"], 0.1)
		check("rate limited", counts["429"], 0.1)
		check("drops", counts["drop"], 0.1)
		check("slow", slow, 0.1)
		check("malformed", counts["malformed"], 0.05)
		check("html", counts["html"], 0.05)
		check("huge", counts["huge"], 0.05)
		st := s.Stats()
		if st.Dropped != counts["drop"] || st.RateLimited != counts["429"] ||
			st.ServerErrors != counts["5xx"]+counts["html"]+counts["huge"]+counts["malformed"] ||
			st.Injected != n-counts["200"]+slow {
			t.Errorf("stats %+v disagree with what the client saw %v (slow %d)", st, counts, slow)
		}
	})
}

// TestFaultsFirstAttemptsOnly proves that with FirstAttemptsOnly a retry
// with the same key is answered normally, and unkeyed requests still draw.
func TestFaultsFirstAttemptsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Altyaa, WithFaults(Faults{Seed: 1, ServerError: 1, FirstAttemptsOnly: true}))
		defer s.Close()
		for i := range 5 {
			key := "k" + strconv.Itoa(i)
			body := fmt.Sprintf(`{"n":%d}`, i)
			mustStatus(t, send(t, s, "POST", "/v1/posts", body, key), 503)
			mustStatus(t, send(t, s, "POST", "/v1/posts", body, key), 201)
			mustStatus(t, send(t, s, "POST", "/v1/posts", body, key), 201)
		}
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 503)
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 503)
		if st := s.Stats(); st.StoredWrites != 5 || st.Replays != 5 || st.ServerErrors != 7 {
			t.Fatalf("StoredWrites, Replays, ServerErrors = %d, %d, %d; want 5, 5, 7", st.StoredWrites, st.Replays, st.ServerErrors)
		}
	})
}

// TestFaultsFirstAttemptsOnlyAfterScript proves that an attempt a script
// answered is the first attempt of its key: with FirstAttemptsOnly, the
// retry with the same key is answered normally, not drawn.
func TestFaultsFirstAttemptsOnlyAfterScript(t *testing.T) {
	s := NewServer(Altyaa, WithFaults(Faults{Seed: 1, ServerError: 1, FirstAttemptsOnly: true}),
		WithScript(RouteCreatePost, Respond(502)))
	defer s.Close()
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k"), 502)  // the script's step
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k"), 201)  // its retry
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":2}`, "k2"), 503) // a first attempt draws
	if st := s.Stats(); st.StoredWrites != 1 || st.Injected != 2 {
		t.Fatalf("StoredWrites, Injected = %d, %d; want 1, 2", st.StoredWrites, st.Injected)
	}
}

// TestScriptBeforeFaults proves that a script takes precedence over the
// random faults while it lasts.
func TestScriptBeforeFaults(t *testing.T) {
	s := NewServer(Postato, WithFaults(Faults{ServerError: 1}), WithScript(RouteUsage, Normal(), Respond(418)))
	defer s.Close()
	mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 200)
	mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 418)
	r := send(t, s, "GET", "/v1/usage", "", "")
	if r.err != nil || r.status < 500 {
		t.Fatalf("after the script: %v %d, want a 5xx", r.err, r.status)
	}
}

func TestStepString(t *testing.T) {
	tests := map[string]Step{
		"Normal()":                    Normal(),
		"Respond(503)":                Respond(503),
		`RespondCode(500, "X")`:       RespondCode(500, "X"),
		"DropBefore()":                DropBefore(),
		"DropAfter()":                 DropAfter(),
		"Slow(2s)":                    Slow(2 * time.Second),
		"HTML(502)":                   HTML(502),
		"Malformed(500)":              Malformed(500),
		"Huge(500, 1048576)":          Huge(500, 0),
		"RateLimited(1m0s)":           RateLimited(time.Minute),
		"RateLimited(-1ns)":           RateLimited(-1),
		"Huge(503, 10)":               Huge(503, 10),
		"RespondCode(429, \"a\\\"\")": RespondCode(429, `a"`),
	}
	for want, st := range tests {
		if got := st.String(); got != want {
			t.Errorf("String() = %s, want %s", got, want)
		}
	}
}

// TestRespondRedirectAnswersAtOnce proves that a 3xx Respond step is
// answered in front of the API with an empty body: the write it stands in
// for is not processed.
func TestRespondRedirectAnswersAtOnce(t *testing.T) {
	s := NewServer(Altyaa, WithScript(RouteCreatePost, Respond(307)))
	defer s.Close()
	r := send(t, s, "POST", "/v1/posts", `{"n":1}`, "k")
	mustStatus(t, r, 307)
	if len(r.body) != 0 {
		t.Errorf("body %q, want none", r.body)
	}
	if st := s.Stats(); st.StoredWrites != 0 || st.Injected != 1 {
		t.Fatalf("StoredWrites, Injected = %d, %d; want 0, 1", st.StoredWrites, st.Injected)
	}
}

// TestFaultsSlowDelayDefaultsToOneSecond proves that a Slow fault without
// SlowDelay waits one second.
func TestFaultsSlowDelayDefaultsToOneSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Postato, WithFaults(Faults{Seed: 1, Slow: 1}))
		defer s.Close()
		start := time.Now()
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		if got := time.Since(start); got != time.Second {
			t.Fatalf("slow fault took %v, want 1s", got)
		}
	})
}

// TestFaultsFirstAttemptsOnlyPerRoute proves that FirstAttemptsOnly counts
// a key's first attempt per route: the same key's first attempt on another
// route draws a fault too.
func TestFaultsFirstAttemptsOnlyPerRoute(t *testing.T) {
	s := NewServer(Altyaa, WithFaults(Faults{Seed: 1, ServerError: 1, FirstAttemptsOnly: true}))
	defer s.Close()
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k"), 503)
	mustStatus(t, send(t, s, "POST", "/v1/media/upload-url", "", "k"), 503)
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k"), 201)
	mustStatus(t, send(t, s, "POST", "/v1/media/upload-url", "", "k"), 200)
}

// TestFaultsFirstAttemptsOnlyReadsEitherKeyHeader proves that
// FirstAttemptsOnly reads the attempt's Idempotency-Key, else
// X-Idempotency-Key, whatever the dialect does with it: a key Postato
// does not dedupe (on the upload URL), and an X-Idempotency-Key Aidelly
// ignores, still spare the retry.
func TestFaultsFirstAttemptsOnlyReadsEitherKeyHeader(t *testing.T) {
	tests := []struct {
		d      Dialect
		path   string
		header string
		want   int
	}{
		{Postato, "/v1/media/upload-url", "Idempotency-Key", 200},
		{Aidelly, "/v1/posts", "X-Idempotency-Key", 201},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			s := NewServer(tt.d, WithRequireIdempotencyKey(false), WithFaults(Faults{Seed: 1, ServerError: 1, FirstAttemptsOnly: true}))
			defer s.Close()
			var got []int
			for range 2 {
				req, err := http.NewRequest("POST", s.URL+tt.path, strings.NewReader(`{"n":1}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set(tt.header, "k")
				resp, err := s.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got = append(got, resp.StatusCode)
			}
			if got[0] < 500 || got[1] != tt.want {
				t.Fatalf("statuses %v, want a 5xx then %d", got, tt.want)
			}
		})
	}
}

// TestMalformedIsHalfTheEnvelope proves that a Malformed answer is the
// first half of the dialect's envelope.
func TestMalformedIsHalfTheEnvelope(t *testing.T) {
	for _, d := range dialects {
		s := NewServer(d, WithScript(RouteGetPost, Malformed(500)))
		r := send(t, s, "GET", "/v1/posts/x", "", "")
		s.Close()
		mustStatus(t, r, 500)
		code := d.ErrorCode(RouteGetPost, 500)
		full := d.errorBody(code, d.message(code, 500), nil, strings.Repeat("0", 36))
		if len(r.body) != len(full)/2 {
			t.Errorf("%v: body of %d bytes %q, want %d, half of %q", d, len(r.body), r.body, len(full)/2, full)
		}
		if d != Aidelly && !strings.HasPrefix(string(full), string(r.body)) {
			t.Errorf("%v: body %q is not the start of %q", d, r.body, full)
		}
	}
}

// TestFaultsUseTheDialectsServerErrorStatus proves that Malformed and Huge
// faults answer with the dialect's server-error status: 503 for Altyaa,
// 500 for the others.
func TestFaultsUseTheDialectsServerErrorStatus(t *testing.T) {
	for _, d := range dialects {
		want := 500
		if d == Altyaa {
			want = 503
		}
		for _, f := range []Faults{{Malformed: 1}, {Huge: 1, HugeSize: 1000}} {
			s := NewServer(d, WithFaults(f))
			r := send(t, s, "GET", "/v1/usage", "", "")
			s.Close()
			mustStatus(t, r, want)
			if f.Huge != 0 && len(r.body) != 1000 {
				t.Errorf("%v: Huge fault body of %d bytes, want 1000", d, len(r.body))
			}
		}
	}
}

// TestFaultsRateLimitSendsRetryAfter proves that a RateLimit fault sends
// Faults.RetryAfter in seconds rounded up, and none when it is negative.
func TestFaultsRateLimitSendsRetryAfter(t *testing.T) {
	for retryAfter, want := range map[time.Duration]string{2500 * time.Millisecond: "3", 0: "0", -1: ""} {
		s := NewServer(Postato, WithFaults(Faults{RateLimit: 1, RetryAfter: retryAfter}))
		r := send(t, s, "GET", "/v1/posts", "", "")
		s.Close()
		mustStatus(t, r, 429)
		if got, ok := r.header["Retry-After"]; want == "" && ok || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("RetryAfter %v: Retry-After %q, want %q", retryAfter, got, want)
		}
	}
}

// TestLatencyOfAMillisecond proves that WithLatency waits even a short
// latency.
func TestLatencyOfAMillisecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Altyaa, WithLatency(time.Millisecond))
		defer s.Close()
		start := time.Now()
		mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 200)
		if got := time.Since(start); got != time.Millisecond {
			t.Fatalf("answer took %v, want 1ms", got)
		}
	})
}
