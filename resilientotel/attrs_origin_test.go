package resilientotel

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
)

// TestServerAddressIsTheURLOrigin: a request made to an IP address, with
// the Host header of a virtual host, records the address and port it is
// sent to, as otelhttp records them ("If an HTTP client request is
// explicitly made to an IP address, e.g. http://x.x.x.x:8080, then
// server.address SHOULD be the IP address x.x.x.x", the conventions say
// too): not the Host header's name, with its scheme's port, where no
// connection went (see the package documentation, "Where it departs from
// the conventions").
func TestServerAddressIsTheURLOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://10.0.0.5:8080/v1", nil)
		req.Host = "svc.test"
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		spans := tel.ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want 2", len(spans))
		}
		for _, s := range spans {
			a := attrs(s.Attributes())
			if a["server.address"] != "10.0.0.5" || a["server.port"] != "8080" {
				t.Errorf("%v span: server.address %q, server.port %q; want 10.0.0.5 and 8080", s.SpanKind(), a["server.address"], a["server.port"])
			}
		}
		for _, p := range sortedKeys(histogramPoints(t, tel.metrics(t)["http.client.request.duration"])) {
			if !strings.Contains(p, "server.address=10.0.0.5,server.port=8080") {
				t.Errorf("duration point %s, want server.address 10.0.0.5 and server.port 8080", p)
			}
		}
	})
}
