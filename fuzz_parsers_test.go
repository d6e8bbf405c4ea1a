package resilient

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file fuzzes the parsers of header values and host names added or
// changed since the first fuzz targets: oneValue (a proxy's merged
// copies), parseISOTime and parseReset (RFC 3339 spellings), pickPolicy,
// firstCount and firstLimit with quotaSpent and rateLimited403, and
// WithKeyHonoringHosts against ResetHost's spelling of a host.

// isCopies reports whether v is two or more copies of m, each with
// optional whitespace (RFC 9110's OWS: spaces and tabs) around it, joined
// by commas: a field's value repeated on several lines and merged.
func isCopies(v, m string) bool {
	// v, cut at every comma, is n pieces; each copy of m, k of them.
	pieces := strings.Split(v, ",")
	n, k := len(pieces), strings.Count(m, ",")+1
	if n%k != 0 || n/k < 2 {
		return false
	}
	for i := 0; i < n; i += k {
		if strings.Trim(strings.Join(pieces[i:i+k], ","), " \t") != m {
			return false
		}
	}
	return true
}

// FuzzOneValue checks that oneValue returns v, or a member m of v such
// that v is copies of m joined by commas; that copies of a value (with at
// most one comma of its own, as an HTTP date has) are read as that value;
// and that it allocates nothing.
func FuzzOneValue(f *testing.F) {
	for _, s := range []string{
		"5", "5, 5", "5,5,5", " 5 ,\t5 ", "5, 6", "30, 30",
		"Tue, 17 Feb 2026 14:00:00 GMT, Tue, 17 Feb 2026 14:00:00 GMT",
		"a,,a,", ",", ",,", " , ", "5,", ",5", "\u00a05, 5", "5\u00a0, 5", "\v5, 5",
		"100;w=60, 100;w=60", "100, 100;w=60",
	} {
		f.Add(s, uint8(2), " ")
	}
	f.Fuzz(func(t *testing.T, v string, n uint8, ows string) {
		r := oneValue(v)
		if r != v && !isCopies(v, r) {
			t.Fatalf("oneValue(%q) = %q, of which it is no copies", v, r)
		}
		if a := testing.AllocsPerRun(1, func() { oneValue(v) }); a != 0 {
			t.Fatalf("oneValue(%q) allocates %v times", v, a)
		}
		// Copies of a value, merged by a proxy.
		m := strings.Trim(v, " \t")
		if m == "" || strings.Count(m, ",") > 1 || strings.TrimSpace(m) != m || strings.Trim(ows, " \t") != "" {
			return
		}
		copies := m
		for range 1 + n%4 {
			copies += ows + "," + ows + m
		}
		r = oneValue(copies)
		if r == copies || !isCopies(copies, r) {
			t.Fatalf("oneValue(%q) = %q, not a member it is copies of", copies, r)
		}
	})
}

// FuzzParseISOTime checks that a time, spelled in any of the ISO 8601
// forms that parseISOTime documents (RFC 3339's, with T, t or a space, Z
// or z, and a fraction or not; to the minute; an offset without its
// colon), parses back to the same instant, by parseISOTime and parseReset.
func FuzzParseISOTime(f *testing.F) {
	f.Add(int64(1771336800), uint32(0), int16(0), uint8(0))
	f.Add(int64(1771336800), uint32(500000000), int16(60), uint8(7))
	f.Add(int64(-62135596800), uint32(1), int16(-1439), uint8(3))
	f.Add(int64(253402300799), uint32(999999999), int16(1439), uint8(11))
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, sec int64, nsec uint32, offMin int16, spelling uint8) {
		// Years 0001 to 9999, offsets within a day, as RFC 3339's.
		const lo, hi = -62135596800 + 86400, 253402300799 - 86400
		if sec < lo || sec > hi {
			sec = lo + (sec%(hi-lo)+(hi-lo))%(hi-lo)
		}
		off := int(offMin) % (24 * 60)
		zone := time.FixedZone("", off*60)
		if spelling&0x80 != 0 {
			zone = time.UTC
		}
		want := time.Unix(sec, int64(nsec%1e9)).In(zone)
		frac := ""
		if spelling&0x40 != 0 {
			frac = ".999999999"
		} else {
			want = want.Truncate(time.Second)
		}
		var layout string
		switch s := spelling & 0x3f % 9; s {
		case 0, 1, 2: // RFC 3339, separated by T, t or a space
			layout = "2006-01-02" + string("Tt "[s]) + "15:04:05" + frac + "Z07:00"
		case 3, 4, 5: // the same with a lower-case z for UTC
			layout = "2006-01-02" + string("Tt "[s-3]) + "15:04:05" + frac + "Z07:00"
		case 6: // to the minute
			want, layout = want.Truncate(time.Minute), "2006-01-02T15:04Z07:00"
		case 7: // an offset without its colon
			layout = "2006-01-02T15:04:05" + frac + "Z0700"
		case 8: // to the minute, an offset without its colon
			want, layout = want.Truncate(time.Minute), "2006-01-02T15:04Z0700"
		}
		v := want.Format(layout)
		if s := spelling & 0x3f % 9; s >= 3 && s <= 5 && strings.HasSuffix(v, "Z") {
			v = v[:len(v)-1] + "z"
		}
		got, ok := parseISOTime(v)
		if !ok || !got.Equal(want) {
			t.Fatalf("parseISOTime(%q) = %v, %v; want %v", v, got, ok, want)
		}
		got, abs, ok := parseReset(v, &lazyNow{t: now})
		if !ok || !abs || !got.Equal(want) {
			t.Fatalf("parseReset(%q) = %v, %v, %v; want %v, true, true", v, got, abs, ok, want)
		}
	})
}

// FuzzPickPolicy checks pickPolicy against its documented order on lists
// of up to eight policies, named or not, in the draft's form or the older
// drafts': the policy named, else the first whose quota is the limit, else
// the first.
func FuzzPickPolicy(f *testing.F) {
	f.Add([]byte{1, 100, 60, 2, 10, 1}, uint8(1), 10)
	f.Add([]byte{0, 100, 60, 0, 10, 1, 3, 10, 5}, uint8(3), 10)
	f.Add([]byte{0x81, 5, 0, 0x42, 5, 3}, uint8(2), -1)
	f.Fuzz(func(t *testing.T, data []byte, pick uint8, limit int) {
		names := [...]string{"", "a", "b", "burst"}
		name := names[pick%4]
		if limit < -1 || limit > 255 {
			limit = -1
		}
		type pol struct {
			name string
			p    ratePolicy
		}
		var pols []pol
		var lines []string
		line := ""
		for i := 0; i+2 < len(data) && len(pols) < 8; i += 3 {
			n, q, w := names[data[i]&3], int(data[i+1]), time.Duration(data[i+2]%4)*30*time.Second
			var m string
			if n == "" || data[i]&0x40 != 0 {
				n, m = "", strconv.Itoa(q) // the older drafts' form
			} else if data[i]&0x20 != 0 {
				m = `"` + n + `";q=` + strconv.Itoa(q)
			} else {
				m = n + ";q=" + strconv.Itoa(q)
			}
			if w > 0 {
				m += ";w=" + strconv.Itoa(int(w/time.Second))
			}
			pols = append(pols, pol{n, ratePolicy{q, w}})
			if line != "" {
				line += ", "
			}
			line += m
			if data[i]&0x80 != 0 { // the list goes on on another line
				lines, line = append(lines, line), ""
			}
		}
		if line != "" || len(lines) == 0 {
			lines = append(lines, line)
		}
		var want ratePolicy
		wantOK := len(pols) > 0
		found := false
		for _, p := range pols {
			if name != "" && p.name == name {
				want, found = p.p, true
				break
			}
		}
		for _, p := range pols {
			if !found && limit >= 0 && p.p.quota == limit {
				want, found = p.p, true
			}
		}
		if !found && wantOK {
			want = pols[0].p
		}
		got, ok := pickPolicy(lines, name, limit)
		if ok != wantOK || got != want {
			t.Fatalf("pickPolicy(%q, %q, %d) = %+v, %v; want %+v, %v", lines, name, limit, got, ok, want, wantOK)
		}
	})
}

// FuzzQuotaSpent checks that quotaSpent reads X-RateLimit-Remaining and
// X-RateLimit-Limit as parseRateLimit does (firstCount and firstLimit,
// over a field's first lines and a proxy's merged copies), and that
// rateLimited403 is a well-formed Retry-After or a quota spent without
// Discord's bucket.
func FuzzQuotaSpent(f *testing.F) {
	for _, s := range [][4]string{
		{"0", "60", "", ""},
		{"0.0", "0", "", ""},
		{"\n0", "x\n60", "", ""},
		{"0, 0", "60, 60", "", "b"},
		{"0;w=60", "60;w=60, 600;w=3600", "30", ""},
		{"1", "60", "soon", ""},
		{"0, 1", "", "", ""},
		{"x\ny\nz\nw\n0", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, remaining, limit, ra, bucket string) {
		h := http.Header{}
		for k, v := range map[string]string{hdrXRemaining: remaining, hdrXLimit: limit, "Retry-After": ra, "X-Ratelimit-Bucket": bucket} {
			if v != "" {
				h[k] = strings.Split(v, "\n")
			}
		}
		r := parseRateLimit(h, &lazyNow{t: now})
		if h[hdrXRemaining] == nil && h[hdrXLimit] == nil {
			r.info.Limit, r.info.Remaining = -1, -1 // another family's
		}
		spent := r.info.Remaining == 0 && r.info.Limit != 0
		if got := quotaSpent(h); got != spent {
			t.Fatalf("quotaSpent(%q) = %v; parseRateLimit reads Limit %d, Remaining %d", h, got, r.info.Limit, r.info.Remaining)
		}
		_, raOK := retryAfterHeader(h, func() time.Time { return now })
		want := raOK || spent && bucket == ""
		if got := rateLimited403(h); got != want {
			t.Fatalf("rateLimited403(%q) = %v; want %v", h, got, want)
		}
	})
}

// FuzzKeyHonoringHosts checks that WithKeyHonoringHosts panics on a host,
// or takes it as ResetHost does: a request's host is named by it exactly
// when ResetHost of that host would reach the request (a host that url.Parse
// takes).
func FuzzKeyHonoringHosts(f *testing.F) {
	for i, h := range append(hostSeeds, "::1", "fe80::1%eth0", "[::1]:8443", "api.test:443", "API.test.", "api.test::8443", "[api.test]", "127.0.0.1:80") {
		f.Add(h, hostSeeds[(i+3)%len(hostSeeds)], i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, named, host string, https bool) {
		var c config
		if !func() (ok bool) {
			defer func() {
				if p := recover(); p != nil {
					if s := fmt.Sprint(p); !strings.HasPrefix(s, "resilient: WithKeyHonoringHosts: invalid host ") {
						t.Fatalf("WithKeyHonoringHosts(%q) panics with %q", named, s)
					}
				}
			}()
			WithKeyHonoringHosts(named)(&c)
			return true
		}() {
			return
		}
		m, ok := newHostMatcher(named)
		if !ok {
			t.Fatalf("WithKeyHonoringHosts takes %q, ResetHost does not", named)
		}
		scheme := "http"
		if https {
			scheme = "https"
		}
		for _, h := range []string{host, named, strings.ToUpper(named)} {
			if u, err := url.Parse(scheme + "://" + h); err != nil || u.Host != h || strings.Contains(h, "@") {
				continue // no request's URL host
			}
			k := newKeyHosts(c.keyHosts)
			if got, want := k.isNamed(scheme, h), m.match(scheme, h, false); got != want {
				t.Fatalf("WithKeyHonoringHosts(%q) names %s://%s: %v; ResetHost(%q) reaches it: %v", named, scheme, h, got, named, want)
			}
		}
	})
}
