package redisquota_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestHostStateReadsTheFleetBudget proves that Transport.HostState reads
// the retry budget a Store shares, as the member sees it: full before an
// outage, 7 after 3 retries of the default Burst of 10, and what its
// view regains when idle. It read -1 for every host of a Transport
// given a Store.
func TestHostStateReadsTheFleetBudget(t *testing.T) {
	addr := redisAddr()
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
	defer s.Close()
	tr := resilient.New(srv.Transport(), resilient.WithQuotaStore(s), resilient.WithoutBreaker(),
		resilient.WithMaxRetries(1), resilient.WithBackoff(time.Millisecond, time.Millisecond))
	client := &http.Client{Transport: tr}
	url := srv.URL + "/v1/usage"
	state := func() float64 {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		st, err := tr.HostState(req)
		if err != nil {
			t.Fatal(err)
		}
		return st.RetryBudget
	}
	get := func() {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	if got := state(); got != resilient.DefaultRetryBudgetBurst {
		t.Errorf("a healthy host: RetryBudget %v, want %v", got, resilient.DefaultRetryBudgetBurst)
	}
	outage(srv)
	for range 3 {
		get()
	}
	if got := state(); got != resilient.DefaultRetryBudgetBurst-3 {
		t.Errorf("after 3 retries: RetryBudget %v, want %v", got, resilient.DefaultRetryBudgetBurst-3)
	}
	b := s.Budget(srv.URL, resilient.RetryBudget{})
	redisquota.Unused(b, 20*time.Minute)
	if got := state(); got != resilient.DefaultRetryBudgetBurst-1 {
		t.Errorf("after 20 idle minutes: RetryBudget %v, want %v (one regained per ten minutes)", got, resilient.DefaultRetryBudgetBurst-1)
	}
}
