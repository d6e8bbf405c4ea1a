package resilientotel

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/resilienthttp/resilient"
)

// TestErrorTypeTLSAlert: a TLS handshake the server refuses with an alert
// (here protocol_version: the server speaks TLS 1.3 only, the client 1.2
// at most), which crypto/tls returns as a *net.OpError "remote error"
// around a type it does not export, is a tls_error, as the package
// documentation lists it, not _OTHER.
func TestErrorTypeTLSAlert(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	base := &http.Transport{TLSClientConfig: &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}}
	defer base.CloseIdleConnections()

	tel := newTelemetry()
	tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxRetries(0))
	req, _ := http.NewRequest("GET", srv.URL+"/v1/x", nil)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("%d, want the handshake's failure", resp.StatusCode)
	}
	for _, s := range tel.ended() {
		if got := attrs(s.Attributes())["error.type"]; got != errTLS {
			t.Errorf("%v span: error.type %q for %v, want %s", s.SpanKind(), got, err, errTLS)
		}
	}
	if n := len(tel.ended(int(trace.SpanKindClient))); n != 1 {
		t.Errorf("%d CLIENT spans, want 1", n)
	}
}
