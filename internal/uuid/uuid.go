// Package uuid generates random (version 4) UUIDs for resilient and its
// test server.
package uuid

import "crypto/rand"

// New returns a random (version 4) UUID from crypto/rand, in its canonical
// 36-character form. Its one allocation is the string (see Write for none).
//
// crypto/rand, not a generator in the process (math/rand/v2's ChaCha8,
// three times faster where the kernel has no getrandom vDSO): the
// kernel's randomness stays unique when a process or a virtual machine is
// restored twice from one snapshot, where a generator's state would be
// restored twice and draw the same keys, and a server that deduplicates by
// key would then drop the second of two different writes.
func New() string {
	var b [36]byte
	Write(&b)
	return string(b[:])
}

// Write writes a random (version 4) UUID from crypto/rand into b, in its
// canonical form, so that a caller can keep it in memory of its own.
func Write(b *[36]byte) {
	var u [16]byte
	rand.Read(u[:]) // never fails (crypto/rand, Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	// Each byte goes to a constant place, so that the compiler drops the
	// bounds checks that a loop over slices of b pays for each digit.
	put(b, 0, u[0])
	put(b, 2, u[1])
	put(b, 4, u[2])
	put(b, 6, u[3])
	b[8] = '-'
	put(b, 9, u[4])
	put(b, 11, u[5])
	b[13] = '-'
	put(b, 14, u[6])
	put(b, 16, u[7])
	b[18] = '-'
	put(b, 19, u[8])
	put(b, 21, u[9])
	b[23] = '-'
	put(b, 24, u[10])
	put(b, 26, u[11])
	put(b, 28, u[12])
	put(b, 30, u[13])
	put(b, 32, u[14])
	put(b, 34, u[15])
}

// put writes c in lower-case hexadecimal to b[at] and b[at+1].
func put(b *[36]byte, at int, c byte) {
	const hex = "0123456789abcdef"
	b[at], b[at+1] = hex[c>>4], hex[c&0x0f]
}
