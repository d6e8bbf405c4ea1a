package resilienttest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// A Step is what a Server does with one attempt of a scripted route (see
// WithScript), or what a random fault makes it do (see WithFaults). The
// zero Step answers normally.
type Step struct {
	kind       stepKind
	status     int
	code       string
	delay      time.Duration
	size       int
	retryAfter time.Duration // negative: no Retry-After header
}

type stepKind uint8

const (
	stepNormal stepKind = iota
	stepRespond
	stepDropBefore
	stepDropAfter
	stepSlow
	stepHTML
	stepMalformed
	stepHuge
	stepRateLimited
	stepServerAfter
	stepCutBody
)

// Normal returns the Step that answers normally: the zero Step.
func Normal() Step { return Step{} }

// Respond returns a Step that answers with status. A 2xx status handles the
// request normally (a write is stored, a replay replayed) and answers with
// status instead of the route's own (a write it stores is stored with
// status, which the key's replays then answer); a status of 400 or more is
// answered at once, in front of the API, with the dialect's error envelope
// for that status on the route (see Dialect.ErrorCode), without
// Retry-After; a 3xx status is answered at once with an empty body. It
// panics if status is not in [200, 999].
func Respond(status int) Step {
	checkStatus("Respond", status)
	return Step{kind: stepRespond, status: status}
}

// RespondCode returns a Step that answers with status and the dialect's
// error envelope carrying code, for example
// RespondCode(500, "PUBLIC_API_CONTEXT_ERROR"). It panics if status is not
// in [400, 999].
func RespondCode(status int, code string) Step {
	checkErrorStatus("RespondCode", status)
	return Step{kind: stepRespond, status: status, code: code}
}

// DropBefore returns a Step that closes the connection before the request
// is processed: nothing is stored and the client gets no response.
//
// Note that net/http's Transport itself retries, once and at once, a
// request that is idempotent (a GET, or a write with an Idempotency-Key or
// X-Idempotency-Key header) when a connection it reused closes before any
// answer: the server then sees a second attempt that the client's own
// retry logic never saw. A dropped request on a new connection, or a write
// without a key, reaches the client as an error.
func DropBefore() Step { return Step{kind: stepDropBefore} }

// DropAfter returns a Step that processes the request (a write is stored,
// the quota counted) and then closes the connection without answering:
// the client gets no response although the server did the work. See
// DropBefore for net/http's own retry of such requests.
func DropAfter() Step { return Step{kind: stepDropAfter} }

// CutBody returns a Step that processes the request (a write is stored,
// the quota counted) and starts to send its answer, when it is a success
// with a body (a replay included): its status and headers, with the
// Content-Length of the whole body, and the first half of the body; then it
// closes the connection (over HTTP/2, resets the request's stream). The
// client gets the response, then an error partway through its body
// (net/http's io.ErrUnexpectedEOF over HTTP/1), as when a connection breaks
// during a download. An answer without a body, or other than a success, is
// sent whole. On a server WithHandler, a success past 1 MiB is cut after
// its first MiB (see WithHandler).
func CutBody() Step { return Step{kind: stepCutBody} }

// Slow returns a Step that waits d, then answers normally. The wait ends
// early when the client goes away or the Server is closed. It panics if d
// is negative.
func Slow(d time.Duration) Step {
	if d < 0 {
		panic("resilienttest: Slow: negative duration")
	}
	return Step{kind: stepSlow, delay: d}
}

// HTML returns a Step that answers with status and an HTML error page, as
// a proxy in front of the API would. It panics if status is not in
// [400, 999].
func HTML(status int) Step {
	checkErrorStatus("HTML", status)
	return Step{kind: stepHTML, status: status}
}

// Malformed returns a Step that answers with status and a JSON error
// envelope cut in half, under Content-Type application/json. It panics if
// status is not in [400, 999].
func Malformed(status int) Step {
	checkErrorStatus("Malformed", status)
	return Step{kind: stepMalformed, status: status}
}

// Huge returns a Step that answers with status and a valid error envelope
// of exactly size bytes (its message padded), or the bare envelope when
// size is smaller. A size of zero or less means 1 MiB. It panics if status
// is not in [400, 999].
func Huge(status, size int) Step {
	checkErrorStatus("Huge", status)
	if size <= 0 {
		size = defaultHugeSize
	}
	return Step{kind: stepHuge, status: status, size: size}
}

// FailAfterStoring returns a Step that handles the request normally (a
// write is stored) and then answers 500 with the dialect's server error for
// the route (Aidelly's PUBLIC_API_POST_CREATE_FAILED on POST /v1/posts), as
// a server whose response path failed after its commit. An answer other
// than a success (a replay, a conflict, the quota) is sent as it is.
func FailAfterStoring() Step {
	return Step{kind: stepServerAfter, status: http.StatusInternalServerError}
}

// RateLimited returns a Step that answers 429 with the dialect's
// rate-limited envelope and Retry-After: retryAfter in seconds, rounded up.
// Zero sends "Retry-After: 0"; a negative retryAfter sends no Retry-After.
func RateLimited(retryAfter time.Duration) Step {
	return Step{kind: stepRateLimited, status: http.StatusTooManyRequests, retryAfter: retryAfter}
}

const defaultHugeSize = 1 << 20

func checkStatus(fn string, status int) {
	if status < 200 || status > 999 {
		panic(fmt.Sprintf("resilienttest: %s: invalid status %d", fn, status))
	}
}

func checkErrorStatus(fn string, status int) {
	if status < 400 || status > 999 {
		panic(fmt.Sprintf("resilienttest: %s: status %d is not an error", fn, status))
	}
}

// String returns the Step as the call that makes it, e.g. "Respond(503)".
func (s Step) String() string {
	switch s.kind {
	case stepNormal:
		return "Normal()"
	case stepRespond:
		if s.code != "" {
			return "RespondCode(" + strconv.Itoa(s.status) + ", " + strconv.Quote(s.code) + ")"
		}
		return "Respond(" + strconv.Itoa(s.status) + ")"
	case stepDropBefore:
		return "DropBefore()"
	case stepDropAfter:
		return "DropAfter()"
	case stepSlow:
		return "Slow(" + s.delay.String() + ")"
	case stepHTML:
		return "HTML(" + strconv.Itoa(s.status) + ")"
	case stepMalformed:
		return "Malformed(" + strconv.Itoa(s.status) + ")"
	case stepHuge:
		return "Huge(" + strconv.Itoa(s.status) + ", " + strconv.Itoa(s.size) + ")"
	case stepRateLimited:
		return "RateLimited(" + s.retryAfter.String() + ")"
	case stepServerAfter:
		return "FailAfterStoring()"
	case stepCutBody:
		return "CutBody()"
	}
	return "Step(?)"
}

// answersAtOnce reports whether the step answers in front of the API,
// without processing the request.
func (s Step) answersAtOnce() bool {
	switch s.kind {
	case stepRespond:
		return s.status >= 300
	case stepHTML, stepMalformed, stepHuge, stepRateLimited:
		return true
	}
	return false
}

// Faults is a random mix of faults, set with WithFaults. Each probability
// is per attempt, in [0, 1], and their sum must not pass 1: for every
// attempt a single draw picks at most one fault, by cumulative probability
// in the order of the fields; the remaining probability answers normally.
// A route's script (WithScript), while it lasts, takes precedence: its
// attempts draw nothing.
//
// The draws come from a math/rand/v2 PCG seeded with Seed, under the
// Server's lock: for a given Seed and a given order of arrival of the
// attempts (a sequential client, for example), the faults are the same on
// every run.
type Faults struct {
	// Seed seeds the generator the faults are drawn from (see above).
	Seed int64

	// ServerError answers with a 5xx and the dialect's envelope: Aidelly
	// 500 with the route's *_FAILED code, Altyaa 503 service_unavailable,
	// Postato 500, 502, 503 or 504 (drawn) with its generic codes.
	ServerError float64
	// RateLimit answers 429 with the dialect's rate-limited envelope and
	// Retry-After (see RetryAfter).
	RateLimit float64
	// DropBefore closes the connection before processing (DropBefore()).
	DropBefore float64
	// DropAfter processes, then closes without answering (DropAfter()).
	DropAfter float64
	// Slow waits SlowDelay, then answers normally.
	Slow float64
	// Malformed answers with a truncated JSON envelope and the dialect's
	// server-error status (Aidelly and Postato 500, Altyaa 503).
	Malformed float64
	// HTML answers 502 with a proxy's HTML page.
	HTML float64
	// Huge answers with an envelope of HugeSize bytes and the dialect's
	// server-error status.
	Huge float64

	// ServerErrorAfter handles the request normally (a write is stored),
	// then answers 500 with the route's server error (FailAfterStoring()).
	ServerErrorAfter float64
	// CutBody handles the request normally, then breaks the connection
	// halfway through a success's body (CutBody()).
	CutBody float64

	// SlowDelay is the wait of a Slow fault; zero means 1s.
	SlowDelay time.Duration
	// RetryAfter is the Retry-After of a RateLimit fault, in seconds
	// rounded up; zero sends "Retry-After: 0", a negative value none.
	RetryAfter time.Duration
	// HugeSize is the body size of a Huge fault; zero or less means
	// 1 MiB, as for Huge.
	HugeSize int

	// FirstAttemptsOnly draws faults only for the first attempt of each
	// idempotency key on a route: a retry with the same key is answered
	// normally, also when a script (WithScript) answered the first.
	// Attempts without a key (reads, unkeyed writes) draw every time.
	//
	// The server remembers a 128-bit hash of each route and key, not the
	// key, and at most 65536 of them, whatever the length of the keys:
	// past that, it forgets those seen least recently, keeping at least
	// the last 32768. A key forgotten draws again, as a first attempt:
	// a retry of it may then get a fault, never a first attempt lose
	// its draw (but for a collision of two hashes, too unlikely to
	// happen in any test).
	FirstAttemptsOnly bool
}

// validate panics on probabilities out of range, naming the field.
func (f *Faults) validate() {
	// The names of the fields of f.probabilities, in its order.
	names := [...]string{"ServerError", "RateLimit", "DropBefore", "DropAfter", "Slow", "Malformed", "HTML", "Huge", "ServerErrorAfter", "CutBody"}
	sum := 0.0
	for i, p := range f.probabilities() {
		if !(p >= 0 && p <= 1) {
			panic(fmt.Sprintf("resilienttest: WithFaults: %s %v is not a probability in [0, 1]", names[i], p))
		}
		sum += p
	}
	if sum > 1+1e-9 {
		panic(fmt.Sprintf("resilienttest: WithFaults: probabilities sum to %v, more than 1", sum))
	}
	if f.SlowDelay < 0 {
		panic("resilienttest: WithFaults: negative SlowDelay")
	}
}

func (f *Faults) probabilities() [10]float64 {
	return [10]float64{f.ServerError, f.RateLimit, f.DropBefore, f.DropAfter, f.Slow, f.Malformed, f.HTML, f.Huge, f.ServerErrorAfter, f.CutBody}
}

// faultState draws faults. The Server's mutex guards it.
type faultState struct {
	cfg  Faults
	rng  *rand.Rand
	seen seenKeys // the attempts drawn, with FirstAttemptsOnly
}

func newFaultState(f Faults) *faultState {
	seed := uint64(f.Seed)
	return &faultState{cfg: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// firstAttempt reports whether an attempt on route with key may draw a
// fault: with FirstAttemptsOnly and a key, only the key's first attempt on
// the route may, and this marks it seen.
func (f *faultState) firstAttempt(route, key string) bool {
	if !f.cfg.FirstAttemptsOnly || key == "" {
		return true
	}
	return f.seen.add(route, key)
}

// maxSeenKeys bounds the keys FirstAttemptsOnly remembers (see Faults).
const maxSeenKeys = 1 << 16

// seenKeys is the set of the route and key pairs FirstAttemptsOnly has
// seen, bounded: it keeps a 128-bit hash of each pair, not the pair, in
// two generations of at most maxSeenKeys/2 each; when the newer is full,
// the older is forgotten and the newer becomes the older. A pair seen
// again moves to the newer, so the pairs forgotten are those seen least
// recently, and a pair is remembered while fewer than maxSeenKeys/2 other
// pairs are seen after it.
type seenKeys struct {
	cur, old map[[16]byte]struct{}
}

// add marks route and key seen and reports whether they were not.
func (s *seenKeys) add(route, key string) bool {
	h := sha256.New()
	io.WriteString(h, route)
	h.Write([]byte{0})
	io.WriteString(h, key)
	var k [16]byte
	copy(k[:], h.Sum(nil))
	if _, ok := s.cur[k]; ok {
		return false
	}
	_, ok := s.old[k]
	if len(s.cur) >= maxSeenKeys/2 {
		s.old, s.cur = s.cur, nil
	}
	if s.cur == nil {
		s.cur = make(map[[16]byte]struct{})
	}
	s.cur[k] = struct{}{}
	return !ok
}

// draw picks the fault, if any, of one attempt on route with key.
func (f *faultState) draw(d Dialect, route, key string) Step {
	if !f.firstAttempt(route, key) {
		return Step{}
	}
	u := f.rng.Float64()
	acc := 0.0
	for i, p := range f.cfg.probabilities() {
		acc += p
		if p == 0 || u >= acc {
			continue
		}
		switch i {
		case 0:
			status := d.serverErrorStatus()
			if d == Postato {
				status = [...]int{500, 502, 503, 504}[f.rng.IntN(4)]
			}
			return Step{kind: stepRespond, status: status}
		case 1:
			return RateLimited(f.cfg.RetryAfter)
		case 2:
			return DropBefore()
		case 3:
			return DropAfter()
		case 4:
			delay := f.cfg.SlowDelay
			if delay == 0 {
				delay = time.Second
			}
			return Slow(delay)
		case 5:
			return Malformed(d.serverErrorStatus())
		case 6:
			return HTML(http.StatusBadGateway)
		case 7:
			return Huge(d.serverErrorStatus(), f.cfg.HugeSize)
		case 8:
			return FailAfterStoring()
		case 9:
			return CutBody()
		}
	}
	return Step{}
}

// serverErrorStatus is the status of the dialect's usual server error.
func (d Dialect) serverErrorStatus() int {
	if d == Altyaa {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// htmlPage returns a proxy's error page for status.
func htmlPage(status int) []byte {
	t := strconv.Itoa(status) + " " + http.StatusText(status)
	return []byte("<html>\r\n<head><title>" + t + "</title></head>\r\n<body>\r\n<center><h1>" + t +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
}

// malformed returns the first half of envelope.
func malformed(envelope []byte) []byte { return envelope[:len(envelope)/2] }

// writeHuge writes status and an error envelope of exactly size bytes to w
// (or the bare envelope when size is smaller), its message padded with 'x';
// to a HEAD, the status and the Content-Length alone, as finish does.
// render renders the envelope around a message.
func writeHuge(w http.ResponseWriter, r *http.Request, status, size int, msg string, render func(msg string) []byte) {
	const marker = "\u2603resilienttest-padding\u2603"
	full := render(msg + " " + marker)
	i := bytes.Index(full, []byte(marker))
	pad := size - (len(full) - len(marker))
	if i < 0 || pad < 0 {
		body := render(msg)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(full[:i]); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte{'x'}, min(pad, 32<<10))
	for pad > 0 {
		n := min(pad, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		pad -= n
	}
	w.Write(full[i+len(marker):])
}
