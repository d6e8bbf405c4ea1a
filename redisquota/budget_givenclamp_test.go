package redisquota_test

import (
	"context"
	"testing"
)

// TestBudgetGivenBackDuringSyncFilled proves that a give-back made while a
// sync is in flight, whose reply then fills the member's view (the fleet's
// answers refilled the balance meanwhile), pays what the member owes with
// the give-back alone: the part the view's clamp at the Burst took, the
// next sync sends as a change. (The member counted the whole give-back
// among those it sends, but sent only what the view kept, and the script
// paid the debt with tokens of the others' deposits: the balance, 9.3
// after the withdrawals, fell to 9.)
func TestBudgetGivenBackDuringSyncFilled(t *testing.T) {
	o := newOwedBudget(t)
	o.owe(t) // a withdrawal at a balance of 0: the member owes a token
	o.b.Deposit(2)
	if v := o.synced(t, "the deposit synced"); v != 2 {
		t.Fatalf("view = %v after a deposit of 2 into 0, want 2", v)
	}
	if !o.b.Withdraw(1) { // a retry, given back below
		t.Fatal("Withdraw(1) = false from a view of 2, want true")
	}
	if v := o.synced(t, "the withdrawal synced"); v != 1 {
		t.Fatalf("view = %v after a withdrawal of 1 from 2, want 1", v)
	}

	// The next withdrawal's sync: before Redis runs it, the fleet's
	// answers refill the balance to 9.8; after, the member gives the
	// retry back.
	o.gate.before.Store(true)
	if !o.b.Withdraw(0.5) {
		t.Fatal("Withdraw(0.5) = false from a view of 1, want true")
	}
	<-o.gate.held
	if err := o.rdb.HSet(context.Background(), o.key, "bal", 9800).Err(); err != nil {
		t.Fatal(err)
	}
	o.gate.after.Store(true)
	o.gate.release <- struct{}{}
	<-o.gate.held // Redis ran the sync: the balance is 9.3
	o.b.Refund(1)
	o.gate.release <- struct{}{}
	o.synced(t, "the give-back synced")
	if bal := o.balance(t); bal != 9.3 {
		t.Errorf("fleet balance = %v after a give-back during a sync that filled the view, want 9.3", bal)
	}
}
