package redisquota_test

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestStaleWindowBoundedByMaxBelievedReset: member A believes a reset an
// hour ahead once, from a host whose quota (60 a minute) announces no
// window, and writes a window of an hour; afterwards the members see
// windows of a minute, with 59 of the 60 left. The Transport drops such an
// estimate once no response has confirmed it for two of its windows, or
// for resilient.MaxBelievedReset if that is shorter (see
// resilient.TestRateLimitWindowEstimateBoundedByMaxBelievedReset): one
// response's reset cannot slow the pace for longer than a believed pause
// may last. 70 minutes after A wrote it, nobody having reported it since,
// B's minute must replace the hour, as B's own Transport has dropped it.
// (Redis kept it for two of its windows, two hours: the fleet paced 60
// calls an hour, not a minute, for an hour longer than any Transport
// would.)
func TestStaleWindowBoundedByMaxBelievedReset(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	const name = "https://api.example.com reads"
	key := f.a.StateKey(name)
	qa, qb := f.a.Partition(name), f.b.Partition(name)
	knows := func(q resilient.QuotaPartition, w time.Duration) func() bool {
		return func() bool { l, kw := redisquota.Known(q); return l == 60 && kw == w }
	}
	qa.Learn(announced(59, time.Hour), time.Hour)
	waitFor(t, "B knows A's hour", knows(qb, time.Hour))

	// 70 minutes later (more than MaxBelievedReset, less than two hours),
	// the members see a minute.
	elapse(t, rdb, key, resilient.MaxBelievedReset+9*time.Minute, qa, qb)
	qb.Learn(announced(59, time.Minute), time.Minute)
	waitFor(t, "B reports its minute", func() bool { return f.rtB.scriptRan(redisquota.LearnHash) == 1 })
	// The counter counts B's report as it is sent, before Redis runs it:
	// the state is read until the report has had time to run.
	st := readWindow(t, rdb, key)
	for end := time.Now().Add(waitBound); st.window != time.Minute.Microseconds() && time.Now().Before(end); st = readWindow(t, rdb, key) {
		time.Sleep(time.Millisecond)
	}
	if st.window != time.Minute.Microseconds() {
		t.Fatalf("%v after A wrote an hour, nobody having reported it since, B's minute did not replace it: %+v",
			resilient.MaxBelievedReset+9*time.Minute, st)
	}
	waitFor(t, "both members pace by a minute", func() bool {
		return knows(qa, time.Minute)() && knows(qb, time.Minute)()
	})
}
