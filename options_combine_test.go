package resilient

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOptions: Options applies its options in order, where it is given,
// skipping nil ones; later options still override it, and WithCallOptions
// rejects it when it holds a per-Transport option.
func TestOptions(t *testing.T) {
	var seen []int
	obs := func(n int) Option { return WithObserver(func(Attempt) { seen = append(seen, n) }) }
	s := &rtScript{steps: []rtStep{{status: 503}}}
	tr := New(s, fastRetries, WithMaxRetries(7),
		Options(WithMaxRetries(1), nil, obs(1), obs(2)),
		obs(3),
		Options(), Options(nil))
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.numCalls() != 2 {
		t.Errorf("%d attempts, want 2: WithMaxRetries(1) inside Options overrides the 7 before it", s.numCalls())
	}
	if got := fmt.Sprint(seen); got != "[1 2 3 1 2 3]" {
		t.Errorf("observers called %s, want [1 2 3 1 2 3]: in the order given, twice", got)
	}

	tr = New(s, Options(WithMaxRetries(3)), WithMaxRetries(0))
	if tr.cfg.maxRetries != 0 {
		t.Errorf("maxRetries %d, want 0: an option after Options overrides it", tr.cfg.maxRetries)
	}

	// Per call: allowed with call options only.
	ctx := WithCallOptions(context.Background(), Options(WithMaxRetries(0), WithAttemptHeader("X-Try")))
	s = &rtScript{steps: []rtStep{{status: 503}}}
	resp, err = roundTrip(t, New(s, fastRetries), newRequest(t, ctx, "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.numCalls() != 1 || s.call(0).header.Get("X-Try") != "1/1" {
		t.Errorf("%d attempts, X-Try %q; want 1 attempt with 1/1", s.numCalls(), s.call(0).header.Get("X-Try"))
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "WithTracer") {
			t.Errorf("WithCallOptions(Options(WithTracer)): panic %v, want one naming WithTracer", r)
		}
	}()
	WithCallOptions(context.Background(), Options(WithMaxRetries(0), WithTracer(nil)))
}

// TestTransportMaxElapsed: MaxElapsed reports the budget the options set,
// the default without one, zero for none, and the default for the zero
// Transport, which acts as New(nil).
func TestTransportMaxElapsed(t *testing.T) {
	for _, tc := range []struct {
		tr   *Transport
		want time.Duration
	}{
		{New(nil), DefaultMaxElapsed},
		{New(nil, WithMaxElapsed(20*time.Minute)), 20 * time.Minute},
		{New(nil, WithMaxElapsed(10*time.Second), WithMaxRetries(1)), 10 * time.Second},
		{New(nil, WithMaxElapsed(0)), 0},
		{&Transport{}, DefaultMaxElapsed},
	} {
		if got := tc.tr.MaxElapsed(); got != tc.want {
			t.Errorf("MaxElapsed() = %v, want %v", got, tc.want)
		}
	}
}

// TestOptionsKeepsItsOwnList: Options applies the options it was given,
// not what the caller's slice holds later: a slice reused or changed after
// Options(opts...) returned changes nothing of the Transports made with it.
func TestOptionsKeepsItsOwnList(t *testing.T) {
	opts := []Option{WithMaxRetries(1)}
	o := Options(opts...)
	opts[0] = WithMaxRetries(3)
	s := &rtScript{steps: []rtStep{{status: 503}}}
	resp, err := roundTrip(t, New(s, fastRetries, o), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.numCalls() != 2 {
		t.Errorf("%d attempts, want 2: the slice changed after Options(opts...) returned", s.numCalls())
	}
}
