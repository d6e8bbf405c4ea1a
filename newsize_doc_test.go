package resilient

import (
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

// TestDocumentedNewAllocation checks the README's figure for what New
// allocates ("`New` allocates about N KB", in its Bounds section, where it
// tells a caller to make one Transport and share it) against what New(nil)
// allocates: within a quarter of the figure. The figure is a 64-bit
// platform's. The README said 17 KB where New allocated 11.4.
func TestDocumentedNewAllocation(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the README's figure is a 64-bit platform's")
	}
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`New` allocates about\\s+(\\d+)\\s+KB").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md: no \"`New` allocates about N KB\" found")
	}
	doc, _ := strconv.Atoi(string(m[1]))

	// The fewest bytes of a few rounds: an allocation of another
	// goroutine meanwhile only adds to a round's count.
	const n = 100
	ts := make([]*Transport, n)
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range ts {
			ts[i] = New(nil)
		}
		runtime.ReadMemStats(&after)
		least = min(least, (after.TotalAlloc-before.TotalAlloc)/n)
	}
	runtime.KeepAlive(ts)
	got := float64(least) / 1000
	if got < 0.75*float64(doc) || got > 1.25*float64(doc) {
		t.Errorf("New allocates %.1f KB; README.md says about %d KB", got, doc)
	}
}
