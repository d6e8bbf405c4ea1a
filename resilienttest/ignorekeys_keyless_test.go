package resilienttest

import "testing"

// TestIgnoreIdempotencyKeysKeyless proves that a server WithIgnoreIdempotencyKeys
// processes and stores every write, a keyless one included, in every
// dialect: an Aidelly that ignores keys does not refuse a write for lack of
// one (which would hide the duplicates a client sends it), unless the test
// asks for that with WithRequireIdempotencyKey(true).
func TestIgnoreIdempotencyKeysKeyless(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			s := NewServer(d, WithIgnoreIdempotencyKeys(true))
			defer s.Close()
			mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, ""), 201)
			mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, ""), 201)
			st := s.Stats()
			if st.KeyRequired != 0 || st.StoredWrites != 2 || st.Duplicates != 1 {
				t.Fatalf("KeyRequired, StoredWrites, Duplicates = %d, %d, %d; want 0, 2, 1", st.KeyRequired, st.StoredWrites, st.Duplicates)
			}
		})
	}
	t.Run("explicit", func(t *testing.T) {
		s := NewServer(Aidelly, WithIgnoreIdempotencyKeys(true), WithRequireIdempotencyKey(true))
		defer s.Close()
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, ""), 400)
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 201)
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 201) // keys still ignored
		if st := s.Stats(); st.KeyRequired != 1 || st.StoredWrites != 2 || st.Replays != 0 {
			t.Fatalf("KeyRequired, StoredWrites, Replays = %d, %d, %d; want 1, 2, 0", st.KeyRequired, st.StoredWrites, st.Replays)
		}
	})
}
