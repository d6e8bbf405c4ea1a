//go:build !unix

package resilient

import "time"

// processCPU returns 0 where the process's CPU time is not read (no
// getrusage): the benchmarks' CPU-time metrics then read 0, their other
// figures stand.
func processCPU() time.Duration { return 0 }
