package examples

import (
	"context"
	"errors"
	"net/http"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"github.com/slack-go/slack"
)

// slackJSON answers with status and body, as Slack's Web API does.
func slackJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// slackAPI is a fake of Slack's Web API: chat.postMessage posts a message
// (posted counts them), conversations.history and users.info read.
func slackAPI(posted *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
		posted.Add(1)
		slackJSON(w, http.StatusOK, `{"ok":true,"channel":"C123","ts":"1771336800.000100","message":{"type":"message","text":"hello"}}`)
	})
	mux.HandleFunc("POST /api/conversations.history", func(w http.ResponseWriter, _ *http.Request) {
		slackJSON(w, http.StatusOK, `{"ok":true,"messages":[{"type":"message","text":"hello","ts":"1771336800.000100"}],"has_more":false}`)
	})
	mux.HandleFunc("POST /api/users.info", func(w http.ResponseWriter, _ *http.Request) {
		slackJSON(w, http.StatusOK, `{"ok":true,"user":{"id":"U123","name":"jenny"}}`)
	})
	return mux
}

// slackFlaky is Slack's Web API answering every call with a 500 and an
// HTML page, after the API did its work: a message is posted.
func slackFlaky(posted *atomic.Int64) http.HandlerFunc {
	api := slackAPI(posted)
	return func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(newDiscard(), r)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<html><body><h1>Internal Server Error</h1></body></html>"))
	}
}

// slackRateLimited is Slack's 429.
func slackRateLimited(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Retry-After", "1")
	slackJSON(w, http.StatusTooManyRequests, `{"ok":false,"error":"ratelimited"}`)
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func newDiscard() *discard                     { return &discard{h: http.Header{}} }
func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// slackCall is one call of a slack-go client.
type slackCall struct {
	path string
	do   func(ctx context.Context, api *slack.Client) error
}

var (
	slackPost = slackCall{"/api/chat.postMessage", func(ctx context.Context, api *slack.Client) error {
		_, _, err := api.PostMessageContext(ctx, "C123", slack.MsgOptionText("build failed", false))
		return err
	}}
	slackHistory = slackCall{"/api/conversations.history", func(ctx context.Context, api *slack.Client) error {
		_, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C123"})
		return err
	}}
	slackUser = slackCall{"/api/users.info", func(ctx context.Context, api *slack.Client) error {
		_, err := api.GetUserInfoContext(ctx, "U123")
		return err
	}}
)

// slackWithRetries is slack-go with its retries on, as its documentation
// shows them: 3 retries of connection errors, 429s and 5xx.
func slackWithRetries(base http.RoundTripper, opts ...resilient.Option) []slack.Option {
	cfg := slack.DefaultRetryConfig()
	cfg.Handlers = append(slack.AllBuiltinRetryHandlers(cfg), slack.NewServerErrorRetryHandler(cfg))
	return []slack.Option{
		slack.OptionHTTPClient(&http.Client{Transport: resilient.New(base, opts...)}),
		slack.OptionRetryConfig(cfg),
	}
}

func slackRecipe(base http.RoundTripper, opts ...resilient.Option) []slack.Option {
	return []slack.Option{SlackHTTPClient(base, opts...)}
}

// slackClient returns a slack-go client on the options opts makes, for
// srv.
func slackClient(srv *server, opts []slack.Option) *slack.Client {
	return slack.New("xoxb-test", append(opts, slack.OptionAPIURL(srv.URL+"/api/"))...)
}

// slackSeries makes a series of calls with one slack-go client on the
// options opts makes, against a Slack API whose every answer is h's, and
// returns the server attempts and the messages posted.
func slackSeries(t *testing.T, call slackCall, h func(*atomic.Int64) http.Handler, opts func(http.RoundTripper, ...resilient.Option) []slack.Option) (m measurement, messages int) {
	synctest.Test(t, func(t *testing.T) {
		var posted atomic.Int64
		srv := newServer(t, h(&posted))
		api := slackClient(srv, opts(srv.Base()))
		m = series(seriesCalls, func() int { return srv.Hits(call.path) }, func(int) {
			if err := call.do(context.Background(), api); err == nil {
				t.Fatal("the call succeeded against a failing server")
			}
		})
		messages = int(posted.Load())
	})
	return m, messages
}

// TestSlack measures the attempts (and the messages posted) of failing
// calls with slack-go's retries on over resilient.New (before) and with
// SlackHTTPClient (after).
func TestSlack(t *testing.T) {
	flaky := func(p *atomic.Int64) http.Handler { return slackFlaky(p) }
	limited := func(*atomic.Int64) http.Handler { return http.HandlerFunc(slackRateLimited) }
	for _, tc := range []struct {
		name, row                 string
		call                      slackCall
		h                         func(*atomic.Int64) http.Handler
		before, after             measurement
		beforePosted, afterPosted int
	}{
		// A read is a POST too: resilient does not resend it after a 5xx,
		// slack-go's 5xx handler does.
		{"History500", "conversations.history, 500", slackHistory, flaky,
			measurement{4, 400, seriesCalls}, measurement{1, 100, seriesCalls}, 0, 0},
		// Slack ignores keys: slack-go's 5xx handler posts the message 4
		// times.
		{"PostMessage500", "chat.postMessage: posted, then 500", slackPost, flaky,
			measurement{4, 400, seriesCalls}, measurement{1, 100, seriesCalls}, 4 * seriesCalls, seriesCalls},
		// Both layers resend a 429: each of slack-go's 4 attempts is a
		// call of resilient's, which retries until its budget is spent
		// (a 429's retry costs a tenth: 20 calls of 6 attempts).
		{"PostMessage429", "chat.postMessage, 429 (`Retry-After: 1`)", slackPost, limited,
			measurement{24, 500, seriesCalls}, measurement{6, 200, seriesCalls}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, beforePosted := slackSeries(t, tc.call, tc.h, slackWithRetries)
			after, afterPosted := slackSeries(t, tc.call, tc.h, slackRecipe)
			if before != tc.before || after != tc.after {
				t.Errorf("server attempts: slack-go's retries %+v, recipe %+v; want %+v, %+v", before, after, tc.before, tc.after)
			}
			if beforePosted != tc.beforePosted || afterPosted != tc.afterPosted {
				t.Errorf("messages posted: slack-go's retries %d, recipe %d; want %d, %d", beforePosted, afterPosted, tc.beforePosted, tc.afterPosted)
			}
			checkDocRow(t, "slack-go", tc.row, before, after)
		})
	}
}

// TestSlackRateLimitedError shows what the caller gets when resilient gives
// up on a 429: slack-go's *RateLimitedError with Slack's Retry-After, after
// resilient's 6 attempts, or at once when Slack asks for a longer wait than
// WithMaxRetryAfter (60 seconds).
func TestSlackRateLimitedError(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		wait       time.Duration
		attempts   int
	}{
		{"1", time.Second, 6},
		{"120", 2 * time.Minute, 1},
	} {
		t.Run("RetryAfter"+tc.retryAfter, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Retry-After", tc.retryAfter)
					slackJSON(w, http.StatusTooManyRequests, `{"ok":false,"error":"ratelimited"}`)
				}))
				err := slackPost.do(context.Background(), slackClient(srv, slackRecipe(srv.Base())))
				var rl *slack.RateLimitedError
				if !errors.As(err, &rl) || rl.RetryAfter != tc.wait {
					t.Errorf("error %T %v; want a *slack.RateLimitedError of %v", err, err, tc.wait)
				}
				if got := srv.Hits(slackPost.path); got != tc.attempts {
					t.Errorf("%d server attempts, want %d", got, tc.attempts)
				}
			})
		})
	}
}

// TestSlackPausePerMethod shows why the recipe partitions the rate limiter
// by method: while chat.postMessage waits out a 429's Retry-After of 30
// seconds, a users.info call goes at once; in resilient's default
// partition (every POST to the host) it waited for the pause too.
func TestSlackPausePerMethod(t *testing.T) {
	plain := func(base http.RoundTripper, opts ...resilient.Option) []slack.Option {
		return []slack.Option{slack.OptionHTTPClient(&http.Client{Transport: resilient.New(base, opts...)})}
	}
	for _, tc := range []struct {
		name      string
		opts      func(http.RoundTripper, ...resilient.Option) []slack.Option
		held, max time.Duration
	}{
		{"Recipe", slackRecipe, 0, 0},
		{"DefaultPartition", plain, 30 * time.Second, 33 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var posted atomic.Int64
				srv := newServer(t, slackAPI(&posted), resilienttest.WithScript("POST /api/chat.postMessage", resilienttest.RateLimited(30*time.Second)))
				api := slackClient(srv, tc.opts(srv.Base()))
				done := make(chan error)
				go func() { done <- slackPost.do(context.Background(), api) }()
				synctest.Wait() // chat.postMessage is waiting for its retry
				start := time.Now()
				if err := slackUser.do(context.Background(), api); err != nil {
					t.Errorf("users.info: %v", err)
				}
				if d := time.Since(start); d < tc.held || d > tc.max {
					t.Errorf("users.info waited %v, want %v to %v", d, tc.held, tc.max)
				}
				if err := <-done; err != nil || posted.Load() != 1 {
					t.Errorf("chat.postMessage: %v, %d posted; want the message posted once", err, posted.Load())
				}
			})
		})
	}
}

// TestSlackPausePerWorkspace shows the recipe's partitions following
// Slack's per-workspace limits: an app that serves two workspaces through
// one Transport (one option, shared by a client per workspace's token)
// draws a 429 for one workspace's chat.postMessage, and the other
// workspace's chat.postMessage goes at once, as through a plain client. In
// resilient's default partitions, which follow a credential sent in a
// header, it waited out the other workspace's 30 s Retry-After: slack-go
// sends the token of most methods in the form body.
func TestSlackPausePerWorkspace(t *testing.T) {
	plain := func(base http.RoundTripper, opts ...resilient.Option) []slack.Option {
		return []slack.Option{slack.OptionHTTPClient(&http.Client{Transport: resilient.New(base, opts...)})}
	}
	for _, tc := range []struct {
		name      string
		opts      func(http.RoundTripper, ...resilient.Option) []slack.Option
		held, max time.Duration
	}{
		{"Recipe", slackRecipe, 0, 0},
		{"DefaultPartition", plain, 30 * time.Second, 33 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var posted atomic.Int64
				srv := newServer(t, slackAPI(&posted), resilienttest.WithScript("POST /api/chat.postMessage", resilienttest.RateLimited(30*time.Second)))
				opts := append(tc.opts(srv.Base()), slack.OptionAPIURL(srv.URL+"/api/")) // one Transport for both workspaces
				a := slack.New("xoxb-workspace-a", opts...)
				b := slack.New("xoxb-workspace-b", opts...)
				done := make(chan error)
				go func() { done <- slackPost.do(context.Background(), a) }()
				synctest.Wait() // workspace A's chat.postMessage is waiting for its retry
				start := time.Now()
				if err := slackPost.do(context.Background(), b); err != nil {
					t.Errorf("workspace B's chat.postMessage: %v", err)
				}
				if d := time.Since(start); d < tc.held || d > tc.max {
					t.Errorf("workspace B's chat.postMessage waited %v for workspace A's 429, want %v to %v", d, tc.held, tc.max)
				}
				if err := <-done; err != nil || posted.Load() != 2 {
					t.Errorf("workspace A's chat.postMessage: %v, %d posted in all; want each message posted once", err, posted.Load())
				}
			})
		})
	}
}

// TestSlackCallOptions shows per-call options reaching resilient through
// slack-go's …Context methods, which send each request with the call's
// context: one call made with resilient.WithCallOptions(ctx,
// resilient.WithMaxRetries(0)) makes one attempt, and its Report says so,
// while the next call, without them, retries the 429 as configured, and
// posts the message.
func TestSlackCallOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var posted atomic.Int64
		srv := newServer(t, slackAPI(&posted), resilienttest.WithScript("POST /api/chat.postMessage",
			resilienttest.RateLimited(time.Second), resilienttest.RateLimited(time.Second)))
		api := slackClient(srv, slackRecipe(srv.Base()))

		var r resilient.Report
		ctx := resilient.WithReport(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)), &r)
		var rl *slack.RateLimitedError
		if err := slackPost.do(ctx, api); !errors.As(err, &rl) {
			t.Fatalf("error %v, want a *slack.RateLimitedError", err)
		}
		if got := srv.Hits(slackPost.path); got != 1 || r.Attempts != 1 || r.StatusCode != http.StatusTooManyRequests {
			t.Errorf("with WithMaxRetries(0) for the call: %d server attempts, Report %+v; want 1 attempt and the 429", got, r)
		}
		if err := slackPost.do(context.Background(), api); err != nil {
			t.Fatalf("the next call: %v", err)
		}
		if got := srv.Hits(slackPost.path) - 1; got != 2 || posted.Load() != 1 {
			t.Errorf("the next call: %d server attempts, %d posted; want 2 (the 429 resent) and 1", got, posted.Load())
		}
	})
}

// TestSlackMethodKey checks the partition names slackMethod gives: the
// method, and a tag of the token, wherever slack-go sent it (the form body,
// the Authorization header), never the token itself.
func TestSlackMethodKey(t *testing.T) {
	form := func(body string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "https://slack.com/api/chat.postMessage", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	bearer := func(tok string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "https://slack.com/api/chat.postMessage", strings.NewReader(`{"channel":"C123"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	a := slackMethod(form("channel=C123&text=hi&token=xoxb-a"))
	if a == slackMethod(form("channel=C123&text=hi&token=xoxb-b")) {
		t.Errorf("two workspaces' chat.postMessage share the partition %q", a)
	}
	if got := slackMethod(form("channel=C456&text=bye&token=xoxb-a")); got != a {
		t.Errorf("one workspace's chat.postMessage: partitions %q and %q, want one", a, got)
	}
	if got := slackMethod(bearer("xoxb-a")); got != a {
		t.Errorf("the token in the header: partition %q, want %q, as in the body", got, a)
	}
	if strings.Contains(a, "xoxb") || !strings.HasPrefix(a, "slack.com/api/chat.postMessage ") {
		t.Errorf("partition %q: want the method and a tag of the token, without the token", a)
	}
	if got := slackMethod(form("channel=C123&text=hi")); got != "slack.com/api/chat.postMessage" {
		t.Errorf("no token: partition %q, want the method alone", got)
	}
	hook, _ := http.NewRequest(http.MethodPost, "https://hooks.slack.com/actions/T0123ABCD/4567890123/Zk9QmT3xW7vB2nL5cR8yH4jD", strings.NewReader(`{"text":"done"}`))
	got := slackMethod(hook)
	if strings.Contains(got, "Zk9QmT3xW7vB2nL5cR8yH4jD") || !strings.HasPrefix(got, "hooks.slack.com url ") {
		t.Errorf("a response URL: partition %q, want the host and a tag of the path, without its secret", got)
	}
}

// TestSlackResponseURLSecret shows the recipe keeping the secret of a
// response URL (https://hooks.slack.com/actions/T…/…/{secret}, where
// slack-go posts a message sent with slack.MsgOptionResponseURL, through
// the client's Transport) out of the rate-limit partition's name, which
// resilient shows in its errors and gives a QuotaStore as a key: after the
// URL's 429 with a Retry-After of 2 minutes, the next message to it is
// refused with an error wrapping resilient.ErrRateLimited that names the
// partition with a tag of the path, and the URL with the secret redacted.
// (Until 2026-12-01 both showed the secret: the partition's name was the
// URL's host and path, and resilient redacted the secrets of Slack's
// incoming webhooks, /services/…, but not of its response URLs.)
func TestSlackResponseURLSecret(t *testing.T) {
	const secret = "Zk9QmT3xW7vB2nL5cR8yH4jD"
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int64
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.Header().Set("Retry-After", "120")
			slackJSON(w, http.StatusTooManyRequests, `{"ok":false,"error":"rate_limited"}`)
		}))
		api := slackClient(srv, slackRecipe(srv.Base()))
		url := srv.URL + "/actions/T0123ABCD/4567890123/" + secret
		send := func() error {
			_, _, err := api.PostMessageContext(context.Background(), "", slack.MsgOptionResponseURL(url, slack.ResponseTypeEphemeral), slack.MsgOptionText("done", false))
			return err
		}
		if err := send(); err == nil {
			t.Fatal("the first message succeeded against a 429")
		}
		err := send()
		if !errors.Is(err, resilient.ErrRateLimited) {
			t.Fatalf("the second message: %v, want resilient.ErrRateLimited", err)
		}
		// net/http's own *url.Error (Post "https://hooks.slack.com/…")
		// shows the URL whole, as through a plain client; what resilient
		// says inside it must not.
		var ue *neturl.Error
		if !errors.As(err, &ue) {
			t.Fatalf("the second message: %v, want a *url.Error from net/http", err)
		}
		if msg := ue.Err.Error(); strings.Contains(msg, secret) {
			t.Errorf("resilient's error shows the response URL's secret: %v", msg)
		}
		if hits.Load() != 1 {
			t.Errorf("%d server attempts, want 1", hits.Load())
		}
	})
}

// TestSlackMethodKeyReadsALongForm: a message of 10,000 characters (Slack
// takes up to 40,000), after which slack-go writes the token, is in its
// workspace's partition, as a short one.
func TestSlackMethodKeyReadsALongForm(t *testing.T) {
	form := func(body string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "https://slack.com/api/chat.postMessage", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	short := slackMethod(form("channel=C123&text=hi&token=xoxb-a"))
	if got := slackMethod(form("channel=C123&text=" + strings.Repeat("x", 10000) + "&token=xoxb-a")); got != short {
		t.Errorf("a long message: partition %q, want %q, as a short one's", got, short)
	}
}
