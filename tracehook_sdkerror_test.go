package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// sdkCodeError is an error of a base of the caller's (an SDK's transport),
// a struct value with a Code and a Cause that is no error.
type sdkCodeError struct {
	Code  int
	Cause string
}

func (e sdkCodeError) Error() string { return "sdk: request failed" }

// sdkCodeDetail is the detail an sdkEmbedError carries by pointer.
type sdkCodeDetail struct{ Code, Cause error }

// sdkEmbedError is a struct value whose Code and Cause are promoted from
// an embedded pointer, nil here.
type sdkEmbedError struct{ *sdkCodeDetail }

func (e sdkEmbedError) Error() string { return "sdk: no detail" }

// TestGot1xxHookBaseErrorStructsDoNotPanic: with a Got1xxResponse hook in
// the request's trace (otelhttptrace installs one on every call), a base
// that fails with an error struct value having fields named Code and
// Cause that are not those of HTTP/2's StreamError (a Cause that is not an
// error, fields promoted through a nil embedded pointer) gets its error
// returned, as from a plain client, not a panic out of RoundTrip.
func TestGot1xxHookBaseErrorStructsDoNotPanic(t *testing.T) {
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil },
	})
	for _, want := range []error{sdkCodeError{Code: 3, Cause: "quota"}, sdkEmbedError{}} {
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, want })
		var err error
		p := func() (p any) {
			defer func() { p = recover() }()
			_, err = New(base, WithBackoff(0, 0), WithMaxRetries(0)).RoundTrip(newRequest(t, ctx, "GET", "http://api.test/v1/items", nil))
			return nil
		}()
		if p != nil {
			t.Errorf("%T: RoundTrip panicked: %v; want the base's error", want, p)
			continue
		}
		if err == nil || !errors.Is(err, want) || errors.As(err, new(*RequestError)) {
			t.Errorf("%T: err = %v; want the base's error, not the caller's", want, err)
		}
	}
}
