package resilient_test

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the hostile server of TestBoundsProperty
// (bounds_property_test.go).
// boundsBehavior is what the server does with one request.
type boundsBehavior int

const (
	bhOK            boundsBehavior = iota
	bh429Seconds                   // Retry-After in seconds
	bh429Date                      // Retry-After as an HTTP date
	bh429Huge                      // Retry-After: 99999999999
	bh429Negative                  // Retry-After: -5
	bh429Garbage                   // Retry-After: soon
	bh429Bare                      // no Retry-After
	bh503                          // no Retry-After
	bh503RetryAfter                // Retry-After in seconds
	bhSpentReset                   // 200 announcing a spent quota whose reset is far
	bhSpent429                     // 429 announcing a spent quota whose reset is far, no Retry-After
	bhHang                         // never answers
	bhStall                        // 200 headers, part of the body, then nothing
	bhStall503                     // 503 headers, part of the body, then nothing
	bhReset                        // the connection closed without an answer
	bhSlow                         // 200, after a few seconds
	bhStall429                     // 429 with Retry-After: 1, part of the body, then nothing
	bh503Long                      // 503 with a Retry-After of an hour
	bhSkewed                       // 429 with a Retry-After date and a Date header far off
	bhVendor                       // 429 or 200 with a vendor's spent quota (OpenAI, Anthropic, Shopify)
	bhTrickle                      // 200, its body a byte at a time, over up to bhSlowest
	bhTrickle503                   // 503 with an error envelope, a byte at a time, over up to bhSlowest
	bhTrickle429                   // 429 with Retry-After: 1 and an error envelope, a byte at a time
	bhRedirect                     // 307 to the same URL
	bhHangUnread                   // never answers, nor reads the body (no 100 Continue)
	bhCount
)

var boundsBehaviorNames = [...]string{"ok", "429s", "429date", "429huge", "429neg", "429garbage", "429bare", "503", "503ra",
	"spent200", "spent429", "hang", "stall", "stall503", "reset", "slow", "stall429", "503long", "skewed", "vendor",
	"trickle", "trickle503", "trickle429", "redirect", "hangunread"}

// bhSlowest is the longest a bhSlow answer takes.
const bhSlowest = 8 * time.Second

func (b boundsBehavior) String() string { return boundsBehaviorNames[b] }

// hangs reports whether b never ends by itself.
func (b boundsBehavior) hangs() bool {
	return b == bhHang || b == bhStall || b == bhStall503 || b == bhStall429 || b == bhHangUnread
}

// ambiguous reports whether a write that met b may have been processed.
func (b boundsBehavior) ambiguous() bool {
	switch b {
	case bhOK, bhSpentReset, bhStall, bh503, bh503RetryAfter, bhHang, bhStall503, bhReset, bhSlow, bh503Long,
		bhTrickle, bhTrickle503, bhRedirect, bhHangUnread:
		return true
	}
	return false // a 429 (bhVendor's 200 ends the call)
}

// boundsServer is the hostile server of a case.
type boundsServer struct {
	behaviors []boundsBehavior
	healthy   atomic.Bool
	closing   chan struct{} // closed by stop: every answer that hangs ends
	stopOnce  sync.Once

	mu     sync.Mutex
	next   int
	byCall map[string][]boundsBehavior // what each request of a call met, in order
}

func (s *boundsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Bounds-Call")
	b := bhOK
	s.mu.Lock()
	if !s.healthy.Load() && s.next < len(s.behaviors) {
		b = s.behaviors[s.next]
		s.next++
	}
	s.byCall[id] = append(s.byCall[id], b)
	s.mu.Unlock()
	if b != bhHangUnread {
		io.Copy(io.Discard, r.Body)
	}

	h := w.Header()
	now := time.Now()
	switch b {
	case bhOK:
		io.WriteString(w, "ok")
	case bh429Seconds:
		h.Set("Retry-After", strconv.Itoa(int(now.UnixNano()%90)))
		w.WriteHeader(429)
	case bh429Date:
		h.Set("Retry-After", now.Add(time.Duration(now.UnixNano()%120)*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(429)
	case bh429Huge:
		h.Set("Retry-After", "99999999999")
		w.WriteHeader(429)
	case bh429Negative:
		h.Set("Retry-After", "-5")
		w.WriteHeader(429)
	case bh429Garbage:
		h.Set("Retry-After", "soon")
		w.WriteHeader(429)
	case bh429Bare:
		w.WriteHeader(429)
	case bh503:
		w.WriteHeader(503)
		io.WriteString(w, "down")
	case bh503RetryAfter:
		h.Set("Retry-After", strconv.Itoa(int(now.UnixNano()%30)))
		w.WriteHeader(503)
	case bhSpentReset, bhSpent429:
		switch now.UnixNano() % 3 {
		case 0:
			h.Set("X-RateLimit-Limit", "10")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(50*time.Minute).Unix(), 10))
		case 1:
			h.Set("RateLimit-Limit", "10")
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", "3000")
		default:
			h.Set("RateLimit", `"default";r=0;t=3500`)
			h.Set("RateLimit-Policy", `"default";q=10;w=3600`)
		}
		if b == bhSpent429 {
			w.WriteHeader(429)
		}
		io.WriteString(w, "spent")
	case bhHang, bhHangUnread:
		s.hang(r)
	case bhTrickle:
		s.trickle(w, r, "trickled", 0)
	case bhTrickle503:
		s.trickle(w, r, `{"error":{"code":"service_unavailable","message":"down"}}`, 503)
	case bhTrickle429:
		h.Set("Retry-After", "1")
		s.trickle(w, r, `{"error":{"code":"rate_limited","message":"slow down"}}`, 429)
	case bhRedirect:
		h.Set("Location", r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
		io.WriteString(w, "moved")
	case bhStall, bhStall503:
		if b == bhStall503 {
			w.WriteHeader(503)
		}
		io.WriteString(w, "par")
		http.NewResponseController(w).Flush()
		s.hang(r)
	case bhSlow:
		select {
		case <-time.After(time.Duration(1+now.UnixNano()%int64(bhSlowest/time.Second)) * time.Second):
			io.WriteString(w, "slow")
		case <-r.Context().Done():
		case <-s.closing:
		}
	case bhStall429:
		h.Set("Retry-After", "1")
		w.WriteHeader(429)
		io.WriteString(w, `{"error":`)
		http.NewResponseController(w).Flush()
		s.hang(r)
	case bhSkewed:
		// The server's clock is off by up to a day either way; it asks
		// for a wait until its clock's now plus up to two minutes.
		skew := time.Duration(now.UnixNano()%(48*3600)-24*3600) * time.Second
		h.Set("Date", now.Add(skew).UTC().Format(http.TimeFormat))
		h.Set("Retry-After", now.Add(skew+time.Duration(now.UnixNano()%120)*time.Second).UTC().Format(http.TimeFormat))
		if now.UnixNano()%2 == 0 {
			h.Set("X-RateLimit-Limit", "10")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(skew+30*time.Minute).Unix(), 10))
		}
		w.WriteHeader(429)
	case bhVendor:
		switch now.UnixNano() % 3 {
		case 0:
			h.Set("x-ratelimit-limit-requests", "60")
			h.Set("x-ratelimit-remaining-requests", "0")
			h.Set("x-ratelimit-reset-requests", "59m0s")
		case 1:
			h.Set("anthropic-ratelimit-requests-limit", "50")
			h.Set("anthropic-ratelimit-requests-remaining", "0")
			h.Set("anthropic-ratelimit-requests-reset", now.Add(40*time.Minute).UTC().Format(time.RFC3339))
		default:
			h.Set("X-Shopify-Shop-Api-Call-Limit", "40/40")
		}
		if now.UnixNano()%2 == 0 {
			w.WriteHeader(429)
		}
		io.WriteString(w, "vendor")
	case bh503Long:
		h.Set("Retry-After", "3600")
		w.WriteHeader(503)
	case bhReset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		conn.Close()
	}
}

// trickle answers status (0: 200) with body, one byte at a time, spread
// over up to bhSlowest, unless the request's connection is gone or the
// server closes first.
func (s *boundsServer) trickle(w http.ResponseWriter, r *http.Request, body string, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if status != 0 {
		w.WriteHeader(status)
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	step := bhSlowest / time.Duration(len(body))
	for i := range len(body) {
		select {
		case <-time.After(step):
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
		io.WriteString(w, body[i:i+1])
		rc.Flush()
	}
}

// stop ends the answers that hang, and makes the later ones end at once.
func (s *boundsServer) stop() { s.stopOnce.Do(func() { close(s.closing) }) }

// hang waits until the request's connection is gone or the server closes.
func (s *boundsServer) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closing:
	}
}
