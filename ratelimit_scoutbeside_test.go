package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitTokenlessScoutBesideTurn: a host's quota of 10 a minute
// is followed by a rolling window (one request back each 6 s from its
// end), and each answer takes 5 s. Nine calls one after another from t=0
// and a tenth at 50 s spend it; its answer (55 s) says none left, the
// reset at 60 s, and a batch of 30 calls made then waits for it. One goes
// at the reset; its answer (65 s) says none left until 66 s, when no
// token is in the pace's bucket, and the attempts whose turn passes the
// bound wait for a scout: one goes without a token halfway through that
// wait, at 69 s (see rateLimiter.nextScout), into the request the window
// gave back at 66 s. It takes the pace's next turn (see scoutTakesTurn):
// no attempt goes at it beside the scout, into the same request, and the
// server answers none 429, the batch as well served as before the scout
// rule (9 answered 200). (Sent at its turn, 71.6 s, that attempt was
// answered 429: 9 answered 200, 1 429, 20 refused.)
func TestRateLimitTokenlessScoutBesideTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &quotaServer{limit: 10, window: time.Minute, slide: 6 * time.Second, answer: 5 * time.Second, start: time.Now()}
		var log sendLog
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			log.add(time.Now())
			return srv.RoundTrip(req)
		})
		tr := New(base, WithMaxRetries(0))
		client := &http.Client{Transport: tr}
		for i := range 9 {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
				t.Fatalf("call %d of the first window: %d, %v", i, code, err)
			}
		}
		time.Sleep(time.Until(srv.start.Add(50 * time.Second)))
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("last call of the first window: %d, %v", code, err)
		}
		counts := map[int]int{}
		eachOfBatch(t, client, 30, func(code int, err error, _ time.Duration) {
			if counts[code]++; code == 0 && counts[0] == 1 {
				t.Logf("refused: %v", err)
			}
		})
		var sent []time.Duration
		scouted := false // a request went between 66 s and the pace's next turn (71.6 s)
		for _, at := range log.times() {
			d := at.Sub(srv.start)
			sent = append(sent, d)
			scouted = scouted || d >= 66*time.Second && d < 71*time.Second
		}
		if !scouted {
			t.Fatalf("no scout went between 66 s and 71 s (requests sent at %v): the case tests nothing", sent)
		}
		_, throttled := srv.counts()
		if throttled != 0 || counts[200] < 9 {
			t.Errorf("batch of 30 held to the reset of a rolling window: %v (0: refused), the server answered %d 429s; want none 429, at least 9 answered 200 (requests sent at %v)", counts, throttled, sent)
		}
		checkNoneInFlight(t, tr)
	})
}
