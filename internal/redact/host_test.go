package redact

import "testing"

func TestValidHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"", true},
		{"api.test", true},
		{"api.test:8443", true},
		{"[fe80::1%25eth0]:80", true},
		{"bücher.test", true}, // sent in punycode
		{"alice:s3cret@api.test", false},
		{"api.test/path", false},
		{"api test", false},
		{"api.test\r\nX: y", false},
	} {
		if got := ValidHost(tc.host); got != tc.want {
			t.Errorf("ValidHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}
