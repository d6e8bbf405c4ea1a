package resilient

import (
	"context"
	"strings"
	"testing"
)

// TestNilContextPanicsNamingTheFunction: the functions that derive a
// context of the caller's panic on a nil one, as context.WithValue does,
// with a message that names them, not with a nil dereference.
func TestNilContextPanicsNamingTheFunction(t *testing.T) {
	var nilCtx context.Context
	for name, fn := range map[string]func(){
		"WithCallOptions":    func() { WithCallOptions(nilCtx, WithMaxRetries(0)) },
		"WithReport":         func() { WithReport(nilCtx, new(Report)) },
		"WithIdempotencyKey": func() { WithIdempotencyKey(nilCtx, "order-42") },
	} {
		p := mustPanic(t, name+"(nil, …) did not panic", fn)
		if msg, ok := p.(string); !ok || !strings.HasPrefix(msg, "resilient: "+name+": ") || !strings.Contains(msg, "nil parent") {
			t.Errorf("%s(nil, …) panicked with %v, want a message naming it and the nil parent", name, p)
		}
	}
}
