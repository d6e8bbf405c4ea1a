package examples

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-github/v84/github"
)

// githubRateLimited is a GitHub API that refuses its first refused
// requests with limited (a 403 or 429 of a rate limit, its headers set by
// limited), then creates the issue (created counts it) or answers a GET.
func githubRateLimited(refused int, created *atomic.Int64, limited func(w http.ResponseWriter)) http.HandlerFunc {
	var n int
	return func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-Ratelimit-Resource", "core")
		w.Header().Set("X-Ratelimit-Limit", "5000")
		if n <= refused {
			limited(w)
			return
		}
		w.Header().Set("X-Ratelimit-Remaining", "4000")
		w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		if r.Method == http.MethodPost {
			created.Add(1)
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = w.Write([]byte(`{"number":1,"title":"flaky build"}`))
	}
}

// githubSecondary writes GitHub's secondary rate limit: status, with a
// Retry-After of retryAfter seconds, the primary quota far from spent.
func githubSecondary(status, retryAfter int) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("X-Ratelimit-Remaining", "4990")
		w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`))
	}
}

// githubPrimary writes GitHub's primary rate limit: a 403, the core quota
// spent until reset from now.
func githubPrimary(reset time.Duration) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("X-Ratelimit-Remaining", "0")
		w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(reset).Unix(), 10))
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"}`))
	}
}

// TestGitHubSecondaryRateLimitRetried: a POST refused by GitHub's
// secondary rate limit (a 403 or a 429 with Retry-After: 30) was not
// processed, and the recipe resends it after the 30 s: one issue, two
// attempts, and the call succeeds.
func TestGitHubSecondaryRateLimitRetried(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var created atomic.Int64
				srv := newServer(t, githubRateLimited(1, &created, githubSecondary(status, 30)))
				gh := githubOn(t, NewGitHubClient(srv.Base()), srv)
				start := time.Now()
				_, _, err := gh.Issues.Create(context.Background(), "octo", "repo", &github.IssueRequest{Title: github.Ptr("flaky build")})
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if got, waited := srv.Hits(""), time.Since(start); got != 2 || created.Load() != 1 || waited < 30*time.Second {
					t.Errorf("%d attempts, %d issues, after %v; want 2, 1, after 30s", got, created.Load(), waited)
				}
			})
		})
	}
}

// TestGitHubSecondaryRateLimitTooLong: a secondary rate limit that asks for
// longer than WithMaxRetryAfter (60 s) comes back after one attempt as
// go-github's *github.AbuseRateLimitError with its wait, and go-github
// refuses the next call, unsent, until the wait is over.
func TestGitHubSecondaryRateLimitTooLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var created atomic.Int64
		srv := newServer(t, githubRateLimited(1, &created, githubSecondary(http.StatusForbidden, 120)))
		gh := githubOn(t, NewGitHubClient(srv.Base()), srv)
		_, _, err := gh.Issues.Create(context.Background(), "octo", "repo", &github.IssueRequest{Title: github.Ptr("flaky build")})
		var abuse *github.AbuseRateLimitError
		if !errors.As(err, &abuse) || abuse.GetRetryAfter() != 120*time.Second {
			t.Fatalf("Create: %v, want a *github.AbuseRateLimitError with a 2m0s wait", err)
		}
		if got := srv.Hits(""); got != 1 {
			t.Errorf("%d attempts, want 1", got)
		}
		time.Sleep(time.Minute)
		_, _, err = gh.Issues.Get(context.Background(), "octo", "repo", 1)
		if !errors.As(err, &abuse) {
			t.Errorf("Get a minute later: %v, want go-github's refusal", err)
		}
		if got := srv.Hits(""); got != 1 {
			t.Errorf("%d attempts after go-github's refusal, want 1", got)
		}
		time.Sleep(time.Minute + time.Second)
		if _, _, err := gh.Issues.Get(context.Background(), "octo", "repo", 1); err != nil {
			t.Errorf("Get after the wait: %v", err)
		}
	})
}

// TestGitHubPrimaryRateLimit: a 403 of the spent core quota is resent at
// its X-RateLimit-Reset when that is within WithMaxRetryAfter (20 s: one
// resend, the read succeeds); an hour away, it comes back after one
// attempt as go-github's *github.RateLimitError, and go-github refuses the
// next call unsent.
func TestGitHubPrimaryRateLimit(t *testing.T) {
	t.Run("Soon", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var created atomic.Int64
			srv := newServer(t, githubRateLimited(1, &created, githubPrimary(20*time.Second)))
			gh := githubOn(t, NewGitHubClient(srv.Base()), srv)
			start := time.Now()
			if _, _, err := gh.Issues.Create(context.Background(), "octo", "repo", &github.IssueRequest{Title: github.Ptr("flaky build")}); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got, waited := srv.Hits(""), time.Since(start); got != 2 || created.Load() != 1 || waited < 19*time.Second {
				t.Errorf("%d attempts, %d issues, after %v; want 2, 1, after 20s", got, created.Load(), waited)
			}
		})
	})
	t.Run("AnHour", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var created atomic.Int64
			srv := newServer(t, githubRateLimited(1, &created, githubPrimary(time.Hour)))
			gh := githubOn(t, NewGitHubClient(srv.Base()), srv)
			_, _, err := gh.Issues.Get(context.Background(), "octo", "repo", 1)
			var rle *github.RateLimitError
			if !errors.As(err, &rle) {
				t.Fatalf("Get: %v, want a *github.RateLimitError", err)
			}
			_, _, err = gh.Issues.Get(context.Background(), "octo", "repo", 1)
			if !errors.As(err, &rle) {
				t.Errorf("second Get: %v, want go-github's refusal", err)
			}
			if got := srv.Hits(""); got != 1 {
				t.Errorf("%d attempts, want 1", got)
			}
		})
	})
}
