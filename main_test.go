package resilient

import (
	"testing"

	"github.com/resilienthttp/resilient/internal/leakcheck"
)

// TestMain fails the run if any test leaves a goroutine behind: a
// Transport starts none per request, and tests close their servers and idle
// connections.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
