package redisquota_test

import "testing"

// TestBudgetOwedReplyLost proves that a withdrawal the fleet's balance
// could not pay, whose sync's reply was lost (late: the script ran) and
// which the next sync sends again, is owed all the same: its give-back
// leaves the balance at zero. (The sync sent again applied nothing new,
// found nothing short, and the give-back credited the fleet a token no
// answer paid for.)
func TestBudgetOwedReplyLost(t *testing.T) {
	o := newOwedBudget(t)
	if err := o.rdb.HSet(t.Context(), o.key, "bal", 0).Err(); err != nil {
		t.Fatal(err)
	}
	o.gate.drop.Store(true)
	if !o.b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false from a full view, want true")
	}
	if v := o.synced(t, "the withdrawal synced again"); v != 0 {
		t.Fatalf("view = %v after a withdrawal at a balance of 0, want 0", v)
	}
	if o.gate.drop.Load() {
		t.Fatal("no sync's reply was lost")
	}
	o.b.Refund(1)
	o.synced(t, "the give-back synced")
	if bal := o.balance(t); bal != 0 {
		t.Errorf("fleet balance = %v tokens after a retry withdrawn from it at zero, its sync's reply lost, and given back, want 0", bal)
	}
}

// TestBudgetOwedGivenBackDuringSync proves the same of a withdrawal given
// back while the sync that finds the balance short of it is in flight:
// the give-back, credited before the member knew what it owed, left the
// fleet a token richer, and the member owed a token that it then kept
// from the give-back of a withdrawal the balance did pay.
func TestBudgetOwedGivenBackDuringSync(t *testing.T) {
	o := newOwedBudget(t)
	if err := o.rdb.HSet(t.Context(), o.key, "bal", 0).Err(); err != nil {
		t.Fatal(err)
	}
	o.gate.after.Store(true)
	if !o.b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false from a full view, want true")
	}
	<-o.gate.held // Redis ran the sync; its reply is not read yet
	o.b.Refund(1)
	o.gate.release <- struct{}{}
	o.synced(t, "the give-back synced")
	if bal := o.balance(t); bal != 0 {
		t.Errorf("fleet balance = %v tokens after a retry withdrawn from it at zero and given back during its sync, want 0", bal)
	}
}
