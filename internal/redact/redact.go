// Package redact removes the secrets that some APIs carry in a URL's path,
// for resilient and its submodules, before a path reaches an error, a log
// record, a span or a rate-limit partition's name.
package redact

import "strings"

// Placeholder replaces a secret path segment.
const Placeholder = "REDACTED"

// Path returns path with each segment that is a credential replaced by
// Placeholder; a path without one is returned as it is, without an
// allocation. The credentials recognised are those that APIs put in a path
// by design, where a leak lets anyone use them:
//
//   - a webhook's or an interaction's token after its numeric id, as
//     Discord's /api/webhooks/{id}/{token} and
//     /api/interactions/{id}/{token}/callback;
//   - a bot token, as Telegram's /bot{123456:ABC…}/sendMessage and
//     /file/bot{token}/…;
//   - the secret of an incoming webhook, as Slack's
//     /services/T…/B…/{secret}.
func Path(path string) string {
	if !maySecret(path) {
		return path
	}
	segs := strings.Split(path, "/")
	changed := false
	for i, s := range segs {
		if s != Placeholder && isSecret(segs, i) {
			segs[i] = Placeholder
			changed = true
		}
	}
	if !changed {
		return path
	}
	return strings.Join(segs, "/")
}

// maySecret reports whether path has a segment that announces a secret, so
// that the common path is scanned once.
func maySecret(path string) bool {
	return strings.Contains(path, "/webhooks/") || strings.Contains(path, "/interactions/") ||
		strings.Contains(path, "/bot") || strings.Contains(path, "/services/")
}

// isSecret reports whether segs[i] is a credential (see Path).
func isSecret(segs []string, i int) bool {
	s := segs[i]
	if s == "" {
		return false
	}
	if i >= 2 && (segs[i-2] == "webhooks" || segs[i-2] == "interactions") && isDigits(segs[i-1]) {
		return true
	}
	if strings.HasPrefix(s, "bot") {
		if c := strings.IndexByte(s, ':'); c > 3 && isDigits(s[3:c]) && c < len(s)-1 {
			return true
		}
	}
	return i >= 3 && segs[i-3] == "services" && strings.HasPrefix(segs[i-2], "T") && strings.HasPrefix(segs[i-1], "B")
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
