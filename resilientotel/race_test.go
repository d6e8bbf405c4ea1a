//go:build race

package resilientotel

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
