package redact

import "testing"

// TestPathMarkerAsCredential: Path redacted the segments in order, in
// place, and read the ones before a segment to tell whether it is a
// credential: a credential that is itself a marker's word ("webhooks",
// "interactions", "services", …) was REDACTED first, and the credential
// that the marker announced was then kept.
func TestPathMarkerAsCredential(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/api/webhooks/1/webhooks/2/s3cret", "/api/webhooks/1/REDACTED/2/REDACTED"},
		{"/webhooks/0/interactions/456/s3cret/callback", "/webhooks/0/REDACTED/456/REDACTED/callback"},
		{"/api/webhooks/1/services/T1/B2/s3cret", "/api/webhooks/1/REDACTED/T1/B2/REDACTED"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
