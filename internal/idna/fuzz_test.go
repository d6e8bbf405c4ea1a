package idna

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// dialedHost returns the host that t, a Transport, dials for a request to
// http://name/: net/http converts an internationalized name itself
// (golang.org/x/net/idna's Lookup profile), which ToASCII must agree
// with. It reports false when t dialed nothing.
func dialedHost(t *http.Transport, dialed *string, mu *sync.Mutex, name string) (string, bool) {
	mu.Lock()
	*dialed = ""
	mu.Unlock()
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: name, Path: "/"}, Header: http.Header{}}
	if resp, err := t.RoundTrip(req); err == nil {
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if *dialed == "" {
		return "", false
	}
	host, _, err := net.SplitHostPort(*dialed)
	return host, err == nil
}

// FuzzToASCII checks what ToASCII promises: it never panics; it returns
// "" when it reports false; what it returns is ASCII, its letters lower
// case, its labels not empty and none of a hyphen at either end; a name
// in ASCII is only lower-cased; its result is read as it is again, but
// for the punycode labels ("xn--"), which it refuses; and a name past
// ASCII that it converts is the host net/http dials for it.
func FuzzToASCII(f *testing.F) {
	for _, s := range []string{
		"bücher.example", "BÜCHER.Example", "münchen-ñandú.test", "日本語.jp", "ЯНДЕКС.рф",
		"παράδειγμα.δοκιμή", "straße.de", "ｂücher.test", "ümlaut-.test", "ab--ü.test", "a_ü.test",
		"ü..test", "xn--bcher-kva.ü.test", "ﬁ.test", "İ.test", "api.example.com", "API.Example.COM",
		"ü.", ".ü", "", "ǅ.test", "Ω.test", "Ѐ.test", "ᾈ.test", "ς.test", "ä" + strings.Repeat("a", 62) + ".test",
		"ä" + strings.Repeat("a", 63) + ".test", "\u0301.test", "a\u0301.test", "ª.test", "ᵃ.test",
		"bücher\u3002example", "BÜCHER\uFF0Eexample", "api\uFF61test", "bücher.example\u3002", "\u3002ü.test",
	} {
		f.Add(s)
	}
	var (
		mu     sync.Mutex
		dialed string
	)
	errDialed := errors.New("dialed")
	tr := &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = addr
		mu.Unlock()
		return nil, errDialed
	}}
	defer tr.CloseIdleConnections()
	f.Fuzz(func(t *testing.T, name string) {
		got, ok := ToASCII(name)
		if !ok {
			if got != "" {
				t.Fatalf("ToASCII(%q) = %q, false", name, got)
			}
			return
		}
		for label := range strings.SplitSeq(got, ".") {
			if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
				t.Fatalf("ToASCII(%q) = %q: label %q", name, got, label)
			}
			for i := 0; i < len(label); i++ {
				if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
					t.Fatalf("ToASCII(%q) = %q holds %q", name, got, c)
				}
			}
		}
		ascii := true
		for i := 0; i < len(name); i++ {
			ascii = ascii && name[i] < 0x80
		}
		if ascii && got != strings.ToLower(name) {
			t.Fatalf("ToASCII(%q) = %q, want %q", name, got, strings.ToLower(name))
		}
		again, aok := ToASCII(got)
		if puny := strings.HasPrefix(got, "xn--") || strings.Contains(got, ".xn--"); puny && (aok || again != "") || !puny && (again != got || !aok) {
			t.Fatalf("ToASCII(%q) = %q; ToASCII(%q) = %q, %v", name, got, got, again, aok)
		}
		if !ascii {
			if host, dialedOK := dialedHost(tr, &dialed, &mu, name); !dialedOK || host != got {
				t.Fatalf("ToASCII(%q) = %q; net/http dials %q (%v)", name, got, host, dialedOK)
			}
		}
	})
}
