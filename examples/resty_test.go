package examples

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/go-resty/resty/v2"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// restyWithRetries is how resty's documentation sets its retries up:
// SetRetryCount, and a condition that retries 429 and 5xx answers (by
// default resty retries only errors without a response).
func restyWithRetries(base http.RoundTripper, opts ...resilient.Option) *resty.Client {
	return resty.New().
		SetTransport(resilient.New(base, opts...)).
		SetRetryCount(2).
		AddRetryCondition(func(r *resty.Response, _ error) bool {
			return r.StatusCode() == http.StatusTooManyRequests || r.StatusCode() >= 500
		})
}

// sdkCase is a failing call of a generic HTTP client (resty,
// go-retryablehttp) against resilienttest's Altyaa API, whose route answers
// every attempt with step.
type sdkCase struct {
	name, row string
	route     string
	step      resilienttest.Step
	// honoring names the server's host with resilient.WithKeyHonoringHosts
	// on both arrangements; ignoring makes the server ignore keys.
	honoring, ignoring bool
	// The attempts, the distinct idempotency keys and the posts stored, per
	// series, before and after.
	before, after             measurement
	beforeKeys, afterKeys     int
	beforeStored, afterStored int
}

func (tc sdkCase) post() bool { return tc.route == resilienttest.RouteCreatePost }

// check runs the case's series with the SDK's defaults over resilient.New
// (series(false)) and with the recipe (series(true)), each returning the
// server attempts, the distinct keys sent and the posts stored, compares
// them with the case's figures, and the figures with docs/sdks.md's row of
// sdk.
func (tc sdkCase) check(t *testing.T, sdk string, series func(recipe bool) (measurement, int, int)) {
	t.Helper()
	before, beforeKeys, beforeStored := series(false)
	after, afterKeys, afterStored := series(true)
	if before != tc.before || after != tc.after {
		t.Errorf("server attempts: defaults %+v, recipe %+v; want %+v, %+v", before, after, tc.before, tc.after)
	}
	if beforeKeys != tc.beforeKeys || afterKeys != tc.afterKeys {
		t.Errorf("distinct idempotency keys: defaults %d, recipe %d; want %d, %d", beforeKeys, afterKeys, tc.beforeKeys, tc.afterKeys)
	}
	if beforeStored != tc.beforeStored || afterStored != tc.afterStored {
		t.Errorf("posts stored: defaults %d, recipe %d; want %d, %d", beforeStored, afterStored, tc.beforeStored, tc.afterStored)
	}
	checkDocRow(t, sdk, tc.row, before, after)
}

// serverOpts returns the options of the case's server.
func (tc sdkCase) serverOpts() []resilienttest.Option {
	return []resilienttest.Option{resilienttest.WithIgnoreIdempotencyKeys(tc.ignoring)}
}

// clientOpts returns the resilient options of the case against srv.
func (tc sdkCase) clientOpts(t *testing.T, srv *server) []resilient.Option {
	if !tc.honoring {
		return nil
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return []resilient.Option{resilient.WithKeyHonoringHosts(u.Host)}
}

// restySeries makes a series of failing calls of tc with the resty client
// client makes, and returns the server attempts, the distinct keys sent and
// the posts the server stored.
func restySeries(t *testing.T, tc sdkCase, client func(base http.RoundTripper, opts ...resilient.Option) *resty.Client) (m measurement, keys, stored int) {
	synctest.Test(t, func(t *testing.T) {
		srv := newAltyaa(t, tc.route, tc.step, tc.serverOpts()...)
		c := client(srv.Base(), tc.clientOpts(t, srv)...)
		m = series(seriesCalls, func() int { return srv.Hits("/v1/posts") }, func(i int) {
			r := c.R()
			var resp *resty.Response
			var err error
			if tc.post() {
				resp, err = r.SetBody(map[string]any{"text": "hello", "n": i}).Post(srv.URL + "/v1/posts")
			} else {
				resp, err = r.Get(srv.URL + "/v1/posts")
			}
			if err != nil {
				t.Fatalf("error %v, want the 500 response", err)
			}
			if resp.StatusCode() != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", resp.StatusCode())
			}
		})
		keys, stored = len(srv.Keys("/v1/posts")), srv.Stats().StoredWrites
	})
	return m, keys, stored
}

// TestResty measures failing GETs and POSTs with resty's retries over
// resilient.New (before) and with NewRestyClient (after).
func TestResty(t *testing.T) {
	for _, tc := range []sdkCase{
		// Each of resty's 3 attempts is a call of resilient's: 6 + 6 + 1
		// on a fresh Transport, then resty's 3 per call once resilient's
		// budget is spent.
		{name: "Get", row: "GET, 500 on every attempt", route: resilienttest.RouteListPosts,
			step:   resilienttest.Respond(http.StatusInternalServerError),
			before: measurement{13, 310, seriesCalls}, after: measurement{6, 110, seriesCalls}},
		// At a host that deduplicates writes (named): resilient resends the
		// write with its key, but each of resty's attempts is a new call
		// with a new key.
		{name: "PostHonoring", row: "POST, 500 on every attempt, host honors keys", route: resilienttest.RouteCreatePost,
			step: resilienttest.Respond(http.StatusInternalServerError), honoring: true,
			before: measurement{13, 310, seriesCalls}, after: measurement{6, 110, seriesCalls},
			beforeKeys: 3 * seriesCalls, afterKeys: seriesCalls},
		// At a host that ignores keys, each write is stored, then answered
		// with a 500: resilient does not resend it, resty does.
		{name: "PostIgnoring", row: "POST, stored then 500, host ignores keys", route: resilienttest.RouteCreatePost,
			step: resilienttest.FailAfterStoring(), ignoring: true,
			before: measurement{3, 300, seriesCalls}, after: measurement{1, 100, seriesCalls},
			beforeKeys: 3 * seriesCalls, afterKeys: seriesCalls, beforeStored: 3 * seriesCalls, afterStored: seriesCalls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, "resty", func(recipe bool) (measurement, int, int) {
				if recipe {
					return restySeries(t, tc, NewRestyClient)
				}
				return restySeries(t, tc, restyWithRetries)
			})
		})
	}
}

// TestRestyLeavesNetworkErrorsToResilient: a GET whose every attempt fails
// with a network error (resty's own retries act on errors only) is sent
// resilient's 6 times, once per attempt of one call: resty's retries, off
// under the recipe, would make each of them a call of resilient's.
func TestRestyLeavesNetworkErrorsToResilient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent int
		base := roundTripFunc(func(*http.Request) (*http.Response, error) {
			sent++
			return nil, syscall.ECONNRESET
		})
		if _, err := NewRestyClient(base).R().Get("https://api.example.test/v1/posts"); err == nil {
			t.Fatal("Get succeeded against a failing network")
		}
		if sent != 6 {
			t.Errorf("%d attempts sent, want 6", sent)
		}
	})
}

// TestRestyNilBaseIsRestysTransport: a nil base keeps the transport
// resty.New makes for its client, as a plain resty client connects (its
// pool keeps GOMAXPROCS+1 idle connections per host, where
// http.DefaultTransport keeps 2, so that concurrent calls to one host would
// otherwise open new connections), as go-retryablehttp's recipe keeps its
// pooled transport.
func TestRestyNilBaseIsRestysTransport(t *testing.T) {
	viaDefault := countDefaultTransport(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	c := NewRestyClient(nil)
	defer c.GetClient().CloseIdleConnections()
	resp, err := c.R().Get(srv.URL + "/v1/posts")
	if err != nil || resp.StatusCode() != http.StatusOK {
		t.Fatalf("Get = %v, %v; want 200", resp, err)
	}
	if n := viaDefault.Load(); n != 0 {
		t.Errorf("%d requests sent through http.DefaultTransport, want 0: a nil base is resty's own transport", n)
	}
}
