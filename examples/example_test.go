package examples_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-github/v84/github"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/examples"
	"github.com/resilienthttp/resilient/resilienttest"
	"github.com/slack-go/slack"
	"github.com/stripe/stripe-go/v85"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// fast keeps the examples quick: resilient's default backoff starts at
// 500ms.
var fast = resilient.WithBackoff(time.Millisecond, 10*time.Millisecond)

// failing answers the first n requests with fail, the others with ok, and
// counts them all in hits.
func failing(n int64, hits *atomic.Int64, fail, ok http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= n {
			fail(w, r)
			return
		}
		ok(w, r)
	}
}

func writeJSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func ExampleStripeBackendConfig() {
	var hits atomic.Int64
	srv := httptest.NewServer(failing(2, &hits,
		writeJSON(500, `{"error":{"type":"api_error","message":"An unknown error occurred."}}`),
		writeJSON(200, `{"id":"cus_123","object":"customer"}`)))
	defer srv.Close()

	cfg := examples.StripeBackendConfig(nil, fast)
	cfg.URL = stripe.String(srv.URL) // a local server instead of api.stripe.com
	sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
	c, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.ID, "after", hits.Load(), "attempts")
	// Output: cus_123 after 3 attempts
}

func ExampleAWSHTTPClient() {
	var hits atomic.Int64
	srv := httptest.NewServer(failing(1, &hits,
		writeJSON(400, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}`),
		writeJSON(200, `{"Item":{"id":{"S":"o-1"}}}`)))
	defer srv.Close()

	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(srv.URL), // a local server instead of DynamoDB
		HTTPClient:   examples.AWSHTTPClient(nil),
	}
	out, err := dynamodb.NewFromConfig(cfg).GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String("orders"),
		Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "o-1"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Item["id"].(*types.AttributeValueMemberS).Value, "after", hits.Load(), "attempts (the SDK retried the throttled one)")
	// Output: o-1 after 2 attempts (the SDK retried the throttled one)
}

func ExampleNewGitHubClient() {
	var hits atomic.Int64
	srv := httptest.NewServer(failing(1, &hits,
		writeJSON(502, `{"message":"Server Error"}`),
		writeJSON(201, `{"number":7,"title":"flaky build"}`)))
	defer srv.Close()

	gh := examples.NewGitHubClient(nil, fast).WithAuthToken("ghp_example")
	gh.BaseURL, _ = url.Parse(srv.URL + "/") // a local server instead of api.github.com
	_, _, err := gh.Issues.Create(context.Background(), "octo", "repo", &github.IssueRequest{Title: github.Ptr("flaky build")})
	fmt.Println(err != nil, "after", hits.Load(), "attempt: a POST is not resent to GitHub after a 502")
	// Output: true after 1 attempt: a POST is not resent to GitHub after a 502
}

func ExampleOpenAIOptions() {
	var hits atomic.Int64
	srv := httptest.NewServer(failing(1, &hits,
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After-Ms", "1")
			writeJSON(429, `{"error":{"message":"Rate limit reached for gpt-5.4-mini on requests per min (RPM).","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)(w, r)
		},
		writeJSON(200, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}`)))
	defer srv.Close()

	opts := append(examples.OpenAIOptions(nil, fast),
		option.WithBaseURL(srv.URL+"/v1/"), // a local server instead of api.openai.com
		option.WithAPIKey("sk-example"))
	client := openai.NewClient(opts...)
	c, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    openai.ChatModelGPT5_4Mini,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Choices[0].Message.Content, "after", hits.Load(), "attempts (a 429 is resent: the API did not process it)")
	// Output: Hello! after 2 attempts (a 429 is resent: the API did not process it)
}

// toLocal sends every request to a local server, whatever its URL's host:
// discordgo calls https://discord.com/api/v9/.
type toLocal struct{ host string }

func (t toLocal) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "http", t.host, ""
	return http.DefaultTransport.RoundTrip(r)
}

func ExampleNewDiscordSession() {
	var hits atomic.Int64
	srv := httptest.NewServer(failing(2, &hits,
		writeJSON(502, `{"message": "502: Bad Gateway", "code": 0}`),
		writeJSON(200, `[{"id":"1","channel_id":"42","content":"hello"}]`)))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	s, err := examples.NewDiscordSession("Bot example-token", toLocal{u.Host}, fast) // a local server instead of discord.com
	if err != nil {
		fmt.Println(err)
		return
	}
	msgs, err := s.ChannelMessages("42", 50, "", "", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msgs[0].Content, "after", hits.Load(), "attempts")
	// Output: hello after 3 attempts
}

func ExampleSlackHTTPClient() {
	var hits atomic.Int64
	srv := httptest.NewServer(failing(1, &hits,
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0")
			writeJSON(429, `{"ok":false,"error":"ratelimited"}`)(w, r)
		},
		writeJSON(200, `{"ok":true,"channel":"C123","ts":"1771336800.000100"}`)))
	defer srv.Close()

	api := slack.New("xoxb-example", examples.SlackHTTPClient(nil, fast),
		slack.OptionAPIURL(srv.URL+"/api/")) // a local server instead of slack.com
	channel, _, err := api.PostMessageContext(context.Background(), "C123", slack.MsgOptionText("build failed", false))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("posted to", channel, "after", hits.Load(), "attempts")
	// Output: posted to C123 after 2 attempts
}

func ExampleNewRestyClient() {
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithScript(resilienttest.RouteCreatePost,
		resilienttest.Respond(503), resilienttest.Respond(503)))
	defer srv.Close()

	c := examples.NewRestyClient(srv.Transport(), fast)
	resp, err := c.R().
		SetHeader("Idempotency-Key", "post-42"). // this API deduplicates by key: the write may be resent
		SetBody(map[string]string{"text": "hello"}).
		Post(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println(err)
		return
	}
	st := srv.Stats()
	fmt.Println(resp.StatusCode(), "after", st.Attempts[resilienttest.RouteCreatePost], "attempts,", st.StoredWrites, "post stored")
	// Output: 201 after 3 attempts, 1 post stored
}

func ExampleNewRetryableClient() {
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithScript(resilienttest.RouteListPosts,
		resilienttest.Respond(500), resilienttest.Respond(500), resilienttest.Respond(500),
		resilienttest.Respond(500), resilienttest.Respond(500), resilienttest.Respond(500)))
	defer srv.Close()

	c := examples.NewRetryableClient(srv.Transport(), fast)
	resp, err := c.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resilient.ParseError(resp).Code, "after", srv.Stats().Attempts[resilienttest.RouteListPosts], "attempts")
	// Output: 500 service_unavailable after 6 attempts
}

func ExampleNewClientCredentialsClient() {
	var tokens atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /token", failing(1, &tokens,
		writeJSON(503, `{"error":"temporarily_unavailable"}`),
		writeJSON(200, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)))
	mux.HandleFunc("GET /v1/me", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.Header.Get("Authorization"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	client := examples.NewClientCredentialsClient(context.Background(), conf, nil, fast)
	resp, err := client.Get(srv.URL + "/v1/me")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", tokens.Load(), "token requests")
	// Output: 200 after 2 token requests
}

func ExampleNewRefreshTokenClient() {
	var tokens atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /token", failing(1, &tokens,
		writeJSON(503, `{"error":"temporarily_unavailable"}`),
		writeJSON(200, `{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}`)))
	mux.HandleFunc("GET /v1/me", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.Header.Get("Authorization"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok := &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Minute)} // expired: refreshed by the first call
	client := examples.NewRefreshTokenClient(context.Background(), conf, tok, nil, fast)
	resp, err := client.Get(srv.URL + "/v1/me")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", tokens.Load(), "token requests")
	// Output: 200 hello, Bearer at-2 after 2 token requests
}

func ExampleNewTracedClient() {
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithScript(resilienttest.RouteListPosts,
		resilienttest.Respond(503), resilienttest.Respond(503)))
	defer srv.Close()

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	client := examples.NewTracedClient(resilient.New(srv.Transport(), fast), otelhttp.WithTracerProvider(tp))
	resp, err := client.Get(srv.URL + "/v1/posts")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", srv.Stats().Attempts[resilienttest.RouteListPosts], "attempts,", len(rec.Ended()), "span")
	// Output: 200 after 3 attempts, 1 span
}
