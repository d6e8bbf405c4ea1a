package examples

import (
	"context"
	"errors"
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
func githubOn(t *testing.T, gh *github.Client, srv *pipeServer) *github.Client {
	t.Helper()
	u, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	gh = gh.WithAuthToken("ghp_test")
	gh.BaseURL = u
	return gh
}

// TestGitHub measures the attempts (and the issues created) of a failing
// GET and a failing POST with go-github over resilient.New (before) and
// with NewGitHubClient (after).
func TestGitHub(t *testing.T) {
	for _, tc := range []struct {
		name          string
		row           string
		post          bool
		before, after int
	}{
		// go-github does not retry: resilient's 6 attempts either way.
		{"GetIssue", "GET an issue, 502", false, 6, 6},
		// A keyed POST is resent by default; GitHub ignores the key, so
		// each attempt creates an issue.
		{"CreateIssue", "POST an issue, committed then 502", true, 6, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(gh func(base http.RoundTripper) *github.Client) (attempts, issues int) {
				synctest.Test(t, func(t *testing.T) {
					var created atomic.Int64
					srv := newPipeServer(t, "github.test", githubFlaky(&created))
					c := githubOn(t, gh(srv.Transport()), srv)
					var err error
					if tc.post {
						_, _, err = c.Issues.Create(context.Background(), "octo", "repo", &github.IssueRequest{Title: github.Ptr("flaky build")})
					} else {
						_, _, err = c.Issues.Get(context.Background(), "octo", "repo", 1)
					}
					var ge *github.ErrorResponse
					if !errors.As(err, &ge) || ge.Response.StatusCode != http.StatusBadGateway {
						t.Fatalf("error %v, want GitHub's 502", err)
					}
					attempts, issues = srv.Hits(""), int(created.Load())
				})
				return attempts, issues
			}
			before, beforeIssues := measure(func(base http.RoundTripper) *github.Client {
				return github.NewClient(&http.Client{Transport: resilient.New(base)})
			})
			after, afterIssues := measure(func(base http.RoundTripper) *github.Client { return NewGitHubClient(base) })
			if before != tc.before || after != tc.after {
				t.Errorf("server attempts per call: defaults %d, recipe %d; want %d, %d", before, after, tc.before, tc.after)
			}
			if tc.post && (beforeIssues != tc.before || afterIssues != 1) {
				t.Errorf("issues created: defaults %d, recipe %d; want %d, 1", beforeIssues, afterIssues, tc.before)
			}
			checkDocRow(t, "go-github", tc.row, before, after)
		})
	}
}

// TestGitHubRecovers shows the recipe retrying a read: two 502s, then the
// issue, in 3 attempts.
func TestGitHubRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		srv := newPipeServer(t, "github.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n++
			if n <= 2 {
				githubServerError(w, http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte(`{"number":1,"title":"flaky build"}`))
		}))
		gh := githubOn(t, NewGitHubClient(srv.Transport()), srv)
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
