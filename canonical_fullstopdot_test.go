package resilient

import "testing"

// TestCanonicalHostFinalDotAfterFullStop: net/http reads the full stops
// that UTS #46 maps to '.' (U+3002, U+FF0E, U+FF61) as '.', so a name
// ending with one and then a '.' ("ü.example。.") is dialed with an empty
// label ("xn--tda.example.."), a name no resolver finds, and the one
// without that '.' ("ü.example。") as the fully-qualified
// "xn--tda.example.". As for "api.example.com..", the final '.' must not
// go: the two would share one breaker, one budget and one partition.
func TestCanonicalHostFinalDotAfterFullStop(t *testing.T) {
	for _, tc := range [][2]string{
		{"ü.example\u3002.", "ü.example\u3002"},
		{"api.test\uFF0E.", "api.test\uFF0E"},
		{"api.test\uFF61.:8443", "api.test\uFF61:8443"},
		{"ü.example\u3002.:443", "ü.example\u3002"},
	} {
		if a, b := canonicalHost("https", tc[0]), canonicalHost("https", tc[1]); a == b {
			t.Errorf("canonicalHost(https, %q) = canonicalHost(https, %q) = %q: net/http dials them apart", tc[0], tc[1], a)
		}
	}
	var names hostNames
	names.init()
	if _, c := names.canonical("https", "ü.example\u3002."); c != canonicalHost("https", "ü.example\u3002.") {
		t.Errorf("hostNames gives %q for %q, canonicalHost %q", c, "ü.example\u3002.", canonicalHost("https", "ü.example\u3002."))
	}
}
