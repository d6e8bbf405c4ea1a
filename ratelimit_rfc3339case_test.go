package resilient

import (
	"testing"
	"time"
)

// TestParseResetRFC3339Spellings: an RFC 3339 reset spelled as its
// section 5.6 NOTE allows, with a lowercase t or z or a space between the
// date and the time, is read as the usual spelling is, with no allocation.
// They were malformed, and ignored.
func TestParseResetRFC3339Spellings(t *testing.T) {
	want := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	for _, v := range []string{
		"2026-02-17T14:00:00Z",
		"2026-02-17t14:00:00z",
		"2026-02-17T14:00:00z",
		"2026-02-17t14:00:00Z",
		"2026-02-17 14:00:00Z",
		"2026-02-17 14:00:00z",
		"2026-02-17t15:00:00+01:00",
		"2026-02-17 15:00:00+01:00",
		"2026-02-17t13:59:59.5z",
	} {
		now := lazyNow{t: rlNow}
		got, abs, ok := parseReset(v, &now)
		if v == "2026-02-17t13:59:59.5z" {
			if w := want.Add(-500 * time.Millisecond); !ok || !abs || !got.Equal(w) {
				t.Errorf("parseReset(%q) = %v, %v, %v, want %v, true, true", v, got, abs, ok, w)
			}
			continue
		}
		if !ok || !abs || !got.Equal(want) {
			t.Errorf("parseReset(%q) = %v, %v, %v, want %v, true, true", v, got, abs, ok, want)
		}
		if n := testing.AllocsPerRun(100, func() { parseReset(v, &now) }); n != 0 {
			t.Errorf("parseReset(%q): %v allocs, want 0", v, n)
		}
	}
	// A time without a zone is still not read, whatever its spelling.
	for _, v := range []string{"2026-02-17 14:00:00", "2026-02-17t14:00:00", "2026-02-17T14:00:00zz"} {
		now := lazyNow{t: rlNow}
		if got, _, ok := parseReset(v, &now); ok {
			t.Errorf("parseReset(%q) = %v, true, want malformed", v, got)
		}
	}
}
