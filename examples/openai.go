package examples

import (
	"net/http"
	"time"

	"github.com/openai/openai-go/v3/option"
	"github.com/resilienthttp/resilient"
)

// OpenAIOptions returns the openai-go client options that make a
// resilient.Transport over base, configured with opts, the only layer that
// retries. A nil base means http.DefaultTransport, cloned to wait at most
// 10 minutes for an answer to start, as openai-go's own client does.
// openai-go's retries are turned off: each of its 3 attempts would be a
// call of resilient's (13 attempts for one failing GET on a fresh
// Transport, 18 for a POST answered 429), and it resends every POST after
// a 5xx, a 409 or a lost connection without an idempotency key (it sets
// none), so that a batch or a fine-tuning job the API created before its
// answer failed is created again: OpenAI does not deduplicate by key.
// resilient reads what openai-go reads (x-should-retry, retry-after-ms,
// Retry-After, the error object) and resends such a write only where it
// provably was not processed (a 429, a refused connection); a completion
// is such a write. For a client whose calls create nothing that a second
// call would duplicate (completions that are not stored, embeddings),
// name the API's host with resilient.WithKeyHonoringHosts, and resilient
// resends them after a 5xx too. Nor does it bound a call by resilient's
// 5-minute budget: a completion may take longer to start answering. Use it
// as
//
//	client := openai.NewClient(examples.OpenAIOptions(nil)...)
func OpenAIOptions(base http.RoundTripper, opts ...resilient.Option) []option.RequestOption {
	if base == nil {
		base = http.DefaultTransport
		if t, ok := base.(*http.Transport); ok {
			t = t.Clone()
			t.ResponseHeaderTimeout = 10 * time.Minute // as openai-go's own client: an answer that never starts fails the attempt
			base = t
		}
	}
	opts = append([]resilient.Option{
		resilient.WithMaxElapsed(0), // a completion may take longer than 5 minutes to answer
	}, opts...)
	return []option.RequestOption{
		option.WithHTTPClient(&http.Client{Transport: resilient.New(base, opts...)}),
		option.WithMaxRetries(0), // resilient retries; openai-go's 2 retries would stack on its own and resend writes
	}
}
