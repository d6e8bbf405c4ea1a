package uuid

import (
	"regexp"
	"testing"
)

var v4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := New()
		if !v4.MatchString(u) {
			t.Fatalf("%q is not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("%q twice", u)
		}
		seen[u] = true
	}
}

// TestNewConcurrent draws UUIDs on several goroutines at once (so on
// threads with generators of their own) and finds no two alike.
func TestNewConcurrent(t *testing.T) {
	const workers, each = 8, 5000
	out := make(chan []string, workers)
	for range workers {
		go func() {
			us := make([]string, each)
			for i := range us {
				us[i] = New()
			}
			out <- us
		}()
	}
	seen := make(map[string]bool, workers*each)
	for range workers {
		for _, u := range <-out {
			if seen[u] {
				t.Fatalf("%q twice", u)
			}
			seen[u] = true
		}
	}
}
