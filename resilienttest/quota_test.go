package resilienttest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The fake clock of a synctest bubble starts at 2000-01-01T00:00:00Z.
const bubbleStart = 946684800

// TestQuotaResetFormats checks every format's headers at a known fake
// time: 10.5s into a one-minute window of 3 requests, after one request.
func TestQuotaResetFormats(t *testing.T) {
	reset := strconv.Itoa(bubbleStart + 60)
	tests := []struct {
		d      Dialect
		format ResetFormat
		want   map[string]string
	}{
		{Altyaa, UnixSeconds, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": reset}},
		{Altyaa, UnixMillis, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": reset + "000"}},
		{Altyaa, DeltaSeconds, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "50"}},
		{Altyaa, RFC3339, map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "2000-01-01T00:01:00Z"}},
		{Altyaa, IETF, map[string]string{"RateLimit": `"default";r=2;t=50`, "RateLimit-Policy": `"default";q=3;w=60`, "X-RateLimit-Limit": ""}},
		{Altyaa, XRateLimitDash, map[string]string{"X-Rate-Limit-Limit": "3", "X-Rate-Limit-Remaining": "2", "X-Rate-Limit-Reset": reset, "X-RateLimit-Limit": ""}},
		{Aidelly, DefaultResetFormat, map[string]string{"X-RateLimit-Reset": "2000-01-01T00:01:00Z"}},
		{Postato, DefaultResetFormat, map[string]string{"X-RateLimit-Reset": reset}},
	}
	for _, tt := range tests {
		t.Run(tt.d.String()+"/"+tt.format.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(tt.d, WithQuota(Quota{Limit: 3, Window: time.Minute, ResetFormat: tt.format, Kind: FixedWindow}))
				defer s.Close()
				time.Sleep(10500 * time.Millisecond)
				r := send(t, s, "GET", "/v1/posts", "", "")
				mustStatus(t, r, 200)
				for k, v := range tt.want {
					if got := r.header.Get(k); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			})
		})
	}
}

// TestQuotaExceeded proves the 429 past a fixed quota, its Retry-After,
// and the next window.
func TestQuotaExceeded(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(d, WithQuota(Quota{Limit: 2, Window: time.Minute, ResetFormat: DeltaSeconds, Kind: FixedWindow, Shared: true}))
				defer s.Close()
				mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k1"), 201)
				time.Sleep(20*time.Second + time.Millisecond)
				mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
				r := send(t, s, "POST", "/v1/posts", `{"n":2}`, "k2")
				mustStatus(t, r, 429)
				if got := r.header.Get("Retry-After"); got != "40" {
					t.Errorf("Retry-After = %q, want 40", got)
				}
				if got := r.header.Get("X-RateLimit-Remaining"); got != "0" {
					t.Errorf("Remaining = %q, want 0", got)
				}
				if e := parseError(t, d, r); e.code != d.ErrorCode(RouteCreatePost, 429) {
					t.Errorf("code %q", e.code)
				}
				st := s.Stats()
				if st.RateLimited != 1 || st.StoredWrites != 1 {
					t.Fatalf("RateLimited, StoredWrites = %d, %d; want 1, 1", st.RateLimited, st.StoredWrites)
				}
				time.Sleep(40 * time.Second)
				r = send(t, s, "POST", "/v1/posts", `{"n":2}`, "k2")
				mustStatus(t, r, 201)
				if got := r.header.Get("X-RateLimit-Remaining"); got != "1" {
					t.Errorf("next window: Remaining = %q, want 1", got)
				}
			})
		})
	}
}

func TestQuotaPerClass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Aidelly, WithQuota(Quota{Limit: 2, WriteLimit: 1, PerClass: true, ResetFormat: IETF}))
		defer s.Close()
		r := send(t, s, "GET", "/v1/usage", "", "")
		mustStatus(t, r, 200)
		if got := r.header.Get("RateLimit"); got != `"reads";r=1;t=60` {
			t.Errorf("RateLimit = %q", got)
		}
		var usage struct {
			Requests int
			Quota    struct {
				Limit, Remaining int
				Reset            string
			}
		}
		json.Unmarshal(parseSuccess(t, Aidelly, r), &usage)
		if usage.Requests != 1 || usage.Quota.Limit != 2 || usage.Quota.Remaining != 1 || usage.Quota.Reset != "2000-01-01T00:01:00Z" {
			t.Errorf("usage %s", r.body)
		}
		r = send(t, s, "POST", "/v1/media/upload-url", "", "m1")
		mustStatus(t, r, 200)
		if got, want := r.header.Get("RateLimit")+" "+r.header.Get("RateLimit-Policy"), `"writes";r=0;t=60 "writes";q=1;w=60`; got != want {
			t.Errorf("write headers %q, want %q", got, want)
		}
		mustStatus(t, send(t, s, "POST", "/v1/media/upload-url", "", "m2"), 429)
		mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 200)
		mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 429)
	})
}

// TestQuotaTimeScale proves that TimeScale shortens the window and that the
// headers announce the scaled times.
func TestQuotaTimeScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Postato, WithQuota(Quota{Limit: 2, Window: time.Minute, TimeScale: 120, ResetFormat: UnixMillis}))
		defer s.Close()
		time.Sleep(300 * time.Millisecond)
		r := send(t, s, "GET", "/v1/posts", "", "")
		mustStatus(t, r, 200)
		if got, want := r.header.Get("X-RateLimit-Reset"), strconv.Itoa(bubbleStart)+"500"; got != want {
			t.Errorf("Reset = %q, want %q (the end of a 500ms window)", got, want)
		}
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		r = send(t, s, "GET", "/v1/posts", "", "")
		mustStatus(t, r, 429)
		if got := r.header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1 (200ms rounded up)", got)
		}
		time.Sleep(200 * time.Millisecond)
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
	})
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Altyaa, WithQuota(Quota{Limit: 60, Window: time.Minute, TimeScale: 60, ResetFormat: IETF}))
		defer s.Close()
		r := send(t, s, "GET", "/v1/posts", "", "")
		if got, want := r.header.Get("RateLimit")+" "+r.header.Get("RateLimit-Policy"), `"default";r=59;t=1 "default";q=60;w=1`; got != want {
			t.Errorf("headers %q, want %q", got, want)
		}
	})
}

// TestQuotaInjected proves that answers injected in front of the API carry
// the headers but do not count against the quota.
func TestQuotaInjected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Altyaa, WithQuota(Quota{Limit: 1}), WithScript(RouteListPosts, Respond(503), HTML(502)))
		defer s.Close()
		for _, want := range []int{503, 502} {
			r := send(t, s, "GET", "/v1/posts", "", "")
			mustStatus(t, r, want)
			if got := r.header.Get("X-RateLimit-Remaining"); got != "1" {
				t.Errorf("%d: Remaining = %q, want 1", want, got)
			}
		}
		r := send(t, s, "GET", "/v1/posts", "", "")
		mustStatus(t, r, 200)
		if got := r.header.Get("X-RateLimit-Remaining"); got != "0" {
			t.Errorf("Remaining = %q, want 0", got)
		}
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 429)
	})
}

func TestResetFormatString(t *testing.T) {
	for f, want := range map[ResetFormat]string{UnixSeconds: "UnixSeconds", IETF: "IETF", XRateLimitDash: "XRateLimitDash", 42: "ResetFormat(42)"} {
		if got := f.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// TestQuotaRolling proves the rolling window, Aidelly's by default: each
// counted request frees its slot a window after it was counted, and the
// reset announces when the next slot frees.
func TestQuotaRolling(t *testing.T) {
	type probe struct {
		at        time.Duration // fake time since the start
		status    int
		remaining string
		reset     string // DeltaSeconds
		retry     string // Retry-After of a 429
	}
	rolling := []probe{
		{0, 200, "2", "60", ""},
		{10 * time.Second, 200, "1", "50", ""},
		{20 * time.Second, 200, "0", "40", ""},
		{30 * time.Second, 429, "0", "30", "30"},
		{60 * time.Second, 200, "0", "10", ""}, // the slot of 0s is free; 10s is next
		{65 * time.Second, 429, "0", "5", "5"},
		{70 * time.Second, 200, "0", "10", ""}, // 20s is next
		{200 * time.Second, 200, "2", "60", ""},
	}
	fixed := []probe{
		{0, 200, "2", "60", ""},
		{10 * time.Second, 200, "1", "50", ""},
		{20 * time.Second, 200, "0", "40", ""},
		{30 * time.Second, 429, "0", "30", "30"},
		{60 * time.Second, 200, "2", "60", ""}, // a new window: the whole quota
		{65 * time.Second, 200, "1", "55", ""},
	}
	tests := []struct {
		name   string
		d      Dialect
		kind   WindowKind
		probes []probe
	}{
		{"aidelly default", Aidelly, DefaultWindow, rolling},
		{"altyaa rolling", Altyaa, RollingWindow, rolling},
		{"postato rolling", Postato, RollingWindow, rolling},
		{"aidelly fixed", Aidelly, FixedWindow, fixed},
		{"altyaa default", Altyaa, DefaultWindow, fixed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(tt.d, WithQuota(Quota{Limit: 3, Window: time.Minute, ResetFormat: DeltaSeconds, Kind: tt.kind}))
				defer s.Close()
				start := time.Now()
				for _, p := range tt.probes {
					time.Sleep(time.Until(start.Add(p.at)))
					r := send(t, s, "GET", "/v1/posts", "", "")
					mustStatus(t, r, p.status)
					got := [3]string{r.header.Get("X-RateLimit-Remaining"), r.header.Get("X-RateLimit-Reset"), r.header.Get("Retry-After")}
					if want := [3]string{p.remaining, p.reset, p.retry}; got != want {
						t.Errorf("at %v: Remaining, Reset, Retry-After = %q, want %q", p.at, got, want)
					}
				}
			})
		})
	}
}

// TestQuotaRollingTimeScale proves the rolling window on a sped-up clock,
// per class, with the next slot's time in Unix milliseconds.
func TestQuotaRollingTimeScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Aidelly, WithQuota(Quota{Limit: 2, WriteLimit: 1, PerClass: true, Window: time.Minute, TimeScale: 60, ResetFormat: UnixMillis}))
		defer s.Close()
		ms := func(d time.Duration) string { return strconv.FormatInt(bubbleStart*1000+d.Milliseconds(), 10) }
		check := func(r result, status int, remaining, reset string) {
			t.Helper()
			mustStatus(t, r, status)
			if got := r.header.Get("X-RateLimit-Remaining") + " " + r.header.Get("X-RateLimit-Reset"); got != remaining+" "+reset {
				t.Errorf("Remaining Reset = %q, want %q", got, remaining+" "+reset)
			}
		}
		check(send(t, s, "GET", "/v1/posts", "", ""), 200, "1", ms(time.Second))
		time.Sleep(300 * time.Millisecond)
		check(send(t, s, "GET", "/v1/posts", "", ""), 200, "0", ms(time.Second))
		check(send(t, s, "POST", "/v1/media/upload-url", "", "m1"), 200, "0", ms(1300*time.Millisecond)) // writes apart
		time.Sleep(100 * time.Millisecond)
		r := send(t, s, "GET", "/v1/posts", "", "")
		check(r, 429, "0", ms(time.Second))
		if got := r.header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1 (600ms rounded up)", got)
		}
		time.Sleep(600 * time.Millisecond) // 1s: the first read's slot frees
		check(send(t, s, "GET", "/v1/posts", "", ""), 200, "0", ms(1300*time.Millisecond))
	})
}

// TestQuotaRollingOrder proves that a time read before another request was
// counted does not go back: requests are counted in the order they take
// the lock, never before the latest.
func TestQuotaRollingOrder(t *testing.T) {
	start := time.Unix(bubbleStart, 0)
	q := newQuotaState(Quota{Limit: 2, Window: time.Minute, Kind: RollingWindow}, Altyaa, start)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	if rem, _, ok := q.take(quotaKey{class: classRead}, at(10*time.Second)); !ok || rem != 1 {
		t.Fatalf("take at 10s = %d, %v; want 1, true", rem, ok)
	}
	if rem, reset, ok := q.take(quotaKey{class: classRead}, at(5*time.Second)); !ok || rem != 0 || !reset.Equal(at(70*time.Second)) {
		t.Fatalf("take at 5s (read late) = %d, %v, %v; want 0, 70s, true", rem, reset.Sub(start), ok)
	}
	if rem, reset := q.peek(quotaKey{class: classRead}, at(69*time.Second)); rem != 0 || !reset.Equal(at(70*time.Second)) {
		t.Fatalf("peek at 69s = %d, %v; want 0, 70s", rem, reset.Sub(start))
	}
	if rem, reset := q.peek(quotaKey{class: classRead}, at(70*time.Second)); rem != 2 || !reset.Equal(at(70*time.Second)) {
		t.Fatalf("peek at 70s = %d, %v; want 2 (both counted at 10s), 70s", rem, reset.Sub(start))
	}
}

func TestWindowKindString(t *testing.T) {
	for k, want := range map[WindowKind]string{DefaultWindow: "DefaultWindow", FixedWindow: "FixedWindow", RollingWindow: "RollingWindow", 9: "WindowKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// TestQuotaClassesDefault proves that Aidelly's quota counts reads and
// writes apart by default, as Aidelly documents (reads and writes counted
// separately per API key), unless Shared, and that the other dialects'
// count them together unless PerClass.
func TestQuotaClassesDefault(t *testing.T) {
	tests := []struct {
		d         Dialect
		q         Quota
		writeCode int // of a write after the one read the limit allows
	}{
		{Aidelly, Quota{Limit: 1}, 200},
		{Aidelly, Quota{Limit: 1, Shared: true}, 429},
		{Aidelly, Quota{Limit: 1, PerClass: true}, 200},
		{Altyaa, Quota{Limit: 1}, 429},
		{Altyaa, Quota{Limit: 1, PerClass: true}, 200},
		{Postato, Quota{Limit: 1}, 429},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			s := NewPipeServer(tt.d, WithQuota(tt.q), WithRequireIdempotencyKey(false))
			defer s.Close()
			mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
			r := send(t, s, "POST", "/v1/media/upload-url", "", "")
			if r.status != tt.writeCode {
				t.Errorf("%v %+v: a write after a read: %d, want %d", tt.d, tt.q, r.status, tt.writeCode)
			}
			if r = send(t, s, "GET", "/v1/posts", "", ""); r.status != 429 {
				t.Errorf("%v %+v: a second read: %d, want 429", tt.d, tt.q, r.status)
			}
		})
	}
}

func TestQuotaPerClassAndShared(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("WithQuota(PerClass and Shared) did not panic")
		}
	}()
	WithQuota(Quota{Limit: 1, PerClass: true, Shared: true})
}

// TestQuotaHugeWindow: a window of 292 years or more (Window/TimeScale past
// what a Duration holds) is one that never ends, not one of a millisecond.
func TestQuotaHugeWindow(t *testing.T) {
	for _, q := range []Quota{{Limit: 1, Window: time.Duration(1<<63 - 1)}, {Limit: 1, Window: time.Minute, TimeScale: 1e-12}} {
		synctest.Test(t, func(t *testing.T) {
			s := NewPipeServer(Altyaa, WithQuota(q))
			defer s.Close()
			var codes []int
			for range 3 {
				time.Sleep(10 * time.Millisecond)
				resp, err := s.Client().Get(s.URL + "/v1/usage")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				codes = append(codes, resp.StatusCode)
			}
			if codes[1] != 429 || codes[2] != 429 {
				t.Errorf("%+v: statuses %v, want 200 then 429s", q, codes)
			}
		})
	}
}

// TestQuotaWriteLimitDefaultsToLimit proves that, counted per class, the
// writes' limit is Limit when WriteLimit is zero.
func TestQuotaWriteLimitDefaultsToLimit(t *testing.T) {
	s := NewServer(Aidelly, WithQuota(Quota{Limit: 2, Kind: FixedWindow}))
	defer s.Close()
	for i := range 2 {
		r := send(t, s, "POST", "/v1/posts", `{"n":`+strconv.Itoa(i)+`}`, "k"+strconv.Itoa(i))
		mustStatus(t, r, 201)
		if got := r.header.Get("X-RateLimit-Limit"); got != "2" {
			t.Fatalf("X-RateLimit-Limit = %q, want 2", got)
		}
	}
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":2}`, "k2"), 429)
}

// TestQuotaSharedIgnoresWriteLimit proves that a quota counted in one
// class allows Limit requests, writes included, whatever WriteLimit says.
func TestQuotaSharedIgnoresWriteLimit(t *testing.T) {
	for _, d := range dialects {
		s := NewServer(d, WithQuota(Quota{Limit: 2, WriteLimit: 1, Shared: true, Kind: FixedWindow}))
		for i := range 2 {
			r := send(t, s, "POST", "/v1/posts", `{"n":`+strconv.Itoa(i)+`}`, "k"+strconv.Itoa(i))
			mustStatus(t, r, 201)
			if got := r.header.Get("X-RateLimit-Limit"); got != "2" {
				t.Errorf("%v: X-RateLimit-Limit = %q, want 2", d, got)
			}
		}
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":2}`, "k2"), 429)
		s.Close()
	}
}

// TestQuotaCountsHeadAsARead proves that, counted per class, a HEAD takes
// from the reads' quota, not the writes'.
func TestQuotaCountsHeadAsARead(t *testing.T) {
	s := NewServer(Aidelly, WithQuota(Quota{Limit: 1, Kind: FixedWindow, ResetFormat: IETF}))
	defer s.Close()
	r := send(t, s, "HEAD", "/v1/posts", "", "")
	mustStatus(t, r, 200)
	if got := r.header.Get("RateLimit"); !strings.HasPrefix(got, `"reads";r=0;`) {
		t.Errorf("RateLimit = %q, want the reads' policy with r=0", got)
	}
	mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 429)
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"n":1}`, "k"), 201)
}

// TestQuotaPolicyWindowRoundsUp proves that RateLimit-Policy announces the
// scaled window in whole seconds rounded up, at least 1.
func TestQuotaPolicyWindowRoundsUp(t *testing.T) {
	tests := []struct {
		window time.Duration
		scale  float64
		want   string
	}{
		{time.Minute, 120, `"default";q=3;w=1`}, // half a second
		{90 * time.Second, 60, `"default";q=3;w=2`},
	}
	for _, tt := range tests {
		s := NewServer(Altyaa, WithQuota(Quota{Limit: 3, Window: tt.window, TimeScale: tt.scale, ResetFormat: IETF}))
		r := send(t, s, "GET", "/v1/usage", "", "")
		s.Close()
		mustStatus(t, r, 200)
		if got := r.header.Get("RateLimit-Policy"); got != tt.want {
			t.Errorf("window %v / %v: RateLimit-Policy = %q, want %q", tt.window, tt.scale, got, tt.want)
		}
	}
}

// TestQuotaResetRoundsUp proves that every format rounds a reset that
// falls between two units up, so that a client waiting until it never
// wakes early: here a fixed window of 1.5005s.
func TestQuotaResetRoundsUp(t *testing.T) {
	const window = 1500500 * time.Microsecond
	tests := []struct {
		format ResetFormat
		header string
		want   string
	}{
		{UnixSeconds, "X-RateLimit-Reset", strconv.Itoa(bubbleStart + 2)},
		{UnixMillis, "X-RateLimit-Reset", strconv.FormatInt(bubbleStart*1000+1501, 10)},
		{DeltaSeconds, "X-RateLimit-Reset", "2"},
		{RFC3339, "X-RateLimit-Reset", "2000-01-01T00:00:02Z"},
		{IETF, "RateLimit", `"default";r=2;t=2`},
		{XRateLimitDash, "X-Rate-Limit-Reset", strconv.Itoa(bubbleStart + 2)},
	}
	for _, tt := range tests {
		t.Run(tt.format.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewPipeServer(Altyaa, WithQuota(Quota{Limit: 3, Window: window, Kind: FixedWindow, ResetFormat: tt.format}))
				defer s.Close()
				r := send(t, s, "GET", "/v1/usage", "", "")
				mustStatus(t, r, 200)
				if got := r.header.Get(tt.header); got != tt.want {
					t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
				}
				var usage struct {
					Quota struct{ Reset string }
				}
				if err := json.Unmarshal(parseSuccess(t, Altyaa, r), &usage); err != nil {
					t.Fatal(err)
				}
				if usage.Quota.Reset != "2000-01-01T00:00:02Z" {
					t.Errorf("usage reset = %q, want 2000-01-01T00:00:02Z", usage.Quota.Reset)
				}
			})
		})
	}
}

// TestQuotaStaleTimeNeverReopensAWindow proves that a time read before
// another request moved a fixed window on does not count in the window
// that ended: the quota is not reset by it.
func TestQuotaStaleTimeNeverReopensAWindow(t *testing.T) {
	start := time.Unix(bubbleStart, 0)
	q := newQuotaState(Quota{Limit: 1, Kind: FixedWindow}, Altyaa, start)
	if _, _, ok := q.take(quotaKey{class: classRead}, start.Add(61*time.Second)); !ok {
		t.Fatal("first request of the second window refused")
	}
	rem, reset, ok := q.take(quotaKey{class: classRead}, start.Add(59*time.Second))
	if ok || rem != 0 || !reset.Equal(start.Add(2*time.Minute)) {
		t.Fatalf("stale request: remaining %d, reset %v, allowed %v; want 0, %v, false", rem, reset, ok, start.Add(2*time.Minute))
	}
}

// TestQuotaRollingStaleTimeCountsAtTheLatestRead proves that a request of
// a rolling window whose time was read before a later read is counted at
// the later time: its slot frees a Window after that.
func TestQuotaRollingStaleTimeCountsAtTheLatestRead(t *testing.T) {
	start := time.Unix(bubbleStart, 0)
	q := newQuotaState(Quota{Limit: 2, Kind: RollingWindow}, Altyaa, start)
	q.take(quotaKey{class: classRead}, start)
	q.peek(quotaKey{class: classRead}, start.Add(10*time.Millisecond))
	if _, _, ok := q.take(quotaKey{class: classRead}, start.Add(5*time.Millisecond)); !ok {
		t.Fatal("second request refused")
	}
	if rem, _ := q.peek(quotaKey{class: classRead}, start.Add(time.Minute+5*time.Millisecond)); rem != 1 {
		t.Fatalf("remaining %d a minute and 5ms on, want 1 (the second slot frees at a minute and 10ms)", rem)
	}
}

// TestQuotaCountsADropAfter proves that a request a DropAfter step drops
// after processing counts against the quota.
func TestQuotaCountsADropAfter(t *testing.T) {
	s := NewServer(Altyaa, WithQuota(Quota{Limit: 1, Kind: FixedWindow}), WithScript(RouteUsage, DropAfter()))
	defer s.Close()
	if r := send(t, s, "GET", "/v1/usage", "", ""); r.err == nil {
		t.Fatalf("status %d, want the connection dropped", r.status)
	}
	mustStatus(t, send(t, s, "GET", "/v1/usage", "", ""), 429)
}
