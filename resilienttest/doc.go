// Package resilienttest provides a fault-injecting HTTP server of the three
// vendor APIs the resilient package was designed from, for tests of HTTP
// clients, in the style of net/http/httptest.
//
// A Server speaks one Dialect (Aidelly, Altyaa or Postato): their success
// and error envelopes, error codes and request ids, on the same five routes
// (see Routes). On demand it injects, per route, a scripted sequence of
// answers (WithScript: 503, 503, then 201), or a random mix of faults drawn
// from a seed (WithFaults): 5xx envelopes with the catalogs' codes, 429
// with Retry-After, connections dropped before or after the request is
// processed, success bodies cut halfway (CutBody), slow answers, malformed
// and HTML error bodies, huge error bodies. It emulates a quota, fixed or
// rolling, per credential, with the rate-limit headers of every common
// format (WithQuota), on a clock that can run faster than real time, and
// dedupes writes by idempotency key. Its counters (Stats) tell a test what
// the server saw: attempts per route, connections, stored writes,
// would-be duplicates, replays, 429s sent.
//
// NewServer listens on a loopback port, like httptest.NewServer.
// NewPipeServer serves in-memory connections instead, for tests that run
// in a testing/synctest bubble: there, slow answers, quota windows and a
// client's waits all run in fake time. WithTLS makes either speak HTTPS
// and HTTP/2, with a certificate its Transport trusts.
//
// WithHandler puts the same faults, scripts, latency and quota in front of
// an http.Handler of the caller's own, in place of the three APIs: a
// client of any API can be tested against a bad day of it; Wrap(h, faults)
// is the short form. WithExchanges tells a test of every request the
// server read: when it arrived, its header, and how it was answered (its
// status, or 0 for a dropped connection).
//
// The package uses the standard library only.
//
// # Answers
//
// Each attempt is handled in this order:
//
//  1. It is counted (Stats.Requests, and Stats.Attempts of its route).
//  2. Its step is chosen: the route's next scripted step while the script
//     lasts, else a random fault if WithFaults is set, else a normal answer.
//     A write the API will process (see 5) is then read, and holds its
//     idempotency key in flight (see Idempotency).
//  3. It waits WithLatency, plus the delay of a Slow step.
//  4. DropBefore closes the connection there. An error step (Respond with a
//     status of 300 or more, RateLimited, HTML, Malformed, Huge) is
//     answered there, in front of the API: nothing is stored and the quota
//     is not counted.
//  5. Otherwise the API processes it: the quota is counted (a 429 past
//     it), a write goes through the idempotency store, and the route
//     answers. DropAfter then closes the connection instead of answering;
//     CutBody closes it halfway through the body of a success; Respond
//     with a 2xx status replaces the status of a successful answer.
//
// Success bodies: Aidelly {"success":true,"data":…,"request_id":"<uuid>"},
// Altyaa {"data":…}, Postato the bare resource. Errors: see Dialect and
// Dialect.ErrorCode. Altyaa and Postato send the request id in
// X-Request-Id. Unknown paths get a 404 and known paths with another
// method a 405 (its Allow header lists the path's methods, HEAD with GET),
// both with the dialect's envelope. A HEAD is served as the GET of its
// path, as net/http's ServeMux serves it: it counts as an attempt of the
// GET route, takes that route's scripted step, and gets the GET's status
// and headers, Content-Length included, without the body.
//
// # Idempotency
//
// The server dedupes writes by their idempotency key, per route: Aidelly
// on both write routes (RouteCreatePost and RouteUploadURL), as its docs
// say, Postato on RouteCreatePost only (its docs honor Idempotency-Key on
// POST /posts alone: an upload URL is processed and stored anew whatever
// its key, as without one), and Altyaa on both write routes, though its
// docs say nothing of keys: a test that stands for an Altyaa that does
// not dedupe, the safer assumption, passes WithIgnoreIdempotencyKeys(true),
// as the demo does. The key
// is the Idempotency-Key header; Altyaa, whose docs name no key header,
// also takes X-Idempotency-Key, which Aidelly and Postato ignore (an
// Aidelly write with only X-Idempotency-Key is refused as keyless).
// Exactly:
//
//   - A write with a key the route has not stored is processed; its
//     answer (status, Content-Type, Location, body) is stored under the key
//     with a SHA-256 hash of the request body; its status is the one sent,
//     that of a Respond step with a 2xx status included. Stats.StoredWrites
//     counts it.
//   - A write whose key another attempt holds in flight (read, and not
//     yet answered: during its latency, a Slow step, or its processing),
//     and is not stored yet, is refused with a 409 and the dialect's conflict code, as the IETF
//     Idempotency-Key draft says: Aidelly PUBLIC_API_IDEMPOTENCY_CONFLICT,
//     Altyaa conflict, Postato CONFLICT, with a message saying the key is
//     still being processed. Nothing is stored or replayed;
//     Stats.InFlightConflicts counts it. A key is held only by an attempt
//     the API will process: not by one dropped or answered in front of it
//     (DropBefore, error steps), nor by one whose body is past the limit
//     (answered 413), and no longer once the client has gone away from a
//     Slow step, which then ends.
//   - A write with a stored key and the same body is not processed again:
//     the stored answer is replayed byte for byte, with a new
//     X-Request-Id where the dialect sends one (Aidelly's request_id is
//     the one of the stored body), and the header Idempotent-Replayed:
//     true, but for Postato, which documents that a repeated key returns
//     the first response and names no such header.
//     Stats.Replays counts it.
//   - A write with a stored key and another body is refused with the
//     dialect's conflict: Aidelly 409 PUBLIC_API_IDEMPOTENCY_CONFLICT,
//     Altyaa 409 conflict, Postato 422 IDEMPOTENCY_CONFLICT (the status
//     the IETF Idempotency-Key draft gives a key reused with another
//     payload). Stats.Conflicts counts it.
//   - A write without a key is refused with a 400 when the server requires
//     keys (WithRequireIdempotencyKey; on by default for Aidelly only,
//     and off WithIgnoreIdempotencyKeys):
//     Aidelly PUBLIC_API_IDEMPOTENCY_REQUIRED, Altyaa
//     idempotency_key_required, Postato IDEMPOTENCY_KEY_REQUIRED.
//     Stats.KeyRequired counts it. Otherwise it is processed and stored
//     every time.
//   - Only writes processed successfully are stored: an invalid body (400)
//     or a 429 stores nothing, and a later attempt with the same key is
//     processed.
//
// Stats.Duplicates counts the would-be duplicates, the writes a social
// network would publish twice: every stored write whose route and body
// equal those of a write stored before, under another key or without one.
// A replay is not a duplicate. Stats.DuplicatesByRoute tells them apart by
// route: those of RouteCreatePost are the posts created twice. A test that
// sends two equal writes on
// purpose must make their bodies differ, for example by an index in the
// payload.
//
// WithIgnoreIdempotencyKeys turns all of this off, as most APIs do: every
// write is processed and stored anew, whatever its key.
//
// The store keeps every key and body hash for the life of the server
// (Reset does not clear it): its memory grows with the writes.
package resilienttest
