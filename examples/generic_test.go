package examples

import (
	"testing"

	"github.com/resilienthttp/resilient/resilienttest"
)

// newAltyaa starts an Altyaa API of package resilienttest whose route
// answers every attempt with step, behind a pipeServer that records what
// each attempt carried. It must be called inside the bubble that uses it.
func newAltyaa(t *testing.T, route string, step resilienttest.Step) *pipeServer {
	t.Helper()
	steps := make([]resilienttest.Step, 64) // more than any stack of retries here makes
	for i := range steps {
		steps[i] = step
	}
	api := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithScript(route, steps...))
	t.Cleanup(api.Close)
	return newPipeServer(t, "altyaa.test", api)
}
