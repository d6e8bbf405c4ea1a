package resilient

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestHeldResponseDrainedBeforeTheReplay: a PUT whose body has no GetBody
// (an upload that comes slowly, captured as it is sent) gets an early 503
// (an HTML page, which no peek reads, coming in pieces) while its body is
// still being sent; the call retries, and ends on the retry's cut by its
// budget with the 503 held. The 503 was drained after the replay took the
// caller's body over from the first attempt's writer, whose next Read then
// failed, so that net/http closed the connection the 503 was still being
// read from: the caller read its first kilobyte, then "response body
// truncated after a retry: io: read/write on closed pipe", where a plain
// client reads the whole page. It is drained before the replay now.
func TestHeldResponseDrainedBeforeTheReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		page := strings.Repeat("<p>busy</p>", 3000) // 33 KB, more than net/http's buffer
		var mu sync.Mutex
		hits := 0
		api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits++
			first := hits == 1
			mu.Unlock()
			if !first {
				io.Copy(io.Discard, r.Body)
				<-r.Context().Done() // until the call's budget cuts the retry
				return
			}
			rc := http.NewResponseController(w)
			rc.EnableFullDuplex()
			read := make(chan struct{})
			go func() { // reads the body as it comes, while it answers
				io.Copy(io.Discard, r.Body)
				close(read)
			}()
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			w.WriteHeader(http.StatusServiceUnavailable)
			for i := 0; i < len(page); i += 1 << 10 { // the page comes in pieces
				io.WriteString(w, page[i:min(i+1<<10, len(page))])
				rc.Flush()
				time.Sleep(10 * time.Millisecond)
			}
			<-read
		})
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(api))
		defer srv.Close()
		base := srv.Transport()
		defer base.CloseIdleConnections()
		pr, pw := io.Pipe()
		go func() { // an upload that comes slowly: 4 KiB in 512-byte pieces
			for range 8 {
				pw.Write([]byte(strings.Repeat("x", 512)))
				time.Sleep(10 * time.Millisecond)
			}
			pw.Close()
		}()
		req := newRequest(t, context.Background(), "PUT", srv.URL+"/v1/upload", nil)
		req.Body = pr // no GetBody: captured
		tr := New(base, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
			WithMaxBufferedBody(1<<10), WithMaxElapsed(10*time.Second))
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatalf("RoundTrip: %v; want the held 503", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		n := hits
		mu.Unlock()
		if resp.StatusCode != http.StatusServiceUnavailable || n != 2 {
			t.Fatalf("%d after %d hits, want the held 503 after 2", resp.StatusCode, n)
		}
		if len(b) != len(page) || err != nil {
			t.Errorf("held 503: read %d of its %d bytes, then %v; want the whole page, as the drain read it before the replay", len(b), len(page), err)
		}
	})
}
