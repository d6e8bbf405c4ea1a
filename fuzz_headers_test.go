package resilient

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// This file fuzzes the parsers of the headers a server sends: the
// rate-limit families (ratelimit_headers.go, ratelimit_structured.go,
// ratelimit_vendors.go) and the retry hints (hints.go).

// rateHeaderFamilies are the header names FuzzRateLimitHeaders puts its
// values under, one family per entry: limit, remaining, reset.
var rateHeaderFamilies = [...][3]string{
	{hdrXLimit, hdrXRemaining, hdrXReset},
	{hdrXDLimit, hdrXDRemaining, hdrXDReset},
	{hdrOAILimitReq, hdrOAIRemainReq, hdrOAIResetReq},
	{hdrAnthLimitReq, hdrAnthRemainReq, hdrAnthResetReq},
	{hdrShopify, hdrShopify + "-Unused", hdrShopify + "-Unused2"},
	{hdrRateLimit, hdrPolicy, hdrOldReset},
	{hdrOldLimit, hdrOldRemain, hdrOldReset},
	{hdrPolicy, hdrOldRemain, hdrOldReset},
}

// FuzzRateLimitHeaders checks that the rate-limit headers of a response,
// whatever their values, never make parseRateLimit panic, are read alike
// with and without the scan of a small header's keys and under any
// spelling of their names, give no count below -1 nor a negative window,
// and that what the limiter believes of them (rlResponse.believe) lies
// within MaxBelievedReset.
func FuzzRateLimitHeaders(f *testing.F) {
	seeds := [][4]string{
		{"100", "99", "30", ""},
		{"5000", "0", "1771336800", ""},
		{"100", "0", "1771336800123", ""},
		{"100, 100;w=60, 1000;w=3600", "50", "2026-02-17T14:00:30Z", ""},
		{"76;w=21600", "599.0", "Tue, 17 Feb 2026 14:00:30 GMT", "Tue, 17 Feb 2026 13:57:00 GMT"},
		{"60", "59", "6m0s", ""},
		{"60", "59", "12ms", ""},
		{"60", "59", "1.5", ""},
		{"39/40", "", "", ""},
		{"40/40", "", "", ""},
		{`"default";r=50;t=30`, `"default";q=100;w=60`, "", ""},
		{`"a";r=5;t=3, "b";r=1;t=9999999`, `"b";q=10;w=31536000, "a";q=100;w=60`, "", ""},
		{"limit=100, remaining=50, reset=30", "100;w=60", "", ""},
		{`"x\",y";r=1`, `"x\",y";q=2;w=1`, "", ""},
		{"-1", "99999999999999999999", "1e9", "Mon, 01 Jan 0001 00:00:00 GMT"},
		{"100", "5", "9999-12-31T23:59:59Z", ""},
		{"100", "5", "99999999999999999", ""},
		{"100", "5", "0001-01-01T00:00:00Z", ""},
	}
	for i, s := range seeds {
		f.Add(uint8(i), s[0], s[1], s[2], s[3])
	}
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, family uint8, limit, remaining, reset, date string) {
		keys := rateHeaderFamilies[int(family)%len(rateHeaderFamilies)]
		h := http.Header{}
		for i, v := range [...]string{limit, remaining, reset} {
			if v != "" {
				h[keys[i]] = []string{v}
			}
		}
		if family&0x80 != 0 { // with the tokens' count, which tells OpenAI's and Anthropic's families
			h[hdrOAIRemainTok] = []string{remaining}
		}
		if date != "" {
			h["Date"] = []string{date}
		}
		r := parseRateLimit(h, &lazyNow{t: now})
		if again := parseRateLimitScan(h, &lazyNow{t: now}, false); again != r {
			t.Fatalf("with the scan %+v, without %+v", r, again)
		}
		lower := http.Header{}
		for k, v := range h {
			lower[strings.ToLower(k)] = v
		}
		resp := &http.Response{Header: lower}
		canonicalRateHeaders(resp)
		if spelled := parseRateLimit(resp.Header, &lazyNow{t: now}); spelled != r {
			t.Fatalf("canonical keys give %+v, lower-case ones %+v", r, spelled)
		}
		if r.info.Limit < -1 || r.info.Remaining < -1 || r.window < 0 {
			t.Fatalf("parseRateLimit(%v) = %+v", h, r)
		}
		if r.found() != (r.info.Limit >= 0 || r.info.Remaining >= 0 || !r.info.Reset.IsZero() || r.window > 0) {
			t.Fatal("found disagrees with the values")
		}
		b := rlResponse{hdr: r}
		b.believe(now)
		if !b.hdr.info.Reset.IsZero() && b.hdr.info.Reset.Sub(now) > MaxBelievedReset {
			t.Fatalf("believed a reset %v ahead of %v", b.hdr.info.Reset.Sub(now), h)
		}
		if b.hdr.window > MaxBelievedReset {
			t.Fatalf("believed a window of %v of %v", b.hdr.window, h)
		}
	})
}

// FuzzRetryHints checks that the waits a response's headers ask for
// (Retry-After-Ms, X-Ms-Retry-After-Ms, Retry-After read against Date, a
// 403's X-RateLimit-Reset) are never negative nor above
// maxRetryAfterSeconds, are zero when not well formed, and that a
// well-formed Retry-After-Ms of a few digits is read exactly.
func FuzzRetryHints(f *testing.F) {
	for _, s := range [][6]string{
		{"1500", "", "", "", "", "true"},
		{"1500.5", "20", "3", "", "", "false"},
		{"", "250", "120", "", "", "TRUE"},
		{"", "", "Tue, 17 Feb 2026 14:00:30 GMT", "Tue, 17 Feb 2026 13:57:00 GMT", "", "maybe"},
		{"-1", "1e3", "soon", "", "1771336830", ""},
		{"18446744073709551616", "", "", "", "99999999999999999999999", ""},
		{"0", "", "0", "", "0", ""},
		{"1.", ".5", "", "", "1771336799", ""},
		{"", "", "", "garbage", "30", ""},
		{"x\n1500", "", "\nsoon\n30\n5", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const max = maxRetryAfterSeconds * time.Second
	f.Fuzz(func(t *testing.T, ms, xms, ra, date, reset, should string) {
		h := http.Header{}
		for k, v := range map[string]string{"Retry-After-Ms": ms, "X-Ms-Retry-After-Ms": xms,
			"Retry-After": ra, "Date": date, "X-Ratelimit-Reset": reset, "X-Should-Retry": should} {
			if v != "" {
				h[k] = strings.Split(v, "\n") // a field repeated on several lines
			}
		}
		d, ok := retryAfterHeader(h, clock)
		if d < 0 || d > max || !ok && d != 0 {
			t.Fatalf("retryAfterHeader(%v) = %v, %v", h, d, ok)
		}
		if d2, ok2 := retryAfterHeader(h, clock); d2 != d || ok2 != ok {
			t.Fatal("retryAfterHeader is not deterministic")
		}
		w, ok := serverWait(http.StatusForbidden, h, Throttled, clock)
		if w < 0 || w > max || !ok && w != 0 {
			t.Fatalf("serverWait(403, %v) = %v, %v", h, w, ok)
		}
		w, ok = resetWait(reset, now)
		if w < 0 || w > max || !ok && w != 0 {
			t.Fatalf("resetWait(%q) = %v, %v", reset, w, ok)
		}
		d, ok = parseRetryAfterMs(ms)
		if d < 0 || d > max || !ok && d != 0 {
			t.Fatalf("parseRetryAfterMs(%q) = %v, %v", ms, d, ok)
		}
		if v := strings.TrimSpace(ms); v != "" && len(v) <= 9 && allDigits(v) && (!ok || d != time.Duration(atoi(v))*time.Millisecond) {
			t.Fatalf("parseRetryAfterMs(%q) = %v, %v", ms, d, ok)
		}
		if hint := retryHint(h); hint < -1 || hint > 1 {
			t.Fatalf("retryHint = %d", hint)
		}
		if first, again := rateLimited403(h), rateLimited403(h); first != again {
			t.Fatal("rateLimited403 is not deterministic")
		}
	})
}
