package resilientotel

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/trace"
)

// TestProtocolVersionOverTLSIsTheNegotiatedOne: over TLS, the connection's
// ALPN says which protocol was spoken. An HTTP/1 server that writes
// "HTTP/2.0" or "HTTP/3.0" in its status line spoke neither, and its
// answer's network.protocol.version is none of them; a real HTTP/2 answer's
// is "2".
func TestProtocolVersionOverTLSIsTheNegotiatedOne(t *testing.T) {
	for _, line := range []string{"HTTP/2.0", "HTTP/3.0"} {
		t.Run(line, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				buf.WriteString(line + " 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
				buf.Flush()
			}))
			defer srv.Close()
			if v, ok := protocolVersionOf(t, srv); ok {
				t.Errorf("network.protocol.version = %q over an HTTP/1 TLS connection whose status line said %s; want none", v, line)
			}
		})
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("{}"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	if v, _ := protocolVersionOf(t, srv); v != "2" {
		t.Errorf("network.protocol.version = %q over HTTP/2, want \"2\"", v)
	}
}

// protocolVersionOf makes one instrumented GET to srv, a TLS server, and
// returns the network.protocol.version of its one client span, and whether
// it has one.
func protocolVersionOf(t *testing.T, srv *httptest.Server) (string, bool) {
	t.Helper()
	base := srv.Client().Transport.(*http.Transport)
	defer base.CloseIdleConnections()
	tel := newTelemetry()
	client := &http.Client{Transport: resilient.New(base, Instrument(tel.config()))}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/posts", nil)
	if _, err := do(t, client, req); err != nil {
		t.Fatal(err)
	}
	spans := tel.ended(int(trace.SpanKindClient))
	if len(spans) != 1 {
		t.Fatalf("%d client spans, want 1", len(spans))
	}
	v, ok := attrs(spans[0].Attributes())["network.protocol.version"]
	return v, ok
}
