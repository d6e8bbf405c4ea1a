package redisquota_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// resetGate is a go-redis hook on the runs of the reset script (by
// EVALSHA): it records the keys of those that ran, in the order they
// ran, and holds or fails the first partition's (first) until the
// second's (second) ran.
type resetGate struct {
	first, second string
	fail          bool // fail first's runs until second's ran; else hold its run (300ms at most)

	names map[string]string // the partitions' names, by key

	mu        sync.Mutex
	ran       []string
	secondRan chan struct{}
}

func (g *resetGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *resetGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (g *resetGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) < 4 || !strings.EqualFold(a[0].(string), "evalsha") || a[1] != redisquota.ResetHash {
			return next(ctx, cmd)
		}
		key, _ := a[3].(string)
		if key == g.first {
			if g.fail {
				select {
				case <-g.secondRan:
				default:
					err := errors.New("resetGate: the first reset fails until the second ran")
					cmd.SetErr(err)
					return err
				}
			} else {
				select {
				case <-g.secondRan:
				case <-time.After(300 * time.Millisecond):
				}
			}
		}
		err := next(ctx, cmd)
		if err == nil {
			g.mu.Lock()
			g.ran = append(g.ran, key)
			if key == g.second {
				close(g.secondRan)
			}
			g.mu.Unlock()
		}
		return err
	}
}

// order returns the names of the partitions whose resets ran, in the
// order they ran.
func (g *resetGate) order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, len(g.ran))
	for i, k := range g.ran {
		names[i] = g.names[k]
	}
	return names
}

// resetOrderStore returns a Store, on the test Redis, whose client runs
// g, and its partitions named names, whose resets g records; it gates
// those of the first two (first and second).
func resetOrderStore(t *testing.T, g *resetGate, names ...string) (*redisquota.Store, []resilient.QuotaResetter) {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr, g)
	if err := redisquota.LoadScripts(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	s := redisquota.New(rdb, redisquota.WithPrefix(prefix), redisquota.WithTimeout(10*time.Second))
	t.Cleanup(func() { s.Close() })
	ps := make([]resilient.QuotaResetter, len(names))
	g.names = make(map[string]string)
	for i, name := range names {
		ps[i] = s.Partition(name).(resilient.QuotaResetter)
		g.names[s.PartitionKey(name)] = name
	}
	g.first, g.second, g.secondRan = s.PartitionKey(names[0]), s.PartitionKey(names[1]), make(chan struct{})
	return s, ps
}

// waitResets waits until the Store s has written n resets.
func waitResets(t *testing.T, s *redisquota.Store, n int64) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); s.Stats().ResetsSent < n; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the Store wrote %d resets, want %d", s.Stats().ResetsSent, n)
		}
	}
}

// TestResetsRunInOrder proves that a Store's resets run in Redis in the
// order of their Resets, and so reach the fleet in that order: x's reset,
// whose run the hook holds, runs before y's, reset after it, although y's
// refiller reaches Redis first; so do 200 partitions reset between the
// two, one after another. Transport.ResetHost resets a host's global
// limit last: a member whose wait for the global pause that reset ends
// finds every partition of the host reset in Redis (before this, a member
// refused a new route for the pause its reset had not cleared yet, as
// TestGlobalLimitResetHost saw in 1 run of 70). A reset does not wait for
// an earlier one whose write failed: with x's failing until y's ran, y's
// runs, and x's when Redis answers it; a reset that waited for it would
// wait as long as it fails.
func TestResetsRunInOrder(t *testing.T) {
	for _, c := range []struct {
		name    string
		fail    bool // x's fails until y's ran; else the hook holds it
		between int  // partitions reset after x, before y
	}{
		{"x held", false, 0},
		{"x held, 200 between", false, 200},
		{"x failing", true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			names := []string{"x", "y"}
			for i := range c.between {
				names = append(names, "p"+strconv.Itoa(i))
			}
			g := &resetGate{fail: c.fail}
			s, ps := resetOrderStore(t, g, names...)
			// x, the others, then y.
			order := append(append([]string{"x"}, names[2:]...), "y")
			ps[0].Reset()
			for _, p := range ps[2:] {
				p.Reset()
			}
			ps[1].Reset()
			waitResets(t, s, int64(len(names)))
			want := order
			if c.fail {
				want = []string{"y", "x"}
			}
			if got := g.order(); !slices.Equal(got, want) {
				t.Errorf("the resets ran in Redis in the order %q, want %q", got, want)
			}
		})
	}
}
