package resilient

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

// midReadBody is a body whose first Read waits for open to be closed,
// then reads what its reader r reads.
type midReadBody struct {
	open    chan struct{}
	started chan struct{}
	once    sync.Once
	r       io.Reader
}

func (g *midReadBody) Read(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.started)
		<-g.open
	})
	return g.r.Read(p)
}

func (g *midReadBody) Close() error { return nil }

// TestGetBodyAfterABodySentMidReadCountsIt: a body of unknown length is
// sent (see checkedBody.sent) once it is detached and no Read of it is in
// progress, and the retry's GetBody then learns from it (see
// replayLength) how long the next body must be and what it must begin
// with. A Read that ends as the retry looks must have counted what it read
// and noted its first bytes by then: else the retry sees the first Read of
// the body as never read, no length and no first bytes, and a careless
// GetBody that hands out what that Read left of the body (its tail) is
// sent as the whole of it. The look is raced against the Read many times:
// one that sees the body sent must see all it read.
func TestGetBodyAfterABodySentMidReadCountsIt(t *testing.T) {
	data := headData(64)
	const first = 8 // the first Read reads fewer than replayHead bytes
	for i := range 2000 {
		src := bytes.NewReader(data)
		g := &midReadBody{open: make(chan struct{}), started: make(chan struct{}), r: io.LimitReader(src, first)}
		b := &checkedBody{rc: g, want: -1}
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.Read(make([]byte, 32))
		}()
		<-g.started
		b.detach() // the retry loop's, as a Read is in progress (see replayBody.next)
		var seen replayLen
		looked := make(chan struct{})
		go func() {
			defer close(looked)
			for !b.sent() {
			}
			seen = b.replayLength()
		}()
		close(g.open)
		<-done
		<-looked
		// A careless GetBody hands out the source the Read left.
		next := &checkedBody{rc: io.NopCloser(src), want: -1, replay: seen}
		if got, err := io.ReadAll(next); err == nil {
			t.Fatalf("try %d: the body after it was sent as %d bytes, the tail of the %d read first (seen: %d bytes read, %d first bytes); want an error", i, len(got), first, seen.n, seen.headN)
		}
	}
}
