package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// sdkStatus is an SDK's status code, named by a pointer method that reads
// it: a nil one has no name.
type sdkStatus struct{ name string }

func (s *sdkStatus) String() string { return s.name }

// sdkStatusError is an error of a base of the caller's whose Code is a
// pointer, nil when the failure had no status.
type sdkStatusError struct {
	Code  *sdkStatus
	Cause error
}

func (sdkStatusError) Error() string { return "sdk: transport failed" }

// sdkStringerError is sdkStatusError with its Code an interface, holding a
// nil *sdkStatus.
type sdkStringerError struct {
	Code  interface{ String() string }
	Cause error
}

func (sdkStringerError) Error() string { return "sdk: transport failed" }

// TestGot1xxHookBaseErrorCodeShapesDoNotPanic: with a Got1xxResponse hook
// in the request's trace (otelhttptrace installs one), a base that fails
// with an error struct value whose Code is no HTTP/2 error code (a nil
// pointer, an interface holding one, whose String method reads through it)
// and whose Cause is an error gets its error returned, as from a plain
// client, not a panic out of RoundTrip; HTTP/2's StreamError shape is
// still read as the hook's.
func TestGot1xxHookBaseErrorCodeShapesDoNotPanic(t *testing.T) {
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil },
	})
	cause := errors.New("sdk: dial failed")
	for _, tc := range []struct {
		err  error
		hook bool
	}{
		{sdkStatusError{Cause: cause}, false},
		{sdkStringerError{Code: (*sdkStatus)(nil), Cause: cause}, false},
		{sdkStringerError{Cause: cause}, false},
		{fakeStreamError{1, 1, cause}, true},
	} {
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, tc.err })
		var err error
		p := func() (p any) {
			defer func() { p = recover() }()
			_, err = New(base, WithBackoff(0, 0), WithMaxRetries(0)).RoundTrip(newRequest(t, ctx, "GET", "http://api.test/v1/items", nil))
			return nil
		}()
		if p != nil {
			t.Errorf("%T: RoundTrip panicked: %v; want the base's error", tc.err, p)
			continue
		}
		if err == nil || !errors.Is(err, tc.err) || errors.As(err, new(*RequestError)) != tc.hook {
			t.Errorf("%T: err = %v; want the base's error, the hook's: %v", tc.err, err, tc.hook)
		}
	}
}
