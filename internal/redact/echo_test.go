package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestEchoes(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	u, _ := url.Parse("https://bob:hunter2-pw@api.example.com/v1?api_key=k%2Bey-12345&limit=100000000&sig=abcdefgh")
	req := &http.Request{URL: u, Header: http.Header{
		"Authorization":   {"Bearer sk_live_abcdef"},
		"X-Api-Key":       {"xkey-1234567"},
		"Cookie":          {"theme=dark; session=sess-1234567"},
		"Idempotency-Key": {"idem-12345678"},
		"User-Agent":      {"agent-12345678"},
	}}
	for _, tc := range []struct {
		in, want string
	}{
		{"", ""},
		{"short", "short"},
		{"Invalid API Key provided: sk_live_abcdef", "Invalid API Key provided: REDACTED"},
		{"bad header Bearer sk_live_abcdef", "bad header Bearer REDACTED"},
		{"key xkey-1234567 revoked", "key REDACTED revoked"},
		{"session sess-1234567 expired", "session REDACTED expired"},
		{"password hunter2-pw is wrong", "password REDACTED is wrong"},
		{"bad key k+ey-12345 and k%2Bey-12345", "bad key REDACTED and REDACTED"},
		{"sig abcdefgh mismatch", "sig REDACTED mismatch"},
		// A server that writes the credential it got in another case:
		// in a message it upper-cases, in an error code it builds from it.
		{"INVALID API KEY PROVIDED: SK_LIVE_ABCDEF", "INVALID API KEY PROVIDED: REDACTED"},
		{"unknown_key_XKEY-1234567", "unknown_key_REDACTED"},
		{"SESSION Sess-1234567 EXPIRED", "SESSION REDACTED EXPIRED"},
		{"token " + jwt + " expired", "token REDACTED expired"},
		{jwt, "REDACTED"},
		{`expected "Bearer other-token-1"`, `expected "Bearer REDACTED"`},
		{"Missing Bearer credentials", "Missing Bearer credentials"},
		{"Bearer authentication is required", "Bearer authentication is required"},
		{"bad Bearer AbCdEfGhIjKl", "bad Bearer REDACTED"},
		// Not credentials: a parameter whose name says nothing, the
		// idempotency key, another header, a request id.
		{"limit 100000000 too high", "limit 100000000 too high"},
		{"key idem-12345678 reused", "key idem-12345678 reused"},
		{"agent agent-12345678 blocked", "agent agent-12345678 blocked"},
		{"req_01HZX4V6T2M9Q8", "req_01HZX4V6T2M9Q8"},
		{"eyJ.not-a-jwt", "eyJ.not-a-jwt"},
	} {
		if got := Echoes(tc.in, req); got != tc.want {
			t.Errorf("Echoes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Echoes("Bearer some-token-1", nil); got != "Bearer REDACTED" {
		t.Errorf("Echoes(%q, nil) = %q, want %q", "Bearer some-token-1", got, "Bearer REDACTED")
	}
}

// TestEchoesGluedTokens checks that a JSON Web Token, and the token after
// "Bearer", are found wherever a server's text puts them: at the end of a
// sentence, after the name of the parameter or header that carried them
// ("id_token=eyJ…", "Authorization:Bearer …"), in brackets, after a tab or
// in an upper-cased message. Each of these was left as it was, the token
// with it, since the words were split at spaces and quotes only.
func TestEchoesGluedTokens(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	for _, tc := range []struct{ in, want string }{
		{"token " + jwt + ". Sign in again", "token REDACTED. Sign in again"},
		{"token " + jwt + "; retry", "token REDACTED; retry"},
		{"id_token=" + jwt + " expired", "id_token=REDACTED expired"},
		{"jwt:" + jwt + " expired", "jwt:REDACTED expired"},
		{"[" + jwt + "] expired", "[REDACTED] expired"},
		{"a=" + jwt + "&b=" + jwt, "a=REDACTED&b=REDACTED"},
		{"header Authorization:Bearer ya29.a0AfH6SMB rejected", "header Authorization:Bearer REDACTED rejected"},
		{"header authorization=Bearer ya29.a0AfH6SMB rejected", "header authorization=Bearer REDACTED rejected"},
		{"got [Bearer ya29.a0AfH6SMB, scope=x]", "got [Bearer REDACTED, scope=x]"},
		{"bearer\tya29.a0AfH6SMB rejected", "bearer\tREDACTED rejected"},
		{"TOKEN TYPE BEARER ya29.a0AfH6SMB REJECTED", "TOKEN TYPE BEARER REDACTED REJECTED"},
		// Not the word after "Bearer": a word that only ends so. Not a
		// token: one inside a longer run of its characters.
		{"Forbearer ya29.a0AfH6SMB", "Forbearer ya29.a0AfH6SMB"},
		{"x" + jwt + " and _" + jwt, "x" + jwt + " and _" + jwt},
	} {
		if got := Echoes(tc.in, nil); got != tc.want {
			t.Errorf("Echoes(%q, nil) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Echoes of a text with nothing to redact does not allocate: it runs for
// every recorded request id.
func TestEchoesNoAlloc(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1?access_token=tok-12345678")
	req := &http.Request{URL: u, Header: http.Header{"Authorization": {"Bearer sk_live_abcdef"}, "Accept": {"*/*"}}}
	if n := testing.AllocsPerRun(100, func() { Echoes("7f3c2a9e-1b4d-4c8e-9f2a-123456789abc", req) }); n != 0 {
		t.Errorf("Echoes(request id) allocates %v times, want 0", n)
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "X-Api-Key": true,
		"api_key": true, "access_token": true, "sig": true, "X-Amz-Signature": true, "X-Amz-Credential": true,
		"key": true, "password": true, "X-Session-Id": true, "client_secret": true,
		"Idempotency-Key": false, "X-Idempotency-Key": false, "Accept": false, "limit": false, "User-Agent": false,
		// Names whose words speak of one.
		"apikey": true, "apiKey": true, "XApiKey": true, "AccessToken": true, "accesstoken": true, "X-Auth-Token": true,
		"X-Auth": true, "authtoken": true, "sessionid": true, "Set-Cookie": true, "X-Amz-Security-Token": true,
		"x-goog-signature": true, "private_key": true, "privateKey": true, "AWSAccessKeyId": true, "passwd": true,
		"API-Sign": true, "KC-API-SIGN": true, "OK-ACCESS-SIGN": true, "sign": true, "signed_request": true,
		"passcode": true, "X-Passcode": true, "x-vercel-protection-bypass": true, "bypass": true, "JSESSIONID": true, "key2": true, "apiKey2": true, "tokenizer_version": true,
		// A password's and a JSON Web Token's short names: Zoom's pwd, WSO2's
		// X-JWT-Assertion.
		"pwd": true, "user_pwd": true, "userPwd": true, "jwt": true, "X-JWT-Assertion": true,
		// Common words that only contain one: not credentials.
		"author": false, "authors": false, "keyword": false, "keywords": false, "assignee": false, "design": false,
		"passenger": false, "credit": false, "credit_card_last4": false, "signal": false, "Author-Name": false,
		"sort_by": false, "q": false, "code": false, "country_code": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %v, want %v", name, got, want)
		}
	}
}

// A server that refuses Basic credentials may echo the user name or the
// password it decoded, rather than the base64 the caller sent.
func TestEchoesBasicPassword(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1")
	req := &http.Request{URL: u, Header: http.Header{}}
	req.SetBasicAuth("bob-the-user", "hunter2-password")
	req.Header.Set("Proxy-Authorization", "Basic "+"cHJveHk6cHJveHktc2VjcmV0LTE=") // proxy:proxy-secret-1
	for _, tc := range []struct{ in, want string }{
		// The user name too, as the URL's: APIs such as Stripe's take the
		// key as the user name of Basic, with no password.
		{"invalid password hunter2-password for bob-the-user", "invalid password REDACTED for REDACTED"},
		{"proxy refused proxy-secret-1", "proxy refused REDACTED"},
		{"credentials bob-the-user:hunter2-password rejected", "credentials REDACTED rejected"},
	} {
		if got := Echoes(tc.in, req); got != tc.want {
			t.Errorf("Echoes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A malformed Basic header (not base64, no colon) is not an error.
	bad := &http.Request{URL: u, Header: http.Header{"Authorization": {"Basic !!!notbase64!!!"}}}
	if got := Echoes("nothing to see here", bad); got != "nothing to see here" {
		t.Errorf("Echoes with a malformed Basic header = %q", got)
	}
	nocolon := &http.Request{URL: u, Header: http.Header{"Authorization": {"Basic bm9jb2xvbmF0YWxsMTIz"}}} // nocolonatall123
	if got := Echoes("user nocolonatall123 unknown", nocolon); got != "user REDACTED unknown" {
		t.Errorf("Echoes with a Basic header without a colon = %q", got)
	}
}

// TestEchoesBasicUnpadded: a Basic authorization encoded without its
// padding, or in base64url (a client built on base64.RawStdEncoding or
// RawURLEncoding), which lenient servers decode all the same (Java's
// Base64 decoder, Spring Security's Basic filter, Node's Buffer), encodes
// the user name and password a server may echo: they are REDACTED, as
// those of a padded one are.
func TestEchoesBasicUnpadded(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1")
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"RawStdEncoding", base64.RawStdEncoding}, {"URLEncoding", base64.URLEncoding}, {"RawURLEncoding", base64.RawURLEncoding}} {
		// Its encodings hold '+' (base64url's '-') and are unpadded
		// but for URLEncoding's: each is one StdEncoding refuses.
		cred := "sk_live_u~~~:hunter2-pass~~~"
		req := &http.Request{URL: u, Header: http.Header{"Authorization": {"Basic " + enc.e.EncodeToString([]byte(cred))}}}
		got := Echoes("password hunter2-pass~~~ of sk_live_u~~~ is wrong", req)
		if want := "password REDACTED of REDACTED is wrong"; got != want {
			t.Errorf("%s: Echoes = %q, want %q", enc.name, got, want)
		}
	}
}

// TestEchoesLongBasicCredential: a Basic credential longer than 192 bytes
// (an Atlassian API token is 192 characters, after an e-mail address; a
// JWT taken as a password is longer) is redacted too. Such a credential
// was skipped, as "longer than any user name and password of Basic", and
// a server echoing it kept it in the error (found by FuzzEchoes).
func TestEchoesLongBasicCredential(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1")
	token := "ATATT3xFfGF0" + strings.Repeat("Zx9_-qW3", 23) // 196 bytes
	for _, n := range []int{1, 20} {
		pass := strings.Repeat(token, n)
		req := &http.Request{URL: u, Header: http.Header{}}
		req.SetBasicAuth("someone@example.com", pass)
		if got := Echoes("invalid token "+pass, req); got != "invalid token REDACTED" {
			t.Errorf("a %d-byte Basic password echoed: Echoes = %.60q…", len(pass), got)
		}
	}
}

// Echoes of a text with nothing to redact does not allocate under a Basic
// authorization either.
func TestEchoesBasicNoAlloc(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1")
	req := &http.Request{URL: u, Header: http.Header{}}
	req.SetBasicAuth("bob-the-user", "hunter2-password")
	if n := testing.AllocsPerRun(100, func() { Echoes("7f3c2a9e-1b4d-4c8e-9f2a-123456789abc", req) }); n != 0 {
		t.Errorf("Echoes(request id) allocates %v times, want 0", n)
	}
}

// An exchange's request signature (KuCoin's KC-API-SIGN, a sign parameter)
// and a passphrase (passcode) are credentials its server may echo.
func TestEchoesSignatures(t *testing.T) {
	req, _ := http.NewRequest("POST", "https://api.kucoin.test/api/v1/orders?sign=0f1e2d3c4b5a69788796a5b4c3d2e1f0&passcode=93817264", nil)
	req.Header.Set("KC-API-SIGN", "7Zl9SkXq0mWbT1uVhJr2YcPd4gLsNe8Q5aFoIx3BtKM=")
	msg := "signature 7Zl9SkXq0mWbT1uVhJr2YcPd4gLsNe8Q5aFoIx3BtKM= is invalid; sign 0f1e2d3c4b5a69788796a5b4c3d2e1f0 rejected; passcode 93817264 wrong"
	got := Echoes(msg, req)
	for _, secret := range []string{"7Zl9SkXq0mWbT1uVhJr2YcPd4gLsNe8Q5aFoIx3BtKM=", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "93817264"} {
		if strings.Contains(got, secret) {
			t.Errorf("Echoes left %q in %q", secret, got)
		}
	}
}

// TestEchoesPathCredentials: a server's text that echoes the credential of
// the request's path (see Path) has it replaced, a bot token's own part
// too; the path's other segments, and a path without one, are kept, and
// the text of a request to such a path that echoes nothing costs no
// allocation.
func TestEchoesPathCredentials(t *testing.T) {
	for _, tt := range []struct{ url, text, want string }{
		{"https://api.telegram.org/bot123456:AAH-tok-SECRET/sendMessage",
			"No route for POST /bot123456:AAH-tok-SECRET/sendMessage", "No route for POST /REDACTED/sendMessage"},
		{"https://api.telegram.org/bot123456:AAH-tok-SECRET/sendMessage",
			"token AAH-tok-SECRET is revoked", "token REDACTED is revoked"},
		{"https://api.telegram.org/bot123456%3AAAH-tok-SECRET/sendMessage",
			"no route /bot123456%3AAAH-tok-SECRET/sendMessage", "no route /REDACTED/sendMessage"},
		{"https://hooks.slack.com/services/T000/B000/XXSECRETXXXX",
			"no hook at /services/T000/B000/XXSECRETXXXX", "no hook at /services/T000/B000/REDACTED"},
		{"https://discord.com/api/webhooks/123/tokSECRETdiscord/messages",
			"Unknown Webhook tokSECRETdiscord", "Unknown Webhook REDACTED"},
		{"https://api.example.com/v1/services/posts/12345678",
			"no post /v1/services/posts/12345678", "no post /v1/services/posts/12345678"},
	} {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := Echoes(tt.text, &http.Request{URL: u}); got != tt.want {
			t.Errorf("Echoes(%q) for %s = %q, want %q", tt.text, tt.url, got, tt.want)
		}
	}
	u, _ := url.Parse("https://api.telegram.org/bot123456:AAH-tok-SECRET/sendMessage")
	req := &http.Request{URL: u}
	if n := testing.AllocsPerRun(100, func() { Echoes("7f3c2a9e-1b4d-4c8e-9f2a-123456789abc", req) }); n != 0 {
		t.Errorf("Echoes(request id) for a path with a token allocates %v times, want 0", n)
	}
}

// TestEchoOfCredentialSentTrimmed: net/http sends a header's value without
// the spaces and tabs around it, and a server echoes what it got: a
// credential set with them is redacted as sent.
func TestEchoOfCredentialSentTrimmed(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1")
	for _, v := range []string{" sk_live_0123456789  ", "sk_live_0123456789  ", "\tsk_live_0123456789\t", " sk_live_0123456789"} {
		req := &http.Request{URL: u, Header: http.Header{"X-Api-Key": {v}}}
		if got := Echoes("invalid api key sk_live_0123456789", req); got != "invalid api key REDACTED" {
			t.Errorf("Echoes with X-Api-Key %q = %q: the credential as sent, trimmed, not REDACTED", v, got)
		}
	}
}

// TestEchoesOAuthCode: an OAuth authorization code is a credential (it is
// exchanged for a token) where the query says it is OAuth's, beside a
// state, a redirect_uri, a grant_type, a code_verifier or a client_id; a
// code alone (a promotion's, a country's) is no credential.
func TestEchoesOAuthCode(t *testing.T) {
	for _, tc := range []struct{ url, in, want string }{
		{"https://app.example.com/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz",
			"invalid authorization code: SplxlOBeZQQYbYS6WxSbIA", "invalid authorization code: REDACTED"},
		{"https://auth.example.com/oauth/token?grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb",
			"Invalid authorization code: SplxlOBeZQQYbYS6WxSbIA", "Invalid authorization code: REDACTED"},
		{"https://github.com/login/oauth/access_token?client_id=Iv1.abc&code=7d8e9f0a1b2c3d4e5f60",
			"bad code 7d8e9f0a1b2c3d4e5f60", "bad code REDACTED"},
		{"https://shop.example.com/v1/coupons?code=SUMMER2024-PROMO",
			"coupon code SUMMER2024-PROMO expired", "coupon code SUMMER2024-PROMO expired"},
		{"https://shop.example.com/v1/coupons?code=SUMMER2024-PROMO&mystate=ok",
			"coupon code SUMMER2024-PROMO expired", "coupon code SUMMER2024-PROMO expired"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := Echoes(tc.in, &http.Request{URL: u}); got != tc.want {
			t.Errorf("Echoes(%q) for %s = %q, want %q", tc.in, tc.url, got, tc.want)
		}
	}
}

// TestIndexFold: indexFold finds v in s whatever the case of its ASCII
// letters, on a text of near matches too, where it goes on by a rolling
// hash.
func TestIndexFold(t *testing.T) {
	near := strings.Repeat("a", 1000) + "AB"
	for _, tc := range []struct {
		s, v string
		want int
	}{
		{"sk_live_abc", "SK_LIVE_ABC", 0},
		{"key SK_live_ABC.", "sk_live_abc", 4},
		{"key sk_live_ab", "sk_live_abc", -1},
		{"12345678-x", "12345678", 0},
		{"a-b-c-d-e-f-g-h", "A-B-C-D-", 0},
		{"x", "longer than x", -1},
		{near, strings.Repeat("a", 50) + "b", 951},
		{near, strings.Repeat("a", 50) + "c", -1},
		{"\xffK\xff" + "Kelvin-1234", "kelvin-1234", 3},
	} {
		if got := indexFold(tc.s, tc.v); got != tc.want {
			t.Errorf("indexFold(%.40q, %.40q) = %v, want %v", tc.s, tc.v, got, tc.want)
		}
	}
}
