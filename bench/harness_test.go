package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// These tests check the harness: that every peer is configured as the
// benchmarks claim, and that the servers inject the faults and count what
// the benchmarks report.

func TestPeersHappyPath(t *testing.T) {
	srv := newServer(okHandler)
	defer srv.Close()
	for _, p := range allPeers {
		t.Run(p.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://api.example.test"+apiPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := happyCall(p.build(newStubTransport(), defaultWaits), req); err != nil {
				t.Errorf("over the stub: %v", err)
			}
			tr := newTransport()
			defer tr.CloseIdleConnections()
			var ids callCounter
			mustOK(t, call(p.build(tr, defaultWaits), http.MethodGet, srv.URL+apiPath, nil, ids.next()))
		})
	}
}

func TestStubAnswer(t *testing.T) {
	resp, err := (&http.Client{Transport: newStubTransport()}).Get("http://api.example.test" + apiPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != string(okBody) || resp.StatusCode != http.StatusOK {
		t.Errorf("stub = %d %q, %v; want 200 %q", resp.StatusCode, body, err, okBody)
	}
}

// TestPeersRetryBudget checks that, against a server in an outage, the
// configurations without a breaker make 1 + 5 attempts, bare makes one, and
// those with a breaker at most six.
func TestPeersRetryBudget(t *testing.T) {
	for _, p := range allPeers {
		t.Run(p.name, func(t *testing.T) {
			srv := newServer(outageHandler)
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			var ids callCounter
			o := call(p.build(tr, noWaits), http.MethodGet, srv.URL+apiPath, nil, ids.next())
			got := srv.attempts.Load()
			switch {
			case p.name == nameBare:
				if got != 1 || o.status != http.StatusServiceUnavailable {
					t.Errorf("attempts = %d, status %d; want 1 and 503", got, o.status)
				}
			case p.breaker:
				if got < 1 || got > 1+maxRetries {
					t.Errorf("attempts = %d, want 1 to %d", got, 1+maxRetries)
				}
			default:
				if got != 1+maxRetries {
					t.Errorf("attempts = %d, want %d", got, 1+maxRetries)
				}
			}
			if o.ok() {
				t.Errorf("call succeeded against a server in an outage")
			}
		})
	}
}

func TestOneRetryHandler(t *testing.T) {
	srv := newServer(oneRetryHandler())
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	var ids callCounter
	if o := call(bare(tr, noWaits), http.MethodGet, srv.URL, nil, "a"); o.status != http.StatusServiceUnavailable {
		t.Errorf("first attempt of a: status %d, want 503", o.status)
	}
	if o := call(bare(tr, noWaits), http.MethodGet, srv.URL, nil, "b"); o.status != http.StatusServiceUnavailable {
		t.Errorf("first attempt of b: status %d, want 503", o.status)
	}
	if o := call(bare(tr, noWaits), http.MethodGet, srv.URL, nil, "a"); o.status != http.StatusOK {
		t.Errorf("second attempt of a: status %d, want 200", o.status)
	}
	for _, p := range peers(retryingWithoutBreaker) {
		t.Run(p.name, func(t *testing.T) {
			before := srv.attempts.Load()
			mustOK(t, call(p.build(tr, noWaits), http.MethodGet, srv.URL, nil, ids.next()))
			if got := srv.attempts.Load() - before; got != 2 {
				t.Errorf("attempts = %d, want 2", got)
			}
		})
	}
}

// TestConnectionCount checks the connection counter both ways: a library
// that drains what it retries past reuses its connection, and one that
// closes it unread opens one per call.
func TestConnectionCount(t *testing.T) {
	const calls = 20
	for _, tc := range []struct {
		p        peer
		min, max int64
	}{
		{peer{name: nameRetryableClient, build: retryableClient}, 1, 2},
		{peer{name: nameHeimdall, build: heimdallClient}, calls, calls + 1},
	} {
		t.Run(tc.p.name, func(t *testing.T) {
			srv := newServer(oneRetryHandler())
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := tc.p.build(tr, noWaits)
			var ids callCounter
			for range calls {
				mustOK(t, call(do, http.MethodGet, srv.URL, nil, ids.next()))
			}
			if got := srv.conns.Load(); got < tc.min || got > tc.max {
				t.Errorf("connections = %d, want %d to %d", got, tc.min, tc.max)
			}
		})
	}
}

func TestFlakyHandlerShare(t *testing.T) {
	h := flakyHandler(flakyShare)
	const n = 10000
	failed := 0
	for range n {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodGet, apiPath, nil))
		switch w.Code {
		case http.StatusServiceUnavailable:
			failed++
		case http.StatusOK:
		default:
			t.Fatalf("status %d", w.Code)
		}
	}
	if failed < n*19/100 || failed > n*21/100 {
		t.Errorf("%d of %d attempts failed, want about 20%%", failed, n)
	}
}

func TestWriteStore(t *testing.T) {
	store := newWriteStore(0) // never drops
	srv := newServer(store.ServeHTTP)
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	post := func(id, key string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(callHeader, id)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d, want 201", resp.StatusCode)
		}
	}
	post("1", "k1")
	post("1", "k1") // a retry with its key: deduplicated
	post("2", "")
	if got := store.duplicates(); got != 0 {
		t.Errorf("duplicates = %d after a keyed retry, want 0", got)
	}
	post("2", "") // a retry without a key: stored again
	post("3", "k3")
	post("3", "k3b") // a new key: a new write
	if got := store.duplicates(); got != 2 {
		t.Errorf("duplicates = %d, want 2", got)
	}
}

func TestWriteStoreDropsFirstAttempts(t *testing.T) {
	store := newWriteStore(flakyShare)
	srv := newServer(store.ServeHTTP)
	defer srv.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	do := bare(tr, noWaits)
	const calls = 500
	failed := 0
	for i := range calls {
		id := strconv.Itoa(i)
		if !call(do, http.MethodPost, srv.URL, writeBody, id).ok() {
			failed++
			// The retry of a dropped call is never dropped.
			mustOK(t, call(do, http.MethodPost, srv.URL, writeBody, id))
		}
	}
	if failed != store.dropped {
		t.Errorf("%d calls failed, the server dropped %d", failed, store.dropped)
	}
	if failed < calls*15/100 || failed > calls*25/100 {
		t.Errorf("%d of %d first attempts dropped, want about 20%%", failed, calls)
	}
	if got := store.duplicates(); got != failed {
		t.Errorf("duplicates = %d, want one per retried write without a key (%d)", got, failed)
	}
}

func TestPercentile(t *testing.T) {
	ds := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 99, 0},
		{ds(5), 99, 5},
		{ds(3, 1, 2), 50, 2},
		{ds(3, 1, 2), 99, 3},
		{ds(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 90, 9},
		{ds(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 100, 10},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

// TestUploadStub checks workload 7's setting: every configuration sends the
// whole 1 MiB body, which has no GetBody, and gets the stub's 200.
func TestUploadStub(t *testing.T) {
	data := make([]byte, uploadSize)
	for _, p := range allPeers {
		t.Run(p.name, func(t *testing.T) {
			stub := &uploadStub{buf: make([]byte, 32<<10)}
			if _, err := timeUploads(p.build(stub, defaultWaits), data, 1); err != nil {
				t.Fatal(err)
			}
			if stub.read != uploadSize {
				t.Errorf("the stub read %d bytes, want %d", stub.read, uploadSize)
			}
		})
	}
}

// TestBreakersAlike checks that every configuration with a circuit breaker
// is given the same breaker policy as ours (trip at 50% failures of at
// least 20 attempts): it stays closed when 20% of attempts fail, so nearly
// every call succeeds, and it trips in an outage, so the calls make far
// fewer than 1 + 5 attempts each.
func TestBreakersAlike(t *testing.T) {
	const calls = 200
	for _, p := range peers(func(p peer) bool { return p.breaker }) {
		t.Run(p.name+"/flaky", func(t *testing.T) {
			srv := newServer(flakyHandler(flakyShare))
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, scaledWaitsNoBudget)
			var ids callCounter
			ok := 0
			for range calls {
				if call(do, http.MethodGet, srv.URL+apiPath, nil, ids.next()).ok() {
					ok++
				}
			}
			if ok < calls*99/100 {
				t.Errorf("%d of %d calls succeeded with 20%% of attempts failing, want at least 99%%: the breaker tripped", ok, calls)
			}
		})
		t.Run(p.name+"/outage", func(t *testing.T) {
			srv := newServer(outageHandler)
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, scaledWaits)
			var ids callCounter
			for range calls {
				call(do, http.MethodGet, srv.URL+apiPath, nil, ids.next())
			}
			if got, limit := srv.attempts.Load(), int64(calls/2); got > limit {
				t.Errorf("%d attempts for %d calls in an outage, want at most %d: the breaker never tripped", got, calls, limit)
			}
		})
	}
}
