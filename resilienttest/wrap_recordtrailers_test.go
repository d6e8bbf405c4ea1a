package resilienttest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestHandlerRecordingPastTheBoundKeepsTrailers proves that an answer a
// recording step streams on past its bound of 1 MiB (Respond, and
// FailAfterStoring and CutBody of an answer they send as it is) keeps the
// trailers the handler sets once its body is written, declared or not
// (http.TrailerPrefix), over HTTP/1 and HTTP/2: the client gets them as
// from a plain server, and as within the bound.
func TestHandlerRecordingPastTheBoundKeepsTrailers(t *testing.T) {
	for _, tt := range []struct {
		step   Step
		status int
	}{
		{Respond(201), 200},
		{FailAfterStoring(), 404},
		{CutBody(), 404},
	} {
		for _, size := range []int{maxRecorded, maxRecorded + 1, 3 << 20} {
			for _, tls := range []bool{false, true} {
				for _, declared := range []bool{false, true} {
					name := fmt.Sprintf("%v/%d/%d/tls=%v/declared=%v", tt.step, tt.status, size, tls, declared)
					t.Run(name, func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
								if declared {
									w.Header().Set("Trailer", "X-Checksum")
								}
								w.WriteHeader(tt.status)
								w.Write(bytes.Repeat([]byte{'x'}, size))
								if declared {
									w.Header().Set("X-Checksum", "42")
								} else {
									w.Header().Set(http.TrailerPrefix+"X-Checksum", "42")
								}
							})
							opts := []Option{WithHandler(h), WithScript("GET /v1/export", tt.step)}
							if tls {
								opts = append(opts, WithTLS())
							}
							s := NewPipeServer(Altyaa, opts...)
							defer s.Close()
							resp, err := s.Client().Get(s.URL + "/v1/export")
							if err != nil {
								t.Fatal(err)
							}
							n, err := io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if err != nil || n != int64(size) {
								t.Fatalf("read %d bytes, then %v; want the whole body (the test's premise)", n, err)
							}
							if got := resp.Trailer.Get("X-Checksum"); got != "42" {
								t.Errorf("trailer X-Checksum %q, want %q", got, "42")
							}
						})
					})
				}
			}
		}
	}
}
