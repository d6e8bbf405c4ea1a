package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/resilienthttp/resilient"
)

// ParseError reads an error response's envelope and leaves its body
// readable: the Transport returns every response with a nil error, as
// net/http does, and the caller decides what a 4xx means.
func ExampleParseError() {
	const envelope = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_CONFLICT","message":"Reused key with another payload"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_7f3a")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, envelope)
	}))
	defer srv.Close()

	resp, err := resilient.NewClient().Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println("error:", err) // no response at all: network, breaker, …
		return
	}
	defer resp.Body.Close()
	if apiErr := resilient.ParseError(resp); apiErr != nil {
		fmt.Println(apiErr)
		fmt.Println("code:", apiErr.Code, "dialect:", apiErr.Dialect, "retryable:", apiErr.Retryable)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println("body still readable, whole:", string(body) == envelope)
	// Output:
	// 409 PUBLIC_API_IDEMPOTENCY_CONFLICT: Reused key with another payload (request_id req_7f3a)
	// code: PUBLIC_API_IDEMPOTENCY_CONFLICT dialect: aidelly retryable: false
	// body still readable, whole: true
}
