package resilienttest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// sendHeader makes one write to s with its key under header, and reads
// the whole answer.
func sendHeader(t *testing.T, s *Server, path, body, header, key string) result {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(header, key)
	resp, err := s.Client().Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// TestDialectKeysAsDocumented proves that each dialect honors the key
// header on the routes its vendor documents, and there only: Postato
// honors Idempotency-Key on POST /posts alone (its upload URL is
// processed anew under a repeated key), Aidelly and Postato read
// Idempotency-Key and not X-Idempotency-Key (an Aidelly write with only
// the latter is refused as keyless), Altyaa, which documents no key,
// reads either.
func TestDialectKeysAsDocumented(t *testing.T) {
	tests := []struct {
		name     string
		d        Dialect
		path     string
		header   string
		bodies   [2]string
		statuses [2]int
		code     string // of the second answer, if an error
		stats    counts
	}{
		{"Postato upload URL, key repeated", Postato, "/v1/media/upload-url", "Idempotency-Key",
			[2]string{`{"filename":"a.jpg"}`, `{"filename":"a.jpg"}`}, [2]int{200, 200}, "",
			counts{StoredWrites: 2, Duplicates: 1}},
		{"Postato upload URL, key reused for another body", Postato, "/v1/media/upload-url", "Idempotency-Key",
			[2]string{`{"filename":"a.jpg"}`, `{"filename":"b.jpg"}`}, [2]int{200, 200}, "",
			counts{StoredWrites: 2}},
		{"Postato post, key repeated", Postato, "/v1/posts", "Idempotency-Key",
			[2]string{`{"content":"a"}`, `{"content":"a"}`}, [2]int{201, 201}, "",
			counts{StoredWrites: 1, Replays: 1}},
		{"Postato post, X-Idempotency-Key repeated", Postato, "/v1/posts", "X-Idempotency-Key",
			[2]string{`{"content":"a"}`, `{"content":"a"}`}, [2]int{201, 201}, "",
			counts{StoredWrites: 2, Duplicates: 1}},
		{"Aidelly post, X-Idempotency-Key", Aidelly, "/v1/posts", "X-Idempotency-Key",
			[2]string{`{"content":"a"}`, `{"content":"a"}`}, [2]int{400, 400}, "PUBLIC_API_IDEMPOTENCY_REQUIRED",
			counts{KeyRequired: 2}},
		{"Aidelly upload URL, key repeated", Aidelly, "/v1/media/upload-url", "Idempotency-Key",
			[2]string{`{"filename":"a.jpg"}`, `{"filename":"a.jpg"}`}, [2]int{200, 200}, "",
			counts{StoredWrites: 1, Replays: 1}},
		{"Altyaa post, X-Idempotency-Key repeated", Altyaa, "/v1/posts", "X-Idempotency-Key",
			[2]string{`{"content":"a"}`, `{"content":"a"}`}, [2]int{201, 201}, "",
			counts{StoredWrites: 1, Replays: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(tt.d)
			defer s.Close()
			var last result
			for i, body := range tt.bodies {
				last = sendHeader(t, s, tt.path, body, tt.header, "k")
				mustStatus(t, last, tt.statuses[i])
			}
			if tt.code != "" {
				if e := parseError(t, tt.d, last); e.code != tt.code {
					t.Errorf("code %q, want %q", e.code, tt.code)
				}
			}
			st := s.Stats()
			got := counts{StoredWrites: st.StoredWrites, Duplicates: st.Duplicates, Replays: st.Replays, Conflicts: st.Conflicts, KeyRequired: st.KeyRequired}
			if got != tt.stats {
				t.Errorf("StoredWrites, Duplicates, Replays, Conflicts, KeyRequired = %d, %d, %d, %d, %d; want %d, %d, %d, %d, %d",
					got.StoredWrites, got.Duplicates, got.Replays, got.Conflicts, got.KeyRequired,
					tt.stats.StoredWrites, tt.stats.Duplicates, tt.stats.Replays, tt.stats.Conflicts, tt.stats.KeyRequired)
			}
			route := RouteCreatePost
			if tt.path == "/v1/media/upload-url" {
				route = RouteUploadURL
			}
			if byRoute := st.DuplicatesByRoute[route]; byRoute != st.Duplicates || len(st.DuplicatesByRoute) > 1 {
				t.Errorf("DuplicatesByRoute = %v; want the %d Duplicates under %q", st.DuplicatesByRoute, st.Duplicates, route)
			}
		})
	}
}

// counts are the store's counters of Stats.
type counts struct{ StoredWrites, Duplicates, Replays, Conflicts, KeyRequired int }

// replayMark is the Idempotent-Replayed header of a replay in dialect d:
// "true", but none in Postato, which documents that a repeated key
// returns the first response, and no header marking it.
func replayMark(d Dialect) string {
	if d == Postato {
		return ""
	}
	return "true"
}
