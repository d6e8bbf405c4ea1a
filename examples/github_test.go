package examples

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-github/v84/github"
	"github.com/resilienthttp/resilient"
)

// githubServerError writes GitHub's 5xx body.
func githubServerError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Github-Request-Id", "C0DE:1234:5678")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"message":"Server Error"}`))
}

// githubFlaky is a GitHub API whose every answer fails: a GET gets a 502;
// a POST that creates an issue is committed (created counts it) and then
// answered with a 502, as when GitHub's front end times out after the
// write.
func githubFlaky(created *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			created.Add(1)
		}
		githubServerError(w, http.StatusBadGateway)
	}
}

// githubOn points gh at srv.
func githubOn(t *testing.T, gh *github.Client, srv *server) *github.Client {
	t.Helper()
	u, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	gh = gh.WithAuthToken("ghp_test")
	gh.BaseURL = u
	return gh
}

// githubSeries makes a series of calls with the go-github client gh makes
// against a GitHub API that fails every call, creating an issue (post) or
// reading one, and returns the server attempts and the issues created.
// With callerKey, each creation carries an Idempotency-Key of the caller's.
func githubSeries(t *testing.T, gh func(base http.RoundTripper) *github.Client, post, callerKey bool) (m measurement, issues int) {
	synctest.Test(t, func(t *testing.T) {
		var created atomic.Int64
		srv := newServer(t, githubFlaky(&created))
		c := githubOn(t, gh(srv.Base()), srv)
		m = series(seriesCalls, func() int { return srv.Hits("") }, func(i int) {
			ctx := context.Background()
			var err error
			if post {
				if callerKey {
					ctx = resilient.WithIdempotencyKey(ctx, fmt.Sprintf("issue-%d", i))
				}
				_, _, err = c.Issues.Create(ctx, "octo", "repo", &github.IssueRequest{Title: github.Ptr(fmt.Sprintf("flaky build %d", i))})
			} else {
				_, _, err = c.Issues.Get(ctx, "octo", "repo", 1)
			}
			var ge *github.ErrorResponse
			if !errors.As(err, &ge) || ge.Response.StatusCode != http.StatusBadGateway {
				t.Fatalf("error %v, want GitHub's 502", err)
			}
		})
		issues = int(created.Load())
	})
	return m, issues
}

// TestGitHub measures the attempts (and the issues created) of failing
// GETs and POSTs with go-github over resilient.New (before) and with
// NewGitHubClient (after).
func TestGitHub(t *testing.T) {
	defaults := func(base http.RoundTripper) *github.Client {
		return github.NewClient(&http.Client{Transport: resilient.New(base)})
	}
	recipe := func(base http.RoundTripper) *github.Client { return NewGitHubClient(base) }
	t.Run("GetIssue", func(t *testing.T) {
		// go-github does not retry: resilient's 6 attempts, then its
		// budget's one per call.
		before, _ := githubSeries(t, defaults, false, false)
		after, _ := githubSeries(t, recipe, false, false)
		want := measurement{6, 110, seriesCalls}
		if before != want || after != want {
			t.Errorf("server attempts: defaults %+v, recipe %+v; want %+v for both", before, after, want)
		}
		checkDocRow(t, "go-github", "GET an issue, 502", before, after)
	})
	t.Run("CreateIssue", func(t *testing.T) {
		// The write rule: GitHub is not known to deduplicate by key, so a
		// POST answered with a 502 is not resent, and each call creates
		// one issue.
		before, beforeIssues := githubSeries(t, defaults, true, false)
		after, afterIssues := githubSeries(t, recipe, true, false)
		want := measurement{1, 100, seriesCalls}
		if before != want || after != want {
			t.Errorf("server attempts: defaults %+v, recipe %+v; want %+v for both", before, after, want)
		}
		if beforeIssues != seriesCalls || afterIssues != seriesCalls {
			t.Errorf("issues created: defaults %d, recipe %d; want %d (one per call)", beforeIssues, afterIssues, seriesCalls)
		}
		// A key of the caller's says GitHub honors it: the POST is resent,
		// and GitHub, which ignores the key, creates an issue each time.
		keyed, keyedIssues := githubSeries(t, recipe, true, true)
		if keyed != (measurement{6, 110, seriesCalls}) || keyedIssues != 110 {
			t.Errorf("with a caller's key: %+v server attempts, %d issues; want {6 110 %d} and 110", keyed, keyedIssues, seriesCalls)
		}
		checkDocRow(t, "go-github", "POST an issue, committed then 502", before, after)
	})
}

// TestGitHubRecovers shows the recipe retrying a read: two 502s, then the
// issue, in 3 attempts.
func TestGitHubRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n++
			if n <= 2 {
				githubServerError(w, http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte(`{"number":1,"title":"flaky build"}`))
		}))
		gh := githubOn(t, NewGitHubClient(srv.Base()), srv)
		issue, _, err := gh.Issues.Get(context.Background(), "octo", "repo", 1)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if issue.GetTitle() != "flaky build" {
			t.Errorf("title %q, want %q", issue.GetTitle(), "flaky build")
		}
		if got := srv.Hits(""); got != 3 {
			t.Errorf("%d server attempts, want 3", got)
		}
	})
}

// TestGitHubAppliesOptions: the options passed to NewGitHubClient configure
// its Transport: with resilient.WithMaxRetries(1), a GET that fails with a
// 502 is sent twice, not resilient's default 6 times.
func TestGitHubAppliesOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, githubFlaky(new(atomic.Int64)))
		gh := githubOn(t, NewGitHubClient(srv.Base(), resilient.WithMaxRetries(1)), srv)
		if _, _, err := gh.Issues.Get(context.Background(), "octo", "repo", 1); err == nil {
			t.Fatal("Get succeeded against a failing server")
		}
		if got := srv.Hits(""); got != 2 {
			t.Errorf("%d server attempts with WithMaxRetries(1), want 2", got)
		}
	})
}
