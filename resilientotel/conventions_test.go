package resilientotel

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// startSampler records the name, kind and attributes each span has when
// it starts, which is all a sampler sees, and samples every span.
type startSampler struct {
	mu     sync.Mutex
	starts []sdktrace.SamplingParameters
}

func (s *startSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	s.mu.Lock()
	p.Attributes = slices.Clone(p.Attributes)
	s.starts = append(s.starts, p)
	s.mu.Unlock()
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (*startSampler) Description() string { return "startSampler" }

// TestConventionsClientSpans checks one attempt's CLIENT span and
// http.client.request.duration measurement against the HTTP conventions
// (https://opentelemetry.io/docs/specs/semconv/http/http-spans/ and
// .../http-metrics/, as of v1.43.0, the version of the schema URL the
// tracer and the meter name), for each kind of answer: the span's kind and name;
// http.request.method, server.address, server.port and url.full given
// when it starts ("SHOULD be provided at span creation time"); the status
// ("MUST be left unset if HTTP status code was in the 1xx, 2xx or 3xx
// ranges", Error for 4xx on a client and for 5xx, no description when the
// status code says it); error.type (the status code as a string, else a
// low-cardinality identifier, absent on success); the traceparent sent,
// the attempt's own span; and the metric's unit, buckets and attributes.
func TestConventionsClientSpans(t *testing.T) {
	for _, tc := range []struct {
		name    string
		step    step
		status  int    // http.response.status_code; 0 for none
		errType string // error.type; "" for none
		code    codes.Code
		desc    string
	}{
		{"200", step{status: 200}, 200, "", codes.Unset, ""},
		{"204", step{status: 204}, 204, "", codes.Unset, ""},
		{"304", step{status: 304}, 304, "", codes.Unset, ""},
		{"400", step{status: 400}, 400, "400", codes.Error, ""},
		{"404", step{status: 404}, 404, "404", codes.Error, ""},
		{"501", step{status: 501}, 501, "501", codes.Error, ""},
		{"dns", step{err: &net.DNSError{Err: "no such host", Name: "api.test", IsNotFound: true}}, 0, "dns_error", codes.Error, "dns_error"},
		{"other", step{err: errors.New("boom")}, 0, "_OTHER", codes.Error, "_OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tel := newTelemetry()
				sampler := &startSampler{}
				tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans), sdktrace.WithSampler(sampler))
				base := &stub{steps: []step{tc.step}}
				tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxRetries(0))
				req, _ := http.NewRequest("GET", "https://api.test/v1/posts/7?page=2", nil)
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}

				clients := tel.ended(int(trace.SpanKindClient))
				if len(clients) != 1 {
					t.Fatalf("%d CLIENT spans, want 1", len(clients))
				}
				s := clients[0]
				if s.Name() != "GET" {
					t.Errorf("name %q, want GET", s.Name())
				}
				start := map[string]string{
					"http.request.method": "GET", "server.address": "api.test", "server.port": "443",
					"url.full": "https://api.test/v1/posts/7", // the query dropped, as in the logs
				}
				var atStart []attribute.KeyValue
				for _, p := range sampler.starts {
					if p.Kind == trace.SpanKindClient {
						atStart = p.Attributes
					}
				}
				wantAttrs(t, "at start", atStart, start)
				end := map[string]string{}
				for k, v := range start {
					end[k] = v
				}
				metric := map[string]string{"http.request.method": "GET", "server.address": "api.test", "server.port": "443"}
				if tc.status != 0 {
					end["http.response.status_code"] = itoa(tc.status)
					end["network.protocol.version"] = "1.1"
					metric["http.response.status_code"] = itoa(tc.status)
					metric["network.protocol.version"] = "1.1"
				}
				if tc.errType != "" {
					end["error.type"] = tc.errType
					metric["error.type"] = tc.errType
				}
				wantAttrs(t, "at end", s.Attributes(), end)
				if st := s.Status(); st.Code != tc.code || st.Description != tc.desc {
					t.Errorf("status %v %q, want %v %q", st.Code, st.Description, tc.code, tc.desc)
				}
				// The call's span has the same status: no description
				// where the status code says it.
				if calls := tel.ended(int(trace.SpanKindInternal)); len(calls) != 1 {
					t.Errorf("%d INTERNAL spans, want 1", len(calls))
				} else if st := calls[0].Status(); st.Code != tc.code || st.Description != tc.desc {
					t.Errorf("call status %v %q, want %v %q", st.Code, st.Description, tc.code, tc.desc)
				}
				sc := s.SpanContext()
				want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
				if got := base.sent("Traceparent"); len(got) != 1 || got[0] != want {
					t.Errorf("traceparent sent %q, want the CLIENT span's %q", got, want)
				}

				m := tel.metrics(t)["http.client.request.duration"]
				if m.Unit != "s" {
					t.Errorf("unit %q, want s", m.Unit)
				}
				h, ok := m.Data.(metricdata.Histogram[float64])
				if !ok || len(h.DataPoints) != 1 {
					t.Fatalf("http.client.request.duration %T with %d points, want one float64 histogram point", m.Data, len(h.DataPoints))
				}
				p := h.DataPoints[0]
				if want := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}; !slices.Equal(p.Bounds, want) {
					t.Errorf("bucket boundaries %v, want %v", p.Bounds, want)
				}
				wantAttrs(t, "metric", p.Attributes.ToSlice(), metric)
			})
		})
	}
}

// TestConventionsDurationMatchesSpan: "When this metric is reported
// alongside an HTTP client span, the metric value SHOULD be the same as
// the HTTP client span duration" (http-metrics), on the real clock, where
// time passes between the instrumentation's reading of it and the SDK's.
func TestConventionsDurationMatchesSpan(t *testing.T) {
	tel := newTelemetry()
	tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(tel.config()))
	for range 20 {
		req, _ := http.NewRequest("GET", "https://api.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var spans float64
	for _, s := range tel.ended(int(trace.SpanKindClient)) {
		spans += s.EndTime().Sub(s.StartTime()).Seconds()
	}
	_, sum := total(t, tel.metrics(t), "http.client.request.duration")
	if math.Abs(sum-spans) > 1e-9 {
		t.Errorf("http.client.request.duration adds up to %v s, the CLIENT spans last %v s", sum, spans)
	}
}

// TestConventionsStatusNotInterpreted: "For HTTP status codes in the 5xx
// range, as well as any other code the client failed to interpret, span
// status SHOULD be set to Error" (http-spans, Status), with error.type the
// status code as a string, as otelhttp does for a code below 100: net/http
// hands over the response of a status line "HTTP/1.1 099 X" (StatusCode
// 99) or "HTTP/1.1 000 X" (StatusCode 0), which no status class covers. A
// code of 0 is no status code (no http.response.status_code), and
// error.type _OTHER, as on the call's span, whose Report says 0 for no
// response.
func TestConventionsStatusNotInterpreted(t *testing.T) {
	for _, tc := range []struct {
		code    int
		status  string // http.response.status_code; "" for none
		errType string
	}{
		{99, "99", "99"},
		{0, "", "_OTHER"},
	} {
		t.Run(itoa(tc.code), func(t *testing.T) {
			tel := newTelemetry()
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: tc.code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			})
			tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxRetries(0))
			req, _ := http.NewRequest("GET", "https://api.test/v1/posts", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			want := map[string]string{"error.type": tc.errType}
			if tc.status != "" {
				want["http.response.status_code"] = tc.status
			}
			for _, s := range tel.ended() {
				a := attrs(s.Attributes())
				for k, v := range want {
					if a[k] != v {
						t.Errorf("%v span: %s = %q, want %q", s.SpanKind(), k, a[k], v)
					}
				}
				if s.Status().Code != codes.Error {
					t.Errorf("%v span: status %v, want Error", s.SpanKind(), s.Status())
				}
			}
			for enc := range histogramPoints(t, tel.metrics(t)["http.client.request.duration"]) {
				if !strings.Contains(enc, "error.type="+tc.errType) {
					t.Errorf("http.client.request.duration attributes %s, want error.type=%s", enc, tc.errType)
				}
			}
		})
	}
}

// TestConventionsStatusOutOfRangeBounded: net/http's HTTP/2 client takes
// any number a server sends as :status (strconv.Atoi, no range check),
// where an HTTP/1 status line carries three digits: a hostile server that
// answers 1000, 1001, 1002… would make each answer a series of its own
// in http.client.request.duration and resilient.client.call.duration
// (http.response.status_code, error.type), until the SDK's cardinality
// limit folds every host's series into its overflow. Such a code, as a
// negative one, is no status code: as a code of 0, no
// http.response.status_code, error.type _OTHER, on the spans and the
// metrics alike.
func TestConventionsStatusOutOfRangeBounded(t *testing.T) {
	tel := newTelemetry()
	var n atomic.Int64
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		code := 1000 + int(n.Add(1))
		if code%10 == 0 {
			code = -code
		}
		return &http.Response{StatusCode: code, Proto: "HTTP/2.0", ProtoMajor: 2,
			Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxRetries(0))
	for range 50 {
		req, _ := http.NewRequest("GET", "https://api.test/v1/posts", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ms := tel.metrics(t)
	for _, name := range []string{"http.client.request.duration", MetricCallDuration} {
		points := histogramPoints(t, ms[name])
		if len(points) > 2 {
			t.Errorf("%s: %d series for 50 codes out of range, want 2 at most (one per resilient.outcome)", name, len(points))
		}
		for enc := range points {
			if strings.Contains(enc, "http.response.status_code") || !strings.Contains(enc, "error.type=_OTHER") {
				t.Errorf("%s attributes %s, want error.type=_OTHER and no http.response.status_code", name, enc)
				break
			}
		}
	}
	bad := map[trace.SpanKind]bool{}
	for _, s := range tel.ended() {
		a := attrs(s.Attributes())
		if v, ok := a["http.response.status_code"]; (ok || a["error.type"] != "_OTHER" || s.Status().Code != codes.Error) && !bad[s.SpanKind()] {
			bad[s.SpanKind()] = true // one error per kind of span
			t.Errorf("%v span: http.response.status_code %q, error.type %q, status %v; want none, _OTHER, Error",
				s.SpanKind(), v, a["error.type"], s.Status())
		}
	}
}

// TestConventionsMethodOther: a method not known is _OTHER, named "HTTP"
// (with a template, "HTTP {url.template}"), with
// http.request.method_original; a known one has no
// http.request.method_original ("If and only if it's different").
func TestConventionsMethodOther(t *testing.T) {
	tel := newTelemetry()
	cfg := tel.config()
	cfg.URLTemplate = func(*http.Request) string { return "/v1/{x}" }
	cfg.Propagator = propagation.TraceContext{}
	tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(cfg))
	for _, m := range []string{"FOO", "get", "PUT"} {
		req, _ := http.NewRequest(m, "http://api.test:8080/v1/a", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var got []string
	for _, s := range tel.ended(int(trace.SpanKindClient)) {
		a := attrs(s.Attributes())
		orig, ok := a["http.request.method_original"]
		if !ok {
			orig = "-"
		}
		got = append(got, s.Name()+"|"+a["http.request.method"]+"|"+orig+"|"+a["server.port"])
	}
	want := []string{"HTTP /v1/{x}|_OTHER|FOO|8080", "HTTP /v1/{x}|_OTHER|get|8080", "PUT /v1/{x}|PUT|-|8080"}
	if !slices.Equal(got, want) {
		t.Errorf("CLIENT spans %q, want %q", got, want)
	}
}

func itoa(n int) string { return attribute.IntValue(n).String() }

// TestConventionsNetworkPeer: network.peer.address and network.peer.port
// are Recommended on a CLIENT span ("Peer address of the network
// connection"): the address and port of the connection the attempt was
// sent on, as net/http reports it (httptrace's GotConn), over a real
// loopback connection. They are not attributes of
// http.client.request.duration, whose attributes the conventions list.
func TestConventionsNetworkPeer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []resilienttest.Option
		proto string
	}{
		{"http1", nil, "1.1"},
		{"http2", []resilienttest.Option{resilienttest.WithTLS()}, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := resilienttest.NewServer(resilienttest.Altyaa, tc.opts...)
			defer srv.Close()
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			host, port, err := net.SplitHostPort(u.Host)
			if err != nil {
				t.Fatal(err)
			}
			tel := newTelemetry()
			client := &http.Client{Transport: resilient.New(srv.Transport(), Instrument(tel.config()))}
			for range 2 { // a new connection, then the same one reused
				req, _ := http.NewRequest("GET", srv.URL+"/v1/posts", nil)
				if _, err := do(t, client, req); err != nil {
					t.Fatal(err)
				}
			}
			clients := tel.ended(int(trace.SpanKindClient))
			if len(clients) != 2 {
				t.Fatalf("%d CLIENT spans, want 2", len(clients))
			}
			for i, s := range clients {
				a := attrs(s.Attributes())
				if a["network.peer.address"] != host || a["network.peer.port"] != port || a["network.protocol.version"] != tc.proto {
					t.Errorf("span %d: network.peer.address %q, network.peer.port %q, network.protocol.version %q, want %q, %q and %q",
						i, a["network.peer.address"], a["network.peer.port"], a["network.protocol.version"], host, port, tc.proto)
				}
			}
			h := tel.metrics(t)["http.client.request.duration"].Data.(metricdata.Histogram[float64])
			for _, p := range h.DataPoints {
				for _, kv := range p.Attributes.ToSlice() {
					if strings.HasPrefix(string(kv.Key), "network.peer.") {
						t.Errorf("http.client.request.duration has %s", kv.Key)
					}
				}
			}
		})
	}
}

// TestConventionsNetworkPeerUnixSocket: a request sent over a Unix socket
// has the socket's name as network.peer.address and no network.peer.port
// (a port 0 is no port): "IP address or Unix domain socket name".
func TestConventionsNetworkPeerUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "otel") // short: a socket's path has a limit
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no Unix sockets: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("{}")) })}
	go srv.Serve(ln)
	defer srv.Close()
	base := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer base.CloseIdleConnections()
	tel := newTelemetry()
	client := &http.Client{Transport: resilient.New(base, Instrument(tel.config()))}
	req, _ := http.NewRequest("GET", "http://api.test/v1/posts", nil)
	if _, err := do(t, client, req); err != nil {
		t.Fatal(err)
	}
	clients := tel.ended(int(trace.SpanKindClient))
	if len(clients) != 1 {
		t.Fatalf("%d CLIENT spans, want 1", len(clients))
	}
	a := attrs(clients[0].Attributes())
	if addr, port := a["network.peer.address"], a["network.peer.port"]; addr != sock || port != "" {
		t.Errorf("network.peer.address %q, network.peer.port %q; want %q and none", addr, port, sock)
	}
}

// TestPeerAddr: network.peer.address and network.peer.port of a
// connection's remote address: an IP (an IPv6 one with its zone) and a
// port, a Unix socket's name without a port, and nothing for an address
// that is neither (net.Pipe's, an in-memory server's).
func TestPeerAddr(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		host string
		port int
	}{
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 80), Port: 65123}, "10.1.2.80", 65123},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, "2001:db8::1", 443},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"}, "fe80::1%eth0", 80},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443}, "10.0.0.1", 443},
		{&net.UnixAddr{Name: "/tmp/my.sock", Net: "unix"}, "/tmp/my.sock", 0},
		{&net.UnixAddr{Name: "", Net: "unix"}, "", 0},
		{&net.TCPAddr{Port: 80}, "", 0}, // no IP: not "<nil>"
		{pipeAddr{}, "", 0},
		{nil, "", 0},
	} {
		host, port := peerAddr(tc.addr)
		if host != tc.host || port != tc.port {
			t.Errorf("peerAddr(%v) = %q, %d, want %q, %d", tc.addr, host, port, tc.host, tc.port)
		}
	}
}

// pipeAddr is an address that is neither IP nor Unix, as net.Pipe's.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
