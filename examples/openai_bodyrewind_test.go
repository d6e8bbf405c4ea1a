package examples

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/resilienthttp/resilient"
)

// TestOpenAIBodyModelRewindsNoBodyBeingSent: the recipe's keys
// (openaiRateKey, openaiBreakerKey) name the model a request's body names.
// They read it through the request's GetBody and called GetBody again to
// rewind it; openai-go's, for a body given as a *bytes.Reader (Client.Post,
// option.WithRequestBody), seeks back the one reader the request sends,
// and openai-go wraps that body (closeOnceReadCloser), which resilient
// therefore does not replay from memory: the keys were given openai-go's
// GetBody. A hedged attempt's keys are read again as its copy is allowed,
// while the attempt's writer still sends that reader (a slow upload, what
// the copy is for); a retry's, and the decision to retry, while the
// writer of an attempt answered early (a 503 before the body was read)
// still sends it. The reader rewound under the writer, the server got the
// body's first bytes again in place of the rest, a body as long as the
// one sent but not it (and -race reports the writer's Read against the
// key's Seek), where a plain client sends it as it is. Each body the
// server reads whole must be the one sent, and the call succeed.
func TestOpenAIBodyModelRewindsNoBodyBeingSent(t *testing.T) {
	body := []byte(`{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"Say hello"}],"metadata":{"pad":"` +
		strings.Repeat("a", 256<<10) + `"}}`)
	for _, tc := range []struct {
		name  string
		early bool // the first request is answered 503 before its body is read; else its upload is slow, and hedged
		opts  []resilient.Option
		plain bool // openai-go's own client, without resilient (its retries off)
	}{
		{"PlainSlowUpload", false, nil, true},
		{"RetryAfterEarly503", true, []resilient.Option{resilient.WithBackoff(5*time.Millisecond, 5*time.Millisecond)}, false},
		{"HedgedSlowUpload", false, []resilient.Option{resilient.WithHedging(resilient.Hedging{Delay: 20 * time.Millisecond})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				var mu sync.Mutex
				var whole, wrong int // the bodies the server read whole: as sent, or not
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n := hits.Add(1)
					var head []byte
					if n == 1 {
						// 64 KiB of the body, then nothing for a while:
						// the writer waits on the connection (a pipe).
						head = make([]byte, 64<<10)
						if _, err := io.ReadFull(r.Body, head); err != nil {
							return
						}
						if tc.early {
							// A whole answer, read to its end at once.
							const overloaded = `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`
							w.Header().Set("Content-Length", strconv.Itoa(len(overloaded)))
							openaiJSON(w, http.StatusServiceUnavailable, overloaded)
							w.(http.Flusher).Flush()
						}
						time.Sleep(300 * time.Millisecond)
					}
					rest, err := io.ReadAll(r.Body)
					if err != nil {
						return // a copy canceled: cut, as the server sees
					}
					mu.Lock()
					if got := append(head, rest...); bytes.Equal(got, body) {
						whole++
					} else {
						wrong++
						t.Errorf("request %d: the server read %d bytes, not the %d sent (first difference at byte %d)", n, len(got), len(body), firstDiff(got, body))
					}
					mu.Unlock()
					if n == 1 && tc.early {
						return
					}
					openaiJSON(w, http.StatusOK, `{"id":"chatcmpl-1","object":"chat.completion","created":1771336800,"model":"gpt-5.4-mini",`+
						`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}`)
				}))
				u, _ := url.Parse(srv.URL)
				copts := OpenAIOptions(srv.Base(), append([]resilient.Option{resilient.WithKeyHonoringHosts(u.Host)}, tc.opts...)...)
				if tc.plain {
					copts = []option.RequestOption{option.WithHTTPClient(&http.Client{Transport: srv.Base()}), option.WithMaxRetries(0)}
				}
				c := openai.NewClient(append(copts, option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("sk-test"))...)
				var out openai.ChatCompletion
				if err := c.Post(context.Background(), "chat/completions", bytes.NewReader(body), &out); err != nil {
					t.Fatalf("Post: %v", err)
				}
				if len(out.Choices) != 1 || out.Choices[0].Message.Content != "Hello!" {
					t.Errorf("completion %+v, want Hello!", out.Choices)
				}
				time.Sleep(time.Second) // the first request's handler reads on
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if wrong != 0 || whole == 0 {
					t.Errorf("the server read %d bodies as sent and %d that differ; want some and none", whole, wrong)
				}
			})
		})
	}
}

// firstDiff returns the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
