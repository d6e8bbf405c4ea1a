package redisquota_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestQuietAPISparseCallsNoRoundTrip proves that a quiet API (its responses
// announce no quota) costs no Redis call per request, however sparse its
// requests: the member reads the partition's state from Redis once, when
// it first uses it, and the fleet's channel tells it the rest (a pause, a
// quota, a reset) while it holds the partition. The refiller, which stops
// after 2s without demand, read the state again each time the next request
// started it: a request every few seconds cost a Redis round trip each,
// ten times the design's budget.
func TestQuietAPISparseCallsNoRoundTrip(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	c := &scriptCounter{}
	s := redisquota.New(newRedis(t, addr, c), redisquota.WithPrefix(prefix))
	defer s.Close()
	quiet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	api := resilienttest.Wrap(quiet, resilienttest.Faults{})
	defer api.Close()
	base := api.Transport()
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: resilient.New(base, resilient.WithQuotaStore(s))}
	q := s.Partition("http://" + strings.TrimPrefix(api.URL, "http://") + " reads")
	const requests = 3
	for range requests {
		resp, err := client.Get(api.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		waitFor(t, "the refiller stops, no demand", func() bool { return !redisquota.Refilling(q) })
	}
	if n := c.script(redisquota.LeaseHash); n != 1 {
		t.Errorf("%d sparse requests to a quiet API: %d reads of the partition's state, want 1 (the first)", requests, n)
	}
}
