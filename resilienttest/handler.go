package resilienttest

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// maxBody bounds the request bodies the server reads; a longer one is
// answered 413.
const maxBody = 1 << 20

// ServeHTTP answers r as the Server does on its own listener, so that a
// Server can also be called in process, or mounted on another server. Its
// counters, scripts, faults, quota and store are the same. A nil r.Body is
// read as empty, and an empty r.Method as GET, as net/http reads a
// client's request.
//
// A step that drops the connection (DropBefore, DropAfter, CutBody after
// half the body, and every request once the Server is closed) takes it
// over through w (http.Hijacker) and closes it. When w cannot be taken
// over (over HTTP/2, or in process: an httptest.ResponseRecorder),
// ServeHTTP panics with http.ErrAbortHandler instead, the value net/http's
// servers recover to abort an answer (HTTP/2 resets the stream); the
// server has done the rest by then (the drop counted, the exchange told, a
// write stored). A caller in process recovers it, and takes it for the
// connection lost.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Method == "" {
		// A request made by hand for a call in process: net/http's server
		// never hands over one without a body or a method. The empty
		// Method is GET, as for a client's request.
		r = r.Clone(r.Context())
		if r.Body == nil {
			r.Body = http.NoBody
		}
		if r.Method == "" {
			r.Method = http.MethodGet
		}
	}
	s.serveHTTP(w, r)
}

// serveHTTP handles one attempt: it counts it, picks its step (script,
// fault or normal), waits, then drops the connection, answers in front of
// the API, or processes the request.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// The request is in progress (Close waits for it) until it is told to
	// WithExchanges: Done is deferred first, to run last.
	s.mu.Lock()
	open := !s.closed
	if open {
		s.handlers.Add(1)
	}
	s.mu.Unlock()
	if open {
		defer s.handlers.Done()
	}
	if s.exchanges != nil {
		var told func()
		w, told = s.exchange(w, r)
		defer told()
	}
	if !open {
		drop(w)
		return
	}
	if s.handler != nil {
		s.serveWrapped(w, r)
		return
	}
	route, id, found, allow := match(r.Method, r.URL.Path)
	// sent is the key as the dialect reads it; key is the one its store
	// dedupes by: none on a route the API does not dedupe, and none
	// WithIgnoreIdempotencyKeys.
	sent := s.dialect.requestKey(r.Header)
	key := sent
	if !s.dialect.dedupes(route) || s.ignoreKeys {
		key = ""
	}

	s.mu.Lock()
	s.stats.countAttempt(route, true) // one of the five Routes
	s.api.requests++
	var (
		step  Step
		owner bool // this attempt holds its key in flight
	)
	if route != "" {
		step = s.nextStepLocked(route, idempotencyKey(r.Header))
		if isWriteRoute(route) && key != "" && step.kind != stepDropBefore && !step.answersAtOnce() {
			owner = s.store.claim(route, key)
		}
	}
	s.mu.Unlock()

	// A write the API will process is read first, as a server reads a
	// request before its slow work: net/http then watches the connection,
	// and the request's context ends if the client goes away during the
	// wait.
	var raw []byte
	if isWriteRoute(route) && step.kind != stepDropBefore && !step.answersAtOnce() {
		var err error
		if raw, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1)); err != nil {
			s.releaseKey(owner, route, key)
			drop(w) // the client is gone
			return
		}
		if len(raw) > maxBody {
			// The API refuses a body past the limit (413) and stores
			// nothing, so it holds no key: net/http does not see the
			// client go away while the rest of the body is unread, and
			// the key would stay held through a whole Slow step.
			s.releaseKey(owner, route, key)
			owner = false
		}
	}

	delay := s.latency
	if step.kind == stepSlow {
		delay += step.delay
	}
	if !s.wait(r.Context(), delay) {
		// The client left or the server is closing: close the connection
		// rather than let net/http answer an empty 200.
		s.releaseKey(owner, route, key)
		drop(w)
		return
	}

	switch {
	case step.kind == stepDropBefore:
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
		drop(w)
	case route == "":
		status := http.StatusNotFound
		if found {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", allow)
		}
		body := s.errorEnvelope(w.Header(), "", status, "", nil)
		s.finish(w, r, status, body)
	case step.answersAtOnce():
		s.inject(w, r, route, step)
	default:
		failAfter := step.kind == stepServerAfter
		h := w.Header()
		if failAfter {
			// The answer may be replaced by a 500: it is made apart, so
			// that a success's headers (Location) stay out of the 500.
			h = make(http.Header)
		}
		respond := 0 // the 2xx status of a Respond step, stored with a write
		if step.kind == stepRespond {
			respond = step.status
		}
		status, body, replayed := s.process(h, r, route, id, key, sent != "", raw, owner, step.kind == stepDropAfter, failAfter, respond)
		switch {
		case step.kind == stepDropAfter:
			drop(w)
		case failAfter && failsAfter(status, replayed):
			// Processed (a write stored), then the response path fails.
			s.inject(w, r, route, Step{kind: stepRespond, status: http.StatusInternalServerError})
		case step.kind == stepCutBody && cuts(r, status, len(body) > 0):
			cutAnswer(w, status, body)
		default:
			if failAfter {
				maps.Copy(w.Header(), h)
			}
			if step.kind == stepRespond && status < 300 {
				status = step.status
			}
			s.finish(w, r, status, body)
		}
	}
}

// failsAfter reports whether a FailAfterStoring step replaces the answer
// of status by a 500: a success the API processed, not a replay of a
// stored write (nor an error), which is sent as it is.
func failsAfter(status int, replayed bool) bool {
	return status < 300 && !replayed
}

// cuts reports whether a CutBody step cuts the answer status to r, with a
// body or not: a success with a body to send.
func cuts(r *http.Request, status int, hasBody bool) bool {
	return status < 300 && hasBody && r.Method != http.MethodHead &&
		status != http.StatusNoContent && status != http.StatusNotModified
}

// cutAnswer sends status with the Content-Length of body and the first half
// of body, then drops the connection.
func cutAnswer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body[:len(body)/2])
	http.NewResponseController(w).Flush()
	drop(w)
}

// cutPast sends status with the headers already set on w (the handler's
// own Content-Length, if any) and body, the start of a longer answer,
// then drops the connection.
func cutPast(w http.ResponseWriter, status int, body []byte) {
	w.WriteHeader(status)
	w.Write(body)
	http.NewResponseController(w).Flush()
	drop(w)
}

// finish sends status and body.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// errorEnvelope sets the headers of an error answer on h and returns its
// body: the dialect's envelope with code ("" for the dialect's code of
// status on route) and its message, a new request id and details (raw
// JSON, nil for none).
func (s *Server) errorEnvelope(h http.Header, route string, status int, code string, details json.RawMessage) []byte {
	return s.errorEnvelopeMsg(h, route, status, code, "", details)
}

// errorEnvelopeMsg is errorEnvelope with a message of its own ("" for the
// code's).
func (s *Server) errorEnvelopeMsg(h http.Header, route string, status int, code, msg string, details json.RawMessage) []byte {
	if code == "" {
		code = s.dialect.ErrorCode(route, status)
	}
	if msg == "" {
		msg = s.dialect.message(code, status)
	}
	id := newRequestID()
	s.dialect.setRequestID(h, id)
	h.Set("Content-Type", "application/json")
	return s.dialect.errorBody(code, msg, details, id)
}

// successEnvelope sets the headers of a success on h and returns its body.
func (s *Server) successEnvelope(h http.Header, data json.RawMessage) []byte {
	id := newRequestID()
	s.dialect.setRequestID(h, id)
	h.Set("Content-Type", "application/json")
	return s.dialect.successBody(data, id)
}

// quotaHeadersLocked sets the quota's headers for r without counting it.
func (s *Server) quotaHeadersLocked(h http.Header, r *http.Request, now time.Time) {
	if s.quota == nil {
		return
	}
	k := s.quota.key(r.Method, r.Header)
	rem, reset := s.quota.peek(k, now)
	s.quota.setHeaders(h, k.class, rem, reset, now)
}

// inject answers a step that answers in front of the API.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, route string, step Step) {
	h := w.Header()
	s.mu.Lock()
	s.stats.countStatus(step.status)
	s.quotaHeadersLocked(h, r, time.Now())
	s.mu.Unlock()

	switch step.kind {
	case stepRespond:
		if step.status < 400 {
			s.finish(w, r, step.status, nil)
			return
		}
		s.finish(w, r, step.status, s.errorEnvelope(h, route, step.status, step.code, nil))
	case stepRateLimited:
		if step.retryAfter >= 0 {
			h.Set("Retry-After", strconv.FormatInt(ceilSeconds(step.retryAfter), 10))
		}
		s.finish(w, r, step.status, s.errorEnvelope(h, route, step.status, "", nil))
	case stepHTML:
		h.Set("Content-Type", "text/html; charset=utf-8")
		s.finish(w, r, step.status, htmlPage(step.status))
	case stepMalformed:
		s.finish(w, r, step.status, malformed(s.errorEnvelope(h, route, step.status, "", nil)))
	case stepHuge:
		code := s.dialect.ErrorCode(route, step.status)
		id := newRequestID()
		s.dialect.setRequestID(h, id)
		h.Set("Content-Type", "application/json")
		writeHuge(w, r, step.status, step.size, s.dialect.message(code, step.status), func(msg string) []byte {
			return s.dialect.errorBody(code, msg, nil, id)
		})
	}
}

// process is the API itself: it counts the request against the quota and
// answers route through the idempotency store; key is the key it dedupes
// by ("" for none), keyed says whether the request carried the dialect's
// key header, and raw is the body of a write
// (up to maxBody+1 bytes). It sets the answer's headers on h and returns
// its status and body. owner says that the attempt holds its key in
// flight: process releases it once the answer is decided, before it is
// sent. With dropped, the answer will not be sent: it is counted as a
// drop. With failAfter, a success other than a replay (see failsAfter)
// will be replaced by a server error, which counts it. respond is the
// 2xx status a Respond step answers with (0 for the route's own): a write
// it stores is stored with it, so that a replay answers what was sent.
func (s *Server) process(h http.Header, r *http.Request, route, id, key string, keyed bool, raw []byte, owner, dropped, failAfter bool, respond int) (status int, body []byte, replayed bool) {
	var (
		obj     map[string]json.RawMessage
		objOK   bool
		tooLong bool
	)
	if isWriteRoute(route) {
		tooLong = len(raw) > maxBody
		if len(raw) == 0 && route == RouteUploadURL {
			objOK = true
		} else if !tooLong {
			objOK = json.Unmarshal(raw, &obj) == nil && obj != nil
		}
	}
	sum := sha256.Sum256(raw)
	now := time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if owner {
		defer s.store.release(route, key)
	}
	defer func() {
		switch {
		case dropped:
			s.stats.Dropped++
		case failAfter && failsAfter(status, replayed):
		default:
			s.stats.countStatus(status)
		}
	}()

	var (
		rem   int
		reset time.Time
	)
	if s.quota != nil {
		k := s.quota.key(r.Method, r.Header)
		var allowed bool
		rem, reset, allowed = s.quota.take(k, now)
		s.quota.setHeaders(h, k.class, rem, reset, now)
		if !allowed {
			h.Set("Retry-After", retryAfter(reset, now))
			return http.StatusTooManyRequests, s.errorEnvelope(h, route, http.StatusTooManyRequests, "", nil), false
		}
	}

	switch route {
	case RouteCreatePost, RouteUploadURL:
		return s.writeLocked(h, route, key, keyed, owner, sum, obj, objOK, tooLong, respond)
	case RouteListPosts:
		limit, valid := listLimit(r)
		if !valid {
			return http.StatusBadRequest, s.errorEnvelope(h, route, http.StatusBadRequest, "", nil), false
		}
		return http.StatusOK, s.successEnvelope(h, s.api.list(s.dialect, limit)), false
	case RouteGetPost:
		data, found := s.api.get(id)
		if !found {
			return http.StatusNotFound, s.errorEnvelope(h, route, http.StatusNotFound, "", nil), false
		}
		return http.StatusOK, s.successEnvelope(h, data), false
	default: // RouteUsage
		data := s.api.usage(s.quota, rem, reset)
		return http.StatusOK, s.successEnvelope(h, data), false
	}
}

// writeLocked answers a write through the idempotency store, deduped by
// key ("" for none); keyed says whether it carried the dialect's key
// header, and owner that the attempt holds its key in flight; a write it
// stores is stored with status respond when not 0 (see process).
func (s *Server) writeLocked(h http.Header, route, key string, keyed, owner bool, sum [sha256.Size]byte, obj map[string]json.RawMessage, objOK, tooLong bool, respond int) (status int, body []byte, replayed bool) {
	if !keyed && s.requireKey {
		s.stats.KeyRequired++
		return http.StatusBadRequest, s.errorEnvelope(h, route, http.StatusBadRequest, s.dialect.keyRequired(), s.dialect.keyRequiredDetails()), false
	}
	sw := s.store.lookup(route, key)
	if sw == nil && key != "" && !owner && s.store.busy(route, key) {
		// Another attempt with the key is still being processed, and
		// none was stored: neither a replay (there is nothing to replay
		// yet) nor a second write. (A key already stored is replayed,
		// or conflicts, whatever attempt holds it now: the IETF draft
		// answers 409 only while the original request is processed.)
		s.stats.InFlightConflicts++
		status := http.StatusConflict
		return status, s.errorEnvelopeMsg(h, route, status, "", msgInFlight, nil), false
	}
	if sw != nil {
		if sw.sum != sum {
			s.stats.Conflicts++
			status, code := s.dialect.conflict()
			return status, s.errorEnvelope(h, route, status, code, nil), false
		}
		s.stats.Replays++
		s.dialect.setRequestID(h, newRequestID())
		h.Set("Content-Type", sw.contentType)
		if sw.location != "" {
			h.Set("Location", sw.location)
		}
		if s.dialect != Postato {
			// Postato returns the first response, and documents no
			// header saying it is a replay.
			h.Set("Idempotent-Replayed", "true")
		}
		return sw.status, sw.body, true
	}
	if tooLong {
		status := http.StatusRequestEntityTooLarge
		return status, s.errorEnvelope(h, route, status, "", nil), false
	}
	if !objOK {
		status := http.StatusBadRequest
		return status, s.errorEnvelope(h, route, status, "", s.dialect.invalidBodyDetails()), false
	}

	sw = &storedWrite{sum: sum, contentType: "application/json"}
	if route == RouteCreatePost {
		p := s.api.createPost(s.dialect, obj)
		sw.status, sw.location = http.StatusCreated, "/v1/posts/"+p.id
		sw.body = s.successEnvelope(h, p.data)
		h.Set("Location", sw.location)
	} else {
		sw.status = http.StatusOK
		sw.body = s.successEnvelope(h, s.api.uploadURL(s.dialect))
	}
	if respond != 0 {
		sw.status = respond // the status sent, which a replay answers
	}
	s.stats.StoredWrites++
	if s.store.save(route, key, sw) {
		s.stats.countDuplicate(route)
	}
	return sw.status, sw.body, false
}
