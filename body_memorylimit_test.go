package resilient

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMemoryBodyCopyWithinLimit: a body in memory (http.NewRequest's
// *bytes.Reader, with its GetBody) larger than WithMaxBufferedBody is
// replayed by a retry and by a hedged copy exactly, and the call holds no
// more than the limit beyond the caller's own bytes, as a plain client's
// resend through GetBody, which reads them, copying nothing. The retry
// loop and a hedged attempt's copies made a copy of the whole body,
// whatever its size (64 MiB more for a 64 MiB upload retried once),
// memory the limit says the call never holds. They read the caller's
// bytes now, through a reader of their own (see memoryBytes).
func TestMemoryBodyCopyWithinLimit(t *testing.T) {
	payload := make([]byte, 64<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	// same reports whether body reads payload exactly, chunk by chunk,
	// without a copy of its own.
	same := func(body io.Reader) bool {
		buf := make([]byte, 32<<10)
		off := 0
		for {
			n, err := body.Read(buf)
			if n > 0 && (off+n > len(payload) || !bytes.Equal(buf[:n], payload[off:off+n])) {
				return false
			}
			off += n
			if err == io.EOF {
				return off == len(payload)
			}
			if err != nil {
				return false
			}
		}
	}
	allocated := func(fn func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	const bound = 2 * DefaultMaxBufferedBody // the limit, and room for the rest of the call

	t.Run("retry", func(t *testing.T) {
		var mu sync.Mutex
		var exact []bool
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			ok := same(r.Body)
			r.Body.Close()
			mu.Lock()
			exact = append(exact, ok)
			n := len(exact)
			mu.Unlock()
			status := http.StatusServiceUnavailable
			if n > 1 {
				status = http.StatusOK
			}
			return &http.Response{StatusCode: status, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		})
		tr := New(base, WithBackoff(0, 0))
		req, _ := http.NewRequest(http.MethodPut, "http://api.test/upload", bytes.NewReader(payload))
		var resp *http.Response
		var err error
		n := allocated(func() { resp, err = tr.RoundTrip(req) })
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("RoundTrip = %v, %v; want the 200 of the retry", resp, err)
		}
		if len(exact) != 2 || !exact[0] || !exact[1] {
			t.Errorf("attempts read the body exactly: %v, want [true true]", exact)
		}
		if n > bound {
			t.Errorf("a call retrying a body of %d MiB in memory allocated %d MiB, want at most %d MiB (WithMaxBufferedBody %d MiB)",
				len(payload)>>20, n>>20, bound>>20, DefaultMaxBufferedBody>>20)
		}
	})

	t.Run("hedged copy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var mu sync.Mutex
			var exact []bool
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				ok := same(r.Body)
				r.Body.Close()
				mu.Lock()
				exact = append(exact, ok)
				n := len(exact)
				mu.Unlock()
				if n == 1 {
					<-r.Context().Done() // the attempt hangs: a copy answers
					return nil, r.Context().Err()
				}
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
			})
			tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
			req, _ := http.NewRequest(http.MethodGet, "http://api.test/search", bytes.NewReader(payload))
			var resp *http.Response
			var err error
			n := allocated(func() {
				resp, err = tr.RoundTrip(req)
				synctest.Wait() // the losing attempt ends
			})
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("RoundTrip = %v, %v; want the copy's 200", resp, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(exact) != 2 || !exact[0] || !exact[1] {
				t.Errorf("attempt and copy read the body exactly: %v, want [true true]", exact)
			}
			if n > bound {
				t.Errorf("a hedged call of a body of %d MiB in memory allocated %d MiB, want at most %d MiB (WithMaxBufferedBody %d MiB)",
					len(payload)>>20, n>>20, bound>>20, DefaultMaxBufferedBody>>20)
			}
		})
	})
}
