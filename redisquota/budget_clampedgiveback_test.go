package redisquota_test

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestBudgetClampedWithdrawGivenBack proves that a retry whose withdrawal
// the fleet's balance could not pay (the script keeps it at zero) and that
// is then given back, never sent, leaves the fleet's balance as it found
// it: at zero. The member's view was full (a balance no sync had brought
// down yet: other members spent it); its retry withdrew a token, a sync
// sent the withdrawal, which the script kept at zero, and its call was
// canceled during the retry's backoff, which gave the token back; the
// next sync credited it whole, and the fleet held a token that no answer
// paid for.
func TestBudgetClampedWithdrawGivenBack(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer s.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(),
		resilient.WithQuotaStore(s), resilient.WithoutBreaker(),
		resilient.WithBackoff(time.Minute, time.Minute))}
	url, name := srv.URL+"/v1/usage", srv.URL

	// The member loads the budget: full.
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	waitFor(t, "the budget loaded", func() bool {
		view, synced, ok := s.BudgetView(name)
		return ok && view == synced && s.Stats().BudgetSyncs > 0
	})

	// Other members spent the fleet's balance; the member's view, full,
	// is not synced until it changes.
	rdb := newRedis(t, addr)
	ctx := context.Background()
	key := s.BudgetKey(name)
	if err := rdb.HSet(ctx, key, "bal", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// A call fails; its retry withdraws a token and waits for its
	// backoff, during which a sync sends the withdrawal.
	outage(srv)
	syncs := s.Stats().BudgetSyncs
	callCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(callCtx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the withdrawal synced", func() bool {
		view, synced, _ := s.BudgetView(name)
		return s.Stats().BudgetSyncs > syncs && view == 0 && synced == 0
	})
	if got := srv.Stats().Requests; got != 2 {
		t.Fatalf("server requests = %d, want 2 (the retry waits for its backoff)", got)
	}

	// The call is canceled: its retry, never sent, gives the token back.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the canceled call: %v, want context.Canceled", err)
	}
	syncs = s.Stats().BudgetSyncs
	waitFor(t, "the give-back synced", func() bool {
		view, synced, _ := s.BudgetView(name)
		return s.Stats().BudgetSyncs > syncs && view == synced
	})
	bal, err := rdb.HGet(ctx, key, "bal").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if bal != 0 {
		t.Errorf("fleet balance = %v tokens after a retry withdrawn from it at zero and given back, want 0", float64(bal)/1000)
	}
	if view, synced, _ := s.BudgetView(name); view != 0 || synced != 0 {
		t.Errorf("member's view = %v (synced %v), want 0", view, synced)
	}
}

// TestBudgetClampedGiveBacksTwoMembers proves the same of two members on
// one prefix whose views are stale (full, where the fleet's balance holds
// 3 tokens): each withdraws a token, or two, waits for a sync of its own,
// which may find the balance spent, and gives them back, in rounds, the
// members in parallel (seeded). Every withdrawal given back, the balance
// ends as it began, at 3 tokens.
func TestBudgetClampedGiveBacksTwoMembers(t *testing.T) {
	const name = "https://api.example.com:443"
	stores, budgets := twoMembersBudget(t, name)
	rdb := newRedis(t, redisAddr())
	ctx := context.Background()
	key := stores[0].BudgetKey(name)
	for i, s := range stores {
		waitFor(t, "member "+strconv.Itoa(i)+" loaded the budget", func() bool { return s.Stats().BudgetSyncs > 0 })
	}
	if err := rdb.HSet(ctx, key, "bal", 3000).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), 7))
			b := budgets[i].(resilient.SharedBudgetRefunder)
			for range 8 {
				n := 1 + rng.IntN(2)
				took := 0
				for range n {
					if b.Withdraw(1) {
						took++
					}
				}
				syncs := stores[i].Stats().BudgetSyncs
				if !polled(func() bool { return stores[i].Stats().BudgetSyncs > syncs+1 }) {
					t.Errorf("member %d: no sync within %v", i, waitBound)
					return
				}
				for range took {
					b.Refund(1)
				}
			}
		}()
	}
	wg.Wait()
	for i, s := range stores {
		syncs := s.Stats().BudgetSyncs
		waitFor(t, "member "+strconv.Itoa(i)+"'s give-backs synced", func() bool {
			view, synced, _ := s.BudgetView(name)
			return s.Stats().BudgetSyncs > syncs+1 && view == synced
		})
	}
	bal, err := rdb.HGet(ctx, key, "bal").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if bal != 3000 {
		t.Errorf("fleet balance = %v tokens after every withdrawal was given back, want 3", float64(bal)/1000)
	}
}

// polled reports whether cond held within waitBound, polling it every
// millisecond: waitFor for a goroutine other than the test's.
func polled(cond func() bool) bool {
	for range waitBound / time.Millisecond {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}
