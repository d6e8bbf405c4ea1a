// Package redisquota shares rate-limit quotas and retry budgets through
// Redis, so that a fleet of processes calling one API with one key spends
// the quota, and the retries an outage allows, together: a
// resilient.QuotaStore (and resilient.BudgetStore) for
// resilient.WithQuotaStore.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	store := redisquota.New(rdb)
//	defer store.Close()
//	client := resilient.NewClient(resilient.WithQuotaStore(store))
//
// Each Store is one member of the fleet, with a random member id: several
// Stores in one process are several members. Stores with the same prefix
// (WithPrefix) on the same Redis form one fleet. The client is a
// *redis.Client or a *redis.ClusterClient; New panics on a *redis.Ring,
// whose shards relay no pub/sub to one another, and on a nil client.
//
// # Leases
//
// Each partition of the rate limiter (a host, class and credential, or
// the name resilient.WithRateLimitKey gives) has a GCRA bucket in Redis,
// paced at 95% of the quota the servers announced, with a tolerance of
// 2% of it (of the quota Redis holds, whatever a member believes). A
// member does not ask Redis for each request: its refiller (one goroutine
// per Store and partition, while the partition is in use) takes a lease,
// a run of tokens, in one Lua script call, and the member's requests take
// them without I/O or lock (an atomic compare-and-swap). A lease is the
// member's share of the quota over WithLeaseTime (200ms by default, a
// minute at most: the quota divided by the partition's active members,
// which the same script counts; a longer lease time, hours by a units
// mistake, panics: TestLeaseTimeAboveCeilingPanics), and holds its tokens' schedule: token j may be sent at
// base + j·interval, the times GCRA gives it, so that the fleet as a whole
// never sends faster than the bucket allows, whatever the leases. A
// request reserves the next token and waits for its time (one whose
// deadline comes first takes none, and the next request takes it:
// TestLeaseTokenPastDeadlineNotTaken); a member asks
// for its next lease when half of the current one is taken, and holds at
// most two. Leases start at one token and double up to the full size, so
// that a member that joins does not take a large share ahead of the
// others; a token nobody took expires soon after its time, and what a
// member leaves unused goes back to the bucket with its next call. What a
// member gives back is credited once: a call whose reply is lost (a
// timeout, after the script ran) is sent again with the member's next
// call, with the total the member had given back, and the script, which
// keeps the total it credited to each Store's partition (a partition the
// Store dropped to make room and made again keeps a total of its own),
// credits only the difference (as the retry budgets do, below); a call
// that reaches Redis after a later one (its call timed out, or Close
// canceled it, and Redis ran it late) credits nothing, the calls being
// numbered (TestLeaseStaleGivebackIgnored). The tokens of a lease call
// whose reply the member did not get (it timed out after the script ran)
// go back to the bucket with the member's next call, once
// (TestLeaseLostReplyGivesTokensBack), and a lease call that Redis runs
// after the member's next one grants nothing (TestLeaseLateCallGrantsNothing),
// nor counts a closed member among the active members again
// (TestCloseLeaveNotUndoneByLateLease), the state's first read
// included (TestCloseLeaveNotUndoneByLateStateRead); one the client sent twice
// (go-redis resends a command whose connection broke before its reply
// came) gives its first run's tokens back (TestLeaseResentGivesTokensBack):
// each call that asks for tokens is numbered, and the script keeps what
// the last one granted. A charge
// (the tokens a member sent while pacing locally) is never more than one
// window of the quota per call. At steady state a request costs about
// 1/lease-size Redis round trips (0.04 in the fleet demo). A partition
// whose responses announce no quota takes no lease: the member reads its
// state once, when it first uses it, and the fleet's channel tells it the
// rest (a pause, a quota, a reset), so that a quiet API's requests cost no
// Redis call, however sparse.
//
// # What is learned, and the pause
//
// A quota a member learns from the rate-limit headers is written once
// (the script compares, and a member writes only what differs from what
// it knows): the first write seeds the bucket from the remaining quota the
// response announced, so that the first window is not overspent: the
// bucket starts full (its tolerance at once, then the quota's pace) and
// grants no more than what remains, less a margin, until the reset (a new limit, and a bucket Redis lost, are seeded
// anew, from the latest response the member learned from). A bucket so
// held until a reset is seeded anew when a response says that a seed's
// worth, and at least half of the quota, remains in a window that resets
// later than the bucket's next token by a margin (max(2s, 1% of the
// window)): the server counts a new
// window, as a Transport without a store believes, and the members whose
// leases found the bucket dry are told to ask again
// (TestNewWindowReseedsAHeldBucket). A quota
// slower than the bucket's pace of the one known (a member writes it, or
// the fleet's channel tells it) drops the leases each member holds: their
// tokens, granted at the old pace, would go on top of the new bucket's
// (TestQuotaFallDropsLeases). For the
// same limit, the fleet's window only grows while a member still sees it:
// a member that has just started has seen only part of a window (the
// Transport's estimate of a window the server does not announce is the
// longest time to a reset seen), and its short estimate would make the
// whole fleet pace too fast. A member reports a window not longer than the
// one held at most once per window held (one Redis call): one of at least
// half of it reconfirms it, and a shorter one replaces it only when it is
// stale, no member having reported it for two of its windows (or for
// resilient.MaxBelievedReset, if that is shorter), and the
// response reported with says that at least half of the quota is left (or
// does not say), as the Transport forgets an estimate that no response
// comes close to while its quota is not in use; so one reset believed far
// ahead does not slow the fleet for good, and the members that started
// while a rolling window was in use (whose resets, those of its oldest
// request, are close at hand) do not make it pace too fast. A 429
// (or a 503 with a Retry-After no longer than the Transport's
// WithMaxRetryAfter) pauses the partition: the member that got it
// stops at once; the pause is written to the partition's state, where the
// lease script refuses every lease until it ends, and published on the
// fleet's channel, so that every member stops at once, drops the leases it
// holds (their tokens would all be due together when the pause ends) and
// wakes its waiting requests, which then wait for the pause. Times come
// from Redis's own clock (TIME); a member converts them with the time it
// received them, which errs late, never early, and keeps its own times on
// the monotonic clock, as the Transport does: a step of the wall clock
// (NTP, a resumed virtual machine) neither brings back a pause that ended
// nor ends one early, nor moves a lease's tokens. A pause further ahead than
// resilient.MaxBelievedReset, which no member writes (the Transport
// believes no longer one from a server), is not believed, by the members
// nor by the lease script, which deletes it: a corrupt or hostile value in
// Redis does not lock the fleet out. Nor is a quota whose window is longer
// than MaxBelievedReset, or shorter than 1µs (no member writes either):
// the members ignore it, and the lease script deletes it with its bucket,
// for a member to write its own again. And a
// quota that no member's responses have announced for MaxBelievedReset
// paces the fleet no more, as a Transport forgets it (a response
// announces it to the Store with its window or a reset: one with a count
// alone confirms no window, and the Transport does not call Learn with
// it, see resilient.QuotaPartition.Learn): each lease tells
// Redis how long ago its member last heard the quota announced, Redis
// keeps the latest (a state that says not when, or a time ahead, counts
// from the first lease that reads it), and the lease script deletes a
// quota no member has heard for that long, with its bucket; a member that has not heard it
// either forgets it (one that has, writes it again), and one that cannot
// reach Redis stops pacing by it once no member is known to have heard it
// for that long. The next response that announces it so, to any member,
// paces the fleet again.
//
// # Reset
//
// resilient.Transport.ResetHost clears the fleet's state of the host's
// partitions too: a Store's partitions implement resilient.QuotaResetter.
// The member that resets forgets the pause and the quota at once, and its
// refiller runs a script that clears them in Redis, with the bucket of the
// quota, and tells the fleet on its channel: every member forgets them as
// soon as the message arrives, drops the leases it holds (they came from
// the cleared bucket) and wakes its requests waiting for a token; until a
// response
// announces the quota again, the partition's requests are not paced by the
// Store, as without one. The reset clears what Redis held when ResetHost
// was called: a pause another member set after it (a 429 it received
// since), or a quota another member wrote after it, stays, and the
// message tells the members so; what the resetting member itself was
// writing when it reset is cleared. Until its reset comes back through the
// channel (1s at most), the resetting member ignores the messages
// published before it, which the reset has cleared: a pause being written
// when ResetHost was called does not pause it again. The reset clears the
// pause and the quota the Store shares, not what the other members'
// Transports learned themselves (a pause after a 429 they received). A
// request of another member already waiting for the fleet's pause goes as
// soon as the reset reaches its member: the partitions implement
// resilient.QuotaWatcher, whose channel wakes the Transport's wait. If
// Redis does not answer, the member's own reset holds, and the
// refiller writes it, with backoff, when Redis answers.
//
// A Store's resets run in Redis, and reach the fleet, in the order they
// were made: a reset waits for the Store's earlier ones, unless the write
// of one failed (those go when Redis answers them, in any order).
// ResetHost resets a host's global limit (Discord's) last, so that a
// member whose wait for the global pause the reset ends finds the host's
// other partitions reset too, a route it never called included: it does
// not refuse a call for a pause whose reset has not reached it yet. A
// Store's pauses are written in the order they were made too, and a
// global 429 pauses the host's global limit last, so that a member that
// sees the global pause finds the host's other partitions paused in Redis
// already, and a ResetHost it calls then clears them with it, not only
// the global limit: a pause written after the reset ran would stay.
//
// # The fleet's channel, and what a member missed
//
// Redis's pub/sub delivers a message at most once, to the connections
// subscribed when it is published. go-redis reconnects a Store's pub/sub
// connection on its own and subscribes again (at once after a connection
// error or a Redis restart; a connection that dies silently, when a
// health-check ping fails or the operating system reports it), and what
// the fleet published in between is lost. Each time Redis confirms the
// subscription again, the Store catches up before it applies the next
// message: it reads the state of every partition it holds, with the lease
// script asking for no tokens (the call a partition first reads it with),
// in one pipelined call per 256 partitions, and asks for a sync of every
// retry budget (one call for all); it tries again, with backoff (20ms
// doubling to 1s), until the reads succeed. Stats.Resyncs counts them. The
// member then knows what the messages it missed would have told it: a
// pause ("p"), if later than the one it knows; the quota ("q"); the latest
// reset ("r"), which the state records (when it ran, by which Store, its
// number), applied as its message would have been, with the pause and the
// quota the state holds since (an earlier reset it missed is superseded
// by it); and each budget's balance ("b"). A state that Redis lost (a
// restart without persistence) records no reset: the member keeps the
// pause it knows, and writes its quota again.
//
// So a member learns what it missed as soon as go-redis has subscribed
// again, plus one round trip. Until then it acts on what it knew: a
// member that missed a pause sends until its next lease (which Redis
// refuses, and which tells it the pause), or, on a partition whose quota
// it does not know (it takes no lease), until it catches up or gets a 429
// itself; one that missed a reset stays paused until it catches up, or the
// pause ends (resilient.MaxBelievedReset at most); one that missed a quota
// paces by the quota it knew (or, knowing none, does not pace) until its
// next lease, its own responses, or the catch-up; one that missed a
// budget's first spending keeps a full view, whose deposits refill nothing,
// until it syncs (when it retries itself) or catches up.
//
// # Joining and leaving
//
// A member that meets a partition (a process started while the fleet is
// paused after a 429, or one that had never called the host) knows
// nothing of it until it has read its state: its first requests wait for
// that read, one call of the lease script, bounded as every wait for
// Redis is (WithFallbackAfter, below; not at all for a request whose
// deadline comes first), and then honor the fleet's pause and quota
// (TestJoinDuringPauseWaitsForState). Once read, a partition that knows
// no quota costs its requests no wait and no Redis call.
//
// A member that stops without Close (a crash, a killed pod) is counted,
// by the heartbeats and by the partitions' active members, for three of
// its heartbeats after its last one (a minute at most: the members believe
// no one counted further ahead); the others' leases then grow to take
// its share. The tokens it held unused (two leases at most, its share of
// twice WithLeaseTime) are lost to the fleet. A process restarted with
// the member id of its predecessor (WithMemberID) is the same member to
// the counts, and has running totals of its own (see Retry budgets).
//
// Close sends what the member changed in its retry budgets since their
// last sync (withdrawals, deposits, give-backs) in one last sync, writes
// what its partitions had left to write (a reset, a pause, a quota learned,
// tokens to give back and the debt of the local limiter, of the tokens it
// took before Close: TestCloseChargesNoClosedDebt), once, in the
// order their refillers would have, in one pipelined call per kind of
// write however many partitions there are
// (TestCloseWritesPartitionsInRounds; on a Redis Cluster, whose
// pipelines do not keep the order across nodes, the resets and the
// pauses one call each), so that
// the other members see a pause the member learned just before Close
// (TestClosePartitionWrites), and
// takes the member out of the heartbeats' count and out of the active
// members of its partitions at once, so that the others' next leases take
// its share (TestCloseLeavesPartitions), all within
// WithTimeout of its start, of which the last tenth is the leave's own
// (TestCloseLeavesWhenSyncSpendsBound); a last sync or write that fails is
// Close's error, and its changes are the member's alone
// (TestCloseSyncsBudgets, TestCloseRedisDown). A Transport
// that still uses a closed Store (calls draining at shutdown, or a Store
// closed too early) hears the fleet no more, and its requests are charged
// to the fleet's bucket no more, while the other members, which no longer
// count it, may take the whole bucket: pacing at its share of the quota,
// the closed member made the fleet send its share over the quota (1.4
// times it, for two members). A closed Store's partitions therefore send
// the tokens they hold (their leases, which the bucket charged), then pace
// locally at their share of the 3% of the quota that the bucket never
// grants (its pace is 95% and its tolerance 2%), one token at a time, so
// that the fleet stays within the quota however many of its members were
// closed (TestClosedStoreKeepsFleetWithinQuota); a request whose token
// would come later than the Transport's WithMaxRetryAfter is refused
// (resilient.ErrRateLimited), as for a spent quota. A closed partition
// that knows no quota is not paced, as without a Store, and keeps the
// pause it knows. Close the Store once the Transports are done with it.
//
// # When Redis is slow or down
//
// A request never fails because Redis failed. A partition whose Redis call
// failed, or has not answered for WithFallbackAfter (100ms), paces itself
// with a local limiter at its share of the last known quota: the limit
// divided by the members last seen (the partition's active members, or
// the members whose heartbeat Redis holds, whichever is more). Its
// refiller tries again with backoff (20ms doubling to 1s), and sharing
// resumes with the first lease Redis grants; a Redis that lost the state
// (restarted) is given the quota again. A member that never reached Redis
// counts itself alone. As with a lease, a request whose deadline comes
// before the local limiter's next token takes none, and the next request
// takes it (TestFallbackTokenPastDeadlineNotTaken).
//
// No request makes a Redis call: what a request waits for Redis is that
// bound, WithFallbackAfter from the start of its refiller's call (the
// calls it makes in a row, a quota or a pause to write and the lease,
// count as one), however long the call takes, whatever the client's
// PoolTimeout or ReadTimeout,
// and nothing once a call failed, until one succeeds (the partition paces
// locally meanwhile). A request whose deadline (its
// context's, or its call's WithMaxElapsed budget) comes before that bound
// does not wait for Redis: the partitions implement
// resilient.QuotaDeadlineTaker, and such a request is paced locally at
// once, so that Redis's trouble never has the Transport refuse a call that
// a plain client would have sent (a request that waits for the fleet's
// next tokens, the quota spent, waits for them as before). The same holds
// for a go-redis client the Store shares with the application whose pool
// has no free connection (the application's slow or blocking commands,
// BLPOP, a small PoolSize): a call waiting for a connection is a call in
// progress (TestSaturatedPoolFailsNoCall: 60 calls with the one connection
// held by a BLPOP, each sent once, none slower than about 100ms). Each of
// the Store's calls, its wait for a connection included, is bounded by
// WithTimeout (go-redis bounds that wait by the call's context, with or
// without ContextTimeoutEnabled), and a call that fails is tried again
// with backoff: the Store makes at most one call at a time per partition
// in use, one for its heartbeat, one for the budgets' syncer and one for a
// resync, each holding a connection for one script's run, and its pub/sub
// connection is go-redis's own, outside the pool (8 partitions in use for
// 3s of a saturated pool: 42 calls, 4 goroutines more than before it,
// TestSaturatedPoolBackgroundBounded).
//
// # Retry budgets
//
// A Transport given a Store shares each host's retry budget (see
// resilient.RetryBudget) with the fleet: the answers of every member
// refill it and the retries of every member spend it, so that an outage
// costs the fleet about one Burst of retries, not one per member. A
// member never asks Redis for a retry: it answers Deposit and Withdraw
// from its view of the fleet's balance (the balance Redis last returned,
// plus its own deposits and withdrawals since) with atomic operations, and
// a deposit into a full view, the steady state of a healthy host, writes
// nothing. One goroutine per Store syncs the views every WithBudgetSync
// (100ms), all the budgets that need it in one pipelined call of a Lua
// script, which adds each member's net change to the balance, kept within
// [0, Burst], and returns it (a budget Redis does not hold starts full). A
// change sent again after a timeout is applied once: the script keeps the
// net change it applied from each Store's budget in all, as it does for
// the give-back, and applies only the difference; a sync that reaches
// Redis after a later one (its call timed out, and Redis ran it late)
// changes nothing, the syncs being numbered
// (TestBudgetStaleSyncIgnored). The totals are each
// Store's own (its instance id, random, not its member id): a process
// restarted with the member id of its predecessor (WithMemberID) starts
// totals of its own, and its first sync changes the balance by its own
// change only. A member's withdrawals that a sync found the balance short
// of (kept at zero) are owed by the member's field, in Redis, and its next
// give-backs (a retry or a hedged copy never sent: Refund) pay them before
// they credit the balance, so that a withdrawal and its give-back leave
// the balance as they found it (TestBudgetClampedWithdrawGivenBack,
// TestBudgetFleetConservation), a sync's reply lost or not, the member's
// view full or not; a balance full again, or gone, owes nothing
// (TestBudgetOwedForgottenWhenRefilled). A budget is synced
// while the member changes it, and while its view is below the Burst (for
// 2s after the member last changed it),
// to learn what the others deposit; a healthy fleet, whose views are full,
// makes no call once it loaded the budget. When the balance falls from
// full, the script tells the fleet on its channel, and the members whose
// views are full sync at once, so that their answers refill it. A
// member's view regains a retry for each ten minutes the member neither
// withdrew from it nor deposited into it, nor found at a sync that other
// members spent from it, as a Transport's own budget does, and its next
// sync deposits it into the balance: the first failures after a quiet
// spell are retried, however an outage left the balance.
//
// Before Redis confirms, a member may spend only its allowance: its share
// of the balance it last saw (the balance divided by the members the
// heartbeats count), at least one retry; past half of it, it syncs at
// once (at most every tenth of WithBudgetSync), and past all of it, its
// retries are refused until the sync returns. A fleet in a full outage
// thus stops retrying once a sync returns the balance spent: while Redis
// answers within WithFallbackAfter, its retries stay under 2×Burst +
// members however the syncs interleave (each member's allowance is at most
// its share of the Burst, or one retry), and measure
// Burst plus about one per member (11 to 14 for 4 members and the default
// Burst of 10, TestFleetBudgetOutage). A member that has not yet loaded a
// budget (its first sync, made as the budget is first used, has not
// returned) sees it full, and before its first heartbeat answers it
// counts no other member: its allowance is then the whole Burst, so that
// each process started during an outage, whose first sync returns after
// its first retries, may add up to one Burst to the fleet's retries. Its own deposits pay for a
// member's retries without waiting for Redis; in a large fleet, whose
// share of the Burst is one retry, a member retries one failure at a time
// per sync, and a larger Burst gives it more.
//
// If a sync fails, or has not answered for WithFallbackAfter, each member
// spends its view alone, as the local budget of a Transport without a
// store (refilled by its own answers), until a sync succeeds; its changes
// meanwhile reach Redis with it. While Redis fails, the bound on an
// outage's retries is thus each member's, not the fleet's: up to members ×
// Burst in all (each view holds at most Burst, refilled by its member's
// own answers), as many as Transports without a store make (2 members,
// 20 retries with the default Burst: TestFleetBudgetRedisDown); the
// members' withdrawals then reach the balance, kept at zero, when Redis
// answers again. A budget whose key in Redis holds another
// type (written by another hand) is the member's alone, and the others stay
// the fleet's. A closed Store's budgets stay local: Close sends their
// changes in one last sync, and a change made after it reads a budget
// (a withdrawal racing Close, or a call draining after it) is the
// member's alone. The Transport's
// HostState reads a host's budget as the member's view of it (Tokens).
//
// # Partitions and budgets dropped to make room
//
// A Store's tables hold at most 4096 partitions and 4096 retry budgets;
// past that, it drops idle ones to make room (partitions whose refiller has
// stopped; budgets not in use, then those with no change to send). A
// Transport keeps the partitions and budgets it was given for as long as
// it uses them (a host's global limit, asked for once per host and
// credential and never used for tokens, is idle 2s after it loads): one
// the Store dropped that something still holds stays the fleet's. The
// fleet's messages (pauses, quotas, resets), the resyncs and the budgets'
// syncs reach it as before, and the Store's next Partition or Budget of
// its name returns it, not a second one, and holds it again. Of a dropped
// partition or budget the Store keeps only a weak pointer (package weak),
// deleted once the garbage collector collects it, nothing holding it any
// more: the Store's memory is bounded by its tables and what is still
// held. A name asked for again after that gets a new partition or budget,
// with running totals of its own in Redis. Take, Deposit and Withdraw
// look at none of this: they take no lock and allocate nothing more.
//
// # Keys
//
// A partition's state is the hash prefix:{id}, its active members the
// sorted set prefix:{id}:members (id: the first 16 bytes of the SHA-256 of
// the partition's name, in hex; the braces keep both in one Redis Cluster
// slot), and the Stores that gave tokens back the sorted set
// prefix:{id}:gb (by last give-back or lease: a Store's field in the
// state, g:<member>:<instance>:<n>, is deleted an hour after it last gave
// back or leased);
// a retry budget named name (the host's breaker key) is the hash
// prefix:{id}:budget, id from name in the same way, and the Stores that
// synced it the sorted set prefix:{id}:budget:fields (by last sync: a
// Store's field in the budget, b:<member>:<instance>:<n>, is deleted an
// hour after its last sync). In the fields, instance is the Store's random
// id and n numbers the partitions and budgets it made. The members'
// heartbeats are the sorted set prefix:members, which expires two minutes
// after the last heartbeat (twice the longest a member is counted), and
// the channel is prefix:events. The other keys expire a day after their
// last use. A partition's
// keys, and the heartbeats', holding another type than the Store writes (a
// corrupt or hostile hand) are replaced by the next script that uses them,
// so that the partition is shared again; a retry budget's is left alone,
// and the budget is the member's (see Retry budgets).
//
// go-redis/redis_rate's GCRA answers one request at a time ("may this one
// go now?"); a lease needs the schedule of a run of tokens, and the pause
// folded into the same script, so the scripts here are the package's own
// (scripts.go), in the same GCRA arithmetic.
package redisquota
