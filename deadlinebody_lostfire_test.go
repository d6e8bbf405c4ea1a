package resilient

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestDeadlineFiringAsTheBufferedReadEndsIsNotLost: a deadline whose timer
// fires as the Transport's read within the attempt ends (see beginRead,
// endRead) fires all the same: the attempt's context is canceled and the
// deadline says it fired (keep reports it), whichever of the two comes
// first; and the read, told it ended before any cut, never finds its body
// closed under it. The firing was lost when the read ended between its
// two tries (the deadline's state read as reading, then as running): the
// deadline passed, and the attempt was taken for one that beat it, its
// context never canceled by it. The interleaving is rare: the test tries
// it many times (it failed about one -race run in three before the fix).
func TestDeadlineFiringAsTheBufferedReadEndsIsNotLost(t *testing.T) {
	for i := range 20000 {
		db := new(deadlineBody)
		ctx := db.init(context.Background(), time.Time{})
		body := &countingCloser{}
		if !db.beginRead(body) {
			t.Fatal("beginRead refused a running deadline")
		}
		var wg sync.WaitGroup
		var closed bool
		wg.Add(2)
		go func() { defer wg.Done(); db.fire() }()
		go func() { defer wg.Done(); closed = db.endRead() }()
		wg.Wait()
		db.closeStalled() // as its timer would, closeGrace later, had it been set
		if closed || body.closes() != 0 {
			t.Fatalf("try %d: endRead reported closed %v, body closed %d times; want neither: the read ended first or with the firing", i, closed, body.closes())
		}
		if ctx.Err() == nil || db.keep() {
			t.Fatalf("try %d: the deadline fired as the read ended, and was lost: state %d, context %v, keep reports not fired", i, db.state.Load(), ctx.Err())
		}
	}
}

// countingCloser is a body that counts its Close calls.
type countingCloser struct {
	mu sync.Mutex
	n  int
}

func (c *countingCloser) Read(p []byte) (int, error) { return 0, nil }

func (c *countingCloser) Close() error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return nil
}

func (c *countingCloser) closes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
