package redisquota_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// dropToMakeRoom makes the Store s drop the partitions named names, as it
// does to make room: once their refillers have stopped (idle), it fills
// the Store with partitions of other names until it has dropped them
// (each time it is full, it drops idle partitions, in the map's order,
// until a quarter of it is free: those of the first fillers too, once
// idle).
func dropToMakeRoom(t *testing.T, s *redisquota.Store, names ...string) {
	t.Helper()
	for _, name := range names {
		q := s.Partition(name)
		waitFor(t, "the refiller of "+name+" stops", func() bool { return !redisquota.Refilling(q) })
	}
	held := func() bool {
		for _, name := range names {
			if s.HoldsPartition(name) {
				return true
			}
		}
		return false
	}
	for i := 0; held(); i++ {
		if i == 20*redisquota.MaxPartitions {
			t.Fatalf("the Store did not drop the idle partitions %q to make room", names)
		}
		s.Partition("filler " + strconv.Itoa(i))
	}
}

// TestDroppedPartitionHearsFleet proves that a partition the Store dropped
// to make room, which a Transport still holds, still hears the fleet: a
// pause another member records reaches it, and so does the reset that
// clears it; the Store's next Partition of its name returns it, and holds
// it again. A dropped partition heard nothing more: a member that held a
// host's partitions past 4096 of them sent through the fleet's pauses.
func TestDroppedPartitionHearsFleet(t *testing.T) {
	f := twoMembers(t)
	const name = "https://api.example.com:443 writes"
	q := f.a.Partition(name)
	dropToMakeRoom(t, f.a, name)
	qb := f.b.Partition(name)
	until := time.Now().Add(time.Minute)
	qb.Pause(until)
	waitFor(t, "B's pause reaches A's dropped partition", func() bool {
		return q.PauseUntil().After(until.Add(-10 * time.Second))
	})
	if d, ok, _ := q.Take(time.Now()); ok || d < 10*time.Second {
		t.Errorf("Take of the paused partition = %v, %v; want a wait of about a minute, false", d, ok)
	}
	qb.(resilient.QuotaResetter).Reset()
	waitFor(t, "B's reset reaches A's dropped partition", func() bool { return q.PauseUntil().IsZero() })
	if d, ok, _ := q.Take(time.Now()); !ok || d != 0 {
		t.Errorf("Take after the reset = %v, %v; want 0, true", d, ok)
	}
	if q2 := f.a.Partition(name); q2 != q {
		t.Error("Partition of a dropped partition still held made a second one")
	}
	if !f.a.HoldsPartition(name) {
		t.Error("the Store did not take the partition back into its table")
	}
}

// TestDroppedPartitionSameObject proves that Partition, asked for a name
// whose partition the Store dropped while something still holds it,
// returns that partition, not a second one of the same name: the
// Transport that holds it and the later caller share its state.
func TestDroppedPartitionSameObject(t *testing.T) {
	s, _, _ := scriptStore(t)
	const name = "https://api.example.com:443 reads"
	q := s.Partition(name)
	if !s.ForgetPartition(name) {
		t.Fatal("the Store did not hold the partition")
	}
	if q2 := s.Partition(name); q2 != q {
		t.Error("Partition of a dropped partition still held made a second one")
	}
	settings := resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1}
	b := s.Budget(name, settings)
	if !s.ForgetBudget(name) {
		t.Fatal("the Store did not hold the budget")
	}
	if b2 := s.Budget(name, settings); b2 != b {
		t.Error("Budget of a dropped budget still held made a second one")
	}
}

// TestDroppedPartitionCollected proves that the Store keeps nothing of a
// partition, or a budget, it dropped once nothing holds it: it reaches
// them while they are held, and the entries go once they are collected.
func TestDroppedPartitionCollected(t *testing.T) {
	s, _, _ := scriptStore(t)
	const name = "https://api.example.com:443 reads"
	q := s.Partition(name)
	waitFor(t, "the refiller stops", func() bool { return !redisquota.Refilling(q) })
	b := s.Budget(name, resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1})
	waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	s.ForgetPartition(name)
	s.ForgetBudget(name)
	if parts, budgets := s.DroppedHeld(); parts != 1 || budgets != 1 {
		t.Fatalf("the Store reaches %d dropped partitions and %d dropped budgets, want 1 and 1 while held", parts, budgets)
	}
	runtime.KeepAlive(q)
	runtime.KeepAlive(b)
	q, b = nil, nil
	waitFor(t, "the dropped partition and budget collected", func() bool {
		runtime.GC()
		parts, budgets := s.DroppedHeld()
		return parts == 0 && budgets == 0
	})
}

// TestDroppedBudgetSyncs proves that a retry budget the Store dropped to
// make room, which a Transport still holds, still syncs with the fleet:
// the other member sees its spending, and it sees theirs. A dropped
// budget was the member's alone from then on.
func TestDroppedBudgetSyncs(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	const name = "https://api.example.com:443"
	settings := resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1}
	ba := f.a.Budget(name, settings)
	waitFor(t, "A's first sync", func() bool {
		v, synced, _ := f.a.BudgetView(name)
		return f.a.Stats().BudgetSyncs > 0 && v == synced
	})
	// Fill A's Store until it drops the budget to make room (each time it
	// is full, it drops a quarter of the budgets whose views hold no
	// change to send, in the map's order).
	for i := 0; ; i++ {
		if _, _, ok := f.a.BudgetView(name); !ok {
			break
		}
		if i == 100*redisquota.MaxPartitions {
			t.Fatal("the Store did not drop the budget to make room")
		}
		f.a.Budget("https://filler"+strconv.Itoa(i)+".example.com:443", settings)
	}
	balance := func() int64 {
		bal, _ := rdb.HGet(context.Background(), f.a.BudgetKey(name), "bal").Int64()
		return bal
	}
	for range 3 {
		if !ba.Withdraw(1) {
			t.Fatal("a full budget of 10 refused one of 3 retries")
		}
	}
	waitFor(t, "A's spending reaches Redis", func() bool { return balance() == 7000 })
	bb := f.b.Budget(name, settings)
	waitFor(t, "B sees A's spending", func() bool {
		v, synced, _ := f.b.BudgetView(name)
		return v == 7 && synced == 7
	})
	if !bb.Withdraw(1) {
		t.Fatal("B's budget of 7 refused a retry")
	}
	waitFor(t, "B's spending reaches Redis", func() bool { return balance() == 6000 })
	// A's view, below the Burst, is synced only for 2s after A last
	// changed it, and a fall from 7 sends no message: left idle, A hears
	// B's spending only if it came within those 2s, which a loaded
	// machine outlasts. A spends once more, and its sync of the dropped
	// budget takes back the fleet's balance: 5 with B's spending, 6
	// without.
	if !ba.Withdraw(1) {
		t.Fatal("A's budget of 7 refused a retry")
	}
	waitFor(t, "A sees B's spending", func() bool { return redisquota.View(ba) == 5 })
}

// TestGlobalLimitHoldsDroppedMember: Discord's global limit holds member B
// even after B's Store dropped, to make room (a bot posting to thousands
// of channels), the partitions B's Transport still holds: the bot's
// "Global limit" partition, asked for once per host and credential and
// idle once loaded, and its buckets. A's global 429 reaches them, B's
// post to its bucket of channel 2 is refused unsent, and the server gets
// nothing during the pause.
func TestGlobalLimitHoldsDroppedMember(t *testing.T) {
	d, f, at, bt, channel := discordFleetStores(t)
	a, b := &http.Client{Transport: at}, &http.Client{Transport: bt}
	var global string
	for _, name := range f.b.PartitionNames() {
		if strings.Contains(name, "Global limit") {
			global = name
		}
	}
	if global == "" {
		t.Fatalf("B's Store holds no global limit: %q", f.b.PartitionNames())
	}
	dropToMakeRoom(t, f.b, global)
	d.arm("POST /api/v10/channels/1/messages", 50*time.Second)
	if code, err := discordCall(a, http.MethodPost, channel(1), resilient.WithMaxRetryAfter(time.Second)); code != http.StatusTooManyRequests {
		t.Fatalf("A's post into the global limit: %d, %v; want its 429 at once", code, err)
	}
	waitFor(t, "B's bucket of channel 2 holds the global pause", func() bool {
		s, _ := bt.HostState(discordRequest(http.MethodPost, channel(2)))
		return s.Writes.PausedUntil.After(time.Now())
	})
	if code, err := discordCall(b, http.MethodPost, channel(2), resilient.WithMaxRetryAfter(time.Second)); !errors.Is(err, resilient.ErrRateLimited) {
		t.Errorf("B's post to channel 2 that may wait 1s: %d, %v; want ErrRateLimited", code, err)
	}
	if into := d.intoGlobal(); len(into) != 0 {
		t.Errorf("%d requests were sent during the bot's global limit: %q; want none", len(into), into)
	}
}
