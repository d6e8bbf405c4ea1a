package examples

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-github/v84/github"
)

// TestGitHubWriteAtItsOwnHostNotResent: the recipe's client, at go-github's
// own base URL (https://api.github.com/, the host resilient sees; the
// requests reach the local fake), sends an issue that GitHub commits and
// then answers with a 502 once: one issue, one attempt. The other tests
// point go-github at the fake's address, where a recipe that named
// api.github.com among the hosts that deduplicate by key passed them, and
// resent the write to GitHub itself.
func TestGitHubWriteAtItsOwnHostNotResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var created atomic.Int64
		srv := newServer(t, githubFlaky(&created))
		gh := NewGitHubClient(toServer{host: strings.TrimPrefix(srv.URL, "http://"), base: srv.Base()}).WithAuthToken("ghp_test")
		if gh.BaseURL.Host != "api.github.com" {
			t.Fatalf("go-github's base URL %v, want api.github.com's", gh.BaseURL)
		}
		_, _, err := gh.Issues.Create(context.Background(), "octo", "repo", &github.IssueRequest{Title: github.Ptr("flaky build")})
		var ge *github.ErrorResponse
		if !errors.As(err, &ge) || ge.Response.StatusCode != http.StatusBadGateway {
			t.Errorf("Create: %v, want GitHub's 502", err)
		}
		if got := srv.Hits(""); got != 1 || created.Load() != 1 {
			t.Errorf("%d attempts, %d issues created; want 1, 1", got, created.Load())
		}
	})
}
