package redisquota

import (
	"context"
	"math"
	"strconv"

	"os"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchStore returns a Store on the test Redis, under a prefix of its own
// whose keys are deleted when the benchmark ends.
func benchStore(b *testing.B) *Store {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { rdb.Close() })
	prefix := "rqbench:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s := New(rdb, WithPrefix(prefix))
	b.Cleanup(func() {
		s.Close()
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+"*", 10000).Iterator() // pages as large as the tests' (scanPage)
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
	})
	return s
}

// benchPart returns a partition of a Store on the test Redis whose lease
// holds more tokens than a benchmark takes, all conformed already.
func benchPart(b *testing.B) (*Store, *part) {
	s := benchStore(b)
	p := s.Partition("bench").(*part)
	p.known(math.MaxInt32, time.Second)
	now := s.now()
	p.mu.Lock()
	p.installLocked(&lease{base: now - int64(time.Hour), interval: 1, n: math.MaxInt64 / 4, recv: now, expire: math.MaxInt64 / 4})
	p.mu.Unlock()
	return s, p
}

// BenchmarkTakeLeased measures Take when the member holds a leased token:
// no Redis call, no lock. It reports the 99th percentile of single calls
// as p99-ns (each timed with two clock reads, included).
func BenchmarkTakeLeased(b *testing.B) {
	_, p := benchPart(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		lat := make([]time.Duration, 0, 1<<20)
		for b.Loop() {
			t0 := time.Now()
			if _, ok, _ := p.Take(t0); !ok {
				b.Fatal("no token")
			}
			if len(lat) < cap(lat) {
				lat = append(lat, time.Since(t0))
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok, _ := p.Take(time.Now()); !ok {
					b.Error("no token")
					return
				}
			}
		})
	})
}

// TestLeaseMath checks the schedule of a lease: when its tokens conform
// and expire, and what is left.
func TestLeaseMath(t *testing.T) {
	l := &lease{base: 1000, interval: 10, n: 5, recv: 1005, expire: 20}
	// Token j conforms at max(recv, base + 10j): 1010, 1020, ..., 1050.
	for j, want := range []int64{1010, 1020, 1030, 1040, 1050} {
		if got := l.conform(int64(j + 1)); got != want {
			t.Errorf("conform(%d) = %d, want %d", j+1, got, want)
		}
	}
	if got := (&lease{base: 900, interval: 10, n: 5, recv: 1005}).conform(1); got != 1005 {
		t.Errorf("a token conformed before the lease arrived: conform(1) = %d, want 1005", got)
	}
	for _, tt := range []struct{ t, expired, left int64 }{
		{1000, 0, 5}, {1025, 0, 5}, {1030, 1, 4}, {1045, 2, 3}, {1080, 5, 0},
	} {
		if got := l.expired(tt.t); got != tt.expired {
			t.Errorf("expired(%d) = %d, want %d", tt.t, got, tt.expired)
		}
		if got := l.left(tt.t); got != tt.left {
			t.Errorf("left(%d) = %d, want %d", tt.t, got, tt.left)
		}
	}
	// Taking at 1000 reserves token 1 (wait 10), then token 2 (wait 20).
	if w, left, ok := l.take(1000, 0); !ok || w != 10 || left != 4 {
		t.Errorf("take(1000) = %d, %d, %v; want 10, 4, true", w, left, ok)
	}
	if w, _, ok := l.take(1000, 0); !ok || w != 20 {
		t.Errorf("second take(1000) = %d, %v; want 20, true", w, ok)
	}
	// At 1045, tokens 1 and 2 were taken, token 3 (1030) has not expired
	// yet (1050): it is the next.
	if w, _, ok := l.take(1045, 0); !ok || w != 0 {
		t.Errorf("take(1045) = %d, %v; want 0, true", w, ok)
	}
	// At 1065, token 4 (1040) has expired (1060) untaken: token 5 (1050,
	// expiring at 1070) is next.
	if w, left, ok := l.take(1065, 0); !ok || w != 0 || left != 0 {
		t.Errorf("take(1065) = %d, %d, %v; want 0, 0, true", w, left, ok)
	}
	if _, _, ok := l.take(1065, 0); ok {
		t.Error("a token taken from an exhausted lease")
	}
}

// TestParseLease checks the reading of the lease script's reply, and that
// a malformed one is refused; a latest reset that does not parse (no
// member writes one) is none, and refuses nothing.
func TestParseLease(t *testing.T) {
	r, ok := parseLease([]any{int64(5), "-1500", "1052.631579", int64(950), int64(1000000), "0", "1700000000000000", int64(3),
		"1699999999000000", "0123abcd", "7", "42", "9"})
	if !ok || r.granted != 5 || r.base != -1500 || r.interval != 1052.631579 || r.limit != 950 ||
		r.window != 1000000 || r.now != 1700000000000000 || r.members != 3 || r.heardAge != 42 || r.held != 9 ||
		r.reset != (fleetReset{store: "0123abcd", seq: 7, at: 1699999999000000}) {
		t.Errorf("parseLease = %+v, %v", r, ok)
	}
	lease := []any{int64(5), "-1500", "1", int64(950), int64(1000000), "0", "1700000000000000", int64(3)}
	for _, reset := range [][]any{
		{"0", "", "0"},         // none recorded
		{"x", "a", "1"},        // a time that does not parse
		{"-5", "a", "1"},       // nor a negative one
		{int64(0), "", "0"},    // an integer
		{1.5, int64(3), "1.5"}, // floats, and a Store that is not a string
	} {
		r, ok := parseLease(append(append(append([]any(nil), lease...), reset...), "-1", "-1"))
		if !ok || r.granted != 5 || r.reset.at != 0 {
			t.Errorf("parseLease with the reset %v = %+v, %v; want a lease, no reset", reset, r, ok)
		}
	}
	for _, bad := range [][]any{
		nil,
		{int64(5), "0", "1", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "x"},            // a field number that is none
		{int64(5), "0", "1", int64(1), int64(1), "0", "0", int64(1)},                                     // short: no reset
		{int64(5), "x", "1", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},           // not a number
		{int64(5), "0", "0", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},           // granted without an interval
		{int64(5), "0", "-1", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},          // negative interval
		{int64(5), "0", "1", 1.5, int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},                // a float
		{int64(0), "0", "NaN", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},         // NaN
		{int64(5), "0", "+Inf", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},        // an infinite interval: every token at once
		{int64(5), "0", "1e300", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", "-1"},       // past any window's: overflows the schedule
		{int64(5), "0", "1", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1"},                 // short: no heard age (or no field number)
		{int64(5), "0", "1", int64(1), int64(1), "0", "0", int64(1), "0", "", "0", "-1", int64(1), "-1"}, // long
	} {
		if _, ok := parseLease(bad); ok {
			t.Errorf("parseLease(%v) accepted", bad)
		}
	}
}

// TestApplyMalformed checks that a malformed message from the channel
// changes nothing.
func TestApplyMalformed(t *testing.T) {
	now := time.Now()
	s := &Store{parts: map[string]*part{}, byID: map[string]*part{}, epoch: now.Add(-time.Hour)}
	p := newPart(s, "x", "id1", s.totalField("g", 1))
	s.parts["x"], s.byID["id1"] = p, p
	for _, m := range []string{"", "p", "p id1 1", "p id1 a 1", "x id1 1 2", "p id2 2000000 1000000", "p id1 1000000 2000000", "q id1 0 1000", "p id1 1 2 3"} {
		s.apply(m, now)
	}
	if p.pause.Load() != 0 || p.limit.Load() != 0 {
		t.Fatalf("malformed messages set pause %d, limit %d", p.pause.Load(), p.limit.Load())
	}
	s.apply("p id1 3000000 1000000", now) // 2s
	if got := time.Duration(p.pause.Load() - s.since(now)); got != 2*time.Second {
		t.Errorf("pause of 2s applied as %v", got)
	}
	s.apply("p id1 100000000000 1000000", now) // past maxPause: not believed
	if got := time.Duration(p.pause.Load() - s.since(now)); got != 2*time.Second {
		t.Errorf("a pause past maxPause applied: %v", got)
	}
	s.apply("q id1 60 60000000", now)
	if p.limit.Load() != 60 || time.Duration(p.window.Load()) != time.Minute {
		t.Errorf("quota message: limit %d, window %v", p.limit.Load(), time.Duration(p.window.Load()))
	}
}
