// A request's credential, which names its rate-limit partitions: servers
// count quotas per user token or API key.

package resilient

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// credentialOf returns a fingerprint of the credential of req: its
// Authorization header (the key it names when it is a signature made anew
// for each request: signingKey), else X-Api-Key (Anthropic's, and many
// APIs'), either one also in lower case as set by hand, else the first of
// the other headers APIs read a key from (keyHeaders), also in lower case
// (keyHeader), else the URL's
// user information (https://key:secret@host/, which net/http sends as
// Basic authentication), else a credential in its query string
// (queryCredential); 0 for none. Servers
// count quotas per credential (a user's token, an API key), so that
// requests made with different credentials to one host get partitions of
// their own: one tenant's spent quota or 429 holds none of the others', as
// it would not hold a plain client's. The fingerprint reads the value's
// length, its first 64 bytes and its last 64, 8 at a time: a few
// nanoseconds, the same in every process (a QuotaStore's partition is
// named with it), and never 0 for a credential. Two credentials that share it share a partition, as
// every credential did before.
func credentialOf(req *http.Request) uint64 {
	h := req.Header
	var v []string
	if len(h) != 0 {
		// Each also set by hand in lower case (HTTP/2's spelling), which
		// net/http sends as written and servers read as any other.
		if v = h["Authorization"]; len(v) == 0 {
			//lint:ignore SA1008 the entry a caller set by hand in lower case.
			if v = h["authorization"]; len(v) == 0 {
				if v = h["X-Api-Key"]; len(v) == 0 {
					//lint:ignore SA1008 the entry a caller set by hand in lower case.
					if v = h["x-api-key"]; len(v) == 0 {
						v = keyHeader(h)
					}
				}
			}
		}
	}
	var s string
	if len(v) != 0 {
		s = signingKey(v[0])
	} else if req.URL != nil {
		if u := req.URL.User; u != nil {
			// The URL's user information, which net/http sends as Basic
			// authentication when no Authorization header is set.
			return userinfoFingerprint(u)
		}
		s = queryCredential(req.URL.RawQuery)
	}
	if s == "" {
		return 0
	}
	return fingerprint(s)
}

// keyHeaders returns the headers, other than Authorization and X-Api-Key,
// that APIs read a caller's key from, in canonical form: Azure OpenAI's
// and Azure AI Search's api-key, Google's, Azure API Management's
// subscription key, OpenStack's token, GitLab's, and the access token many
// APIs take. Requests that carry different keys in one of them are
// different tenants to the server, whose quotas it counts apart, as it
// does those of different Authorization values.
func keyHeaders() [6]string {
	return [...]string{"Api-Key", "X-Goog-Api-Key", "Ocp-Apim-Subscription-Key", "X-Auth-Token", "Private-Token", "X-Access-Token"}
}

// keyHeader returns the values of the first of keyHeaders that h holds,
// each in canonical form, then set by hand in lower case, as Authorization
// and X-Api-Key are read (net/http sends "api-key" as written, and servers
// read it as Api-Key); nil for none.
func keyHeader(h http.Header) (v []string) {
	lower := lowerKeyHeaders()
	for i, name := range keyHeaders() {
		if v = h[name]; len(v) != 0 {
			return v
		}
		if v = h[lower[i]]; len(v) != 0 { // the entry a caller set by hand
			return v
		}
	}
	return nil
}

// lowerKeyHeaders returns keyHeaders in lower case, in the same order
// (TestCredentialOf holds them to it).
func lowerKeyHeaders() [6]string {
	return [...]string{"api-key", "x-goog-api-key", "ocp-apim-subscription-key", "x-auth-token", "private-token", "x-access-token"}
}

// signingKey returns the part of an Authorization value a that names its
// credential when a is a signature made anew for each request: AWS
// Signature Version 4 (aws-sdk-go-v2's, and that of every S3-compatible
// API) signs the request's date and body, so that no two requests carry
// the same value, and one key's requests, fingerprinted whole, got a
// partition each, which a 429's pause never held again. Its access key ID
// (Credential=AKID/date/region/service/aws4_request) names the credential,
// as Google Cloud Storage's HMAC key's does in its signature of the same
// form (GOOG4-HMAC-SHA256 Credential=GOOG1…/…), and the account of Azure
// Storage's Shared Key signature ("SharedKey account:signature") does.
// OAuth 1.0a (X's user context, which posts on a user's behalf) signs a
// nonce and a timestamp: its consumer key and token name the credential
// (oauthKey). HTTP Digest (RFC 7616: MongoDB Atlas's Admin API, many
// devices' APIs) hashes the request's URI with a counter and a client
// nonce: its username names the credential (digestKey). Any other value
// is returned whole.
func signingKey(a string) string {
	if len(a) > 6 && strings.EqualFold(a[:6], "OAuth ") {
		return oauthKey(a)
	}
	if len(a) > 7 && strings.EqualFold(a[:7], "Digest ") {
		return digestKey(a)
	}
	if rest, ok := strings.CutPrefix(a, "SharedKey"); ok {
		// Azure Storage: "SharedKey account:signature" (or SharedKeyLite).
		rest = strings.TrimPrefix(rest, "Lite")
		if account, _, ok := strings.Cut(rest, ":"); ok && len(account) > 1 && account[0] == ' ' {
			return "SharedKey" + account
		}
		return a
	}
	if !strings.HasPrefix(a, "AWS4-") && !strings.HasPrefix(a, "GOOG4-") {
		return a
	}
	_, scope, ok := strings.Cut(a, " Credential=")
	if !ok {
		return a
	}
	if akid, _, ok := strings.Cut(scope, "/"); ok && akid != "" {
		return akid
	}
	return a
}

// queryCredential returns the value of the first parameter of the query q
// that carries a credential, as it is written (not unescaped: one caller
// writes its token the same way every time); "" for none. The parameters
// are OAuth 2's access_token (RFC 6750, section 2.3: Facebook's and
// Instagram's Graph APIs, among others) and the usual names of an API key.
// A name that also means something else (key; token, a pagination token)
// is not read: a value per page would split one quota into many
// partitions, each spending it.
func queryCredential(q string) string {
	for q != "" {
		var param string
		param, q, _ = strings.Cut(q, "&")
		name, value, _ := strings.Cut(param, "=")
		switch name {
		case "access_token", "api_key", "apikey":
			if value != "" {
				return value
			}
		}
	}
	return ""
}

// fingerprint returns credentialOf's fingerprint of the credential s.
func fingerprint(s string) uint64 {
	x := uint64(len(s)) * 0x9e3779b97f4a7c15
	if len(s) > 64 {
		// Its first bytes too: a long credential's last ones may be
		// shared (Basic of tenants with one long password, whose user
		// comes first).
		x = fold(x, s[:64])
		s = s[len(s)-64:]
	}
	x = fold(x, s)
	x ^= x >> 29
	return x | 1
}

// fold mixes the bytes of s into x, 8 at a time, for fingerprint.
func fold(x uint64, s string) uint64 {
	for ; len(s) >= 8; s = s[8:] {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		x = (x ^ w) * 0xbf58476d1ce4e5b9
		x ^= x >> 31
	}
	for i := 0; i < len(s); i++ {
		x = (x ^ uint64(s[i])) * 0x94d049bb133111eb
	}
	return x
}

// userinfoFingerprint returns credentialOf's fingerprint of the user
// information u, its user name and password told apart, without joining
// them into one string.
func userinfoFingerprint(u *url.Userinfo) uint64 {
	pass, _ := u.Password()
	return (fingerprint(u.Username())*0x9e3779b97f4a7c15 ^ fingerprint(pass)) | 1
}

// credentialTag returns how a partition's name shows the credential whose
// fingerprint is fp: 16 hex digits of a SHA-256 of fp, the same in every
// process. The name goes into errors, logs and a QuotaStore's keys, and
// fingerprint, made to be fast, is not one-way: its steps can be undone, and
// a credential of 8 bytes or fewer (an API key such as NASA's DEMO_KEY) is
// computed back from it. The tag tells credentials apart as fp does, and
// gives nothing of them but by trying every credential; it is made only
// when a name is (a partition shared through a store, a refusal's error).
func credentialTag(fp uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], fp)
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:8])
}

// oauthKey returns the oauth_consumer_key and oauth_token parameters of a,
// an OAuth 1.0a Authorization value (RFC 5849 section 3.5.1:
// `OAuth name="value", …`), as the credential of its requests; a whole
// when it has neither.
func oauthKey(a string) string {
	var consumer, token string
	for rest := a[6:]; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, ",")
		name, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(name) {
		case "oauth_consumer_key":
			consumer = strings.Trim(strings.TrimSpace(v), `"`)
		case "oauth_token":
			token = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	if consumer == "" && token == "" {
		return a
	}
	return "OAuth " + consumer + " " + token
}

// digestKey returns the username (or username*) parameter of a, an HTTP
// Digest Authorization value (RFC 7616 section 3.4: `Digest
// username="…", realm="…", uri="…", nc=…, cnonce="…", …`), as the
// credential of its requests; a whole when it has none. Its other
// parameters change with each request, and its username comes first, far
// from the last bytes fingerprint reads. It allocates nothing.
func digestKey(a string) string {
	for rest := a[7:]; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, ",")
		name, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if name = strings.TrimSpace(name); !ok || !strings.EqualFold(name, "username") && !strings.EqualFold(name, "username*") {
			continue
		}
		if user := strings.Trim(strings.TrimSpace(v), `"`); user != "" {
			return user
		}
		break
	}
	return a
}
