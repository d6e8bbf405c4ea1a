package resilient_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

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
