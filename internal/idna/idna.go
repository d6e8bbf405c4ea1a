// Package idna converts an internationalized host name to the ASCII form
// net/http dials, for the names whose form it knows without Unicode's
// mapping tables.
package idna

import (
	"unicode"
	"unicode/utf8"
)

// ToASCII returns name, a host name with a character past ASCII, as
// net/http dials it (golang.org/x/net/idna's Lookup profile, UTS #46): each
// label holding such a character in punycode ("bücher" is "xn--bcher-kva"),
// every letter lower-cased, the full stops that UTS #46 maps to '.'
// (U+3002, U+FF0E, U+FF61) read as '.'. It reports false, and returns "",
// for a name it cannot convert exactly as net/http does: a character
// outside the scripts whose mapping is lower-casing alone (Latin, Greek,
// Cyrillic, and the ideographs, kana and Hangul syllables, which are not
// mapped), a name that UTS #46 refuses (an empty label, a hyphen at either
// end of a label or in its third and fourth places, a character of ASCII
// other than a letter, a digit or a hyphen), or one too long for a host. A
// name it refuses is one net/http dials in a form its tables decide, or as
// it is.
func ToASCII(name string) (string, bool) {
	if len(name) > maxName {
		return "", false
	}
	var b []byte
	for {
		label, rest, more := cutStop(name)
		var ok bool
		if b, ok = appendLabel(b, label); !ok {
			return "", false
		}
		if !more {
			return string(b), true
		}
		b = append(b, '.')
		name = rest
	}
}

// cutStop slices name around its first full stop: '.', or one that UTS
// #46 maps to it (the ideographic full stop U+3002, the full-width one
// U+FF0E, the half-width ideographic one U+FF61), which net/http dials as
// '.'. It reports whether there was one.
func cutStop(name string) (label, rest string, found bool) {
	for i, r := range name {
		switch r {
		case '.':
			return name[:i], name[i+1:], true
		case '\u3002', '\uFF0E', '\uFF61':
			return name[:i], name[i+utf8.RuneLen(r):], true
		}
	}
	return name, "", false
}

// maxName bounds the names ToASCII converts, in bytes of UTF-8: the
// longest domain name, each of its characters of up to four bytes.
const maxName = 4 * 255

// appendLabel appends label to b, lower-cased, in punycode when it has a
// character past ASCII, and reports whether it could.
func appendLabel(b []byte, label string) ([]byte, bool) {
	if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
		len(label) >= 4 && label[2] == '-' && label[3] == '-' {
		return b, false // also an "xn--" label: its decoding is checked
	}
	var runes [64]rune
	rs := runes[:0]
	ascii := true
	for _, r := range label {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return b, false
			}
		} else {
			lr, ok := lower(r)
			if !ok {
				return b, false
			}
			r, ascii = lr, false
		}
		if len(rs) == maxLabel {
			return b, false
		}
		rs = append(rs, r)
	}
	if ascii {
		for _, r := range rs {
			b = append(b, byte(r))
		}
		return b, true
	}
	b = append(b, "xn--"...)
	return encode(b, rs), true
}

// maxLabel bounds the characters of a label: the longest label of the DNS.
const maxLabel = 63

// lower returns r, a character past ASCII, as UTS #46 maps it, or false
// when its mapping is not lower-casing within the known ranges, or r is not
// valid in a name.
func lower(r rune) (rune, bool) {
	switch {
	case 0x4E00 <= r && r <= 0x9FA5, // CJK unified ideographs of Unicode 1.1
		0x3041 <= r && r <= 0x3096,              // hiragana
		0x30A1 <= r && r <= 0x30FA, r == 0x30FC, // katakana, and the prolonged sound mark
		0xAC00 <= r && r <= 0xD7A3: // Hangul syllables
		return r, true // valid, mapped to themselves
	case 0x00C0 <= r && r <= 0x024F, // Latin-1 letters, Latin Extended-A and -B
		0x1E00 <= r && r <= 0x1EFF, // Latin Extended Additional
		0x0386 <= r && r <= 0x03CE, // Greek letters (not its symbols, nor Greek Extended)
		0x0400 <= r && r <= 0x052F: // Cyrillic and its supplement
	default:
		return 0, false
	}
	switch r {
	case 0x0130, // İ: "i̇", two characters
		0x0132, 0x0133, 0x013F, 0x0140, // Ĳ ĳ Ŀ ŀ: "ij", "l·"
		0x01C4, 0x01C5, 0x01C6, 0x01C7, 0x01C8, 0x01C9, 0x01CA, 0x01CB, 0x01CC, 0x01F1, 0x01F2, 0x01F3, // the digraphs: two letters
		0x04C0: // Ӏ: refused
		return 0, false
	}
	if !unicode.IsLetter(r) {
		return 0, false
	}
	// A cased letter whose lower and upper cases map to each other: its
	// mapping is its lower case. Others (ß, ς, ſ, ı, which lower-casing
	// does not give back) are mapped otherwise, or not at all.
	l := unicode.ToLower(r)
	u := unicode.ToUpper(l)
	if u == l || unicode.ToLower(u) != l {
		return 0, false
	}
	return l, true
}

// The parameters of punycode (RFC 3492, section 5).
const (
	base        = 36
	tMin        = 1
	tMax        = 26
	skew        = 38
	damp        = 700
	initialBias = 72
	initialN    = 128
)

// encode appends rs, a label's characters, in punycode (RFC 3492, section
// 6.3), to b.
func encode(b []byte, rs []rune) []byte {
	basic := 0
	for _, r := range rs {
		if r < initialN {
			b = append(b, byte(r))
			basic++
		}
	}
	if basic > 0 {
		b = append(b, '-')
	}
	n, delta, bias := rune(initialN), 0, initialBias
	for h := basic; h < len(rs); {
		m := rune(utf8.MaxRune)
		for _, r := range rs {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range rs {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := base; ; k += base {
				t := min(max(k-bias, tMin), tMax)
				if q < t {
					break
				}
				b = append(b, digit(t+(q-t)%(base-t)))
				q = (q - t) / (base - t)
			}
			b = append(b, digit(q))
			bias = adapt(delta, h+1, h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return b
}

// digit returns the character of d, a digit of punycode.
func digit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

// adapt returns the bias after a delta (RFC 3492, section 6.1).
func adapt(delta, numPoints int, first bool) int {
	if first {
		delta /= damp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((base-tMin)*tMax)/2 {
		delta /= base - tMin
		k += base
	}
	return k + (base-tMin+1)*delta/(delta+skew)
}
