package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// twoLimitServer is a base RoundTripper for a host with two limits: a
// burst limit of burst requests a burstWindow (fixed windows from start)
// and an hourly quota of hourly requests. It answers a 429 when either is
// spent, and announces on each answer, with X-RateLimit-Limit, -Remaining
// and -Reset, the one nearer to running out (the lower share left), as
// some servers do. It counts the 429s answered after the first burst
// window (late). It does no I/O, and runs in a synctest bubble.
type twoLimitServer struct {
	burst       int
	burstWindow time.Duration
	hourly      int
	start       time.Time

	mu       sync.Mutex
	used     map[int64]int // requests counted in each burst window
	hourUsed int
	hits     int
	late     int // 429s answered after the first burst window
}

func (s *twoLimitServer) RoundTrip(req *http.Request) (*http.Response, error) {
	now := time.Now()
	s.mu.Lock()
	s.hits++
	elapsed := now.Sub(s.start)
	w := int64(elapsed / s.burstWindow)
	if s.used == nil {
		s.used = map[int64]int{}
	}
	ok := s.used[w] < s.burst && s.hourUsed < s.hourly
	if ok {
		s.used[w]++
		s.hourUsed++
	} else if elapsed >= s.burstWindow {
		s.late++
	}
	limit, remaining, reset := s.burst, s.burst-s.used[w], s.start.Add(time.Duration(w+1)*s.burstWindow).Sub(now)
	if left := s.hourly - s.hourUsed; left*s.burst < remaining*s.hourly {
		limit, remaining, reset = s.hourly, left, s.start.Add(time.Hour).Sub(now)
	}
	s.mu.Unlock()
	const answer = 50 * time.Millisecond
	time.Sleep(answer)
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat((reset-answer).Seconds(), 'f', 3, 64))
	status := http.StatusOK
	if !ok {
		status = http.StatusTooManyRequests
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

// TestSpentBurstLimitNotFilledByTheHourly: a server that announces the
// nearer to running out of a burst limit (10 requests each 10 s) and an
// hourly quota (1000) answers the first request after a spent burst
// window's reset with the hourly quota's count (880 left, say): the
// burst limit, fresh again, is the nearer to running out by its share
// only after a request or two. That answer announces another limit, not
// the spent one's next window, and does not fill the pace's bucket with
// the hourly count: before, 20 callers were let go together at each
// burst window's reset, and the server answered about half of its
// requests with a 429 (242 of 552), where the pace kept it to a few.
func TestSpentBurstLimitNotFilledByTheHourly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &twoLimitServer{burst: 10, burstWindow: 10 * time.Second, hourly: 1000, start: time.Now()}
		tr := resilient.New(srv, resilient.WithoutBreaker(), resilient.WithoutRetryBudget(), resilient.WithMaxRetries(0))
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for time.Since(srv.start) < 5*time.Minute {
					req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://api.test/v1/items", nil)
					resp, err := tr.RoundTrip(req)
					if err != nil {
						time.Sleep(time.Second) // refused: try again later
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		srv.mu.Lock()
		defer srv.mu.Unlock()
		// The pace lets a few 429s through when the two limits' counts
		// cross (under a tenth of the requests); a bucket filled with the
		// hourly count lets about half.
		if srv.late*5 > srv.hits {
			t.Errorf("the server got %d requests, answered %d of them 429 after the first burst window; want a fifth or fewer", srv.hits, srv.late)
		}
	})
}
