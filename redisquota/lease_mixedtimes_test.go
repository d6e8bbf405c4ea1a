package redisquota_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestMixedLeaseTimesKeepTheBucket proves that Stores of different lease
// times on one prefix (a rolling deploy that changed WithLeaseTime) do not
// grant the same tokens twice: the lease script brought the bucket's next
// token back within two windows of the quota past the caller's horizon
// (four of its lease times), and a member of the default 200ms, merely
// reading the state, moved it back past the tokens a member of 5s held
// (its horizon 20s), which the bucket then granted again.
func TestMixedLeaseTimesKeepTheBucket(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	a := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithLeaseTime(5*time.Second))
	defer a.Close()
	b := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer b.Close()
	const name = "https://api.example.com reads"
	qa := a.Partition(name)
	qa.Learn(quota(1000), time.Second)
	// A reserves tokens 4s ahead: past B's bound, two windows (2.1s of
	// 950 a second) and B's horizon (800ms).
	var last time.Time // when A's last token may go
	for end := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(end) {
			t.Fatalf("A reserved tokens until %v ahead only", time.Until(last))
		}
		d, ok, ch := qa.Take(time.Now())
		if !ok {
			select {
			case <-ch:
			case <-time.After(d):
			}
			continue
		}
		if last = time.Now().Add(d); d > 4*time.Second {
			break
		}
	}
	qb := b.Partition(name)
	waitFor(t, "B reads the state", func() bool { return redisquota.StateRead(qb) })
	v, err := rdb.HGet(ctx, a.StateKey(name), "tat").Result()
	if err != nil {
		t.Fatal(err)
	}
	tat, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The bucket's next token lies past A's last one, less the bucket's
	// tolerance (20 tokens, 21ms), and a margin.
	if back := time.Duration(float64(last.UnixMicro())-tat) * time.Microsecond; back > 100*time.Millisecond {
		t.Errorf("B's read moved the bucket's next token %v before the last token A holds: the bucket grants them again", back)
	}
}
