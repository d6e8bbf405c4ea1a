package examples

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
// 5-minute budget: a completion may take longer to start answering.
// OpenAI counts its rate limits per model: the Transport's rate-limit
// partitions follow them (openaiRateKey: the model and the request's
// key), so that the pause after one model's 429 holds no other model's
// calls. OpenAI also fails one model at a time (a 503 "The engine is
// currently overloaded"): each model has a circuit breaker of its own
// (openaiBreakerKey), so that one model's failures refuse no other
// model's calls, which a plain client would have had answered; a
// resilient.WithBreaker among opts replaces that key: give it Key:
// openaiBreakerKey. A 429 insufficient_quota (no credits left) is returned
// after one attempt (openaiQuotaSpent); a resilient.WithClassifier among
// opts replaces that rule. Use it as
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
		resilient.WithMaxElapsed(0),                                             // a completion may take longer than 5 minutes to answer
		resilient.WithRateLimitKey(openaiRateKey),                               // OpenAI counts each model's limits apart
		resilient.WithBreaker(resilient.BreakerSettings{Key: openaiBreakerKey}), // one model overloaded must not refuse the others' calls
		resilient.WithClassifier(openaiQuotaSpent),                              // a 429 insufficient_quota waits for credits, not for a retry
	}, opts...)
	return []option.RequestOption{
		option.WithHTTPClient(&http.Client{Transport: resilient.New(base, opts...)}),
		option.WithMaxRetries(0),               // resilient retries; openai-go's 2 retries would stack on its own and resend writes
		option.WithMiddleware(openaiNameModel), // the model is read once, before the body is sent
	}
}

// openaiQuotaSpent is the recipe's Classifier: OpenAI's 429 whose code is
// insufficient_quota (an account without credits, or past its monthly
// spend) is Permanent, which no retry within a call passes; every other
// answer keeps the default decision, a 429 of a rate limit included.
func openaiQuotaSpent(_ *http.Response, apiErr *resilient.APIError, _ error, def resilient.Class) resilient.Class {
	if apiErr != nil && apiErr.StatusCode == http.StatusTooManyRequests && apiErr.Code == "insufficient_quota" {
		return resilient.Permanent
	}
	return def
}

// openaiRateKey names the rate-limit partition of a request after the
// model its JSON body names (openaiRequestModel) and its credential: OpenAI
// counts its limits per model, and per organization and project (the API
// key, and the OpenAI-Organization and OpenAI-Project headers; Azure's
// Api-Key), named with a one-way tag, never the key. A request that names
// no model (a GET, a file upload) is named after its host and the class of
// its method, reads apart from writes, as resilient's default partitions
// are.
func openaiRateKey(r *http.Request) string {
	key := r.URL.Host + " writes"
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		key = r.URL.Host + " reads"
	}
	if model := openaiRequestModel(r); model != "" {
		key = r.URL.Host + " model " + model
	}
	h := r.Header
	sum := sha256.Sum256([]byte(h.Get("Authorization") + "\n" + h.Get("Api-Key") + "\n" + h.Get("OpenAI-Organization") + "\n" + h.Get("OpenAI-Project")))
	return key + " " + hex.EncodeToString(sum[:8])
}

// openaiBreakerKey names the circuit breaker of a request after the model
// its JSON body names (openaiRequestModel): OpenAI overloads and fails one
// model at a time, and the breaker that model's failures open refuses its calls
// only. A request that names no model goes through its host's breaker,
// named by the host, as Transport.ResetHost names it. The key holds no
// credential: a model's health is the same for every key.
func openaiBreakerKey(r *http.Request) string {
	if model := openaiRequestModel(r); model != "" {
		return r.URL.Host + " model " + model
	}
	return r.URL.Host
}

// openaiModelKey is the key of the context value in which openaiNameModel
// passes a request's model on to openaiRequestModel.
type openaiModelKey struct{}

// openaiNameModel is the recipe's openai-go middleware: it reads the model
// of the request's body (openaiBodyModel) once, before the request is
// handed to the http.Client, and passes it on in the request's context,
// where the keys of every attempt and hedged copy read it
// (openaiRequestModel).
// Read from the body by the keys themselves, it rewound the body under
// its writer: openai-go wraps every body (which resilient therefore does
// not replay from its bytes) and, for a body given as a *bytes.Reader
// (Client.Post, option.WithRequestBody), its GetBody seeks back the one
// reader the request sends, which an attempt's transport still reads when
// a copy of it is hedged (a slow upload) or after an early answer: the
// server got the body's first bytes again in place of the rest, and the
// call failed, where a plain client's succeeds.
func openaiNameModel(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	return next(req.WithContext(context.WithValue(req.Context(), openaiModelKey{}, openaiBodyModel(req))))
}

// openaiRequestModel returns the model of a request: the one openaiNameModel
// read, else, for a request that did not pass it, the one its body names
// (openaiBodyModel).
func openaiRequestModel(r *http.Request) string {
	if model, ok := r.Context().Value(openaiModelKey{}).(string); ok {
		return model
	}
	return openaiBodyModel(r)
}

// openaiBodyModel returns the model a request's JSON body names, "" for none:
// the body is read through GetBody, up to 1 MiB, then GetBody is called
// again (openai-go's, for a body given as a *bytes.Reader, rewinds and
// returns the reader the request sends, which the read would otherwise
// leave drained, and the request sent without its body).
func openaiBodyModel(r *http.Request) string {
	if r.GetBody == nil || r.ContentLength <= 0 || r.ContentLength > 1<<20 ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return ""
	}
	body, err := r.GetBody()
	if err != nil || body == nil {
		return ""
	}
	var params struct {
		Model string `json:"model"`
	}
	if json.NewDecoder(io.LimitReader(body, r.ContentLength)).Decode(&params) != nil {
		params.Model = ""
	}
	body.Close()
	if again, err := r.GetBody(); err == nil && again != nil {
		again.Close() // rewinds a body GetBody shares with the request (openai-go's *bytes.Reader), read before it is sent
	}
	return params.Model
}
