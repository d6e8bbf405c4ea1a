package resilient

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRequestFieldsParity: what the server sees of a request whose caller
// set net/http's own fields (Host, Close, TransferEncoding, Trailer,
// http.NoBody, an Opaque URL, Proxy-Authorization for its proxy) is the
// same through New(base) as through base, on a first attempt and on the
// retry after a 503.
func TestRequestFieldsParity(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{} // by X-Run
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var names []string
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		run := r.Header.Get("X-Run")
		mu.Lock()
		seen[run] = append(seen[run], fmt.Sprintf("%s host=%s uri=%s close=%v te=%v length=%d body=%q trailer=%v proxy-auth=%q headers=%v",
			r.Method, r.Host, r.RequestURI, r.Close, r.TransferEncoding, r.ContentLength, b, r.Trailer, r.Header.Get("Proxy-Authorization"), names))
		n := len(seen[run])
		mu.Unlock()
		if r.URL.Query().Has("retry") && n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	proxy, _ := url.Parse(srv.URL)
	for _, c := range []struct {
		name string
		mk   func(query string) *http.Request
	}{
		{"Host", func(q string) *http.Request {
			r, _ := http.NewRequest("GET", srv.URL+"/"+q, nil)
			r.Host = "other.test"
			return r
		}},
		{"Close", func(q string) *http.Request {
			r, _ := http.NewRequest("GET", srv.URL+"/"+q, nil)
			r.Close = true
			return r
		}},
		{"TransferEncoding", func(q string) *http.Request {
			r, _ := http.NewRequest("PUT", srv.URL+"/"+q, strings.NewReader("hello"))
			r.TransferEncoding = []string{"chunked"}
			return r
		}},
		{"NoBody", func(q string) *http.Request {
			r, _ := http.NewRequest("PUT", srv.URL+"/"+q, http.NoBody)
			return r
		}},
		{"Trailer", func(q string) *http.Request {
			r, _ := http.NewRequest("PUT", srv.URL+"/"+q, strings.NewReader("hello"))
			r.Trailer = http.Header{"X-Sum": {"abc"}}
			r.ContentLength = -1
			return r
		}},
		{"Opaque", func(q string) *http.Request {
			r, _ := http.NewRequest("GET", srv.URL+"/"+q, nil)
			r.URL.Opaque = "//" + r.URL.Host + "/a%2Fb"
			return r
		}},
		{"Proxy-Authorization", func(q string) *http.Request {
			r, _ := http.NewRequest("GET", "http://far.test/"+q, nil)
			r.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
			return r
		}},
	} {
		for _, q := range []string{"", "?retry"} {
			t.Run(c.name+q, func(t *testing.T) {
				view := func(rt http.RoundTripper, run string) string {
					req := c.mk(q)
					req.Header.Set("X-Run", run)
					resp, err := (&http.Client{Transport: rt}).Do(req)
					if err != nil {
						return "error: " + err.Error()
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					lines := seen[run]
					return fmt.Sprintf("%d; the last request the server saw: %s", resp.StatusCode, lines[len(lines)-1])
				}
				base := func() *http.Transport {
					tr := &http.Transport{Proxy: http.ProxyURL(proxy)} // every host is srv
					t.Cleanup(tr.CloseIdleConnections)
					return tr
				}
				plain := view(base(), t.Name()+"/plain")
				ours := view(New(base(), WithBackoff(0, 0), WithMaxRetries(2), WithAttemptTimeout(time.Minute)), t.Name()+"/ours")
				if q != "" && !strings.HasPrefix(plain, "503") {
					t.Fatalf("plain = %s; want the 503", plain)
				}
				if q != "" {
					// Ours retried the 503: the retry is compared with the
					// plain client's only request.
					plain = strings.Replace(plain, "503", "200", 1)
				}
				if plain != ours {
					t.Errorf("\n ours  %s\n plain %s", ours, plain)
				}
			})
		}
	}
}
