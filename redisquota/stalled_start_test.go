package redisquota_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// stallingServer returns the address of a TCP server that answers the
// handshake of go-redis's connections (HELLO and CLIENT, with an error,
// which go-redis takes as a Redis older than RESP3) and nothing after it:
// a Redis whose event loop stalled (or whose network went away) just after
// a connection was made. Its connections are closed when the test ends.
func stallingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { answerHandshake(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// answerHandshake reads the commands of c (RESP arrays of bulk strings),
// answers HELLO and CLIENT with an error, and nothing else, until c is
// closed.
func answerHandshake(c net.Conn) {
	rd := bufio.NewReader(c)
	line := func() string {
		s, _ := rd.ReadString('\n')
		return strings.TrimRight(s, "\r\n")
	}
	for {
		head := line()
		if head == "" {
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(head, "*"))
		var name string
		for i := range n {
			size, _ := strconv.Atoi(strings.TrimPrefix(line(), "$"))
			b := make([]byte, size+2)
			if _, err := io.ReadFull(rd, b); err != nil {
				return
			}
			if i == 0 {
				name = strings.ToLower(string(b[:size]))
			}
		}
		if name == "hello" || name == "client" {
			if _, err := c.Write([]byte("-ERR unknown command\r\n")); err != nil {
				return
			}
		}
	}
}

// TestRefillersStopWhileSubscriptionStalls proves that a partition used
// once while the Store's subscription to the fleet's channel is never
// confirmed (Redis accepts the connection, and answers nothing) does not
// keep a goroutine, nor its place in the Store's table, until Redis
// answers: its refiller stops once nobody used the partition for a while,
// as it does when Redis refuses the connection
// (TestRefillersStopWhileRedisDown), and the partition, still paced
// locally when used again, may be dropped to make room. Every refiller
// waited for the subscription, however long: 200 partitions used once
// kept 200 goroutines, and the Store's table, which drops only partitions
// whose refiller stopped, grew past its bound with every partition used.
func TestRefillersStopWhileSubscriptionStalls(t *testing.T) {
	rdb := newRedis(t, stallingServer(t))
	s := redisquota.New(rdb, redisquota.WithPrefix("rqtest:refillers-stalled-subscribe"))
	defer s.Close()
	useOnce200(t, s, ", the subscription never confirmed")
	// Its refiller stopped, a partition may be dropped to make room (see
	// Store.Partition): the Store's table stays bounded.
	for i := range 200 {
		if q := s.Partition("p" + strconv.Itoa(i)); redisquota.Refilling(q) {
			t.Errorf("p%d's refiller still runs, no demand for seconds: the partition cannot be dropped to make room", i)
		}
	}
	// The next demand starts a refiller again; the partition paces locally
	// at once, Redis having answered nothing for seconds.
	q := s.Partition("p0")
	if _, ok, _ := q.Take(time.Now()); !ok {
		t.Errorf("a partition used again, its subscription stalled for seconds, did not pace locally at once; stats %+v", s.Stats())
	}
	takeToken(t, q)
	if s.Stats().Fallbacks == 0 {
		t.Errorf("stats %+v: no token from the local limiter", s.Stats())
	}
}

// resetHolder is a go-redis hook that holds the reset script's calls on
// the key first until release is closed (or the call's context ends),
// closing held when it holds the first.
type resetHolder struct {
	first    string
	held     chan struct{}
	release  chan struct{}
	heldOnce sync.Once
}

func (h *resetHolder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *resetHolder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *resetHolder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) >= 4 && strings.EqualFold(a[0].(string), "evalsha") && a[1] == redisquota.ResetHash && a[3] == h.first {
			h.heldOnce.Do(func() { close(h.held) })
			select {
			case <-h.release:
			case <-ctx.Done():
				cmd.SetErr(ctx.Err())
				return ctx.Err()
			}
		}
		return next(ctx, cmd)
	}
}

// TestResetWaitingForEarlierFallsBack proves the fallback bound when a
// partition's reset waits for an earlier reset of the Store whose call
// Redis does not answer (Transport.ResetHost resets a host's partitions in
// order, and each waits for the Store's earlier ones): a response after
// the reset announced the quota again, and the partition's attempts pace
// locally after WithFallbackAfter, as when its own call hangs. They waited
// for the other partition's call, for as long as it lasted (WithTimeout, a
// minute here): the refiller made no call, so no call was in progress to
// fall back from.
func TestResetWaitingForEarlierFallsBack(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := &resetHolder{first: redisquota.StateKeyIn(prefix, "x"), held: make(chan struct{}), release: make(chan struct{})}
	rdb := newRedis(t, addr, h)
	if err := redisquota.LoadScripts(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	s := redisquota.New(rdb, redisquota.WithPrefix(prefix),
		redisquota.WithTimeout(time.Minute), redisquota.WithFallbackAfter(100*time.Millisecond))
	defer s.Close()
	defer close(h.release)
	x, y := s.Partition("x"), s.Partition("y")
	x.Learn(quota(100), time.Second)
	y.Learn(quota(100), time.Second)
	takeToken(t, x)
	takeToken(t, y)

	x.(resilient.QuotaResetter).Reset()
	select {
	case <-h.held:
	case <-time.After(10 * time.Second):
		t.Fatal("x's reset did not reach Redis in 10s")
	}
	y.(resilient.QuotaResetter).Reset() // waits for x's
	// The first response after the reset announces y's quota again.
	y.Learn(quota(100), time.Second)
	for i := range 3 {
		if !tokenWithin(y, 5*time.Second) {
			t.Fatalf("token %d: none in 5s while y's reset waits for x's, which Redis does not answer (WithFallbackAfter 100ms); stats %+v", i, s.Stats())
		}
	}
	if s.Stats().Fallbacks == 0 {
		t.Errorf("stats %+v: no token from the local limiter", s.Stats())
	}
}
