package resilienttest

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
)

// TestExchangeOfARefusedHijack proves that a handler of the caller's own
// that tries to take its connection over, is refused (over HTTP/2, or in
// process), and then answers normally, is told of with the status it
// answered, as WithExchanges says: the server dropped nothing.
func TestExchangeOfARefusedHijack(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := http.NewResponseController(w).Hijack(); err == nil {
			t.Errorf("%s: Hijack succeeded, the test's premise is wrong", r.Proto)
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":1}`))
	})
	synctest.Test(t, func(t *testing.T) {
		var (
			mu   sync.Mutex
			told []Exchange
		)
		s := NewPipeServer(Altyaa, WithHandler(h), WithTLS(),
			WithExchanges(func(e Exchange) { mu.Lock(); told = append(told, e); mu.Unlock() }))
		defer s.Close()
		r := send(t, s, "POST", "/v1/things", `{}`, "")
		mustStatus(t, r, http.StatusCreated)
		if rec, panicked := serveInProcess(s, "POST", "/v1/things", `{}`, ""); panicked != nil || rec.Code != http.StatusCreated {
			t.Fatalf("in process: status %d, panic %v; want 201", rec.Code, panicked)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(told) != 2 {
			t.Fatalf("told %d exchanges, want 2: %+v", len(told), told)
		}
		for i, e := range told {
			if e.Status != http.StatusCreated {
				t.Errorf("exchange %d (HTTP/2, then in process): status %d, want 201", i, e.Status)
			}
		}
	})
}
