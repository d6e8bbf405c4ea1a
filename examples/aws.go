package examples

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/restjson"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/resilienthttp/resilient"
)

// AWSHTTPClient returns the HTTP client for an aws-sdk-go-v2 aws.Config
// (its HTTPClient field): a resilient.Transport over base that does not
// retry, configured with opts. A nil base means the transport of the SDK's
// own client (awshttp.NewBuildableClient().GetTransport(): its dial and
// TLS settings, and a pool that keeps 10 idle connections per host, where
// http.DefaultTransport keeps 2), so that the client connects to AWS as
// the SDK's does. Here the SDK's retryer is the one layer that retries,
// and is left at its default:
// it reads AWS's error codes from the body (a throttled DynamoDB call is a
// 400 ThrottlingException that resilient would take as permanent), signs
// every attempt anew, rewinds seekable bodies of any size, and spends from
// a client-side retry quota. resilient would otherwise resend what it may
// resend to any host (reads after a 5xx: S3's GETs; any request that
// provably never reached AWS) under each of the SDK's attempts. Nor does
// it bound the SDK's attempts by resilient's call budget (WithMaxElapsed, 5
// minutes by default): an AWS call may take longer (Lambda's Invoke waits
// for the function, up to 15 minutes; an S3 upload, for its body), and the
// SDK would resend a call resilient cut. The caller's context bounds the
// calls, as it does through a plain client. resilient adds the per-host
// circuit breaker, the pacing after a 429, and one record per attempt. A
// 5xx that names one of the SDK's throttling codes (S3's 503 SlowDown,
// EC2's 503 RequestLimitExceeded, a JSON protocol's ThrottlingException)
// is Throttled (see awsThrottled): the breaker does not count it, as it
// does not count a 429, for a host's throttling would otherwise open it,
// and it would refuse the retries with which the SDK backs off (and
// which spend the SDK's retry quota); a WithClassifier among opts
// replaces that rule. The client follows redirects as the SDK's own does,
// a 307 or a 308 only, and without the session token of temporary
// credentials (X-Amz-Security-Token) on any hop to a host other than the
// first request's, which the SDK's sends on a second hop there; any other
// redirect is the SDK's to read.
// Use it as
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	cfg.HTTPClient = examples.AWSHTTPClient(nil)
func AWSHTTPClient(base http.RoundTripper, opts ...resilient.Option) *http.Client {
	opts = append([]resilient.Option{
		resilient.WithMaxRetries(0),            // the SDK retries; resilient would multiply its attempts
		resilient.WithMaxElapsed(0),            // nor cut the SDK's attempts: a Lambda Invoke or an S3 upload may take longer than 5 minutes
		resilient.WithClassifier(awsThrottled), // a 503 SlowDown is no outage: the breaker must not refuse the SDK's backoff
	}, opts...)
	if base == nil {
		base = awshttp.NewBuildableClient().GetTransport() // the SDK's own: its pool, dial and TLS settings, not http.DefaultTransport's
	}
	return &http.Client{Transport: resilient.New(base, opts...), CheckRedirect: awsRedirect}
}

// awsRedirect is the redirect policy of the SDK's own client
// (aws/transport/http's limitedRedirect): it follows a 307 or a 308, which
// keep the method and the body, and removes the session token from every
// hop to a host other than the first request's, which net/http would send
// there (the SDK's removes it only from a hop that changes host, and a
// second hop within the other host carried it again); it hands any other
// redirect to the SDK.
func awsRedirect(req *http.Request, via []*http.Request) error {
	switch req.Response.StatusCode {
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if len(via) > 0 && via[0].URL.Host != req.URL.Host {
			req.Header.Del("X-Amz-Security-Token") // net/http copies it from the first request into every hop
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects") // net/http's own limit, which a CheckRedirect replaces
		}
		return nil
	}
	return http.ErrUseLastResponse
}

// awsThrottled is the recipe's Classifier: a 5xx the default takes for
// Transient is Throttled when its error code is one of the SDK's throttling
// codes (retry.DefaultThrottleErrorCodes) and it carries no Retry-After
// (AWS's throttles carry none; a Throttled answer's would pause the host's
// later calls as a 429's does, past WithMaxRetryAfter, where the SDK alone
// sends them). The code is read as the SDK
// reads it: from the x-amzn-ErrorType header (JSON protocols), else from
// the first KiB of the body, its first <Code> element (the XML of S3, of
// the query protocols and of EC2) or its JSON "code" or "__type". The body
// is given back whole to the SDK, which reads it next. The read is bounded
// by the request's context, and in time as resilient bounds its own read
// of an error body (see resilient.WithMaxPeek): a read not done after 2 s
// (AWS sends its error bodies at once) is cut there, and the SDK reads the
// bytes that came, then the error that cut them. The attempt holds its
// host's slot (resilient.WithMaxInFlight) until the Classifier returns:
// without that bound, a 503 whose body hung held it for as long as the
// caller's context lived, and the host's other calls waited behind it.
func awsThrottled(resp *http.Response, _ *resilient.APIError, _ error, def resilient.Class) resilient.Class {
	if resp == nil || resp.StatusCode < 500 || def != resilient.Transient ||
		slices.ContainsFunc(resp.Header.Values("Retry-After"), func(v string) bool { return v != "" }) {
		// A Retry-After is a 503's, which pauses no later call past
		// WithMaxRetryAfter; resilient reads one after an empty line too.
		return def
	}
	code := resp.Header.Get("X-Amzn-Errortype")
	if code == "" && resp.Body != http.NoBody {
		body := resp.Body
		cut := time.AfterFunc(2*time.Second, func() { body.Close() }) // a stall, cut as resilient cuts its own peek: the attempt holds its host's slot
		prefix, err := io.ReadAll(io.LimitReader(body, 1024))         // AWS's error bodies are a few hundred bytes
		cut.Stop()
		var rest io.Reader = body
		switch {
		case err != nil:
			rest = errReader{err} // the error that ended the peek, after its bytes
		case len(prefix) < 1024:
			// Read to its end: the bytes read are the body, whether
			// or not the cut closed it as the read ended.
			rest = http.NoBody
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(prefix), rest), body}
		if _, after, ok := bytes.Cut(prefix, []byte("<Code>")); ok {
			xmlCode, _, _ := bytes.Cut(after, []byte("</Code>"))
			code = string(xmlCode)
		} else {
			code, _, _ = restjson.GetErrorInfo(json.NewDecoder(bytes.NewReader(prefix)))
		}
	}
	if _, ok := retry.DefaultThrottleErrorCodes[restjson.SanitizeErrorCode(string(code))]; ok {
		return resilient.Throttled
	}
	return def
}

// errReader is an io.Reader that returns err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
