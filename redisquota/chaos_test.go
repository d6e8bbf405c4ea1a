package redisquota_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

var (
	fleetChaosLong = flag.Bool("fleetchaos.long", false, "run TestFleetChaos's script for a minute instead of 16s")
	fleetChaosSeed = flag.Uint64("fleetchaos.seed", 0, "seed of TestFleetChaos (0: its fixed default)")
	fleetChaosLost = flag.Bool("fleetchaos.lost429", false, "lose the answer of every 429 TestFleetChaos's script arms, as a DropAfter fault does to one in 50")
)

// Settings of TestFleetChaos.
const (
	fcLimit     = 150             // the server's quota per window
	fcWindow    = 2 * time.Second // the server's fixed window
	fcWorkers   = 10              // goroutines per member
	fcStart     = 4               // members at the start
	fcMaxAlive  = 6               // members alive at once, at most
	fcLatency   = 5 * time.Millisecond
	fcOutageFor = 3 * time.Second
	// fcLateSlack is how far past its deadline a call may return: the
	// Transport cuts every wait at the deadline, and what is left is the
	// scheduling of a loaded, race-enabled 2-core machine.
	fcLateSlack = 500 * time.Millisecond
)

var fcBudget = resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1}

// fcAPI is the quota'd endpoint of TestFleetChaos: fixed windows of
// fcWindow from start, fcLimit requests each, announced with the IETF
// draft's RateLimit and RateLimit-Policy headers; a request past the quota
// is answered 429 with Retry-After (the seconds to the window's end,
// rounded up, at least 1). The test can arm a 429 for the next request,
// and put the endpoint in an outage (500 to every request).
type fcAPI struct {
	start time.Time

	mu        sync.Mutex
	used      map[int64]int
	armed     time.Duration // Retry-After of the next request's 429; 0 for none
	loseArmed bool          // the armed 429's connection is dropped instead of answered
	outage    bool
	tooMany   []fcPause // the 429s answered
	overs     int       // 429s for the quota spent
	answered  int
}

// fcPause is one 429: when it was answered, and its Retry-After. The
// answer carries its index in fcAPI.tooMany (X-Pause), by which the test
// knows whether a member received it.
type fcPause struct {
	at      time.Time
	ra      time.Duration
	member  int    // the member whose call got it
	attempt string // the request's X-Attempt
}

func (a *fcAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	idx := int64(now.Sub(a.start) / fcWindow)
	end := a.start.Add(time.Duration(idx+1) * fcWindow)
	h := w.Header()
	if a.outage {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":{"code":"internal","message":"outage"}}`))
		return
	}
	a.used[idx]++
	n := a.used[idx]
	secs := int64((end.Sub(now) + time.Second - 1) / time.Second)
	h.Set("RateLimit", `"default";r=`+strconv.Itoa(max(fcLimit-n, 0))+";t="+strconv.FormatInt(secs, 10))
	h.Set("RateLimit-Policy", `"default";q=`+strconv.Itoa(fcLimit)+";w="+strconv.Itoa(int(fcWindow/time.Second)))
	ra, lose := time.Duration(0), false
	switch {
	case a.armed > 0:
		ra, a.armed, lose = a.armed, 0, a.loseArmed
	case n > fcLimit:
		ra = time.Duration(max(secs, 1)) * time.Second
		a.overs++
	}
	if ra > 0 {
		// The time the answer leaves, for the pause's check: the member
		// receives it later, and pauses from then.
		member, _, _ := strings.Cut(r.Header.Get("X-Call"), "-")
		m, _ := strconv.Atoi(member)
		a.tooMany = append(a.tooMany, fcPause{at: time.Now(), ra: ra, member: m, attempt: r.Header.Get("X-Attempt")})
		if lose {
			// Answered, then lost with its connection, as a DropAfter
			// fault loses it (the request was processed: net/http may
			// send it again, or the Transport retries it).
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		h.Set("Retry-After", strconv.Itoa(int(ra/time.Second)))
		h.Set("X-Pause", strconv.Itoa(len(a.tooMany)-1))
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
		return
	}
	a.answered++
	w.Write([]byte(`{"data":{}}`))
}

// fcArrival is one request the server read: its call's and attempt's ids
// (X-Call, X-Attempt: the attempt's number in its call, from 1) and when it
// arrived and was answered.
type fcArrival struct {
	call     string
	attempt  int
	arrived  time.Time
	answered time.Time
	status   int
}

// fcMember is one member of the fleet: a Store and the Transport given it,
// and its workers.
type fcMember struct {
	id     int
	store  *redisquota.Store
	tr     *resilient.Transport
	stop   chan struct{}
	wg     sync.WaitGroup
	joined time.Time
	left   time.Time // when its workers stopped; zero while alive
	closed time.Time // when its Store was closed
}

// fcCall is what the test records of one call.
type fcCall struct {
	member   int
	start    time.Time
	deadline time.Time
	fired    time.Time // when the deadline's timer fired (end: not before the call returned)
	end      time.Time
	err      error
	status   int
}

// TestFleetChaos runs a fleet of Stores, each with a Transport given it,
// against one quota'd endpoint with random faults (5xx, connections
// dropped before and after processing), for 16 seconds of real time
// (Redis lives outside any synctest bubble): members join and leave
// (Close, while their workers still send) during the run, a random member
// resets the host, the test's own pub/sub connections are killed, 429s
// with Retry-After pause the fleet, the endpoint goes down for 3s, and one
// member falls back to local pacing after a millisecond. It then checks
// what doc.go promises: the fleet's rate at the server per window; no
// attempt during a 429's pause beyond one per worker in flight; the
// retries of the outage within the shared budget's bound; every Store's
// goroutines ended (TestMain), every key of the prefix with a TTL, and few
// keys; no call past its deadline beyond scheduling; every error of the
// documented kinds. -fleetchaos.seed picks the seed, -fleetchaos.long runs
// a minute, -fleetchaos.lost429 loses the answer of every 429 the script
// arms (the server answers it, then drops its connection, as a DropAfter
// fault does to one in 50).
func TestFleetChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16s script: about 19s of real time")
	}
	seed := *fleetChaosSeed
	if seed == 0 {
		seed = 20261201
	}
	cycles := 1
	if *fleetChaosLong {
		cycles = 4
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TestFleetChaos: -fleetchaos.seed=%d", seed)
		}
	})
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rng := mrand.New(mrand.NewPCG(seed, 7))
	var tag [4]byte
	rand.Read(tag[:])
	clientName := "rqchaos-" + hex.EncodeToString(tag[:]) // this run's connections

	api := &fcAPI{used: map[int64]int{}, loseArmed: *fleetChaosLost}
	var (
		arrMu    sync.Mutex
		arrivals []fcArrival
	)
	api.start = time.Now()
	srv := resilienttest.Wrap(api, resilienttest.Faults{
		Seed:        int64(seed),
		ServerError: 0.04,
		DropBefore:  0.02,
		DropAfter:   0.02,
	}, resilienttest.WithLatency(fcLatency), resilienttest.WithExchanges(func(e resilienttest.Exchange) {
		call, n, _ := strings.Cut(e.Header.Get("X-Attempt"), "/")
		a, _ := strconv.Atoi(n)
		arrMu.Lock()
		arrivals = append(arrivals, fcArrival{call: call, attempt: a, arrived: e.Arrived, answered: e.Answered, status: e.Status})
		arrMu.Unlock()
	}))
	defer srv.Close()
	defer srv.Transport().CloseIdleConnections()
	url := srv.URL + "/v1/items"

	// The base numbers each attempt of a call (net/http may write one
	// attempt twice, on a reused connection that died: the server then
	// reads two requests of one attempt number), and notes the 429s that
	// reached a member's Transport (by their X-Pause) and the attempts
	// whose round trip failed.
	var (
		attemptsMu sync.Mutex
		attemptsOf = map[string]int{}
		received   = map[int]bool{}
		failed     = map[string]bool{}
	)
	base := fcRoundTripFunc(func(req *http.Request) (*http.Response, error) {
		call := req.Header.Get("X-Call")
		attemptsMu.Lock()
		attemptsOf[call]++
		attempt := call + "/" + strconv.Itoa(attemptsOf[call])
		attemptsMu.Unlock()
		req = req.Clone(req.Context())
		req.Header.Set("X-Attempt", attempt)
		resp, err := srv.Transport().RoundTrip(req)
		attemptsMu.Lock()
		defer attemptsMu.Unlock()
		switch {
		case err != nil:
			failed[attempt] = true
		case resp.StatusCode == http.StatusTooManyRequests:
			if i, err := strconv.Atoi(resp.Header.Get("X-Pause")); err == nil {
				received[i] = true
			}
		}
		return resp, err
	})

	var (
		mu      sync.Mutex
		members []*fcMember
		calls   []fcCall
		resets  []time.Time
		joins   []time.Time
		nextID  int
		clients []*redis.Client
		shared  *redis.Client // a client some members share
		callSeq atomic.Int64
	)
	newClient := func(i int) *redis.Client {
		rdb := redis.NewClient(&redis.Options{Addr: addr, ClientName: clientName + "-" + strconv.Itoa(i), DialTimeout: time.Second, ContextTimeoutEnabled: true})
		clients = append(clients, rdb)
		return rdb
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	start := func() {
		mu.Lock()
		defer mu.Unlock()
		id := nextID
		nextID++
		var rdb *redis.Client
		switch {
		case id%3 == 2 && shared != nil:
			rdb = shared // several Stores on one client: several members
		case id%3 == 2:
			shared = newClient(id)
			rdb = shared
		default:
			rdb = newClient(id)
		}
		opts := []redisquota.Option{redisquota.WithPrefix(prefix)}
		if id == fcStart+1 { // the second to join, after the outage
			// This member falls back to local pacing whenever Redis takes
			// more than a millisecond, as a loaded machine often does.
			opts = append(opts, redisquota.WithFallbackAfter(time.Millisecond))
		}
		m := &fcMember{id: id, store: redisquota.New(rdb, opts...), stop: make(chan struct{}), joined: time.Now()}
		m.tr = resilient.New(base,
			resilient.WithQuotaStore(m.store),
			resilient.WithRetryBudget(fcBudget),
			resilient.WithoutBreaker(), // the outage's retries are the budget's alone to stop
			resilient.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
			resilient.WithMaxRetries(4),
			resilient.WithLogger(slog.New(slog.DiscardHandler)),
		)
		members = append(members, m)
		joins = append(joins, m.joined)
		for w := range fcWorkers {
			r := mrand.New(mrand.NewPCG(seed, uint64(id*100+w)))
			m.wg.Go(func() {
				for {
					select {
					case <-m.stop:
						return
					default:
					}
					c := fcOne(m, r, url, callSeq.Add(1))
					mu.Lock()
					calls = append(calls, c)
					mu.Unlock()
				}
			})
		}
	}
	// leave closes m's Store while its workers still send (a Transport
	// keeps its partitions, paced locally), then stops them.
	leave := func(m *fcMember) {
		m.store.Close()
		mu.Lock()
		m.closed = time.Now()
		mu.Unlock()
		time.Sleep(300 * time.Millisecond)
		close(m.stop)
		m.wg.Wait()
		mu.Lock()
		m.left = time.Now()
		mu.Unlock()
	}
	alive := func() []*fcMember {
		mu.Lock()
		defer mu.Unlock()
		var a []*fcMember
		for _, m := range members {
			if m.closed.IsZero() {
				a = append(a, m)
			}
		}
		return a
	}
	killPubSub := func() int {
		// Only this run's connections: their names carry its tag.
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		list, err := rdb.ClientList(ctx).Result()
		if err != nil {
			t.Errorf("CLIENT LIST: %v", err)
			return 0
		}
		killed := 0
		for _, line := range strings.Split(list, "\n") {
			var id, name string
			pubsub := false
			for _, f := range strings.Fields(line) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "id":
					id = v
				case "name":
					name = v
				case "sub", "psub":
					pubsub = pubsub || v != "0"
				}
			}
			if pubsub && strings.HasPrefix(name, clientName+"-") && rng.IntN(2) == 0 {
				if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
					killed++
				}
			}
		}
		return killed
	}

	// A probe of the process's scheduling: a goroutine that sleeps 5ms,
	// then yields once to the back of the run queue, and records how late
	// it got to run again. A call may return late by as much as the
	// process was held up meanwhile (a loaded machine, the race detector),
	// which no code of the Transport or the Store can help. The yield
	// makes the probe wait its turn behind the runnable goroutines, as a
	// call's goroutine woken by its deadline does: a goroutine a timer
	// wakes runs next, ahead of them, and saw a fraction of the wait.
	probeStop := make(chan struct{})
	probeDone := make(chan []fcStall)
	go func() {
		var stalls []fcStall
		for {
			select {
			case <-probeStop:
				probeDone <- stalls
				return
			default:
			}
			last := time.Now()
			time.Sleep(5 * time.Millisecond)
			runtime.Gosched()
			if now := time.Now(); now.Sub(last)-5*time.Millisecond > 20*time.Millisecond {
				stalls = append(stalls, fcStall{from: last, to: now})
			}
		}
	}()
	for range fcStart {
		start()
	}
	// The chaos: a script of events per cycle, each at a jittered time.
	type event struct {
		at   time.Duration
		what string
	}
	script := []event{
		{1000 * time.Millisecond, "kill"},
		{2000 * time.Millisecond, "429"},
		{2500 * time.Millisecond, "join"}, // during the pause
		{4500 * time.Millisecond, "reset"},
		{5500 * time.Millisecond, "leave"},
		{6500 * time.Millisecond, "429"},
		{7000 * time.Millisecond, "kill"},
		{8500 * time.Millisecond, "outage"},
		{11700 * time.Millisecond, "join"},
		{12500 * time.Millisecond, "reset"},
		{13500 * time.Millisecond, "leave"},
		{14500 * time.Millisecond, "kill"},
		{16000 * time.Millisecond, "end"},
	}
	// budgetLocal sums the retries the members' views allowed alone,
	// while a budget's sync failed or was late (Stats.BudgetLocal).
	budgetLocal := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		var n int64
		for _, m := range members {
			n += m.store.Stats().BudgetLocal
		}
		return n
	}
	var outages []fcOutage
	killed := 0
	t0 := time.Now()
	for c := range cycles {
		for _, ev := range script {
			at := time.Duration(c)*16*time.Second + ev.at + time.Duration(rng.IntN(200))*time.Millisecond
			time.Sleep(time.Until(t0.Add(at)))
			t.Logf("%v: %s", time.Since(api.start).Round(time.Millisecond), ev.what)
			switch ev.what {
			case "kill":
				killed += killPubSub()
			case "429":
				api.mu.Lock()
				api.armed = 2 * time.Second
				api.mu.Unlock()
			case "join":
				if len(alive()) < fcMaxAlive {
					start()
				}
			case "leave":
				a := alive()
				if len(a) > 2 {
					leave(a[rng.IntN(len(a))])
				}
			case "reset":
				a := alive()
				m := a[rng.IntN(len(a))]
				mu.Lock()
				resets = append(resets, time.Now())
				mu.Unlock()
				m.tr.ResetHost(srv.URL)
			case "outage":
				local0 := budgetLocal()
				api.mu.Lock()
				api.outage = true
				api.mu.Unlock()
				from := time.Now()
				time.Sleep(fcOutageFor)
				api.mu.Lock()
				api.outage = false
				api.mu.Unlock()
				outages = append(outages, fcOutage{from: from, to: time.Now(), local: budgetLocal() - local0})
			}
		}
	}
	var leaving sync.WaitGroup
	for _, m := range alive() {
		leaving.Go(func() { leave(m) })
	}
	leaving.Wait()
	end := time.Now()
	close(probeStop)
	stalls := <-probeDone
	// stalled returns how long the probe was held up in [from, to], its
	// stalls added up: a call held up by several waits its turn at each.
	stalled := func(from, to time.Time) time.Duration {
		var d time.Duration
		for _, st := range stalls {
			if st.to.After(from) && st.from.Before(to) {
				d += minTime(st.to, to).Sub(maxTime(st.from, from))
			}
		}
		return d
	}
	var stats []redisquota.Stats
	for _, m := range members {
		m.store.Close()
		stats = append(stats, m.store.Stats())
	}
	srv.Close()

	arrMu.Lock()
	arr := append([]fcArrival(nil), arrivals...)
	arrMu.Unlock()
	sort.Slice(arr, func(i, j int) bool { return arr[i].arrived.Before(arr[j].arrived) })
	api.mu.Lock()
	pauses := append([]fcPause(nil), api.tooMany...)
	overs, answered := api.overs, api.answered
	api.mu.Unlock()
	t.Logf("%v: %d members, %d calls, %d requests at the server (%d answered, %d 429s, %d for the quota), %d resets, %d pub/sub connections killed",
		end.Sub(t0).Round(time.Millisecond), len(members), len(calls), len(arr), answered, len(pauses), overs, len(resets), killed)
	for i, s := range stats {
		t.Logf("member %d: %+v", i, s)
	}

	// Distinct attempts, as the rate limiter counts them (net/http's own
	// resend of one is the same attempt).
	type key struct {
		call string
		n    int
	}
	seen := map[key]bool{}
	var attempts []fcArrival
	for _, a := range arr {
		k := key{a.call, a.attempt}
		if a.call == "" || seen[k] {
			continue
		}
		seen[k] = true
		attempts = append(attempts, a)
	}

	// workersAt counts the workers alive at t (a member's workers run
	// from its join until they stop).
	workersAt := func(from, to time.Time) int {
		n := 0
		for _, m := range members {
			if m.joined.Before(to) && (m.left.IsZero() || m.left.After(from)) {
				n += fcWorkers
			}
		}
		return n
	}
	eventsIn := func(ts []time.Time, from, to time.Time) int {
		n := 0
		for _, x := range ts {
			if !x.Before(from) && x.Before(to) {
				n++
			}
		}
		return n
	}

	// 1. The fleet's rate, per window of the server: the quota paced at
	// 95%, with the bucket's tolerance of 2%, plus one attempt per worker
	// for each event that lets the members send unpaced until a response
	// announces the quota again or their state loads (the first window, a
	// member that joins, a reset), plus the share of the quota the
	// member that falls back paces itself at, and of one closed.
	var idxMax int64
	perWindow := map[int64]int{}
	for _, a := range attempts {
		i := int64(a.arrived.Sub(api.start) / fcWindow)
		perWindow[i]++
		idxMax = max(idxMax, i)
	}
	for i := int64(0); i <= idxMax; i++ {
		from := api.start.Add(time.Duration(i) * fcWindow)
		to := from.Add(fcWindow)
		ev := eventsIn(joins, from.Add(-fcLatency), to) + eventsIn(resets, from, to)
		bound := fcLimit + int(0.02*fcLimit) + 1 + workersAt(from, to)*ev + fcLimit/fcStart
		t.Logf("window %d: %d attempts (bound %d)", i, perWindow[i], bound)
		if perWindow[i] > bound {
			t.Errorf("window %d (%v from the start): %d attempts reached the server, want at most %d (quota %d, %d events letting %d workers send unpaced)",
				i, from.Sub(api.start), perWindow[i], bound, fcLimit, ev, workersAt(from, to))
		}
	}

	// 2. No attempt during a 429's pause, but one per worker that passed
	// the rate limiter before the pause reached its member; a reset ends
	// the pause. A 429 that no member received pauses nobody, as it would
	// pause no plain client: the server answered it, then its connection
	// was dropped (a DropAfter fault, which net/http or the Transport
	// answers by sending the request again), or its attempt had given up
	// (its round trip failed). Every other 429 reached its member's
	// Transport, which must pause the fleet. A 429 that a member whose
	// Store was closed got (its workers finish their calls after Close)
	// pauses that member alone: its partitions answer from local state
	// (Store.Close).
	dropped := map[string]bool{} // the attempts the server read and dropped
	for _, a := range arr {
		if a.status == 0 {
			dropped[a.call+"/"+strconv.Itoa(a.attempt)] = true
		}
	}
	attemptsMu.Lock()
	got, gaveUp := maps.Clone(received), maps.Clone(failed)
	attemptsMu.Unlock()
	for i, p := range pauses {
		if !got[i] {
			if !dropped[p.attempt] && !gaveUp[p.attempt] {
				t.Errorf("429 at %v (Retry-After %v): no member received it, yet the server did not drop its connection and attempt %s did not fail", p.at.Sub(api.start), p.ra, p.attempt)
				continue
			}
			t.Logf("429 at %v (Retry-After %v): lost on its way to member %d (attempt %s dropped by the server: %v, failed: %v): it pauses nobody", p.at.Sub(api.start).Round(time.Millisecond), p.ra, p.member, p.attempt, dropped[p.attempt], gaveUp[p.attempt])
			continue
		}
		if m := members[p.member]; !m.closed.IsZero() && m.closed.Before(p.at) {
			t.Logf("429 at %v (Retry-After %v): to member %d, whose Store was closed: the fleet is not told", p.at.Sub(api.start).Round(time.Millisecond), p.ra, p.member)
			continue
		}
		until := p.at.Add(p.ra)
		for _, r := range resets {
			if r.After(p.at) && r.Before(until) {
				until = r
			}
		}
		n := 0
		for _, a := range attempts {
			if a.arrived.After(p.at) && a.arrived.Before(until) {
				n++
			}
		}
		t.Logf("429 at %v (Retry-After %v): %d attempts during its pause of %v", p.at.Sub(api.start).Round(time.Millisecond), p.ra, n, until.Sub(p.at).Round(time.Millisecond))
		if w := workersAt(p.at, until); n > w {
			t.Errorf("429 at %v (Retry-After %v): %d attempts arrived during its pause, want at most %d (one per worker)", p.at.Sub(api.start), p.ra, n, w)
		}
	}

	// 3. The outage's retries: about one Burst for the fleet, within
	// 2×Burst + members while Redis answers within WithFallbackAfter (the
	// member that falls back after a millisecond joins after the outage),
	// plus those a member's view allowed alone while its sync failed or
	// was late (a loaded machine's Redis calls time out): doc.go's
	// "Retry budgets".
	for _, o := range outages {
		retries := 0
		for _, a := range attempts {
			if a.attempt > 1 && !a.arrived.Before(o.from) && a.arrived.Before(o.to) {
				retries++
			}
		}
		m := workersAt(o.from, o.to) / fcWorkers
		bound := int(2*fcBudget.Burst) + m + int(o.local)
		t.Logf("outage of %v: %d retries reached the server (%d members, %d retries allowed by a member's view alone)", o.to.Sub(o.from).Round(time.Millisecond), retries, m, o.local)
		if retries > bound {
			t.Errorf("outage at %v: %d retries reached the server, want at most %d (2×Burst + %d members + %d allowed by a view alone)", o.from.Sub(api.start), retries, bound, m, o.local)
		}
	}

	// 5. Every call ends by its deadline (but for scheduling), with a
	// documented error.
	kinds := map[string]int{}
	var excused int
	var longest time.Duration
	for _, st := range stalls {
		longest = max(longest, st.to.Sub(st.from))
	}
	for _, c := range calls {
		// Lateness counts from the deadline, or from when its timer
		// fired, if later: a loaded process runs its timers late, and a
		// call cannot see its deadline before it is told.
		due := maxTime(c.deadline, c.fired)
		if c.end.Sub(due) > fcLateSlack {
			excused++ // unless reported below
		}
		if late := c.end.Sub(due); late > fcLateSlack+stalled(due.Add(-fcLateSlack), c.end) {
			t.Errorf("member %d: a call of %v at %v returned %v after its deadline (its timer fired %v late; the process stalled for %v in all meanwhile): %d, %v", c.member, c.deadline.Sub(c.start).Round(time.Millisecond), c.start.Sub(api.start).Round(time.Millisecond), late, due.Sub(c.deadline), stalled(due.Add(-fcLateSlack), c.end), c.status, c.err)
		}
		var re *resilient.Error
		switch {
		case c.err == nil:
			kinds[strconv.Itoa(c.status)]++
		case errors.As(c.err, &re):
			kinds["*resilient.Error"]++
		case errors.Is(c.err, context.DeadlineExceeded):
			kinds["deadline"]++
		default:
			kinds["other"]++
			t.Errorf("member %d: a call failed with %T %v, not a documented error", c.member, c.err, c.err)
		}
	}
	t.Logf("calls: %v; %d returned more than %v past their deadline while the process stalled (%d stalls of the probe, the longest %v)", kinds, excused, fcLateSlack, len(stalls), longest.Round(time.Millisecond))

	// 4. Nothing left in Redis without a TTL, and few keys.
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", scanPage).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl < 0 {
			t.Errorf("key %s: TTL %v (%v), want one", k, ttl, err)
		}
	}
	// One partition (state, members, give-backs), one retry budget
	// (balance, fields), the heartbeats.
	if len(keys) > 3+2+1 {
		t.Errorf("%d keys under the prefix, want at most 6: %v", len(keys), keys)
	}
}

// fcOne makes one call of member m, with a deadline drawn from r.
func fcOne(m *fcMember, r *mrand.Rand, url string, seq int64) fcCall {
	d := time.Duration(300+r.IntN(2700)) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var fired atomic.Int64 // when ctx's timer fired, in Unix ns
	stop := context.AfterFunc(ctx, func() { fired.Store(time.Now().UnixNano()) })
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("X-Call", fmt.Sprintf("%d-%d", m.id, seq))
	c := fcCall{member: m.id, start: time.Now(), deadline: deadline}
	resp, err := m.tr.RoundTrip(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.status = resp.StatusCode
	}
	c.end, c.err = time.Now(), err
	if stop() {
		// The call returned before its deadline's timer fired: on
		// time, whatever the clock says of a timer run late.
		c.fired = c.end
	} else {
		for fired.Load() == 0 { // the timer fired: wait for its time
			runtime.Gosched()
		}
		c.fired = time.Unix(0, fired.Load())
	}
	return c
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// fcOutage is an outage of the endpoint, and the retries the members'
// views allowed alone meanwhile.
type fcOutage struct {
	from, to time.Time
	local    int64
}

// fcStall is a time the process's scheduling probe was held up.
type fcStall struct{ from, to time.Time }

type fcRoundTripFunc func(*http.Request) (*http.Response, error)

func (f fcRoundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
