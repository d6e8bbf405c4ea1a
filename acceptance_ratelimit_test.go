package resilient_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// This file checks issue 6's rate limiter from outside the package, as a
// user who read the issue would: through the public API and a
// resilienttest server only.

// TestRateLimitPartitionIsTheHost: issue 6 keeps "one state per host and
// class", and a host is one whatever the case of its name or whether its
// URL spells the scheme's default port: a 429 that pauses the reads of
// http://altyaa.test holds those of http://ALTYAA.test and
// http://altyaa.test:80 too (the server sees nothing during the pause),
// and HostState reads the same partition under every spelling.
func TestRateLimitPartitionIsTheHost(t *testing.T) {
	for _, spelling := range []string{"ALTYAA.test", "Altyaa.Test", "altyaa.test:80"} {
		t.Run(spelling, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const route = "GET /v1/posts"
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
					resilienttest.WithScript(route, resilienttest.RateLimited(20*time.Second)))
				defer srv.Close()
				tr := resilient.New(srv.Transport(), resilient.WithMaxRetries(0))
				if code, _, err := call(t, tr, context.Background(), "GET", srv.URL+"/v1/posts", nil); code != 429 {
					t.Fatalf("first call: %d, %v; want the scripted 429", code, err)
				}
				other := "http://" + spelling + "/v1/posts"
				if !strings.HasPrefix(srv.URL, "http://altyaa.test") {
					t.Fatalf("the server's URL is %s, want http://altyaa.test", srv.URL)
				}
				req, err := http.NewRequest("GET", other, nil)
				if err != nil {
					t.Fatal(err)
				}
				hs, err := tr.HostState(req)
				if err != nil || hs.Reads.PausedUntil.IsZero() {
					t.Errorf("HostState(%s).Reads = %+v, %v; want the pause of %s", other, hs.Reads, err, srv.URL)
				}
				start := time.Now()
				code, _, err := call(t, tr, context.Background(), "GET", other, nil)
				waited := time.Since(start)
				if code != 200 || waited < 20*time.Second {
					t.Errorf("a read of %s during the pause: %d, %v after %v; want the 200 once the 20s pause is over", other, code, err, waited)
				}
				if got := srv.Stats().Attempts[route]; got != 2 {
					t.Errorf("the server saw %d attempts, want 2 (the 429, then the read after the pause)", got)
				}
			})
		})
	}
}
