package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient"
)

// A client that must not send more than 50 requests a second to each host
// (and class: reads apart from writes) paces itself with a static limit,
// and sees the quota the server announces in its X-RateLimit-* headers. Had
// the server announced a lower rate, or a 429, the client would have
// followed it.
func ExampleWithRateLimit() {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", strconv.FormatInt(100-n, 10))
		w.Header().Set("X-RateLimit-Reset", "1") // seconds from now
		io.WriteString(w, `{"data":"ok"}`)
	}))
	defer srv.Close()

	var last resilient.RateLimitInfo
	client := resilient.NewClient(
		resilient.WithRateLimit(rate.Every(20*time.Millisecond), 1), // 50 a second, no bursts
		resilient.WithObserver(func(a resilient.Attempt) { last = a.RateLimit }),
	)
	start := time.Now()
	for range 5 {
		resp, err := client.Get(srv.URL + "/v1/posts")
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	fmt.Println("5 calls, 20ms apart:", time.Since(start) >= 4*20*time.Millisecond)
	fmt.Printf("server's quota: limit %d, remaining %d\n", last.Limit, last.Remaining)
	// Output:
	// 5 calls, 20ms apart: true
	// server's quota: limit 100, remaining 95
}

// A vendor that announces its quota in headers of its own (X-Quota-Limit,
// X-Quota-Left and X-Quota-Reset-Seconds here) is paced as one that speaks
// a built-in family is, once a RateLimitParser reads them.
func ExampleWithRateLimitParser() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Quota-Limit", "500")
		w.Header().Set("X-Quota-Left", "499")
		w.Header().Set("X-Quota-Reset-Seconds", "60")
		io.WriteString(w, `{"data":"ok"}`)
	}))
	defer srv.Close()

	quota := func(h http.Header, now time.Time) (resilient.RateLimitInfo, bool) {
		info := resilient.RateLimitInfo{Limit: -1, Remaining: -1}
		limit, err1 := strconv.Atoi(h.Get("X-Quota-Limit"))
		left, err2 := strconv.Atoi(h.Get("X-Quota-Left"))
		if err1 != nil || err2 != nil {
			return info, false
		}
		info.Limit, info.Remaining = limit, left
		if s, err := strconv.Atoi(h.Get("X-Quota-Reset-Seconds")); err == nil {
			info.Reset = now.Add(time.Duration(s) * time.Second)
		}
		return info, true
	}
	var last resilient.RateLimitInfo
	client := resilient.NewClient(
		resilient.WithRateLimitParser(quota),
		resilient.WithObserver(func(a resilient.Attempt) { last = a.RateLimit }),
	)
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Printf("quota learned: limit %d, remaining %d\n", last.Limit, last.Remaining)
	// Output: quota learned: limit 500, remaining 499
}
