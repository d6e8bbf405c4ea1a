package resilient

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// TestSuccessTakesNoLibraryLock runs 32 goroutines making successful calls
// (GETs and POSTs) to one host through the default chain (breaker, rate
// limiter, retry budget, call budget) with the mutex profile on, and fails
// if any contended lock was one that the library (or gobreaker, or
// x/time/rate) takes: on a success, no layer takes a lock, the limit of
// attempts in flight (WithMaxInFlight) included when it is not reached,
// nor does the read of a success's body within its attempt
// (WithBufferedResponse). Contention on a
// lock that is taken shows in the profile whenever two goroutines meet on
// it; a lock that is never taken never shows.
//
// The same can be seen by hand, for a benchmark:
//
//	go test -run '^$' -bench 'HappyPath/parallel' -cpu 2 -mutexprofile mutex.out .
//	go tool pprof -top mutex.out
func TestSuccessTakesNoLibraryLock(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))

	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}, "Date": {"Tue, 17 Feb 2026 14:00:00 GMT"}}}
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Half the goroutines write: a key, a write trace and a deadline per
	// call.
	post, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Not parallel: the mutex profile is the process's.
	prev := runtime.SetMutexProfileFraction(1)
	defer runtime.SetMutexProfileFraction(prev)
	withBody := &stubBody{body: `{"data":"ok"}`}
	for _, tr := range []*Transport{New(base), New(base, WithMaxInFlight(64)), New(withBody, WithBufferedResponse(1<<20))} {
		// The host's first call makes its breaker and its partition,
		// under their tables' lock: 32 first calls at once would meet
		// on it. The path under test is a success to a host already
		// known.
		successWorker(t, tr, req, 1)
		successWorker(t, tr, post, 1)
		var wg sync.WaitGroup
		for i := range 32 {
			r := req
			if i%2 == 1 {
				r = post
			}
			wg.Go(func() { successWorker(t, tr, r, 2000) })
		}
		wg.Wait()
	}

	records := make([]runtime.BlockProfileRecord, 256)
	n, ok := runtime.MutexProfile(records)
	for !ok {
		records = make([]runtime.BlockProfileRecord, n+64)
		n, ok = runtime.MutexProfile(records)
	}
	for _, r := range records[:n] {
		frames := stackFrames(r.Stack())
		if !hasFunc(frames, "successWorker") {
			continue // another test's contention
		}
		if fn, lib := libraryLock(frames); lib {
			var b strings.Builder
			for _, f := range frames {
				b.WriteString("\n\t" + f.Function)
			}
			t.Errorf("a success contended on a lock of %s (%d times):%s", fn, r.Count, b.String())
		}
	}
}

// successWorker makes n successful calls; its name marks the profile's
// stacks of this test.
func successWorker(t *testing.T, tr http.RoundTripper, req *http.Request, n int) {
	for range n {
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("RoundTrip = %v, %v", resp, err)
			return
		}
		resp.Body.Close()
	}
}

func stackFrames(pcs []uintptr) []runtime.Frame {
	var frames []runtime.Frame
	it := runtime.CallersFrames(pcs)
	for {
		f, more := it.Next()
		frames = append(frames, f)
		if !more {
			return frames
		}
	}
}

func hasFunc(frames []runtime.Frame, name string) bool {
	for _, f := range frames {
		if strings.HasSuffix(f.Function, "."+name) {
			return true
		}
	}
	return false
}

// libraryLock reports whether the stack of a mutex profile record (the
// unlock that made others wait) is a sync lock released by the library's
// own code, gobreaker's or x/time/rate's, and which function released it.
// Runtime-internal locks (the heap's, the timers') are not the library's,
// nor is the lock of sync.Pool's registry, which the first Get or Put of a
// pool on each processor after a garbage collection takes.
func libraryLock(frames []runtime.Frame) (string, bool) {
	for i, f := range frames {
		if !strings.HasPrefix(f.Function, "sync.") && !strings.HasPrefix(f.Function, "internal/sync.") {
			continue
		}
		if !strings.Contains(f.Function, "Mutex).") {
			continue
		}
		// The first caller outside sync is the code that held the lock.
		for _, c := range frames[i+1:] {
			if strings.HasPrefix(c.Function, "sync.(*Pool).") {
				return c.Function, false
			}
			if strings.HasPrefix(c.Function, "sync.") || strings.HasPrefix(c.Function, "internal/sync.") {
				continue
			}
			lib := strings.HasPrefix(c.Function, "github.com/resilienthttp/resilient.") && !strings.HasSuffix(c.File, "_test.go") ||
				strings.HasPrefix(c.Function, "github.com/sony/gobreaker") ||
				strings.HasPrefix(c.Function, "golang.org/x/time/rate")
			return c.Function, lib
		}
	}
	return "", false
}

// TestLibraryLock checks the classification of mutex profile stacks.
func TestLibraryLock(t *testing.T) {
	frames := func(fns ...string) []runtime.Frame {
		var fs []runtime.Frame
		for _, fn := range fns {
			fs = append(fs, runtime.Frame{Function: fn, File: "x.go"})
		}
		return fs
	}
	tests := []struct {
		frames []runtime.Frame
		want   bool
	}{
		{frames("sync.(*Mutex).Unlock", "github.com/resilienthttp/resilient.(*rateLimiter).lookup", "main.main"), true},
		{frames("sync.(*Mutex).Unlock", "github.com/sony/gobreaker/v2.(*CircuitBreaker[...]).beforeRequest"), true},
		{frames("sync.(*RWMutex).RUnlock", "github.com/resilienthttp/resilient.(*breakerSet).get"), true},
		{frames("internal/sync.(*Mutex).Unlock", "sync.(*Mutex).Unlock", "golang.org/x/time/rate.(*Limiter).reserveN"), true},
		{frames("runtime.unlock2", "runtime.mallocgc", "github.com/resilienthttp/resilient.(*Transport).RoundTrip"), false},
		{frames("sync.(*Mutex).Unlock", "net/http.(*Transport).getConn", "github.com/resilienthttp/resilient.(*classifier).roundTripAttempt"), false},
		{frames("sync.(*Mutex).Unlock", "sync.(*Pool).pinSlow.deferwrap1", "sync.(*Pool).pinSlow", "sync.(*Pool).pin", "sync.(*Pool).Get", "github.com/resilienthttp/resilient.(*call).run"), false},
		{frames("sync.(*Mutex).Unlock", "sync.(*Once).doSlow", "sync.(*Once).Do", "github.com/resilienthttp/resilient.(*Transport).RoundTrip"), true},
	}
	for i, tt := range tests {
		if _, got := libraryLock(tt.frames); got != tt.want {
			t.Errorf("%d: libraryLock = %v, want %v", i, got, tt.want)
		}
	}
}

// TestHappyPathAllocs pins what a call that succeeds at once costs in
// allocations through the default chain, beyond the base's own.
//
// A GET under the call's default budget (WithMaxElapsed), whose context
// has no earlier deadline: one, the attempt's copy of the request, which
// carries the attempt's deadline and own context in the same allocation.
// Without a budget, or under a caller's deadline that ends first: none.
// Under a caller's context that can be canceled and has no deadline (an
// inbound server request's): three, the copy and the attempt's context,
// derived from the caller's by context.WithCancelCause (its cancelCtx and
// its cancel func).
//
// A write: three, whether its host is known to honor keys or not, with the
// call's budget or under a caller's deadline: the keyed header (a map and
// its group); the attempt's request, copied once, in one allocation with
// its attemptExtras (its deadline and own context, the header's values,
// the key's bytes). The write trace that a write needs (to learn whether
// it was written, see needsTrace), and its two hooks, are made once for the Transport's
// pooled attempt state and reused (see attemptState.writeTrace); under a
// caller's trace, which is composed with it, the attempt has its own: two
// more beside those the composing makes. (With an observer, one more: the
// key's own string, see drawKey.) A write the caller keyed itself (its
// Idempotency-Key header), which needs no header of its own: one, the
// attempt's copy, which carries the write trace in the same allocation,
// with or without the call's budget or a caller's deadline.
//
// WithBufferedResponse adds nothing to a call whose response has no body
// to read, nor to a write it may not resend; a body it reads adds two:
// its bytes, and the body that serves them to the caller.
func TestHappyPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	get, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inbound, stop := context.WithCancel(context.Background())
	defer stop()
	post, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyed := post.Clone(context.Background())
	keyed.Header.Set("Idempotency-Key", "post-1")
	withBody := &stubBody{body: `{"data":"ok"}`}
	// A virtual host behind an address, its name spelled in capitals (a
	// configuration's), and an IPv6 server's own name as URL.Hostname
	// gives it: their state is found as a plain URL's, at no cost.
	vhost, err := http.NewRequest(http.MethodGet, "https://10.0.0.1:8443/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	vhost.Host = "API.Internal"
	hostname, err := http.NewRequest(http.MethodGet, "https://[2001:db8::1]:8443/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	hostname.Host = hostname.URL.Hostname()
	for _, tc := range []struct {
		name string
		tr   *Transport
		req  *http.Request
		want float64
		base http.RoundTripper
	}{
		{"get", New(base), get, 1, base},
		{"get-nodeadline", New(base, WithMaxElapsed(0)), get, 0, base},
		{"get-ctxdeadline", New(base), get.WithContext(ctx), 0, base},
		{"get-cancelable", New(base), get.WithContext(inbound), 3, base},
		{"post-unproven", New(base), post, 3, base},
		{"post-unproven-ctxdeadline", New(base), post.WithContext(ctx), 3, base},
		{"post-keyed-host", New(base, WithKeyHonoringHosts("api.example.com")), post, 3, base},
		{"post-keyed-host-ctxdeadline", New(base, WithKeyHonoringHosts("api.example.com")), post.WithContext(ctx), 3, base},
		{"post-callerkey", New(base), keyed, 1, base},
		{"post-callerkey-nodeadline", New(base, WithMaxElapsed(0)), keyed, 1, base},
		{"post-callerkey-ctxdeadline", New(base), keyed.WithContext(ctx), 1, base},
		// The per-host limit takes and gives back its slot without an
		// allocation.
		{"get-vhost", New(base), vhost, 1, base},
		{"get-vhost-maxinflight", New(base, WithMaxInFlight(4)), vhost, 1, base},
		{"get-ipv6-hostname", New(base), hostname, 1, base},
		{"get-maxinflight", New(base, WithMaxInFlight(4)), get, 1, base},
		{"get-nodeadline-maxinflight", New(base, WithMaxElapsed(0), WithMaxInFlight(4)), get, 0, base},
		{"post-unproven-maxinflight", New(base, WithMaxInFlight(4)), post, 3, base},
		{"get-bufferedresponse-nobody", New(base, WithBufferedResponse(1<<20)), get, 1, base},
		{"post-unproven-bufferedresponse", New(withBody, WithBufferedResponse(1<<20)), post, 3, withBody},
		{"get-bufferedresponse-off", New(withBody), get, 1, withBody},
		{"get-bufferedresponse", New(withBody, WithBufferedResponse(1<<20)), get, 3, withBody},
	} {
		bare := testing.AllocsPerRun(1000, func() { roundTripOK(t, tc.base, tc.req) })
		roundTripOK(t, tc.tr, tc.req) // the pools
		if n := testing.AllocsPerRun(1000, func() { roundTripOK(t, tc.tr, tc.req) }) - bare; n != tc.want {
			t.Errorf("%s: a call allocates %v times beyond the base, want %v", tc.name, n, tc.want)
		}
	}
}

// stubBody answers every request 200 with body, of known length, in a
// body of its own.
type stubBody struct{ body string }

func (s *stubBody) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(s.body)),
		ContentLength: int64(len(s.body)), Request: req}, nil
}

// TestDeadlineBodySize pins the size of a deadlineBody, a GET's one
// allocation under the call's budget: at most 512 bytes, the largest size
// class whose objects the runtime allocates without a malloc header (one
// byte more and it takes the 576-byte class, with a header: about 40 ns a
// call, measured in bench/'s workload 1).
func TestDeadlineBodySize(t *testing.T) {
	if n := unsafe.Sizeof(deadlineBody{}); n > 512 {
		t.Errorf("a deadlineBody is %d bytes, want at most 512", n)
	}
}
