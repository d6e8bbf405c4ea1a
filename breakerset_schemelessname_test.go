package resilient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// schemelessSecret is the session id after the host of the scheme-less
// URLs of these tests: none of the names of their state may show it.
const schemelessSecret = "S3cretSess10n"

// schemelessBase answers every request with status, as a custom base that
// serves scheme-less URLs ("//host/path") does.
func schemelessBase(status int) roundTripFunc {
	return func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	}
}

// wantNoSecret fails when s shows schemelessSecret, in any case (a
// breaker's key is the host's canonical, lower-cased, spelling).
func wantNoSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(strings.ToLower(s), strings.ToLower(schemelessSecret)) {
		t.Errorf("%s shows the session id: %q", what, s)
	}
}

// TestSchemelessHostNameRedacted: the host of a URL without a scheme
// ("//api.test;jsessionid=…/x", which a custom base may serve) is a URL's
// host, not a custom key (BreakerSettings.Key): its name (the refusals'
// text, BreakerChange.Key, the log, the name of the fleet's retry budget
// in a BudgetStore) has its session id REDACTED, as the https:// form of
// the same URL has. The key was taken for a custom key, which is shown as
// it is, and the session id went everywhere, to a store shared by the
// fleet included. ResetHost and BreakerState name the breaker by the name
// it is shown under, as they name a URL host's.
func TestSchemelessHostNameRedacted(t *testing.T) {
	for _, host := range []string{
		"API.test;jsessionid=" + schemelessSecret,
		"bob:" + schemelessSecret + "@api.test", // user information put in URL.Host by hand
		strings.Repeat("a", 300) + ".test;jsessionid=" + schemelessSecret,
	} {
		t.Run(host[:8], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var changes []string
				var logs syncBuffer
				fleet := new(memFleet)
				tr := New(schemelessBase(http.StatusInternalServerError), WithMaxRetries(1), WithoutHedging(),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
					WithBreakerObserver(func(c BreakerChange) {
						mu.Lock()
						defer mu.Unlock()
						changes = append(changes, c.Key)
					}),
					WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
					WithQuotaStore(fleet))
				call := func() error {
					req, err := http.NewRequest(http.MethodGet, "//api.test/x", nil)
					if err != nil {
						t.Fatal(err)
					}
					req.URL.Host, req.Host = host, ""
					_, _, err = bkDo(t, tr, req)
					return err
				}
				call() // trips the breaker
				err := call()
				bkWantOpen(t, err)
				wantNoSecret(t, "the refusal", err.Error())
				mu.Lock()
				if len(changes) == 0 {
					t.Fatal("no BreakerChange")
				}
				name := changes[0]
				for _, k := range changes {
					wantNoSecret(t, "BreakerChange.Key", k)
				}
				mu.Unlock()
				if !strings.Contains(name, "REDACTED") && len(host) < maxCustomKey {
					t.Errorf("BreakerChange.Key = %q, want its secret REDACTED", name)
				}
				wantNoSecret(t, "the log", logs.String())
				fleet.bmu.Lock()
				if len(fleet.asked) == 0 {
					t.Error("the BudgetStore was not asked for the host's budget")
				}
				for _, n := range fleet.asked {
					wantNoSecret(t, "BudgetStore.Budget's name", n)
				}
				fleet.bmu.Unlock()
				fleet.mu.Lock()
				for _, n := range fleet.names {
					wantNoSecret(t, "QuotaStore.Partition's name", n)
				}
				fleet.mu.Unlock()

				if got := tr.BreakerState(name); got != BreakerOpen && !strings.Contains(name, "@") {
					// (A host alone with user information, "REDACTED@host",
					// is no host BreakerState reads, for any scheme.)
					t.Errorf("BreakerState(%q) = %v, want open", name, got)
				}
				tr.ResetHost(name)
				if err := call(); err != nil {
					t.Errorf("after ResetHost(%q): %v, want the breaker closed", name, err)
				}
			})
		})
	}
}

// TestSchemelessHostInFlightNameRedacted: the errors of WithMaxInFlight
// name a scheme-less URL's host with its session id REDACTED, as they
// name the host of an https:// URL. The call's error REDACTED the echo of
// the session id, but the error it wraps, which errors.Unwrap gives, kept
// it.
func TestSchemelessHostInFlightNameRedacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			<-release
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithoutHedging(), WithMaxInFlight(1))
		url := "//api.test;jsessionid=" + schemelessSecret + "/x"
		done := make(chan struct{})
		go func() {
			defer close(done)
			bkCall(t, tr, url)
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = bkDo(t, tr, req)
		if err == nil {
			t.Fatal("the second call went through a full host")
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			// The call's error REDACTS the echoes of its URL's
			// secrets in its text; the errors it wraps must not need it.
			wantNoSecret(t, "the error (or one it wraps)", e.Error())
		}
		if !strings.Contains(err.Error(), "REDACTED") {
			t.Errorf("error %q does not name the host", err)
		}
		close(release)
		<-done
	})
}

// TestSchemelessHostCustomKeyShownAsIs: a custom key (BreakerSettings.Key)
// is still shown as it is, its session-like parameter included, by the
// refusals and the BudgetStore, whatever the request's URL.
func TestSchemelessHostCustomKeyShownAsIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := new(memFleet)
		const key = "tenant;session=2"
		tr := New(schemelessBase(http.StatusInternalServerError), WithMaxRetries(1), WithoutHedging(),
			WithLogger(slog.New(slog.DiscardHandler)), WithQuotaStore(fleet),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, Key: func(*http.Request) string { return key }}))
		bkCall(t, tr, "//api.test/x")
		_, _, err := bkCall(t, tr, "//api.test/x")
		bkWantOpen(t, err)
		if !strings.Contains(err.Error(), key) {
			t.Errorf("refusal %q does not show the custom key %q", err, key)
		}
		fleet.bmu.Lock()
		defer fleet.bmu.Unlock()
		if len(fleet.asked) == 0 || fleet.asked[0] != key {
			t.Errorf("BudgetStore asked %q, want %q", fleet.asked, key)
		}
	})
}

// TestSchemelessHostPortBreakerState: BreakerState names the breaker of a
// scheme-less URL's host with a port as ResetHost does.
func TestSchemelessHostPortBreakerState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(schemelessBase(http.StatusInternalServerError), WithMaxRetries(0), WithoutHedging(),
			WithLogger(slog.New(slog.DiscardHandler)),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		bkCall(t, tr, "//api.test:8080/x")
		_, _, err := bkCall(t, tr, "//api.test:8080/x")
		bkWantOpen(t, err)
		for _, name := range []string{"api.test:8080", "API.test:08080", "api.test"} {
			if got := tr.BreakerState(name); got != BreakerOpen {
				t.Errorf("BreakerState(%q) = %v, want open", name, got)
			}
		}
		tr.ResetHost("api.test:8080")
		if _, _, err := bkCall(t, tr, "//api.test:8080/x"); errors.Is(err, ErrCircuitOpen) {
			t.Errorf("after ResetHost: %v", err)
		}
	})
}

// TestSchemelessHostSpellingsShareBudgetAndSlots: the spellings of the
// host of a URL without a scheme ("//API.test/x", "//api.test/x") are one
// host, as the breaker takes them: they share one retry budget, named once
// in a BudgetStore, and one WithMaxInFlight limit. Taken for custom keys,
// which are exact, each spelling had a full budget and a limit of its own,
// a caller's careless spellings multiplying both, and the fleet kept one
// budget for each.
func TestSchemelessHostSpellingsShareBudgetAndSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := new(memFleet)
		tr := New(schemelessBase(http.StatusOK), WithMaxRetries(1), WithoutHedging(),
			WithLogger(slog.New(slog.DiscardHandler)), WithQuotaStore(fleet))
		for _, u := range []string{"//api.test/x", "//API.test/x", "//api.test./x"} {
			if _, _, err := bkCall(t, tr, u); err != nil {
				t.Fatal(err)
			}
		}
		fleet.bmu.Lock()
		if len(fleet.budgets) != 1 {
			t.Errorf("BudgetStore asked for %q, want one budget for the host", fleet.asked)
		}
		fleet.bmu.Unlock()

		release := make(chan struct{})
		var inFlight atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if inFlight.Add(1) == 1 {
				<-release // the first holds the host's one slot
			}
			defer inFlight.Add(-1)
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr = New(base, WithMaxRetries(0), WithoutHedging(), WithMaxInFlight(1))
		done := make(chan struct{})
		go func() {
			defer close(done)
			bkCall(t, tr, "//api.test/x")
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "//API.test/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := bkDo(t, tr, req); !errors.Is(err, ErrTooManyInFlight) {
			t.Errorf("//API.test/x while //api.test/x holds the host's one slot: %v, want ErrTooManyInFlight", err)
		}
		close(release)
		<-done
	})
}
