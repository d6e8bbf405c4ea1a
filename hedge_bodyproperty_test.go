package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestHedgedWriteBodiesProperty draws, for many seeds, a hedged POST and a
// host whose connections misbehave, and checks what the server gets: every
// request body it read whole (its ContentLength bytes) is the caller's
// bytes, a 201 the caller gets is the answer to such a body, the call ends
// within its bounds and leaves no goroutine behind (synctest.Test fails on
// one still blocked), and a write without a key reaches the server whole
// at most once. The bodies come from a GetBody that rewinds one shared
// source (the careless `f.Seek(0, 0); return f`), one that makes fresh
// readers, http.NewRequest's, or none (the body captured as it is sent);
// the connections dial slowly or hang, are refused, read the body slowly
// or fail partway; copies are refused by WithMaxInFlight or WithRateLimit;
// GetBody is slow, fails or panics (the call then panics with it, or ends
// as it would have, when another copy decided the attempt first), the
// attempt's Read may be waiting for it (see checkedBody.waitForCopy); a
// request may go over HTTP/2 (its body written on a goroutine of its own,
// closed on another as it is canceled) or carry Expect: 100-continue.
func TestHedgedWriteBodiesProperty(t *testing.T) {
	seeds := 10000
	if testing.Short() {
		seeds = 500
	}
	for seed := range seeds {
		sc := drawHedgeBodyScenario(uint64(seed))
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runHedgeBodyScenario(t, sc) })
		})
	}
}

// Kinds of the request body of a hedgeBodyScenario.
const (
	bodySharedSource = iota // the caller's GetBody rewinds one source it hands out
	bodyFreshReaders        // the caller's GetBody makes a new reader each time
	bodyNewRequest          // http.NewRequest's GetBody
	bodyNoGetBody           // none: the body is captured as it is sent
	bodySharedFile          // as bodySharedSource, a source not in memory (a file)
	bodyKinds
)

// hedgeConn is how one request reaches the fake server: its dial, the
// reading of its body, its answer.
type hedgeConn struct {
	dial     time.Duration // before the body is read
	hang     bool          // the dial hangs until the request is canceled
	deaf     bool          // the dial does not watch the request's context
	refused  bool          // the dial is refused: nothing is read
	chunk    int           // bytes per Read of the body
	pace     time.Duration // between two Reads
	cutAfter int           // the connection is lost after this many bytes; -1: never
	status   int           // 201 or 503
	answer   time.Duration // after the body, before the answer
	early    int           // the server answers 503 after this many bytes, read on after; -1: never
	late     time.Duration // a request canceled while its body is sent returns at once, and its writer reads once more this late; 0: it does not
	// h2: the body is written on a goroutine of its own, as HTTP/2's
	// client does: a request canceled returns at once, and its body is
	// closed on another goroutine, while a Read of it may be in progress.
	h2 bool
	// expect: the request carries Expect: 100-continue: its body is read
	// only once the server's 100 Continue comes, after cont, unless the
	// server answers with final (a 417 or a 503) first: the body is then
	// closed unread.
	expect bool
	cont   time.Duration
	final  int
}

// hedgeBodyScenario is one draw of TestHedgedWriteBodiesProperty.
type hedgeBodyScenario struct {
	seed      uint64
	data      []byte
	kind      int
	keyless   bool // no idempotency key: the write is not hedged, and not sent twice
	maxHedges int
	delay     time.Duration
	inFlight  int           // WithMaxInFlight; 0 for none
	pace      time.Duration // WithRateLimit(rate.Every(pace), 1); 0 for none
	getDelay  []time.Duration
	getFail   []bool
	getPanic  []bool        // GetBody panics, rather than return
	cancelAt  time.Duration // the caller cancels the call then; 0: never
	conns     []hedgeConn   // by the order requests reach the base; past the end: a prompt 201
}

func drawHedgeBodyScenario(seed uint64) hedgeBodyScenario {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+r.IntN(hi-lo+1)) * time.Millisecond }
	sc := hedgeBodyScenario{seed: seed, kind: r.IntN(bodyKinds), maxHedges: 1 + r.IntN(3), delay: ms(5, 15)}
	sc.data = make([]byte, 8+r.IntN(40))
	for i := range sc.data {
		sc.data[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
	}
	sc.keyless = r.IntN(8) == 0
	switch r.IntN(4) {
	case 0:
		sc.inFlight = 1 + r.IntN(2)
	case 1:
		sc.pace = ms(5, 25)
	}
	for range 12 {
		var d time.Duration
		switch r.IntN(12) {
		case 0, 1, 2:
			d = ms(1, 20)
		case 3:
			d = ms(100, 1500)
		}
		sc.getDelay = append(sc.getDelay, d)
		sc.getFail = append(sc.getFail, r.IntN(8) == 0)
	}
	if r.IntN(6) == 0 {
		sc.cancelAt = ms(1, 400)
	}
	for range 8 + r.IntN(8) {
		c := hedgeConn{chunk: 1 + r.IntN(len(sc.data)), cutAfter: -1, status: http.StatusCreated, early: -1}
		if r.IntN(6) == 0 {
			c.early = r.IntN(len(sc.data))
		}
		switch r.IntN(6) {
		case 0:
			c.hang = true
			c.deaf = r.IntN(3) == 0
			c.dial = ms(20, 200) // a deaf hang ends after it
		case 1:
			c.refused = true
			c.dial = ms(0, 10)
		default:
			c.dial = ms(0, 30)
			c.deaf = r.IntN(4) == 0
		}
		if r.IntN(2) == 0 {
			c.pace = ms(1, 10)
		}
		if r.IntN(5) == 0 {
			c.cutAfter = r.IntN(len(sc.data) + 1) // len(data): lost once sent whole
		}
		if r.IntN(4) == 0 {
			c.status = http.StatusServiceUnavailable
		}
		if r.IntN(3) == 0 {
			c.late = ms(0, 5)
		}
		c.answer = ms(0, 30)
		sc.conns = append(sc.conns, c)
	}
	// Drawn last, so that the draws above stay those of their seed.
	for i := range sc.getDelay {
		sc.getPanic = append(sc.getPanic, !sc.getFail[i] && r.IntN(24) == 0)
	}
	for i := range sc.conns {
		c := &sc.conns[i]
		c.h2 = r.IntN(4) == 0
		if r.IntN(4) == 0 {
			c.expect, c.cont = true, ms(0, 30)
			switch r.IntN(4) {
			case 0:
				c.final = http.StatusExpectationFailed
			case 1:
				c.final = http.StatusServiceUnavailable
			}
		}
	}
	return sc
}

// String describes the scenario, for a failure's message.
func (sc hedgeBodyScenario) String() string {
	kinds := [...]string{"shared source", "fresh readers", "http.NewRequest", "no GetBody", "shared file"}
	return fmt.Sprintf("seed %d: %s body of %d bytes, keyless %v, MaxHedges %d, Delay %v, MaxInFlight %d, pace %v, cancel at %v, GetBody delays %v fails %v panics %v, conns %+v",
		sc.seed, kinds[sc.kind], len(sc.data), sc.keyless, sc.maxHedges, sc.delay, sc.inFlight, sc.pace, sc.cancelAt, sc.getDelay, sc.getFail, sc.getPanic, sc.conns)
}

// hedgeBodyServer is the fake server of a hedgeBodyScenario: a base
// RoundTripper that reads a request body as net/http's HTTP/1 client
// writes it (its ContentLength bytes, then a Read that checks that it
// ends there, then its Close) and records the bodies it got whole.
type hedgeBodyServer struct {
	sc    *hedgeBodyScenario
	mu    sync.Mutex
	calls int
	whole map[int]string // by call: the body the server got whole
}

// sleepCtx waits d, or until ctx is done unless deaf; it returns ctx's error
// when the request was canceled.
func sleepCtx(ctx context.Context, d time.Duration, deaf bool) error {
	if deaf {
		time.Sleep(d)
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RoundTrip serves one request as its connection, by the order the
// requests come, is drawn.
func (s *hedgeBodyServer) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	i := s.calls
	s.calls++
	s.mu.Unlock()
	c := hedgeConn{chunk: 64, cutAfter: -1, status: http.StatusCreated, early: -1}
	if i < len(s.sc.conns) {
		c = s.sc.conns[i]
	}
	ctx := r.Context()
	own := r.Body != nil && (c.early < 0 || c.hang || c.refused)
	defer func() {
		if own {
			r.Body.Close()
		}
	}()
	switch {
	case c.hang && !c.deaf:
		<-ctx.Done()
		return nil, ctx.Err()
	case c.refused:
		if err := sleepCtx(ctx, c.dial, false); err != nil {
			return nil, err
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connection refused"}}
	}
	if err := sleepCtx(ctx, c.dial, c.deaf); err != nil {
		if r.Body != nil && c.early >= 0 {
			r.Body.Close()
		}
		return nil, err
	}
	if c.expect && r.Body != nil {
		// Expect: 100-continue: no Read before the server's 100
		// Continue; a final answer before it leaves the body unread,
		// and closed.
		err := sleepCtx(ctx, c.cont, false)
		if err != nil || c.final != 0 {
			own = true
			if err != nil {
				return nil, err
			}
			c.status = c.final
			return s.answer(r, i, c)
		}
	}
	if c.early >= 0 && r.Body != nil {
		// The server answers 503 before it has read the body; the
		// transport sends the rest of it on, as net/http's writer does,
		// until the request ends.
		go func(c hedgeConn) {
			own := true
			defer func() {
				if own {
					r.Body.Close()
				}
			}()
			if resp, err := s.readBody(r, i, c, &own); err == nil {
				resp.Body.Close()
			}
		}(c)
		c.status = http.StatusServiceUnavailable
		return s.answer(r, i, c)
	}
	if c.h2 && r.Body != nil {
		return s.stream(r, i, c, &own)
	}
	return s.readBody(r, i, c, &own)
}

// stream serves request i as HTTP/2's client sends it: its body is
// written on a goroutine of its own, and a request canceled returns at
// once, its body closed on another goroutine (the stream's abort), once,
// while the writer's Read may still be in progress. own is cleared: the
// body is closed here.
func (s *hedgeBodyServer) stream(r *http.Request, i int, c hedgeConn, own *bool) (*http.Response, error) {
	*own = false
	var once sync.Once
	closeBody := func() { once.Do(func() { r.Body.Close() }) }
	type result struct {
		resp *http.Response
		err  error
	}
	res := make(chan result, 1)
	c.late = 0 // the writer is this goroutine
	go func() {
		mine := true
		resp, err := s.readBody(r, i, c, &mine)
		closeBody()
		res <- result{resp, err}
	}()
	select {
	case x := <-res:
		return x.resp, x.err
	case <-r.Context().Done():
		go closeBody()
		return nil, r.Context().Err()
	}
}

// readBody reads r's body as net/http's writer does, records it when the
// server got it whole, and answers.
// A request canceled while its body is sent may hand the body over to a
// writer that reads it once more, late, and closes it: own is then cleared.
func (s *hedgeBodyServer) readBody(r *http.Request, i int, c hedgeConn, own *bool) (*http.Response, error) {
	ctx := r.Context()
	var got []byte
	if r.Body != nil {
		buf := make([]byte, c.chunk)
		for int64(len(got)) < r.ContentLength || r.ContentLength <= 0 {
			if c.cutAfter >= 0 && len(got) >= c.cutAfter {
				return nil, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
			}
			q := buf
			if r.ContentLength > 0 {
				q = buf[:min(int64(len(buf)), r.ContentLength-int64(len(got)))]
			}
			n, err := r.Body.Read(q)
			got = append(got, q[:n]...)
			if err == io.EOF && r.ContentLength <= 0 {
				break
			}
			if err != nil {
				return nil, err
			}
			if c.pace > 0 {
				if err := sleepCtx(ctx, c.pace, false); err != nil {
					if c.late > 0 {
						// net/http's writer, in a goroutine of its
						// own, may be in a Read as the request ends.
						*own = false
						go func() {
							time.Sleep(c.late)
							r.Body.Read(buf)
							r.Body.Close()
						}()
					}
					return nil, err
				}
			}
		}
		if r.ContentLength > 0 {
			// The server has the request whole.
			s.mu.Lock()
			s.whole[i] = string(got)
			s.mu.Unlock()
			if c.cutAfter >= 0 {
				return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			}
			// net/http reads on, to check that the body ends there.
			if n, err := r.Body.Read(make([]byte, 1)); n > 0 || err != io.EOF {
				if err == nil {
					err = errors.New("http: ContentLength with a longer Body")
				}
				return nil, err
			}
		} else {
			s.mu.Lock()
			s.whole[i] = string(got)
			s.mu.Unlock()
		}
	}
	if c.early >= 0 {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil // not the caller's
	}
	return s.answer(r, i, c)
}

// answer answers request i.
func (s *hedgeBodyServer) answer(r *http.Request, i int, c hedgeConn) (*http.Response, error) {
	ctx := r.Context()
	if err := sleepCtx(ctx, c.answer, false); err != nil {
		return nil, err
	}
	h := http.Header{"X-Call": {fmt.Sprint(i)}}
	body := io.NopCloser(strings.NewReader(`{"id":1}`))
	if c.status != http.StatusCreated {
		body = io.NopCloser(strings.NewReader(`{"error":"unavailable"}`))
	}
	return &http.Response{StatusCode: c.status, Header: h, Body: body, Request: r, ContentLength: -1}, nil
}

// errGetBodyExploded is the panic of a GetBody of a hedgeBodyScenario.
var errGetBodyExploded = errors.New("GetBody exploded")

// opaqueReader hides the type of a reader, so that a body is not taken
// for one in memory.
type opaqueReader struct{ io.Reader }

func runHedgeBodyScenario(t *testing.T, sc hedgeBodyScenario) {
	srv := &hedgeBodyServer{sc: &sc, whole: map[int]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if sc.cancelAt > 0 {
		time.AfterFunc(sc.cancelAt, cancel)
	}
	if !sc.keyless {
		ctx = WithIdempotencyKey(ctx, "k1")
	}
	const url = "http://api.test/v1/posts"
	var req *http.Request
	var gmu sync.Mutex
	gets := 0
	getBody := func(make func() io.ReadCloser) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			gmu.Lock()
			i := gets
			gets++
			gmu.Unlock()
			if i < len(sc.getDelay) {
				time.Sleep(sc.getDelay[i])
				if sc.getFail[i] {
					return nil, errors.New("GetBody: file vanished")
				}
				if sc.getPanic[i] {
					panic(errGetBodyExploded)
				}
			}
			return make(), nil
		}
	}
	switch sc.kind {
	case bodySharedSource:
		src := bytes.NewReader(sc.data)
		req, _ = http.NewRequestWithContext(ctx, "POST", url, io.NopCloser(src))
		req.GetBody = getBody(func() io.ReadCloser {
			src.Seek(0, io.SeekStart)
			return io.NopCloser(src)
		})
	case bodySharedFile:
		src := bytes.NewReader(sc.data)
		req, _ = http.NewRequestWithContext(ctx, "POST", url, io.NopCloser(opaqueReader{src}))
		req.GetBody = getBody(func() io.ReadCloser {
			src.Seek(0, io.SeekStart)
			return io.NopCloser(opaqueReader{src})
		})
	case bodyFreshReaders:
		req, _ = http.NewRequestWithContext(ctx, "POST", url, io.NopCloser(opaqueReader{bytes.NewReader(sc.data)}))
		req.GetBody = getBody(func() io.ReadCloser { return io.NopCloser(opaqueReader{bytes.NewReader(sc.data)}) })
	case bodyNewRequest:
		req, _ = http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(sc.data))
	case bodyNoGetBody:
		req, _ = http.NewRequestWithContext(ctx, "POST", url, io.NopCloser(opaqueReader{bytes.NewReader(sc.data)}))
	}
	req.ContentLength = int64(len(sc.data))

	const maxElapsed = 3 * time.Second
	opts := []Option{
		WithHedging(Hedging{Delay: sc.delay, MaxHedges: sc.maxHedges}),
		WithAttemptTimeout(time.Second), WithMaxElapsed(maxElapsed),
	}
	if sc.inFlight > 0 {
		opts = append(opts, WithMaxInFlight(sc.inFlight))
	}
	if sc.pace > 0 {
		opts = append(opts, WithRateLimit(rate.Every(sc.pace), 1))
	}
	tr := New(srv, opts...)
	t0 := time.Now()
	var resp *http.Response
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				if p != errGetBodyExploded {
					panic(p)
				}
				err = errGetBodyExploded // the caller's GetBody's, handed on
			}
		}()
		resp, err = tr.RoundTrip(req)
	}()
	d := time.Since(t0)
	if (resp == nil) == (err == nil) && err != errGetBodyExploded {
		t.Fatalf("%v\nRoundTrip = %v, %v; want exactly one non-nil", sc, resp, err)
	}
	call := -1
	if resp != nil {
		fmt.Sscan(resp.Header.Get("X-Call"), &call)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(time.Minute) // the copies still in flight end
	synctest.Wait()

	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, b := range srv.whole {
		if b != string(sc.data) {
			t.Errorf("%v\nrequest %d reached the server whole with body %q, want %q (RoundTrip: %v)", sc, i, b, sc.data, err)
		}
	}
	if resp != nil && resp.StatusCode == http.StatusCreated {
		if b, ok := srv.whole[call]; !ok || b != string(sc.data) {
			t.Errorf("%v\nthe call got 201 from request %d, whose body the server got as %q (whole: %v), want %q", sc, call, b, ok, sc.data)
		}
	}
	// A plain client's call ends once the base returns; a deaf dial
	// holds it at most 200ms past the call's budget, and a retry's
	// GetBody begun within it (the caller's code) as long as it runs.
	if limit := maxElapsed + 200*time.Millisecond + slices.Max(sc.getDelay); d > limit {
		t.Errorf("%v\nthe call took %v, want at most %v (RoundTrip: %v)", sc, d, limit, err)
	}
	if sc.keyless && len(srv.whole) > 1 {
		t.Errorf("%v\na write without a key reached the server whole %d times, want at most once (RoundTrip: %v)", sc, len(srv.whole), err)
	}
}
