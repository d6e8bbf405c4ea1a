package resilienttest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// A scripted route: the first two attempts to create a post fail with
// Aidelly's 503 envelope, the third succeeds. A plain client sees each of
// them.
func ExampleNewServer() {
	srv := resilienttest.NewServer(resilienttest.Aidelly,
		resilienttest.WithScript(resilienttest.RouteCreatePost,
			resilienttest.Respond(503), resilienttest.Respond(503), resilienttest.Respond(201)))
	defer srv.Close()

	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
		req.Header.Set("Idempotency-Key", "post-1") // Aidelly requires one on writes
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		var env struct {
			Data  struct{ ID string }
			Error struct{ Code string }
		}
		json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, env.Error.Code+env.Data.ID)
	}
	st := srv.Stats()
	fmt.Println("attempts:", st.Attempts[resilienttest.RouteCreatePost], "stored:", st.StoredWrites)
	// Output:
	// 503 PUBLIC_API_POST_CREATE_FAILED
	// 503 PUBLIC_API_POST_CREATE_FAILED
	// 201 post_1
	// attempts: 3 stored: 1
}

// A resilient client survives 30% of faulty attempts (5xx, 429, and
// connections dropped before and after the post was stored) without
// creating a single duplicate: the idempotency keys, which this API
// honors, turn the retries of lost answers into replays.
func ExampleWithFaults() {
	srv := resilienttest.NewServer(resilienttest.Postato, resilienttest.WithFaults(resilienttest.Faults{
		Seed:        1,
		ServerError: 0.10,
		RateLimit:   0.05, // Retry-After: 0
		DropBefore:  0.05,
		DropAfter:   0.10,
	}))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithBackoff(time.Millisecond, 10*time.Millisecond))}

	created := 0
	for i := range 50 {
		body := fmt.Sprintf(`{"content":"post %d"}`, i) // distinct posts
		req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("post-%d", i)) // the API dedupes by it
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			created++
		}
	}
	st := srv.Stats()
	fmt.Printf("created %d of 50; server stored %d, duplicates %d\n", created, st.StoredWrites, st.Duplicates)
	fmt.Printf("%d attempts: %d faults, %d replays of lost answers\n", st.Attempts[resilienttest.RouteCreatePost], st.Injected, st.Replays)
	// Output:
	// created 50 of 50; server stored 50, duplicates 0
	// 80 attempts: 30 faults, 11 replays of lost answers
}

// A quota of 3 requests a minute: every answer says what is left, and the
// fourth request is refused with 429 and Retry-After.
func ExampleWithQuota() {
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithQuota(resilienttest.Quota{
		Limit:       3,
		Window:      time.Minute,
		ResetFormat: resilienttest.DeltaSeconds,
	}))
	defer srv.Close()

	for range 4 {
		resp, err := srv.Client().Get(srv.URL + "/v1/usage")
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " limit ", resp.Header.Get("X-RateLimit-Limit"),
			" remaining ", resp.Header.Get("X-RateLimit-Remaining"))
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			secs, _ := strconv.Atoi(ra)
			fmt.Print(" retry after ", (time.Duration(secs) * time.Second).Round(time.Minute))
		}
		fmt.Println()
	}
	fmt.Println("429s sent:", srv.Stats().RateLimited)
	// Output:
	// 200 limit 3 remaining 2
	// 200 limit 3 remaining 1
	// 200 limit 3 remaining 0
	// 429 limit 3 remaining 0 retry after 1m0s
	// 429s sent: 1
}

// A pipe server is reached only through its own Transport, over in-memory
// connections: inside a testing/synctest bubble, its waits run in fake
// time.
func ExampleNewPipeServer() {
	srv := resilienttest.NewPipeServer(resilienttest.Postato)
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/v1/posts/pst_404")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(srv.URL, resp.StatusCode, string(body))
	// Output:
	// http://postato.test 404 {"error":"not_found","message":"Resource doesn't exist"}
}

// Faults in front of an API of your own: the first two attempts to create
// a charge are answered in front of the handler (a 503, then a proxy's
// 502 page), the third reaches it. A resilient client, sending the key
// the API deduplicates by, gets the charge; the handler ran once.
func ExampleWithHandler() {
	var charges atomic.Int32
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := charges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"ch_%d"}`, n)
	})
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithHandler(api),
		resilienttest.WithScript("POST /v1/charges", resilienttest.Respond(503), resilienttest.HTML(502)))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithBackoff(time.Millisecond, 10*time.Millisecond))}

	req, _ := http.NewRequest("POST", srv.URL+"/v1/charges", strings.NewReader(`{"amount":4200}`))
	req.Header.Set("Idempotency-Key", "charge-42")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st := srv.Stats()
	fmt.Println(resp.StatusCode, string(body))
	fmt.Println("attempts:", st.Attempts["POST /v1/charges"], "injected:", st.Injected, "handler calls:", charges.Load())
	// Output:
	// 201 {"id":"ch_1"}
	// attempts: 3 injected: 2 handler calls: 1
}

// A server over TLS speaks HTTP/2: its Transport trusts its certificate
// and negotiates h2, under a resilient client as under a plain one.
func ExampleWithTLS() {
	srv := resilienttest.NewServer(resilienttest.Aidelly, resilienttest.WithTLS(),
		resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Respond(503)))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithBackoff(time.Millisecond, 10*time.Millisecond))}

	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	st := srv.Stats()
	fmt.Println(strings.HasPrefix(srv.URL, "https://"), resp.Proto, resp.StatusCode)
	fmt.Println("attempts:", st.Requests, "connections:", st.Connections)
	// Output:
	// true HTTP/2.0 200
	// attempts: 2 connections: 1
}
