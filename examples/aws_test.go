package examples

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
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
			resp := getWithSessionToken(t, base)
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
	resp := getWithSessionToken(t, base)
	if resp.StatusCode != http.StatusOK || len(elsewhere) != 2 {
		t.Fatalf("status %d after %d requests to the other host, want 200 after 2", resp.StatusCode, len(elsewhere))
	}
	for i, tok := range elsewhere {
		if tok != "" {
			t.Errorf("the other host's request %d carried X-Amz-Security-Token %q", i+1, tok)
		}
	}
}

// awsThrottles are AWS's throttling answers with a 5xx status, as the
// services send them: S3's 503 SlowDown and EC2's 503 RequestLimitExceeded
// (XML bodies), and a JSON protocol's throttle, named by its
// x-amzn-ErrorType header or by its body's "__type" alone.
var awsThrottles = []struct {
	name  string
	fault http.HandlerFunc
}{
	{"S3SlowDown", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "REQ123")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>REQ123</RequestId><HostId>HOST</HostId></Error>`))
	}},
	{"EC2RequestLimitExceeded", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>REQ123</RequestID></Response>`))
	}},
	{"JSONErrorTypeHeader", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/")
		dynamoError(http.StatusServiceUnavailable, "ThrottlingException", "Rate exceeded")(w, r)
	}},
	{"JSONType", dynamoError(http.StatusServiceUnavailable, "ProvisionedThroughputExceededException", "Rate exceeded")},
}

// TestAWSThrottleKeepsBreakerClosed sends calls one after the other to a
// host that throttles every other attempt with a 5xx: each call's first
// attempt, which the SDK's retryer retries after its backoff, and which
// its retry then passes. Through the SDK alone every call succeeds, in 2
// attempts. resilient counted each throttle as a failure of the host's
// breaker, which tripped once 20 attempts were half throttles (the 10th
// call), and refused the 11th call's attempts, and every call's for 10 s:
// the SDK retries a refusal as a connection error, at 14 tokens of its
// retry quota each, so that calls failed after the breaker too. The
// throttles are recorded as such, and hold no later call: without a
// Retry-After, resilient's rate limiter pauses nothing. A host that fails
// with a 503 that is no throttle still trips the breaker. The
// DynamoDB client stands in for S3's and EC2's, which examples' go.mod
// does not hold: its retryer retries a 503 whatever the body, and
// resilient sees each service's own answer.
func TestAWSThrottleKeepsBreakerClosed(t *testing.T) {
	unavailable := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<Error><Code>ServiceUnavailable</Code><Message>Service is unable to handle request.</Message></Error>`))
	}
	cases := append(awsThrottles[:len(awsThrottles):len(awsThrottles)], struct {
		name  string
		fault http.HandlerFunc
	}{"S3ServiceUnavailable", unavailable})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n int
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if n++; n%2 == 1 {
						tc.fault(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/x-amz-json-1.0")
					_, _ = w.Write([]byte(`{"Item":{"id":{"S":"o-1"}}}`))
				}))
				var throttled, waited int
				db := dynamoClient(srv, AWSHTTPClient(srv.Base(), resilient.WithObserver(func(a resilient.Attempt) {
					if a.Class == resilient.Throttled {
						throttled++
					}
					if a.LocalWait > 0 {
						waited++
					}
				})), nil)
				const calls = 40
				failed, refused := 0, 0
				for range calls {
					if _, err := dynamoGetItem(db); err != nil {
						failed++
						if errors.Is(err, resilient.ErrCircuitOpen) {
							refused++
						}
					}
				}
				if tc.name == "S3ServiceUnavailable" {
					if refused == 0 {
						t.Errorf("%d of %d calls failed, none refused by the breaker; want the breaker to open", failed, calls)
					}
					return
				}
				if failed != 0 || srv.Hits("/") != 2*calls {
					t.Errorf("%d of %d calls failed (%d refused by the breaker), %d server attempts; want none failed, %d attempts",
						failed, calls, refused, srv.Hits("/"), 2*calls)
				}
				if throttled != calls || waited != 0 {
					t.Errorf("%d attempts recorded throttled, %d held by the rate limiter; want %d, 0 (a throttle without Retry-After pauses nothing)",
						throttled, waited, calls)
				}
			})
		})
	}
}

// TestAWSThrottledGivesBodyBack checks that the recipe's reading of a 5xx's
// error code leaves the body to the SDK as the server sent it: every byte
// of a body longer than the bytes read for the code, and the bytes of a
// body cut short followed by the error that cut it.
func TestAWSThrottledGivesBodyBack(t *testing.T) {
	long := `<Error><Code>SlowDown</Code><Message>` + strings.Repeat("x", 5000) + `</Message></Error>`
	for _, tc := range []struct {
		name    string
		body    io.Reader
		want    string
		wantErr error
	}{
		{"Long", strings.NewReader(long), long, nil},
		{"Cut", io.MultiReader(strings.NewReader(`<Error><Code>SlowDown</Code>`), iotest.ErrReader(io.ErrUnexpectedEOF)),
			`<Error><Code>SlowDown</Code>`, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/xml"}},
					Body: io.NopCloser(tc.body), Request: r}, nil
			})
			var class resilient.Class
			resp, err := AWSHTTPClient(base, resilient.WithObserver(func(a resilient.Attempt) { class = a.Class })).
				Get("https://bucket.s3.test/key")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if string(got) != tc.want || err != tc.wantErr {
				t.Errorf("body %d bytes, %v; want %d bytes, %v", len(got), err, len(tc.want), tc.wantErr)
			}
			if class != resilient.Throttled {
				t.Errorf("attempt recorded %v, want throttled", class)
			}
		})
	}
}

// TestAWSThrottleWithRetryAfterHoldsNoCall: a throttle that carries a
// Retry-After longer than WithMaxRetryAfter's 60 s (AWS's carry none; a
// proxy's might) keeps the default decision, a 503's, which holds no later
// call: taken for Throttled, its Retry-After paused the host as a 429's
// does, and the 5 calls after it failed at once with ErrRateLimited, where
// the SDK alone sent them and they succeeded. A Retry-After after an empty
// line, which resilient reads (see its README's bounds), is one too: the
// recipe, reading the first line only, took that throttle for Throttled.
func TestAWSThrottleWithRetryAfterHoldsNoCall(t *testing.T) {
	for _, ra := range [][]string{{"120"}, {"", "120"}} {
		t.Run(strings.Join(ra, ","), func(t *testing.T) { throttleWithRetryAfterHoldsNoCall(t, ra) })
	}
}

func throttleWithRetryAfterHoldsNoCall(t *testing.T, ra []string) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n++; n == 1 {
				w.Header()["Retry-After"] = ra
				awsThrottles[0].fault(w, r) // S3's SlowDown
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			_, _ = w.Write([]byte(`{"Item":{"id":{"S":"o-1"}}}`))
		}))
		db := dynamoClient(srv, AWSHTTPClient(srv.Base()), nil)
		for i := range 6 {
			if _, err := dynamoGetItem(db); err != nil {
				t.Errorf("call %d: %v", i+1, err)
			}
		}
		if got := srv.Hits("/"); got != 7 {
			t.Errorf("%d server attempts, want 7 (the throttle, the SDK's retry, 5 more calls)", got)
		}
	})
}

// TestAWSThrottleStalledBodyHoldsNoSlot sends a GET answered by a 503 whose
// XML body stalls after its first bytes (a connection that hangs mid-body),
// then a second GET to the same host, through a client that lets one
// attempt in flight per host (resilient.WithMaxInFlight). The recipe reads
// the 503's error code within the attempt, which holds the host's slot;
// resilient's own read of an error body is cut after 2 s of a stall, and
// its slot released (WithMaxInFlight's word). The recipe's read had no
// such bound: it held the slot for as long as the first call's context
// lived, and the second call, which a plain client (and the SDK alone)
// sends at once, waited for its whole deadline and failed with
// ErrTooManyInFlight. The first call gets its 503 and the bytes that came,
// then the error that cut them.
func TestAWSThrottleStalledBodyHoldsNoSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalled := make(chan struct{})
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/bucket/stalled" {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<Error><Co`))
			w.(http.Flusher).Flush()
			close(stalled)
			<-r.Context().Done() // the rest never comes
		}))
		c := AWSHTTPClient(srv.Base(), resilient.WithMaxInFlight(1))
		first, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(first, http.MethodGet, srv.URL+"/bucket/stalled", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Errorf("the stalled call: %v", err)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || string(body) != `<Error><Co` || err == nil {
				t.Errorf("the stalled call: %d, body %q, %v; want 503, %q, an error", resp.StatusCode, body, err, `<Error><Co`)
			}
		}()
		<-stalled
		synctest.Wait()
		second, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel2()
		req, _ := http.NewRequestWithContext(second, http.MethodGet, srv.URL+"/bucket/key", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("the second call: %v, want 200", err)
		} else {
			resp.Body.Close()
		}
		cancel()
		<-done
	})
}

// getWithSessionToken GETs https://s3.test/bucket/key through the recipe's
// client over base, signed with temporary credentials (Authorization and
// X-Amz-Security-Token), and returns the response, its body closed.
func getWithSessionToken(t *testing.T, base http.RoundTripper) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://s3.test/bucket/key", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/...")
	req.Header.Set("X-Amz-Security-Token", "SESSIONTOKEN")
	resp, err := AWSHTTPClient(base).Do(req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	resp.Body.Close()
	return resp
}

// closeRacedBody is a response body whose end (EOF) comes at 3s, after its
// bytes: a cut at 2s (awsThrottled's) closes it while the read of its end
// is under way, as a close racing the end of a body does. Read after Close
// fails, as a closed http body's does.
type closeRacedBody struct {
	r      io.Reader
	closed atomic.Bool
}

func (b *closeRacedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("http: read on closed response body")
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		time.Sleep(3 * time.Second)
	}
	return n, err
}

func (b *closeRacedBody) Close() error { b.closed.Store(true); return nil }

// TestAWSThrottledBodyReadWholeBeforeTheCut: a 5xx's error body that the
// recipe read whole, to its end, is handed to the SDK whole and ended,
// whether or not the cut for a stall closed it as the read ended: the
// bytes read are the body. Before, the SDK read the bytes and then the
// closed body's error, and took the throttle's answer for a broken one.
func TestAWSThrottledBodyReadWholeBeforeTheCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const xml = `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
		body := &closeRacedBody{r: strings.NewReader(xml)}
		resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: body}
		if class := awsThrottled(resp, nil, nil, resilient.Transient); class != resilient.Throttled {
			t.Errorf("class %v, want throttled", class)
		}
		got, err := io.ReadAll(resp.Body)
		if string(got) != xml || err != nil {
			t.Errorf("the SDK read %q, %v; want the whole body and its end", got, err)
		}
		resp.Body.Close()
	})
}

// TestAWSRedirectStopsAfterTenRedirects: a host that redirects every hop
// with a 307 is followed as net/http follows redirects by default, 10
// requests then the error "stopped after 10 redirects", for the recipe's
// CheckRedirect replaces net/http's, and its limit with it.
func TestAWSRedirectStopsAfterTenRedirects(t *testing.T) {
	var hits int
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hits++
		return &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"/bucket/key" + strconv.Itoa(hits)}},
			Body: http.NoBody, Request: r}, nil
	})
	_, err := AWSHTTPClient(base).Get("https://s3.test/bucket/key")
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") || hits != 10 {
		t.Errorf("%d requests, error %v; want 10 requests, then stopped after 10 redirects", hits, err)
	}
}

// TestAWSThrottledReadsTheCodeAsTheSDK checks the recipe's Classifier on
// the answers a user's SDK reads: a 5xx named a throttle by its
// x-amzn-ErrorType header alone, whatever its status (a 500 too), or with
// an empty Retry-After, is Throttled; a 5xx the default does not take for
// Transient (a 501) keeps the default's decision whatever its code, and a
// 5xx that names no throttling code is Transient.
func TestAWSThrottledReadsTheCodeAsTheSDK(t *testing.T) {
	const slowDown = `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		def    resilient.Class
		want   resilient.Class
	}{
		{"ErrorTypeHeaderAlone", http.StatusServiceUnavailable,
			http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/"}},
			`{"message":"Rate exceeded"}`, resilient.Transient, resilient.Throttled},
		{"500Throttling", http.StatusInternalServerError, http.Header{"X-Amzn-Errortype": {"ThrottlingException"}},
			`{"message":"Rate exceeded"}`, resilient.Transient, resilient.Throttled},
		{"EmptyRetryAfter", http.StatusServiceUnavailable, http.Header{"Retry-After": {""}}, slowDown, resilient.Transient, resilient.Throttled},
		{"501KeepsDefault", http.StatusNotImplemented, http.Header{}, slowDown, resilient.Permanent, resilient.Permanent},
		{"NoThrottlingCode", http.StatusServiceUnavailable, http.Header{},
			`<Error><Code>ServiceUnavailable</Code></Error>`, resilient.Transient, resilient.Transient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
			if got := awsThrottled(resp, nil, nil, tc.def); got != tc.want {
				t.Errorf("class %v, want %v", got, tc.want)
			}
			if got, err := io.ReadAll(resp.Body); string(got) != tc.body || err != nil {
				t.Errorf("the SDK read %q, %v; want the whole body", got, err)
			}
		})
	}
}

// errOnceReader returns err once, then io.EOF, as a body whose error is
// not repeated does.
type errOnceReader struct {
	err  error
	done bool
}

func (r *errOnceReader) Read([]byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	r.done = true
	return 0, r.err
}

// TestAWSThrottledKeepsTheErrorThatCutTheBody: a 5xx's error body cut
// short by an error reaches the SDK with that error after its bytes, also
// from a body that does not repeat its error when read again (a base
// RoundTripper's): were the recipe to hand the SDK the rest of the body
// after the cut, the SDK would read a cut body as a whole one.
func TestAWSThrottledKeepsTheErrorThatCutTheBody(t *testing.T) {
	const sent = `<Error><Code>SlowDown</Code>`
	resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
		Body: io.NopCloser(io.MultiReader(strings.NewReader(sent), &errOnceReader{err: io.ErrUnexpectedEOF}))}
	if class := awsThrottled(resp, nil, nil, resilient.Transient); class != resilient.Throttled {
		t.Errorf("class %v, want throttled", class)
	}
	got, err := io.ReadAll(resp.Body)
	if string(got) != sent || err != io.ErrUnexpectedEOF {
		t.Errorf("the SDK read %q, %v; want %q, %v", got, err, sent, io.ErrUnexpectedEOF)
	}
}

// TestAWSThrottleStalledBodyCutAfter2Seconds: a 503 whose XML body stalls
// after its first bytes comes back to the SDK after the 2 s for which the
// recipe waits for its error code, as resilient cuts its own read of an
// error body, not after the caller's deadline.
func TestAWSThrottleStalledBodyCutAfter2Seconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<Error><Co`))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // the rest never comes
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/bucket/stalled", nil)
		start := time.Now()
		resp, err := AWSHTTPClient(srv.Base()).Do(req)
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		resp.Body.Close()
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("the 503 came back after %v, want %v (the recipe's 2 s cut)", d, 2*time.Second)
		}
	})
}

// TestAWSNilBaseIsTheSDKsTransport: a nil base is the transport of the
// SDK's own client (awshttp.NewBuildableClient: 10 idle connections kept
// per host, where http.DefaultTransport keeps 2, and the SDK's dial and
// TLS settings), so that the recipe's documented use,
// AWSHTTPClient(nil), connects to AWS as the SDK does.
func TestAWSNilBaseIsTheSDKsTransport(t *testing.T) {
	viaDefault := countDefaultTransport(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	c := AWSHTTPClient(nil)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := viaDefault.Load(); n != 0 {
		t.Errorf("%d requests sent through http.DefaultTransport, want 0: a nil base is the SDK's own transport", n)
	}
}
