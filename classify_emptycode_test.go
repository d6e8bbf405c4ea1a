package resilient

import "testing"

// TestCodesEmptyCodePanics: WithCodes took an entry for the empty code
// (a blank line of a configured table, a code read from an unset
// variable) and dropped it silently: no envelope has an empty code (one
// without a code, or whose code repeats its status, is classified by its
// status), so the class the caller gave it never applied. It panics,
// naming the option, as on any other entry no answer can match.
func TestCodesEmptyCodePanics(t *testing.T) {
	panicsNaming(t, `WithCodes("": Transient)`, `resilient: WithCodes: empty code`,
		func() { WithCodes(map[string]Class{"": Transient, "x": Permanent}) })
	WithCodes(map[string]Class{"x": Transient})
	WithCodes(map[string]Class{})
}
