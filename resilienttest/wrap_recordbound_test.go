package resilienttest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
)

// recordingSteps are the steps that record a handler's answer, with the
// status the handler answers with.
var recordingSteps = []struct {
	step   Step
	status int
}{
	{Respond(201), 200},
	{Respond(201), 503},
	{FailAfterStoring(), 200},
	{FailAfterStoring(), 503},
	{CutBody(), 200},
	{CutBody(), 404},
	{DropAfter(), 200},
}

// TestHandlerRecordingIsBounded proves that a step that records the answer
// of a handler WithHandler (Respond, FailAfterStoring, CutBody, DropAfter)
// does not hold all of it: a handler streaming 64 MiB finds the heap grown
// by a few MiB at most, whether its answer is sent on as it comes or its
// writes fail past the bound.
func TestHandlerRecordingIsBounded(t *testing.T) {
	for _, tt := range recordingSteps {
		t.Run(tt.step.String()+"/"+strconv.Itoa(tt.status), func(t *testing.T) {
			const total, chunk = 64 << 20, 32 << 10
			var grew int64
			var before int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				p := bytes.Repeat([]byte{'x'}, chunk)
				for n := 0; n < total; n += chunk {
					if _, err := w.Write(p); err != nil {
						break
					}
				}
				grew = heapInUse() - before
				runtime.KeepAlive(w) // and what it records
			})
			s := NewPipeServer(Altyaa, WithHandler(h), WithScript("GET /v1/stream", tt.step))
			defer s.Close()
			w := &bareWriter{h: make(http.Header)}
			before = heapInUse()
			func() {
				defer func() {
					if v := recover(); v != nil && v != http.ErrAbortHandler {
						panic(v)
					}
				}()
				s.ServeHTTP(w, mustRequest(t, "GET", "/v1/stream"))
			}()
			if grew > 8<<20 {
				t.Errorf("the heap grew by %d MiB while the handler streamed 64 MiB; want at most 8 MiB", grew>>20)
			}
		})
	}
}

// TestHandlerRecordingPastTheBound proves what each recording step does
// with an answer past its bound of 1 MiB: Respond, and FailAfterStoring
// and CutBody of an answer they send as it is, send it whole as it comes;
// FailAfterStoring of a success answers 500; CutBody of a success sends
// its first MiB and breaks the connection; DropAfter drops it; and a
// handler whose answer is not sent sees its writes past the bound fail.
func TestHandlerRecordingPastTheBound(t *testing.T) {
	const size = 3 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, declared := range []bool{false, true} {
		for _, tt := range recordingSteps {
			t.Run(tt.step.String()+"/"+strconv.Itoa(tt.status)+"/declared="+strconv.FormatBool(declared), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var writeErr error
					done := make(chan struct{}) // closed when the handler has written
					h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						defer close(done)
						if declared {
							w.Header().Set("Content-Length", strconv.Itoa(size))
						}
						w.WriteHeader(tt.status)
						for p := body; len(p) > 0 && writeErr == nil; p = p[min(len(p), 64<<10):] {
							_, writeErr = w.Write(p[:min(len(p), 64<<10)])
						}
					})
					s := NewPipeServer(Altyaa, WithHandler(h), WithScript("GET /v1/stream", tt.step))
					defer s.Close()
					resp, err := s.Client().Get(s.URL + "/v1/stream")
					var got []byte
					var readErr error
					if err == nil {
						got, readErr = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					<-done
					sentWhole := func(status int) {
						t.Helper()
						if err != nil || readErr != nil || resp.StatusCode != status || !bytes.Equal(got, body) {
							t.Fatalf("got %v, %v, %d bytes; want %d and the whole body", err, readErr, len(got), status)
						}
						if writeErr != nil {
							t.Errorf("the handler's write failed: %v; want none (its answer is sent)", writeErr)
						}
					}
					notSent := func() {
						t.Helper()
						if writeErr == nil {
							t.Errorf("the handler's writes past the bound succeeded; want an error (its answer is not sent)")
						}
					}
					switch tt.step.kind {
					case stepRespond:
						want := tt.status
						if want < 300 {
							want = tt.step.status
						}
						sentWhole(want)
					case stepServerAfter:
						if tt.status >= 300 {
							sentWhole(tt.status)
							break
						}
						notSent()
						if err != nil || resp.StatusCode != http.StatusInternalServerError {
							t.Fatalf("got %v; want a 500", err)
						}
					case stepCutBody:
						if tt.status >= 300 {
							sentWhole(tt.status)
							break
						}
						notSent()
						if err != nil || resp.StatusCode != tt.status {
							t.Fatalf("got %v; want a response of status %d, its body cut", err, tt.status)
						}
						if readErr == nil || len(got) < maxRecorded-64<<10 || len(got) > maxRecorded || !bytes.Equal(got, body[:len(got)]) {
							t.Errorf("read %d bytes of the body, then %v; want about 1 MiB of it, then an error", len(got), readErr)
						}
						if declared && resp.ContentLength != size {
							t.Errorf("Content-Length %d, want the handler's own %d", resp.ContentLength, size)
						}
					case stepDropAfter:
						notSent()
						if err == nil {
							t.Fatalf("got a response of status %d; want the connection dropped", resp.StatusCode)
						}
						if st := s.Stats(); st.Dropped != 1 {
							t.Errorf("Stats.Dropped = %d, want 1", st.Dropped)
						}
					}
					if writeErr != nil && !errors.Is(writeErr, errAnswerNotSent) {
						t.Errorf("the handler's write failed with %v, want errAnswerNotSent", writeErr)
					}
				})
			})
		}
	}
}
