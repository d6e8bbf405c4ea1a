package resilientotel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func TestRedactedURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.test/v1/posts", "https://api.test/v1/posts"},
		{"https://api.test/v1/posts?token=s3cret&page=2", "https://api.test/v1/posts"},
		{"https://api.test/search?sig=abc#frag", "https://api.test/search"},
		{"https://user:s3cret@api.test:8443/x", "https://REDACTED:REDACTED@api.test:8443/x"},
		{"https://user@api.test/x", "https://REDACTED:REDACTED@api.test/x"},
		{"http://[::1]:8080/a%2Fb?x", "http://[::1]:8080/a%2Fb"},
		{"https://api.test", "https://api.test"},
		{"http:opaque?secret", "http:opaque"},
		// The query values the conventions (v1.43) ask to redact, and
		// those of earlier versions: dropped with the whole query.
		{"https://s3.test/o?X-Amz-Credential=AKIA%2F1&X-Amz-Security-Token=t&X-Amz-Signature=s&X-Goog-Signature=g&sig=a&AWSAccessKeyId=k&Signature=s2",
			"https://s3.test/o"},
		// A credential an API carries in the path (a Discord webhook's
		// token, a Telegram bot's).
		{"https://discord.com/api/webhooks/123/s3cret-token?wait=true", "https://discord.com/api/webhooks/123/REDACTED"},
		{"https://api.telegram.org/bot123:s3cret/getMe", "https://api.telegram.org/REDACTED/getMe"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactedURL(&http.Request{URL: u}); got != tc.want {
			t.Errorf("redactedURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := redactedURL(nil); got != "" {
		t.Errorf("redactedURL(nil) = %q", got)
	}
	// User information a caller put in the host by hand, which url.Parse
	// would have taken out into URL.User: net/http dials it whole.
	handmade := &url.URL{Scheme: "https", Host: "alice:s3cret@api.test", Path: "/v1"}
	if got, want := redactedURL(&http.Request{URL: handmade}), "https://REDACTED@api.test/v1"; got != want {
		t.Errorf("redactedURL(host %q) = %q, want %q", handmade.Host, got, want)
	}
	// An Opaque is sent as it is, user information included.
	for _, tc := range []struct{ opaque, want string }{
		{"//alice:s3cret@api.test:8443/v1/posts", "https://REDACTED:REDACTED@api.test:8443/v1/posts"},
		{"//alice@api.test", "https://REDACTED:REDACTED@api.test"},
		{"//api.test/a@b", "https://api.test/a@b"},
		{"//alice:s3cret@api.test/v1/posts?api_key=k#f", "https://REDACTED:REDACTED@api.test/v1/posts"},
		{"alice:s3cret@api.test/v1/posts", "https:REDACTED:REDACTED@api.test/v1/posts"}, // https:alice:s3cret@api.test, its slashes missing
		{"/v1/users/a@b", "https:/v1/users/a@b"},
		// A credential an API carries in the path, as in Path.
		{"//discord.com/api/webhooks/123/s3cret-token", "https://discord.com/api/webhooks/123/REDACTED"},
		{"//alice:s3cret@discord.com/api/webhooks/123/s3cret-token?wait=true", "https://REDACTED:REDACTED@discord.com/api/webhooks/123/REDACTED"},
		{"/bot123:s3cret/getMe", "https:/REDACTED/getMe"},
	} {
		u := &url.URL{Scheme: "https", Host: "api.test", Opaque: tc.opaque}
		if got := redactedURL(&http.Request{URL: u}); got != tc.want {
			t.Errorf("redactedURL(Opaque %q) = %q, want %q", tc.opaque, got, tc.want)
		}
	}
}

func TestServerAddr(t *testing.T) {
	for _, tc := range []struct {
		url, host string
		addr      string
		port      int
	}{
		{"https://api.test/x", "", "api.test", 443},
		{"http://api.test/x", "", "api.test", 80},
		{"http://api.test:8080/x", "", "api.test", 8080},
		{"http://[::1]:8080/", "", "::1", 8080},
		{"http://[::1]/", "", "::1", 80},
		// The Host header of a virtual host: the server is the URL's
		// origin, where the request is sent (an IP address the caller
		// chose, with its port), as otelhttp says (a documented
		// departure from the conventions, which name the Host header's).
		{"https://api.test/x", "other.test:9443", "api.test", 443},
		{"https://api.test/x", "other.test", "api.test", 443},
		{"http://10.0.0.5:8080/x", "svc.test", "10.0.0.5", 8080},
		{"http://[::1]:8080/", "::1", "::1", 8080},
		// A URL without a host (a request handed to an in-process
		// router): the Host header's; a bare IPv6 address there, which
		// net/http sends as it is, is the address whole, the port the
		// scheme's.
		{"https:///x", "other.test:9443", "other.test", 9443},
		{"/x", "other.test", "other.test", 0},
		{"http:///x", "::1", "::1", 80},
		{"https:///x", "2001:db8::1", "2001:db8::1", 443},
		{"https:///x", "[2001:db8::1]:8443", "2001:db8::1", 8443},
		{"https:///x", "fe80::1%eth0", "fe80::1%eth0", 443},
		// One net/http cannot write, which it sends empty: none.
		{"https:///x", "alice:s3cret@api.test", "", 443},
		{"ftp://files.test/", "", "files.test", 0},
		{"http://api.test:99999/", "", "api.test", 80},
		// A port that is not one, 0 or past 65535: the scheme's.
		{"http://api.test:0/", "", "api.test", 80},
		{"http://api.test:65536/", "", "api.test", 80},
		{"http://api.test:65535/", "", "api.test", 65535},
		// A Host net/http cannot write, which it sends empty: the
		// server is the URL's, and what the Host held (user
		// information put there by hand) is recorded nowhere.
		{"https://api.test/x", "alice:s3cret@api.test", "api.test", 443},
		{"http://api.test:8080/x", "other.test/path", "api.test", 8080},
		{"http://api.test/x", "other test", "api.test", 80},
		// User information in the URL's host, put there by hand.
		{"", "", "REDACTED@api.test", 443},
	} {
		u, _ := url.Parse(tc.url)
		if tc.url == "" {
			u = &url.URL{Scheme: "https", Host: "alice:s3cret@api.test", Path: "/v1"}
		}
		addr, port := serverAddr(&http.Request{URL: u, Host: tc.host})
		if addr != tc.addr || port != tc.port {
			t.Errorf("serverAddr(%s, Host %q) = %q, %d; want %q, %d", tc.url, tc.host, addr, port, tc.addr, tc.port)
		}
	}
	// User information in the host of an IPv6 address, with a port and
	// without: the port is the URL's, not a part of the address, and the
	// address is the host as the Transport records it (Attempt.Host
	// REDACTED@[::1]:8080), its brackets whole: no stray '['.
	for _, tc := range []struct {
		host string
		port int
	}{{"alice:pw@[::1]:8080", 8080}, {"alice:pw@[::1]", 443}} {
		u := &url.URL{Scheme: "https", Host: tc.host, Path: "/v1"}
		if addr, port := serverAddr(&http.Request{URL: u}); addr != "REDACTED@[::1]" || port != tc.port {
			t.Errorf("serverAddr(URL host %q) = %q, %d; want %q, %d", u.Host, addr, port, "REDACTED@[::1]", tc.port)
		}
	}
	// A scheme written in capitals, in a URL built by hand: its port all
	// the same.
	u := &url.URL{Scheme: "HTTPS", Host: "api.test", Path: "/v1"}
	if _, port := serverAddr(&http.Request{URL: u}); port != 443 {
		t.Errorf("serverAddr(URL scheme %q) port = %d, want 443", u.Scheme, port)
	}
}

func TestProtocolVersion(t *testing.T) {
	for _, tc := range []struct {
		major, minor int
		want         string
	}{{1, 1, "1.1"}, {1, 0, "1.0"}, {2, 0, "2"}, {3, 0, "3"}, {0, 0, ""}, {4, 2, ""}, {1, 7, "1.1"}, {2, 1, ""}, {1, -1, ""}} {
		if got := protocolVersion(&http.Response{ProtoMajor: tc.major, ProtoMinor: tc.minor}); got != tc.want {
			t.Errorf("protocolVersion(%d.%d) = %q, want %q", tc.major, tc.minor, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", resilient.ErrCircuitOpen), "circuit_open"},
		{fmt.Errorf("x: %w", resilient.ErrRateLimited), "rate_limited_locally"},
		{fmt.Errorf("%w: api.test:443: 1 in flight, none free within 1s", resilient.ErrTooManyInFlight), "too_many_in_flight"},
		{fmt.Errorf("x: %w", resilient.ErrAttemptTimeout), "timeout"},
		{fmt.Errorf("%w; %w", context.Canceled, resilient.ErrAttemptTimeout), "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{&url.Error{Op: "Get", URL: "x", Err: timeoutErr{}}, "timeout"},
		{context.Canceled, "canceled"},
		{&net.DNSError{Err: "no such host", Name: "api.test", IsNotFound: true}, "dns_error"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "tls_error"},
		{x509.HostnameError{}, "tls_error"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "tls_error"},
		{&tls.CertificateVerificationError{Err: errors.New("x509: certificate has expired or is not yet valid")}, "tls_error"},
		{x509.UnknownAuthorityError{}, "tls_error"},
		{x509.CertificateInvalidError{Reason: x509.Expired}, "tls_error"},
		{&net.OpError{Op: "remote error", Err: tls.AlertError(42)}, "tls_error"}, // a server refusing the client's certificate
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection_refused"},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection_reset"},
		{io.EOF, "connection_closed"},
		{&net.OpError{Op: "read", Err: net.ErrClosed}, "connection_closed"},
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, "connection_closed"},
		{fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", io.ErrUnexpectedEOF), "connection_closed"},
		{fmt.Errorf("resilient: POST http://api.test/: 1 attempt: %w", errors.New("http: server closed idle connection")), "connection_closed"},
		{errors.New(`server said "http: server closed idle connection"`), "_OTHER"}, // a server's words, not net/http's
		{errors.New("something else"), "_OTHER"},
	} {
		if got := errorType(tc.err); got != tc.want {
			t.Errorf("errorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestNoSecrets: nothing a request carries in its query, fragment, user
// information, headers or body reaches a span, an event, a status or a
// metric attribute, on success and failure paths alike.
func TestNoSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{
			{status: 500}, {err: errors.New("dial tcp: lookup s3cret-host failed")}, {status: 302, location: "/next?key=s3cret"},
			{status: 401, header: http.Header{"Www-Authenticate": {"Bearer s3cret"}}},
		}}
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithKeyHonoringHosts("api.test"))
		client := &http.Client{Transport: tr}
		req, _ := http.NewRequest("POST", "https://alice:s3cret@api.test/v1/posts?api_key=s3cret&sig=s3cret#s3cret",
			strings.NewReader(`{"password":"s3cret"}`))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(`{"password":"s3cret"}`)), nil }
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Cookie", "session=s3cret")
		req.Header.Set("Idempotency-Key", "s3cret-key")
		if code, err := do(t, client, req); code != 401 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		var seen []string
		for _, s := range tel.ended() {
			seen = append(seen, s.Name(), s.Status().Description)
			for _, kv := range s.Attributes() {
				seen = append(seen, kv.Value.String())
			}
			for _, e := range s.Events() {
				seen = append(seen, e.Name)
				for _, kv := range e.Attributes {
					seen = append(seen, kv.Value.String())
				}
			}
		}
		for _, m := range tel.metrics(t) {
			seen = append(seen, m.Name)
			if _, ok := m.Data.(metricdata.Histogram[float64]); ok {
				seen = append(seen, sortedKeys(histogramPoints(t, m))...)
			} else if _, ok := m.Data.(metricdata.Histogram[int64]); ok {
				seen = append(seen, sortedKeys(histogramPoints(t, m))...)
			} else {
				seen = append(seen, sortedKeys(sumPoints(t, m))...)
			}
		}
		if len(tel.ended()) < 4 {
			t.Fatalf("only %d spans", len(tel.ended()))
		}
		all := strings.Join(seen, "\n")
		for _, secret := range []string{"s3cret", "alice", "api_key", "Bearer", "session"} {
			if strings.Contains(all, secret) {
				t.Errorf("%q found in the telemetry:\n%s", secret, all)
			}
		}
		if !strings.Contains(all, "https://REDACTED:REDACTED@api.test/v1/posts") {
			t.Errorf("url.full not found as redacted")
		}
	})
}

// TestURLFullRedactsCredentialEchoedByRedirect: a server that redirects
// to a path it built from the credential the caller sent
// (/v1/keys/<key>/usage) makes http.Client send that path: url.full of
// the call that follows the redirect, and of its attempts, has it
// REDACTED.
func TestURLFullRedactsCredentialEchoedByRedirect(t *testing.T) {
	const secret = "k3y-0123456789abcdef" // no known token shape: only the caller's query tells it is one
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 302, location: "/v1/keys/" + secret + "/usage"}, {status: 404}}}
		client := &http.Client{Transport: resilient.New(base, Instrument(tel.config()))}
		req, _ := http.NewRequest("GET", "https://api.test/v1/usage?api_key="+secret, nil)
		if code, err := do(t, client, req); code != 404 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		spans := tel.ended()
		if len(base.urls) != 2 || len(spans) != 4 {
			t.Fatalf("%d spans of %d requests, want 4 of 2 (a call and an attempt each)", len(spans), len(base.urls))
		}
		redacted := 0
		for _, s := range spans {
			switch got := attrs(s.Attributes())["url.full"]; {
			case strings.Contains(got, secret):
				t.Errorf("%s span: url.full = %q: the credential the caller sent, echoed by the redirect, not REDACTED", s.SpanKind(), got)
			case got == "https://api.test/v1/keys/REDACTED/usage":
				redacted++
			}
		}
		if redacted != 2 {
			t.Errorf("%d spans with url.full https://api.test/v1/keys/REDACTED/usage, want the call's and its attempt's", redacted)
		}
	})
}

// TestMethods: a method not known is _OTHER, named HTTP, with its original
// form; KnownMethods and the environment variable replace the list.
func TestMethods(t *testing.T) {
	run := func(t *testing.T, cfg func(Config) Config, method string) map[string]string {
		t.Helper()
		tel := newTelemetry()
		tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(cfg(tel.config())))
		req, _ := http.NewRequest(method, "http://api.test/", nil)
		if _, err := do(t, &http.Client{Transport: tr}, req); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range tel.ended() {
			a := attrs(s.Attributes())
			out[s.SpanKind().String()] = s.Name() + " " + a["http.request.method"] + " " + a["http.request.method_original"]
		}
		return out
	}
	same := func(c Config) Config { return c }
	for _, tc := range []struct {
		method       string
		cfg          func(Config) Config
		client, call string
	}{
		{"GET", same, "GET GET ", "resilient GET GET "},
		{"PATCH", same, "PATCH PATCH ", "resilient PATCH PATCH "},
		{"QUERY", same, "QUERY QUERY ", "resilient QUERY QUERY "}, // known since semconv v1.38
		{"PURGE", same, "HTTP _OTHER PURGE", "resilient HTTP _OTHER PURGE"},
		{"get", same, "HTTP _OTHER get", "resilient HTTP _OTHER get"},
		{"PURGE", func(c Config) Config { c.KnownMethods = []string{"GET", " PURGE "}; return c }, "PURGE PURGE ", "resilient PURGE PURGE "},
		{"POST", func(c Config) Config { c.KnownMethods = []string{"GET"}; return c }, "HTTP _OTHER POST", "resilient HTTP _OTHER POST"},
		// An empty list, not nil: no method is known, not the default ones.
		{"GET", func(c Config) Config { c.KnownMethods = []string{}; return c }, "HTTP _OTHER GET", "resilient HTTP _OTHER GET"},
	} {
		got := run(t, tc.cfg, tc.method)
		if got["client"] != tc.client || got["internal"] != tc.call {
			t.Errorf("%s: client %q, call %q; want %q, %q", tc.method, got["client"], got["internal"], tc.client, tc.call)
		}
	}
	// An empty Method is GET, as net/http sends it: not _OTHER.
	in := newInstrumentation(Config{TracerProvider: newTelemetry().tp})
	if n, orig := in.method(""); n.attr != "GET" || n.client != "GET" || orig != "" {
		t.Errorf("empty method: %+v (original %q), want GET", n, orig)
	}
	t.Setenv(KnownMethodsEnv, "GET,PURGE")
	if got := run(t, same, "PURGE"); got["client"] != "PURGE PURGE " {
		t.Errorf("with %s=GET,PURGE: %q", KnownMethodsEnv, got["client"])
	}
	if got := run(t, same, "POST"); got["client"] != "HTTP _OTHER POST" {
		t.Errorf("with %s=GET,PURGE, POST: %q", KnownMethodsEnv, got["client"])
	}
}

// TestKnownMethodsEnvEmpty: an empty (or blank) OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS
// is as if it were unset, as OpenTelemetry's environment variables are: the
// default methods stay known. (Every method was _OTHER, every span named
// "HTTP".)
func TestKnownMethodsEnvEmpty(t *testing.T) {
	for _, env := range []string{"", " "} {
		t.Setenv(KnownMethodsEnv, env)
		in := newInstrumentation(Config{TracerProvider: newTelemetry().tp})
		if n, orig := in.method("GET"); n.attr != "GET" || n.client != "GET" || orig != "" {
			t.Errorf("with %s=%q: GET is %+v (original %q), want known", KnownMethodsEnv, env, n, orig)
		}
	}
}

// TestURLTemplate: a template names the CLIENT spans and becomes
// url.template, on the spans and on http.client.request.duration.
func TestURLTemplate(t *testing.T) {
	tel := newTelemetry()
	cfg := tel.config()
	cfg.URLTemplate = func(r *http.Request) string {
		if strings.HasPrefix(r.URL.Path, "/v1/posts/") {
			return "/v1/posts/{id}"
		}
		return ""
	}
	client := &http.Client{Transport: resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(cfg))}
	for _, p := range []string{"/v1/posts/1", "/v1/posts/2", "/health"} {
		req, _ := http.NewRequest("GET", "http://api.test"+p, nil)
		do(t, client, req)
	}
	var names []string
	for _, s := range tel.ended(int(trace.SpanKindClient)) {
		names = append(names, s.Name()+"|"+attrs(s.Attributes())["url.template"])
	}
	if got := strings.Join(names, ","); got != "GET /v1/posts/{id}|/v1/posts/{id},GET /v1/posts/{id}|/v1/posts/{id},GET|" {
		t.Errorf("CLIENT spans %s", got)
	}
	pts := histogramPoints(t, tel.metrics(t)["http.client.request.duration"])
	if len(pts) != 2 {
		t.Errorf("duration points %v, want one per template (and one without)", sortedKeys(pts))
	}
	for k, p := range pts {
		if strings.Contains(k, "url.template=/v1/posts/{id}") != (p[0] == 2) {
			t.Errorf("point %s counts %v", k, p[0])
		}
	}
}

// TestGlobalProviders: a zero Config uses the global providers and
// propagator, as set when Instrument is called.
func TestGlobalProviders(t *testing.T) {
	tel := newTelemetry()
	prevTP, prevMP, prevProp := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(tel.config().Propagator)
	defer func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
		otel.SetTextMapPropagator(prevProp)
	}()
	base := &stub{steps: []step{{status: 200}}}
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	do(t, &http.Client{Transport: resilient.New(base, Instrument(Config{}))}, req)
	if n := len(tel.ended()); n != 2 {
		t.Errorf("%d spans in the global provider, want 2", n)
	}
	if n, _ := total(t, tel.metrics(t), "http.client.request.duration"); n != 1 {
		t.Errorf("duration count %v, want 1", n)
	}
	if tp := base.sent("Traceparent"); len(tp) != 1 || !strings.HasPrefix(tp[0], "00-") {
		t.Errorf("traceparent %q, want the global propagator's", tp)
	}
}

// TestNoopProviders: with no-op providers and no parent span, the
// instrumentation sends the request unchanged and reports nothing; with a
// parent span context, it still propagates it, as a no-op tracer must,
// also under a parent that records (an SDK's span, from another provider)
// and with the deprecated trace.NewNoopTracerProvider, whose spans hide
// that parent behind an empty span context, metrics on or off.
func TestNoopProviders(t *testing.T) {
	cfg := noopConfig()
	var got []*http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r)
		return (&stub{steps: []step{{status: 200}}}).RoundTrip(r)
	})
	tr := resilient.New(base, Instrument(cfg))
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	do(t, &http.Client{Transport: tr}, req)
	if len(got) != 1 || got[0].Header.Get("Traceparent") != "" {
		t.Fatalf("sent %d requests, traceparent %q; want one, without", len(got), got[0].Header.Get("Traceparent"))
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
	do(t, &http.Client{Transport: tr}, req)
	if tp := got[1].Header.Get("Traceparent"); tp != "00-01000000000000000000000000000000-0200000000000000-01" {
		t.Errorf("traceparent %q, want the parent's", tp)
	}
	if req.Header.Get("Traceparent") != "" {
		t.Error("the caller's request was modified")
	}

	tel := newTelemetry()
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "caller")
	defer parent.End()
	psc := parent.SpanContext()
	want := "00-" + psc.TraceID().String() + "-" + psc.SpanID().String() + "-01"
	//lint:ignore SA1019 the deprecated provider is the one whose spans hide their parent.
	deprecated := trace.NewNoopTracerProvider()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"noop", noopConfig()},
		{"noop tracer, metrics", Config{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: tel.mp}},
		{"deprecated noop tracer", Config{TracerProvider: deprecated, MeterProvider: noopConfig().MeterProvider}},
		{"deprecated noop tracer, metrics", Config{TracerProvider: deprecated, MeterProvider: tel.mp}},
	} {
		tc.cfg.Propagator = propagation.TraceContext{}
		base := &stub{steps: []step{{status: 200}}}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
		if _, err := do(t, &http.Client{Transport: resilient.New(base, Instrument(tc.cfg))}, req); err != nil {
			t.Fatal(err)
		}
		if got := base.sent("Traceparent"); len(got) != 1 || got[0] != want {
			t.Errorf("%s: traceparent = %q, want the caller's %q", tc.name, got, want)
		}
	}
}

// TestMetricsWithoutTracing: a no-op TracerProvider with an SDK
// MeterProvider (metrics only) records the metrics all the same.
func TestMetricsWithoutTracing(t *testing.T) {
	tel := newTelemetry()
	cfg := tel.config()
	cfg.TracerProvider = tracenoop.NewTracerProvider()
	tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(cfg))
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	if _, err := do(t, &http.Client{Transport: tr}, req); err != nil {
		t.Fatal(err)
	}
	ms := tel.metrics(t)
	for _, name := range []string{"http.client.request.duration", MetricCallDuration} {
		if n, _ := total(t, ms, name); n != 1 {
			t.Errorf("%s count %v, want 1", name, n)
		}
	}
}

// TestServerPortOmittedWhenUnknown: a request whose port is not known (a
// scheme other than http and https, without a port, sent by a base that
// speaks it) has no server.port, rather than a port 0 no server has.
func TestServerPortOmittedWhenUnknown(t *testing.T) {
	in := newInstrumentation(Config{TracerProvider: newTelemetry().tp})
	req, _ := http.NewRequest("GET", "gopher://files.test/docs", nil)
	c := in.newCall(context.Background(), req)
	a := attrs(c.attrs[:c.nattrs])
	if v, ok := a["server.port"]; ok {
		t.Errorf("server.port = %s, want none", v)
	}
	if a["server.address"] != "files.test" {
		t.Errorf("server.address = %q, want files.test", a["server.address"])
	}
}

// TestCallerTraceparentNotDuplicated: a request whose header map holds a
// traceparent under a key that is not canonical (set by hand, as the W3C
// spells it) is sent with the attempt's traceparent only, once: the
// caller's is replaced, not sent beside it, whichever the providers. (Both
// went out, "traceparent" and "Traceparent", and a server that reads one
// of them took either, by the order of a map.)
func TestCallerTraceparentNotDuplicated(t *testing.T) {
	const stale = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for name, cfg := range map[string]Config{"sdk": newTelemetry().config(), "noop": noopConfig()} {
		base := &stub{steps: []step{{status: 200}}}
		tr := resilient.New(base, Instrument(cfg))
		req, _ := http.NewRequestWithContext(remoteParent(context.Background()), "GET", "https://api.test/", nil)
		req.Header["traceparent"] = []string{stale}
		if _, err := do(t, &http.Client{Transport: tr}, req); err != nil {
			t.Fatal(err)
		}
		var sent []string
		for k, vv := range base.headers[0] {
			if strings.EqualFold(k, "traceparent") {
				sent = append(sent, vv...)
			}
		}
		if len(sent) != 1 || sent[0] == stale {
			t.Errorf("%s: traceparent sent %q, want the attempt's, once", name, sent)
		}
		//lint:ignore SA1008 the caller set it under this spelling: what W3C propagators write.
		if got := req.Header["traceparent"]; len(got) != 1 || got[0] != stale || len(req.Header) != 1 {
			t.Errorf("%s: the caller's header became %v", name, req.Header)
		}
	}
}

func TestHeaderCarrier(t *testing.T) {
	src := http.Header{"A": {"1", "2"}, "B": {"3"}, "Empty": {}, "Nil": nil}
	h := &headerCarrier{src: src}
	if h.Get("A") != "1" || len(h.Keys()) != 4 {
		t.Fatalf("before Set: Get %q, Keys %v", h.Get("A"), h.Keys())
	}
	h.Set("traceparent", "tp")
	h.Set("x-custom", "c")
	h.Set("b", "new")
	if len(src) != 4 || src.Get("B") != "3" || src.Get("Traceparent") != "" {
		t.Errorf("source modified: %v", src)
	}
	want := http.Header{"A": {"1", "2"}, "B": {"new"}, "Empty": {}, "Nil": nil, "Traceparent": {"tp"}, "X-Custom": {"c"}}
	if fmt.Sprint(h.dst) != fmt.Sprint(want) || h.Get("traceparent") != "tp" {
		t.Errorf("copy %v, want %v", h.dst, want)
	}
	h.dst["A"][0] = "changed"
	if src["A"][0] != "1" {
		t.Error("the copy shares its values with the source")
	}
	same := &headerCarrier{src: http.Header{"Traceparent": {"tp"}}}
	same.Set("traceparent", "tp")
	if same.dst != nil {
		t.Error("a value already there made a copy")
	}
	same.Set("tracestate", "ts")
	if same.dst.Get("Traceparent") != "tp" || same.dst.Get("Tracestate") != "ts" {
		t.Errorf("copy %v", same.dst)
	}
	if got := (&headerCarrier{}); got.Get("x") != "" || len(got.Keys()) != 0 {
		t.Error("empty carrier")
	}
}

// TestLongURLAttributesBounded: a server that redirects to a URL whose
// host and path are a megabyte each (net/http takes response headers up
// to 10 MB), and fails there, does not get them into every span, nor into
// the metrics, which keep each server.address and breaker key they see:
// url.full and the breaker's key are cut at maxURLLen and server.address
// at maxHostLen, at a character's boundary, without keeping the long
// strings behind them. The first request's method, not known and a
// megabyte long (relayed from an inbound request, of up to net/http's
// 1 MB header limit), is cut at maxMethodLen in
// http.request.method_original.
func TestLongURLAttributesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		host := strings.Repeat("é", 1<<19) + ".test" // 1 MiB, two bytes a character
		path := "/" + strings.Repeat("ü", 1<<19)
		base := &stub{steps: []step{{status: 302, location: "http://" + host + path}, {status: 503}}}
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1}))
		req, _ := http.NewRequest(strings.Repeat("X", 1<<20), "http://api.test/start", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 503 || err != nil {
			t.Fatalf("%d, %v; want the 503 the open breaker keeps", code, err)
		}
		spans := tel.ended()
		if len(spans) != 4 {
			t.Fatalf("%d spans, want 2 calls of one attempt each", len(spans))
		}
		check := func(what string, kvs []attribute.KeyValue) {
			t.Helper()
			for _, kv := range kvs {
				v := kv.Value.String()
				max := maxURLLen
				switch kv.Key {
				case semconv.ServerAddressKey:
					max = maxHostLen
				case semconv.HTTPRequestMethodOriginalKey:
					max = maxMethodLen
				}
				if len(v) > max || !utf8.ValidString(v) {
					t.Errorf("%s: %s has %d bytes (valid UTF-8: %v), want at most %d", what, kv.Key, len(v), utf8.ValidString(v), max)
				}
			}
		}
		for _, s := range spans {
			check(s.Name(), s.Attributes())
		}
		if m := attrs(spans[0].Attributes())["http.request.method_original"]; m != strings.Repeat("X", maxMethodLen) {
			t.Errorf("http.request.method_original of the first attempt has %d bytes, want the method's first %d", len(m), maxMethodLen)
		}
		redirected := attrs(spans[2].Attributes())
		if u := redirected["url.full"]; !strings.HasPrefix(u, "http://%C3%A9%C3%A9") {
			t.Errorf("url.full of the redirected attempt begins %.20q, want the URL's beginning", u)
		}
		var rm metricdata.ResourceMetrics
		if err := tel.reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		keys := 0
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, set := range attributeSets(m) {
					if _, ok := set.Value(AttrBreakerKey); ok {
						keys++
					}
					check(m.Name, set.ToSlice())
				}
			}
		}
		if keys != 2 {
			t.Errorf("%d data points with a breaker key, want the transition and the state of the host's breaker", keys)
		}
	})
}
