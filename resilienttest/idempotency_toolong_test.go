package resilienttest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeyNotHeldByABodyTooLarge proves that a write whose body is past the
// limit holds no key in flight: the API refuses it with a 413 and stores
// nothing. net/http does not see a client go away while its body is
// unread, so the key used to stay held for the whole Slow step after the
// client had left, and a retry with the same key got a 409 "still being
// processed" for a write that would never be stored.
func TestKeyNotHeldByABodyTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Aidelly, WithScript(RouteCreatePost, Slow(time.Hour)))
		defer s.Close()
		body := `{"content":"` + strings.Repeat("x", maxBody) + `"}`
		post := func(ctx context.Context) (*http.Response, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/posts", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Idempotency-Key", "k1")
			return s.Client().Do(req)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		if resp, err := post(ctx); err == nil {
			resp.Body.Close()
			t.Fatalf("first attempt answered %d inside its hour-long Slow step", resp.StatusCode)
		}
		cancel()
		time.Sleep(time.Minute) // the first client left long ago

		resp, err := post(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("retry of a body too large = %d, want 413; stats %+v", resp.StatusCode, s.Stats())
		}
		if st := s.Stats(); st.InFlightConflicts != 0 || st.StoredWrites != 0 {
			t.Errorf("InFlightConflicts = %d, StoredWrites = %d, want 0 and 0", st.InFlightConflicts, st.StoredWrites)
		}
	})
}
