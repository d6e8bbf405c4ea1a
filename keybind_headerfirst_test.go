package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestContextKeyFirstWriteKeyedByHeader: the first write made with a
// context carrying WithIdempotencyKey sets a key header of its own (an SDK
// that keys its writes itself), which wins over the context's key. That
// write is still the one the context's key names: the next write made with
// the context, another one, is sent as without the key, as the doc of
// WithIdempotencyKey says. It was sent under the caller's key instead, and
// so, after a restart that makes the same calls again (the SDK's first
// write under a new key of its own, a new order), the host answered the new
// order's confirmation with the first run's stored one: the confirmation
// was lost while the caller saw a success.
func TestContextKeyFirstWriteKeyedByHeader(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	srv := httptest.NewServer(store)
	defer srv.Close()
	post := func(tr http.RoundTripper, ctx context.Context, path, key string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for run, sdkKey := range []string{"sdk-a", "sdk-b"} { // a restart: the SDK draws a new key
		tr := New(srv.Client().Transport, fastRetries)
		ctx := WithIdempotencyKey(context.Background(), "order-42")
		post(tr, ctx, "/v1/orders", sdkKey)
		confirm := "/v1/orders/" + []string{"1", "2"}[run] + "/confirm"
		got := post(tr, ctx, confirm, "")
		store.mu.Lock()
		key := store.keys[len(store.keys)-1]
		store.mu.Unlock()
		if key == "order-42" {
			t.Errorf("run %d: POST %s sent with key %q, want one of its own (the key names the first write)", run, confirm, key)
		}
		if !strings.Contains(got, confirm) {
			t.Errorf("run %d: POST %s answered %s, want its own answer", run, confirm, got)
		}
	}
}
