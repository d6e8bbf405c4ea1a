package redisquota_test

import (
	"context"
	"testing"
)

// TestBudgetOwedGiveBackFillsView proves that a give-back that fills the
// member's view pays what the member owes once: the fleet's balance, 8
// after others gave their retries back, is 10 again once the member gives
// back the 3 it withdrew from a balance of 2, at once or in parts. (The
// member's view, which does not know what it owes, kept 2 of them, the
// Burst; the script then paid the debt from those 2: the balance stayed a
// token poorer, 9.)
func TestBudgetOwedGiveBackFillsView(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []float64
	}{
		{"one give-back over the Burst", []float64{3}},
		// The view full after the first, the second was dropped whole,
		// and paid nothing.
		{"a give-back into a full view", []float64{2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testOwedGiveBackFillsView(t, tc.parts)
		})
	}
}

// testOwedGiveBackFillsView runs TestBudgetOwedGiveBackFillsView, the 3
// tokens given back in parts.
func testOwedGiveBackFillsView(t *testing.T, parts []float64) {
	o := newOwedBudget(t)
	ctx := context.Background()

	// The member withdraws 3 from its full view; before Redis runs the
	// sync, the others spend the balance to 2: the member owes a token.
	o.gate.before.Store(true)
	if !o.b.Withdraw(3) {
		t.Fatal("Withdraw(3) = false from a full view, want true")
	}
	<-o.gate.held
	if err := o.rdb.HSet(ctx, o.key, "bal", 2000).Err(); err != nil {
		t.Fatal(err)
	}
	o.gate.release <- struct{}{}
	waitFor(t, "the withdrawal synced", func() bool {
		v, s, _ := o.s.BudgetView(owedName)
		return v == 0 && s == 0
	})

	// The others give theirs back: the balance is 8, the member's debt
	// still 1.
	if err := o.rdb.HSet(ctx, o.key, "bal", 8000).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the others' give-backs synced", func() bool {
		v, s, _ := o.s.BudgetView(owedName)
		return v == 8 && s == 8
	})

	for _, tokens := range parts {
		o.b.Refund(tokens)
	}
	o.synced(t, "the give-back synced")
	if bal := o.balance(t); bal != 10 {
		t.Errorf("fleet balance = %v after every withdrawal from 10 was given back, want 10", bal)
	}
}

// TestBudgetOwedGivenBackDuringSyncFilledPaid proves that a give-back
// during a sync whose reply fills the view, the part the view dropped
// included, pays the whole of what the member owes: a later withdrawal
// and its give-back leave the balance as they found it. (The part the
// view dropped was taken from the give-backs, so the member still owed
// it, and the next give-back paid it: 9.3 fell to 9.)
func TestBudgetOwedGivenBackDuringSyncFilledPaid(t *testing.T) {
	o := newOwedBudget(t)
	o.owe(t)
	o.b.Deposit(2)
	o.synced(t, "the deposit synced")
	if !o.b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false from a view of 2, want true")
	}
	o.synced(t, "the withdrawal synced")
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
	<-o.gate.held
	o.b.Refund(1) // pays the token the member owes
	o.gate.release <- struct{}{}
	o.synced(t, "the give-back synced")
	if bal := o.balance(t); bal != 9.3 {
		t.Fatalf("fleet balance = %v after a give-back during a sync that filled the view, want 9.3", bal)
	}

	if before, after := o.giveBackOne(t); after != before {
		t.Errorf("fleet balance = %v after a withdrawal from %v given back, want %v", after, before, before)
	}
}
