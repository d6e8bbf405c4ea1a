package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// brokenRedirectBase answers GET /from with a 302 to /to whose body breaks
// (an unexpected EOF after a few bytes), as a server that closes the
// connection after the redirect's headers does, and GET /to with a 200.
// It counts the requests to /from.
type brokenRedirectBase struct{ from int }

func (b *brokenRedirectBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	resp := &http.Response{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Request: req}
	switch req.URL.Path {
	case "/from":
		b.from++
		resp.StatusCode = http.StatusFound
		resp.Header.Set("Location", "/to")
		resp.ContentLength = 1000
		resp.Body = cutAfter("<a href=\"/to\">Found</a>", io.ErrUnexpectedEOF)()
	default:
		resp.StatusCode = http.StatusOK
		resp.ContentLength = 2
		resp.Body = io.NopCloser(strings.NewReader("ok"))
	}
	return resp, nil
}

// TestBufferedResponseFollowsRedirectWithBrokenBody checks that
// WithBufferedResponse does not read the body of a redirect that
// http.Client follows: http.Client reads at most 2 KiB of it, ignores
// its errors and follows the Location, so a plain client gets the 200 of
// the target where a Transport that read the body would retry the
// redirect and fail the call on its broken body.
func TestBufferedResponseFollowsRedirectWithBrokenBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plain := &http.Client{Transport: &brokenRedirectBase{}}
		resp, err := plain.Get("http://api.example/from")
		if err != nil {
			t.Fatalf("plain client: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("plain client: status %d, want 200", resp.StatusCode)
		}

		base := &brokenRedirectBase{}
		cl := &http.Client{Transport: New(base, WithBufferedResponse(1<<20), WithBackoff(time.Millisecond, time.Millisecond))}
		resp, err = cl.Get("http://api.example/from")
		if err != nil {
			t.Fatalf("through the Transport, after %d attempts of the redirect: %v", base.from, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || base.from != 1 {
			t.Errorf("status %d after %d attempts of the redirect, want 200 after 1", resp.StatusCode, base.from)
		}
	})
}
