package resilient

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFrozenCaptureStopsAtTheLimit: while the response of an attempt is
// considered (see replayBody.freeze), the attempt's writer reads the
// caller's body no further than WithMaxBufferedBody's limit, however large
// its buffer: the capture, which a retry replays, holds at most the limit,
// and the retry reads the whole body, the captured prefix and then the
// rest of the caller's.
func TestFrozenCaptureStopsAtTheLimit(t *testing.T) {
	const limit = 10
	whole := strings.Repeat("0123456789", 3)
	src := newTrackedBody(whole)
	req, err := http.NewRequest("PUT", "http://api.test/v1/doc", src)
	if err != nil {
		t.Fatal(err)
	}
	var b replayBody
	b.init(req, limit, math.MaxInt64)
	defer b.close()
	r, _ := b.first()
	if n, err := io.ReadFull(r, make([]byte, 4)); n != 4 || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	b.freeze()
	if n, err := r.Read(make([]byte, 100)); n != limit-4 || err != nil {
		t.Errorf("a read of 100 bytes while frozen, 4 bytes read of a limit of %d: %d bytes, %v; want %d, nil", limit, n, err, limit-4)
	}
	if n, _, _ := src.stats(); n > limit {
		t.Errorf("the caller's body was read %d bytes far while frozen; want at most the limit, %d", n, limit)
	}
	if got := len(b.cap.buf); got > limit {
		t.Errorf("the capture holds %d bytes; want at most the limit, %d", got, limit)
	}
	next, err := b.next(context.Background(), nil, time.Time{})
	if err != nil {
		t.Fatalf("the retry's body: %v", err)
	}
	if got, err := io.ReadAll(next); string(got) != whole || err != nil {
		t.Errorf("the retry read %q, %v; want the whole body %q", got, err, whole)
	}
	next.Close()
}
