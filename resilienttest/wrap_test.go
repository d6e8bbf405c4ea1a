package resilienttest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// things is a caller's own API, for tests of WithHandler: POST /v1/things
// creates a thing (201), GET /v1/things/{id} reads one; it counts its
// calls and the things it created.
type things struct {
	mu      sync.Mutex
	calls   int
	created []string // bodies
}

func (a *things) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/things":
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.created = append(a.created, string(b))
		id := len(a.created)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/v1/things/"+strconv.Itoa(id))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%d}`, id)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/things/"):
		if r.URL.Path == "/v1/things/teapot" {
			w.WriteHeader(http.StatusServiceUnavailable) // the handler's own 5xx
			return
		}
		io.WriteString(w, `{"id":1}`)
	default:
		http.NotFound(w, r)
	}
}

func (a *things) counts() (calls, created int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, len(a.created)
}

// TestHandlerScript proves every step in front of a handler of the
// caller's own: what the client sees, whether the handler ran, and what
// Stats counted.
func TestHandlerScript(t *testing.T) {
	api := &things{}
	s := NewServer(Altyaa, WithHandler(api), WithScript("POST /v1/things",
		Respond(503), DropBefore(), FailAfterStoring(), DropAfter(), Respond(202), RateLimited(2*time.Second), Normal()))
	defer s.Close()

	tests := []struct {
		status  int // 0: a connection error
		handler bool
	}{
		{503, false}, {0, false}, {500, true}, {0, true}, {202, true}, {429, false}, {201, true},
	}
	for i, tt := range tests {
		before, _ := api.counts()
		r := send(t, s, "POST", "/v1/things", fmt.Sprintf(`{"n":%d}`, i), "")
		switch {
		case tt.status == 0 && r.err == nil:
			t.Errorf("step %d: status %d, want a connection error", i, r.status)
		case tt.status != 0:
			mustStatus(t, r, tt.status)
		}
		if after, _ := api.counts(); (after > before) != tt.handler {
			t.Errorf("step %d: handler called %d times, want called: %v", i, after-before, tt.handler)
		}
		switch tt.status {
		case 503, 500, 429:
			if e := parseError(t, Altyaa, r); e.code != Altyaa.ErrorCode("POST /v1/things", tt.status) {
				t.Errorf("step %d: code %q", i, e.code)
			}
		case 202:
			if r.header.Get("Location") != "/v1/things/3" || string(r.body) != `{"id":3}` {
				t.Errorf("step %d: the handler's answer was not kept: %q %s", i, r.header.Get("Location"), r.body)
			}
		}
		if tt.status == 429 && r.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q, want 2", r.header.Get("Retry-After"))
		}
		if tt.status == 500 && r.header.Get("Location") != "" {
			t.Error("the 500 after the handler carries the handler's Location")
		}
	}
	mustStatus(t, send(t, s, "GET", "/v1/things/teapot", "", ""), 503)
	mustStatus(t, send(t, s, "GET", "/v1/things/1?x=y", "", ""), 200)

	st := s.Stats()
	calls, created := api.counts()
	if calls != 6 || created != 4 {
		t.Errorf("handler calls, created = %d, %d; want 6, 4", calls, created)
	}
	want := map[string]int{"POST /v1/things": 7, "GET /v1/things/teapot": 1, "GET /v1/things/1": 1}
	if fmt.Sprint(st.Attempts) != fmt.Sprint(want) {
		t.Errorf("Attempts = %v, want %v", st.Attempts, want)
	}
	if st.Requests != 9 || st.Injected != 6 || st.Dropped != 2 || st.ServerErrors != 3 || st.RateLimited != 1 {
		t.Errorf("Requests, Injected, Dropped, ServerErrors, RateLimited = %d, %d, %d, %d, %d; want 9, 6, 2, 3, 1",
			st.Requests, st.Injected, st.Dropped, st.ServerErrors, st.RateLimited)
	}
	if st.StoredWrites != 0 || st.Duplicates != 0 {
		t.Errorf("StoredWrites, Duplicates = %d, %d; a handler's writes are its own", st.StoredWrites, st.Duplicates)
	}

	s.SetScript("GET /v1/things/1", Respond(504))
	mustStatus(t, send(t, s, "GET", "/v1/things/1", "", ""), 504)
	mustStatus(t, send(t, s, "GET", "/v1/things/1", "", ""), 200)
}

// TestHandlerFaults proves a seeded fault mix in front of a handler: every
// attempt is either answered in front (and counted as injected) or by the
// handler, and the same seed gives the same answers.
func TestHandlerFaults(t *testing.T) {
	run := func() (statuses []int, st Stats, calls int) {
		api := &things{}
		s := NewServer(Postato, WithHandler(api), WithFaults(Faults{
			Seed: 5, ServerError: 0.2, RateLimit: 0.1, DropBefore: 0.1, HTML: 0.05, Malformed: 0.05, Huge: 0.05, HugeSize: 4096,
		}))
		defer s.Close()
		for range 100 {
			r := send(t, s, "GET", "/v1/things/1", "", "")
			statuses = append(statuses, r.status) // 0 for an error
		}
		calls, _ = api.counts()
		return statuses, s.Stats(), calls
	}
	statuses, st, calls := run()
	ok := 0
	for _, c := range statuses {
		if c == 200 {
			ok++
		}
	}
	if st.Injected < 20 || calls != st.Requests-st.Injected || ok != calls {
		t.Errorf("Injected %d, Requests %d, handler calls %d, 200s %d: want calls = Requests - Injected = 200s",
			st.Injected, st.Requests, calls, ok)
	}
	again, _, _ := run()
	if fmt.Sprint(again) != fmt.Sprint(statuses) {
		t.Errorf("the same seed gave other answers:\n%v\n%v", statuses, again)
	}
}

// TestHandlerQuota proves a quota in front of a handler: its headers on
// the handler's answers, a 429 in the dialect's envelope past it, and the
// handler not called then.
func TestHandlerQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &things{}
		s := NewPipeServer(Aidelly, WithHandler(api), WithQuota(Quota{Limit: 2, ResetFormat: DeltaSeconds}))
		defer s.Close()
		for _, want := range []string{"1", "0"} {
			r := send(t, s, "GET", "/v1/things/1", "", "")
			mustStatus(t, r, 200)
			if got := r.header.Get("X-RateLimit-Remaining"); got != want || string(r.body) != `{"id":1}` {
				t.Errorf("Remaining = %q, body %s; want %s and the handler's body", got, r.body, want)
			}
		}
		time.Sleep(15 * time.Second)
		r := send(t, s, "GET", "/v1/things/1", "", "")
		mustStatus(t, r, 429)
		if e := parseError(t, Aidelly, r); e.code != "PUBLIC_API_RATE_LIMITED" || r.header.Get("Retry-After") != "45" {
			t.Errorf("429: code %q, Retry-After %q; want PUBLIC_API_RATE_LIMITED, 45 (rolling minute)", e.code, r.header.Get("Retry-After"))
		}
		if calls, _ := api.counts(); calls != 2 {
			t.Errorf("handler calls = %d, want 2", calls)
		}
	})
}

// TestHandlerMounted proves that a Server WithHandler is an http.Handler
// for an httptest.Server, with its faults and counters, and that a
// streaming handler can flush through it.
func TestHandlerMounted(t *testing.T) {
	flushed := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part 1;")
		flushed <- http.NewResponseController(w).Flush()
		io.WriteString(w, "part 2")
	})
	s := NewServer(Altyaa, WithHandler(h), WithScript("GET /stream", HTML(502)))
	defer s.Close()
	ts := httptest.NewServer(s)
	defer ts.Close()
	r := sendWith(t, ts.Client(), ts.URL, "GET", "/stream", "", "")
	mustStatus(t, r, 502)
	if !strings.Contains(string(r.body), "<html>") {
		t.Errorf("body %s, want the proxy's page", r.body)
	}
	r = sendWith(t, ts.Client(), ts.URL, "GET", "/stream", "", "")
	mustStatus(t, r, 200)
	if string(r.body) != "part 1;part 2" {
		t.Errorf("body %q", r.body)
	}
	if err := <-flushed; err != nil {
		t.Errorf("Flush through the server: %v", err)
	}
	if st := s.Stats(); st.Requests != 2 || st.Injected != 1 || st.Attempts["GET /stream"] != 2 {
		t.Errorf("Requests, Injected, Attempts = %d, %d, %v; want 2, 1, 2", st.Requests, st.Injected, st.Attempts)
	}
}

// TestHandlerHijack proves that a handler of the caller's own may take
// its connection over and close it (to drop it, as a server does): the
// client sees the connection closed, not a hang, with or without
// WithExchanges, and the exchange is told with status 0.
func TestHandlerHijack(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		conn.Close()
	})
	for _, exchanges := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var told []Exchange
			opts := []Option{WithHandler(h)}
			if exchanges {
				opts = append(opts, WithExchanges(func(e Exchange) { told = append(told, e) }))
			}
			s := NewPipeServer(Altyaa, opts...)
			defer s.Close()
			c := &http.Client{Transport: s.Transport(), Timeout: time.Minute}
			start := time.Now()
			r := sendWith(t, c, s.URL, "GET", "/v1/drop", "", "")
			if r.err == nil || time.Since(start) != 0 {
				t.Fatalf("exchanges %v: %d, %v after %v; want the connection closed at once", exchanges, r.status, r.err, time.Since(start))
			}
			if exchanges && (len(told) != 1 || told[0].Status != 0) {
				t.Errorf("exchanges told %+v, want one with status 0", told)
			}
		})
	}
}

// TestExchanges proves WithExchanges: every request is told once it is
// done, with its method, path and header and the status answered (0 for
// a dropped connection), on a dialect's server and in front of a handler,
// over a listener and in process.
func TestExchanges(t *testing.T) {
	var mu sync.Mutex
	var got []Exchange
	record := WithExchanges(func(e Exchange) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	})
	take := func() []Exchange {
		mu.Lock()
		defer mu.Unlock()
		g := got
		got = nil
		return g
	}
	check := func(name string, exs []Exchange, method, path string, statuses ...int) {
		t.Helper()
		if len(exs) != len(statuses) {
			t.Fatalf("%s: %d exchanges, want %d: %+v", name, len(exs), len(statuses), exs)
		}
		for i, e := range exs {
			if e.Method != method || e.Path != path || e.Status != statuses[i] {
				t.Errorf("%s: exchange %d = %s %s %d, want %s %s %d", name, i, e.Method, e.Path, e.Status, method, path, statuses[i])
			}
			if e.Header.Get("X-Exchange") != strconv.Itoa(i) {
				t.Errorf("%s: exchange %d: X-Exchange %q, want %d", name, i, e.Header.Get("X-Exchange"), i)
			}
			if e.Arrived.IsZero() || e.Answered.Before(e.Arrived) {
				t.Errorf("%s: exchange %d: arrived %v, answered %v", name, i, e.Arrived, e.Answered)
			}
		}
	}

	// Writes without a key: net/http does not resend them after a drop,
	// so each request is one exchange.
	post := func(c *http.Client, url string, i int) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"text":"hi"}`))
		req.Header.Set("X-Exchange", strconv.Itoa(i))
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	s := NewServer(Altyaa, record, WithRequireIdempotencyKey(false), WithScript(RouteCreatePost, Respond(503), DropBefore(), DropAfter()))
	for i := range 4 {
		post(s.Client(), s.URL+"/v1/posts", i)
	}
	s.Close()
	check("dialect", take(), "POST", "/v1/posts", 503, 0, 0, 201)

	api := &things{}
	h := NewServer(Altyaa, record, WithHandler(api), WithScript("POST /v1/things", Respond(502), DropBefore()))
	defer h.Close()
	for i := range 3 {
		post(h.Client(), h.URL+"/v1/things", i)
	}
	check("handler", take(), "POST", "/v1/things", 502, 0, 201)

	// Mounted on the test's own server: the same.
	mounted := httptest.NewServer(h)
	defer mounted.Close()
	post(mounted.Client(), mounted.URL+"/v1/things", 0)
	check("mounted", take(), "POST", "/v1/things", 201)

	defer func() {
		if recover() == nil {
			t.Error("WithExchanges(nil) did not panic")
		}
	}()
	WithExchanges(nil)
}

// TestCloseWaitsForExchanges proves that Close returns only once the
// requests in progress are told to WithExchanges: a test that reads what
// it was told after Close finds every request there, and no goroutine of
// the server is left running its func.
func TestCloseWaitsForExchanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		told := 0
		s := NewPipeServer(Postato, WithExchanges(func(Exchange) {
			close(entered)
			<-release // the func still running when Close is called
			told++
		}))
		go send(t, s, "GET", "/v1/usage", "", "")
		<-entered
		closed := make(chan struct{})
		go func() {
			s.Close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Error("Close returned before the request in progress was told")
		default:
		}
		close(release)
		<-closed
		if told != 1 {
			t.Errorf("%d exchanges told when Close returned, want 1", told)
		}
	})
}

// TestWrap: Wrap is NewServer(Altyaa, WithHandler(h), WithFaults(f)),
// further options included: the faults answer in front of the handler in
// the Altyaa dialect, the rest reaches it, and a script applies first.
func TestWrap(t *testing.T) {
	api := &things{}
	s := Wrap(api, Faults{Seed: 1, ServerError: 1}, WithScript("GET /v1/things/1", Normal()))
	defer s.Close()
	mustStatus(t, send(t, s, "GET", "/v1/things/1", "", ""), 200) // the script's step
	r := send(t, s, "GET", "/v1/things/1", "", "")
	if r.err != nil || r.status < 500 {
		t.Fatalf("with ServerError 1: %d %v, want a 5xx", r.status, r.err)
	}
	if e := parseError(t, Altyaa, r); e.code == "" {
		t.Errorf("the injected 5xx has no Altyaa envelope: %s", r.body)
	}
	if calls, _ := api.counts(); calls != 1 {
		t.Errorf("handler calls = %d, want 1", calls)
	}
	if st := s.Stats(); st.Requests != 2 || st.Injected != 1 || s.Dialect() != Altyaa {
		t.Errorf("Requests, Injected, Dialect = %d, %d, %v; want 2, 1, altyaa", st.Requests, st.Injected, s.Dialect())
	}

	clean := Wrap(api, Faults{})
	defer clean.Close()
	mustStatus(t, send(t, clean, "POST", "/v1/things", `{"n":1}`, ""), 201)
}

// TestExchangeOfACutBody: the README says of WithExchanges that "a cut
// body's status is the one sent": a success whose body CutBody breaks is
// told as the 200 the client received, not as a dropped connection.
func TestExchangeOfACutBody(t *testing.T) {
	var mu sync.Mutex
	var got []Exchange
	s := NewServer(Altyaa, WithExchanges(func(e Exchange) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}), WithScript(RouteListPosts, CutBody()))
	resp, err := s.Client().Get(s.URL + "/v1/posts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("the cut body read whole")
	}
	resp.Body.Close()
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Status != http.StatusOK {
		t.Errorf("exchanges %+v, want one, with status 200", got)
	}
}

// TestHandlerSlowClientGone proves that a Slow step in front of a handler
// ends when the client goes away, also for a request with a body, as Slow
// says: the handler is not called for a write its client abandoned, and
// the exchange is told as dropped when the client left, not an hour later
// as answered.
func TestHandlerSlowClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &things{}
		var (
			mu  sync.Mutex
			exs []Exchange
		)
		s := NewPipeServer(Altyaa, WithHandler(api), WithScript("POST /v1/things", Slow(time.Hour)),
			WithExchanges(func(e Exchange) { mu.Lock(); exs = append(exs, e); mu.Unlock() }))
		defer s.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/things", strings.NewReader(`{"name":"gone"}`))
		if resp, err := s.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("status %d, want the client's deadline", resp.StatusCode)
		}
		time.Sleep(2 * time.Hour) // past the Slow step, had it not ended
		synctest.Wait()
		if calls, created := api.counts(); calls != 0 || created != 0 {
			t.Errorf("handler calls, things created = %d, %d; want 0, 0 (the client left during the Slow step)", calls, created)
		}
		mu.Lock()
		if len(exs) != 1 || exs[0].Status != 0 || exs[0].Answered.Sub(exs[0].Arrived) > time.Second {
			t.Errorf("exchanges %+v, want one dropped within the client's second", exs)
		}
		mu.Unlock()
		// A request with a body that stays is still answered by the
		// handler after the wait, its body intact.
		s.SetScript("POST /v1/things", Slow(time.Minute))
		r := send(t, s, "POST", "/v1/things", `{"name":"kept"}`, "")
		mustStatus(t, r, http.StatusCreated)
		api.mu.Lock()
		defer api.mu.Unlock()
		if len(api.created) != 1 || api.created[0] != `{"name":"kept"}` {
			t.Errorf("created %q, want the body sent", api.created)
		}
	})
}

// TestExchangeOfAPanickingHandler: a handler of the caller's own that
// panics before it answers (here with http.ErrAbortHandler, which net/http
// does not log) gets its connection closed by net/http, answered directly
// or through a step that keeps its answer (Respond(200)): the client gets
// no response, and the exchange says so with Status 0, not the 200 that
// net/http sends for a handler that returns without writing.
func TestExchangeOfAPanickingHandler(t *testing.T) {
	var (
		mu  sync.Mutex
		exs []Exchange
	)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	s := NewServer(Altyaa, WithHandler(h), WithScript("GET /v1/things/1", Normal(), Respond(200)),
		WithExchanges(func(e Exchange) {
			mu.Lock()
			exs = append(exs, e)
			mu.Unlock()
		}))
	for i := range 2 {
		if r := send(t, s, "GET", "/v1/things/1", "", ""); r.err == nil {
			t.Errorf("request %d: status %d, want the connection closed", i, r.status)
		}
	}
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	// (net/http may resend a GET whose reused connection closed before
	// any answer: every exchange, resends included, is a drop.)
	if len(exs) < 2 {
		t.Fatalf("%d exchanges, want at least 2", len(exs))
	}
	for i, e := range exs {
		if e.Status != 0 {
			t.Errorf("exchange %d: Status %d, want 0 (no answer: the handler panicked)", i, e.Status)
		}
	}
}

// TestExchangeHeaderAsRead proves that an Exchange's Header is the
// request's header as the server read it: neither a handler of
// WithHandler that edits the request's header while it answers, nor a
// caller in process that edits its request after ServeHTTP returns (to
// send it again), changes an exchange already recorded.
func TestExchangeHeaderAsRead(t *testing.T) {
	var (
		mu  sync.Mutex
		exs []Exchange
	)
	record := WithExchanges(func(e Exchange) { mu.Lock(); exs = append(exs, e); mu.Unlock() })
	edits := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization") // a handler that strips credentials before it logs
		r.Header.Set("X-Exchange", "edited")
		w.WriteHeader(http.StatusNoContent)
	})
	s := NewServer(Altyaa, record, WithHandler(edits))
	defer s.Close()
	req, _ := http.NewRequest("GET", s.URL+"/v1/things/1", nil)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("X-Exchange", "0")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	in := NewServer(Altyaa, record)
	defer in.Close()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/v1/usage", nil)
	r.Header.Set("X-Exchange", "0")
	in.ServeHTTP(rec, r)
	r.Header.Set("X-Exchange", "1") // the caller's next request

	s.Close()
	in.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(exs) != 2 {
		t.Fatalf("%d exchanges, want 2", len(exs))
	}
	for i, e := range exs {
		if got := e.Header.Get("X-Exchange"); got != "0" {
			t.Errorf("exchange %d: X-Exchange = %q, want %q", i, got, "0")
		}
	}
	if got := exs[0].Header.Get("Authorization"); got != "Bearer t" {
		t.Errorf("exchange 0: Authorization = %q, want %q", got, "Bearer t")
	}
}

// TestHandlerLatencyKeepsTheCallersRequest proves that a server
// WithHandler that reads a body into memory before a wait (WithLatency)
// leaves the caller's request as it was, as http.Handler asks ("except for
// reading the body, handlers should not modify the provided Request"):
// a caller in process, or a middleware mounting the Server, keeps its own
// Body, while the handler still reads the body whole.
func TestHandlerLatencyKeepsTheCallersRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &things{}
		s := NewPipeServer(Altyaa, WithHandler(api), WithLatency(time.Second))
		defer s.Close()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/things", strings.NewReader(`{"name":"a"}`))
		body := req.Body
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("status = %d, want %d", rec.Code, http.StatusCreated)
		}
		if req.Body != body {
			t.Errorf("the caller's Body = %v, want its own %v", req.Body, body)
		}
		api.mu.Lock()
		defer api.mu.Unlock()
		if len(api.created) != 1 || api.created[0] != `{"name":"a"}` {
			t.Errorf("created %q, want the body sent", api.created)
		}
	})
}
