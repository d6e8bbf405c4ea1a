package bench

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/go-resty/resty/v2"
	"github.com/gojek/heimdall/v7"
	"github.com/gojek/heimdall/v7/httpclient"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/resilienthttp/resilient"
)

// maxRetries is the retry budget every library gets: ours by default, the
// peers by configuration (their own defaults differ: go-retryablehttp 4,
// failsafe-go 2, heimdall 0).
const maxRetries = resilient.DefaultMaxRetries

// waits is the backoff every library gets in one workload: the delay before
// retry n grows from base, doubling, up to max. A zero base means no wait.
// noBudget turns our retry budget off, in the workloads that fail a share
// of attempts on purpose (20 to 50%), above what the budget pays for: they
// measure what a retry does, not how many the budget allows (the budget has
// workloads of its own, in budget_test.go).
type waits struct {
	base, max time.Duration
	noBudget  bool
}

var (
	// defaultWaits are our defaults, given to every peer in the happy-path
	// workloads, where no call ever waits.
	defaultWaits = waits{base: resilient.DefaultBackoffBase, max: resilient.DefaultBackoffMax}
	// noWaits is for the workload that measures connections, not time.
	noWaits = waits{noBudget: true}
	// scaledWaits are the defaults scaled down 500 times in base (and
	// 3,000 times in cap), equally for every library, so that the outage,
	// flaky and write workloads finish in seconds.
	scaledWaits = waits{base: time.Millisecond, max: 10 * time.Millisecond}
	// scaledWaitsNoBudget are scaledWaits for the flaky and write
	// workloads.
	scaledWaitsNoBudget = waits{base: time.Millisecond, max: 10 * time.Millisecond, noBudget: true}
)

// A doer sends one call the way a user of a library does, and returns what
// the caller gets.
type doer func(*http.Request) (*http.Response, error)

// A peer is one library under test, in one configuration.
type peer struct {
	name string
	// breaker reports whether the configuration has a circuit breaker.
	breaker bool
	// build returns the library sending its attempts through base.
	build func(base http.RoundTripper, w waits) doer
	// deadline reports whether the calls carry a caller's deadline (see
	// callerContext).
	deadline bool
}

// callerDeadline is how far ahead the deadline of the calls of a peer with
// deadline lies: before the end of our call budget (5 minutes), as that of
// a service's inbound request or of http.Client.Timeout usually does, and
// after the end of any benchmark.
const callerDeadline = 2 * time.Minute

// callerContext returns the context of p's calls, and its cancel function:
// one with a deadline callerDeadline ahead when p.deadline is set, else
// context.Background().
func (p peer) callerContext() (context.Context, context.CancelFunc) {
	if p.deadline {
		return context.WithTimeout(context.Background(), callerDeadline)
	}
	return context.Background(), func() {}
}

// The names of the peers, as they appear in benchmark names.
const (
	nameBare            = "bare"
	nameOurs            = "resilient"
	nameOursNoBreaker   = "resilient-nobreaker"
	nameOursDeadline    = "resilient-deadline"
	nameOursKeyHosts    = "resilient-keyhosts"
	nameRetryableRT     = "retryablehttp-roundtripper"
	nameRetryableClient = "retryablehttp-client"
	nameFailsafeBreaker = "failsafe-retry+breaker"
	nameFailsafe        = "failsafe-retry"
	nameHeimdall        = "heimdall"
	nameResty           = "resty"
)

// allPeers lists every configuration, the bare transport first.
var allPeers = []peer{
	{name: nameBare, build: bare},
	{name: nameOurs, breaker: true, build: ours},
	{name: nameOursNoBreaker, build: oursWithoutBreaker},
	{name: nameRetryableRT, build: retryableRoundTripper},
	{name: nameRetryableClient, build: retryableClient},
	{name: nameFailsafeBreaker, breaker: true, build: failsafeRetryBreaker},
	{name: nameFailsafe, build: failsafeRetry},
	{name: nameHeimdall, build: heimdallClient},
	{name: nameResty, build: restyClient},
}

// happyPeers are the configurations of the happy-path workloads: allPeers,
// and ours with calls under a caller's deadline, whose attempts need no
// context of their own (the base enforces the deadline, which ends before
// the call's budget).
var happyPeers = append(allPeers[:3:3], append([]peer{{name: nameOursDeadline, breaker: true, build: ours, deadline: true}}, allPeers[3:]...)...)

// peers returns the configurations of allPeers that keep keep.
func peers(keep func(peer) bool) []peer {
	var ps []peer
	for _, p := range allPeers {
		if keep(p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// retrying keeps every configuration without a breaker that retries.
func retryingWithoutBreaker(p peer) bool { return p.name != nameBare && !p.breaker }

// bare is the plain http.Client over base: no retries at all.
func bare(base http.RoundTripper, _ waits) doer {
	return (&http.Client{Transport: base}).Do
}

// ourOptions returns the options every workload gives our Transport: our
// defaults, with the workload's waits.
func ourOptions(w waits) []resilient.Option {
	opts := []resilient.Option{resilient.WithMaxRetries(maxRetries), resilient.WithBackoff(w.base, w.max)}
	if w.noBudget {
		opts = append(opts, resilient.WithoutRetryBudget())
	}
	return opts
}

// ours is our Transport with its defaults (the whole chain, breaker and rate
// limiter included), as resilient.NewClient builds it, except for the waits.
func ours(base http.RoundTripper, w waits) doer {
	return (&http.Client{Transport: resilient.New(base, ourOptions(w)...)}).Do
}

// oursKeyHosts is ours told that the benchmarks' server, on the loopback
// address, deduplicates writes by key (WithKeyHonoringHosts), as the vendor
// APIs' docs say: the only row of workload 6 that names it, to show what
// the write rule does once a host is known to honor keys.
func oursKeyHosts(base http.RoundTripper, w waits) doer {
	opts := append(ourOptions(w), resilient.WithKeyHonoringHosts("127.0.0.1"))
	return (&http.Client{Transport: resilient.New(base, opts...)}).Do
}

// oursWithoutBreaker is ours with the circuit breaker turned off.
func oursWithoutBreaker(base http.RoundTripper, w waits) doer {
	return (&http.Client{Transport: resilient.New(base, oursNoBreaker(ourOptions(w)...)...)}).Do
}

// oursNoBreaker returns opts plus the option that turns our circuit breaker
// off. It is the only place that knows how.
func oursNoBreaker(opts ...resilient.Option) []resilient.Option {
	return append(opts, resilient.WithoutBreaker())
}

// newRetryableClient returns a go-retryablehttp Client over base with our
// retry budget and waits. Its default retry policy (DefaultRetryPolicy)
// already retries network errors, 429 and 5xx but 501, and its default
// backoff (DefaultBackoff) is min(max, base·2^n) without jitter, or the
// server's Retry-After. Its default logger, which writes a line to stderr
// for every request, is turned off: ours logs nothing by default.
func newRetryableClient(base http.RoundTripper, w waits) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: base}
	c.Logger = nil
	c.RetryMax = maxRetries
	c.RetryWaitMin, c.RetryWaitMax = w.base, w.max
	return c
}

// retryableRoundTripper is go-retryablehttp used as a RoundTripper under a
// plain http.Client.
func retryableRoundTripper(base http.RoundTripper, w waits) doer {
	rt := &retryablehttp.RoundTripper{Client: newRetryableClient(base, w)}
	return (&http.Client{Transport: rt}).Do
}

// retryableClient is go-retryablehttp's own Client: each call converts the
// request with FromRequest, as its users do.
func retryableClient(base http.RoundTripper, w waits) doer {
	c := newRetryableClient(base, w)
	return func(req *http.Request) (*http.Response, error) {
		rreq, err := retryablehttp.FromRequest(req)
		if err != nil {
			return nil, err
		}
		return c.Do(rreq)
	}
}

// failsafePolicies returns failsafe-go's HTTP retry policy with our retry
// budget and waits (failsafehttp.NewRetryPolicyBuilder already retries
// network errors, 429 and 5xx but 501, and honors Retry-After; its backoff
// has no jitter), followed, when breaker is set, by a circuit breaker. The
// policies compose with the first outermost, so that, as in ours, every
// attempt passes the breaker.
func failsafePolicies(w waits, breaker bool) []failsafe.Policy[*http.Response] {
	rb := failsafehttp.NewRetryPolicyBuilder().WithMaxRetries(maxRetries)
	if w.base > 0 {
		rb = rb.WithBackoff(w.base, w.max)
	}
	if !breaker {
		return []failsafe.Policy[*http.Response]{rb.Build()}
	}
	// By default the retry policy retries the open breaker's refusal too,
	// waiting before each of those attempts; ours ends the call at a
	// refusal, and so does this configuration.
	rb = rb.AbortOnErrors(circuitbreaker.ErrOpen)
	return []failsafe.Policy[*http.Response]{rb.Build(), failsafeBreaker()}
}

// Our breaker's documented defaults (resilient.BreakerSettings), which
// failsafeBreaker is given: a breaker trips when at least
// breakerFailureRatio of at least breakerMinRequests attempts within
// breakerWindow failed, refuses attempts for breakerOpenTimeout, and closes
// after one successful probe.
const (
	breakerFailureRatio = 0.5
	breakerMinRequests  = 20
	breakerWindow       = 30 * time.Second
	breakerOpenTimeout  = 10 * time.Second
)

// failsafeBreaker returns failsafe-go's circuit breaker with the policy of
// ours (see breakerFailureRatio): a time-based failure rate threshold, the
// same delay before a probe and one successful probe to close, told that a
// 5xx response is a failure (by default it counts only errors, and would
// never see an HTTP outage). failsafe-go's own defaults (open after a
// single failure, for a minute) are a starting point, not a production
// setting: under 20% of failing attempts they refuse nearly every call.
func failsafeBreaker() circuitbreaker.CircuitBreaker[*http.Response] {
	return circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(resp *http.Response, err error) bool {
			return err != nil || resp != nil && resp.StatusCode >= 500
		}).
		WithFailureRateThreshold(breakerFailureRatio, breakerMinRequests, breakerWindow).
		WithDelay(breakerOpenTimeout).
		WithSuccessThreshold(1).
		Build()
}

// failsafeRetryBreaker is failsafehttp.NewRoundTripper with a retry policy
// and a circuit breaker, under a plain http.Client.
func failsafeRetryBreaker(base http.RoundTripper, w waits) doer {
	return (&http.Client{Transport: failsafehttp.NewRoundTripper(base, failsafePolicies(w, true)...)}).Do
}

// failsafeRetry is failsafehttp.NewRoundTripper with a retry policy only.
func failsafeRetry(base http.RoundTripper, w waits) doer {
	return (&http.Client{Transport: failsafehttp.NewRoundTripper(base, failsafePolicies(w, false)...)}).Do
}

// heimdallClient is heimdall's retrying httpclient with our retry budget.
// It retries network errors and every 5xx (never 429), waits with
// heimdall's exponential backoff (whole milliseconds, no jitter) or, for
// zero waits, its default NoRetrier, and also sleeps after its last
// attempt. Its default http.Client has a 30-second Timeout, which adds a
// timer to every call; it is given the same plain http.Client as the others
// instead, like for like.
func heimdallClient(base http.RoundTripper, w waits) doer {
	retrier := heimdall.NewNoRetrier()
	if w.base > 0 {
		retrier = heimdall.NewRetrier(heimdall.NewExponentialBackoff(w.base, w.max, 2, 0))
	}
	c := httpclient.NewClient(
		httpclient.WithRetryCount(maxRetries),
		httpclient.WithRetrier(retrier),
		httpclient.WithHTTPClient(&http.Client{Transport: base}),
	)
	return c.Do
}

// restyRetryable is the retry condition resty's documentation gives for
// retrying on status codes as well as on errors: a condition replaces
// resty's default (retry on any error), so it must keep err != nil itself.
// It retries what the other peers retry: network errors, 429 and 5xx but
// 501.
func restyRetryable(r *resty.Response, err error) bool {
	if err != nil {
		return true
	}
	code := r.StatusCode()
	return code == http.StatusTooManyRequests || code >= 500 && code != http.StatusNotImplemented
}

// newResty returns a resty v2 client over base with our retry budget and
// waits, configured as resty's README does for retries: SetRetryCount,
// SetRetryWaitTime and SetRetryMaxWaitTime, and AddRetryCondition with
// restyRetryable. Its backoff is min(max, base·2^n) with "equal jitter" (a
// uniform wait in [half of it, all of it), never below base: its own, and
// not optional); it ignores Retry-After unless given a SetRetryAfter
// callback, which resty does not provide, and it is not given one. It
// retries every method, POST included. Two of its defaults are left out,
// like for like: resty.New's cookie jar (a lock and a lookup per request;
// the others send none) gives way to the same plain http.Client as the
// others', and its logger, which writes a line to stderr for every failed
// attempt, is off (ours logs nothing by default). Zero waits are resty's
// retries without waiting.
func newResty(base http.RoundTripper, w waits) *resty.Client {
	return resty.NewWithClient(&http.Client{Transport: base}).
		SetLogger(discardLogger{}).
		SetRetryCount(maxRetries).
		SetRetryWaitTime(w.base).
		SetRetryMaxWaitTime(w.max).
		AddRetryCondition(restyRetryable)
}

// restyClient is resty's own request API, resty's default way: the answer's
// body read into memory by resty and closed (it reads every answer it
// retries past to its end too, so it keeps its connection), and handed to
// the caller as a byte slice. The *http.Response returned is resty's
// RawResponse, its body already read: what remains for the caller to read
// is empty. A request body that can be replayed (GetBody set, as from a
// []byte) is given to resty as a []byte, as its users pass one; one that
// cannot is given as an io.Reader, which resty reads all into memory to
// give net/http a GetBody, as the other peers do, but which its own retry
// sends again from the reader it drained: an empty body (see
// TestRestyResendsDrainedReader).
func restyClient(base http.RoundTripper, w waits) doer {
	c := newResty(base, w)
	return func(req *http.Request) (*http.Response, error) {
		r := c.R().SetContext(req.Context())
		for k, vs := range req.Header {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody != nil {
				body, err := io.ReadAll(req.Body)
				req.Body.Close()
				if err != nil {
					return nil, err
				}
				r.SetBody(body)
			} else {
				r.SetBody(req.Body)
			}
		}
		resp, err := r.Execute(req.Method, req.URL.String())
		if resp == nil || resp.RawResponse == nil {
			return nil, err
		}
		raw := resp.RawResponse
		raw.Body = http.NoBody
		return raw, err
	}
}

// discardLogger is a resty.Logger that writes nothing.
type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}
