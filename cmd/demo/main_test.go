package main

import (
	"testing"

	"github.com/resilienthttp/resilient/internal/leakcheck"
)

// TestMain fails the run if any test leaves a goroutine behind: a run
// closes its servers and its clients' idle connections.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
