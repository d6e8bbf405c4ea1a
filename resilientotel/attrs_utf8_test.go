package resilientotel

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/resilienthttp/resilient"
)

// TestAttributesValidUTF8: a server that redirects to a URL written with
// bytes that are no UTF-8 (a host "%ff%fe.test", which url.Parse takes into
// URL.Host as the bytes 0xff 0xfe; an opaque URL, whose Opaque url.Parse
// keeps as it is; a path, which a caller's URLTemplate keeps), and a
// caller's method that is no UTF-8, put no invalid
// UTF-8 in any attribute, of a span or a metric: OTLP's protobuf strings
// must be UTF-8, and one such value makes the exporter drop the whole
// batch, and, in a cumulative metric series kept for the life of the
// process, every metrics export after it. The breaker that opens on that
// host names it in valid UTF-8 too.
func TestAttributesValidUTF8(t *testing.T) {
	for _, tc := range []struct {
		name, method, location string
		template               bool
	}{
		{"host", "GET", "http://%ff%fe.test/v1/x", false},
		{"opaque", "GET", "https:\xff\xfe.test/v1/x", false},
		{"method", "G\xffT", "http://api.test/v1/x", false},
		{"template", "GET", "http://api.test/v1/\xff\xfe", true},
	} {
		t.Run(tc.name, func(t *testing.T) { validUTF8Attributes(t, tc.method, tc.location, tc.template) })
	}
}

func validUTF8Attributes(t *testing.T, method, location string, template bool) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 302, location: location}, {status: 503}}}
		cfg := tel.config()
		if template {
			// A caller's template that keeps the path's bytes: the
			// redirected one's are the server's.
			cfg.URLTemplate = func(r *http.Request) string { return r.URL.Path }
		}
		tr := resilient.New(base, Instrument(cfg), resilient.WithMaxRetries(0),
			resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1}))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		req.Method = method // net/http's own Transport would refuse it; a base of the caller's may not
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 503 || err != nil {
			t.Fatalf("%d, %v; want the redirected host's 503", code, err)
		}
		check := func(what string, kvs []attribute.KeyValue) {
			t.Helper()
			for _, kv := range kvs {
				if v := kv.Value.String(); !utf8.ValidString(v) {
					t.Errorf("%s: %s = %q, not UTF-8", what, kv.Key, v)
				}
			}
		}
		spans := tel.ended()
		if len(spans) != 4 {
			t.Fatalf("%d spans, want 4: two calls of one attempt each", len(spans))
		}
		for _, s := range spans {
			if !utf8.ValidString(s.Name()) {
				t.Errorf("span name %q, not UTF-8", s.Name())
			}
			check("span "+s.Name(), s.Attributes())
		}
		var rm metricdata.ResourceMetrics
		if err := tel.reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, s := range attributeSets(m) {
					check("metric "+m.Name, s.ToSlice())
				}
			}
		}
	})
}
