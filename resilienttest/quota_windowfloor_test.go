package resilienttest

import (
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuotaWindowFloor proves what Quota says of a window shorter than a
// millisecond, set or scaled (Window/TimeScale): it lasts a millisecond,
// and the headers announce its end there.
func TestQuotaWindowFloor(t *testing.T) {
	for _, q := range []Quota{
		{Limit: 1, Window: time.Microsecond, Kind: FixedWindow, ResetFormat: UnixMillis},
		{Limit: 1, Window: time.Second, TimeScale: 1e6, Kind: FixedWindow, ResetFormat: UnixMillis},
		{Limit: 1, Window: time.Nanosecond, Kind: RollingWindow, ResetFormat: UnixMillis},
	} {
		synctest.Test(t, func(t *testing.T) {
			s := NewPipeServer(Altyaa, WithQuota(q))
			defer s.Close()
			r := send(t, s, "GET", "/v1/posts", "", "")
			mustStatus(t, r, 200)
			if got, want := r.header.Get("X-RateLimit-Reset"), strconv.FormatInt(bubbleStart*1000+1, 10); got != want {
				t.Errorf("%+v: Reset = %q, want %q (a millisecond on)", q, got, want)
			}
			time.Sleep(500 * time.Microsecond)
			if r := send(t, s, "GET", "/v1/posts", "", ""); r.status != 429 {
				t.Errorf("%+v: status %d half a millisecond on, want 429 (the window lasts a millisecond)", q, r.status)
			}
			time.Sleep(500 * time.Microsecond)
			mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		})
	}
}
