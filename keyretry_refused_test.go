package resilient_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"golang.org/x/time/rate"
)

// TestKeyRetryRefusedBelowTeachesNothing: a write refused for want of a
// key whose retry under a new key is decided, but then refused below the
// retry loop and never sent (here its turn at the rate limiter would pass
// the caller's deadline: ErrRateLimited), teaches nothing of the host, as
// a retry the budget refuses does not (TestKeyRetryNotSentTeachesNothing):
// only the retry's answer tells a host that deduplicates by key from one
// that asks for a key it does not read. The host here ignores keys: its
// other write (POST /v1/posts), stored and then failed with a 500, is
// returned after one attempt, as a plain client returns it.
func TestKeyRetryRefusedBelowTeachesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		front, ignoring := keyRequiredHost(t, resilienttest.NewPipeServer)
		// One turn per ten seconds: the key retry's turn comes after the
		// PATCH's five seconds.
		tr := resilient.New(front.Transport(), resilient.WithBackoff(time.Millisecond, time.Millisecond), resilient.WithoutBreaker(),
			resilient.WithRateLimit(rate.Every(10*time.Second), 1), resilient.WithIdempotencyMethods(http.MethodPost))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, _, err := call(t, tr, ctx, http.MethodPatch, front.URL+"/v1/posts/p1", strings.NewReader(`{"content":"edited"}`))
		if got == http.StatusOK || err != nil && !errors.Is(err, resilient.ErrRateLimited) {
			t.Fatalf("patch: %d, %v; want the 400, or the rate limiter's refusal of its retry", got, err)
		}
		if n := front.Stats().Requests; n != 1 {
			t.Fatalf("patch: %d requests reached the host, want 1 (its key retry refused by the rate limiter)", n)
		}
		if got, _, err := call(t, tr, context.Background(), http.MethodPost, front.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`)); err != nil || got != http.StatusInternalServerError {
			t.Errorf("post: %d, %v; want the 500, as a plain client gets it", got, err)
		}
		if n := ignoring.Stats().StoredWrites; n != 1 {
			t.Errorf("after a key retry refused by the rate limiter, the post was stored %d times by a host that ignores keys, want 1", n)
		}
	})
}
