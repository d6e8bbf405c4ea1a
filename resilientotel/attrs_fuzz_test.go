package resilientotel

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzServerAddr checks that serverAddr never records user information
// put in a URL's host by hand (nor a Host net/http would not send), that
// its port is one in range (a port written in the host when it is one,
// else the scheme's), and that its address is never longer than
// maxHostLen nor cut within a character.
func FuzzServerAddr(f *testing.F) {
	for _, s := range [][4]string{
		{"https", "", "alice:s3cret", "api.test"},
		{"http", "", "alice:pw", "[::1]:8080"},
		{"HTTPS", "", "", "api.test:65536"},
		{"", "::1", "", ""},
		{"http", "fe80::1%eth0", "", ""},
		{"https", "alice:s3cret@api.test", "", ""},
		{"ws", "", "a@b", "c:0"},
		{"https", "", "pw]:9", "[::1]"},
		{"http", "", "", "a]b:80"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, scheme, reqHost, userinfo, host string) {
		urlHost := host
		if userinfo != "" {
			urlHost = userinfo + "@" + host
		}
		req := &http.Request{URL: &url.URL{Scheme: scheme, Host: urlHost, Path: "/v1"}, Host: reqHost}
		addr, port := serverAddr(req)
		if port < 0 || port > 65535 {
			t.Fatalf("serverAddr(%q, Host %q) port %d", urlHost, reqHost, port)
		}
		if s := strings.ToLower(scheme); port == 0 && (s == "http" || s == "https") {
			t.Fatalf("serverAddr(%s://%s) port 0", scheme, urlHost)
		}
		if len(addr) > maxHostLen {
			t.Fatalf("serverAddr(%q) = %d bytes", urlHost, len(addr))
		}
		if utf8.ValidString(urlHost) && utf8.ValidString(reqHost) && !utf8.ValidString(addr) {
			t.Fatalf("serverAddr(%q, Host %q) = %q, cut within a character", urlHost, reqHost, addr)
		}
		// User information: everything before the URL host's last '@'.
		if at := strings.LastIndexByte(urlHost, '@'); at >= 0 {
			secret, rest := urlHost[:at], urlHost[at+1:]
			if len(secret) >= 4 && !strings.Contains(rest, secret) && !strings.Contains("REDACTED@", secret) && strings.Contains(addr, secret) {
				t.Fatalf("serverAddr(%q) = %q: user information recorded", urlHost, addr)
			}
		}
		if urlHost == "" && strings.Contains(reqHost, "@") && addr != "" {
			t.Fatalf("serverAddr(Host %q) = %q: a Host net/http sends empty recorded", reqHost, addr)
		}
		// A port written in a URL host (not a bare IPv6 address) is read
		// when it is one.
		if urlHost != "" && !strings.Contains(urlHost, "@") {
			if i := strings.LastIndexByte(urlHost, ':'); i > strings.LastIndexByte(urlHost, ']') && strings.Count(urlHost[:i], ":") == 0 {
				if p, err := strconv.Atoi(urlHost[i+1:]); err == nil && p > 0 && p < 65536 && port != p {
					t.Fatalf("serverAddr(%q) port %d, want %d", urlHost, port, p)
				}
			}
		}
	})
}
