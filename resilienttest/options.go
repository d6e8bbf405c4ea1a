package resilienttest

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// An Option configures a Server. Options are applied in order by NewServer
// and NewPipeServer; a later option overrides an earlier one of the same
// kind (for WithScript: of the same route). Options panic on invalid
// values.
type Option func(*config)

// config is a Server's configuration, filled by options.
type config struct {
	scripts    map[string][]Step
	faults     *Faults
	quota      *Quota
	requireKey *bool // nil: the dialect's default
	ignoreKeys bool
	latency    time.Duration
	handler    http.Handler // WithHandler
	tls        bool         // WithTLS
	exchanges  func(Exchange)
}

// WithScript scripts the first attempts of route (one of Routes): the
// route's first attempt gets steps[0], its second steps[1], and so on;
// once the script is played, the route behaves normally (with random faults
// if WithFaults is set). For example, 503, 503, then a success:
//
//	resilienttest.WithScript(resilienttest.RouteCreatePost,
//		resilienttest.Respond(503), resilienttest.Respond(503), resilienttest.Respond(201))
//
// Attempts are numbered in the order the server reads them, whatever their
// idempotency key.
//
// On a server WithHandler, route is a request's method and path, such as
// "POST /v1/charges" (see WithHandler). WithScript panics if route is not
// a method, a space and a path starting with "/"; NewServer and
// NewPipeServer panic if it is not one of Routes on a server of the
// dialect's own API.
func WithScript(route string, steps ...Step) Option {
	checkRouteForm("WithScript", route)
	steps = append([]Step(nil), steps...)
	return func(c *config) {
		if c.scripts == nil {
			c.scripts = make(map[string][]Step)
		}
		c.scripts[route] = steps
	}
}

// WithFaults injects a random mix of faults, drawn for every attempt from
// a generator seeded with f.Seed (see Faults). It panics if a probability
// is out of [0, 1], if they sum to more than 1, or if SlowDelay is
// negative.
func WithFaults(f Faults) Option {
	f.validate()
	return func(c *config) { c.faults = &f }
}

// WithQuota makes the server emulate a rate limit (see Quota). It panics
// if q.Limit is not positive, another field is negative, TimeScale is not
// a finite number, PerClass and Shared are both set, or ResetFormat or
// Kind is none of its constants.
func WithQuota(q Quota) Option {
	q.validate()
	return func(c *config) { c.quota = &q }
}

// WithRequireIdempotencyKey sets whether writes without an idempotency key
// are refused with the dialect's 400 (a key under a header the dialect
// does not read is none: see the package documentation). The default is
// true for Aidelly, whose writes require a key, and false for Altyaa and
// Postato, and for every dialect WithIgnoreIdempotencyKeys(true).
func WithRequireIdempotencyKey(require bool) Option {
	return func(c *config) { c.requireKey = &require }
}

// WithIgnoreIdempotencyKeys makes the server ignore idempotency keys, as
// most APIs do: every write is processed and stored as a new object, a
// repeated key is neither replayed nor refused as a conflict, and no
// answer carries Idempotent-Replayed; a write without a key is processed
// too, in every dialect, unless WithRequireIdempotencyKey(true) says
// otherwise. A write stored twice still counts in
// Stats.Duplicates (by its body), so a client that resends writes to such a
// server shows up there. Use it with Altyaa, whose envelopes say nothing of
// keys, to stand for an API that does not deduplicate.
func WithIgnoreIdempotencyKeys(ignore bool) Option {
	return func(c *config) { c.ignoreKeys = ignore }
}

// WithLatency delays every answer by d, before anything else is done with
// the request; a Slow step or fault adds its own delay to it. It panics if
// d is negative.
func WithLatency(d time.Duration) Option {
	if d < 0 {
		panic("resilienttest: WithLatency: negative duration")
	}
	return func(c *config) { c.latency = d }
}

// WithHandler makes h the server's API, in place of the dialect's routes:
// the faults, scripts, latency and quota of the other options are put in
// front of a handler of the caller's own (a fake of the API a client
// calls, or the real service's mux), and Stats counts what the server saw.
// Each attempt is handled in this order:
//
//  1. It is counted (Stats.Requests, and Stats.Attempts of its route: its
//     method and URL path, such as "POST /v1/charges", the query left out;
//     a HEAD is a route of its own, "HEAD /v1/charges", which a script of
//     the GET does not apply to; past 1000 routes, under OtherRoutes: see
//     Stats).
//  2. Its step is chosen: the route's next scripted step (WithScript, with
//     such a route), else a random fault (WithFaults), else a normal
//     answer. Faults.FirstAttemptsOnly reads the request's Idempotency-Key
//     (or X-Idempotency-Key) header.
//  3. It waits WithLatency, plus the delay of a Slow step. Before such a
//     wait, the body of a request h will be called for is read into
//     memory, when its length is declared (Content-Length), up to 1 MiB
//     (h reads it from there, and the rest of a longer one from the
//     connection), so that the wait ends, and h is not called, when the
//     client of a body that fits goes away. A body of unknown length (a
//     stream, which the client may end only once answered) is left
//     unread for h.
//  4. DropBefore closes the connection there; an error step (Respond with
//     a status of 300 or more, RateLimited, HTML, Malformed, Huge) is
//     answered there, and h is not called.
//  5. Otherwise the quota, if any, is counted (a 429 past it, h not
//     called) and its headers are set; then h answers. DropAfter calls h
//     and closes the connection instead of sending its answer; CutBody
//     calls h and sends its answer below 300 with its Content-Length but
//     only half its body, then closes the connection;
//     FailAfterStoring (or Faults.ServerErrorAfter) calls h and replaces
//     an answer below 300 by a 500; Respond with a 2xx status replaces the
//     status of an answer below 300.
//
// The server's dialect then shapes only what the server answers itself:
// the error envelopes and request ids of injected answers and of 429s
// past the quota, and the quota's default reset format. Pick the dialect
// nearest the API's own; Altyaa's {"error":{"code":…,"message":…}} is
// the shape of many JSON APIs. The idempotency store is h's business: a
// server WithHandler stores nothing, and WithRequireIdempotencyKey and
// WithIgnoreIdempotencyKeys do not apply; Stats.StoredWrites,
// Duplicates, Replays, Conflicts, InFlightConflicts and KeyRequired stay
// zero. Stats.ServerErrors and RateLimited count h's own 5xx and 429
// answers as well as the injected ones.
//
// The Server is itself an http.Handler: to serve it from an
// httptest.Server or a mux of the test's own, pass it there (its own
// listener then goes unused).
//
// A handler's http.ResponseController reaches the server's own
// ResponseWriter: its deadlines, full duplex and Flush. An answer a step
// records to send it later, changed or not at all (Respond,
// FailAfterStoring, CutBody, DropAfter) is flushed by nothing and cannot
// be taken over (Hijack fails with http.ErrNotSupported).
//
// Such a step keeps at most the first MiB of the answer's body, so that a
// handler that streams without end grows no memory. Past it, an answer
// the step sends whole (any under Respond, with its status replaced as
// above; one of 300 or more under FailAfterStoring and CutBody; one
// without a body to cut under CutBody) is sent at once, and the rest of
// it as the handler writes it, flushed by the handler's Flush, with the
// trailers the handler sets once its body is written; an answer
// the step does not send (any under DropAfter, a success under
// FailAfterStoring) or cuts (a success under CutBody) is not kept past
// its first MiB: the handler's later writes fail with an error, and the
// step acts when the handler returns. CutBody then sends that first MiB
// with the handler's own Content-Length, if it set one (else none), and
// closes the connection.
//
// It panics if h is nil, or holds a nil pointer or func (a variable of
// the handler's type left unset).
func WithHandler(h http.Handler) Option {
	if holdsNil(h) {
		panic("resilienttest: WithHandler: nil handler")
	}
	return func(c *config) { c.handler = h }
}

// WithTLS makes the server speak HTTPS, HTTP/2 included, with a
// self-signed certificate made for it: its URL starts with https://, its
// Transport and Client trust the certificate (and only it) and negotiate
// HTTP/2 by ALPN, falling back to HTTP/1.1 for a client that does not
// offer it. Certificate returns the certificate, for a client of the
// test's own. It works with NewServer and NewPipeServer alike.
//
// Over HTTP/2, DropBefore, DropAfter and CutBody reset the request's stream
// (RST_STREAM) instead of closing the connection, which the other
// requests on it share.
func WithTLS() Option {
	return func(c *config) { c.tls = true }
}

// holdsNil reports whether h is nil or holds a nil pointer or func, whose
// ServeHTTP would fail every request.
func holdsNil(h http.Handler) bool {
	if h == nil {
		return true
	}
	switch v := reflect.ValueOf(h); v.Kind() {
	case reflect.Pointer, reflect.Func:
		return v.IsNil()
	}
	return false
}

func checkRoute(fn, route string) {
	if !isRoute(route) {
		panic(fmt.Sprintf("resilienttest: %s: unknown route %q", fn, route))
	}
}

// checkRouteForm panics unless route is a method, a space and a path.
func checkRouteForm(fn, route string) {
	method, path, ok := strings.Cut(route, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") || strings.ContainsAny(method, "/ \t") || strings.ContainsAny(path, " \t?") {
		panic(fmt.Sprintf("resilienttest: %s: route %q is not a method and a path, such as \"POST /v1/posts\"", fn, route))
	}
}
