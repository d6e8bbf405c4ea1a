package examples

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/resilienthttp/resilient"
	"golang.org/x/time/rate"
)

// toServer is a RoundTripper that sends every request to host, whatever
// the host of its URL: discordgo calls https://discord.com/api/v9/, the
// URL of its package's endpoints, and resilient above it sees that host.
type toServer struct {
	host string
	base http.RoundTripper
}

func (t toServer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "http", t.host, ""
	return t.base.RoundTrip(r)
}

// discordBase returns the base RoundTripper of a session for srv.
func discordBase(t *testing.T, srv *server) http.RoundTripper {
	t.Helper()
	host, ok := strings.CutPrefix(srv.URL, "http://")
	if !ok {
		t.Fatalf("server URL %q", srv.URL)
	}
	return toServer{host: host, base: srv.Base()}
}

// discordMessagesPath is the path of channel 1's messages.
const discordMessagesPath = "/api/v9/channels/1/messages"

// discordFlaky is a Discord API whose every answer is Cloudflare's 502
// page: a GET gets it; a POST that sends a message is posted (posted
// counts it) and then answered with it, as when Discord's edge times out
// after the write.
func discordFlaky(posted *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posted.Add(1)
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"))
	}
}

// discordRateLimited is Discord's 429 for a route's bucket: its wait in the
// Retry-After header and, in seconds with decimals, in the body.
func discordRateLimited(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.Header().Set("X-RateLimit-Limit", "5")
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Reset-After", "1.000")
	w.Header().Set("X-RateLimit-Bucket", "b1")
	w.Header().Set("X-RateLimit-Scope", "user")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"message": "You are being rate limited.", "retry_after": 1.0, "global": false}`))
}

// discordDefaults is a session with discordgo's defaults (3 retries of a
// 502, 429s retried) on a client over resilient.New with resilient's
// defaults.
func discordDefaults(token string, base http.RoundTripper, opts ...resilient.Option) (*discordgo.Session, error) {
	s, err := discordgo.New(token)
	if err != nil {
		return nil, err
	}
	s.Client = &http.Client{Transport: resilient.New(base, opts...)}
	return s, nil
}

// discordSession returns the session newSession makes for srv.
func discordSession(t *testing.T, srv *server, newSession func(string, http.RoundTripper, ...resilient.Option) (*discordgo.Session, error), opts ...resilient.Option) *discordgo.Session {
	t.Helper()
	s, err := newSession("Bot test-token", discordBase(t, srv), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// discordSeries makes a series of calls with the session newSession makes
// against a Discord API that fails every call with a 502, posting a
// message (post) or listing a channel's messages, and returns the server
// attempts and the messages posted.
func discordSeries(t *testing.T, newSession func(string, http.RoundTripper, ...resilient.Option) (*discordgo.Session, error), post bool) (m measurement, messages int) {
	synctest.Test(t, func(t *testing.T) {
		var posted atomic.Int64
		srv := newServer(t, discordFlaky(&posted))
		s := discordSession(t, srv, newSession)
		m = series(seriesCalls, func() int { return srv.Hits(discordMessagesPath) }, func(i int) {
			var err error
			if post {
				_, err = s.ChannelMessageSend("1", fmt.Sprintf("build %d failed", i))
			} else {
				_, err = s.ChannelMessages("1", 50, "", "", "")
			}
			if err == nil {
				t.Fatal("the call succeeded against a failing server")
			}
		})
		messages = int(posted.Load())
	})
	return m, messages
}

// discordBuckets is a fake of Discord's API for posting messages, whose
// every channel has a bucket of its own, as Discord's routes do: 5
// messages per 5 seconds, announced with Discord's X-RateLimit-* headers,
// and a 429 past them.
type discordBuckets struct {
	mu      sync.Mutex
	buckets map[string]*discordBucket
	posted  int
}

type discordBucket struct {
	left  int
	reset time.Time
}

const (
	discordBucketSize   = 5
	discordBucketWindow = 5 * time.Second
)

func (d *discordBuckets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	if r.Method != http.MethodPost || channel == "" {
		http.NotFound(w, r)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	b := d.buckets[channel]
	if b == nil || !now.Before(b.reset) {
		b = &discordBucket{left: discordBucketSize, reset: now.Add(discordBucketWindow)}
		d.buckets[channel] = b
	}
	after := b.reset.Sub(now).Seconds()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-RateLimit-Limit", strconv.Itoa(discordBucketSize))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.reset.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", "messages-"+channel)
	if b.left == 0 {
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("Retry-After", strconv.Itoa(int(after+0.999)))
		h.Set("X-RateLimit-Scope", "user")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"message": "You are being rate limited.", "retry_after": %.3f, "global": false}`, after)
		return
	}
	b.left--
	d.posted++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(b.left))
	fmt.Fprintf(w, `{"id":"%d","channel_id":"%s","content":"hello"}`, d.posted, channel)
}

// discordBurst posts 5 messages to each of 4 channels, one after the
// other, through the session newSession makes (with opts), and returns how
// long it took and the 429s the server sent.
func discordBurst(t *testing.T, newSession func(string, http.RoundTripper, ...resilient.Option) (*discordgo.Session, error), opts ...resilient.Option) (took time.Duration, limited int) {
	synctest.Test(t, func(t *testing.T) {
		api := &discordBuckets{buckets: map[string]*discordBucket{}}
		mux := http.NewServeMux()
		mux.Handle("POST /api/v9/channels/{channel}/messages", api)
		srv := newServer(t, mux)
		s := discordSession(t, srv, newSession, opts...)
		start := time.Now()
		for c := 1; c <= 4; c++ {
			for i := 0; i < discordBucketSize; i++ {
				if _, err := s.ChannelMessageSend(strconv.Itoa(c), "hello"); err != nil {
					t.Fatalf("channel %d, message %d: %v", c, i, err)
				}
			}
		}
		took, limited = time.Since(start), srv.Stats().RateLimited
	})
	return took, limited
}

// TestDiscord measures the attempts (and the messages posted) of failing
// GETs and POSTs with discordgo's defaults over resilient.New (before) and
// with NewDiscordSession (after).
func TestDiscord(t *testing.T) {
	t.Run("GetMessages502", func(t *testing.T) {
		// Each of discordgo's 4 attempts is a call of resilient's: 6 + 6
		// + 1 + 1 on a fresh Transport, then 4 per call.
		before, _ := discordSeries(t, discordDefaults, false)
		after, _ := discordSeries(t, NewDiscordSession, false)
		if before != (measurement{14, 410, seriesCalls}) || after != (measurement{6, 110, seriesCalls}) {
			t.Errorf("server attempts: defaults %+v, recipe %+v; want {14 410 %d}, {6 110 %[3]d}", before, after, seriesCalls)
		}
		checkDocRow(t, "discordgo", "GET a channel's messages, 502", before, after)
	})
	t.Run("PostMessage502", func(t *testing.T) {
		// Discord ignores keys: resilient does not resend the message,
		// discordgo resends it 3 times, and each is posted.
		before, beforePosted := discordSeries(t, discordDefaults, true)
		after, afterPosted := discordSeries(t, NewDiscordSession, true)
		if before != (measurement{4, 400, seriesCalls}) || after != (measurement{1, 100, seriesCalls}) {
			t.Errorf("server attempts: defaults %+v, recipe %+v; want {4 400 %d}, {1 100 %[3]d}", before, after, seriesCalls)
		}
		if beforePosted != 4*seriesCalls || afterPosted != seriesCalls {
			t.Errorf("messages posted: defaults %d, recipe %d; want %d, %d", beforePosted, afterPosted, 4*seriesCalls, seriesCalls)
		}
		checkDocRow(t, "discordgo", "POST a message: posted, then 502", before, after)
	})
}

// TestDiscordRateLimited shows a route that answers 429 to every attempt:
// with the recipe, resilient makes its 6 attempts, a second apart, and the
// call returns discordgo's *RateLimitError; with discordgo's defaults, it
// retries resilient's 429s again, without end: a call with a one-minute
// deadline sent more than 50 attempts and returned after its deadline,
// discordgo's wait ignoring the context.
func TestDiscordRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(discordRateLimited))
		start := time.Now()
		_, err := discordSession(t, srv, NewDiscordSession).ChannelMessageSend("1", "hello")
		var rl *discordgo.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
			t.Errorf("error %T %v; want a *discordgo.RateLimitError after 1s", err, err)
		}
		if got, d := srv.Hits(discordMessagesPath), time.Since(start); got != 6 || d < 5*time.Second || d > 6*time.Second {
			t.Errorf("%d server attempts in %v, want 6 in 5 to 6s", got, d)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(discordRateLimited))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		_, err := discordSession(t, srv, discordDefaults).ChannelMessageSend("1", "hello", discordgo.WithContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the deadline's", err)
		}
		if got, d := srv.Hits(discordMessagesPath), time.Since(start); got < 50 || d <= time.Minute {
			t.Errorf("discordgo's defaults: %d server attempts in %v, want more than 50, past the 1m deadline", got, d)
		}
	})
}

// TestDiscordRateLimitBuckets: posting 5 messages to each of 4 channels,
// each channel a bucket of 5 messages per 5 seconds, takes no time with
// the recipe, with resilient's limiter on too (it keeps a partition per
// X-RateLimit-Bucket: until 2026-11-30 it learned one channel's bucket as
// the quota of every write to the host and took about 20 seconds), and
// with both libraries' defaults. None gets a 429. discordgo's own limiter
// reads the headers of the responses resilient returns: a 6th message to
// the first channel waits for its bucket's reset, 5 seconds, instead of
// drawing a 429.
func TestDiscordRateLimitBuckets(t *testing.T) {
	recipe, recipe429s := discordBurst(t, NewDiscordSession)
	limiter, limiter429s := discordBurst(t, NewDiscordSession, resilient.WithRateLimit(rate.Inf, 0)) // resilient's limiter back on, with no static limit
	defaults, defaults429s := discordBurst(t, discordDefaults)
	if recipe != 0 || limiter != 0 || defaults != 0 || recipe429s+limiter429s+defaults429s != 0 {
		t.Errorf("20 messages to 4 channels: recipe %v (%d 429s), with resilient's limiter %v (%d), discordgo's and resilient's defaults %v (%d); want 0s each, and no 429",
			recipe, recipe429s, limiter, limiter429s, defaults, defaults429s)
	}
	synctest.Test(t, func(t *testing.T) {
		api := &discordBuckets{buckets: map[string]*discordBucket{}}
		mux := http.NewServeMux()
		mux.Handle("POST /api/v9/channels/{channel}/messages", api)
		srv := newServer(t, mux)
		s := discordSession(t, srv, NewDiscordSession)
		start := time.Now()
		for i := 0; i <= discordBucketSize; i++ {
			if _, err := s.ChannelMessageSend("1", "hello"); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if d, n := time.Since(start), srv.Stats().RateLimited; d != discordBucketWindow || n != 0 {
			t.Errorf("6 messages to a channel took %v with %d 429s, want %v and none", d, n, discordBucketWindow)
		}
	})
}

// TestDiscordCallOptions shows per-call options reaching resilient through
// discordgo, which sends a request with the context given by
// discordgo.WithContext (and with none otherwise): one call made with
// resilient.WithCallOptions(ctx, resilient.WithMaxRetries(0)) makes one
// attempt, and its Report says so, while the next call, without them,
// retries as configured.
func TestDiscordCallOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, discordFlaky(new(atomic.Int64)))
		s := discordSession(t, srv, NewDiscordSession)

		var r resilient.Report
		ctx := resilient.WithReport(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)), &r)
		if _, err := s.ChannelMessages("1", 50, "", "", "", discordgo.WithContext(ctx)); err == nil {
			t.Fatal("ChannelMessages succeeded against a failing server")
		}
		if got := srv.Hits(discordMessagesPath); got != 1 || r.Attempts != 1 || r.StatusCode != http.StatusBadGateway {
			t.Errorf("with WithMaxRetries(0) for the call: %d server attempts, Report %+v; want 1 attempt and the 502", got, r)
		}
		if _, err := s.ChannelMessages("1", 50, "", "", ""); err == nil {
			t.Fatal("ChannelMessages succeeded against a failing server")
		}
		if got := srv.Hits(discordMessagesPath) - 1; got != 6 {
			t.Errorf("the next call: %d server attempts, want 6", got)
		}
	})
}

// TestDiscordRecovers shows the recipe retrying a read: two 502s, then the
// messages, in 3 attempts; and a read whose first attempt stalls, cut
// after 20 seconds and retried.
func TestDiscordRecovers(t *testing.T) {
	for _, stall := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var n int
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n++
				switch {
				case stall && n == 1:
					<-r.Context().Done()
					return
				case !stall && n <= 2:
					discordFlaky(new(atomic.Int64))(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`[{"id":"1","channel_id":"1","content":"hello"}]`))
			}))
			start := time.Now()
			msgs, err := discordSession(t, srv, NewDiscordSession).ChannelMessages("1", 50, "", "", "")
			if err != nil {
				t.Fatalf("ChannelMessages: %v", err)
			}
			if len(msgs) != 1 || msgs[0].Content != "hello" {
				t.Errorf("messages %+v, want one saying hello", msgs)
			}
			want := 3
			if stall {
				want = 2
				if d := time.Since(start); d < 20*time.Second {
					t.Errorf("the stalled attempt was cut after %v, want 20s", d)
				}
			}
			if got := srv.Hits(discordMessagesPath); got != want {
				t.Errorf("%d server attempts, want %d", got, want)
			}
		})
	}
}

// TestDiscordStalledBody: Discord answers, then its body stalls (an hour
// here). discordgo's own client gives a request 20 seconds, its body
// included, and makes most requests without a context: through the
// recipe, whose attempt timeout ends with the headers, the call (and
// discordgo's lock on the route's bucket, which every other call of the
// route waits for) would wait for the body as long as it stalls. The
// recipe's client bounds it: the call fails by resilient's budget of 5
// minutes, for a read and for a message sent.
func TestDiscordStalledBody(t *testing.T) {
	for _, post := range []bool{false, true} {
		t.Run(map[bool]string{false: "ChannelMessages", true: "ChannelMessageSend"}[post], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Content-Length", "100")
					w.WriteHeader(http.StatusOK)
					_, _ = w.Write([]byte(`[{"id":"1",`))
					w.(http.Flusher).Flush()
					select {
					case <-time.After(time.Hour):
					case <-r.Context().Done():
					}
				}))
				s := discordSession(t, srv, NewDiscordSession)
				start := time.Now()
				var err error
				if post {
					_, err = s.ChannelMessageSend("1", "hello")
				} else {
					_, err = s.ChannelMessages("1", 50, "", "", "")
				}
				if err == nil {
					t.Error("the call succeeded with a body cut short")
				}
				if d := time.Since(start); d > resilient.DefaultMaxElapsed {
					t.Errorf("the call waited %v for a stalled body, want at most %v", d, resilient.DefaultMaxElapsed)
				}
			})
		})
	}
}

// TestDiscordMaxElapsedBoundsClient: the recipe's client bounds a call, its
// body included, by the budget the caller passes with
// resilient.WithMaxElapsed, not by the default's 5 minutes: a body that
// takes 10 minutes is read under a budget of 20 (an earlier recipe cut it
// at 5), and one that stalls is cut at 10 s under a budget of 10 s (the
// earlier recipe waited 5 minutes, holding the route's bucket).
func TestDiscordMaxElapsedBoundsClient(t *testing.T) {
	for _, tc := range []struct {
		budget, stall time.Duration
		ok            bool
	}{
		{20 * time.Minute, 10 * time.Minute, true},
		{10 * time.Second, time.Hour, false},
	} {
		t.Run(tc.budget.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, stalledBody(tc.stall, `[{"id":"1",`, `"content":"hi"}]`))
				s := discordSession(t, srv, NewDiscordSession, resilient.WithMaxElapsed(tc.budget))
				start := time.Now()
				_, err := s.ChannelMessages("1", 50, "", "", "")
				if (err == nil) != tc.ok {
					t.Errorf("ChannelMessages with WithMaxElapsed(%v), a body taking %v: err = %v, want success %v", tc.budget, tc.stall, err, tc.ok)
				}
				if d := time.Since(start); !tc.ok && d > tc.budget {
					t.Errorf("the call waited %v for a stalled body, want at most %v", d, tc.budget)
				}
			})
		})
	}
}

// TestDiscordMissingPermissions shows a 403 that Discord answers for a
// lack of permission (code 50013, Missing Permissions: the caller's bug)
// on the request that spent its route's bucket (X-RateLimit-Remaining: 0,
// as every Discord response carries its bucket's headers) returned after
// one attempt. Discord refuses over a rate limit with a 429 only; until
// 2026-12-01 resilient took such a 403 for GitHub's rate-limited 403 and
// sent the message again: one more refused request, which Discord counts
// towards its ban of clients that make too many invalid requests.
func TestDiscordMissingPermissions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int64
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			left := "4"
			if hits.Add(1) == 1 {
				left = "0" // the first request spends the bucket's last one
			}
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("X-RateLimit-Limit", "5")
			h.Set("X-RateLimit-Remaining", left)
			h.Set("X-RateLimit-Reset-After", "5.000")
			h.Set("X-RateLimit-Bucket", "messages-1")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message": "Missing Permissions", "code": 50013}`))
		}))
		for _, tc := range []struct {
			name       string
			newSession func(string, http.RoundTripper, ...resilient.Option) (*discordgo.Session, error)
		}{{"Recipe", NewDiscordSession}, {"ResilientLimiter", discordDefaults}} {
			hits.Store(0)
			s := discordSession(t, srv, tc.newSession)
			s.MaxRestRetries = 0
			_, err := s.ChannelMessageSend("1", "hello")
			var rerr *discordgo.RESTError
			if !errors.As(err, &rerr) || rerr.Response.StatusCode != http.StatusForbidden {
				t.Errorf("%s: error %v, want discordgo's RESTError with the 403", tc.name, err)
			}
			if got := hits.Load(); got != 1 {
				t.Errorf("%s: %d server attempts, want 1", tc.name, got)
			}
		}
	})
}

// TestDiscordCutsAnAttemptAfter20Seconds: an attempt whose response's
// headers never come is cut after 20 seconds, as discordgo's own client
// cuts a request, not later.
func TestDiscordCutsAnAttemptAfter20Seconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		s := discordSession(t, srv, NewDiscordSession)
		ctx := resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0))
		start := time.Now()
		if _, err := s.ChannelMessages("1", 50, "", "", "", discordgo.WithContext(ctx)); err == nil {
			t.Fatal("ChannelMessages succeeded against a server that never answers")
		}
		if d := time.Since(start); d != 20*time.Second {
			t.Errorf("the attempt was cut after %v, want 20s", d)
		}
	})
}

// TestDiscordLeavesPacingToDiscordgo: resilient's rate limiter is off under
// the recipe, so that discordgo alone paces each route's bucket: the
// attempts resilient records read no rate-limit headers (unknown: Limit
// -1), where a limiter that read them would pace the same buckets again.
func TestDiscordLeavesPacingToDiscordgo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &discordBuckets{buckets: map[string]*discordBucket{}}
		mux := http.NewServeMux()
		mux.Handle("POST /api/v9/channels/{channel}/messages", api)
		srv := newServer(t, mux)
		var limits []int
		s := discordSession(t, srv, NewDiscordSession, resilient.WithObserver(func(a resilient.Attempt) { limits = append(limits, a.RateLimit.Limit) }))
		if _, err := s.ChannelMessageSend("1", "hello"); err != nil {
			t.Fatalf("ChannelMessageSend: %v", err)
		}
		if len(limits) != 1 || limits[0] != -1 {
			t.Errorf("rate-limit Limit read by resilient %v, want [-1] (its limiter off)", limits)
		}
	})
}
