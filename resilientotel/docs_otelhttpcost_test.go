package resilientotel

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// TestReadmeOtelhttpBaseAllocs checks the README's figure for otelhttp as
// the Transport's base on the no-op providers ("adds N–M allocations",
// measured by BenchmarkInstrumentNoopSideBySide) against the allocations
// it adds to a call of one attempt, without and with a caller's span
// context: the range must be exactly theirs.
func TestReadmeOtelhttpBaseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`otelhttp as the base adds (\d+)–(\d+) allocations`).FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md: no figure for otelhttp as the base")
	}
	lo, _ := strconv.Atoi(string(m[1]))
	hi, _ := strconv.Atoi(string(m[2]))
	added := func(ctx context.Context) int {
		cfg := noopConfig()
		bare := resilient.New(cannedRT{200})
		inst := resilient.New(otelhttp.NewTransport(cannedRT{200}, otelhttp.WithTracerProvider(cfg.TracerProvider),
			otelhttp.WithMeterProvider(cfg.MeterProvider), otelhttp.WithPropagators(cfg.Propagator)))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
		if err != nil {
			t.Fatal(err)
		}
		call := func(rt http.RoundTripper) {
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatal(resp, err)
			}
		}
		call(inst)
		call(bare)
		return int(testing.AllocsPerRun(200, func() { call(inst) }) - testing.AllocsPerRun(200, func() { call(bare) }))
	}
	plain, parent := added(context.Background()), added(remoteParent(context.Background()))
	if lo != min(plain, parent) || hi != max(plain, parent) {
		t.Errorf("README.md says otelhttp as the base adds %d–%d allocations; it adds %d, %d with a caller's span context", lo, hi, plain, parent)
	}
}
