package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient/resilienttest"
)

// brokenBody yields n bytes of its request's body, then fails: a file
// that could not be read to its end, the caller's mistake.
type brokenBody struct{ n int }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errors.New("read upload: input/output error")
	}
	k := min(len(p), b.n)
	clear(p[:k])
	b.n -= k
	return k, nil
}

// TestRateLimitBrokenBodySpendsItsTurn: a request whose body breaks
// while net/http sends it (the caller's mistake, a RequestError) may have
// reached the host: net/http writes its header before it reads the body
// over HTTP/2, and over HTTP/1 once its buffer is full, and the host's
// limiter counts a request whose header it got. Its turn of the pace
// (WithRateLimit: one an hour) is spent, as any request that reached the
// host spends one: the next call waits for the next turn, and is refused
// (ErrRateLimited) when that is past WithMaxRetryAfter, the host getting
// no more requests than the pace allows. (Given back as a request net/http
// refused to send, every call with a broken body reached the host at once:
// the caller's bug sent past the pace the caller set.)
func TestRateLimitBrokenBodySpendsItsTurn(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool // HTTP/2
		sent int  // bytes of the body sent before it breaks
	}{
		{"HTTP/1, broken after 32 KiB", false, 32 << 10},
		{"HTTP/2, broken at its first byte", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				opts := []resilienttest.Option{resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					io.Copy(io.Discard, r.Body)
				}))}
				if tc.tls {
					opts = append(opts, resilienttest.WithTLS())
				}
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly, opts...)
				defer srv.Close()
				tr := New(srv.Transport(), WithRateLimit(rate.Every(time.Hour), 1), WithMaxRetryAfter(time.Second))
				for i := range 3 {
					req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/v1/uploads", &brokenBody{tc.sent})
					req.ContentLength = 64 << 10
					_, err := roundTrip(t, tr, req)
					synctest.Wait()
					if i == 0 && !errors.As(err, new(*RequestError)) {
						t.Fatalf("call 0: %v, want a RequestError", err)
					}
				}
				if got := hits.Load(); got != 1 {
					t.Errorf("the host got %d requests with a broken body of 3 calls; want 1: a turn an hour (WithRateLimit)", got)
				}
			})
		})
	}
}
