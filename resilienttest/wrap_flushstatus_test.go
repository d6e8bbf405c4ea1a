package resilienttest

import (
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestHandlerFlushRefusedKeepsStatus proves that a Flush the ResponseWriter
// underneath refuses (http.ErrNotSupported: nothing went out) commits no
// status: the handler's later 503 is the one sent, and the one Stats and
// the Exchange tell of.
func TestHandlerFlushRefusedKeepsStatus(t *testing.T) {
	for _, exchanges := range []bool{false, true} {
		var told []Exchange
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).Flush(); err == nil {
				t.Errorf("Flush on a writer that cannot flush succeeded: the test's premise is wrong")
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		opts := []Option{WithHandler(h)}
		if exchanges {
			opts = append(opts, WithExchanges(func(e Exchange) { told = append(told, e) }))
		}
		s := NewServer(Altyaa, opts...)
		w := &bareWriter{h: make(http.Header)}
		s.ServeHTTP(w, mustRequest(t, "GET", "/v1/events"))
		s.Close()
		if w.status != http.StatusServiceUnavailable {
			t.Fatalf("exchanges %v: sent %d, want 503 (the test's premise)", exchanges, w.status)
		}
		if st := s.Stats(); st.ServerErrors != 1 {
			t.Errorf("exchanges %v: Stats.ServerErrors = %d after a 503 sent, want 1", exchanges, st.ServerErrors)
		}
		if exchanges && (len(told) != 1 || told[0].Status != http.StatusServiceUnavailable) {
			t.Errorf("exchanges %v: told %+v, want one exchange of status 503", exchanges, told)
		}
	}
}

// TestRecordedFlushCommitsStatus proves that a handler behind a step that
// records its answer gets from Flush what it gets on the server's own
// writer: the status is committed (200), so a later WriteHeader is
// superfluous. The step then acts on the 200 the client would have had
// without it, not on a status the real writer would never have sent.
func TestRecordedFlushCommitsStatus(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		http.NewResponseController(w).Flush()
		w.WriteHeader(http.StatusServiceUnavailable) // superfluous: the 200 went out
		w.Write([]byte("data: a\n\n"))
	})
	for _, tc := range []struct {
		step Step
		want int
	}{
		{Normal(), http.StatusOK},
		{Respond(http.StatusAccepted), http.StatusAccepted},
		{FailAfterStoring(), http.StatusInternalServerError},
	} {
		t.Run(fmt.Sprint(tc.step), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(Altyaa, WithHandler(h), WithScript("GET /v1/events", tc.step))
				defer s.Close()
				if r := send(t, s, "GET", "/v1/events", "", ""); r.status != tc.want {
					t.Errorf("%v: status %d after a Flush, want %d", tc.step, r.status, tc.want)
				}
			})
		})
	}
}
