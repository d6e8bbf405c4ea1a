package resilient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOfABrokenBody: a hedged copy of a write whose body,
// without GetBody and of unknown length, broke as the attempt sent it (its
// Read failed partway) is not sent: what was captured is only a prefix of
// the body, which a copy would send as the whole of it. (The attempt's
// base here reads on past the error and waits, as a RoundTripper that
// sends the body apart from waiting for the answer may.)
func TestHedgingNoCopyOfABrokenBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var bodies []string
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			b, err := io.ReadAll(req.Body)
			mu.Lock()
			i := len(bodies)
			if err == nil {
				bodies = append(bodies, string(b)) // a body the server takes whole
			} else {
				bodies = append(bodies, "")
			}
			mu.Unlock()
			wait := 10 * time.Millisecond
			if i == 0 {
				wait = time.Second
			}
			select {
			case <-time.After(wait):
				return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
		})
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
		broken := io.NopCloser(io.MultiReader(strings.NewReader(`{"text":"hel`), errReader{errors.New("disk read failed")}))
		req := newRequest(t, context.Background(), "POST", "http://api.test/v1/posts", broken)
		req.ContentLength = 0 // unknown
		resp, err := roundTrip(t, tr, req)
		if err == nil {
			resp.Body.Close()
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for i, b := range bodies {
			if b != "" {
				t.Errorf("request %d carried %q, read to its end as a whole body; want no request with the broken body's prefix as its whole", i+1, b)
			}
		}
	})
}

// TestHedgingCopyGetBodyAfterAttemptSentBody: a hedged keyed upload whose GetBody rewinds one shared source (Seek(0)),
// a GetBody a plain client serves fine (it calls it only on a 307/308,
// once the body was sent). The copy's GetBody rewinds the source while the
// attempt is still reading it: the attempt's ContentLength bytes are
// partly the copy's, and reach the server whole.
func TestHedgingCopyGetBodyAfterAttemptSentBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var whole []string
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			// As net/http's writer: ContentLength bytes, read as the source
			// yields them (4 bytes every 6ms), then a check for more.
			buf := make([]byte, 0, r.ContentLength)
			chunk := make([]byte, 4)
			for int64(len(buf)) < r.ContentLength {
				n, err := r.Body.Read(chunk)
				buf = append(buf, chunk[:n]...)
				if err != nil {
					break
				}
				time.Sleep(6 * time.Millisecond)
			}
			r.Body.Close()
			if int64(len(buf)) < r.ContentLength {
				return nil, io.ErrUnexpectedEOF
			}
			mu.Lock()
			whole = append(whole, string(buf)) // the server has the request whole
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			return &http.Response{StatusCode: 201, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		data := []byte("abcdefghijkl")
		req := sharedSourcePost(data)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(time.Second)
		for _, b := range whole {
			if b != string(data) {
				t.Errorf("the server got a write whole with body %q, want %q (RoundTrip: %v, %v)", b, data, resp != nil && resp.StatusCode == 201, err)
			}
		}
	})
}

// TestHedgingCopyTakesOverUnreadBody: a hedged keyed write with a GetBody
// of the caller's own whose attempt has not begun to read its body (its
// connection is still being dialed, or waits for an HTTP/2 stream) gets its
// copy, as it did before copies waited for the attempt's body to be sent:
// the copy takes the body over, and the attempt, should it get to read it
// once the copy's body was sent, sends a body of its own from GetBody (see
// TestHedgingTakenOverBodyReadByCopyRenewed): the copy's answer, first,
// decides. Without the takeover, no copy was sent: the call waited for the
// attempt's timeout and a retry.
func TestHedgingCopyTakesOverUnreadBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		dial time.Duration // how long the attempt waits before it reads its body; 0: until it is canceled
	}{{"dial hangs", 0}, {"dial ends after the copy", 20 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := []byte("abcdefghijkl")
				var mu sync.Mutex
				var calls int
				var got bodyLog
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					mu.Lock()
					calls++
					first := calls == 1
					mu.Unlock()
					if first {
						if tc.dial == 0 {
							<-r.Context().Done()
							r.Body.Close()
							return nil, r.Context().Err()
						}
						time.Sleep(tc.dial)
					}
					resp, err := got.created(r)
					if err != nil {
						return nil, err
					}
					select { // the copy's server takes its time
					case <-time.After(100 * time.Millisecond):
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
					return resp, nil
				})
				var atts []Attempt
				tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second),
					WithObserver(func(a Attempt) { atts = append(atts, a) }))
				req := sharedSourcePost(data)
				t0 := time.Now()
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				resp.Body.Close()
				if d := time.Since(t0); d != 110*time.Millisecond || len(atts) != 1 || atts[0].Hedge != 1 {
					t.Errorf("the call took %v in %d attempts (%+v), want 110ms: the copy's answer, at 10ms+100ms", d, len(atts), atts)
				}
				if tc.dial == 0 {
					got.checkOne(t, data)
				} else {
					got.checkAll(t, data, 2) // the copy's, and the attempt's at 20ms
				}
			})
		})
	}
}

// TestHedgingRefusedCopyLeavesUnreadBody: a copy that a layer refuses at
// once (here its pace, WithRateLimit, whose one token the attempt took) is
// not sent: the attempt whose body it would have taken over still sends
// that body, and the call gets the attempt's answer, as without hedging.
func TestHedgingRefusedCopyLeavesUnreadBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			time.Sleep(20 * time.Millisecond) // the dial, past the hedging delay
			return got.created(r)
		})
		var atts []Attempt
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithRateLimit(1, 1),
			WithObserver(func(a Attempt) { atts = append(atts, a) }))
		req := sharedSourcePost(data)
		t0 := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		if d := time.Since(t0); resp.StatusCode != 201 || d != 20*time.Millisecond || len(atts) != 1 || atts[0].Hedge != 0 {
			t.Errorf("the call got %d after %v in %d attempts (%+v), want 201 after 20ms in the attempt itself", resp.StatusCode, d, len(atts), atts)
		}
		got.checkOne(t, data)
	})
}

// TestHedgingFailedCopyLeavesUnreadBody: a copy whose request fails
// before its body is read (its dial refused) gives the body it took over
// back to the attempt, which has not begun to read it either: the attempt
// sends it, and the call gets the attempt's answer, with no retry, as
// without hedging.
func TestHedgingFailedCopyLeavesUnreadBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var mu sync.Mutex
		var calls int
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			calls++
			copied := calls == 2
			mu.Unlock()
			if copied {
				r.Body.Close()
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			time.Sleep(20 * time.Millisecond) // the dial, past the hedging delay
			return got.created(r)
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		req := sharedSourcePost(data)
		t0 := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		if d := time.Since(t0); resp.StatusCode != 201 || d != 20*time.Millisecond || calls != 2 {
			t.Errorf("the call got %d after %v in %d requests, want 201 after 20ms in 2: the attempt's answer", resp.StatusCode, d, calls)
		}
		got.checkOne(t, data)
	})
}

// bodyLog records the request bodies a fake server read whole. It is safe
// for concurrent use.
type bodyLog struct {
	mu     sync.Mutex
	bodies []string
}

// read reads r's body whole, closes it and records it; a body that cannot
// be read is not recorded, and read returns the read's error.
func (l *bodyLog) read(r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.bodies = append(l.bodies, string(b))
	l.mu.Unlock()
	return nil
}

// created reads r's body whole, records it and answers 201; a body that
// cannot be read fails the attempt with the read's error.
func (l *bodyLog) created(r *http.Request) (*http.Response, error) {
	if err := l.read(r); err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: 201, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// hang reads r's body whole and records it, then never answers: it returns
// once r's context is done, as a host slow to answer a hedged copy. A body
// that cannot be read fails the request with the read's error.
func (l *bodyLog) hang(r *http.Request) (*http.Response, error) {
	if err := l.read(r); err != nil {
		return nil, err
	}
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// checkOne reports an error unless the server read exactly one body, data.
func (l *bodyLog) checkOne(t *testing.T, data []byte) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bodies) != 1 || l.bodies[0] != string(data) {
		t.Errorf("the server got bodies %q, want one, %q", l.bodies, data)
	}
}

// checkEach reports an error for each body the server read that is not
// data, the caller's body of a request of method: a part of it, or none.
func (l *bodyLog) checkEach(t *testing.T, method string, data []byte) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bodies {
		if b != string(data) {
			t.Errorf("the server stored a %s body of %d bytes, want only the caller's %d", method, len(b), len(data))
		}
	}
}

// checkAll reports an error unless the server read n bodies, each data.
func (l *bodyLog) checkAll(t *testing.T, data []byte, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bodies) != n || slices.ContainsFunc(l.bodies, func(b string) bool { return b != string(data) }) {
		t.Errorf("the server got bodies %q, want %d, each %q", l.bodies, n, data)
	}
}

// sharedSourcePost returns a keyed POST of data whose GetBody rewinds the
// one source its body reads (a file seeked back, as a careless caller's
// may be: not in memory, which is replayed from its bytes, see
// memoryBody), to http://api.test/v1/posts.
func sharedSourcePost(data []byte) *http.Request {
	src := &sharedSource{bytes.NewReader(data)}
	req, _ := http.NewRequestWithContext(WithIdempotencyKey(context.Background(), "k1"), "POST", "http://api.test/v1/posts", io.NopCloser(src))
	req.ContentLength = int64(len(data))
	req.GetBody = func() (io.ReadCloser, error) {
		_, err := src.Seek(0, io.SeekStart)
		return io.NopCloser(src), err
	}
	return req
}
