package resilient

import (
	"flag"
	"fmt"
	"testing"
	"testing/synctest"
)

// seededCases runs the cases of a property test, each in a synctest
// bubble (which fails on a goroutine left blocked): draw makes the case
// of a seed, run checks it. The seeds run from first, cases of them
// (short under -short); seed, the test's -NAME.seed flag, when set,
// replays the case of that seed alone, or the -NAME.cases flag's number
// of them from it when that flag is given too. A failed case is logged
// and ends the run.
func seededCases[C fmt.Stringer](t *testing.T, name string, first, seed uint64, cases, short int, draw func(seed uint64) C, run func(*testing.T, C)) {
	n := cases
	if seed != 0 {
		first, n = seed, 1
		flag.Visit(func(f *flag.Flag) {
			if f.Name == name+".cases" {
				n = cases
			}
		})
	} else if testing.Short() {
		n = short
	}
	for i := range n {
		c := draw(first + uint64(i))
		synctest.Test(t, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("failed case: %s", c)
				}
			})
			run(t, c)
		})
		if t.Failed() {
			return
		}
	}
}
