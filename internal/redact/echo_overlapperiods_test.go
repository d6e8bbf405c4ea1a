package redact

import (
	"math/rand"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// overlapsAt returns a text that holds v at each of the offsets that the
// gaps, taken in turn, set apart (each occurrence overlapping the one
// before when its gap is shorter than v), between two words: the text a
// server writes that echoes a key whose first bytes are its last, twice
// over ("kZk…kZk" shares "kZk" with the next, and "k" with the one after).
func overlapsAt(v string, gaps []int, count int) string {
	var b []byte
	at := 0
	for k := 0; k < count; k++ {
		for len(b) < at+len(v) {
			b = append(b, '.')
		}
		copy(b[at:], v)
		at += gaps[k%len(gaps)]
	}
	return "denied: " + string(b) + " (refused)"
}

// TestReplaceSecretOverlapsOfTwoDistances: a credential that repeats
// itself at two distances ("kZk9Qx2kZk": its last three bytes are its
// first, and its last one), that a server's text echoes overlapping the
// one before at the one distance, then the other, is REDACTED in each
// occurrence, as searches from each index find them (see
// replaceSecretFromScratch). Past overlaps that cost len(s) bytes of
// search, cover.add looked for the occurrences each after the end of the
// one before, and left all but the first bytes of those that overlap in
// the text ("REDACTEDZk9Qx2REDACTED…"); in any case, the text as a whole,
// random ones of such keys' pieces too.
func TestReplaceSecretOverlapsOfTwoDistances(t *testing.T) {
	for _, tc := range []struct {
		v     string
		gaps  []int
		count int
	}{
		{"kZk9Qx2kZk", []int{7, 9}, 40},
		{"kZk9Qx2kZk", []int{9, 7, 7}, 60},
		{"KZK9QX2KZK", []int{7, 9}, 40},
		{"ababaababa", []int{5, 7}, 50},
		{"é9Qé", []int{4}, 30},
	} {
		s := overlapsAt(tc.v, tc.gaps, tc.count)
		if got, want := replaceSecret(s, strings.ToLower(tc.v)), replaceSecretFromScratch(s, strings.ToLower(tc.v)); got != want {
			t.Errorf("replaceSecret(%q, %q) = %q, want %q", s, tc.v, got, want)
		}
	}
	rng := rand.New(rand.NewSource(7))
	secrets := []string{"kZk9Qx2kZk", "ababaababa", "aabaabaaab", "abcab\xc3abcab", "\xa9bc\xa9bc\xa9bc"}
	for n := 0; n < 20000; n++ {
		v := secrets[rng.Intn(len(secrets))]
		var b strings.Builder
		for k := rng.Intn(60); k >= 0; k-- {
			switch r := rng.Intn(8); {
			case r < 5: // v's own text again, overlapping what came before it or not
				b.WriteString(v[rng.Intn(len(v)):])
			case r == 5:
				b.WriteString(strings.ToUpper(v))
			case r == 6:
				b.WriteString("é")
			default:
				b.WriteString(" ")
			}
		}
		s := b.String()
		if got, want := replaceSecret(s, v), replaceSecretFromScratch(s, v); got != want {
			t.Fatalf("replaceSecret(%q, %q) = %q, want %q", s, v, got, want)
		}
	}
}

// TestEchoesOverlapsOfTwoDistancesBoundedWork: a hostile text of 4 MiB
// that echoes a key of 8 KiB, which repeats itself at two distances
// (5,000 and 7,000 bytes), at each of them in turn, overlapping, is
// REDACTED whole, in a few copies of the text: two distances in turn
// that differ add up to more than the key's length (Fine and Wilf), so
// the occurrences cover.add looks for, one search for them all, are no
// more than two per key's length of text. The work is counted in bytes
// allocated, not in time.
func TestEchoesOverlapsOfTwoDistancesBoundedWork(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	word := func(n int) string {
		const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[rng.Intn(len(alnum))]
		}
		return string(b)
	}
	border := word(1000)
	half := border + word(1000) + border // 3,000 bytes
	key := half + word(2000) + half      // 8,000: it repeats itself every 5,000 and 7,000 bytes
	s := overlapsAt(key, []int{5000, 7000}, 4<<20/6000)
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}, Header: http.Header{"X-Api-Key": {key}}}
	if got, want := Echoes(s, req), "denied: REDACTED (refused)"; got != want {
		t.Errorf("Echoes(%d bytes of overlapping keys) = %.60q… of %d bytes, want %q", len(s), got, len(got), want)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Echoes(s, req)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(2*len(s)) {
		t.Errorf("Echoes of %d bytes allocates %d bytes, want %d at most", len(s), got, 2*len(s))
	}
}
