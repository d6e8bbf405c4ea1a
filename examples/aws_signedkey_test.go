package examples

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sigV4Check returns the problem a SigV4-signed request r has, as AWS
// verifies it: its signature computed again over the headers it names in
// SignedHeaders (the others are not signed, and AWS does not read them
// for the signature), or "" when it holds.
func sigV4Check(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return "no SignedHeaders in " + auth
	}
	signed, _, _ = strings.Cut(signed, ",")
	_, sig, _ := strings.Cut(auth, "Signature=")
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.ContentLength = r.ContentLength
	for h := range strings.SplitSeq(signed, ";") {
		if h == "idempotency-key" {
			return "the idempotency key is signed: " + signed
		}
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err.Error()
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "dynamodb", "us-east-1", at); err != nil {
		return err.Error()
	}
	if _, want, _ := strings.Cut(again.Header.Get("Authorization"), "Signature="); want != sig {
		return "signature " + sig + ", computed " + want
	}
	return ""
}

// TestAWSKeyLeavesTheSignatureAlone: resilient puts an Idempotency-Key on
// the SDK's POSTs (every DynamoDB call is one) after the SDK signed them,
// outside SignedHeaders, so that the signature AWS computes again still
// holds; AWS ignores the header, and the recipe never resends a call for
// it (WithMaxRetries(0)).
func TestAWSKeyLeavesTheSignatureAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var problems []string
		keyed := 0
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.Header.Get("Idempotency-Key") != "" {
				keyed++
			}
			if p := sigV4Check(r, body); p != "" {
				problems = append(problems, p)
				dynamoError(http.StatusBadRequest, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			_, _ = w.Write([]byte(`{"Item":{"id":{"S":"o-1"}}}`))
		}))
		db := dynamoClient(srv, AWSHTTPClient(srv.Base()), nil)
		if _, err := dynamoGetItem(db); err != nil {
			t.Errorf("GetItem: %v", err)
		}
		if keyed != 1 || len(problems) > 0 {
			t.Errorf("%d requests with an Idempotency-Key (want 1, as sent); signature problems %q", keyed, problems)
		}
	})
}
