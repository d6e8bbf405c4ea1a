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
	encode(b[0:8], u[0:4])
	b[8] = '-'
	encode(b[9:13], u[4:6])
	b[13] = '-'
	encode(b[14:18], u[6:8])
	b[18] = '-'
	encode(b[19:23], u[8:10])
	b[23] = '-'
	encode(b[24:36], u[10:16])
}

// encode writes src to dst in lower-case hexadecimal; dst is twice as
// long as src.
func encode(dst, src []byte) {
	const hex = "0123456789abcdef"
	for i, c := range src {
		dst[2*i], dst[2*i+1] = hex[c>>4], hex[c&0x0f]
	}
}
