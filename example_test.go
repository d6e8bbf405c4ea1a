package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// A server that fails twice with 503 and then answers: the client retries
// and the caller sees only the success.
func Example() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"service_unavailable","message":"try later"}}`)
			return
		}
		io.WriteString(w, `{"data":"ok"}`)
	}))
	defer srv.Close()

	client := resilient.NewClient(resilient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls.Load(), "attempts")
	// Output: 200 {"data":"ok"} after 3 attempts
}

// sdkTransport stands for the RoundTripper an SDK configured: here it signs
// each request it sends.
type sdkTransport struct {
	base  http.RoundTripper
	sends atomic.Int32
}

func (s *sdkTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s.sends.Add(1)
	req = req.Clone(req.Context()) // a RoundTripper must not modify the caller's request
	req.Header.Set("Authorization", "Bearer sdk-token")
	return s.base.RoundTrip(req)
}

// New wraps a transport an SDK already configured: every attempt, retries
// included, goes through it, and the client's Timeout is the Transport's
// own budget, so that reading the body is bounded by it too.
func ExampleNew() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	defer srv.Close()

	sdk := &sdkTransport{base: http.DefaultTransport}
	tr := resilient.New(sdk, resilient.WithMaxRetries(3), resilient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	client := &http.Client{Transport: tr, Timeout: tr.MaxElapsed()}
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", sdk.sends.Load(), "sends through the SDK's transport")
	// Output: 200 Bearer sdk-token after 2 sends through the SDK's transport
}

// A video uploaded from a file: the upload URL fails once with a 502 after
// reading the whole body, and the retry sends the file again from the
// start. An *os.File has no GetBody, but it can seek: it is rewound for
// each retry, whatever its size, instead of being kept in memory.
func ExampleWithMaxBufferedBody_file() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "stored %d bytes", n)
	}))
	defer srv.Close()

	f, err := os.CreateTemp("", "video-*.mp4")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.Remove(f.Name())
	f.Write(make([]byte, 3<<20)) // 3 MiB, over the 1 MiB kept in memory
	f.Seek(0, io.SeekStart)

	client := resilient.NewClient(resilient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/uploads/v1", f) // the client closes f
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls.Load(), "attempts")
	// Output: 200 stored 3145728 bytes after 2 attempts
}
