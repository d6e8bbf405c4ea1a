package examples

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestSlackStalledBody: the recipe's client bounds a call, its body
// included, by resilient's budget, as docs/sdks.md says ("a call is bounded
// by WithMaxElapsed"): slack-go reads the body after resilient returned the
// response, and its methods without Context send their requests with
// context.Background(). A body that stalls for an hour is cut at the
// default budget, and at 10 s under WithMaxElapsed(10*time.Second); one
// that takes 10 minutes is read whole under a budget of 20.
func TestSlackStalledBody(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          []resilient.Option
		budget, stall time.Duration
		ok            bool
	}{
		{"Default", nil, resilient.DefaultMaxElapsed, time.Hour, false},
		{"10s", []resilient.Option{resilient.WithMaxElapsed(10 * time.Second)}, 10 * time.Second, time.Hour, false},
		{"20m", []resilient.Option{resilient.WithMaxElapsed(20 * time.Minute)}, 20 * time.Minute, 10 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, stalledBody(tc.stall, `{"ok":true,"user":`, `{"id":"U123","name":"jenny"}}`))
				api := slackClient(srv, slackRecipe(srv.Base(), tc.opts...))
				start := time.Now()
				err := slackUser.do(context.Background(), api)
				if (err == nil) != tc.ok {
					t.Errorf("users.info, a body taking %v under a budget of %v: err = %v, want success %v", tc.stall, tc.budget, err, tc.ok)
				}
				if d := time.Since(start); !tc.ok && d > tc.budget {
					t.Errorf("the call waited %v for a stalled body, want at most %v", d, tc.budget)
				}
			})
		})
	}
}
