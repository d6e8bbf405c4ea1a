package resilienttest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
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
			if again.header.Get("Idempotent-Replayed") != replayMark(tt.d) || first.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("Idempotent-Replayed %q on the replay, %q on the first; want %q, none", again.header.Get("Idempotent-Replayed"), first.header.Get("Idempotent-Replayed"), replayMark(tt.d))
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
	for range 2 {                                                       // X-Idempotency-Key is not Postato's key: duplicate
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
	if st.StoredWrites != 8 || st.Duplicates != 4 || st.Replays != 1 {
		t.Fatalf("StoredWrites, Duplicates, Replays = %d, %d, %d; want 8, 4, 1", st.StoredWrites, st.Duplicates, st.Replays)
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

// TestKeyInFlight proves the IETF Idempotency-Key draft's rule: a write
// whose key is still being processed (here during a Slow step) gets a 409
// with the dialect's conflict envelope, neither a replay nor a second
// write; once the first is answered, the key replays.
func TestKeyInFlight(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(d, WithScript(RouteCreatePost, Slow(10*time.Second)))
				defer s.Close()
				const body = `{"content":"a"}`
				start := time.Now()
				firstc := make(chan result)
				go func() { firstc <- send(t, s, "POST", "/v1/posts", body, "k") }()
				synctest.Wait() // the first is in its Slow step, holding the key
				time.Sleep(time.Second)

				second := send(t, s, "POST", "/v1/posts", body, "k")
				mustStatus(t, second, http.StatusConflict)
				e := parseError(t, d, second)
				if e.code != d.ErrorCode(RouteCreatePost, http.StatusConflict) || !strings.Contains(e.message, "still being processed") {
					t.Errorf("in-flight conflict: code %q, message %q", e.code, e.message)
				}
				if second.header.Get("Idempotent-Replayed") != "" {
					t.Error("the 409 is marked Idempotent-Replayed")
				}
				if got := time.Since(start); got != time.Second {
					t.Errorf("the 409 came at %v, want at once (1s)", got)
				}
				// Another key is not held up.
				mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"b"}`, "other"), 201)

				first := <-firstc
				mustStatus(t, first, 201)
				if got := time.Since(start); got != 10*time.Second {
					t.Errorf("the first answered at %v, want 10s", got)
				}
				third := send(t, s, "POST", "/v1/posts", body, "k")
				mustStatus(t, third, 201)
				if third.header.Get("Idempotent-Replayed") != replayMark(d) || third.header.Get("Location") != first.header.Get("Location") {
					t.Errorf("after the first: %d %s, want its replay", third.status, third.body)
				}
				st := s.Stats()
				if st.StoredWrites != 2 || st.InFlightConflicts != 1 || st.Replays != 1 || st.Conflicts != 0 || st.Duplicates != 0 {
					t.Errorf("StoredWrites, InFlightConflicts, Replays, Conflicts, Duplicates = %d, %d, %d, %d, %d; want 2, 1, 1, 0, 0",
						st.StoredWrites, st.InFlightConflicts, st.Replays, st.Conflicts, st.Duplicates)
				}
			})
		})
	}
}

// TestKeyInFlightReleased proves that a key is held only while its write is
// processed: a client that leaves during a Slow step frees it (the server
// stops and stores nothing), an answer injected in front of the API never
// holds it, and a server ignoring keys never refuses one.
func TestKeyInFlightReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Postato, WithScript(RouteCreatePost, Slow(time.Minute)))
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/posts", strings.NewReader(`{"content":"a"}`))
		req.Header.Set("Idempotency-Key", "k")
		if resp, err := s.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("status %d, want the client's timeout", resp.StatusCode)
		}
		synctest.Wait()
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 201)
		if st := s.Stats(); st.StoredWrites != 1 || st.InFlightConflicts != 0 || st.Dropped != 0 {
			t.Errorf("StoredWrites, InFlightConflicts, Dropped = %d, %d, %d; want 1, 0, 0", st.StoredWrites, st.InFlightConflicts, st.Dropped)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// An injected 503 that takes a second (WithLatency) holds nothing.
		s := NewPipeServer(Aidelly, WithLatency(time.Second), WithScript(RouteCreatePost, Respond(503)))
		defer s.Close()
		firstc := make(chan result)
		go func() { firstc <- send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k") }()
		synctest.Wait()
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 201)
		mustStatus(t, <-firstc, 503)
	})
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Altyaa, WithIgnoreIdempotencyKeys(true), WithScript(RouteCreatePost, Slow(10*time.Second)))
		defer s.Close()
		firstc := make(chan result)
		go func() { firstc <- send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k") }()
		synctest.Wait()
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"content":"a"}`, "k"), 201)
		mustStatus(t, <-firstc, 201)
		if st := s.Stats(); st.StoredWrites != 2 || st.Duplicates != 1 || st.InFlightConflicts != 0 {
			t.Errorf("StoredWrites, Duplicates, InFlightConflicts = %d, %d, %d; want 2, 1, 0", st.StoredWrites, st.Duplicates, st.InFlightConflicts)
		}
	})
}

// TestKeyStoredWhileRetryInFlight: a write stored under a key, then two
// retries with it, the first slow (a Slow step): the second is the stored
// write's replay, not a 409 "still being processed", which the IETF draft
// answers only while the original request is processed.
func TestKeyStoredWhileRetryInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Aidelly, WithScript(RouteCreatePost, Normal(), Slow(10*time.Second)))
		defer s.Close()
		post := func() (int, string, string) {
			req, _ := http.NewRequest("POST", s.URL+"/v1/posts", strings.NewReader(`{"content":"once"}`))
			req.Header.Set("Idempotency-Key", "k")
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Error(err)
				return 0, "", ""
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), string(b)
		}
		if st, _, body := post(); st != http.StatusCreated {
			t.Fatalf("first write: %d %s", st, body)
		}
		done := make(chan struct{})
		go func() { defer close(done); post() }() // the first retry, slow
		time.Sleep(time.Second)
		st, replayed, body := post()
		<-done
		if st != http.StatusCreated || replayed != "true" {
			t.Errorf("retry of a stored write: %d (Idempotent-Replayed %q) %s; want the stored 201 replayed", st, replayed, body)
		}
		if got := s.Stats(); got.StoredWrites != 1 || got.Replays != 2 || got.InFlightConflicts != 0 {
			t.Errorf("StoredWrites, Replays, InFlightConflicts = %d, %d, %d; want 1, 2, 0", got.StoredWrites, got.Replays, got.InFlightConflicts)
		}
	})
}

// TestReplayIsJSON proves that a replay carries the stored answer's
// Content-Type, application/json.
func TestReplayIsJSON(t *testing.T) {
	for _, d := range dialects {
		s := NewServer(d)
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k"), 201)
		r := send(t, s, "POST", "/v1/posts", `{"n":1}`, "k")
		s.Close()
		mustStatus(t, r, 201)
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%v: replay Content-Type = %q, want application/json", d, ct)
		}
	}
}
