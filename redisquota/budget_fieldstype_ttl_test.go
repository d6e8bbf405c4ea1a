package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestBudgetBalanceExpiresWhenFieldsKeyIsAnotherType checks that a retry
// budget's balance in Redis always expires, also when its key of the fields
// (prefix:{id}:budget:fields) holds another type, written by another hand:
// the script writes the balance and the member's field, then fails on the
// fields (the budget is then the member's, see Retry budgets). It set the
// balance's expiry only after the fields: a balance the failing sync made
// had none, and outlived, for good, the foreign key that made it fail.
func TestBudgetBalanceExpiresWhenFieldsKeyIsAnotherType(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	key := s.BudgetKey("https://api.example.com:443")
	if err := rdb.Set(ctx, key+":fields", "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := redisquota.SyncBudget(s, key, "b:m:i:1", -1000, -1000, 10000)
	if err == nil {
		t.Fatal("the sync succeeded though the key of the fields holds a string")
	}
	ttl, terr := rdb.PTTL(ctx, key).Result()
	if terr != nil {
		t.Fatal(terr)
	}
	if ttl == -2*time.Nanosecond {
		return // nothing written: nothing to expire
	}
	if ttl < 0 {
		t.Errorf("after a sync that failed on the fields key (%v), the balance %s has no expiry (PTTL %v): it lives for good", err, key, ttl)
	}
}
