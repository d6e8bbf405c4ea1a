//go:build !race

package resilient

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
