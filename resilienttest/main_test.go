package resilienttest

import (
	"testing"

	"github.com/resilienthttp/resilient/internal/leakcheck"
)

// TestMain fails the run if any test leaves a goroutine behind: Close
// ends the server's goroutines and the idle connections of its Transport.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
