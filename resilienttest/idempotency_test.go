package resilienttest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestReplayAndConflict(t *testing.T) {
	tests := []struct {
		d            Dialect
		status       int
		conflictCode string
	}{
		{Aidelly, 409, "PUBLIC_API_IDEMPOTENCY_CONFLICT"},
		{Altyaa, 409, "conflict"},
		{Postato, 422, "IDEMPOTENCY_CONFLICT"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			s := NewServer(tt.d)
			defer s.Close()
			first := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
			mustStatus(t, first, 201)
			again := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
			mustStatus(t, again, 201)
			if !bytes.Equal(first.body, again.body) || again.header.Get("Location") != first.header.Get("Location") {
				t.Fatalf("replay %s, want %s", again.body, first.body)
			}
			if again.header.Get("Idempotent-Replayed") != "true" || first.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("Idempotent-Replayed not set on the replay only")
			}
			if tt.d != Aidelly && again.header.Get("X-Request-Id") == first.header.Get("X-Request-Id") {
				t.Fatal("the replay reused the first request id")
			}
			other := send(t, s, "POST", "/v1/posts", `{"content":"b"}`, "k")
			mustStatus(t, other, tt.status)
			if e := parseError(t, tt.d, other); e.code != tt.conflictCode {
				t.Fatalf("conflict code %q, want %q", e.code, tt.conflictCode)
			}
			// The same key on the other write route is another key.
			mustStatus(t, send(t, s, "POST", "/v1/media/upload-url", `{"content":"b"}`, "k"), 200)
			st := s.Stats()
			if st.StoredWrites != 2 || st.Replays != 1 || st.Conflicts != 1 || st.Duplicates != 0 {
				t.Fatalf("StoredWrites, Replays, Conflicts, Duplicates = %d, %d, %d, %d; want 2, 1, 1, 0",
					st.StoredWrites, st.Replays, st.Conflicts, st.Duplicates)
			}
		})
	}
}

// TestDuplicates proves what counts as a would-be duplicate: an equal body
// stored again under another key or without one, on the same route.
func TestDuplicates(t *testing.T) {
	s := NewServer(Postato)
	defer s.Close()
	send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k1")
	send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k1") // replay: not a duplicate
	send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k2") // duplicate
	send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "")   // duplicate
	send(t, s, "POST", "/v1/posts", `{"content":"c"}`, "")
	send(t, s, "POST", "/v1/posts", `{"content":"c"}`, "")              // duplicate
	send(t, s, "POST", "/v1/media/upload-url", `{"content":"a"}`, "k3") // other route
	for range 2 {                                                       // X-Idempotency-Key is a key too
		req, _ := http.NewRequest("POST", s.URL+"/v1/posts", strings.NewReader(`{"content":"x"}`))
		req.Header.Set("X-Idempotency-Key", "xk")
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	st := s.Stats()
	if st.StoredWrites != 7 || st.Duplicates != 3 || st.Replays != 2 {
		t.Fatalf("StoredWrites, Duplicates, Replays = %d, %d, %d; want 7, 3, 2", st.StoredWrites, st.Duplicates, st.Replays)
	}
}

func TestKeyRequired(t *testing.T) {
	tests := []struct {
		d       Dialect
		opts    []Option
		status  int
		code    string
		details bool
	}{
		{Aidelly, nil, 400, "PUBLIC_API_IDEMPOTENCY_REQUIRED", false},
		{Aidelly, []Option{WithRequireIdempotencyKey(false)}, 201, "", false},
		{Altyaa, nil, 201, "", false},
		{Altyaa, []Option{WithRequireIdempotencyKey(true)}, 400, "idempotency_key_required", true},
		{Postato, nil, 201, "", false},
		{Postato, []Option{WithRequireIdempotencyKey(true)}, 400, "IDEMPOTENCY_KEY_REQUIRED", true},
	}
	for _, tt := range tests {
		s := NewServer(tt.d, tt.opts...)
		r := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "")
		mustStatus(t, r, tt.status)
		st := s.Stats()
		if tt.status == 400 {
			e := parseError(t, tt.d, r)
			if e.code != tt.code || (len(e.details) > 0) != tt.details {
				t.Errorf("%v: code %q, details %s; want %q", tt.d, e.code, e.details, tt.code)
			}
			if st.KeyRequired != 1 || st.StoredWrites != 0 {
				t.Errorf("%v: KeyRequired, StoredWrites = %d, %d; want 1, 0", tt.d, st.KeyRequired, st.StoredWrites)
			}
			// Reads never need a key.
			mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		} else if st.KeyRequired != 0 || st.StoredWrites != 1 {
			t.Errorf("%v: KeyRequired, StoredWrites = %d, %d; want 0, 1", tt.d, st.KeyRequired, st.StoredWrites)
		}
		s.Close()
	}
}

// TestIgnoreIdempotencyKeys proves that a server ignoring keys stores every
// write anew: no replay, no conflict, no Idempotent-Replayed, and a resent
// body counts as a duplicate.
func TestIgnoreIdempotencyKeys(t *testing.T) {
	for _, d := range []Dialect{Aidelly, Altyaa, Postato} {
		t.Run(d.String(), func(t *testing.T) {
			s := NewServer(d, WithIgnoreIdempotencyKeys(true))
			defer s.Close()
			first := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
			mustStatus(t, first, 201)
			again := send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k")
			mustStatus(t, again, 201)
			if again.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("a server ignoring keys answered Idempotent-Replayed")
			}
			if again.header.Get("Location") == first.header.Get("Location") {
				t.Fatalf("the same key was replayed: Location %q twice", first.header.Get("Location"))
			}
			mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"b"}`, "k"), 201) // no conflict
			st := s.Stats()
			if st.StoredWrites != 3 || st.Duplicates != 1 || st.Replays != 0 || st.Conflicts != 0 {
				t.Fatalf("StoredWrites, Duplicates, Replays, Conflicts = %d, %d, %d, %d; want 3, 1, 0, 0",
					st.StoredWrites, st.Duplicates, st.Replays, st.Conflicts)
			}
		})
	}
}
