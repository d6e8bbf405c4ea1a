package resilient

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stubOK is the base of the happy-path benchmarks: it answers 200 with a
// fresh *http.Response per call, as a real transport does, so that bare and
// chained runs pay the same for it.
type stubOK struct{ header http.Header }

func (s *stubOK) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: s.header, Body: http.NoBody, Request: req}, nil
}

func roundTripOK(b *testing.B, rt http.RoundTripper, req *http.Request) {
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("RoundTrip = %v, %v", resp, err)
	}
	resp.Body.Close()
}

// BenchmarkHappyPath measures what the whole chain adds to a call that
// succeeds at once: bare is the stub alone, resilient the Transport over
// it (default options; the breaker and the rate limiter as New builds
// them). resilient reports added-ns/op and added-allocs/op over bare.
func BenchmarkHappyPath(b *testing.B) {
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	tr := New(base)
	get, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts?limit=10", nil)

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			roundTripOK(b, base, get)
		}
	})
	b.Run("resilient", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			roundTripOK(b, tr, get)
		}
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.StopTimer()
		start := time.Now()
		for range b.N {
			roundTripOK(b, base, get)
		}
		bare := float64(time.Since(start).Nanoseconds()) / float64(b.N)
		allocs := testing.AllocsPerRun(1000, func() { roundTripOK(b, tr, get) }) -
			testing.AllocsPerRun(1000, func() { roundTripOK(b, base, get) })
		b.ReportMetric(perOp-bare, "added-ns/op")
		b.ReportMetric(allocs, "added-allocs/op")
	})
	b.Run("resilient-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				roundTripOK(b, tr, get)
			}
		})
	})
	b.Run("resilient-post", func(b *testing.B) {
		// A write: an idempotency key per call and a replayable body.
		body := []byte(`{"content":"hello"}`)
		post, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", bytes.NewReader(body))
		b.ReportAllocs()
		for b.Loop() {
			post.Body, _ = post.GetBody()
			roundTripOK(b, tr, post)
		}
	})
}

// rewindBody is a response body that can be served again without
// allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// aidelly429 is a typical Aidelly error envelope of about 300 bytes.
var aidelly429 = `{"success":false,"error":{"code":"PUBLIC_API_RATE_LIMITED","message":"Rate limit exceeded: 60 read requests per rolling minute on this plan. Retry after the number of seconds in the Retry-After header."},"request_id":"7f3a9c1e-0b2d-4c5e-9f1a-2b3c4d5e6f70"}`

// BenchmarkClassify measures the classification of an error response in
// memory: peek of the body, envelope parsing, the decision and the
// APIError.
func BenchmarkClassify(b *testing.B) {
	data := []byte(aidelly429 + strings.Repeat(" ", max(0, 300-len(aidelly429))))
	header := http.Header{
		"Content-Type":          {"application/json; charset=utf-8"},
		"Retry-After":           {"30"},
		"X-Ratelimit-Limit":     {"60"},
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {"2026-02-17T14:00:00Z"},
	}
	body := &rewindBody{}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: header}
	reset := func() {
		body.Reset(data)
		resp.Body, resp.ContentLength = body, int64(len(data))
	}
	check := func(b *testing.B, e *APIError) {
		if e.Code != "PUBLIC_API_RATE_LIMITED" || e.RequestID != "7f3a9c1e-0b2d-4c5e-9f1a-2b3c4d5e6f70" || !e.Retryable {
			b.Fatalf("APIError = %+v", e)
		}
	}
	b.Run("classifier", func(b *testing.B) {
		c := &classifier{codes: newCodeTable(nil), maxPeek: DefaultMaxPeek}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			reset()
			var st attemptState
			c.classify(&st, resp, nil, time.Now)
			check(b, st.apiErr)
		}
	})
	b.Run("ParseError", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			reset()
			check(b, ParseError(resp))
		}
	})
	b.Run("parseEnvelope", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			env, ok := parseEnvelope(data, false)
			if !ok || env.code == "" {
				b.Fatal("not parsed")
			}
		}
	})
}
