package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// TestRedactionNilRequestHugeTextCut: the text of an error made safe
// without a request (the panic value of a hedged copy that no caller
// waits for, see hedgeRun.logLostPanic: a caller's value of megabytes,
// which quotes URLs) is cut before it is searched, as a request's error
// is (see echoesCut): it was redacted whole, copied once by each pass
// (some 40 MB for a value of 12 MB), to be cut to 1 KiB at the end. A
// string the cut falls within is redacted up to the cut (see cutQuoted),
// as with a request. The work is counted in bytes allocated, not in time.
func TestRedactionNilRequestHugeTextCut(t *testing.T) {
	huge := `panic: bad state "/login?next=a b&sid=s3ss10n ` + strings.Repeat(`https://api.test/v1?access_token=t0k3n "x" `, 12<<20/44) + `"`
	cause := errors.New(huge)
	var msg string
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	msg = redactRequestError(cause, nil).Error()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(huge)/8) {
		t.Errorf("redactRequestError(%d bytes, nil) allocates %d bytes, want %d at most", len(huge), got, len(huge)/8)
	}
	if strings.Contains(msg, "s3ss10n") || strings.Contains(msg, "t0k3n") || len(msg) > 2*maxErrorText {
		t.Errorf("redactRequestError(%d bytes, nil) = %.160q (%d bytes), want the queries removed, cut", len(huge), msg, len(msg))
	}
	// As with a request.
	req := &http.Request{Method: http.MethodGet, Header: http.Header{},
		URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1/items"}}
	if got, want := msg, redactRequestError(cause, req).Error(); got != want {
		t.Errorf("redactRequestError(%d bytes, nil) = %.160q, want %.160q, as with a request", len(huge), got, want)
	}
}
