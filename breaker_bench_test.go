package resilient

import (
	"net/http"
	"testing"
)

// BenchmarkBreaker measures what the breaker adds to an attempt on the happy
// path: the whole Transport over a stub with and without the breaker, and
// the breaker middleware alone over the stub. A closed breaker takes no
// lock and allocates nothing.
func BenchmarkBreaker(b *testing.B) {
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	if err != nil {
		b.Fatal(err)
	}
	stub := &stubOK{header: http.Header{}} // a response of its own per call
	run := func(b *testing.B, rt http.RoundTripper) {
		b.ReportAllocs()
		for b.Loop() {
			roundTripOK(b, rt, req)
		}
	}
	runParallel := func(b *testing.B, rt http.RoundTripper) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := rt.RoundTrip(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Error(resp, err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	mw := New(stub).breakerMiddleware()
	b.Run("transport/without", func(b *testing.B) { run(b, New(stub, WithoutBreaker())) })
	b.Run("transport/with", func(b *testing.B) { run(b, New(stub)) })
	b.Run("transport/parallel-without", func(b *testing.B) { runParallel(b, New(stub, WithoutBreaker())) })
	b.Run("transport/parallel-with", func(b *testing.B) { runParallel(b, New(stub)) })
	b.Run("middleware/without", func(b *testing.B) { run(b, stub) })
	b.Run("middleware/with", func(b *testing.B) { run(b, mw(stub)) })
	b.Run("middleware/parallel-with", func(b *testing.B) { runParallel(b, mw(stub)) })
}
