package resilienttest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// controllerErrors calls the deadline and full-duplex methods of an
// http.ResponseController on w and returns what each one answered.
func controllerErrors(w http.ResponseWriter) []string {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(time.Minute)
	var errs []string
	for name, err := range map[string]error{
		"SetReadDeadline":  rc.SetReadDeadline(deadline),
		"SetWriteDeadline": rc.SetWriteDeadline(deadline),
		"EnableFullDuplex": rc.EnableFullDuplex(),
	} {
		if err != nil {
			errs = append(errs, name+": "+err.Error())
		}
	}
	return errs
}

// TestHandlerResponseController proves that a handler of WithHandler
// reaches the features of the server's own ResponseWriter through an
// http.ResponseController (deadlines, full duplex), whatever the step that
// handles its attempt: also when the server records its answer to send it
// later, changed or cut (Respond, FailAfterStoring, CutBody, DropAfter),
// with and without WithExchanges. A recorded answer still cannot be taken
// over: its step must be able to change it.
func TestHandlerResponseController(t *testing.T) {
	steps := []Step{Normal(), Respond(http.StatusAccepted), FailAfterStoring(), CutBody(), DropAfter()}
	for _, exchanges := range []bool{false, true} {
		for _, step := range steps {
			t.Run(fmt.Sprintf("exchanges=%v/%v", exchanges, step), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var errs []string
					h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						errs = controllerErrors(w)
						io.ReadAll(r.Body)
						if step.kind != stepNormal {
							if _, _, err := http.NewResponseController(w).Hijack(); !errors.Is(err, http.ErrNotSupported) {
								t.Errorf("%v: Hijack of a recorded answer: %v, want http.ErrNotSupported", step, err)
							}
						}
						w.WriteHeader(http.StatusCreated)
						w.Write([]byte(`{"id":1}`))
					})
					opts := []Option{WithHandler(h), WithScript("POST /v1/things", step)}
					if exchanges {
						opts = append(opts, WithExchanges(func(Exchange) {}))
					}
					s := NewPipeServer(Altyaa, opts...)
					defer s.Close()
					send(t, s, "POST", "/v1/things", `{}`, "")
					if len(errs) != 0 {
						t.Errorf("ResponseController: %s", strings.Join(errs, "; "))
					}
				})
			})
		}
	}
}

// bareWriter is a ResponseWriter that can do nothing but answer: no Flush,
// no Hijack, as a caller in process may pass to ServeHTTP.
type bareWriter struct {
	h      http.Header
	status int
}

func (w *bareWriter) Header() http.Header { return w.h }
func (w *bareWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bareWriter) Write(p []byte) (int, error) { w.WriteHeader(http.StatusOK); return len(p), nil }

// TestHandlerFlushNotSupported proves that a handler of WithHandler told
// by an http.ResponseController that its answer was flushed was: in
// process, on a ResponseWriter that cannot flush, Flush answers
// http.ErrNotSupported, as it would without the server in between.
func TestHandlerFlushNotSupported(t *testing.T) {
	for _, exchanges := range []bool{false, true} {
		var flushErr error
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("event: a\n\n"))
			flushErr = http.NewResponseController(w).Flush()
		})
		opts := []Option{WithHandler(h)}
		if exchanges {
			opts = append(opts, WithExchanges(func(Exchange) {}))
		}
		s := NewServer(Altyaa, opts...)
		w := &bareWriter{h: make(http.Header)}
		s.ServeHTTP(w, mustRequest(t, "GET", "/v1/events"))
		s.Close()
		if !errors.Is(flushErr, http.ErrNotSupported) {
			t.Errorf("exchanges %v: Flush on a writer that cannot flush: %v, want http.ErrNotSupported", exchanges, flushErr)
		}
		if w.status != http.StatusOK {
			t.Errorf("exchanges %v: status %d, want 200", exchanges, w.status)
		}
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://altyaa.test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
