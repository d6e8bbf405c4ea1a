package resilienttest

import (
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// endlessBody is a request body of n bytes of 'x' made as they are read,
// counting how many the server asked for.
type endlessBody struct{ n, read int64 }

func (b *endlessBody) Read(p []byte) (int, error) {
	if b.read >= b.n {
		return 0, io.EOF
	}
	k := int64(len(p))
	k = min(k, b.n-b.read)
	for i := range p[:k] {
		p[i] = 'x'
	}
	b.read += k
	return int(k), nil
}

// TestHandlerLatencyBoundsTheBodyReadAhead proves that the body a server
// WithHandler reads ahead of a wait (WithLatency, Slow) is bounded: a
// handler that refuses a body past its own limit (http.MaxBytesReader)
// gets to refuse it, as behind a plain server, instead of the server
// reading the whole body into memory first, however long it is.
func TestHandlerLatencyBoundsTheBodyReadAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<10)); err != nil {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			w.WriteHeader(http.StatusCreated)
		})
		s := NewPipeServer(Altyaa, WithHandler(h), WithLatency(time.Second))
		defer s.Close()
		const size = 64 << 20
		body := &endlessBody{n: size}
		req, err := http.NewRequest(http.MethodPost, s.URL+"/upload", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		if resp, err := s.Client().Do(req); err == nil {
			resp.Body.Close()
		}
		if body.read > 8<<20 {
			t.Errorf("the server read %d bytes of a body its handler refuses past 1 KiB; want at most 8 MiB (a bounded read-ahead)", body.read)
		}
	})
}
