package resilient

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the caller's GetBody failing as net/http resends a
// write itself, over a base whose TLSClientConfig has a VerifyConnection
// (certificate pinning): the GetBody's error, bare, is no TLS callback's.

// uploadBody is a request body of a kind the Transport does not read into
// memory (an upload from a file, say).
type uploadBody struct{ r io.Reader }

func (b *uploadBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *uploadBody) Close() error               { return nil }

// errReopen is the error of the caller's GetBody the first time it is
// called: the file it reopens is briefly unavailable.
var errReopen = errors.New("reopening the upload: resource temporarily busy")

// TestTLSCallbackRefusalAfterAConnectionNotUnsent: an HTTP/2 server that ignores keys
// processes a POST and resets its stream with PROTOCOL_ERROR (and answers
// any later request 201); net/http
// resends the request itself, asking the caller's GetBody for a new body,
// which fails once. net/http returns that error bare, after the write was
// processed. With a VerifyConnection in the base's TLSClientConfig it was
// read as the TLS callback's refusal of the connection: a *RequestError
// of a request never sent, which a Classifier that retries network errors
// has resent to a server that stores it again, where a plain client
// stores it once. A callback's refusal met after net/http got a connection
// for the attempt proves nothing unsent.
func TestTLSCallbackRefusalAfterAConnectionNotUnsent(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	cert, roots := ts.TLS.Certificates[0], ts.Client().Transport.(*http.Transport).TLSClientConfig
	ts.Close()
	var processed atomic.Int32
	addr := h2Server(t, &processed, func(id uint32) []byte {
		if processed.Load() == 1 {
			return h2Frame(3, 0, id, []byte{0, 0, 0, 1}) // RST_STREAM PROTOCOL_ERROR
		}
		return h2Frame(1, 0x4|0x1, id, []byte{0x08, 3, '2', '0', '1'}) // :status 201
	}, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	base := func() *http.Transport {
		cfg := roots.Clone()
		cfg.VerifyConnection = func(tls.ConnectionState) error { return nil } // a pin that holds
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	post := func(rt http.RoundTripper) error {
		const body = `{"text":"hi"}`
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/v1/posts", &uploadBody{strings.NewReader(body)})
		req.ContentLength = int64(len(body))
		var calls atomic.Int32
		req.GetBody = func() (io.ReadCloser, error) {
			if calls.Add(1) == 1 {
				return nil, errReopen
			}
			return &uploadBody{strings.NewReader(body)}, nil
		}
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	plainErr := post(base())
	plain := processed.Swap(0)
	err := post(New(base(), WithBackoff(0, 0), WithClassifier(retryNetworkErrors)))
	processedTwice(t, plain, processed.Load(), plainErr, err)
}
