package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// midBodyCut gives one byte, then fails as a connection cut mid-body.
type midBodyCut struct{ read bool }

func (b *midBodyCut) Read(p []byte) (int, error) {
	if b.read {
		return 0, io.ErrUnexpectedEOF
	}
	b.read = true
	return copy(p, "{"), nil
}

func (*midBodyCut) Close() error { return nil }

// bodyEndTracer records what the end function of each attempt gets.
type bodyEndTracer struct {
	mu   sync.Mutex
	ends []string
}

func (*bodyEndTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }
func (*bodyEndTracer) Attempt(context.Context, Attempt)                               {}
func (*bodyEndTracer) EndCall(context.Context, *Report)                               {}

func (e *bodyEndTracer) StartAttempt(req *http.Request, _ AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return nil, func(resp *http.Response, err error) {
		s := "no response"
		if resp != nil {
			s = http.StatusText(resp.StatusCode)
		}
		if err != nil {
			s += " and an error"
		}
		e.mu.Lock()
		e.ends = append(e.ends, s)
		e.mu.Unlock()
	}
}

// TestTracerBodyBrokeGivesResponse: with WithBufferedResponse, the end
// function of an attempt whose success's body broke as the Transport read
// it gets that response beside the read's error (its status code was
// received: OpenTelemetry's http.response.status_code); a response that
// the base returned with an error, which the Transport drops, is given as
// none.
func TestTracerBodyBrokeGivesResponse(t *testing.T) {
	n := 0
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		n++
		resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("{}")), ContentLength: 2, Request: req}
		switch n {
		case 1:
			resp.Body = &midBodyCut{}
		case 2:
			return resp, errors.Join(errors.New("read tcp"), syscall.ECONNRESET)
		}
		return resp, nil
	})
	rec := &bodyEndTracer{}
	tr := New(base, WithTracer(rec), WithBackoff(0, 0), WithBufferedResponse(1<<10))
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []string{"OK and an error", "no response and an error", "OK"}
	if strings.Join(rec.ends, "; ") != strings.Join(want, "; ") {
		t.Errorf("ends %q, want %q", rec.ends, want)
	}
}
