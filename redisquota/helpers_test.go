package redisquota_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// redisAddr is the Redis the tests talk to: REDIS_ADDR, else
// 127.0.0.1:6379.
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newRedis returns a client of the test Redis, closed at the end of the
// test. A Redis that does not answer fails the test: these tests need a
// real one (.ci/run starts it).
func newRedis(t testing.TB, addr string, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// pingRedis fails t unless Redis answers at addr.
func pingRedis(t testing.TB, addr string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (%v): these tests need a real Redis; start redis-server or set REDIS_ADDR", addr, err)
	}
}

// testPrefix returns a key prefix of the test's own, and deletes its keys
// when the test ends: a page of the scan at a time, in one call, so that
// the thousands of keys a test makes (TestDroppedBudgetSyncs's fillers)
// go within the cleanup's 5s in a Redis that holds many others. (A call
// per key and pages of 100 left most of them for a day, which slowed the
// scans of every test that followed.)
func testPrefix(t testing.TB, addr string) string {
	t.Helper()
	pingRedis(t, addr)
	var b [6]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "_", "{", "(", "}", ")").Replace(t.Name())
	prefix := "rqtest:" + name + ":" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", scanPage).Result()
			if err != nil {
				return
			}
			if len(keys) > 0 {
				rdb.Unlink(ctx, keys...)
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	return prefix
}

// scanPage is the COUNT of the tests' scans of their keys: a scan visits
// the whole keyspace, which the other tests' keys fill.
const scanPage = 10000

// fleetOfTwo is two members of a fleet of a test's own: two Stores on the
// test's prefix, each with a client that counts its round trips.
type fleetOfTwo struct {
	addr, prefix string
	a, b         *redisquota.Store
	rtA, rtB     *scriptCounter
}

// twoMembers returns a fleet of two members for t, closed when t ends.
func twoMembers(t *testing.T) *fleetOfTwo {
	t.Helper()
	f := &fleetOfTwo{addr: redisAddr(), rtA: new(scriptCounter), rtB: new(scriptCounter)}
	f.prefix = testPrefix(t, f.addr)
	f.a = redisquota.New(newRedis(t, f.addr, f.rtA), redisquota.WithPrefix(f.prefix))
	t.Cleanup(func() { f.a.Close() })
	f.b = redisquota.New(newRedis(t, f.addr, f.rtB), redisquota.WithPrefix(f.prefix))
	t.Cleanup(func() { f.b.Close() })
	return f
}

// scriptCounter counts the round trips of a go-redis client, in all and
// by script (EVALSHA and EVAL by their script's hash).
type scriptCounter struct {
	mu       sync.Mutex
	total    int
	byScript map[string]int
	// ran counts the calls of each script once Redis ran them (or the
	// call failed otherwise than NOSCRIPT): byScript counts them as they
	// are sent.
	ran map[string]int

	// leases, when set before the client's first call, holds the calls
	// of the lease script (the first of a partition reads its state)
	// until it is closed.
	leases chan struct{}
}

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.total++
		lease := false
		if a := cmd.Args(); len(a) > 1 {
			if name, _ := a[0].(string); strings.EqualFold(name, "evalsha") {
				if c.byScript == nil {
					c.byScript = make(map[string]int)
				}
				c.byScript[a[1].(string)]++
				lease = a[1] == redisquota.LeaseHash
			}
		}
		c.mu.Unlock()
		if lease && c.leases != nil {
			select {
			case <-c.leases:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := next(ctx, cmd)
		if a := cmd.Args(); len(a) > 1 && (err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT")) { // a NOSCRIPT is sent again as EVAL
			if name, _ := a[0].(string); strings.EqualFold(name, "evalsha") {
				c.mu.Lock()
				if c.ran == nil {
					c.ran = make(map[string]int)
				}
				c.ran[a[1].(string)]++
				c.mu.Unlock()
			}
		}
		return err
	}
}

func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.total++
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (c *scriptCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *scriptCounter) script(hash string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byScript[hash]
}

// scriptRan returns the calls of the script hash that Redis answered (or
// that failed), which script counts as they are sent.
func (c *scriptCounter) scriptRan(hash string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ran[hash]
}

// freePort returns a loopback port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// redisServer is a redis-server of a test's own, which it may stop and
// start again on the same port.
type redisServer struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// startRedisServer starts a redis-server on a free loopback port, stopped
// at the end of the test. A machine without redis-server fails the test.
func startRedisServer(t testing.TB) *redisServer {
	t.Helper()
	r := &redisServer{t: t, port: freePort(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatalf("redis-server is not installed (%v): these tests need it (.ci/run installs it)", err)
	}
	r.cmd = exec.Command(path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d does not answer: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server and waits for it to exit.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// replyDropper is a go-redis hook that loses the reply of the first command
// that cmd matches, or of the first pipeline one of whose commands pipe
// matches (by their arguments): the command runs in Redis, and the caller
// gets a timeout, as when the reply is late. It counts the matching calls
// that got their reply after that.
type replyDropper struct {
	cmd, pipe func(args []any) bool // nil: none

	mu        sync.Mutex
	dropped   bool
	delivered int
}

func (h *replyDropper) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *replyDropper) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.cmd == nil || !h.cmd(cmd.Args()) {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil {
			return err
		}
		return h.drop(cmd)
	}
}

func (h *replyDropper) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		match := false
		for _, cmd := range cmds {
			match = match || h.pipe != nil && h.pipe(cmd.Args())
		}
		if err := next(ctx, cmds); !match || err != nil {
			return err
		}
		return h.drop(cmds...)
	}
}

// drop loses the replies of cmds, the first time; after that, it counts
// them delivered.
func (h *replyDropper) drop(cmds ...redis.Cmder) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dropped {
		h.delivered++
		return nil
	}
	h.dropped = true
	for _, cmd := range cmds {
		cmd.SetErr(context.DeadlineExceeded)
	}
	return context.DeadlineExceeded
}

func (h *replyDropper) counts() (dropped bool, delivered int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped, h.delivered
}

// untilStopped runs step over and over on n goroutines of wg, until stop is
// closed (looked at before each step).
func untilStopped(wg *sync.WaitGroup, stop <-chan struct{}, n int, step func()) {
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				step()
			}
		})
	}
}

// scriptStore returns a Store under a prefix of the test's own, closed
// when the test ends, a client of its Redis for the test to read and write
// the Store's keys itself, and the prefix.
func scriptStore(t *testing.T) (*redisquota.Store, *redis.Client, string) {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	return s, newRedis(t, addr), prefix
}

// spendFleet writes under key the state of a fleet's bucket of 10 tokens
// per 10s whose tokens other members took until d from now, on Redis's
// clock.
func spendFleet(t *testing.T, rdb *redis.Client, key string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, map[string]any{"limit": 10, "window": 10000000, "tat": now.Add(d).UnixMicro()}).Err(); err != nil {
		t.Fatal(err)
	}
}
