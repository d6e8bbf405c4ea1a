package examples

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// openaiJSON answers with status and body, as OpenAI does.
func openaiJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_test")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// openaiAPI is a fake of OpenAI's API: a chat completion, a model, and a
// batch, which it creates (batches counts them) before it answers.
func openaiAPI(batches *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, _ *http.Request) {
		openaiJSON(w, http.StatusOK, `{"id":"chatcmpl-1","object":"chat.completion","created":1771336800,"model":"gpt-5.4-mini",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}`)
	})
	mux.HandleFunc("GET /v1/models/{id}", func(w http.ResponseWriter, r *http.Request) {
		openaiJSON(w, http.StatusOK, `{"id":"`+r.PathValue("id")+`","object":"model","created":1771336800,"owned_by":"openai"}`)
	})
	mux.HandleFunc("POST /v1/batches", func(w http.ResponseWriter, _ *http.Request) {
		n := batches.Add(1)
		openaiJSON(w, http.StatusOK, `{"id":"batch_`+string(rune('0'+n%10))+`","object":"batch","endpoint":"/v1/chat/completions",`+
			`"input_file_id":"file-abc","completion_window":"24h","status":"validating","created_at":1771336800}`)
	})
	return mux
}

// openaiServerError is OpenAI's 500.
func openaiServerError(w http.ResponseWriter, _ *http.Request) {
	openaiJSON(w, http.StatusInternalServerError, `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`)
}

// openaiRateLimited is OpenAI's 429 for a spent requests-per-minute quota,
// with the wait in both headers OpenAI sends.
func openaiRateLimited(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Retry-After-Ms", "1000")
	w.Header().Set("Retry-After", "1")
	openaiJSON(w, http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached for gpt-5.4-mini on requests per min (RPM): Limit 500, Used 500, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
}

// openaiCall is one call of the openai-go client to the fake API.
type openaiCall struct {
	path string
	do   func(ctx context.Context, c openai.Client) error
}

var (
	openaiChat = openaiCall{"/v1/chat/completions", func(ctx context.Context, c openai.Client) error {
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    openai.ChatModelGPT5_4Mini,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		})
		return err
	}}
	openaiModel = openaiCall{"/v1/models/gpt-5.4-mini", func(ctx context.Context, c openai.Client) error {
		_, err := c.Models.Get(ctx, "gpt-5.4-mini")
		return err
	}}
	openaiBatch = openaiCall{"/v1/batches", func(ctx context.Context, c openai.Client) error {
		_, err := c.Batches.New(ctx, openai.BatchNewParams{
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h,
			Endpoint:         openai.BatchNewParamsEndpointV1ChatCompletions,
			InputFileID:      "file-abc",
		})
		return err
	}}
)

// openaiFault is a way for OpenAI's API to fail every call: the handler
// that answers in place of the API (nil: the API itself), and the faults
// resilienttest puts in front of it on the call's route.
type openaiFault struct {
	api  http.HandlerFunc
	step *resilienttest.Step
}

// openaiClient returns an openai-go client on the options opts makes over
// base, for srv.
func openaiClient(srv *server, opts []option.RequestOption) openai.Client {
	return openai.NewClient(append(opts, option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("sk-test"))...)
}

// openaiSeries makes a series of calls with one openai-go client on the
// options opts makes, against an OpenAI API that fails every call with
// fault, and returns the server attempts, the batches created and the
// distinct idempotency keys sent.
func openaiSeries(t *testing.T, call openaiCall, fault openaiFault, opts func(base http.RoundTripper) []option.RequestOption) (m measurement, batches, keys int) {
	synctest.Test(t, func(t *testing.T) {
		var created atomic.Int64
		var h http.Handler = openaiAPI(&created)
		if fault.api != nil {
			h = fault.api
		}
		var sopts []resilienttest.Option
		if fault.step != nil {
			route := http.MethodPost + " " + call.path
			if call.path == openaiModel.path {
				route = http.MethodGet + " " + call.path
			}
			sopts = append(sopts, everyAttempt(route, *fault.step))
		}
		srv := newServer(t, h, sopts...)
		c := openaiClient(srv, opts(srv.Base()))
		m = series(seriesCalls, func() int { return srv.Hits(call.path) }, func(int) {
			if err := call.do(context.Background(), c); err == nil {
				t.Fatal("the call succeeded against a failing server")
			}
		})
		batches, keys = int(created.Load()), len(srv.Keys(call.path))
	})
	return m, batches, keys
}

// openaiDefaults is openai-go's default configuration (2 retries) over
// resilient.New with resilient's defaults.
func openaiDefaults(base http.RoundTripper) []option.RequestOption {
	return []option.RequestOption{option.WithHTTPClient(&http.Client{Transport: resilient.New(base)})}
}

func openaiRecipe(base http.RoundTripper) []option.RequestOption { return OpenAIOptions(base) }

// TestOpenAI measures the attempts of failing calls with openai-go's
// defaults over resilient.New (before) and with OpenAIOptions (after): the
// first call, and a series.
func TestOpenAI(t *testing.T) {
	storedThen500, storedThenDropped := resilienttest.FailAfterStoring(), resilienttest.DropAfter()
	for _, tc := range []struct {
		name, row     string
		call          openaiCall
		fault         openaiFault
		before, after measurement
		// The batches created per series, before and after; every
		// attempt of a write carries resilient's key, one per call of
		// resilient's (openai-go sets none).
		beforeBatches, afterBatches int
	}{
		// A read: each of openai-go's 3 attempts is a call of
		// resilient's, 6 + 6 + 1 on a fresh Transport, then 3 per call
		// once the host's budget is spent.
		{name: "GetModel500", row: "GET a model, 500", call: openaiModel, fault: openaiFault{api: openaiServerError},
			before: measurement{13, 310, seriesCalls}, after: measurement{6, 110, seriesCalls}},
		// A completion is a POST without a key to a host that ignores
		// keys: resilient does not resend it after a 500, openai-go does.
		{name: "Completion500", row: "chat completion, 500", call: openaiChat, fault: openaiFault{api: openaiServerError},
			before: measurement{3, 300, seriesCalls}, after: measurement{1, 100, seriesCalls}},
		// A 429 proves the POST was not processed: both layers resend it,
		// and their attempts multiply, until resilient's budget is spent
		// (a 429's retry costs a tenth: the first 20 calls retry).
		{name: "Completion429", row: "chat completion, 429 (`retry-after-ms: 1000`)", call: openaiChat, fault: openaiFault{api: openaiRateLimited},
			before: measurement{18, 400, seriesCalls}, after: measurement{6, 200, seriesCalls}},
		// The API creates the batch, then its answer fails: openai-go
		// creates it again with each of its retries.
		{name: "BatchStoredThen500", row: "create a batch: created, then 500", call: openaiBatch, fault: openaiFault{step: &storedThen500},
			before: measurement{3, 300, seriesCalls}, after: measurement{1, 100, seriesCalls}, beforeBatches: 3 * seriesCalls, afterBatches: seriesCalls},
		{name: "BatchStoredThenDropped", row: "create a batch: created, then the connection lost", call: openaiBatch, fault: openaiFault{step: &storedThenDropped},
			before: measurement{3, 300, seriesCalls}, after: measurement{1, 100, seriesCalls}, beforeBatches: 3 * seriesCalls, afterBatches: seriesCalls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeBatches, beforeKeys := openaiSeries(t, tc.call, tc.fault, openaiDefaults)
			after, afterBatches, afterKeys := openaiSeries(t, tc.call, tc.fault, openaiRecipe)
			if before != tc.before || after != tc.after {
				t.Errorf("server attempts: defaults %+v, recipe %+v; want %+v, %+v", before, after, tc.before, tc.after)
			}
			if beforeBatches != tc.beforeBatches || afterBatches != tc.afterBatches {
				t.Errorf("batches created: defaults %d, recipe %d; want %d, %d", beforeBatches, afterBatches, tc.beforeBatches, tc.afterBatches)
			}
			if write := tc.call.path != openaiModel.path; write && (beforeKeys != 3*seriesCalls || afterKeys != seriesCalls) {
				t.Errorf("distinct idempotency keys: defaults %d, recipe %d; want %d, %d (resilient's, one per call of its own)", beforeKeys, afterKeys, 3*seriesCalls, seriesCalls)
			}
			checkDocRow(t, "openai-go", tc.row, before, after)
		})
	}
}

// TestOpenAISetsNoIdempotencyKey shows that openai-go sends its POSTs
// without an Idempotency-Key, through a plain client: it resends a
// completion or a batch after a 5xx without anything that would let
// OpenAI tell the resend from a new request.
func TestOpenAISetsNoIdempotencyKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var created atomic.Int64
		srv := newServer(t, openaiAPI(&created), resilienttest.WithScript("POST /v1/batches", resilienttest.FailAfterStoring()))
		c := openaiClient(srv, []option.RequestOption{option.WithHTTPClient(&http.Client{Transport: srv.Base()})})
		for _, call := range []openaiCall{openaiChat, openaiBatch} {
			if err := call.do(context.Background(), c); err != nil {
				t.Fatalf("%s: %v", call.path, err)
			}
			if keys := srv.Keys(call.path); len(keys) != 0 {
				t.Errorf("%s: openai-go sent idempotency keys %q", call.path, keys)
			}
		}
		if got, n := srv.Hits(openaiBatch.path), created.Load(); got != 2 || n != 2 {
			t.Errorf("batch: %d attempts, %d batches created; want 2 and 2 (the 500 resent)", got, n)
		}
	})
}

// TestOpenAINamedHostResendsCompletions shows the setting for a client
// whose calls create nothing that a second call would duplicate (chat
// completions that are not stored, embeddings): with the API's host named
// in WithKeyHonoringHosts, resilient resends a completion after a 500, as
// it resends reads, and two 500s then an answer make one completion.
func TestOpenAINamedHostResendsCompletions(t *testing.T) {
	named := func(base http.RoundTripper) []option.RequestOption {
		return OpenAIOptions(base, resilient.WithKeyHonoringHosts("altyaa.test")) // the pipe server's host
	}
	if got, _, _ := openaiSeries(t, openaiChat, openaiFault{api: openaiServerError}, named); got != (measurement{6, 110, seriesCalls}) {
		t.Errorf("server attempts %+v, want {6 110 %d}", got, seriesCalls)
	}
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, openaiAPI(new(atomic.Int64)), resilienttest.WithScript("POST /v1/chat/completions",
			resilienttest.Respond(http.StatusInternalServerError), resilienttest.Respond(http.StatusInternalServerError)))
		u, _ := url.Parse(srv.URL)
		c := openaiClient(srv, OpenAIOptions(srv.Base(), resilient.WithKeyHonoringHosts(u.Host)))
		resp, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model:    openai.ChatModelGPT5_4Mini,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "Hello!" {
			t.Errorf("completion %+v, want Hello!", resp.Choices)
		}
		if got := srv.Hits(openaiChat.path); got != 3 {
			t.Errorf("%d server attempts, want 3", got)
		}
	})
}

// TestOpenAIErrors shows what the caller of the recipe's client gets back
// when resilient gives up: openai-go's *openai.Error, with OpenAI's status
// and error object, as without resilient.
func TestOpenAIErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		call   openaiCall
		fault  http.HandlerFunc
		status int
		code   string
	}{
		{"Completion429", openaiChat, openaiRateLimited, http.StatusTooManyRequests, "rate_limit_exceeded"},
		{"Model500", openaiModel, openaiServerError, http.StatusInternalServerError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, tc.fault)
				err := tc.call.do(context.Background(), openaiClient(srv, OpenAIOptions(srv.Base())))
				var oe *openai.Error
				if !errors.As(err, &oe) || oe.StatusCode != tc.status || oe.Code != tc.code {
					t.Errorf("error %T %v; want an *openai.Error %d %q", err, err, tc.status, tc.code)
				}
				if got := srv.Hits(tc.call.path); got != 6 {
					t.Errorf("%d server attempts, want 6", got)
				}
			})
		})
	}
}

// TestOpenAICallOptions shows per-call options reaching resilient through
// openai-go, which sends each request with the call's context: one call
// made with resilient.WithCallOptions(ctx, resilient.WithMaxRetries(0))
// makes one attempt, and its Report says so, while the next call, without
// them, retries as configured.
func TestOpenAICallOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(openaiServerError))
		c := openaiClient(srv, OpenAIOptions(srv.Base()))

		var r resilient.Report
		ctx := resilient.WithReport(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)), &r)
		if err := openaiModel.do(ctx, c); err == nil {
			t.Fatal("Get succeeded against a failing server")
		}
		if got := srv.Hits(openaiModel.path); got != 1 || r.Attempts != 1 || r.StatusCode != http.StatusInternalServerError {
			t.Errorf("with WithMaxRetries(0) for the call: %d server attempts, Report %+v; want 1 attempt and the 500", got, r)
		}
		if err := openaiModel.do(context.Background(), c); err == nil {
			t.Fatal("Get succeeded against a failing server")
		}
		if got := srv.Hits(openaiModel.path) - 1; got != 6 {
			t.Errorf("the next call: %d server attempts, want 6", got)
		}
	})
}

// TestOpenAILongCompletion shows a completion that takes longer than
// resilient's default budget (WithMaxElapsed, 5 minutes) to answer, as a
// reasoning model's may: with the recipe it is answered in one attempt, as
// through a plain client; under resilient's defaults the attempt was cut at
// 5 minutes and, a POST that may have been processed, not resent: the
// call failed.
func TestOpenAILongCompletion(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(base http.RoundTripper) []option.RequestOption
		ok   bool
	}{
		{"Recipe", openaiRecipe, true},
		{"DefaultBudget", func(base http.RoundTripper) []option.RequestOption {
			return []option.RequestOption{option.WithHTTPClient(&http.Client{Transport: resilient.New(base)}), option.WithMaxRetries(0)}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := openaiAPI(new(atomic.Int64))
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(6 * time.Minute)
					api.ServeHTTP(w, r)
				}))
				start := time.Now()
				err := openaiChat.do(context.Background(), openaiClient(srv, tc.opts(srv.Base())))
				if (err == nil) != tc.ok {
					t.Errorf("error %v, want success: %v", err, tc.ok)
				}
				want := 6 * time.Minute
				if !tc.ok {
					want = 5 * time.Minute
				}
				if got, d := srv.Hits(openaiChat.path), time.Since(start); got != 1 || d != want {
					t.Errorf("%d server attempts in %v, want 1 in %v", got, d, want)
				}
			})
		})
	}
}

// TestOpenAITokensSpentHoldsNothing shows what docs/sdks.md says of a
// spent tokens quota: after a response announcing x-ratelimit-remaining-
// tokens: 0 with x-ratelimit-reset-tokens: 6m0s (OpenAI's time to a full
// refill of a quota that refills continuously), the next completion is
// sent, as a plain client sends it, with or without resilient's rate
// limiter. (Until 2026-11-30 the limiter refused every POST to the host
// for those 6 minutes.)
func TestOpenAITokensSpentHoldsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []resilient.Option
		sent int
	}{
		{"Recipe", nil, 2},
		{"WithoutRateLimit", []resilient.Option{resilient.WithoutRateLimit()}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := openaiAPI(new(atomic.Int64))
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					h := w.Header()
					h.Set("X-Ratelimit-Limit-Requests", "500")
					h.Set("X-Ratelimit-Remaining-Requests", "499")
					h.Set("X-Ratelimit-Reset-Requests", "120ms")
					h.Set("X-Ratelimit-Limit-Tokens", "30000")
					h.Set("X-Ratelimit-Remaining-Tokens", "0")
					h.Set("X-Ratelimit-Reset-Tokens", "6m0s")
					api.ServeHTTP(w, r)
				}))
				c := openaiClient(srv, OpenAIOptions(srv.Base(), tc.opts...))
				if err := openaiChat.do(context.Background(), c); err != nil {
					t.Fatalf("the first completion: %v", err)
				}
				time.Sleep(10 * time.Second)
				err := openaiChat.do(context.Background(), c)
				if limited := errors.Is(err, resilient.ErrRateLimited); limited != (tc.sent == 1) {
					t.Errorf("the second completion, 10s later: error %v; want resilient.ErrRateLimited: %v", err, tc.sent == 1)
				}
				if got := srv.Hits(openaiChat.path); got != tc.sent {
					t.Errorf("%d completions sent, want %d", got, tc.sent)
				}
			})
		})
	}
}

// TestOpenAIStream shows what docs/sdks.md says of a streamed completion
// (server-sent events) that takes longer than resilient's budget, 5
// minutes by default: resilient hands the stream over once its headers
// came and never cuts it, with the recipe or under the default budget, in
// one attempt; option.WithRequestTimeout bounds the stream's body too, as
// the call's context does: a 7-minute stream under a 45-second request
// timeout is cut there. (Until 2026-12-01 the page said that
// neither bounds a streamed answer's body.)
func TestOpenAIStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(base http.RoundTripper) []option.RequestOption
		chunks int
		took   time.Duration
	}{
		{"Recipe", openaiRecipe, 14, 7 * time.Minute},
		{"DefaultBudget", func(base http.RoundTripper) []option.RequestOption {
			return []option.RequestOption{option.WithHTTPClient(&http.Client{Transport: resilient.New(base)}), option.WithMaxRetries(0)}
		}, 14, 7 * time.Minute},
		{"RequestTimeout", func(base http.RoundTripper) []option.RequestOption {
			return append(openaiRecipe(base), option.WithRequestTimeout(45*time.Second))
		}, 2, 45 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					for range 14 { // a chunk every 30 s
						_, _ = w.Write([]byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1771336800,"model":"gpt-5.4-mini",` +
							`"choices":[{"index":0,"delta":{"content":"Hi"}}]}` + "\n\n"))
						w.(http.Flusher).Flush()
						time.Sleep(30 * time.Second)
					}
					_, _ = w.Write([]byte("data: [DONE]\n\n"))
				}))
				c := openaiClient(srv, tc.opts(srv.Base()))
				start := time.Now()
				s := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
					Model:    openai.ChatModelGPT5_4Mini,
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
				})
				defer s.Close()
				n := 0
				for s.Next() {
					n++
				}
				cut := errors.Is(s.Err(), context.DeadlineExceeded)
				if n != tc.chunks || cut != (tc.chunks < 14) || time.Since(start) != tc.took {
					t.Errorf("%d chunks in %v, error %v; want %d in %v", n, time.Since(start), s.Err(), tc.chunks, tc.took)
				}
				if got := srv.Hits(openaiChat.path); got != 1 {
					t.Errorf("%d server attempts, want 1", got)
				}
			})
		})
	}
}

// TestOpenAIPausePerModel shows the recipe's rate-limit partitions following
// OpenAI's limits, which it counts per model: while a completion of one
// model waits out a 429's retry-after-ms of 30 seconds, a completion of
// another model goes at once, as through a plain client. In resilient's
// default partition (every POST to the host with the key) it waited the
// 30 s too, or, under a deadline shorter than the pause, failed with
// resilient.ErrRateLimited without being sent.
func TestOpenAIPausePerModel(t *testing.T) {
	for _, tc := range openaiRecipeAndPlain {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := openaiAPI(new(atomic.Int64))
				var limited, answered atomic.Int64
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					if bytes.Contains(body, []byte(`"model":"gpt-5.4"`)) {
						limited.Add(1)
						w.Header().Set("Retry-After-Ms", "30000")
						w.Header().Set("Retry-After", "30")
						openaiJSON(w, http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached for gpt-5.4 on tokens per min (TPM): Limit 30000, Used 30000, Requested 900.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`)
						return
					}
					answered.Add(1)
					r.Body = io.NopCloser(bytes.NewReader(body))
					api.ServeHTTP(w, r)
				}))
				c := openaiClient(srv, tc.opts(srv.Base()))
				done := make(chan error)
				go func() {
					_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
						Model:    openai.ChatModel("gpt-5.4"),
						Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
					})
					done <- err
				}()
				synctest.Wait() // gpt-5.4's completion got its 429 (and, in the recipe, waits for its retry)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				if err := openaiChat.do(ctx, c); err != nil {
					t.Errorf("gpt-5.4-mini's completion, sent while gpt-5.4 was rate limited: %v", err)
				}
				if d := time.Since(start); d != 0 || answered.Load() != 1 {
					t.Errorf("gpt-5.4-mini's completion waited %v for gpt-5.4's 429 and was sent %d times; want at once, once", d, answered.Load())
				}
				<-done
			})
		})
	}
}

// TestOpenAIRateKey checks the partition names openaiRateKey gives: the
// model of a JSON body, else the host and the class of the method, and a
// tag of the credential, never the key itself.
func TestOpenAIRateKey(t *testing.T) {
	req := func(method, body, key string) *http.Request {
		r, _ := http.NewRequest(method, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("Authorization", "Bearer "+key)
		return r
	}
	a := openaiRateKey(req(http.MethodPost, `{"messages":[{"role":"user","content":"\"model\":\"x\""}],"model":"gpt-5.4"}`, "sk-a"))
	if !strings.HasPrefix(a, "api.openai.com model gpt-5.4 ") || strings.Contains(a, "sk-a") {
		t.Errorf("a completion of gpt-5.4: %q", a)
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		same bool
	}{
		{"SameModelAndKey", req(http.MethodPost, `{"model":"gpt-5.4","messages":[]}`, "sk-a"), true},
		{"OtherModel", req(http.MethodPost, `{"model":"gpt-5.4-mini","messages":[]}`, "sk-a"), false},
		{"OtherKey", req(http.MethodPost, `{"model":"gpt-5.4","messages":[]}`, "sk-b"), false},
		{"NoModel", req(http.MethodPost, `{"input":"x"}`, "sk-a"), false},
	} {
		if got := openaiRateKey(tc.r); (got == a) != tc.same {
			t.Errorf("%s: %q, want the same partition as %q: %v", tc.name, got, a, tc.same)
		}
	}
	if got := openaiRateKey(req(http.MethodGet, "", "sk-a")); !strings.HasPrefix(got, "api.openai.com reads ") {
		t.Errorf("a GET: %q, want the host's reads", got)
	}
}

// TestOpenAIReaderBody sends a completion whose body the caller gives as a
// *bytes.Reader (Client.Post, or option.WithRequestBody), for which
// openai-go's GetBody rewinds and returns the very reader the request
// sends. openaiRateKey, which reads the model through GetBody, drained
// that reader before the attempt was sent: the completion went out with no
// body and failed, where a plain client sends it whole. A completion
// answered 429 is resent whole too (openai-go's own retry of it, with a
// plain client, fails: the connection broken, its body length 0).
func TestOpenAIReaderBody(t *testing.T) {
	const body = `{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"Say hello"}]}`
	for _, tc := range openaiRecipeAndPlain {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := openaiAPI(new(atomic.Int64))
				var (
					mu      sync.Mutex
					bodies  []string // the bodies the server read, one per attempt
					limited bool     // whether the next attempt is answered 429
				)
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					mu.Lock()
					bodies = append(bodies, string(b))
					limit := limited
					limited = false
					mu.Unlock()
					if limit {
						openaiRateLimited(w, r)
						return
					}
					r.Body = io.NopCloser(bytes.NewReader(b))
					api.ServeHTTP(w, r)
				}))
				c := openaiClient(srv, tc.opts(srv.Base()))
				post := func() error {
					var out openai.ChatCompletion
					return c.Post(context.Background(), "chat/completions", bytes.NewReader([]byte(body)), &out)
				}
				for _, send := range []struct {
					name     string
					limited  bool
					attempts int
					do       func() error
				}{
					{"Post", false, 1, post},
					{"WithRequestBody", false, 1, func() error {
						_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{},
							option.WithRequestBody("application/json", bytes.NewReader([]byte(body))))
						return err
					}},
					{"PostAfter429", true, 2, post},
				} {
					if send.limited && tc.name != "Recipe" {
						continue
					}
					mu.Lock()
					bodies, limited = nil, send.limited
					mu.Unlock()
					if err := send.do(); err != nil {
						t.Errorf("%s: %v", send.name, err)
					}
					mu.Lock()
					if len(bodies) != send.attempts {
						t.Errorf("%s: %d attempts, want %d", send.name, len(bodies), send.attempts)
					}
					for i, b := range bodies {
						if b != body {
							t.Errorf("%s: attempt %d carried the body %q, want %q", send.name, i+1, b, body)
						}
					}
					mu.Unlock()
				}
			})
		})
	}
}

// openaiRecipeAndPlain are the client options of the tests that compare the
// recipe with a plain client (openai-go's retries off in both).
var openaiRecipeAndPlain = []struct {
	name string
	opts func(base http.RoundTripper) []option.RequestOption
}{
	{"Recipe", openaiRecipe},
	{"PlainClient", func(base http.RoundTripper) []option.RequestOption {
		return []option.RequestOption{option.WithHTTPClient(&http.Client{Transport: base}), option.WithMaxRetries(0)}
	}},
}

// TestOpenAIRateKeyNilGetBody: a request whose GetBody returns no body and
// no error (a caller's bug; net/http's Transport turns it into an error
// when it resends) gets the host's partition of writes, as a request
// without a model: openaiRateKey panicked on it, in the caller's goroutine.
func TestOpenAIRateKeyNilGetBody(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(`{"model":"gpt-5.4"}`))
	r.Header.Set("Content-Type", "application/json")
	r.GetBody = func() (io.ReadCloser, error) { return nil, nil }
	if got := openaiRateKey(r); strings.Contains(got, " model ") {
		t.Errorf("openaiRateKey = %q, want no model's partition", got)
	}
}

// TestOpenAIOverloadedModelLocksOutNoOther: OpenAI answers one model's
// completions with its 503 ("overloaded") while it serves the others. A
// caller that alternates, once a second for 30 s, between the overloaded
// model and a healthy one gets every healthy completion, as through a
// plain client: one model's failures do not open a breaker that refuses
// the other model's calls. Until 2026-12-03 the recipe kept resilient's
// per-host breaker, which the overloaded model's 503s opened after 20
// attempts, and the healthy model's completions failed with
// resilient.ErrCircuitOpen without being sent.
func TestOpenAIOverloadedModelLocksOutNoOther(t *testing.T) {
	for _, tc := range openaiRecipeAndPlain {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := openaiAPI(new(atomic.Int64))
				var overloaded, answered atomic.Int64
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					if bytes.Contains(body, []byte(`"model":"gpt-5.4"`)) {
						overloaded.Add(1)
						openaiJSON(w, http.StatusServiceUnavailable, `{"error":{"message":"The engine is currently overloaded, please try again later.","type":"server_error","param":null,"code":null}}`)
						return
					}
					answered.Add(1)
					r.Body = io.NopCloser(bytes.NewReader(body))
					api.ServeHTTP(w, r)
				}))
				c := openaiClient(srv, tc.opts(srv.Base()))
				const calls = 30
				failed := 0
				for range calls {
					_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
						Model:    openai.ChatModel("gpt-5.4"),
						Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
					})
					if err == nil {
						t.Fatal("gpt-5.4's completion succeeded against its 503")
					}
					if err := openaiChat.do(context.Background(), c); err != nil {
						if failed == 0 {
							t.Logf("gpt-5.4-mini's first failed completion: %v", err)
						}
						failed++
					}
					time.Sleep(time.Second)
				}
				if failed != 0 || answered.Load() != calls {
					t.Errorf("gpt-5.4-mini: %d of %d completions failed, %d answered; want every one answered, as gpt-5.4's 503s concern gpt-5.4 only", failed, calls, answered.Load())
				}
			})
		})
	}
}

// unavailableBehindModelBreakers returns a Transport with the recipe's
// breakers (openaiBreakerKey, opened by one failure) over a base that
// answers every request with a 503, and the count of requests it sent.
func unavailableBehindModelBreakers() (*resilient.Transport, *atomic.Int64) {
	sent := new(atomic.Int64)
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	tr := resilient.New(base, resilient.WithMaxRetries(0),
		resilient.WithBreaker(resilient.BreakerSettings{Key: openaiBreakerKey, ConsecutiveFailures: 1}))
	return tr, sent
}

// TestOpenAIResetHostNamesAModelsBreaker checks what docs/sdks.md says of
// the recipe's breakers: Transport.ResetHost(host) clears the host's
// breaker, not a model's, and ResetHost of the model's key clears that
// one, so that its next completion is sent.
func TestOpenAIResetHostNamesAModelsBreaker(t *testing.T) {
	tr, sent := unavailableBehindModelBreakers()
	complete := func() error {
		body := []byte(`{"model":"gpt-5.4","messages":[]}`)
		req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	complete() // a 503: the model's breaker opens
	for _, tc := range []struct {
		reset string
		sent  bool
	}{{"api.openai.com", false}, {"api.openai.com model gpt-5.4", true}} {
		tr.ResetHost(tc.reset)
		before := sent.Load()
		err := complete()
		if got := sent.Load() > before; got != tc.sent || got == errors.Is(err, resilient.ErrCircuitOpen) {
			t.Errorf("after ResetHost(%q): sent %v (%v), want sent %v", tc.reset, got, err, tc.sent)
		}
	}
}

// TestOpenAIRateKeyTellsCredentialsApart: OpenAI counts its limits per
// organization and project, and Azure's per resource key: requests for the
// same model under another OpenAI-Organization, another OpenAI-Project or
// another Api-Key get partitions of their own, so that one's 429 pauses
// no other's calls. A completion whose prompt is long (its model named
// after 100 KB of messages) is in its model's partition, as a short one;
// a HEAD and an OPTIONS are the host's reads, as a GET.
func TestOpenAIRateKeyTellsCredentialsApart(t *testing.T) {
	req := func(body string, header ...string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		for i := 0; i < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	const short = `{"model":"gpt-5.4","messages":[]}`
	a := openaiRateKey(req(short, "Authorization", "Bearer sk-a", "OpenAI-Organization", "org-1", "OpenAI-Project", "proj-1"))
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"OtherOrganization", req(short, "Authorization", "Bearer sk-a", "OpenAI-Organization", "org-2", "OpenAI-Project", "proj-1")},
		{"OtherProject", req(short, "Authorization", "Bearer sk-a", "OpenAI-Organization", "org-1", "OpenAI-Project", "proj-2")},
	} {
		if got := openaiRateKey(tc.r); got == a {
			t.Errorf("%s: partition %q, want another than the first credential's", tc.name, got)
		}
	}
	if openaiRateKey(req(short, "Api-Key", "azure-a")) == openaiRateKey(req(short, "Api-Key", "azure-b")) {
		t.Error("two Azure Api-Keys share a partition")
	}
	long := `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 100<<10) + `"}],"model":"gpt-5.4"}`
	if got := openaiRateKey(req(long, "Authorization", "Bearer sk-a", "OpenAI-Organization", "org-1", "OpenAI-Project", "proj-1")); got != a {
		t.Errorf("a long prompt: partition %q, want its model's, %q", got, a)
	}
	for _, method := range []string{http.MethodHead, http.MethodOptions} {
		r, _ := http.NewRequest(method, "https://api.openai.com/v1/models", nil)
		if got := openaiRateKey(r); !strings.HasPrefix(got, "api.openai.com reads ") {
			t.Errorf("a %s: %q, want the host's reads", method, got)
		}
	}
}

// TestOpenAIResetHostClearsTheHostsBreaker: a request that names no model
// (a GET of the models) goes through its host's breaker, named by the
// host, so that Transport.ResetHost(host) clears it and the next GET is
// sent.
func TestOpenAIResetHostClearsTheHostsBreaker(t *testing.T) {
	tr, sent := unavailableBehindModelBreakers()
	list := func() error {
		req, _ := http.NewRequest(http.MethodGet, "https://api.openai.com/v1/models", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	list() // a 503: the host's breaker opens
	if err := list(); !errors.Is(err, resilient.ErrCircuitOpen) {
		t.Fatalf("the GET after a 503: %v, want refused by the host's breaker", err)
	}
	tr.ResetHost("api.openai.com")
	before := sent.Load()
	if err := list(); sent.Load() == before || errors.Is(err, resilient.ErrCircuitOpen) {
		t.Errorf("after ResetHost(%q): %v, want the GET sent", "api.openai.com", err)
	}
}

// openaiQuotaSpentAnswer is OpenAI's 429 for an account without credits or past
// its monthly spend: code insufficient_quota, no wait in its headers.
// OpenAI's error codes guide gives its fix as buying credits or raising
// the limit: no retry within a call passes it.
func openaiQuotaSpentAnswer(w http.ResponseWriter, _ *http.Request) {
	openaiJSON(w, http.StatusTooManyRequests, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`)
}

// TestOpenAIInsufficientQuota shows a completion answered with OpenAI's
// 429 insufficient_quota returned after one attempt, as an *openai.Error
// with that code, where a 429 of a rate limit is resent (TestOpenAIErrors):
// until 2026-12-03 the recipe resent it 5 times, with backoff, each a
// request the account's spent quota refused.
func TestOpenAIInsufficientQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(openaiQuotaSpentAnswer))
		err := openaiChat.do(context.Background(), openaiClient(srv, OpenAIOptions(srv.Base())))
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != http.StatusTooManyRequests || oe.Code != "insufficient_quota" {
			t.Errorf("error %T %v; want an *openai.Error 429 insufficient_quota", err, err)
		}
		if got := srv.Hits(openaiChat.path); got != 1 {
			t.Errorf("%d server attempts, want 1", got)
		}
	})
}
