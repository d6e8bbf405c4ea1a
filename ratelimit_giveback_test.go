package resilient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// This file checks that the turns of a pace given back (see giveBack,
// cancelTurn) never let attempts pass the pace: in no window [a, b] does
// the server see more requests than the burst and the rate times b-a.

// sendLog records the (fake) times at which a server got requests.
type sendLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *sendLog) add(t time.Time) {
	l.mu.Lock()
	l.at = append(l.at, t)
	l.mu.Unlock()
}

func (l *sendLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.at)
}

// paceSlack absorbs the float rounding of a limiter's tokens.
const paceSlack = 1e-6

// passedPace returns the first window of sends in which more requests
// were sent than a pace of r a second and burst allows (burst + r·(b−a)),
// described against origin; "" when none.
func passedPace(sends []time.Time, r float64, burst int, origin time.Time) string {
	s := slices.Clone(sends)
	slices.SortFunc(s, time.Time.Compare)
	for i := range s {
		for j := i; j < len(s); j++ {
			n := j - i + 1
			if allowed := float64(burst) + r*s[j].Sub(s[i]).Seconds() + paceSlack; float64(n) > allowed {
				return fmt.Sprintf("%d requests in [%v, %v], more than the %.2f a pace of %.3g/s and burst %d allows",
					n, s[i].Sub(origin), s[j].Sub(origin), allowed-paceSlack, r, burst)
			}
		}
	}
	return ""
}

// holdServer answers 200 at once, but holds a request to /hold until
// release is closed, and records the time of every request.
type holdServer struct {
	log     sendLog
	release chan struct{}
}

func (h *holdServer) RoundTrip(r *http.Request) (*http.Response, error) {
	h.log.add(time.Now())
	if r.URL.Path == "/hold" {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// callAt starts a GET of url at d from now, with a context that ends at
// dl from now (none for 0), and reports its error to errs.
func callAt(t *testing.T, wg *sync.WaitGroup, tr http.RoundTripper, url string, d, dl time.Duration, errs chan<- error) {
	wg.Go(func() {
		time.Sleep(d)
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if dl > 0 {
			ctx, cancel = context.WithTimeout(ctx, dl-d)
		}
		defer cancel()
		resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", url, nil))
		if err == nil {
			resp.Body.Close()
		}
		if errs != nil {
			errs <- err
		}
	})
}

// TestGivenBackPartOfATokenKeepsThePace checks that a token given back
// once part of one had refilled (an attempt that took it at 1s waited for
// a slot of WithMaxInFlight until its deadline at 1.5s, and was refused)
// keeps the pace (one a second, burst 1): the part of a token it made up
// was lent by the limiter and never taken off what was owed, so that it
// made up a token again each time the limiter refilled half of one, and
// the server got a request at 3s and another at 3.6s.
func TestGivenBackPartOfATokenKeepsThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &holdServer{release: make(chan struct{})}
		tr := New(h, WithMaxRetries(0), WithMaxInFlight(1), WithRateLimit(1, 1))
		start := time.Now()
		var wg sync.WaitGroup
		refusedWhileHeld(t, &wg, tr, h, nil)
		callAt(t, &wg, tr, "https://api.test/b", 0, 0, nil)
		synctest.Wait()
		callAt(t, &wg, tr, "https://api.test/c", 0, 0, nil)
		callAt(t, &wg, tr, "https://api.test/d", 2*time.Second, 0, nil)
		wg.Wait()
		sends := h.log.times()
		if v := passedPace(sends, 1, 1, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
	})
}

// TestGiveBackWhileTurnsWaitKeepsThePace checks that a token given back
// while attempts wait for the turns of the pace lim reserved for them
// (one a second, burst 1) is not taken at once by the next call, ahead of
// them: with it, that call went at 1.6s and the waiter at 2s.
func TestGiveBackWhileTurnsWaitKeepsThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &holdServer{release: make(chan struct{})}
		tr := New(h, WithMaxRetries(0), WithMaxInFlight(1), WithRateLimit(1, 1))
		start := time.Now()
		var wg sync.WaitGroup
		refusedWhileHeld(t, &wg, tr, h, func() {
			callAt(t, &wg, tr, "https://api.test/w", 1200*time.Millisecond, 0, nil) // waits for its turn, at 2s
		})
		callAt(t, &wg, tr, "https://api.test/c", 0, 0, nil)
		wg.Wait()
		sends := h.log.times()
		if v := passedPace(sends, 1, 1, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
	})
}

// offsets returns ts as durations from origin, for messages.
func offsets(ts []time.Time, origin time.Time) []time.Duration {
	d := make([]time.Duration, len(ts))
	for i, t := range ts {
		d[i] = t.Sub(origin)
	}
	slices.Sort(d)
	return d
}

// quotaHeader announces a quota of limit an hour, one left.
func quotaHeader(limit int) http.Header {
	return http.Header{"X-Ratelimit-Limit": {fmt.Sprint(limit)}, "X-Ratelimit-Remaining": {"1"}, "X-Ratelimit-Reset": {"3600"}}
}

// changingQuota is a server that announces a quota of limit an hour (see
// quotaHeader), limit set by the test, and records its requests.
type changingQuota struct {
	log   sendLog
	mu    sync.Mutex
	limit int
}

func (q *changingQuota) set(limit int) {
	q.mu.Lock()
	q.limit = limit
	q.mu.Unlock()
}

func (q *changingQuota) RoundTrip(r *http.Request) (*http.Response, error) {
	q.log.add(time.Now())
	q.mu.Lock()
	h := quotaHeader(q.limit)
	q.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: r}, nil
}

// paceChange runs the scenario of the tests of a pace that changes while
// turns were given back: the server announces from, which paces its host
// at one request every turn; five callers take the next five turns, the
// last four give them up before the first comes (three are kept for the
// next callers, the last one lim takes back), and the first call's
// response announces to instead. It returns the server, the time of that
// response, and the Transport.
func paceChange(t *testing.T, from, to int) (*changingQuota, time.Time, *Transport) {
	q := &changingQuota{limit: from}
	tr := New(q, WithMaxRetries(0))
	const url = "https://api.test/v1/posts"
	for range 2 { // the first learns the quota, the second empties the bucket
		if err := getClosed(t, tr, url); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var cancels []context.CancelFunc
	for i := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		wg.Go(func() {
			_, err := tr.RoundTrip(newRequest(t, ctx, "GET", url, nil))
			if i == 0 && err != nil {
				t.Errorf("the first waiter: %v", err)
			}
		})
		synctest.Wait()
	}
	q.set(to) // the first waiter's response announces it
	for _, cancel := range cancels[1:] {
		cancel()
		synctest.Wait()
	}
	wg.Wait() // the first waiter was sent, at its turn
	changed := time.Now()
	cancels[0]()
	return q, changed, tr
}

// TestFreedTurnsDroppedWhenThePaceChanges checks that the turns given back
// at a pace (a quota of 3600 an hour: one every 1.05s) are not handed out
// once the server's answer slowed the pace (360 an hour: one every 10.5s):
// the calls that followed went at the old pace's turns, three in 2.1s.
func TestFreedTurnsDroppedWhenThePaceChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, changed, tr := paceChange(t, 3600, 360)
		before := len(q.log.times())
		var wg sync.WaitGroup
		for range 3 {
			callAt(t, &wg, tr, "https://api.test/v1/posts", 0, 0, nil)
		}
		wg.Wait()
		sends := q.log.times()[before-1:] // the response that slowed the pace, and the calls after it
		if v := passedPace(sends, 0.95*360/3600, 1, changed); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, changed))
		}
	})
}

// TestGivenBackTurnNotBehindThePace checks that the next call does not
// wait for a turn given back at a pace (a quota of 360 an hour: one every
// 10.5s) once the server's answer sped it up (3600 an hour: one every
// 1.05s), when the pace itself has a turn for it earlier: it waited 10.5s
// for the first turn given back, though the pace had one in 4.2s.
func TestGivenBackTurnNotBehindThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, changed, tr := paceChange(t, 360, 3600)
		if err := getClosed(t, tr, "https://api.test/v1/posts"); err != nil {
			t.Fatal(err)
		}
		// The three turns taken at the old pace are spent: the new pace
		// has its fourth turn from now.
		if d, want := time.Since(changed), 4*time.Second*100/95; d > want+time.Millisecond {
			t.Errorf("the call after the pace sped up went after %v, want %v at most", d, want)
		}
	})
}

// TestCanceledTurnGivenBackOnce checks that a turn that lim took back when
// its caller gave it up is not also kept for the next caller: the pace
// sped up (from 360 an hour, a turn every 10.5s, to 3600, one every 1.05s)
// and refilled lim's bucket while the turn still waited, so lim took it
// back whole but its bucket, full, seemed to gain nothing; the turn was
// kept too, and at its time a caller went with it while another took the
// token lim had: two requests at once, with a burst of 1.
func TestCanceledTurnGivenBackOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &changingQuota{limit: 360}
		tr := New(q, WithMaxRetries(0))
		const url = "https://api.test/v1/posts"
		for range 2 {
			if err := getClosed(t, tr, url); err != nil {
				t.Fatal(err)
			}
		}
		turn := time.Second * 3600 / 342 // 10.526s
		var wg sync.WaitGroup
		callAt(t, &wg, tr, url, 0, 0, nil) // at 1 turn: its response speeds the pace up
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		wg.Go(func() { tr.RoundTrip(newRequest(t, ctx, "GET", url, nil)) }) // at 2 turns
		synctest.Wait()
		q.set(3600)
		time.Sleep(turn + 5*time.Second) // lim's bucket is full again
		before := len(q.log.times())
		changed := time.Now()
		cancel()
		synctest.Wait()
		// One call takes the token lim has, another waits for the next
		// turn, and a third comes once lim refilled.
		for range 2 {
			callAt(t, &wg, tr, url, 0, 0, nil)
			synctest.Wait()
		}
		callAt(t, &wg, tr, url, 6*time.Second, 0, nil)
		wg.Wait()
		sends := q.log.times()[before:]
		if v := passedPace(sends, 0.95, 1, changed); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, changed))
		}
	})
}

// TestQuotaStoreStaticTokenTakenWhenSent checks that an attempt for which
// a QuotaStore holds a token for later (10s) takes its turn of the static
// limit (one every 10s) when it is sent, not before it waits: it took it
// at 0, and at 10s another call took the next turn, and the two were sent
// together.
func TestQuotaStoreStaticTokenTakenWhenSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			log.add(time.Now())
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		})
		store := new(memQuota)
		tr := New(base, WithQuotaStore(store), WithMaxRetries(0), WithRateLimit(rate.Every(10*time.Second), 1))
		const url = "https://api.test/v1/posts"
		part := store.Partition("https://api.test reads").(*memPart)
		part.take = func(n int, _ time.Time) (time.Duration, bool, <-chan struct{}) {
			if n == 1 {
				return 10 * time.Second, true, nil // the first call's token, in 10s
			}
			return 0, true, nil
		}
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, url, 0, 0, nil)
		callAt(t, &wg, tr, url, 9*time.Second, 0, nil)
		wg.Wait()
		sends := log.times()
		if v := passedPace(sends, 0.1, 1, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
		if len(sends) != 2 {
			t.Errorf("the server saw %d requests, want 2", len(sends))
		}
	})
}

// TestRateLimitGiveBacksKeepThePace checks, for several seeds, that
// callers that arrive at random times under a pace (a static limit of
// one every 0.5s to 1.5s with a burst of 1 to 3, or a learned quota),
// some of which give up while they wait and some of which a layer below
// refuses (the breaker that the server's failures open, WithMaxInFlight
// full while the test holds its slot, or a QuotaStore that holds their
// tokens for later), never make the server get more requests in a window
// than the pace allows.
func TestRateLimitGiveBacksKeepThePace(t *testing.T) {
	for _, kind := range []string{"breaker", "in-flight", "quota store", "learned"} {
		for seed := uint64(1); seed <= 8; seed++ {
			t.Run(fmt.Sprintf("%s/seed %d", kind, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { giveBacksRun(t, kind, seed) })
			})
		}
	}
}

// giveBacksRun runs one case of TestRateLimitGiveBacksKeepThePace.
func giveBacksRun(t *testing.T, kind string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9ace))
	burst := 1 + rng.IntN(3)
	every := time.Duration(500+rng.IntN(1000)) * time.Millisecond
	pace := 1 / every.Seconds()
	const callers = 60
	const span = 30 * time.Second
	type plan struct {
		at, dl, cancel time.Duration // from the start; 0 for no deadline, no cancel
		fail           bool          // the server answers 500
	}
	plans := make([]plan, callers)
	for i := range plans {
		p := &plans[i]
		p.at = time.Duration(rng.Int64N(int64(span)))
		if rng.IntN(10) < 3 {
			p.cancel = p.at + time.Millisecond + time.Duration(rng.Int64N(int64(3*every)))
		}
		p.fail = (kind == "breaker" || kind == "learned") && rng.IntN(100) < 15
	}
	// The holds of WithMaxInFlight's slot, one after another.
	type hold struct{ from, to time.Duration }
	var holds []hold
	if kind == "in-flight" {
		at := time.Duration(0)
		for {
			at += time.Duration(rng.Int64N(int64(5 * time.Second)))
			h := hold{at, at + 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))}
			if h.to > span {
				break
			}
			holds = append(holds, h)
			at = h.to + time.Millisecond
		}
		for i := range plans {
			p := &plans[i]
			if rng.IntN(2) == 0 {
				p.dl = p.at + 100*time.Millisecond + time.Duration(rng.Int64N(int64(4*time.Second)))
			}
			// An attempt that waits for a slot is refused before the hold
			// ends: one given the slot after a wait is sent after it took
			// its turn of the pace, which the pace does not see (a matter of
			// WithMaxInFlight's wait, not of the turns given back).
			for _, h := range holds {
				if p.at >= h.to-time.Millisecond && p.at <= h.to {
					p.at = h.to + time.Millisecond
				}
				if p.at < h.to && (p.dl == 0 || p.dl >= h.to) {
					p.dl = h.to - time.Millisecond
					break
				}
			}
		}
	}
	var log sendLog
	var header http.Header
	if kind == "learned" {
		// 120 a minute, 3 left: paced at 1.9 a second, a burst of 3.
		header = http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"3"}, "X-Ratelimit-Reset": {"60"}}
		burst, pace = 3, 0.95*120/60
	}
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/hold/%d", &i); err == nil {
			select {
			case <-time.After(holds[i].to - holds[i].from):
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		}
		log.add(time.Now())
		if _, err := fmt.Sscanf(r.URL.Path, "/c/%d", &i); err != nil {
			t.Errorf("unexpected request %s", r.URL)
		}
		code := http.StatusOK
		if plans[i].fail {
			code = http.StatusInternalServerError
		}
		return &http.Response{StatusCode: code, Header: header.Clone(), Body: http.NoBody, Request: r}, nil
	})
	opts := []Option{WithMaxRetries(0)}
	if kind != "learned" {
		opts = append(opts, WithRateLimit(rate.Limit(pace), burst))
	}
	switch kind {
	case "breaker", "learned":
		opts = append(opts, WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))}))
	case "in-flight":
		opts = append(opts, WithMaxInFlight(1), WithRateLimitKey(func(r *http.Request) string {
			if len(r.URL.Path) > 5 && r.URL.Path[:6] == "/hold/" {
				return "" // the holds are not paced
			}
			return "api"
		}))
	case "quota store":
		store := new(memQuota)
		opts = append(opts, WithQuotaStore(store))
		store.Partition("https://api.test reads").(*memPart).take = func(n int, _ time.Time) (time.Duration, bool, <-chan struct{}) {
			r := rand.New(rand.NewPCG(seed, uint64(n)))
			if r.IntN(2) == 0 {
				return 0, true, nil
			}
			return time.Duration(r.Int64N(int64(2 * every))), true, nil
		}
	}
	tr := New(base, opts...)
	start := time.Now()
	var wg sync.WaitGroup
	for i, h := range holds {
		wg.Go(func() {
			time.Sleep(h.from)
			if err := getClosed(t, tr, fmt.Sprintf("https://api.test/hold/%d", i)); err != nil {
				t.Errorf("hold %d: %v", i, err)
			}
		})
	}
	for i, p := range plans {
		wg.Go(func() {
			time.Sleep(p.at)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if p.dl > 0 {
				ctx, cancel = context.WithDeadline(ctx, start.Add(p.dl))
				defer cancel()
			}
			if p.cancel > 0 {
				stop := context.AfterFunc(ctx, func() {})
				defer stop()
				tm := time.AfterFunc(p.cancel-p.at, cancel)
				defer tm.Stop()
			}
			resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", fmt.Sprintf("https://api.test/c/%d", i), nil))
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	sends := log.times()
	if kind == "learned" && len(sends) > 0 {
		// The first request went before the quota was learned.
		slices.SortFunc(sends, time.Time.Compare)
		sends = sends[1:]
	}
	if v := passedPace(sends, pace, burst, start); v != "" {
		t.Errorf("%s (sent at %v)", v, offsets(sends, start))
	}
}

// TestGiveBackAfterResetHostKeepsTheNewPace checks that a token taken of a
// learned pace that Transport.ResetHost then forgot is not given back to
// the pace the server's next answer sets: that pace's bucket starts full,
// and a token it never gave was one more request than it allows. An
// attempt took a token of the first pace, waited for a slot of
// WithMaxInFlight (its breaker key's, held by another request) and was
// refused at its deadline; meanwhile the host was reset, and a request of
// another key learned a new pace (a quota of 3600 an hour, 3 left: a
// burst of 3), whose 3 tokens three calls took. The token given back went
// to a fourth call at once: 4 requests in 0.4s.
func TestGiveBackAfterResetHostKeepsTheNewPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var log sendLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/hold" {
				select {
				case <-release:
				case <-r.Context().Done():
					return nil, r.Context().Err()
				}
			} else {
				log.add(time.Now())
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{
				"X-Ratelimit-Limit": {"3600"}, "X-Ratelimit-Remaining": {"3"}, "X-Ratelimit-Reset": {"3600"},
			}, Body: http.NoBody, Request: r}, nil
		})
		// /hold and /x share a slot; the other paths have no limit nor
		// breaker. They all share the host's pace.
		slotKey := func(r *http.Request) string {
			if r.URL.Path == "/hold" || r.URL.Path == "/x" {
				return "held"
			}
			return ""
		}
		tr := New(base, WithMaxRetries(0), WithMaxInFlight(1), WithBreaker(BreakerSettings{Key: slotKey}))
		const host = "https://api.test"
		if err := getClosed(t, tr, host+"/learn"); err != nil { // the first pace: a burst of 3
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		callAt(t, &wg, tr, host+"/hold", 0, 0, nil) // holds the slot of /x
		synctest.Wait()
		errs := make(chan error, 1)
		callAt(t, &wg, tr, host+"/x", 0, time.Second, errs) // takes a token, waits for the slot
		synctest.Wait()
		nerrs := make(chan error, 4)
		paced, before := forgetAndRelearn(t, &wg, tr, &log, host+"/n/learn", nerrs)
		if err := <-errs; !errors.Is(err, ErrTooManyInFlight) {
			t.Fatalf("the call that waited for a slot: err = %v, want ErrTooManyInFlight", err)
		}
		callAt(t, &wg, tr, host+"/n/3", 0, 0, nerrs)
		synctest.Wait()
		close(release)
		checkNewPace(t, &wg, nerrs, &log, paced, before)
	})
}

// TestTurnOfAForgottenPaceNotSent checks that a call that waited for a
// turn of a learned pace that Transport.ResetHost then forgot takes a
// token of the pace the server's next answer sets, rather than be sent at
// its old turn: that pace's bucket starts full (a quota of 3600 an hour, 3
// left: a burst of 3), and three calls took its tokens; the turn, at
// 1.05s, made a fourth request 0.45s after them.
func TestTurnOfAForgottenPaceNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		var mu sync.Mutex
		remaining := "1"
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			log.add(time.Now())
			mu.Lock()
			h := http.Header{"X-Ratelimit-Limit": {"3600"}, "X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset": {"3600"}}
			mu.Unlock()
			return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithMaxRetries(0))
		const host = "https://api.test"
		for range 2 { // the first learns a burst of 1, the second empties it
			if err := getClosed(t, tr, host+"/a"); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		remaining = "3"
		mu.Unlock()
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		callAt(t, &wg, tr, host+"/w", 0, 0, errs) // waits for its turn, at 1.05s
		synctest.Wait()
		paced, before := forgetAndRelearn(t, &wg, tr, &log, host+"/learn", errs)
		checkNewPace(t, &wg, errs, &log, paced, before)
	})
}

// forgetAndRelearn forgets the pace of api.test with Transport.ResetHost
// 500ms from now, learns a new one 100ms later from learn (a full bucket
// of 3), then makes three calls of https://api.test/n/<i>, one after
// another (the quota announced counts those in flight), their errors sent
// to errs. It returns when the new pace was learned and the number of
// requests the log held then.
func forgetAndRelearn(t *testing.T, wg *sync.WaitGroup, tr *Transport, log *sendLog, learn string, errs chan error) (time.Time, int) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	tr.ResetHost("api.test")
	time.Sleep(100 * time.Millisecond)
	if err := getClosed(t, tr, learn); err != nil {
		t.Fatal(err)
	}
	paced, before := time.Now(), len(log.times())
	for i := range 3 {
		callAt(t, wg, tr, fmt.Sprintf("https://api.test/n/%d", i), 0, 0, errs)
		synctest.Wait()
	}
	return paced, before
}

// checkNewPace waits for the calls of wg, reports those of errs that
// failed, and checks that the requests the log got from the one numbered
// before, when the pace forgetAndRelearn learned (0.95/s, a burst of 3)
// came at paced, kept that pace.
func checkNewPace(t *testing.T, wg *sync.WaitGroup, errs chan error, log *sendLog, paced time.Time, before int) {
	t.Helper()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call: %v", err)
		}
	}
	sends := log.times()[before:]
	if v := passedPace(sends, 0.95, 3, paced); v != "" {
		t.Errorf("%s (sent at %v)", v, offsets(sends, paced))
	}
}

// refusedWhileHeld makes a call that holds the only slot of api.test on
// h until 1.6s, and one at 1s that takes its token of the pace, waits for
// the slot and is refused at its deadline, 1.5s; then it runs also, if
// not nil, and returns at 1.6s, once the slot is free.
func refusedWhileHeld(t *testing.T, wg *sync.WaitGroup, tr *Transport, h *holdServer, also func()) {
	t.Helper()
	callAt(t, wg, tr, "https://api.test/hold", 0, 0, nil)
	errs := make(chan error, 1)
	callAt(t, wg, tr, "https://api.test/a", time.Second, 1500*time.Millisecond, errs)
	if also != nil {
		also()
	}
	time.Sleep(1600 * time.Millisecond)
	if err := <-errs; !errors.Is(err, ErrTooManyInFlight) {
		t.Fatalf("the call that waited for a slot: err = %v, want ErrTooManyInFlight", err)
	}
	close(h.release)
	synctest.Wait()
}

// TestFreedTurnsBounded checks that the turns given back that a partition
// keeps for the next callers are bounded by maxFreed: 300 callers that
// each reserved a turn of a pace of one a second and gave it up, the last
// first given back to lim, the others in the order they were taken, left
// the partition holding a time for each beyond the bound.
func TestFreedTurnsBounded(t *testing.T) {
	now := time.Now()
	p := &partition{lim: rate.NewLimiter(1, 1)}
	p.lim.AllowN(now, 1) // the bucket empty: each caller waits a turn
	turns := make([]turn, 300)
	for i := range turns {
		turns[i] = p.reserve(now)
	}
	for _, tn := range turns {
		p.cancelTurn(tn, now)
	}
	if n := len(p.freed); n > maxFreed {
		t.Errorf("%d turns given back are kept, want %d at most", n, maxFreed)
	}
	if len(p.freed) == 0 {
		t.Error("no turn given back is kept: the test no longer exercises the bound")
	}
}
