package redisquota

import (
	"testing"

	"github.com/resilienthttp/resilient"
)

// benchBudget returns a budget of a Store on the test Redis.
func benchBudget(b *testing.B) *budget {
	s := benchStore(b)
	return s.Budget("bench", resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}).(*budget)
}

// BenchmarkBudgetDeposit measures a deposit into a full view, the steady
// state of a healthy host: an atomic load, no write, no I/O.
func BenchmarkBudgetDeposit(b *testing.B) {
	bg := benchBudget(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bg.Deposit(0.2)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bg.Deposit(0.2)
			}
		})
	})
}

// BenchmarkBudgetWithdraw measures a throttled retry's withdrawal and a
// deposit that pays it back: compare-and-swaps, no I/O.
func BenchmarkBudgetWithdraw(b *testing.B) {
	bg := benchBudget(b)
	b.ReportAllocs()
	for b.Loop() {
		bg.Withdraw(0.1)
		bg.Deposit(0.2)
	}
}
