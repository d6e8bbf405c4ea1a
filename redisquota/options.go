package redisquota

import (
	"fmt"
	"time"

	"github.com/resilienthttp/resilient"
)

// Defaults of the options.
const (
	DefaultPrefix        = "resilient:quota"
	DefaultLeaseTime     = 200 * time.Millisecond
	DefaultFallbackAfter = 100 * time.Millisecond
	DefaultHeartbeat     = time.Second
	DefaultTimeout       = 500 * time.Millisecond
	DefaultBudgetSync    = 100 * time.Millisecond
)

// Pacing of the shared bucket, as the Transport's own: share of the
// announced quota, and the bucket's tolerance as a share of the limit
// (at least one token, of the limit Redis holds: see luaBurst), small
// enough that a burst at the start of a server's window stays within the
// margin the share leaves.
const (
	paceShare = 0.95
	burstFrac = 0.02
)

// closedShare is the share of the announced quota that the fleet's bucket
// never grants (neither its pace nor its tolerance), which the members of
// a closed Store split (see part.fallbackTake): a closed member's requests
// reach no bucket, and the open members take the whole of it.
const closedShare = 1 - paceShare - burstFrac

// Bounds.
const (
	maxPartitions = 4096                       // partitions a Store holds; idle ones are dropped past it
	maxLease      = 1000                       // tokens in one lease
	maxPause      = resilient.MaxBelievedReset // a pause from Redis further ahead than this is not believed: no member writes one
	maxWindow     = resilient.MaxBelievedReset // a quota's window from Redis longer than this is not believed: no member writes one
	maxHeard      = resilient.MaxBelievedReset // a quota no member heard announced for this long paces no more: the Transport forgets it
	maxMemberTTL  = time.Minute                // a member counted further ahead than this (or than the counting member's own ttl, if longer) is not believed
	stateTTL      = 24 * time.Hour             // a partition's state in Redis outlives its last use by this
	totalTTL      = time.Hour                  // a Store's running-total field (give-back, retry budget) outlives its last use by this
	idleExit      = 2 * time.Second            // a partition's refiller stops after this long without demand
	budgetRefill  = 10 * time.Minute           // a retry budget's view regains a retry for each this long the member did not use it, as the Transport's own (resilient.RetryBudget)
	maxBackoff    = time.Second                // the longest wait between attempts while Redis fails
	minBackoff    = 20 * time.Millisecond
)

// An Option configures a Store. Options panic on invalid values.
type Option func(*config)

type config struct {
	prefix        string
	leaseTime     time.Duration
	fallbackAfter time.Duration
	heartbeat     time.Duration
	timeout       time.Duration
	budgetSync    time.Duration
	member        string
}

func defaultConfig() config {
	return config{
		prefix:        DefaultPrefix,
		leaseTime:     DefaultLeaseTime,
		fallbackAfter: DefaultFallbackAfter,
		heartbeat:     DefaultHeartbeat,
		timeout:       DefaultTimeout,
		budgetSync:    DefaultBudgetSync,
	}
}

// durationFloor is the least duration the options take: below it, a
// value is a units mistake (1, meant as a second, is 1ns: a heartbeat
// that calls Redis back to back and lives 0µs, so that the fleet never
// counts the member).
const durationFloor = time.Millisecond

func mustBePositive(opt string, d time.Duration) {
	if d <= 0 {
		panic(fmt.Sprintf("redisquota: %s: %v is not positive", opt, d))
	}
	if d < durationFloor {
		panic(fmt.Sprintf("redisquota: %s: %v is below the floor of %v (a time.Duration counts nanoseconds: 5 is 5ns, 5*time.Second five seconds)", opt, d, durationFloor))
	}
}

// WithPrefix sets the prefix of the Store's Redis keys and of its pub/sub
// channel (default "resilient:quota"). Stores share a fleet's state when
// they use the same prefix on the same Redis. It panics if prefix is empty
// or contains a brace, which would break Redis Cluster's hash tags.
func WithPrefix(prefix string) Option {
	if prefix == "" {
		panic("redisquota: WithPrefix: empty prefix")
	}
	for _, c := range prefix {
		if c == '{' || c == '}' {
			panic(fmt.Sprintf("redisquota: WithPrefix: %q contains a brace", prefix))
		}
	}
	return func(c *config) { c.prefix = prefix }
}

// maxLeaseTime is the longest lease time WithLeaseTime takes: a lease
// holds the member's share of the quota for its time, whether the member
// sends or not, and a member that stops loses twice it to the fleet,
// though the fleet counts it at most a minute after it last told it was
// alive (maxMemberTTL); and a lease's horizon, four times its time, stays
// well within the longest pause the members believe (maxPause), past
// which the lease script believes no horizon.
const maxLeaseTime = time.Minute

// WithLeaseTime sets how much of the member's share of the quota one lease
// holds, as a time (default 200ms): a lease is ceil(rate/members · d)
// tokens, at least one. Longer leases cost fewer Redis round trips per
// request; shorter ones keep shares fairer when demand shifts. It panics if
// d is not positive, below 1ms or above a minute (maxLeaseTime): a units
// mistake, or a careless value, which would hold the member's share of the
// quota for hours.
func WithLeaseTime(d time.Duration) Option {
	mustBePositive("WithLeaseTime", d)
	if d > maxLeaseTime {
		panic(fmt.Sprintf("redisquota: WithLeaseTime: %v is above the ceiling of %v (a lease holds the member's share of the quota for that long)", d, maxLeaseTime))
	}
	return func(c *config) { c.leaseTime = d }
}

// WithFallbackAfter sets how long an attempt waits for Redis before the
// partition paces itself locally (default 100ms), at its share of the last
// known quota: the limit divided by the members seen. An attempt whose
// deadline comes first is paced locally at once (see
// resilient.QuotaDeadlineTaker). It panics if d is not positive or below
// 1ms (a units mistake).
func WithFallbackAfter(d time.Duration) Option {
	mustBePositive("WithFallbackAfter", d)
	return func(c *config) { c.fallbackAfter = d }
}

// WithHeartbeat sets how often the Store tells Redis it is alive (default
// 1s); a member silent for three of its own heartbeats, or for a minute if
// that is shorter, is no longer counted (a heartbeat of a minute or more
// leaves a member that leases nothing uncounted for part of each one). It
// panics if d is not positive or below 1ms (a units mistake).
func WithHeartbeat(d time.Duration) Option {
	mustBePositive("WithHeartbeat", d)
	return func(c *config) { c.heartbeat = d }
}

// WithTimeout bounds each Redis call of the Store (default 500ms); a call
// that times out is retried with backoff. go-redis honors it only for a
// client made with ContextTimeoutEnabled set (redis.Options); otherwise a
// stalled call lasts the client's ReadTimeout or WriteTimeout (3s by
// default), which delays the Store's retries and Close, though never a
// request: a partition falls back to local pacing after
// WithFallbackAfter whatever the call. It panics if d is not positive or
// below 1ms (a units mistake).
func WithTimeout(d time.Duration) Option {
	mustBePositive("WithTimeout", d)
	return func(c *config) { c.timeout = d }
}

// WithBudgetSync sets how often the Store syncs the retry budgets its
// members spend or refill with Redis (default 100ms); a member whose
// spending passes half its allowance syncs at once, at most ten times as
// often. Shorter periods share the fleet's deposits sooner, for more Redis
// calls: one per period while a budget is in use below its burst. It
// panics if d is not positive or below 1ms (a units mistake).
func WithBudgetSync(d time.Duration) Option {
	mustBePositive("WithBudgetSync", d)
	return func(c *config) { c.budgetSync = d }
}

// WithMemberID sets the Store's member id (default: 16 random hex
// digits). Two Stores with one id count as one member; what each has
// given back and spent is still its own, so that a process restarted with
// the id of its predecessor takes nothing over from it. It panics if id is
// empty.
func WithMemberID(id string) Option {
	if id == "" {
		panic("redisquota: WithMemberID: empty id")
	}
	return func(c *config) { c.member = id }
}
