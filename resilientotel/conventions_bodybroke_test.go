package resilientotel

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TestConventionsBodyBrokeKeepsStatus: with resilient.WithBufferedResponse,
// the CLIENT span of a 200 whose body broke on its way ends once the read
// failed; the status code was received all the same, so the span and its
// http.client.request.duration point have http.response.status_code 200
// ("Conditionally Required: if and only if one was received") and
// network.protocol.version beside error.type and an Error status ("unless
// there was another error (e.g., network error receiving the response
// body)"), as the conventions' example of a connection dropped before the
// body was sent has both.
func TestConventionsBodyBrokeKeepsStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		n := 0
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n++
			var body io.ReadCloser = io.NopCloser(strings.NewReader("{}"))
			if n == 1 {
				body = &cutBody{}
			}
			return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: body, ContentLength: 2, Request: req}, nil
		})
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithBackoff(0, 0), resilient.WithBufferedResponse(1<<10))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v; want the retry's 200", code, err)
		}
		clients := tel.ended(int(trace.SpanKindClient))
		if len(clients) != 2 {
			t.Fatalf("%d CLIENT spans, want 2", len(clients))
		}
		a := attrs(clients[0].Attributes())
		if a["http.response.status_code"] != "200" || a["network.protocol.version"] != "1.1" || a["error.type"] != "connection_closed" {
			t.Errorf("cut attempt: %v; want http.response.status_code 200, network.protocol.version 1.1, error.type connection_closed", a)
		}
		if st := clients[0].Status(); st.Code != codes.Error || st.Description != "connection_closed" {
			t.Errorf("cut attempt: status %v %q, want Error connection_closed (not inferable from its 200)", st.Code, st.Description)
		}
		points := histogramPoints(t, tel.metrics(t)["http.client.request.duration"])
		want := "error.type=connection_closed,http.request.method=GET,http.response.status_code=200,network.protocol.version=1.1,server.address=api.test,server.port=80"
		if _, ok := points[want]; !ok || len(points) != 2 {
			t.Errorf("http.client.request.duration points %v, want %s and the retry's", sortedKeys(points), want)
		}
	})
}
