package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// This file checks issue 5's circuit breaker from outside the package, as
// a user who read the issue would: through the public API and a
// resilienttest server only.

// TestBreakerCountsEvery5xx: issue 5 counts as failures "the Transient
// server outcomes (5xx other than 501 and 505)": a host that answers
// 507, 508, 511, a CDN's 520–526 or 530 or a 599 to every call is as sick
// as one that answers 500, though most of those statuses are not retried
// (a CDN's 520–524 are). Three
// in a row trip a breaker set to trip after 3, and the fourth call is
// refused without reaching the server.
func TestBreakerCountsEvery5xx(t *testing.T) {
	for _, status := range []int{506, 507, 508, 510, 511, 520, 522, 524, 525, 526, 530, 599} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const route = "GET /v1/posts"
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithScript(route,
					resilienttest.HTML(status), resilienttest.HTML(status), resilienttest.HTML(status)))
				defer srv.Close()
				tr := resilient.New(srv.Transport(), resilient.WithMaxRetries(0),
					resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 3}))
				for i := range 3 {
					if code, _, err := call(t, tr, context.Background(), "GET", srv.URL+"/v1/posts", nil); code != status {
						t.Fatalf("call %d: %d, %v; want the server's %d", i+1, code, err, status)
					}
				}
				_, _, err := call(t, tr, context.Background(), "GET", srv.URL+"/v1/posts", nil)
				if !errors.Is(err, resilient.ErrCircuitOpen) {
					t.Errorf("after 3 answers %d in a row: err = %v, want ErrCircuitOpen", status, err)
				}
				if got := srv.Stats().Attempts[route]; got != 3 {
					t.Errorf("the server saw %d attempts, want 3", got)
				}
				if st := tr.BreakerState(srv.URL); st != resilient.BreakerOpen {
					t.Errorf("BreakerState = %v, want open", st)
				}
			})
		})
	}
}

// TestBreakerHalfOpenRefusalSaysWhen: issue 5's refusal names the host and
// how long until the next probe, and issue 13 bounds half-open in time
// (ProbeTimeout): while a probe goes unanswered, a refused call is told
// when the next probe may go at the latest, the moment the hung probe no
// longer holds its slot; then that call's successor probes.
func TestBreakerHalfOpenRefusalSaysWhen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const route = "GET /v1/posts"
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithScript(route,
			resilienttest.Respond(503), resilienttest.Slow(time.Minute)))
		defer srv.Close()
		tr := resilient.New(srv.Transport(), resilient.WithMaxRetries(0),
			resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second, ProbeTimeout: 4 * time.Second}))
		url := srv.URL + "/v1/posts"
		if code, _, err := call(t, tr, context.Background(), "GET", url, nil); code != 503 {
			t.Fatalf("first call: %d, %v; want the 503", code, err)
		}
		time.Sleep(10 * time.Second)
		probed := make(chan int)
		go func() {
			code, _, _ := call(t, tr, context.Background(), "GET", url, nil)
			probed <- code
		}()
		synctest.Wait() // the probe hangs in the server's Slow step
		time.Sleep(time.Second)
		_, _, err := call(t, tr, context.Background(), "GET", url, nil)
		if !errors.Is(err, resilient.ErrCircuitOpen) {
			t.Fatalf("a call while the probe hangs: %v, want ErrCircuitOpen", err)
		}
		host := strings.TrimPrefix(srv.URL, "http://")
		if msg := err.Error(); !strings.Contains(msg, host) || !strings.Contains(msg, "next probe in 3s") {
			t.Errorf("the half-open refusal reads %q; want it to name %s and the next probe in 3s (ProbeTimeout 4s, 1s gone)", msg, host)
		}
		time.Sleep(3 * time.Second)
		if code, _, err := call(t, tr, context.Background(), "GET", url, nil); code != 200 {
			t.Errorf("a call once the probe is stale: %d, %v; want it sent as the new probe, and the 200", code, err)
		}
		if got := srv.Stats().Attempts[route]; got != 3 {
			t.Errorf("the server saw %d attempts, want 3 (the 503, the hung probe, the new probe)", got)
		}
		<-probed
	})
}

// TestBreakerHalfOpenRequests: a half-open breaker lets HalfOpenRequests
// probes through at once and refuses the next attempt; it closes only when
// all of them succeed, and one failed probe opens it again for
// OpenTimeout, whatever the others answer after (issue 5's settings).
func TestBreakerHalfOpenRequests(t *testing.T) {
	const route = "GET /v1/posts"
	settings := resilient.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second, HalfOpenRequests: 3}
	for _, tc := range []struct {
		name   string
		probes []resilienttest.Step // the answers to the three probes, in their order of arrival
		want   resilient.BreakerState
	}{
		{"all succeed", []resilienttest.Step{resilienttest.Slow(time.Second), resilienttest.Slow(2 * time.Second), resilienttest.Slow(3 * time.Second)}, resilient.BreakerClosed},
		{"one fails", []resilienttest.Step{resilienttest.Slow(time.Second), resilienttest.Slow(2 * time.Second), resilienttest.Respond(503)}, resilient.BreakerOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
					resilienttest.WithScript(route, append([]resilienttest.Step{resilienttest.Respond(503)}, tc.probes...)...))
				defer srv.Close()
				tr := resilient.New(srv.Transport(), resilient.WithMaxRetries(0), resilient.WithBreaker(settings))
				url := srv.URL + "/v1/posts"
				if code, _, err := call(t, tr, context.Background(), "GET", url, nil); code != 503 {
					t.Fatalf("first call: %d, %v; want the 503 that trips the breaker", code, err)
				}
				time.Sleep(settings.OpenTimeout)
				done := make(chan struct{}, 3)
				for range 3 {
					go func() {
						defer func() { done <- struct{}{} }()
						call(t, tr, context.Background(), "GET", url, nil)
					}()
					synctest.Wait() // each probe reaches the server before the next call
				}
				if got := srv.Stats().Attempts[route]; got != 4 {
					t.Fatalf("the server saw %d attempts, want 4: the 503 and 3 probes", got)
				}
				if _, _, err := call(t, tr, context.Background(), "GET", url, nil); !errors.Is(err, resilient.ErrCircuitOpen) {
					t.Errorf("a fourth call while the probes are out (or one failed): %v, want ErrCircuitOpen", err)
				}
				for range 3 {
					<-done
				}
				if st := tr.BreakerState(srv.URL); st != tc.want {
					t.Errorf("after the probes answered: %v, want %v", st, tc.want)
				}
				code, _, err := call(t, tr, context.Background(), "GET", url, nil)
				switch tc.want {
				case resilient.BreakerClosed:
					if code != 200 {
						t.Errorf("a call once closed: %d, %v; want the 200", code, err)
					}
				case resilient.BreakerOpen:
					if !errors.Is(err, resilient.ErrCircuitOpen) || !strings.Contains(err.Error(), "next probe in") {
						t.Errorf("a call once reopened: %d, %v; want ErrCircuitOpen and the time to the next probe", code, err)
					}
				}
				if got, want := srv.Stats().Attempts[route], map[resilient.BreakerState]int{resilient.BreakerClosed: 5, resilient.BreakerOpen: 4}[tc.want]; got != want {
					t.Errorf("the server saw %d attempts, want %d", got, want)
				}
			})
		})
	}
}

// TestBreakerDefaultsAsDocumented: the README's default breaker, "≥20
// attempts in 30s with ≥50% failures trip it; open 10s; 1 probe", through
// the public API: 19 failures do not trip it, a 20th does; 10 successes
// and 10 failures do, 11 and 9 do not; failures older than 30s are
// forgotten; open, it refuses for 10s, then lets one probe through and
// refuses the calls that come while the probe is out.
func TestBreakerDefaultsAsDocumented(t *testing.T) {
	const url = "http://api.test/v1/posts"
	type host struct {
		status  int
		hold    chan struct{} // when not nil, an attempt waits for it
		arrived chan struct{}
		sent    int
	}
	send := func(t *testing.T, tr *resilient.Transport, n int) error {
		t.Helper()
		var err error
		for range n {
			_, _, err = call(t, tr, context.Background(), "GET", url, nil)
		}
		return err
	}
	newTransport := func(h *host) *resilient.Transport {
		return resilient.New(roundTrip(func(req *http.Request) (*http.Response, error) {
			h.sent++
			if h.hold != nil {
				h.arrived <- struct{}{}
				<-h.hold
			}
			return &http.Response{StatusCode: h.status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}), resilient.WithMaxRetries(0))
	}
	t.Run("MinRequests 20", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &host{status: 503}
			tr := newTransport(h)
			send(t, tr, 19)
			if st := tr.BreakerState(url); st != resilient.BreakerClosed {
				t.Fatalf("after 19 failures: %v, want closed (below 20 attempts)", st)
			}
			send(t, tr, 1)
			if st := tr.BreakerState(url); st != resilient.BreakerOpen {
				t.Fatalf("after 20 failures: %v, want open", st)
			}
			if err := send(t, tr, 1); !errors.Is(err, resilient.ErrCircuitOpen) || h.sent != 20 {
				t.Errorf("a call while open: %v, %d sent; want ErrCircuitOpen, 20 sent", err, h.sent)
			}
		})
	})
	t.Run("FailureRatio 0.5", func(t *testing.T) {
		for _, tc := range []struct {
			ok, failed int
			want       resilient.BreakerState
		}{{10, 10, resilient.BreakerOpen}, {11, 9, resilient.BreakerClosed}} {
			synctest.Test(t, func(t *testing.T) {
				h := &host{status: 200}
				tr := newTransport(h)
				send(t, tr, tc.ok)
				h.status = 500
				send(t, tr, tc.failed)
				if st := tr.BreakerState(url); st != tc.want {
					t.Errorf("%d successes, %d failures: %v, want %v", tc.ok, tc.failed, st, tc.want)
				}
			})
		}
	})
	t.Run("Window 30s", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &host{status: 503}
			tr := newTransport(h)
			send(t, tr, 19)
			time.Sleep(30*time.Second + time.Second)
			send(t, tr, 1)
			if st := tr.BreakerState(url); st != resilient.BreakerClosed {
				t.Errorf("19 failures, 31s, a failure: %v, want closed (the 19 out of the window)", st)
			}
		})
	})
	t.Run("OpenTimeout 10s, 1 probe", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &host{status: 503}
			tr := newTransport(h)
			send(t, tr, 20)
			time.Sleep(10*time.Second - time.Millisecond)
			if err := send(t, tr, 1); !errors.Is(err, resilient.ErrCircuitOpen) {
				t.Fatalf("a call just before 10s: %v, want ErrCircuitOpen", err)
			}
			time.Sleep(time.Millisecond)
			h.status, h.hold, h.arrived = 200, make(chan struct{}), make(chan struct{})
			probed := make(chan error)
			go func() { probed <- send(t, tr, 1) }()
			<-h.arrived
			if err := send(t, tr, 1); !errors.Is(err, resilient.ErrCircuitOpen) {
				t.Errorf("a second call while the probe is out: %v, want ErrCircuitOpen (1 probe)", err)
			}
			close(h.hold)
			if err := <-probed; err != nil {
				t.Errorf("the probe: %v, want its 200", err)
			}
			if st := tr.BreakerState(url); st != resilient.BreakerClosed || h.sent != 21 {
				t.Errorf("after the probe's 200: %v, %d sent; want closed, 21 sent", st, h.sent)
			}
		})
	})
}
