package redisquota_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestOptionsPanic proves that each option refuses its invalid values with
// a panic that names it.
func TestOptionsPanic(t *testing.T) {
	for name, fn := range map[string]func(){
		"WithPrefix":        func() { redisquota.WithPrefix("") },
		"WithPrefix brace":  func() { redisquota.WithPrefix("a{b}") },
		"WithLeaseTime":     func() { redisquota.WithLeaseTime(0) },
		"WithFallbackAfter": func() { redisquota.WithFallbackAfter(-1) },
		"WithHeartbeat":     func() { redisquota.WithHeartbeat(0) },
		"WithTimeout":       func() { redisquota.WithTimeout(-5) },
		"WithBudgetSync":    func() { redisquota.WithBudgetSync(0) },
		"WithMemberID":      func() { redisquota.WithMemberID("") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.HasPrefix(msg, "redisquota: "+strings.Fields(name)[0]+":") {
					t.Errorf("panic %v, want one naming %s", r, name)
				}
			}()
			fn()
		})
	}
}

// TestWithMemberID proves that the id given is the member's.
func TestWithMemberID(t *testing.T) {
	addr := redisAddr()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)), redisquota.WithMemberID("replica-7"))
	defer s.Close()
	if got := s.MemberID(); got != "replica-7" {
		t.Errorf("MemberID = %q", got)
	}
}

// TestDurationOptionsBelowFloorPanic: a duration below 1ms is a units
// mistake (WithHeartbeat(1), meant as a second, is 1ns): New accepted it,
// and its heartbeat called Redis back to back (2,689 calls in 300ms) with
// a lifetime of 0µs, so that Members() stayed 0 and the fleet never
// counted the member; WithBudgetSync(100) synced as often, WithTimeout(500)
// timed every call out. Each duration option panics on it, naming itself;
// 1ms is accepted.
func TestDurationOptionsBelowFloorPanic(t *testing.T) {
	for name, fn := range map[string]func(time.Duration) redisquota.Option{
		"WithLeaseTime":     redisquota.WithLeaseTime,
		"WithFallbackAfter": redisquota.WithFallbackAfter,
		"WithHeartbeat":     redisquota.WithHeartbeat,
		"WithTimeout":       redisquota.WithTimeout,
		"WithBudgetSync":    redisquota.WithBudgetSync,
	} {
		for _, d := range []time.Duration{1, 500, 999 * time.Microsecond} {
			func() {
				defer func() {
					msg, _ := recover().(string)
					if want := fmt.Sprintf("redisquota: %s: %v is below the floor of 1ms", name, d); !strings.HasPrefix(msg, want) {
						t.Errorf("%s(%d): panic %q, want one starting %q", name, d, msg, want)
					}
				}()
				fn(d)
			}()
		}
		fn(time.Millisecond)
	}
}

// TestLeaseTimeAboveCeilingPanics: a lease time of hours (a careless
// value, or a units mistake: 200 meant as milliseconds, times
// time.Second) was accepted, and each lease held the member's share of
// the quota for that long, whether it sent or not, lost to the fleet for
// twice that if it stopped, with a horizon that reached past any pause the
// members believe. WithLeaseTime panics above its ceiling of a minute,
// naming itself; a minute is accepted.
func TestLeaseTimeAboveCeilingPanics(t *testing.T) {
	for _, d := range []time.Duration{time.Minute + time.Nanosecond, 200 * time.Second, 3 * time.Hour, time.Duration(1<<63 - 1)} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if want := fmt.Sprintf("redisquota: WithLeaseTime: %v is above the ceiling of 1m0s", d); !strings.HasPrefix(msg, want) {
					t.Errorf("WithLeaseTime(%v): panic %q, want one starting %q", d, msg, want)
				}
			}()
			redisquota.WithLeaseTime(d)
		}()
	}
	redisquota.WithLeaseTime(time.Minute)
}
