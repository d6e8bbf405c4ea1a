package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestEchoesAuthorizationSignatureAlone: an Authorization whose credentials
// are a name and a signature ("SharedKey <account>:<signature>" of Azure
// Storage, "AWS <access key id>:<signature>" of S3's first signature) is
// REDACTED where a server echoes the signature alone, as both do when it
// does not match ("The MAC signature found in the HTTP request '…' is not
// the same as any computed signature", <SignatureProvided>…). Only the
// whole "<account>:<signature>" was looked for.
func TestEchoesAuthorizationSignatureAlone(t *testing.T) {
	const sig = "ctab9Vb0mEo3FZ4Xsk7XIlhGMZsMN5Vc2ubXRr8QOOk="
	for _, tc := range []struct{ name, value, in, want string }{
		{"Authorization", "SharedKey myaccount:" + sig,
			"The MAC signature found in the HTTP request '" + sig + "' is not the same as any computed signature.",
			"The MAC signature found in the HTTP request 'REDACTED' is not the same as any computed signature."},
		{"authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
			"<SignatureProvided>qgk2+6Sv9/oM7G3qLEjTH1a1l1g=</SignatureProvided>",
			"<SignatureProvided>REDACTED</SignatureProvided>"},
		{"Proxy-Authorization", "SharedKeyLite acct:" + sig, "bad signature " + sig, "bad signature REDACTED"},
	} {
		req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}, Header: http.Header{tc.name: {tc.value}}}
		if got := Echoes(tc.in, req); got != tc.want {
			t.Errorf("%s: %s: Echoes(%q) = %q, want %q", tc.name, tc.value, tc.in, got, tc.want)
		}
	}
}
