package examples

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/resilienthttp/resilient"
)

// dynamoError answers as DynamoDB does, with its JSON 1.0 error body.
func dynamoError(status int, errType, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Requestid", "REQ123")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#` + errType + `","message":"` + msg + `"}`))
	}
}

var (
	dynamoInternal = dynamoError(http.StatusInternalServerError, "InternalServerError", "Internal server error")
	dynamoThrottle = dynamoError(http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
)

// dynamoClient returns a DynamoDB client on httpClient (and, when retryer
// is not nil, that retryer) for srv.
func dynamoClient(srv *server, httpClient *http.Client, retryer func() aws.Retryer) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   httpClient,
		Retryer:      retryer,
	})
}

// dynamoGetItem makes one GetItem call with db.
func dynamoGetItem(db *dynamodb.Client) (*dynamodb.GetItemOutput, error) {
	return db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String("orders"),
		Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "o-1"}},
	})
}

// TestAWS measures the attempts of failing DynamoDB GetItem calls with the
// SDK's defaults over resilient.New (before), with AWSHTTPClient (after),
// and with the usual recipe the other SDKs get (the SDK's retries off,
// resilient retrying), which loses the retries of throttled calls. Each
// series runs on one client, whose retryer keeps its retry quota between
// calls, as resilient keeps its retry budget.
func TestAWS(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		row                   string
		fault                 http.HandlerFunc
		before, after, sdkOff measurement
	}{
		// DynamoDB's client makes 4 attempts (other services 3). Every
		// DynamoDB call is a POST, which resilient does not resend after
		// a 500 (AWS does not deduplicate by Idempotency-Key): 4 attempts
		// either way, until the SDK's retry quota (500 tokens, 14 a
		// retry) is spent.
		{"InternalServerError", "DynamoDB GetItem, 500 InternalServerError", dynamoInternal,
			measurement{4, 135, seriesCalls}, measurement{4, 135, seriesCalls}, measurement{1, 100, seriesCalls}},
		// A throttled call is a 400 with the code in the body: the SDK
		// retries it (5 tokens a retry), resilient does not.
		{"Throttling", "DynamoDB GetItem, 400 ThrottlingException", dynamoThrottle,
			measurement{4, 200, seriesCalls}, measurement{4, 200, seriesCalls}, measurement{1, 100, seriesCalls}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(client func(base http.RoundTripper) *http.Client, retryer func() aws.Retryer) (m measurement) {
				synctest.Test(t, func(t *testing.T) {
					srv := newServer(t, tc.fault)
					db := dynamoClient(srv, client(srv.Base()), retryer)
					m = series(seriesCalls, func() int { return srv.Hits("/") }, func(int) {
						if _, err := dynamoGetItem(db); err == nil {
							t.Fatal("GetItem succeeded against a failing server")
						}
					})
				})
				return m
			}
			before := measure(func(base http.RoundTripper) *http.Client {
				return &http.Client{Transport: resilient.New(base)}
			}, nil)
			after := measure(func(base http.RoundTripper) *http.Client { return AWSHTTPClient(base) }, nil)
			sdkOff := measure(func(base http.RoundTripper) *http.Client {
				return &http.Client{Transport: resilient.New(base)}
			}, func() aws.Retryer { return aws.NopRetryer{} })
			if before != tc.before || after != tc.after || sdkOff != tc.sdkOff {
				t.Errorf("server attempts: defaults %+v, recipe %+v, SDK retries off %+v; want %+v, %+v, %+v",
					before, after, sdkOff, tc.before, tc.after, tc.sdkOff)
			}
			checkDocRow(t, "aws-sdk-go-v2", tc.row, before, after)
		})
	}
}

// TestAWSRecovers shows the recipe's retries succeeding: a throttled
// attempt, a 500, then the item, in 3 server attempts.
func TestAWSRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n++
			switch n {
			case 1:
				dynamoThrottle(w, r)
			case 2:
				dynamoInternal(w, r)
			default:
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				_, _ = w.Write([]byte(`{"Item":{"id":{"S":"o-1"},"total":{"N":"42"}}}`))
			}
		}))
		out, err := dynamoGetItem(dynamoClient(srv, AWSHTTPClient(srv.Base()), nil))
		if err != nil {
			t.Fatalf("GetItem: %v", err)
		}
		if v, ok := out.Item["total"].(*types.AttributeValueMemberN); !ok || v.Value != "42" {
			t.Errorf("item %v, want total 42", out.Item)
		}
		if got := srv.Hits("/"); got != 3 {
			t.Errorf("%d server attempts, want 3", got)
		}
	})
}

// TestAWSBreakerRefusesSDKRetries shows what resilient adds under the
// SDK's retryer: once the host's breaker is open, the SDK's retries are
// refused without reaching the server, with an error that wraps
// resilient.ErrCircuitOpen.
func TestAWSBreakerRefusesSDKRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, dynamoInternal)
		client := AWSHTTPClient(srv.Base(), resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 2}))
		_, err := dynamoGetItem(dynamoClient(srv, client, nil))
		if !errors.Is(err, resilient.ErrCircuitOpen) {
			t.Errorf("error %v, want one wrapping resilient.ErrCircuitOpen", err)
		}
		if got := srv.Hits("/"); got != 2 {
			t.Errorf("%d server attempts, want 2 (the SDK's 3rd and 4th attempts refused by the open breaker)", got)
		}
	})
}

// TestAWSPauseAfter429 shows the shared pause resilient adds under the
// SDK: a 429's Retry-After (10 s) holds the SDK's retry, and every other
// call of the same credential to that host, for its wait; one longer than
// WithMaxRetryAfter (120 s) refuses the SDK's retries at once, with an
// error wrapping resilient.ErrRateLimited, without reaching AWS. AWS
// Signature Version 4 makes each request's Authorization anew: resilient
// took each signature for a credential of its own, gave every request a
// partition, and the pause held nothing (the SDK's retry went after its
// own backoff, under a second).
func TestAWSPauseAfter429(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		hits       int
		limited    bool
	}{
		{"10", 2, false},
		{"120", 1, true},
	} {
		t.Run("RetryAfter"+tc.retryAfter, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits []time.Time
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits = append(hits, time.Now())
					if len(hits) == 1 {
						w.Header().Set("Retry-After", tc.retryAfter)
						dynamoError(http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/x-amz-json-1.0")
					_, _ = w.Write([]byte(`{"Item":{"id":{"S":"o-1"}}}`))
				}))
				_, err := dynamoGetItem(dynamoClient(srv, AWSHTTPClient(srv.Base()), nil))
				if got := errors.Is(err, resilient.ErrRateLimited); got != tc.limited || (err != nil) != tc.limited {
					t.Errorf("GetItem: %v; want an error wrapping resilient.ErrRateLimited: %v", err, tc.limited)
				}
				if len(hits) != tc.hits {
					t.Fatalf("%d server attempts, want %d", len(hits), tc.hits)
				}
				if len(hits) == 2 {
					if d := hits[1].Sub(hits[0]); d < 10*time.Second {
						t.Errorf("the SDK's retry reached the server %v after the 429, want at least its Retry-After, 10s", d)
					}
				}
			})
		})
	}
}

// TestAWSLongCall shows a call that takes longer than resilient's default
// budget (WithMaxElapsed, 5 minutes) answered as a plain client would have
// it: once, in one attempt. AWS calls can take that long (Lambda's Invoke
// waits up to 15 minutes for the function; an S3 upload sends its body
// for as long as it takes), and resilient, which does not retry under the
// SDK, cut each of the SDK's attempts at 5 minutes: the SDK resent the
// request 3 times, and the call failed after 20 minutes.
func TestAWSLongCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(6 * time.Minute)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			_, _ = w.Write([]byte(`{"Item":{"id":{"S":"o-1"}}}`))
		}))
		start := time.Now()
		if _, err := dynamoGetItem(dynamoClient(srv, AWSHTTPClient(srv.Base()), nil)); err != nil {
			t.Errorf("GetItem: %v", err)
		}
		if got, d := srv.Hits("/"), time.Since(start); got != 1 || d != 6*time.Minute {
			t.Errorf("%d server attempts in %v, want 1 in 6m0s", got, d)
		}
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestAWSRedirectKeepsSessionToken sends a signed request with temporary
// credentials' session token (X-Amz-Security-Token) that the endpoint
// redirects to another host, and checks that the recipe's client redirects
// as the SDK's own client does (aws/transport/http's limitedRedirect): it
// follows a 307 or a 308, without the session token, and hands any other
// redirect to the SDK. net/http alone would send the token to the other
// host (it removes only Authorization, Cookie and WWW-Authenticate there),
// and follow a 301, 302 or 303 as a GET.
func TestAWSRedirectKeepsSessionToken(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			followed := status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
			var elsewhere []string // the session tokens the other host received
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Host == "s3.test" {
					return &http.Response{StatusCode: status, Header: http.Header{"Location": {"https://elsewhere.test/bucket/key"}},
						Body: http.NoBody, Request: r}, nil
				}
				elsewhere = append(elsewhere, r.Header.Get("X-Amz-Security-Token"))
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
			})
			req, _ := http.NewRequest(http.MethodGet, "https://s3.test/bucket/key", nil)
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/...")
			req.Header.Set("X-Amz-Security-Token", "SESSIONTOKEN")
			resp, err := AWSHTTPClient(base).Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			resp.Body.Close()
			if want := map[bool]int{true: http.StatusOK, false: status}[followed]; resp.StatusCode != want {
				t.Errorf("status %d, want %d", resp.StatusCode, want)
			}
			for _, tok := range elsewhere {
				if tok != "" {
					t.Errorf("the other host received X-Amz-Security-Token %q", tok)
				}
			}
		})
	}
}

// TestAWSRedirectTwiceKeepsSessionToken follows a 307 to another host that
// answers with a 307 to itself: net/http copies every hop's headers from
// the first request, the session token included, so a policy that removes
// the token only when a hop changes host (the previous request's host, as
// the SDK's limitedRedirect compares) sent it to the other host on its
// second hop. The token stays with the host it was made for.
func TestAWSRedirectTwiceKeepsSessionToken(t *testing.T) {
	var elsewhere []string // the session tokens the other host received
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		switch {
		case r.URL.Host == "s3.test":
			return &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"https://elsewhere.test/bucket/key"}},
				Body: http.NoBody, Request: r}, nil
		case r.URL.Path == "/bucket/key":
			elsewhere = append(elsewhere, r.Header.Get("X-Amz-Security-Token"))
			return &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"/bucket/key2"}},
				Body: http.NoBody, Request: r}, nil
		}
		elsewhere = append(elsewhere, r.Header.Get("X-Amz-Security-Token"))
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	req, _ := http.NewRequest(http.MethodGet, "https://s3.test/bucket/key", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/...")
	req.Header.Set("X-Amz-Security-Token", "SESSIONTOKEN")
	resp, err := AWSHTTPClient(base).Do(req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(elsewhere) != 2 {
		t.Fatalf("status %d after %d requests to the other host, want 200 after 2", resp.StatusCode, len(elsewhere))
	}
	for i, tok := range elsewhere {
		if tok != "" {
			t.Errorf("the other host's request %d carried X-Amz-Security-Token %q", i+1, tok)
		}
	}
}
