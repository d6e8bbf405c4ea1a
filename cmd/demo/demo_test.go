package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

func TestCompareSmallWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload against real loopback servers")
	}
	rep, err := Compare(context.Background(), Config{Calls: 200, Workers: 16, Profile: "mixed", Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ours.Succeeded <= rep.Plain.Succeeded {
		t.Errorf("resilient succeeded %d times, plain %d: want more", rep.Ours.Succeeded, rep.Plain.Succeeded)
	}
	if rep.Naive.Succeeded <= rep.Plain.Succeeded {
		t.Errorf("the naive client succeeded %d times, plain %d: want more (it retries)", rep.Naive.Succeeded, rep.Plain.Succeeded)
	}
	if rep.Plain.Failed == 0 {
		t.Error("the plain client saw no failure: the fault profile injected nothing")
	}
	for i, r := range []Run{rep.Plain, rep.Naive, rep.Ours} {
		if r.Client != []string{plainName, naiveName, oursName}[i] {
			t.Errorf("run %d is %q", i, r.Client)
		}
		if r.Succeeded+r.Failed != 200 || r.ServerAttempts < 200*r.Succeeded/200 || r.P99 < r.P50 {
			t.Errorf("inconsistent run %+v", r)
		}
	}
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	for _, want := range []string{plainName, naiveName, oursName, "calls succeeded", "duplicate posts created", "429s received",
		"server attempts per call", "latency p99", "breaker trips"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	dup := fmt.Sprintf("duplicate posts created %d %d %d", rep.Plain.DuplicatePosts, rep.Naive.DuplicatePosts, rep.Ours.DuplicatePosts)
	if !strings.Contains(strings.Join(strings.Fields(buf.String()), " "), dup) {
		t.Errorf("table lacks the row %q:\n%s", dup, buf.String())
	}
}

// TestNaiveRetryDuplicates proves what the naive column stands for: a
// write that a server ignoring keys stored before failing is resent, and
// stored twice; against a server deduping by key, the same resend is a
// replay.
func TestNaiveRetryDuplicates(t *testing.T) {
	for _, tt := range []struct {
		opts       []resilienttest.Option
		duplicates int
		replays    int
	}{
		{[]resilienttest.Option{resilienttest.WithIgnoreIdempotencyKeys(true)}, 2, 0},
		{nil, 0, 2},
	} {
		srv := resilienttest.NewServer(resilienttest.Altyaa, append(tt.opts, resilienttest.WithScript(resilienttest.RouteCreatePost,
			resilienttest.FailAfterStoring(), resilienttest.DropAfter(), resilienttest.Respond(503)))...)
		naive := newNaiveRetry(srv.Transport())
		naive.baseDelay = time.Millisecond
		client := &http.Client{Transport: naive}
		req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", strings.NewReader(`{"content":"once"}`))
		req.Header.Set("Idempotency-Key", "k")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		st := srv.Stats()
		srv.Close()
		if resp.StatusCode != 201 || st.Requests != 4 || st.Duplicates != tt.duplicates || st.Replays != tt.replays {
			t.Errorf("status %d, Requests %d, Duplicates %d, Replays %d; want 201, 4, %d, %d",
				resp.StatusCode, st.Requests, st.Duplicates, st.Replays, tt.duplicates, tt.replays)
		}
	}
}

// TestNaiveOutageWaitsFit proves that the naive client's backoff keeps the
// outage profile, run with the default -calls and -workers, well within
// the demo's 30 s: there every call of the naive client waits out its
// whole schedule, and each worker makes its share of the calls one after
// the other.
func TestNaiveOutageWaitsFit(t *testing.T) {
	const calls, workers = 2000, 32 // the defaults of -calls and -workers
	synctest.Test(t, func(t *testing.T) {
		naive := newNaiveRetry(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusInternalServerError, Body: http.NoBody, Request: req}, nil
		}))
		start := time.Now()
		for range (calls + workers - 1) / workers {
			req, _ := http.NewRequest(http.MethodGet, "http://api.example.test/v1/posts", nil)
			resp, err := naive.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		// 10 s of the 30 s are left for the servers' own time and the
		// two other runs.
		if got, limit := time.Since(start), 20*time.Second; got > limit {
			t.Errorf("a worker of the naive client waits %v in the default outage run, want at most %v", got, limit)
		}
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestNaiveRetryGivesUp proves the naive policy's bounds: 5 retries, then
// the last response; a 4xx is not retried; a body without GetBody is not
// resent.
func TestNaiveRetryGivesUp(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Postato, resilienttest.WithFaults(resilienttest.Faults{Seed: 1, ServerError: 1}))
	defer srv.Close()
	naive := newNaiveRetry(srv.Transport())
	naive.baseDelay = time.Millisecond
	client := &http.Client{Transport: naive}
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 || srv.Stats().Requests != 6 {
		t.Errorf("status %d after %d attempts; want a 5xx after 6", resp.StatusCode, srv.Stats().Requests)
	}
	srv.Reset()
	resp, err = client.Get(srv.URL + "/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || srv.Stats().Requests != 1 {
		t.Errorf("status %d after %d attempts; want a 404 after 1", resp.StatusCode, srv.Stats().Requests)
	}
	srv.Reset()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", io.MultiReader(strings.NewReader(`{}`))) // no GetBody
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := srv.Stats().Requests; n != 1 {
		t.Errorf("a body without GetBody was sent %d times, want 1", n)
	}
}

func TestRunJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload against real loopback servers")
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-calls", "60", "-workers", "8", "-profile", "outage", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, out.String())
	}
	if rep.Profile != "outage" || rep.Calls != 60 || rep.Plain.Succeeded != 0 || rep.Naive.Succeeded != 0 || rep.Ours.Succeeded != 0 {
		t.Errorf("unexpected report %+v", rep)
	}
	if rep.Naive.Client != naiveName || rep.Naive.AttemptsPerCall != 6 {
		t.Errorf("naive run %+v, want 6 attempts per call in an outage", rep.Naive)
	}
	if rep.Ours.BreakerTrips == 0 {
		t.Error("the breaker never tripped during an outage")
	}
	if rep.Ours.AttemptsPerCall >= rep.Plain.AttemptsPerCall*6 {
		t.Errorf("resilient made %.2f attempts per call in an outage", rep.Ours.AttemptsPerCall)
	}
}

// TestHeaderFirst proves that the header (profile, workload, seed,
// columns) is printed before any run, and that an interrupted run's error
// gets a line of its own after an unfinished progress bar.
func TestHeaderFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // interrupted before the first call
	var out, errOut bytes.Buffer
	code := runWith(ctx, []string{"-calls", "50", "-workers", "4", "-profile", "altyaa", "-seed", "9"}, &out, &errOut, true)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"profile altyaa: 50 calls from 4 workers, seed 9", "ignores idempotency keys", plainName, naiveName, oursName} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("header lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "calls succeeded") {
		t.Errorf("an interrupted run printed a table:\n%s", out.String())
	}
	lines := strings.Split(errOut.String(), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "[") || lines[len(lines)-2] != "demo: interrupted: context canceled" {
		t.Errorf("stderr %q: want the bar, then the error on a line of its own", errOut.String())
	}
}

// TestHeaderSaysHedging: with -hedge, the header says that the resilient
// column hedges, which its description ("this library with its defaults")
// does not.
func TestHeaderSaysHedging(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the header only
	for _, hedge := range []bool{false, true} {
		args := []string{"-calls", "10"}
		if hedge {
			args = append(args, "-hedge")
		}
		var out, errOut bytes.Buffer
		runWith(ctx, args, &out, &errOut, false)
		if got := strings.Contains(out.String(), "WithHedging"); got != hedge {
			t.Errorf("-hedge %v: header mentions WithHedging = %v, want %v:\n%s", hedge, got, hedge, out.String())
		}
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	help := errOut.String()
	for _, name := range profileNames() {
		if !strings.Contains(help, "\n  "+name+" ") {
			t.Errorf("-h does not describe profile %q:\n%s", name, help)
		}
	}
	for _, want := range []string{"Shows which client turns a write", "Shows the breaker", "Shows pacing", naiveName, "-calls"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h lacks %q:\n%s", want, help)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-calls", "0"},
		{"-workers", "-1"},
		{"-profile", "nope"},
		{"-calls", "9223372036854775807"},
		{"-calls", "many"},
		{"-unknown"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if errOut.Len() == 0 {
			t.Errorf("%v: no message on stderr", args)
		}
	}
}

func TestWorkloadDeterministic(t *testing.T) {
	cfg := Config{Calls: 500, Workers: 1, Profile: "mixed", Seed: 3}
	a, b := workload(cfg), workload(cfg)
	writes := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d differs between two workloads of the same seed", i)
		}
		if a[i].body != "" {
			writes++
		}
	}
	if writes < 150 || writes > 350 {
		t.Errorf("%d writes in 500 calls, want a mix", writes)
	}
}

// TestKeyIgnoringServers proves which servers of a profile ignore keys:
// Altyaa's, in every profile it is in, and no other.
func TestKeyIgnoringServers(t *testing.T) {
	for _, name := range profileNames() {
		p := profiles[name]
		for _, d := range p.dialects {
			srv := resilienttest.NewServer(d, append(p.serverOptions(d, 1), resilienttest.WithScript(resilienttest.RouteCreatePost,
				resilienttest.Normal(), resilienttest.Normal()))...)
			for range 2 {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/posts", strings.NewReader(`{"content":"x"}`))
				req.Header.Set("Idempotency-Key", "same")
				if resp, err := srv.Client().Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			st := srv.Stats()
			srv.Close()
			if ignores := st.Duplicates > 0; ignores != (d == resilienttest.Altyaa) {
				t.Errorf("%s/%s: Duplicates %d, Replays %d", name, d, st.Duplicates, st.Replays)
			}
		}
	}
}

// TestPostatoOwnKeyOnPosts: resilient's column sets its own key on
// Postato's POST /posts, the one write Postato dedupes by key, and does
// not name its host: none of its posts is returned unresent (nothing in
// Postato's answers proves that it dedupes them: without the key, about
// 7% of a Postato-only run is), no write is stored twice (its upload URLs,
// which Postato processes anew under a repeated key, are not resent after
// an ambiguous failure), and it fails fewer calls than the plain client.
func TestPostatoOwnKeyOnPosts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload against real loopback servers")
	}
	rep, err := Compare(context.Background(), Config{Calls: 300, Workers: 16, Profile: "postato", Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Plain.Failed == 0 {
		t.Fatal("the plain client saw no failure: the fault profile injected nothing")
	}
	if rep.Ours.DuplicatePosts != 0 || rep.Ours.Failed >= rep.Plain.Failed {
		t.Errorf("resilient against Postato: %d duplicates, %d failed (plain %d); want none, fewer", rep.Ours.DuplicatePosts, rep.Ours.Failed, rep.Plain.Failed)
	}
	if rep.Ours.UnsafeWrites == 0 {
		t.Error("no upload URL returned unresent: the run injected no ambiguous failure of one, or resent it")
	}
}

// TestPostatoOwnKeyOnlyOnPosts proves which writes of resilient's column
// carry a key of the caller's own: Postato's POST /posts, and no other.
func TestPostatoOwnKeyOnlyOnPosts(t *testing.T) {
	for _, d := range []resilienttest.Dialect{resilienttest.Aidelly, resilienttest.Altyaa, resilienttest.Postato} {
		for _, kind := range []string{"create post", "upload url"} {
			want := d == resilienttest.Postato && kind == "create post"
			if got := setsKey(oursName, d, op{kind: kind}); got != want {
				t.Errorf("setsKey(ours, %s, %s) = %v, want %v", d, kind, got, want)
			}
			if !setsKey(plainName, d, op{kind: kind}) || !setsKey(naiveName, d, op{kind: kind}) {
				t.Errorf("the plain or naive client sets no key on %s %s", d, kind)
			}
		}
	}
}

// TestOutageProfileAsDescribed proves that the outage profile's server
// answers what -h and the header say it does, on every route.
func TestOutageProfileAsDescribed(t *testing.T) {
	p := profiles["outage"]
	srv := resilienttest.NewServer(p.dialects[0], p.serverOptions(p.dialects[0], 1)...)
	defer srv.Close()
	for _, path := range []string{"/v1/posts", "/v1/usage"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("every request with a %d", resp.StatusCode); !strings.Contains(p.about, want) {
			t.Errorf("GET %s: %d; the profile says %q", path, resp.StatusCode, p.about)
		}
	}
}

// TestDuplicatePostsCountsPosts: the "duplicate posts created" row counts
// posts only: a workload of upload URLs alone, resent blindly by the naive
// client to a server that ignores keys, creates repeated upload URLs and no
// post.
func TestDuplicatePostsCountsPosts(t *testing.T) {
	cfg := Config{Calls: 400, Workers: 16, Profile: "altyaa", Seed: 1}
	ops := make([]op, cfg.Calls)
	for i := range ops {
		ops[i] = op{kind: "upload url", path: "/v1/media/upload-url",
			body: fmt.Sprintf(`{"filename":"photo-%d.jpg","size":204800}`, i)}
	}
	run, err := runOnce(context.Background(), cfg, ops, naiveName, nil,
		func(base http.RoundTripper, _ *counters) http.RoundTripper { return newNaiveRetry(base) })
	if err != nil {
		t.Fatal(err)
	}
	if run.DuplicatePosts != 0 {
		t.Errorf("duplicate posts created = %d for a workload of %d upload URLs and no post", run.DuplicatePosts, len(ops))
	}
}
