package resilient_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/resilienthttp/resilient"
)

// A key derived from the caller's own business id keeps a write
// deduplicated even across process restarts: a retry after a crash sends
// the same key. How the key is derived is the caller's business; the
// Transport sends it unchanged on every attempt.
func ExampleWithIdempotencyKey() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Println("server got key", r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	postID := "campaign-7/post-42"
	sum := sha256.Sum256([]byte(postID))
	key := hex.EncodeToString(sum[:16])

	ctx := resilient.WithIdempotencyKey(context.Background(), key)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
	resp, err := resilient.NewClient().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// server got key 5af5e7ebc6cf99bafbea701e3a4ed939
	// 201
}

// A host whose documentation says it deduplicates writes by key, named so:
// a POST whose answer is lost after the server stored it (here a 502) is
// resent with the same key, and the server answers with the post it
// stored. Without the name, and nothing in its answers proving it, the
// same failure is returned at once: a resend could store the post twice.
func ExampleWithKeyHonoringHosts() {
	var mu sync.Mutex
	stored := map[string]int{} // idempotency key → post id
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		key := r.Header.Get("Idempotency-Key")
		if id, ok := stored[key]; ok {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%d}`, id) // the stored post, not a new one
			return
		}
		stored[key] = len(stored) + 1
		w.WriteHeader(http.StatusBadGateway) // stored, but the answer is lost
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	post := func(client *http.Client) {
		var r resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode)
		if len(body) > 0 {
			fmt.Printf(" %s", body)
		}
		fmt.Printf(" after %d attempt(s)", r.Attempts)
		if r.StopReason != "" {
			fmt.Printf(", not resent: %s", r.StopReason)
		}
		fmt.Println()
	}
	post(resilient.NewClient(resilient.WithKeyHonoringHosts(u.Host), resilient.WithBackoff(time.Millisecond, time.Millisecond)))
	post(resilient.NewClient(resilient.WithBackoff(time.Millisecond, time.Millisecond)))
	mu.Lock()
	fmt.Println(len(stored), "posts stored")
	mu.Unlock()
	// Output:
	// 201 {"id":1} after 2 attempt(s)
	// 502 after 1 attempt(s), not resent: unsafe_write
	// 2 posts stored
}
