package redisquota_test

import (
	"strings"
	"testing"

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
