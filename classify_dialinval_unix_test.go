package resilient

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestDialUnixInvalidArgumentNotRetried: a base that dials a Unix socket
// (a Docker or a sidecar's API, http.Transport's DialContext set to it)
// whose path is longer than a socket address holds has every dial refused
// at once with EINVAL ("connect: invalid argument"), before any kernel
// connect: the caller's setting, which no retry mends, as for a host at an
// IPv6 link-local address without its zone
// (TestDialInvalidArgumentNotRetried). The Transport returns it after one
// attempt, and the host, never reached, is not counted against by its
// breaker.
func TestDialUnixInvalidArgumentNotRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("s", 200)+".sock")
	var dials int
	base := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials++
		return new(net.Dialer).DialContext(ctx, "unix", path)
	}}
	var attempts []Attempt
	tr := New(base, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	const u = "http://docker/v1.43/containers/json"
	if err := getClosed(t, tr, u); err == nil {
		t.Fatal("a dial that failed succeeded")
	}
	if len(attempts) == 0 {
		t.Fatal("a Unix socket dial refused as an invalid argument: no attempt observed")
	}
	if len(attempts) != 1 || attempts[0].Class != Permanent || dials != 1 {
		t.Errorf("a Unix socket dial refused as an invalid argument: %d attempts (%d dials), the first %v; want 1 attempt, %v", len(attempts), dials, attempts[0].Class, Permanent)
	}
	if st := tr.BreakerState(u); st != BreakerClosed {
		t.Errorf("after a Unix socket dial refused as an invalid argument: breaker %v, want %v", st, BreakerClosed)
	}
}
