package resilient

import (
	"context"
	"testing"
)

// TestWithReportNestedReplacesOuter checks what the doc of WithReport
// says of a context that carries a Report already: the calls made with the
// new context fill the new Report alone, and the outer one stays as it was.
func TestWithReportNestedReplacesOuter(t *testing.T) {
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
	var outer, inner Report
	ctx := WithReport(WithReport(context.Background(), &outer), &inner)
	resp, err := roundTrip(t, New(s, fastRetries), newRequest(t, ctx, "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if inner.Attempts != 2 || inner.StatusCode != 200 {
		t.Errorf("inner Report = %+v, want 2 attempts and status 200", inner)
	}
	if outer != (Report{}) {
		t.Errorf("outer Report = %+v, want it untouched", outer)
	}
}
