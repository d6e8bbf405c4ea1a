package resilientotel

import (
	"net/http"
	"strings"
	"testing"
)

// TestURLFullRedactsEchoAcrossTheCutAndOpaque: url.full of a request that
// followed a redirect built from the key the caller sent in the query has
// none of it, also where the key sits across the cut of a path longer
// than maxURLLen (its first bytes were kept: the path was cut before the
// key was looked for), and in an opaque URL, which http.Client follows as
// it is from a Location of "https:api.test/v1/keys/<key>/usage".
func TestURLFullRedactsEchoAcrossTheCutAndOpaque(t *testing.T) {
	const secret = "k3y-0123456789abcdef"
	// The path's cut keeps 19 bytes of the key; url.full, cut again,
	// keeps the first 3 ("https://api.test" comes before the path).
	const kept = 19
	leak := secret[:kept-len("https://api.test")]
	for _, location := range []string{
		"/" + strings.Repeat("p", maxURLLen-len("//")-kept) + "/" + secret + "/usage",
		"https:api.test/v1/keys/" + secret + "/usage",
	} {
		first, _ := http.NewRequest("GET", "https://api.test/v1/usage?api_key="+secret, nil)
		u, err := first.URL.Parse(location)
		if err != nil {
			t.Fatal(err)
		}
		next := &http.Request{Method: "GET", URL: u, Header: http.Header{},
			Response: &http.Response{StatusCode: http.StatusFound, Request: first}}
		got := redactedURL(next)
		if i := strings.Index(got, leak); i >= 0 {
			t.Errorf("url.full of a redirect to %.40q… holds the key the caller sent: …%s", location, got[max(i-16, 0):])
		}
		if len(got) > maxURLLen {
			t.Errorf("url.full has %d bytes, want at most %d", len(got), maxURLLen)
		}
	}
}
