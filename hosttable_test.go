package resilient

import (
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// testKey is a tableKey whose hash the test chooses: bits keeps only the
// low bits of the string's hash, so that keys collide in chains.
type testKey struct {
	s    string
	bits uint
}

func (k testKey) hash(seed maphash.Seed) uint64 {
	h := maphash.String(seed, k.s)
	if k.bits < 64 {
		h &= 1<<k.bits - 1
	}
	return h
}

type testVal struct {
	key  testKey
	node tableNode[testKey, testVal]
}

// tableModel runs a hostTable against a map, with the table's owner lock.
type tableModel struct {
	mu sync.Mutex
	t  hostTable[testKey, testVal]
	m  map[testKey]*testVal
}

func newTableModel() *tableModel {
	tm := &tableModel{m: make(map[testKey]*testVal)}
	tm.t.init()
	return tm
}

// insert adds k, its value embedding its node unless alias is set, in
// which case k is added as another key of the value of to.
func (tm *tableModel) insert(k testKey, alias bool, to testKey) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.m[k] != nil {
		return
	}
	if v := tm.m[to]; alias && v != nil {
		tm.t.insert(k, tm.t.hashOf(k), v, nil)
		tm.m[k] = v
		return
	}
	v := &testVal{key: k}
	tm.t.insert(k, tm.t.hashOf(k), v, &v.node)
	tm.m[k] = v
}

func (tm *tableModel) delete(k testKey) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	v := tm.m[k]
	var held bool
	if v != nil && v.key == k && len(k.s)%2 == 0 {
		held = tm.t.deleteNode(&v.node) // the value's own node, or its copy
	} else {
		held = tm.t.delete(k)
	}
	if held != (v != nil) {
		panic("delete of " + k.s + ": held " + strconv.FormatBool(held))
	}
	delete(tm.m, k)
}

// filter keeps the keys whose value keep accepts, with every alias.
func (tm *tableModel) filter(keep func(v *testVal) bool) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.t.filter(func(_ testKey, v *testVal) bool { return keep(v) })
	for k, v := range tm.m {
		if !keep(v) {
			delete(tm.m, k)
		}
	}
}

func (tm *tableModel) check(t *testing.T) {
	t.Helper()
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.t.len() != len(tm.m) {
		t.Fatalf("len %d, want %d", tm.t.len(), len(tm.m))
	}
	for k, v := range tm.m {
		if got := tm.t.load(k); got != v {
			t.Fatalf("load(%v) = %p, want %p", k, got, v)
		}
	}
	n := 0
	b := *tm.t.buckets.Load()
	for i := range b {
		for nd := b[i].Load(); nd != nil; nd = nd.next.Load() {
			n++
			if tm.m[nd.key] != nd.val || nd.hash != tm.t.hashOf(nd.key) {
				t.Fatalf("node %v holds %p (hash %x), want %p", nd.key, nd.val, nd.hash, tm.m[nd.key])
			}
		}
	}
	if n != len(tm.m) {
		t.Fatalf("%d nodes in the chains, want %d", n, len(tm.m))
	}
}

// TestHostTableModel runs random inserts (some of them aliases of another
// key's value), deletes, loads, filters and clears against a map, with
// keys that collide in long chains and keys that do not, through the
// table's growth.
func TestHostTableModel(t *testing.T) {
	t.Parallel()
	for _, bits := range []uint{2, 6, 64} {
		rnd := rand.New(rand.NewPCG(uint64(bits), 3))
		tm := newTableModel()
		key := func() testKey { return testKey{strconv.Itoa(rnd.IntN(600)), bits} }
		for op := range 20000 {
			switch r := rnd.IntN(100); {
			case r < 50:
				tm.insert(key(), r < 10, key())
			case r < 90:
				tm.delete(key())
			case r < 99:
				k := key()
				if got, want := tm.t.load(k), tm.m[k]; got != want {
					t.Fatalf("bits %d, op %d: load(%v) = %p, want %p", bits, op, k, got, want)
				}
			case r == 99 && op%2 == 0:
				tm.filter(func(v *testVal) bool { return len(v.key.s)%2 == 0 })
			default:
				tm.mu.Lock()
				tm.t.clear()
				clear(tm.m)
				tm.mu.Unlock()
			}
			if op%500 == 0 {
				tm.check(t)
			}
		}
		tm.check(t)
	}
}

// TestHostTableGrowth checks that growing keeps every key, that the bucket
// array stays at most four times the keys, and that clear empties it.
func TestHostTableGrowth(t *testing.T) {
	t.Parallel()
	tm := newTableModel()
	for i := range 5000 {
		tm.insert(testKey{strconv.Itoa(i), 64}, false, testKey{})
	}
	tm.check(t)
	if n, b := tm.t.len(), len(*tm.t.buckets.Load()); b > 4*n || b < 2*n {
		t.Errorf("%d buckets for %d keys, want between 2 and 4 per key", b, n)
	}
	tm.mu.Lock()
	tm.t.clear()
	tm.mu.Unlock()
	if n, b := tm.t.len(), len(*tm.t.buckets.Load()); n != 0 || b != minTableBuckets {
		t.Errorf("after clear: %d keys, %d buckets; want 0, %d", n, b, minTableBuckets)
	}
}

// TestHostTableConcurrent runs lookups without the lock against a writer
// that inserts, deletes, filters and grows the table: a key that is held
// throughout is always found, a key never inserted never is, and every
// value found is the key's own (or was, for a key deleted meanwhile).
func TestHostTableConcurrent(t *testing.T) {
	t.Parallel()
	for _, bits := range []uint{3, 64} {
		tm := newTableModel()
		stable := make([]testKey, 64)
		for i := range stable {
			stable[i] = testKey{"stable" + strconv.Itoa(i), bits}
			tm.insert(stable[i], false, testKey{})
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		for r := range 4 {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(r), 4))
				for !stop.Load() {
					k := stable[rnd.IntN(len(stable))]
					if v := tm.t.load(k); v == nil || v.key != k {
						t.Errorf("bits %d: load(%v) = %v, want its value", bits, k, v)
						return
					}
					if v := tm.t.load(testKey{"never", bits}); v != nil {
						t.Errorf("bits %d: a key never inserted was found", bits)
						return
					}
					c := testKey{"churn" + strconv.Itoa(rnd.IntN(3000)), bits}
					if v := tm.t.load(c); v != nil && v.key != c {
						t.Errorf("bits %d: load(%v) found %v's value", bits, c, v.key)
						return
					}
				}
			})
		}
		rnd := rand.New(rand.NewPCG(uint64(bits), 5))
		for i := range 3000 {
			tm.insert(testKey{"churn" + strconv.Itoa(i), bits}, false, testKey{})
			if i%3 == 2 {
				tm.delete(testKey{"churn" + strconv.Itoa(rnd.IntN(i)), bits})
			}
			if i%500 == 499 {
				tm.filter(func(v *testVal) bool { return v.key.s[0] == 's' || len(v.key.s)%2 == 0 })
			}
		}
		stop.Store(true)
		wg.Wait()
		tm.check(t)
	}
}

// TestHostTableLoadAllocates checks that a lookup allocates nothing.
func TestHostTableLoadAllocates(t *testing.T) {
	tm := newTableModel()
	k := testKey{"api.example.com", 64}
	tm.insert(k, false, testKey{})
	if n := testing.AllocsPerRun(100, func() { tm.t.load(k) }); n != 0 {
		t.Errorf("load allocates %v times", n)
	}
}

// TestBreakerSetConcurrentChurn has goroutines look up and create breakers
// of more hosts than a small set holds, some of them under another
// spelling (an alias), while others evict them: every breaker found is
// its host's, the set stays within its bound, and its table holds exactly
// the keys of the breakers in its lists.
func TestBreakerSetConcurrentChurn(t *testing.T) {
	t.Parallel()
	s := newBreakerSet(BreakerSettings{}, nil, nil)
	s.max = 16
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 6))
			for range 5000 {
				i := rnd.IntN(64)
				host, canonical := "h"+strconv.Itoa(i)+".test", "h"+strconv.Itoa(i)+".test"
				if i%4 == 0 {
					host = "H" + strconv.Itoa(i) + ".test:443" // an alias
				}
				req := &http.Request{URL: &url.URL{Scheme: "https", Host: host}}
				e := s.get(req, nil)
				if want := (breakerKey{"https", canonical}); e == nil || e.node.key != want {
					t.Errorf("get(%s) = %v, want the breaker of %v", host, e, want)
					return
				}
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	checkBreakerTable(t, s, nil)
}

// checkBreakerTable checks, s.mu held, that s's table holds exactly the
// keys of its breakers (each one's key and aliases), at most s.max, and
// calls more, when not nil, with each breaker.
func checkBreakerTable(t *testing.T, s *breakerSet, more func(e *breakerEntry)) {
	t.Helper()
	keys := 0
	s.each(func(e *breakerEntry) {
		ks := []breakerKey{e.node.key}
		if e.aliases != nil {
			ks = append(ks, *e.aliases...)
		}
		keys += len(ks)
		for _, k := range ks {
			if s.table.load(k) != e {
				t.Errorf("breakers: the table does not hold %v for its breaker", k)
			}
		}
		if more != nil {
			more(e)
		}
	})
	if n := s.table.len(); n != keys || n > s.max {
		t.Errorf("breakers: the table holds %d keys, the lists %d; want them equal and at most %d", n, keys, s.max)
	}
}

// TestBreakerSetLast checks the set's last breaker found: it serves the
// lookups of its key, and a breaker removed (evicted, or by ResetHost) is
// never returned by a lookup that starts after its removal.
func TestBreakerSetLast(t *testing.T) {
	t.Parallel()
	s := newBreakerSet(BreakerSettings{}, nil, nil)
	s.max = 4
	hot := &http.Request{URL: &url.URL{Scheme: "https", Host: "hot.test"}}
	other := func(i int) *http.Request {
		return &http.Request{URL: &url.URL{Scheme: "https", Host: "h" + strconv.Itoa(i) + ".test"}}
	}
	e1 := s.get(hot, nil)
	if got := s.get(hot, nil); got != e1 || s.last.Load() != e1 {
		t.Fatalf("get = %p, last %p; want both %p", got, s.last.Load(), e1)
	}
	// The alias of a breaker is found through the table, and not kept.
	alias := &http.Request{URL: &url.URL{Scheme: "https", Host: "HOT.test:443"}}
	if got := s.get(alias, nil); got != e1 || s.last.Load() != e1 {
		t.Fatalf("get(alias) = %p, last %p; want both %p", got, s.last.Load(), e1)
	}
	for i := range 16 { // evicts every breaker, hot's included
		s.get(other(i), nil)
	}
	if !e1.removed.Load() || s.last.Load() == e1 {
		t.Fatalf("evicted breaker: removed %v, still last %v", e1.removed.Load(), s.last.Load() == e1)
	}
	e2 := s.get(hot, nil)
	if e2 == e1 || e2.removed.Load() || s.lookup(breakerKey{"https", "hot.test"}) != e2 {
		t.Fatalf("after eviction get = %p (the evicted %p), want a breaker in the set", e2, e1)
	}
	s.get(hot, nil)
	if s.last.Load() != e2 {
		t.Fatalf("last %p, want %p", s.last.Load(), e2)
	}
	s.resetHost(hostMatcher{host: "hot.test"})
	if e3 := s.get(hot, nil); e3 == e2 || !e2.removed.Load() {
		t.Fatalf("after ResetHost get = %p, the removed one %p", e3, e2)
	}

	// A removed breaker that a racing lookup stored as last after its
	// removal is dropped by the next lookup, whatever its key.
	e4 := s.get(hot, nil)
	s.mu.Lock()
	s.remove(e4)
	s.mu.Unlock()
	s.last.Store(e4)
	if got := s.get(other(100), nil); got == e4 || s.last.Load() == e4 {
		t.Fatalf("a removed last breaker was kept (get %p, last %p)", got, s.last.Load())
	}
}

// TestBreakerSetLastConcurrent has goroutines look up one host, which
// others evict again and again by calling many hosts through a small set:
// every lookup returns the host's breaker, and once they are done, a
// lookup of the host returns its breaker in the set, and leaves no removed
// breaker as last.
func TestBreakerSetLastConcurrent(t *testing.T) {
	t.Parallel()
	s := newBreakerSet(BreakerSettings{}, nil, nil)
	s.max = 8
	hot := &http.Request{URL: &url.URL{Scheme: "https", Host: "hot.test"}}
	want := breakerKey{"https", "hot.test"}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 4000 {
				if g%2 == 0 {
					if e := s.get(hot, nil); e.node.key != want {
						t.Errorf("get(hot) = the breaker of %v", e.node.key)
						return
					}
					continue
				}
				s.get(&http.Request{URL: &url.URL{Scheme: "https", Host: "h" + strconv.Itoa(i%64) + ".test"}}, nil)
			}
		})
	}
	wg.Wait()
	e := s.get(hot, nil)
	if e.removed.Load() || s.lookup(want) != e {
		t.Errorf("get(hot) = %p (removed %v), the set holds %p", e, e.removed.Load(), s.lookup(want))
	}
	if l := s.last.Load(); l != nil && l.removed.Load() {
		t.Error("a removed breaker stays last after a lookup")
	}
}

// longestChain returns the length of the longest chain of t's buckets.
func (t *hostTable[K, V]) longestChain() int {
	longest := 0
	b := *t.buckets.Load()
	for i := range b {
		n := 0
		for node := b[i].Load(); node != nil; node = node.next.Load() {
			n++
		}
		longest = max(longest, n)
	}
	return longest
}

// TestPartitionsOfCredentialsSpread: the partitions of one host for many
// credentials (a service that calls an API with each of its users'
// tokens) spread over the table's buckets, as those of many hosts do.
// Their hash left the credential out: the 4,096 partitions of one host
// shared one chain, which every lookup of the host walked, comparing keys
// (about 100 µs a call instead of about 10, measured over 100,000 calls).
func TestPartitionsOfCredentialsSpread(t *testing.T) {
	t.Parallel()
	quota := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"60"}}
	tr := New(newCannedRT(http.StatusOK, quota), WithMaxRetries(0))
	for i := range maxRatePartitions {
		req, err := http.NewRequest(http.MethodGet, "https://api.test/v1/items", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer token-"+strconv.Itoa(i))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tr.rl.mu.Lock()
	n, longest := tr.rl.parts.len(), tr.rl.parts.longestChain()
	tr.rl.mu.Unlock()
	if n < maxRatePartitions/2 {
		t.Fatalf("%d partitions, want one per credential", n)
	}
	if longest > 12 {
		t.Errorf("%d partitions of one host, longest chain %d, want at most 12", n, longest)
	}
}

// heapInUse returns the bytes of the heap that live objects hold, after
// a collection.
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestLearnedStateBounded calls a Transport with every per-host table on
// (rate-limit partitions and the resources their answers name, breakers,
// retry budgets, hedging's latencies, WithMaxInFlight's slots, the hosts
// learned to honor keys) with distinct hosts, credentials or paths, each
// answer announcing a quota and replaying a key, a third of them 503s: once
// the tables are full, more keys do not grow the heap.
func TestLearnedStateBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 180,000 calls")
	}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		h := http.Header{
			"Idempotent-Replayed":   {"true"},
			"X-Ratelimit-Limit":     {"100"},
			"X-Ratelimit-Remaining": {"99"},
			"X-Ratelimit-Reset":     {"60"},
			"X-Ratelimit-Resource":  {"r" + strconv.Itoa(len(req.URL.Path)%50)},
		}
		status := http.StatusOK
		if len(req.URL.Host)%3 == 0 {
			status = http.StatusServiceUnavailable
		}
		return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
	})
	for _, kind := range []string{"hosts", "credentials", "paths"} {
		t.Run(kind, func(t *testing.T) {
			tr := New(base, WithMaxRetries(0), WithMaxInFlight(8), WithHedging(Hedging{}))
			call := func(i int) {
				req, err := http.NewRequest(http.MethodGet, "https://api.test/v1/items", nil)
				if err != nil {
					t.Fatal(err)
				}
				switch kind {
				case "hosts":
					req.URL.Host, req.Host = "h"+strconv.Itoa(i)+".test", ""
				case "credentials":
					req.Header.Set("Authorization", "Bearer token-"+strconv.Itoa(i))
				case "paths":
					req.URL.Path = "/v1/" + strconv.Itoa(i) + "x/items/" + strconv.Itoa(i)
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			const warm, more = 20_000, 40_000
			for i := range warm {
				call(i)
			}
			full := heapInUse()
			for i := warm; i < warm+more; i++ {
				call(i)
			}
			if grew := heapInUse() - full; grew > 4<<20 {
				t.Errorf("the heap grew by %d KiB over %d more %s", grew>>10, more, kind)
			}
			runtime.KeepAlive(tr)
		})
	}
}
