// Package resilienttest provides a fault-injecting HTTP server that speaks
// the dialects of three social-publishing APIs (Aidelly, Altyaa, Postato),
// in the style of net/http/httptest: their error envelopes, request ids,
// rate-limit headers and idempotency rules, with scripted and random
// faults, for testing a client's resilience without the real APIs.
//
// A Server serves the same routes in every dialect:
//
//	POST /v1/posts              create a post (a write, deduplicated by Idempotency-Key)
//	GET  /v1/posts              list posts
//	GET  /v1/posts/{id}         fetch a post (404 in the dialect when unknown)
//	POST /v1/media/upload-url   get an upload URL (a write)
//	GET  /v1/usage              usage figures
//
// Faults come from a script per route (WithScript: e.g. 503, 503, then the
// normal answer) and from a seeded random mix (WithFaults). A quota
// (WithQuota) sends the rate-limit headers in any of the common formats and
// answers 429 with Retry-After past it, with a time scale so that a
// one-minute window can last one second. Writes go through an idempotency
// store that replays the first response of a repeated key, answers a key
// reused with another payload with the dialect's conflict error, and counts
// the writes it stored and the duplicates (the same payload stored twice).
// Stats returns every counter.
//
// NewServer listens on loopback; NewPipeServer serves over in-memory
// net.Pipe connections, so that a test inside a testing/synctest bubble
// runs its slow responses, quota windows and Retry-After waits in fake
// time.
package resilienttest
