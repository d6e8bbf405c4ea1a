package resilient

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// undecodableBodies are success bodies sent with Content-Encoding: gzip that
// net/http's transparent decompression fails on, with the error a plain
// client's Read returns: the same bytes every time, so the same error.
func undecodableBodies(t *testing.T) []struct {
	name string
	body []byte
	is   func(error) bool
} {
	t.Helper()
	const doc = `{"items":[1,2,3]}`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(doc))
	zw.Close()
	badCRC := bytes.Clone(zipped.Bytes())
	badCRC[len(badCRC)-8] ^= 0xff // the trailer's CRC-32
	// A gzip header, then a deflate block of the reserved type 3.
	corrupt := append(bytes.Clone(zipped.Bytes()[:10]), 0x07, 0, 0, 0)
	return []struct {
		name string
		body []byte
		is   func(error) bool
	}{
		{"not gzip", []byte(doc), func(err error) bool { return errors.Is(err, gzip.ErrHeader) }},
		{"bad checksum", badCRC, func(err error) bool { return errors.Is(err, gzip.ErrChecksum) }},
		{"corrupt deflate", corrupt, func(err error) bool { return errors.As(err, new(flate.CorruptInputError)) }},
	}
}

// TestBufferedResponseUndecodableBodyIsHandedOver: with
// WithBufferedResponse, a success whose body does not decode (a server that
// names a Content-Encoding it did not apply, a corrupt stream) is the
// server's answer, as a plain client gets it: the same bytes come to every
// retry. The call returns the 200 after one request, its body yields the
// bytes decoded and then the decoder's error, as net/http's does, and the
// host's breaker and retry budget count the answer as a success: 25 such
// calls leave another path of the host reachable. It did not: each call was
// sent 6 times, then ended on the read's error once the host's retry budget
// was spent, without the 200, and the breaker, counting each as a lost
// connection, refused every request to the host.
func TestBufferedResponseUndecodableBodyIsHandedOver(t *testing.T) {
	for _, tc := range undecodableBodies(t) {
		for _, h2 := range []bool{false, true} {
			name := tc.name + "/HTTP/1.1"
			if h2 {
				name = tc.name + "/HTTP/2"
			}
			t.Run(name, func(t *testing.T) {
				var bad, good atomic.Int32
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/good" {
						good.Add(1)
						io.WriteString(w, `{"ok":true}`)
						return
					}
					bad.Add(1)
					w.Header().Set("Content-Encoding", "gzip")
					w.Header().Set("Content-Type", "application/json")
					w.Write(tc.body)
				}))
				srv.EnableHTTP2 = h2
				srv.StartTLS()
				defer srv.Close()
				base := srv.Client().Transport.(*http.Transport).Clone()
				base.ForceAttemptHTTP2 = h2
				defer base.CloseIdleConnections()
				client := &http.Client{Transport: New(base, WithBufferedResponse(1<<20), WithBackoff(time.Millisecond, 2*time.Millisecond))}

				for i := 1; i <= 25; i++ {
					before := bad.Load()
					resp, err := client.Get(srv.URL + "/bad")
					if err != nil {
						t.Fatalf("call %d: %v after %d requests; want the 200 after one, as a plain client gets it", i, err, bad.Load()-before)
					}
					data, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if n := bad.Load() - before; n != 1 || resp.StatusCode != 200 {
						t.Fatalf("call %d: status %d after %d requests; want 200 after one", i, resp.StatusCode, n)
					}
					if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
						t.Fatalf("call %d: %s, want HTTP/%d", i, resp.Proto, want)
					}
					if !tc.is(rerr) {
						t.Fatalf("call %d: the body read %d bytes, then %v; want the decoder's error, as a plain client reads", i, len(data), rerr)
					}
				}
				resp, err := client.Get(srv.URL + "/good")
				if err != nil {
					t.Fatalf("another path of the host after 25 undecodable answers: %v; want it reached, as by a plain client", err)
				}
				resp.Body.Close()
				if good.Load() != 1 {
					t.Errorf("/good: %d requests, want 1", good.Load())
				}
			})
		}
	}
}

// TestUndecodableBodyPlainClient pins what the test above compares with:
// a plain client returns each of these responses with a 200, and its body's
// Read fails with the decoder's error.
func TestUndecodableBodyPlainClient(t *testing.T) {
	for _, tc := range undecodableBodies(t) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(tc.body)
		}))
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			srv.Close()
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != 200 || !tc.is(rerr) {
			t.Errorf("%s: plain client: status %d, read error %v; want 200 and the decoder's error", tc.name, resp.StatusCode, rerr)
		}
	}
}
