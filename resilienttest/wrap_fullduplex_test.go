package resilienttest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHandlerLatencyKeepsAStreamedBodyFullDuplex proves that WithLatency
// does not deadlock a handler that answers a request while its body is
// still coming (a bidirectional stream over HTTP/2, as a plain server
// serves it): the server used to read the whole body ahead of the wait, so
// the handler was never called while the client, which ends its body only
// once answered, waited for the answer until its deadline.
func TestHandlerLatencyKeepsAStreamedBodyFullDuplex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ping := make([]byte, len("ping\n"))
			if _, err := io.ReadFull(r.Body, ping); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("pong\n"))
			http.NewResponseController(w).Flush()
			io.Copy(io.Discard, r.Body)
		})
		s := NewPipeServer(Altyaa, WithHandler(h), WithTLS(), WithLatency(time.Second))
		defer s.Close()

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		pr, pw := io.Pipe()
		defer pw.Close()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/stream", pr)
		if err != nil {
			t.Fatal(err)
		}
		go pw.Write([]byte("ping\n")) // the rest of the body once answered
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatalf("a stream the handler answers while its body is open: %v; want its answer (as from a plain server)", err)
		}
		defer resp.Body.Close()
		pong := make([]byte, len("pong\n"))
		if _, err := io.ReadFull(resp.Body, pong); err != nil || string(pong) != "pong\n" || resp.ProtoMajor != 2 {
			t.Fatalf("answer %q, %v over %s; want pong over HTTP/2", pong, err, resp.Proto)
		}
		pw.Close()
		io.Copy(io.Discard, resp.Body)
	})
}
