package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// This file holds a *url.Error of Op "parse" that a base returns after
// the server answered: the server's words, not the caller's setting.

// redirectingBase is a base of the caller's own that follows a redirect
// itself, on a client stack that reports nothing to net/http's client
// trace (here an http.Transport given a context of its own; an HTTP/3
// client, say): the Location it parses is the server's, and its error,
// url.Parse's *url.Error, is returned as it is.
type redirectingBase struct{ next *http.Transport }

func (b redirectingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer context.AfterFunc(req.Context(), cancel)()
	resp, err := b.next.RoundTrip(req.Clone(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		body, _ := io.ReadAll(resp.Body) // read whole before ctx is canceled
		resp.Body.Close()
		cancel()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	u, err := req.URL.Parse(loc)
	if err != nil {
		return nil, err
	}
	next := req.Clone(req.Context())
	next.URL, next.Method, next.Body, next.ContentLength = u, http.MethodGet, nil, 0
	return b.RoundTrip(next)
}

// TestParseErrorAfterAnswerNotUnsent: a server that ignores keys processes
// a POST and answers it 303 with a Location that does not parse (a space
// in its host). The caller's base, which follows redirects itself, fails
// with url.Parse's *url.Error, Op "parse", after the write was processed.
// It was read as a Proxy func's setting, never sent: a Classifier that
// retries network errors has resent the write to a server that stores it
// again, where a plain client stores it once.
func TestParseErrorAfterAnswerNotUnsent(t *testing.T) {
	var processed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			processed.Add(1)
			w.Header().Set("Location", "http://posts host/v1/posts/1")
			w.WriteHeader(http.StatusSeeOther)
		}
	}))
	defer srv.Close()
	base := func() http.RoundTripper {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return redirectingBase{tr}
	}
	plainErr := postTo(base(), srv.URL+"/v1/posts")
	plain := processed.Swap(0)
	err := postTo(New(base(), WithBackoff(0, 0), WithClassifier(retryNetworkErrors)), srv.URL+"/v1/posts")
	processedTwice(t, plain, processed.Load(), plainErr, err)
}
