package resilient

import (
	"math/bits"
	"math/rand/v2"
)

// This file holds the pseudo-random numbers of an attempt's layers.

// random returns a pseudo-random number for a choice a layer makes for
// attempt st (where the deadline watch looks for a free slot, whether a
// quiet Transport reads a success's rate-limit headers): from st's own
// generator (wyrand), seeded from math/rand/v2 when st first draws, and
// kept across the calls st serves from the Transport's pool. A draw costs a
// multiplication, where math/rand/v2's costs an interface call into the
// runtime's ChaCha8 generator and the refills of its blocks: about 70
// instructions. It is no secret and need not be: it only spreads choices.
// A nil st draws from math/rand/v2.
func (st *attemptState) random() uint32 {
	if st == nil {
		return rand.Uint32()
	}
	s := st.seed
	if s == 0 {
		s = rand.Uint64() // wyrand runs from any seed: zero only means unseeded
	}
	s += 0xa0761d6478bd642f
	st.seed = s
	hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
	return uint32(hi ^ lo)
}
