// Package uuid generates random (version 4) UUIDs for resilient and its
// test server.
package uuid

import (
	"encoding/binary"
	"math/rand/v2"
)

// New returns a random (version 4) UUID, in its canonical 36-character
// form. Its one allocation is the string.
//
// Its 122 random bits come from math/rand/v2's top-level generator:
// ChaCha8, seeded from the operating system's randomness for each thread,
// with no system call per UUID (crypto/rand makes one per read where the
// kernel has no getrandom vDSO: two thirds of the cost of a UUID). Keys
// need to be unique, and are not secrets: they travel in headers and
// logs.
func New() string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[0:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:16], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	encode(b[0:8], u[0:4])
	b[8] = '-'
	encode(b[9:13], u[4:6])
	b[13] = '-'
	encode(b[14:18], u[6:8])
	b[18] = '-'
	encode(b[19:23], u[8:10])
	b[23] = '-'
	encode(b[24:36], u[10:16])
	return string(b[:])
}

// encode writes src to dst in lower-case hexadecimal; dst is twice as
// long as src.
func encode(dst, src []byte) {
	const hex = "0123456789abcdef"
	for i, c := range src {
		dst[2*i], dst[2*i+1] = hex[c>>4], hex[c&0x0f]
	}
}
