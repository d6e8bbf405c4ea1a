package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

func TestCaptureBody(t *testing.T) {
	payload := strings.Repeat("abcdefghij", 10) // 100 bytes
	src := newTrackedBody(payload)
	c := &captureBody{src: src, limit: 100}

	r1 := c.reader()
	buf := make([]byte, 30)
	if n, err := io.ReadFull(r1, buf); n != 30 || err != nil || string(buf) != payload[:30] {
		t.Fatalf("first reader: %d %v %q", n, err, buf)
	}
	r1.Close()
	if src.isClosed() {
		t.Error("closing an attempt's reader closed the caller's body")
	}
	if _, err := r1.Read(buf); !errors.Is(err, errBodyClosed) {
		t.Errorf("reader after its Close: err %v, want errBodyClosed", err)
	}

	r2, err := c.replay(context.Background(), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Read(buf); !errors.Is(err, errBodyDetached) {
		t.Errorf("old reader after replay: err %v, want errBodyDetached", err)
	}
	got, err := io.ReadAll(iotestHalfReader{r2})
	if string(got) != payload || err != nil {
		t.Fatalf("replayed reader = %q, %v; want the whole payload", got, err)
	}
	// Another replay after the source ended: served from the capture alone.
	r3, err := c.replay(context.Background(), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r3); string(got) != payload || err != nil {
		t.Fatalf("third reader = %q, %v", got, err)
	}
	if !c.replayable() {
		t.Error("a body of exactly the limit is not replayable")
	}

	// One byte over the limit: the capture is dropped and replay refused.
	c = &captureBody{src: newTrackedBody(payload + "!"), limit: 100}
	r := c.reader()
	if got, _ := io.ReadAll(r); string(got) != payload+"!" {
		t.Fatalf("first reader over the limit = %q", got)
	}
	if c.replayable() {
		t.Error("replayable after passing the limit")
	}
	if _, err := c.replay(context.Background(), nil, time.Time{}); !errors.Is(err, errBodyNotReplayable) {
		t.Errorf("replay over the limit: err %v, want errBodyNotReplayable", err)
	}
	if c.buf != nil {
		t.Errorf("capture kept %d bytes after passing the limit", len(c.buf))
	}
}

// iotestHalfReader reads at most half of what is asked, to exercise
// partial reads.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) { return h.r.Read(p[:(len(p)+1)/2]) }

func TestCaptureBodyZeroLimit(t *testing.T) {
	c := &captureBody{src: newTrackedBody("x"), limit: 0}
	if !c.replayable() {
		t.Error("an unread body is not replayable")
	}
	io.ReadAll(c.reader())
	if c.replayable() {
		t.Error("replayable after a byte was sent with a zero limit")
	}
}

func TestCaptureBodyConcurrentReaders(t *testing.T) {
	// A transport may still read an attempt's body from its own goroutine
	// while the next attempt starts: the old reader stops, the new one
	// sees every byte.
	payload := bytes.Repeat([]byte("0123456789"), 5000)
	for range 50 {
		c := &captureBody{src: io.NopCloser(bytes.NewReader(payload)), limit: int64(len(payload))}
		r1 := c.reader()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 7)
			for {
				if _, err := r1.Read(buf); err != nil {
					return
				}
			}
		}()
		r2, err := c.replay(context.Background(), nil, time.Time{})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		got, err := io.ReadAll(r2)
		wg.Wait()
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("replayed reader: %d bytes, %v; want %d bytes", len(got), err, len(payload))
		}
	}
}

func TestReplayBodyWithoutBody(t *testing.T) {
	for _, body := range []io.ReadCloser{nil, http.NoBody} {
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		req.Body = body
		var b replayBody
		b.init(req, 10, math.MaxInt64)
		if first, same := b.first(); first != body || !same || !b.replayable() {
			t.Errorf("%v: first() is not the caller's body", body)
		}
		if r, err := b.next(context.Background(), nil, time.Time{}); r != body || err != nil {
			t.Errorf("%v: next() = %v, %v", body, r, err)
		}
		b.close()
	}
}

func TestReplayBodyGetBody(t *testing.T) {
	req, _ := http.NewRequest("PUT", "http://api.test/", strings.NewReader("payload"))
	orig := req.Body
	var b replayBody
	b.init(req, 1, math.MaxInt64)
	if b.cap != nil {
		t.Fatal("a body with GetBody is captured")
	}
	if first, own := b.first(); first != orig || !own {
		t.Error("first() does not hand over the caller's in-memory body itself")
	}
	req.Body = io.NopCloser(iotest.OneByteReader(strings.NewReader("payload"))) // not known to be in memory
	orig = req.Body
	b = replayBody{}
	b.init(req, 1, math.MaxInt64)
	if first, _ := b.first(); first.(*checkedBody).rc != orig {
		t.Error("first() does not read the caller's body")
	}
	r, err := b.next(context.Background(), nil, time.Time{})
	if got, _ := io.ReadAll(r); err != nil || string(got) != "payload" {
		t.Errorf("next() = %q, %v", got, err)
	}
	boom := errors.New("boom")
	req.GetBody = func() (io.ReadCloser, error) { return nil, boom }
	if _, err := b.next(context.Background(), nil, time.Time{}); !errors.Is(err, errBodyNotReplayable) || !errors.Is(err, boom) {
		t.Errorf("next() with a failing GetBody: err %v", err)
	}
	// A GetBody that fails after opening its copy (a file opened, its
	// seek failed) returns both: the copy is closed, not leaked.
	var closed atomic.Int32
	req.GetBody = func() (io.ReadCloser, error) {
		return &closeCounter{n: &closed}, boom
	}
	if _, err := b.next(context.Background(), nil, time.Time{}); !errors.Is(err, boom) || closed.Load() != 1 {
		t.Errorf("next() with a GetBody returning a body and an error: err %v, the body closed %d times; want it closed once", err, closed.Load())
	}
}

// TestCapturedBodyOverRealTransport sends a body without GetBody through a
// real http.Transport: the retry carries the same bytes, and a body over
// the limit is not retried once sent.
func TestCapturedBodyOverRealTransport(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var n atomic.Int32
	srv, _ := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	payload := strings.Repeat("payload-", 4096) // 32 KiB
	client := loopbackClient(t, WithBackoff(0, 0), WithMaxBufferedBody(64<<10))
	for _, chunked := range []bool{false, true} {
		mu.Lock()
		bodies = nil
		mu.Unlock()
		body := newTrackedBody(payload)
		req := newRequest(t, context.Background(), "PUT", srv.URL, body)
		if !chunked {
			req.ContentLength = int64(len(payload))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readBody(t, resp); resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("chunked=%v: %d %q", chunked, resp.StatusCode, got)
		}
		mu.Lock()
		if len(bodies) != 2 || bodies[0] != payload || bodies[1] != payload {
			t.Errorf("chunked=%v: server saw %d bodies, want the payload twice", chunked, len(bodies))
		}
		mu.Unlock()
		waitClosed(t, body)
	}

	// Over the limit: one attempt, the 503 returned.
	n.Store(0)
	client = loopbackClient(t, WithBackoff(0, 0), WithMaxBufferedBody(1<<10))
	body := newTrackedBody(payload)
	resp, err := client.Do(newRequest(t, context.Background(), "PUT", srv.URL, body))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != 503 || n.Load() != 1 {
		t.Errorf("over the limit: %d after %d attempts, want 503 after 1", resp.StatusCode, n.Load())
	}
	waitClosed(t, body)
}

// waitClosed waits for body to be closed: http.Transport may close a request
// body from its own goroutine shortly after RoundTrip returns.
func waitClosed(t *testing.T, body *trackedBody) {
	t.Helper()
	for i := 0; !body.isClosed(); i++ {
		if i == 1000 {
			t.Fatal("request body not closed")
		}
		time.Sleep(time.Millisecond)
	}
}

// duplexRT answers at once and reads the request body afterwards, from its
// own goroutine, as HTTP/2 does for a full-duplex stream; it closes the
// body when done. It records what it read.
type duplexRT struct {
	status func(n int) int
	wg     sync.WaitGroup
	mu     sync.Mutex
	calls  int
	got    []string
	errs   []error
	start  chan int // receives the attempt number as each attempt starts
}

func (d *duplexRT) RoundTrip(req *http.Request) (*http.Response, error) {
	d.mu.Lock()
	d.calls++
	n := d.calls
	d.got = append(d.got, "")
	d.errs = append(d.errs, nil)
	d.mu.Unlock()
	if d.start != nil {
		d.start <- n
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		d.mu.Lock()
		d.got[n-1], d.errs[n-1] = string(b), err
		d.mu.Unlock()
	}()
	return &http.Response{StatusCode: d.status(n), Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

func TestStreamingBodyNotClosedEarly(t *testing.T) {
	// The response arrives before the body is written: the caller keeps
	// writing after RoundTrip returned, and every byte must reach the
	// transport.
	pr, pw := io.Pipe()
	d := &duplexRT{status: func(int) int { return 200 }}
	req := newRequest(t, context.Background(), "PUT", "http://api.test/stream", pr)
	resp, err := roundTrip(t, New(d), req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("RoundTrip = %v, %v", resp, err)
	}
	resp.Body.Close()
	for i := range 3 {
		if _, err := fmt.Fprintf(pw, "chunk %d;", i); err != nil {
			t.Fatalf("writing the stream after RoundTrip returned: %v", err)
		}
	}
	pw.Close()
	d.wg.Wait()
	if d.got[0] != "chunk 0;chunk 1;chunk 2;" || d.errs[0] != nil {
		t.Errorf("transport read %q, %v; want the whole stream", d.got[0], d.errs[0])
	}
	// Closed once the transport closed the attempt's body.
	if _, err := pw.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("the caller's body is still open after the transport closed it: write err %v", err)
	}
}

func TestStreamingBodyRetriedWhileStillRead(t *testing.T) {
	// The first attempt is answered 503 while its body is still being
	// read (blocked on the caller's pipe): the retry must not wait for
	// that read, and must replay every byte.
	pr, pw := io.Pipe()
	d := &duplexRT{status: func(n int) int { return map[bool]int{true: 503, false: 200}[n == 1] }, start: make(chan int, 2)}
	go func() {
		io.WriteString(pw, "hello ")
		<-d.start
		<-d.start // the retry started while the first read is blocked
		io.WriteString(pw, "world")
		pw.Close()
	}()
	req := newRequest(t, context.Background(), "PUT", "http://api.test/stream", pr)
	done := make(chan struct{})
	var resp *http.Response
	go func() {
		defer close(done)
		resp, _ = New(d, WithBackoff(0, 0)).RoundTrip(req)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		pw.CloseWithError(errors.New("test gave up"))
		<-done
		d.wg.Wait()
		t.Fatal("RoundTrip blocked behind the first attempt's read of the body")
	}
	resp.Body.Close()
	d.wg.Wait()
	if resp.StatusCode != 200 || d.got[1] != "hello world" || d.errs[1] != nil {
		t.Errorf("retry: %d, transport read %q, %v; want 200 and the whole body", resp.StatusCode, d.got[1], d.errs[1])
	}
	if !errors.Is(d.errs[0], errBodyDetached) {
		t.Errorf("first attempt's read ended with %v, want errBodyDetached", d.errs[0])
	}
}

// gatedReader yields n pattern bytes; past open bytes, a Read blocks until
// gate is closed.
type gatedReader struct {
	g       genReader
	open    int64
	gate    chan struct{}
	waiting chan struct{} // closed when a Read waits for the gate
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.g.off >= r.open {
		if r.waiting != nil {
			close(r.waiting)
			r.waiting = nil
		}
		<-r.gate
	} else if rem := r.open - r.g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	return r.g.Read(p)
}

// TestStaleWriterDoesNotBreakTheRetry: a streaming body (no GetBody) whose
// first attempt got an early 503 while its writer was still reading: the
// writer's read in progress, which returns past the capture limit after
// the retry started, must not make the body unreplayable.
func TestStaleWriterDoesNotBreakTheRetry(t *testing.T) {
	const size, limit = 2 << 20, 1 << 20
	src := &gatedReader{g: genReader{n: size}, open: 10 << 10, gate: make(chan struct{}), waiting: make(chan struct{})}
	waiting := src.waiting
	staleDone := make(chan error, 1)
	calls := 0
	var second []byte
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			buf := make([]byte, 10<<10)
			io.ReadFull(req.Body, buf)
			// The transport's writer goes on reading, with a large buffer,
			// after the early answer.
			go func() {
				_, err := req.Body.Read(make([]byte, 3<<19))
				staleDone <- err
			}()
			<-waiting // the read is in progress when the answer comes
			return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
		}
		second, _ = io.ReadAll(req.Body)
		req.Body.Close()
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	})
	opened := false
	tr := New(rt, WithBackoff(0, 0), WithMaxBufferedBody(limit), WithObserver(func(a Attempt) {
		if !opened {
			opened = true
			close(src.gate) // the stale read returns now, past the limit
			<-staleDone
		}
	}))
	req, _ := http.NewRequest("PUT", "http://api.test/", io.NopCloser(src))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v, want the retry's 200", err)
	}
	resp.Body.Close()
	want, _ := io.ReadAll(&genReader{n: size})
	if resp.StatusCode != 200 || !bytes.Equal(second, want) {
		t.Fatalf("status %d, second attempt read %d bytes (equal %v); want 200 and the whole body", resp.StatusCode, len(second), bytes.Equal(second, want))
	}
}

// seekFile returns a temporary file holding payload, its offset moved to
// skip bytes in, as a caller hands an *os.File over after reading a header
// of it.
func seekFile(t *testing.T, payload string, skip int64) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "upload")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(payload); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(skip, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSeekableBodyReplayed(t *testing.T) {
	// A file larger than the capture limit, without GetBody (as
	// http.NewRequest leaves an *os.File): each retry rewinds it to where
	// the call found it, whatever the limit, and the caller's file is
	// closed when the call ends. (TestSeekableBodyEarlyAnswer rewinds it
	// while an earlier attempt still sends it.)
	payload := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB
	const skip = 100
	var mu sync.Mutex
	var bodies []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	})
	for _, tc := range []struct {
		name    string
		limit   int64
		chunked bool
	}{
		{"content-length", DefaultMaxBufferedBody, false},
		{"chunked", DefaultMaxBufferedBody, true},
		{"no-capture", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := resilienttest.Wrap(h, resilienttest.Faults{},
				resilienttest.WithScript("PUT /upload", resilienttest.FailAfterStoring(), resilienttest.FailAfterStoring(), resilienttest.Normal()))
			defer srv.Close()
			mu.Lock()
			bodies = nil
			mu.Unlock()
			f := seekFile(t, payload, skip)
			req := newRequest(t, context.Background(), http.MethodPut, srv.URL+"/upload", f)
			if !tc.chunked {
				req.ContentLength = int64(len(payload) - skip)
			}
			client := &http.Client{Transport: New(srv.Transport(), WithBackoff(0, 0), WithMaxBufferedBody(tc.limit))}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 after the retries", resp.StatusCode)
			}
			if n := srv.Stats().Attempts["PUT /upload"]; n != 3 {
				t.Errorf("%d attempts, want 3", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bodies) != 3 {
				t.Fatalf("the handler read %d bodies, want 3", len(bodies))
			}
			for i, b := range bodies {
				if b != payload[skip:] {
					t.Errorf("body %d: %d bytes, want the %d from the call's offset", i, len(b), len(payload)-skip)
				}
			}
			// Closed by the end of the call (the transport may close
			// the last attempt's body just after RoundTrip returns).
			for i := 0; ; i++ {
				if _, err := f.Seek(0, io.SeekCurrent); errors.Is(err, os.ErrClosed) {
					break
				}
				if i == 1000 {
					t.Fatal("the caller's file is still open after the call")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

func TestSeekableBodyEarlyAnswer(t *testing.T) {
	// Each attempt is answered before its body is read, as HTTP/2 and an
	// early error answer do: the transport goes on reading the body after
	// RoundTrip returned, while the retry rewinds the file. The retry's
	// body is whole; an earlier attempt's reader is cut off (it reads
	// errBodyDetached), never handed bytes of another attempt's.
	payload := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB
	for i := range 20 {
		d := &duplexRT{status: func(n int) int { return map[bool]int{true: 503, false: 200}[n < 3] }}
		f := seekFile(t, payload, 0)
		req := newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", f)
		resp, err := roundTrip(t, New(d, WithBackoff(0, 0), WithMaxBufferedBody(1<<10)), req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("run %d: RoundTrip = %v, %v; want 200", i, resp, err)
		}
		resp.Body.Close()
		d.wg.Wait()
		if d.calls != 3 {
			t.Fatalf("run %d: %d attempts, want 3", i, d.calls)
		}
		if d.got[2] != payload || d.errs[2] != nil {
			t.Errorf("run %d: the last attempt read %d bytes, %v; want the whole file", i, len(d.got[2]), d.errs[2])
		}
		for n := range 2 {
			if d.errs[n] == nil && d.got[n] != payload {
				t.Errorf("run %d: attempt %d read %d bytes without error; want the whole file or errBodyDetached", i, n+1, len(d.got[n]))
			}
			if d.errs[n] != nil && !errors.Is(d.errs[n], errBodyDetached) {
				t.Errorf("run %d: attempt %d: %v, want errBodyDetached", i, n+1, d.errs[n])
			}
		}
		if _, err := f.Seek(0, io.SeekCurrent); !errors.Is(err, os.ErrClosed) {
			t.Errorf("run %d: the caller's file is still open once every attempt's body was closed", i)
		}
	}
}

// TestSharedGetBodyEarlyAnswer: a retry's body from a GetBody that rewinds
// the one source the caller's body reads (a file seeked back, as a plain
// client's GetBody may be: it calls it only once the body was sent, after
// a 307) is made only once the earlier attempt's transport, still sending
// that body after its early answer, is done with it: its Read is cut off
// (errBodyDetached), and the retry sends the body whole. GetBody was called
// at once: the earlier attempt's writer read on from the source rewound,
// and the retry's body, of unknown length (chunked), came short: the
// server stored a corrupted write, and the caller got its 201.
func TestSharedGetBodyEarlyAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := "abcdefghijkl"
		var got []string
		var werr error
		var writers sync.WaitGroup
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			chunk := make([]byte, 4)
			if len(got) == 0 {
				got = append(got, "")
				// net/http's writer: the answer comes after the first
				// chunk was sent, the rest is sent on (4 bytes every
				// 6ms), and the body closed at its end.
				req.Body.Read(chunk)
				writers.Go(func() {
					defer req.Body.Close()
					for {
						time.Sleep(6 * time.Millisecond)
						if _, werr = req.Body.Read(chunk); werr != nil {
							return
						}
					}
				})
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}, nil
			}
			b, err := io.ReadAll(req.Body)
			req.Body.Close()
			got = append(got, string(b))
			if err != nil {
				return nil, err
			}
			return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
		})
		f := &sharedSource{bytes.NewReader([]byte(data))}
		req := newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", io.NopCloser(f))
		req.ContentLength = 0 // unknown, as http.NewRequest leaves it for a file
		req.GetBody = func() (io.ReadCloser, error) {
			_, err := f.Seek(0, io.SeekStart)
			return io.NopCloser(f), err
		}
		resp, err := New(base, WithBackoff(10*time.Millisecond, 10*time.Millisecond)).RoundTrip(req)
		writers.Wait()
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("RoundTrip = %v, %v; want the retry's 201", resp, err)
		}
		resp.Body.Close()
		if len(got) != 2 || got[1] != data {
			t.Errorf("the server stored the retry's write with body %q, want %q", got[1:], data)
		}
		if !errors.Is(werr, errBodyDetached) {
			t.Errorf("the earlier attempt's writer read on: %v; want errBodyDetached", werr)
		}
	})
}

// TestMemoryBodyBytes: a body in memory is replayed from the bytes its
// reader held when the call found it, from where that reader stood, without
// moving it (a Read of an earlier attempt may go on meanwhile); a reader
// Reset since with fewer bytes makes a clear error, and bodies that are not
// in memory, or not of their ContentLength, are not taken for one.
func TestMemoryBodyBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() io.Reader // the caller's reader, one byte of it read already
	}{
		{"bytes.Buffer", func() io.Reader { return bytes.NewBufferString("xhello") }},
		{"bytes.Reader", func() io.Reader { return bytes.NewReader([]byte("xhello")) }},
		{"strings.Reader", func() io.Reader { return strings.NewReader("xhello") }},
	} {
		for _, over := range []bool{false, true} {
			limit := int64(math.MaxInt64)
			if over {
				limit = 4 // the body is over WithMaxBufferedBody: not copied
			}
			t.Run(fmt.Sprintf("%s/over-limit=%v", tc.name, over), func(t *testing.T) {
				r := tc.body()
				r.Read(make([]byte, 1))
				var m memoryBody
				if !m.init(io.NopCloser(r), 5, limit) {
					t.Fatal("init = false, want true")
				}
				r.Read(make([]byte, 2)) // the attempt's writer reads on
				for i := range 2 {
					if b, err := m.bytes(); err != nil || b.data != nil && string(b.data) != "hello" {
						t.Errorf("bytes() #%d = %q, %v; want %q", i, b.data, err, "hello")
					}
					rc, err := m.reader()
					if err != nil {
						t.Fatalf("reader() #%d: %v", i, err)
					}
					if _, ok := inMemory(rc, 5); !ok {
						t.Errorf("reader() #%d is not in memory: two writes", i)
					}
					if got, _ := io.ReadAll(rc); string(got) != "hello" {
						t.Errorf("reader() #%d read %q, want %q", i, got, "hello")
					}
				}
				if rest, _ := io.ReadAll(r); string(rest) != "llo" {
					t.Errorf("the caller's reader was moved: %q left, want %q", rest, "llo")
				}
				// The caller reuses its body's memory once RoundTrip
				// returned: a writer of the bytes may still send them.
				// A copy of them reads the bytes the call found; the
				// caller's own, over the limit, read what it wrote
				// into them, as a plain client's resend through
				// GetBody does: a Reset reader keeps its bytes.
				want := "hello"
				rc, _ := m.reader()
				switch r := r.(type) {
				case *bytes.Buffer:
					r.Reset()
					r.WriteString("XXXXXX")
					if over {
						want = "XXXXX"
					}
				case *bytes.Reader:
					r.Reset([]byte("XXXXXX"))
				case *strings.Reader:
					r.Reset("XXXXXX")
				}
				if got, _ := io.ReadAll(rc); string(got) != want {
					t.Errorf("a retry's body read %q once the caller reused its body, want %q", got, want)
				}
			})
		}
	}
	src := strings.NewReader("hello")
	var m memoryBody
	if !m.init(io.NopCloser(src), 5, math.MaxInt64) {
		t.Fatal("init = false, want true")
	}
	src.Reset("hi")
	if _, err := m.reader(); !errors.Is(err, errBodyNotReplayable) {
		t.Errorf("reader of a reader Reset to fewer bytes: %v, want errBodyNotReplayable", err)
	}
	for _, tc := range []struct {
		name string
		body io.ReadCloser
		want int64
	}{
		{"its length differs", io.NopCloser(strings.NewReader("hello")), 4},
		{"unknown length", io.NopCloser(strings.NewReader("hello")), -1},
		{"a file-like reader", io.NopCloser(&sharedSource{bytes.NewReader([]byte("hello"))}), 5},
		{"not a NopCloser", &seekBody{Reader: strings.NewReader("hello")}, 5},
	} {
		var m memoryBody
		if m.init(tc.body, tc.want, math.MaxInt64) || m.ok() {
			t.Errorf("%s: init = true, want false", tc.name)
		}
	}
}

// streamBody returns s as a request body not in memory (see inMemory), as a
// pipe's: a retry's or a hedged copy's body comes from GetBody, which waits
// for the reader of the body before it.
func streamBody(s string) io.ReadCloser {
	return io.NopCloser(struct{ io.Reader }{strings.NewReader(s)})
}

// sharedSource is a body that can seek, as a file: a GetBody that seeks it
// back hands out one source, which any body it made reads.
type sharedSource struct{ r *bytes.Reader }

func (s *sharedSource) Read(p []byte) (int, error)                { return s.r.Read(p) }
func (s *sharedSource) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

// seekBody is a request body that can seek, whose Seek fails once failAt
// seeks were made, and which counts its Closes.
type seekBody struct {
	*strings.Reader
	seeks, failAt int
	closes        atomic.Int32
}

var errSeekBroken = errors.New("seek broken")

func (b *seekBody) Seek(off int64, whence int) (int64, error) {
	b.seeks++
	if b.seeks >= b.failAt {
		return 0, errSeekBroken
	}
	return b.Reader.Seek(off, whence)
}

func (b *seekBody) Close() error {
	b.closes.Add(1)
	return nil
}

func TestSeekableBodyRewindFails(t *testing.T) {
	// The body said where it stood, then failed to seek back: no retry,
	// and the error says why, its cause wrapped. The body is closed once.
	base := &rtScript{steps: []rtStep{{err: errors.New("connection reset")}}}
	body := &seekBody{Reader: strings.NewReader("payload"), failAt: 2}
	req := newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", body)
	_, err := roundTrip(t, New(base, WithBackoff(0, 0)), req)
	if !errors.Is(err, errSeekBroken) || !errors.Is(err, errBodyNotReplayable) {
		t.Errorf("err = %v; want it to wrap the seek's error and errBodyNotReplayable", err)
	}
	if n := len(base.calls); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	if n := body.closes.Load(); n != 1 {
		t.Errorf("the body was closed %d times, want once", n)
	}

	// An attempt that got a response (a 503) is followed by no retry
	// either: the call returns that response, as a plain client would,
	// and no error; the observer's StopReason says why.
	base = &rtScript{steps: []rtStep{{status: 503, body: "busy"}, {}}}
	body = &seekBody{Reader: strings.NewReader("payload"), failAt: 2}
	req = newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", body)
	var obs observed
	resp, err := roundTrip(t, New(base, WithBackoff(0, 0), WithObserver(obs.add)), req)
	if err != nil || resp.StatusCode != 503 || readBody(t, resp) != "busy" {
		t.Errorf("after a 503 and a failed rewind: %v, %v; want the 503, no error", resp, err)
	}
	if n := len(base.calls); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	if a := obs.all(); len(a) != 1 || a[0].StopReason != StopBodyNotReplayable {
		t.Errorf("observed %+v, want one attempt whose StopReason is %q", a, StopBodyNotReplayable)
	}

	// A body whose first Seek fails (a pipe) is captured: within the
	// limit it is replayed from the capture.
	base = &rtScript{steps: []rtStep{{err: errors.New("connection reset")}, {}}}
	body = &seekBody{Reader: strings.NewReader("payload"), failAt: 1}
	req = newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", body)
	resp, err = roundTrip(t, New(base, WithBackoff(0, 0)), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(base.calls) != 2 || string(base.calls[1].body) != "payload" {
		t.Errorf("%d attempts; want 2, the second with the captured body", len(base.calls))
	}
	if body.seeks != 1 {
		t.Errorf("%d seeks, want the one that failed", body.seeks)
	}
}

func TestSeekablePipeIsCaptured(t *testing.T) {
	// An *os.File that cannot seek (a pipe) falls back to the capture and
	// its limit: over the limit, one attempt.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		pw.WriteString(strings.Repeat("x", 4<<10))
		pw.Close()
	}()
	base := &rtScript{steps: []rtStep{{status: 503}, {}}}
	req := newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", pr)
	resp, err := roundTrip(t, New(base, WithBackoff(0, 0), WithMaxBufferedBody(1<<10)), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || len(base.calls) != 1 {
		t.Errorf("%d after %d attempts; want the 503 after 1 (the pipe is over the capture limit)", resp.StatusCode, len(base.calls))
	}
}

// TestCaptureBodyLyingContentLength: the buffer that captures a body
// without GetBody is not sized by a ContentLength the caller set wrong. A
// 3-byte body declared as 2^50 bytes, under WithMaxBufferedBody(math.MaxInt64)
// ("keep any body"), fails as the caller's mistake it is, a *RequestError
// (a plain client's net/http refuses it the same way); the capture made a
// buffer of that capacity first, which panicked (makeslice), or, for a
// lie of a few GiB, reserved that much memory.
func TestCaptureBodyLyingContentLength(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, err := io.ReadAll(r.Body) // as net/http's writer does
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	req, _ := http.NewRequest("PUT", "https://api.test/v1/media", io.NopCloser(strings.NewReader("abc")))
	req.ContentLength = 1 << 50
	_, err := New(base, WithMaxBufferedBody(math.MaxInt64)).RoundTrip(req)
	var re *RequestError
	if !errors.As(err, &re) {
		t.Errorf("err = %v, want a *RequestError", err)
	}
	var b replayBody
	req, _ = http.NewRequest("PUT", "https://api.test/v1/media", io.NopCloser(strings.NewReader("abc")))
	req.ContentLength = 1 << 30
	b.init(req, math.MaxInt64, math.MaxInt64)
	if c := cap(b.cap.buf); c > DefaultMaxBufferedBody {
		t.Errorf("a body that says it has 1 GiB gets a buffer of %d bytes before a byte is read", c)
	}
}

// TestCaptureBodyStaysWithinLimit: the buffer that captures a body without
// GetBody, read as net/http's writer reads it (32 KiB at a time), never
// grows past WithMaxBufferedBody, nor past the body's ContentLength when
// it is known: append's growth made a buffer of up to 1.25 times the
// limit (1.19 MiB for a body of unknown length of 1 MiB, the default
// limit), memory beyond the bound the option sets.
func TestCaptureBodyStaysWithinLimit(t *testing.T) {
	for _, tc := range []struct {
		limit, size, contentLength int64
	}{
		{1 << 20, 1 << 20, -1},
		{1 << 20, 1<<20 - 1000, -1},
		{8 << 20, 8 << 20, 8 << 20},
		{8 << 20, 3 << 20, 3 << 20},
		{3<<20 + 5, 3 << 20, -1},
	} {
		req, _ := http.NewRequest("PUT", "https://api.test/v1/media", io.NopCloser(bytes.NewReader(make([]byte, tc.size))))
		req.ContentLength = tc.contentLength
		var b replayBody
		b.init(req, tc.limit, math.MaxInt64)
		r, _ := b.first()
		if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 32<<10)); n != tc.size || err != nil {
			t.Fatalf("first attempt's body: %d bytes, %v; want %d", n, err, tc.size)
		}
		bound := tc.limit
		if tc.contentLength > 0 {
			bound = tc.contentLength
		}
		if c := b.cap.buf; int64(len(c)) != tc.size || int64(cap(c)) > bound {
			t.Errorf("a body of %d bytes (ContentLength %d) under a limit of %d: captured %d bytes in a buffer of %d; want all in one of at most %d",
				tc.size, tc.contentLength, tc.limit, len(c), cap(c), bound)
		}
		b.close()
	}
}

// stuckSeeker is a request body that can seek, as an io.SectionReader over
// a remote store does, whose second Read closes stuck, then blocks until
// release is closed.
type stuckSeeker struct {
	*strings.Reader
	reads          int
	stuck, release chan struct{}
}

func (b *stuckSeeker) Read(p []byte) (int, error) {
	b.reads++
	if b.reads == 2 {
		close(b.stuck)
		<-b.release
	}
	return b.Reader.Read(p[:min(len(p), 4)])
}

func (b *stuckSeeker) Close() error { return nil }

// TestRewindWaitIsBounded: a retry whose seekable body is still being read
// by the earlier attempt's writer (an early answer), in a Read that blocks,
// waits for that read no longer than the call's context or budget allow;
// the call then ends with the answer it had. The rewind waited for the
// read without a bound: RoundTrip returned only once the source's Read did,
// never for a source that stalls, whatever the context's deadline. It ends
// as soon as the retry would no longer have the least a retry needs (1ms
// after an attempt of no time, see call.leastLeft), a stop for the
// deadline; until 2026-12-07 it waited to the deadline itself, and the
// call said its body could not be replayed.
func TestRewindWaitIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []Option
		ctx    func(context.Context) (context.Context, context.CancelFunc)
		want   time.Duration
		reason StopReason
	}{
		{"context deadline", nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 10*time.Second)
		}, 10*time.Second - durationFloor, StopDeadline},
		{"canceled", nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(5*time.Second, cancel)
			return ctx, cancel
		}, 5 * time.Second, StopCanceled}, // the caller's cancel, not the body's fault
		{"budget", []Option{WithMaxElapsed(30 * time.Second)}, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return ctx, func() {}
		}, 30*time.Second - durationFloor, StopDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := &stuckSeeker{Reader: strings.NewReader("0123456789"), stuck: make(chan struct{}), release: make(chan struct{})}
				calls := 0
				var writers sync.WaitGroup
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					calls++
					writers.Go(func() { // net/http's writer, still sending as the answer comes
						io.Copy(io.Discard, req.Body)
						req.Body.Close()
					})
					<-body.stuck // the answer comes as the writer's Read stalls
					return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}, nil
				})
				ctx, cancel := tc.ctx(context.Background())
				defer cancel()
				var r Report
				req := newRequest(t, WithReport(ctx, &r), http.MethodPut, "http://api.test/upload", body)
				start := time.Now()
				resp, err := New(base, append([]Option{WithBackoff(0, 0)}, tc.opts...)...).RoundTrip(req)
				d := time.Since(start)
				close(body.release)
				writers.Wait()
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("RoundTrip = %v, %v; want the 503", resp, err)
				}
				resp.Body.Close()
				if d != tc.want || calls != 1 || r.StopReason != tc.reason {
					t.Errorf("returned after %v, %d attempts, stop %q; want %v, 1, %q", d, calls, r.StopReason, tc.want, tc.reason)
				}
			})
		})
	}
}

// TestSingleAttemptDoesNotCaptureBody: a call that makes one attempt
// (WithMaxRetries(0), for the Transport or the call) has no retry to replay
// its body for: a body without GetBody is sent as it is read, not copied.
// It was captured all the same, up to WithMaxBufferedBody: 1 MiB allocated
// and copied per call of a 1 MiB upload, for nothing.
func TestSingleAttemptDoesNotCaptureBody(t *testing.T) {
	payload := strings.Repeat("x", 1<<20)
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		n, err := io.Copy(io.Discard, req.Body) // as net/http's writer does
		req.Body.Close()
		if err != nil || n != int64(len(payload)) {
			return nil, fmt.Errorf("the base read %d bytes, %v", n, err)
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})
	for _, tc := range []struct {
		name string
		tr   *Transport
		ctx  context.Context
	}{
		{"transport", New(base, WithMaxRetries(0)), context.Background()},
		{"call", New(base), WithCallOptions(context.Background(), WithMaxRetries(0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(payload)
			body := io.NopCloser(r) // no GetBody, cannot seek
			call := func() {
				r.Reset(payload)
				req, err := http.NewRequestWithContext(tc.ctx, http.MethodPost, "https://api.test/upload", body)
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = int64(len(payload))
				resp, err := tc.tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			call()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const calls = 4
			for range calls {
				call()
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / calls; per > 64<<10 {
				t.Errorf("%d bytes allocated per call of a 1 MiB body, want no copy of it", per)
			}
		})
	}
}
