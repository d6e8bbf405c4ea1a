package resilienttest

import (
	"fmt"
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
// idempotency key. It panics on an unknown route.
func WithScript(route string, steps ...Step) Option {
	checkRoute("WithScript", route)
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
// is out of [0, 1] or if they sum to more than 1.
func WithFaults(f Faults) Option {
	f.validate()
	return func(c *config) { c.faults = &f }
}

// WithQuota makes the server emulate a rate limit (see Quota). It panics
// if q.Limit is not positive or another field is negative.
func WithQuota(q Quota) Option {
	q.validate()
	return func(c *config) { c.quota = &q }
}

// WithRequireIdempotencyKey sets whether writes without an idempotency key
// are refused with the dialect's 400. The default is true for Aidelly,
// whose writes require a key, and false for Altyaa and Postato.
func WithRequireIdempotencyKey(require bool) Option {
	return func(c *config) { c.requireKey = &require }
}

// WithIgnoreIdempotencyKeys makes the server ignore idempotency keys, as
// most APIs do: every write is processed and stored as a new object, a
// repeated key is neither replayed nor refused as a conflict, and no
// answer carries Idempotent-Replayed. A write stored twice still counts in
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

func checkRoute(fn, route string) {
	if !isRoute(route) {
		panic(fmt.Sprintf("resilienttest: %s: unknown route %q", fn, route))
	}
}
