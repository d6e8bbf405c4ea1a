package examples

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"

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

// dynamoGetItem makes one GetItem call with a DynamoDB client on httpClient
// (and, when retryer is not nil, that retryer) against srv.
func dynamoGetItem(srv *pipeServer, httpClient *http.Client, retryer func() aws.Retryer) (*dynamodb.GetItemOutput, error) {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   httpClient,
		Retryer:      retryer,
	}
	db := dynamodb.NewFromConfig(cfg)
	return db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String("orders"),
		Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "o-1"}},
	})
}

// TestAWS measures the attempts of one failing DynamoDB GetItem with the
// SDK's defaults over resilient.New (before), with AWSHTTPClient (after),
// and with the usual recipe the other SDKs get (the SDK's retries off,
// resilient retrying), which loses the retries of throttled calls.
func TestAWS(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		row                   string
		fault                 http.HandlerFunc
		before, after, sdkOff int
	}{
		// DynamoDB's client makes 4 attempts (other services 3); each is
		// a call of resilient's, which makes 6.
		{"InternalServerError", "DynamoDB GetItem, 500 InternalServerError", dynamoInternal, 24, 4, 6},
		// A throttled call is a 400 with the code in the body: the SDK
		// retries it, resilient does not.
		{"Throttling", "DynamoDB GetItem, 400 ThrottlingException", dynamoThrottle, 4, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(client func(base http.RoundTripper) *http.Client, retryer func() aws.Retryer) (n int) {
				synctest.Test(t, func(t *testing.T) {
					srv := newPipeServer(t, "dynamodb.test", tc.fault)
					if _, err := dynamoGetItem(srv, client(srv.Transport()), retryer); err == nil {
						t.Fatal("GetItem succeeded against a failing server")
					}
					n = srv.Hits("/")
				})
				return n
			}
			before := measure(func(base http.RoundTripper) *http.Client {
				return &http.Client{Transport: resilient.New(base)}
			}, nil)
			after := measure(func(base http.RoundTripper) *http.Client { return AWSHTTPClient(base) }, nil)
			sdkOff := measure(func(base http.RoundTripper) *http.Client {
				return &http.Client{Transport: resilient.New(base)}
			}, func() aws.Retryer { return aws.NopRetryer{} })
			if before != tc.before || after != tc.after || sdkOff != tc.sdkOff {
				t.Errorf("server attempts per call: defaults %d, recipe %d, SDK retries off %d; want %d, %d, %d",
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
		srv := newPipeServer(t, "dynamodb.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		out, err := dynamoGetItem(srv, AWSHTTPClient(srv.Transport()), nil)
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
		srv := newPipeServer(t, "dynamodb.test", dynamoInternal)
		client := AWSHTTPClient(srv.Transport(), resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 2}))
		_, err := dynamoGetItem(srv, client, nil)
		if !errors.Is(err, resilient.ErrCircuitOpen) {
			t.Errorf("error %v, want one wrapping resilient.ErrCircuitOpen", err)
		}
		if got := srv.Hits("/"); got != 2 {
			t.Errorf("%d server attempts, want 2 (the SDK's 3rd and 4th attempts refused by the open breaker)", got)
		}
	})
}
