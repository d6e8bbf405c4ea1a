package resilient

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingTakenOverBodyReadByCopyRenewed: a copy that took over the
// attempt's unread body (see TestHedgingCopyTakesOverUnreadBody) and read
// it whole, then gets a 503 or hangs, does not fail the attempt, whose
// connection was ready later: the attempt's Read, once the copy's body was
// sent, gets a body of its own from GetBody and sends it, and the call gets
// the attempt's 201 at 20ms, in two requests, where it retried (a 201
// after about 1 s, in 4 requests), or waited for the copy that hangs until
// its attempt timeout. Over a fake base, and over net/http's HTTP/1
// client, whose write goroutine reads the body.
func TestHedgingTakenOverBodyReadByCopyRenewed(t *testing.T) {
	for _, base := range []string{"fake base", "net/http HTTP/1"} {
		for _, copyEnd := range []string{"503", "hangs"} {
			t.Run(base+"/copy "+copyEnd, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testTakenOverBodyRenewed(t, base == "fake base", copyEnd == "hangs") })
			})
		}
	}
}

func testTakenOverBodyRenewed(t *testing.T, fake, hang bool) {
	data := []byte("abcdefghijkl")
	var mu sync.Mutex
	var calls int
	var bodies []string // the bodies the server read whole, in order
	// serve reads a request's body whole and answers it: the copy (the
	// second request) with a 503, or not at all (0) until done is closed,
	// the others with a 201.
	serve := func(i int, body io.Reader, done <-chan struct{}) (int, error) {
		b, err := io.ReadAll(body)
		if err != nil {
			return 0, err
		}
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch {
		case i != 2:
			return 201, nil
		case hang:
			<-done
			return 0, nil
		}
		return 503, nil
	}
	var rt http.RoundTripper
	if fake {
		rt = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			calls++
			i := calls
			mu.Unlock()
			if i == 1 {
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
			}
			code, err := serve(i, r.Body, r.Context().Done())
			r.Body.Close()
			switch {
			case err != nil:
				return nil, err
			case code == 0:
				return nil, r.Context().Err()
			}
			return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
	} else {
		// One transport per request: the attempt's dial takes 20ms, the
		// copy's none, and neither gets the other's connection.
		pipe := func(i int) *http.Transport {
			return &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
				if i == 1 {
					time.Sleep(20 * time.Millisecond)
				}
				client, server := net.Pipe()
				go func() {
					defer server.Close()
					req, err := http.ReadRequest(bufio.NewReader(server))
					if err != nil {
						return
					}
					// The body is read whole before anything else
					// reads the connection: a reader of it that
					// watches for its end took body bytes from
					// the server's, which then waited for good.
					b, err := io.ReadAll(req.Body)
					if err != nil {
						return
					}
					gone := make(chan struct{})
					go func() { io.Copy(io.Discard, server); close(gone) }()
					if code, _ := serve(i, bytes.NewReader(b), gone); code != 0 {
						fmt.Fprintf(server, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", code, http.StatusText(code))
					}
				}()
				return client, nil
			}}
		}
		bases := []*http.Transport{pipe(1), pipe(2), pipe(3), pipe(4), pipe(5)}
		defer func() {
			for _, b := range bases {
				b.CloseIdleConnections()
			}
		}()
		rt = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			calls++
			i := calls
			mu.Unlock()
			return bases[min(i, len(bases))-1].RoundTrip(r)
		})
	}
	tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
	req := sharedSourcePost(data)
	t0 := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	resp.Body.Close()
	d := time.Since(t0)
	time.Sleep(time.Second)
	synctest.Wait()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != 201 || d != 20*time.Millisecond || calls != 2 {
		t.Errorf("the call got %d after %v in %d requests, want 201 after 20ms in 2: the attempt's answer", resp.StatusCode, d, calls)
	}
	for _, b := range bodies {
		if b != string(data) {
			t.Errorf("the server got body %q, want %q", b, data)
		}
	}
}

// TestHedgingRenewGetBodyPanicGoesToCaller: the GetBody that renews the
// attempt's body (see TestHedgingTakenOverBodyReadByCopyRenewed) runs on
// the goroutine that reads the attempt's body, net/http's: its panic goes
// to the caller, as a copy's does, rather than end the process, and the
// attempt sends no body.
func TestHedgingRenewGetBodyPanicGoesToCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var mu sync.Mutex
		var calls int
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			calls++
			i := calls
			mu.Unlock()
			if i == 1 {
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
			}
			resp, err := got.created(r)
			if i == 2 && err == nil {
				resp.StatusCode = 503
			}
			return resp, err
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		req := sharedSourcePost(data)
		rewind := req.GetBody
		var gets int
		req.GetBody = func() (io.ReadCloser, error) {
			mu.Lock()
			gets++
			i := gets
			mu.Unlock()
			if i == 2 {
				panic("GetBody exploded") // the attempt's renewal
			}
			return rewind()
		}
		var p any
		func() {
			defer func() { p = recover() }()
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if p != "GetBody exploded" || calls != 2 {
			t.Errorf("RoundTrip panicked with %v after %d requests, want GetBody exploded after 2", p, calls)
		}
		got.checkOne(t, data) // the copy's
	})
}
