package resilient

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestProxyPasswordWithDelimiterRedacted: a proxy's password written
// unescaped in HTTPS_PROXY with a '/', a '?' or a '#' in it (a common
// mistake) makes net/http fail every request with its own words,
// `invalid proxy address "http://alice:pa/ss…@proxy:3128": parse …`,
// quoting the address twice. url.Parse reads the authority as ending at
// that character, but the text up to the '@' after it is still the user
// information, which the Transport's error, Attempt.Err and log record
// must not hold: no `user:pass@` in a URL the Transport quotes.
func TestProxyPasswordWithDelimiterRedacted(t *testing.T) {
	for _, proxy := range []string{
		"http://alice:pa/SECRET-proxy-pw@proxy.test:3128",
		"http://alice:pa?SECRET-proxy-pw@proxy.test:3128",
		"http://alice:pa#SECRET-proxy-pw@proxy.test:3128",
		"http://alice:pa/SECRET-proxy-pw@proxy.test:3128/",
	} {
		t.Run(proxy, func(t *testing.T) {
			// As net/http's ProxyFromEnvironment words it.
			_, perr := url.Parse(proxy)
			if perr == nil {
				t.Fatalf("url.Parse(%q) succeeded", proxy)
			}
			cause := fmt.Errorf("invalid proxy address %q: %v", proxy, perr)
			var logs bytes.Buffer
			var atts []Attempt
			tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0),
				WithObserver(func(a Attempt) { atts = append(atts, a) }),
				WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			_, err := tr.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1", nil))
			if err == nil || len(atts) != 1 {
				t.Fatalf("err %v, %d attempts observed; want an error and one", err, len(atts))
			}
			for name, out := range map[string]string{
				"Error":       err.Error(),
				"Attempt.Err": atts[0].Err.Error(),
				"log":         logs.String(),
			} {
				for _, secret := range []string{"SECRET-proxy-pw", "alice:pa"} {
					if strings.Contains(out, secret) {
						t.Errorf("%s holds %q: %s", name, secret, out)
					}
				}
			}
			if !strings.Contains(err.Error(), "proxy.test:3128") {
				t.Errorf("Error %q lost the proxy's address", err)
			}
		})
	}
}
