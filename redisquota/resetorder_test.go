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

// resetGate is a go-redis hook on the scripts (by EVALSHA): it records
// the keys of the reset runs (or, with script, of that script's), in the
// order they ran, and, by its mode, holds or fails the calls of the first
// partition (first) until the second's (second) reset ran.
type resetGate struct {
	first, second string
	mode          gateMode
	script        string // the SHA-1 of the script gated and recorded; ResetHash when empty

	names map[string]string // the partitions' names, by key

	mu        sync.Mutex
	ran       []string
	secondRan chan struct{}
	failed    chan struct{} // closed once a call of first's failed (gateDegraded)
}

// gateMode is what a resetGate does to the calls of its first partition.
type gateMode int

const (
	gateHeld     gateMode = iota // its reset waits until second's ran (300ms at most)
	gateFailing                  // its reset fails until second's ran
	gateDegraded                 // its first call (the load) fails; the next waits until second's reset ran
)

func (g *resetGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *resetGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (g *resetGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) < 4 || !strings.EqualFold(a[0].(string), "evalsha") {
			return next(ctx, cmd)
		}
		key, _ := a[3].(string)
		script := g.script
		if script == "" {
			script = redisquota.ResetHash
		}
		reset := a[1] == script
		if key == g.first {
			if err := g.gate(ctx, cmd, reset); err != nil {
				return err
			}
		}
		err := next(ctx, cmd)
		if err == nil && reset {
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

// gate applies g's mode to cmd, a call of the first partition (its reset
// when reset) made with ctx: it returns the error that fails it, or nil
// once it may go.
func (g *resetGate) gate(ctx context.Context, cmd redis.Cmder, reset bool) error {
	fail := func() error {
		err := errors.New("resetGate: the first partition's call fails")
		cmd.SetErr(err)
		return err
	}
	switch g.mode {
	case gateHeld:
		if reset {
			select {
			case <-g.secondRan:
			case <-time.After(300 * time.Millisecond):
			}
		}
	case gateFailing:
		if reset {
			select {
			case <-g.secondRan:
			default:
				return fail()
			}
		}
	case gateDegraded:
		select {
		case <-g.failed:
			select {
			case <-g.secondRan:
			case <-ctx.Done(): // the Store closed
				cmd.SetErr(ctx.Err())
				return ctx.Err()
			}
		default:
			close(g.failed)
			return fail()
		}
	}
	return nil
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
// g, and its partitions named names, whose resets (or g.script's runs) g
// records: g gates the calls of the first (first) until the second's
// (second) reset ran.
func resetOrderStore(t *testing.T, g *resetGate, names ...string) (*redisquota.Store, []resilient.QuotaPartition) {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	g.names = make(map[string]string)
	for _, name := range names {
		g.names[redisquota.StateKeyIn(prefix, name)] = name
	}
	g.first, g.second = redisquota.StateKeyIn(prefix, names[0]), redisquota.StateKeyIn(prefix, names[1])
	g.secondRan, g.failed = make(chan struct{}), make(chan struct{})
	rdb := newRedis(t, addr, g)
	if err := redisquota.LoadScripts(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	s := redisquota.New(rdb, redisquota.WithPrefix(prefix), redisquota.WithTimeout(10*time.Second))
	t.Cleanup(func() { s.Close() })
	ps := make([]resilient.QuotaPartition, len(names))
	for i, name := range names {
		ps[i] = s.Partition(name)
	}
	return s, ps
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
// wait as long as it fails. Nor does it wait for one whose partition's
// last Redis call failed: x's load failed, and its next call waits until
// y's reset ran.
func TestResetsRunInOrder(t *testing.T) {
	testWritesRunInOrder(t, redisquota.ResetHash, func(p resilient.QuotaPartition) { p.(resilient.QuotaResetter).Reset() },
		func(s redisquota.Stats) int64 { return s.ResetsSent })
}

// TestPausesRunInOrder proves the same of a Store's pauses, in the order
// of their Pauses: a global 429 pauses the host's partitions, then its
// global limit, so that a member that sees the global pause finds the
// others paused in Redis too, and its ResetHost clears them all. Before,
// each refiller wrote its pause when it could: y's ran while x's was
// held, and the host's reads, paused in Redis after another member's
// ResetHost that followed the global pause, held that member for the
// whole pause, as TestGlobalLimitResetHostByAnotherMember saw in about 1
// run of 20.
func TestPausesRunInOrder(t *testing.T) {
	testWritesRunInOrder(t, redisquota.PauseHash, func(p resilient.QuotaPartition) { p.Pause(time.Now().Add(time.Minute)) },
		func(s redisquota.Stats) int64 { return s.PausesSent })
}

// testWritesRunInOrder runs the cases of TestResetsRunInOrder with write,
// a call of a partition that the script whose SHA-1 is script writes, and
// sent, the Stats' count of those writes.
func testWritesRunInOrder(t *testing.T, script string, write func(resilient.QuotaPartition), sent func(redisquota.Stats) int64) {
	for _, c := range []struct {
		name    string
		mode    gateMode
		between int // partitions written after x, before y
		want    []string
	}{
		{"x held", gateHeld, 0, []string{"x", "y"}},
		{"x held, 200 between", gateHeld, 200, nil},
		{"x failing", gateFailing, 0, []string{"y", "x"}},
		{"x degraded", gateDegraded, 0, []string{"y", "x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			names := []string{"x", "y"}
			for i := range c.between {
				names = append(names, "p"+strconv.Itoa(i))
			}
			g := &resetGate{mode: c.mode, script: script}
			s, ps := resetOrderStore(t, g, names...)
			if c.mode == gateDegraded {
				<-g.failed // x's load failed: its refiller waits out a backoff
			}
			write(ps[0])
			for _, p := range ps[2:] {
				write(p)
			}
			write(ps[1])
			for end := time.Now().Add(10 * time.Second); sent(s.Stats()) < int64(len(names)); time.Sleep(time.Millisecond) {
				if time.Now().After(end) {
					t.Fatalf("the Store wrote %d, want %d", sent(s.Stats()), len(names))
				}
			}
			want := c.want
			if want == nil { // x, the others, then y
				want = append(append([]string{"x"}, names[2:]...), "y")
			}
			if got := g.order(); !slices.Equal(got, want) {
				t.Errorf("the writes ran in Redis in the order %q, want %q", got, want)
			}
		})
	}
}
