package redisquota

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
)

// A Store is one member of a fleet that shares rate-limit quotas through
// Redis; give it to a Transport with resilient.WithQuotaStore. Every Store
// is a member of its own, whatever process it lives in: several Stores in
// one process count as several members. It implements
// resilient.QuotaStore, and resilient.BudgetStore: a Transport given it
// shares its hosts' retry budgets too.
//
// A Store starts a goroutine for its heartbeat, one that reads the fleet's
// pub/sub channel (with go-redis's own) and catches the member up with the
// fleet's state each time go-redis subscribes again, one refiller per
// partition while the partition is in use, and one that syncs the retry
// budgets once a Transport asks for one. Close stops them. A Store is safe
// for concurrent use.
type Store struct {
	rdb        redis.UniversalClient
	cfg        config
	member     string
	channel    string
	membersKey string
	instance   string    // the Store's own id, unlike member, which two Stores may share (WithMemberID)
	epoch      time.Time // an hour before New: the origin of the member's local times (see since)

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines started
	ps     *redis.PubSub
	// subscribed is closed once Redis confirmed the subscription to the
	// fleet's channel (or it failed: go-redis makes it again when it
	// reconnects, and the member then resyncs).
	subscribed chan struct{}
	// closeDone is closed once the first Close returned, which the
	// later ones wait for.
	closeDone chan struct{}

	mu     sync.Mutex
	closed bool
	parts  map[string]*part // by name
	byID   map[string]*part
	made   int64 // the partitions and budgets made, which numbers their running-total fields in Redis (totalField); guarded by mu
	// droppedParts and droppedBudgets are the partitions and budgets
	// dropped to make room, by id, until they are collected (held.go);
	// guarded by mu.
	droppedParts   map[string]dropped[part]
	droppedBudgets map[string]dropped[budget]

	members atomic.Int64 // members seen by the last heartbeat; 0 before the first
	st      counters
	resets  writeOrder // the order of the member's resets in Redis
	pauses  writeOrder // the order of the member's pauses in Redis

	// resetSeq numbers the Store's Resets, of all its partitions, so that
	// no two of a partition's name share a number: one made again (the
	// Store dropped it to make room, and it was collected) does not count
	// from one again, and the reset script does not take its Resets for
	// the forgotten one's, resent (see resetScript).
	resetSeq atomic.Int64

	// unheard holds the latest resets the fleet's channel told of
	// partitions the Store did not reach (the message is dropped: a lease
	// reads the reset from the state when one is used), the oldest
	// replaced; next is where the next one goes. Both guarded by mu. A
	// partition made later knows that their messages came (see
	// part.heardReset).
	unheard     [unheardMax]unheardReset
	unheardNext int

	// The retry budgets (budget.go).
	budgets         map[string]*budget // by name; guarded by mu
	budgetByID      map[string]*budget // by id; guarded by mu
	budgetsRunning  bool               // the syncer was started; guarded by mu
	budgetKick      chan struct{}      // wakes the syncer; capacity 1
	budgetDegraded  atomic.Bool        // the last sync failed, or the Store is closed
	budgetCallStart atomic.Int64       // local ns when the sync in progress started; 0 for none
}

// New returns a Store that shares quotas through rdb, a member of the
// fleet of the Stores with the same prefix (WithPrefix) on the same Redis.
// It subscribes to the fleet's channel and starts its heartbeat at once,
// in the background: New never waits for Redis, and a Store whose Redis
// does not answer paces locally until it does. The caller must call Close,
// and still owns rdb, which Close does not close.
//
// rdb is a *redis.Client (a Sentinel's failover client included) or a
// *redis.ClusterClient, whose pub/sub reaches every node. New panics if
// rdb is a *redis.Ring: its shards relay no pub/sub to one another, and
// the scripts publish the fleet's messages (pauses, quotas, resets) on the
// shard of each partition's keys, which a subscription, made on one shard,
// would not hear. New panics too if rdb is nil (a nil interface, or a
// nil *redis.Client or *redis.ClusterClient).
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	switch c := rdb.(type) {
	case nil:
		panic("redisquota: New: nil client")
	case *redis.Client:
		if c == nil {
			panic("redisquota: New: nil *redis.Client")
		}
	case *redis.ClusterClient:
		if c == nil {
			panic("redisquota: New: nil *redis.ClusterClient")
		}
	case *redis.Ring:
		panic("redisquota: New: a *redis.Ring is not supported: its shards relay no pub/sub to one another, and the fleet's messages, published on each partition's shard, would be lost; use a *redis.Client or a *redis.ClusterClient")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.member == "" {
		var b [8]byte
		rand.Read(b[:])
		cfg.member = hex.EncodeToString(b[:])
	}
	var inst [8]byte // a Store of its own, whatever its member id
	rand.Read(inst[:])
	s := &Store{
		rdb:            rdb,
		cfg:            cfg,
		member:         cfg.member,
		channel:        cfg.prefix + ":events",
		membersKey:     cfg.prefix + ":members",
		instance:       hex.EncodeToString(inst[:]),
		parts:          make(map[string]*part),
		byID:           make(map[string]*part),
		droppedParts:   make(map[string]dropped[part]),
		droppedBudgets: make(map[string]dropped[budget]),
		budgets:        make(map[string]*budget),
		budgetByID:     make(map[string]*budget),
		budgetKick:     make(chan struct{}, 1),
		subscribed:     make(chan struct{}),
		closeDone:      make(chan struct{}),
		epoch:          time.Now().Add(-time.Hour),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ps = rdb.Subscribe(s.ctx) // no channel: no I/O; listen subscribes
	s.wg.Add(2)
	go s.listen()
	go s.heartbeat()
	return s
}

// MemberID returns the Store's id in the fleet.
func (s *Store) MemberID() string { return s.member }

// Members returns the number of members the last heartbeat counted, this
// one included; 0 before Redis first answered.
func (s *Store) Members() int { return int(s.members.Load()) }

// Close stops the Store's goroutines and waits for them, sends what the
// member changed in its retry budgets since their last sync (withdrawals,
// deposits, give-backs) in one last sync (none when they hold no change,
// TestCloseNothingToSend), writes what each partition had left for its
// refiller to write (a reset, a pause, a quota learned or a window
// reported, tokens to give back, the debt of its local limiter, in one
// pipelined call per kind of write, whatever the number of partitions:
// see flushParts), tells Redis the member left (the heartbeats' count and
// each partition's active members: see leave), and closes its pub/sub
// connection. The last sync, the last writes and the leaving share one
// bound, WithTimeout from Close's start, whose last tenth is the leave's
// own (a sync in progress at Close, which Close waits for, spends it too;
// see WithTimeout for the clients that honor it): a Redis down or slow at
// Close costs Close no more, and a sync whose reply was lost is applied
// once, however many times it was sent.
// Call it once the Transports that use the Store are done. A withdrawal or a
// give-back that races Close reaches Redis if the last sync reads its
// budget after it, and is otherwise the member's alone, as every change
// made after Close: the closed Store's budgets answer from the member's
// view, and sync no more. Partitions held by Transports keep answering,
// from local state only: the member hears the fleet no more, and its
// requests are no longer charged to the fleet's bucket, which the other
// members may now take whole; so that the fleet never exceeds the quota, a
// closed partition that knows a quota sends the tokens it holds, then paces
// at its share of the 3% of the quota the bucket never grants (see the
// package documentation, Joining and leaving). Close returns the error of
// closing the pub/sub connection, that of the last sync and those of the
// partitions' last writes, joined, if any (the budgets' changes it did not
// send, and the writes it did not make, are then lost to the fleet); it may be
// called more than once, and a call after the first returns nil once the
// first is done (returning at once, a second Close let its caller close
// the client, which it owns, while the first was still sending the
// budgets' changes).
// While go-redis is making the pub/sub connection again (after Redis went
// away), Close waits for its handshake, which go-redis bounds by the
// client's dial and read timeouts only, not by WithTimeout.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	defer close(s.closeDone)
	end := time.Now().Add(s.cfg.timeout)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	// The last writes end before the leave's share of the bound: a Redis
	// slow to answer them leaves the leave its own.
	wctx, wcancel := context.WithDeadline(ctx, end.Add(-s.cfg.timeout/leaveShare))
	defer wcancel()
	s.cancel()
	err := s.ps.Close()
	s.wg.Wait()
	s.budgetDegraded.Store(true) // the budgets are the member's alone from now on
	serr := s.syncLast(wctx)
	parts := s.allParts()
	ferr := s.flushParts(wctx, parts)
	s.leave(ctx, parts)
	return errors.Join(err, serr, ferr)
}

// leaveShare is the share of Close's bound (WithTimeout) kept for the
// member's leave, one leaveShare-th: the last sync of the budgets and the
// partitions' last writes end before it, so that a Redis slow to answer
// them does not leave the member counted by the fleet for three more
// heartbeats.
const leaveShare = 10

// Partition returns the shared state of the partition named name. It
// implements resilient.QuotaStore: it returns at once, and loads the
// partition's state from Redis in the background. Every call for a name
// returns the same partition while something holds it, even after the
// Store dropped it to make room.
func (s *Store) Partition(name string) resilient.QuotaPartition {
	s.mu.Lock()
	if p := s.parts[name]; p != nil {
		s.mu.Unlock()
		return p
	}
	if len(s.parts) >= maxPartitions {
		s.dropIdleLocked()
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:16])
	if p := takeDropped(s.droppedParts, id); p != nil {
		// Still held, and still the fleet's: the Store holds it again.
		s.parts[name] = p
		s.byID[id] = p
		s.mu.Unlock()
		return p
	}
	s.made++
	p := newPart(s, name, id, s.totalField("g", s.made))
	s.parts[name] = p
	s.byID[id] = p
	s.mu.Unlock()
	p.wake() // load the fleet's state
	return p
}

// dropIdleLocked drops partitions whose refiller is not running, to make
// room, or any once the Store is closed (whose partitions stay marked as
// running one: see part.wake); those still held by a Transport keep
// hearing the fleet (see forgetPartLocked). s.mu is held.
func (s *Store) dropIdleLocked() {
	for _, p := range s.parts {
		if len(s.parts) < maxPartitions*3/4 {
			return
		}
		if s.closed || !p.running.Load() {
			s.forgetPartLocked(p)
		}
	}
}

// forgetPartLocked drops the partition p from the Store's table, keeping
// a weak pointer to it until it is collected (held.go): while a Transport
// holds it, the fleet's messages and the resyncs reach it, and the next
// Partition of its name returns it; once collected, that makes a new one,
// with a give-back field of its own in Redis. s.mu is held.
func (s *Store) forgetPartLocked(p *part) {
	delete(s.parts, p.name)
	delete(s.byID, p.id)
	keepDropped(s, s.droppedParts, p.id, p)
}

// unheardMax is the most resets of partitions the Store did not reach
// that it keeps (see Store.unheard).
const unheardMax = 16

// unheardReset is a reset of the partition whose id is id, run at at
// (Redis's µs), whose message came while the Store did not reach it.
type unheardReset struct {
	id string
	at int64
}

// heardResetLocked returns Redis's time (µs) of the latest reset of the
// partition whose id is id whose message came while the Store did not
// reach it (see Store.unheard), 0 for none. s.mu is held.
func (s *Store) heardResetLocked(id string) int64 {
	at := int64(0)
	for _, u := range s.unheard {
		if u.id == id {
			at = max(at, u.at)
		}
	}
	return at
}

// partLocked returns the partition whose id is id, held in the Store's
// table or dropped and still alive; nil for none. s.mu is held.
func (s *Store) partLocked(id string) *part {
	if p := s.byID[id]; p != nil {
		return p
	}
	return findDropped(s.droppedParts, id)
}

// markLoaded records that the partition p read the fleet's state from
// Redis, so that its next refillers need not (see part.run), unless the
// Store no longer reaches it: the fleet's messages and the resyncs would
// not reach it, and each of its refillers would read the state again.
func (s *Store) markLoaded(p *part) {
	s.mu.Lock()
	p.loaded.Store(s.partLocked(p.id) == p)
	s.mu.Unlock()
}

// totalField returns the running-total field in Redis of the Store's n-th
// partition or budget made (s.made): kind "g" for a partition's give-back
// (see leaseScript), "b" for a retry budget's net change (see
// budgetScript), then the member id, the Store's instance id and n. The
// field names the Store by its instance id, which no other Store has,
// whatever the member ids (WithMemberID), and the partition or budget by
// n, so that one dropped to make room and made again (or still held by a
// Transport after it was dropped) keeps a total of its own: a total of
// zero is never read against one that another object sent.
func (s *Store) totalField(kind string, n int64) string {
	return kind + ":" + s.member + ":" + s.instance + ":" + strconv.FormatInt(n, 10)
}

// since returns t in nanoseconds since s.epoch: a local time of the
// member (a pause's end, a lease's schedule, a call in progress, a Reset),
// which the Store keeps as such an integer, to load and store atomically.
// It subtracts on the monotonic clock when t carries a reading of it (a
// time.Now reading, as the Transport's are), as the Transport itself
// measures its waits, so that a step of the wall clock (NTP, a resumed
// virtual machine) moves none of the member's times: kept as Unix
// nanoseconds, a pause that had ended came back for as long as the clock
// stepped back, and a lease's tokens were as far away. The epoch lies an
// hour back, so that no time is 0, which the Store's fields read as none.
func (s *Store) since(t time.Time) int64 { return int64(t.Sub(s.epoch)) }

// now returns the current local time (see since), read on the monotonic
// clock alone.
func (s *Store) now() int64 { return int64(time.Since(s.epoch)) }

// local returns until, which a caller gave, as a local time (see since):
// its distance from now, read on the monotonic clock when until carries a
// reading of it (the Transport's pauses and resets, those a server gave
// as dates included), on the wall clock when it does not (a time a caller
// made from a date, read against the wall clock as it reads now, not as
// it read at New).
func (s *Store) local(until time.Time) int64 {
	now := time.Now()
	return s.since(now) + int64(until.Sub(now))
}

// at returns the local time ns (see since) as a time.Time made from a
// time.Now reading: its monotonic reading, which the Transport compares
// with its own times, and its wall-clock reading, which the Transport
// compares with a server's dates (times without a monotonic reading), both
// as the clocks read now; made from s.epoch, the wall-clock reading would
// be as the wall clock read at New, off by every step since.
func (s *Store) at(ns int64) time.Time {
	now := time.Now()
	return now.Add(time.Duration(ns - s.since(now)))
}

// microsBetween returns the time from from to to, Redis's times in µs
// (or, from 0, a length in µs), as a time.Duration, saturated at the
// longest durations either way. The values come from the fleet's messages
// and the state, where a corrupt or hostile hand may write any integer: a
// pause or a window centuries long overflowed the difference, or the
// product by time.Microsecond, and wrapped to any duration, one within
// the bounds the callers believe (maxPause, maxWindow) included.
func microsBetween(from, to int64) time.Duration {
	const most = math.MaxInt64 / int64(time.Microsecond)
	d := to - from
	switch {
	case (to^from)&(to^d) < 0: // the difference overflowed
		if to > from {
			return math.MaxInt64
		}
		return math.MinInt64
	case d > most:
		return math.MaxInt64
	case d < -most:
		return math.MinInt64
	}
	return time.Duration(d) * time.Microsecond
}

// start runs fn in a goroutine of the Store, unless it is closed.
func (s *Store) start(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// awaitSubscribed waits until Redis confirmed the Store's subscription to
// the fleet's channel (or the subscription failed, to be made again when
// go-redis reconnects, the member then resyncing), storing the local
// ns when the wait started in inProgress meanwhile, as for a Redis call in
// progress. It reports false when the Store is closed, or when idle (nil
// for none) reports true, which it asks after each idleExit in which
// nothing arrived on demand (nil for none): the subscription does not come
// for as long as Redis, having accepted the connection, does not answer.
func (s *Store) awaitSubscribed(inProgress *atomic.Int64, demand <-chan struct{}, idle func() bool) bool {
	select {
	case <-s.subscribed:
		return true
	default:
	}
	inProgress.Store(s.now())
	defer inProgress.Store(0)
	var expired <-chan time.Time // nil without idle: never
	var timer *time.Timer
	if idle != nil {
		timer = time.NewTimer(idleExit)
		defer timer.Stop()
		expired = timer.C
	} else {
		demand = nil // nothing to restart
	}
	for {
		select {
		case <-s.subscribed:
			return true
		case <-s.ctx.Done():
			return false
		case <-demand:
			timer.Reset(idleExit)
		case <-expired:
			if idle() {
				return false
			}
			timer.Reset(idleExit)
		}
	}
}

// call runs one Redis call of the Store with its timeout, counting it.
func (s *Store) call(fn func(ctx context.Context) error) error { return s.callIn(s.ctx, fn) }

// callIn is call under parent, which may end it sooner: the Store's
// context, canceled by Close, or Close's own bound (see syncLast).
func (s *Store) callIn(parent context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, s.cfg.timeout)
	defer cancel()
	s.st.calls.Add(1)
	err := fn(ctx)
	if err != nil {
		s.st.errors.Add(1)
	}
	return err
}

// memberTTL returns how long the fleet counts the member after its last
// heartbeat or lease: three of its heartbeats, at most maxMemberTTL, the
// furthest ahead the other members believe one (a member with a 30s
// heartbeat, counted 90s ahead, was dropped by each heartbeat and lease of
// a member with the default, and counted by none).
func (s *Store) memberTTL() time.Duration { return min(3*s.cfg.heartbeat, maxMemberTTL) }

// heartbeat tells Redis the member is alive, every WithHeartbeat, and
// counts the members.
func (s *Store) heartbeat() {
	defer s.wg.Done()
	ttl := s.memberTTL()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		var n int64
		err := s.call(func(ctx context.Context) (err error) {
			n, err = heartbeatScript.Run(ctx, s.rdb, []string{s.membersKey}, s.member, ttl.Microseconds(), maxMemberTTL.Microseconds()).Int64()
			return err
		})
		if err == nil && n > 0 {
			s.members.Store(n)
		}
		t.Reset(s.cfg.heartbeat)
	}
}

// listen applies the fleet's messages: "p <id> <until> <now>", a pause
// until until (Redis's µs) sent at now; "q <id> <limit> <window µs>", a
// quota learned; "r <id> <store> <seq> <pause> <now> <limit> <window µs>",
// the reset numbered seq of the Store whose instance id is store, which
// kept the pause until pause and the quota limit per window (0 for none);
// "b <id> <store>", a retry budget the Store
// whose instance id is store started spending (budget.go). It subscribes
// to the channel first: a subscription that fails (Redis down) is made
// again by go-redis when it reconnects. Each time go-redis subscribes
// again, the messages published meanwhile are lost: listen resyncs the
// member (see resync) before it applies the next message, and tries
// again, with backoff, until a resync succeeds.
func (s *Store) listen() {
	defer s.wg.Done()
	subscribed := false
	if err := s.ps.Subscribe(s.ctx, s.channel); err != nil {
		// The partitions load meanwhile; the resync catches them up once
		// go-redis subscribes.
		close(s.subscribed)
		subscribed = true
	}
	if s.ctx.Err() != nil {
		return // closed
	}
	msgs := s.ps.ChannelWithSubscriptions()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var backoff time.Duration
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-retry.C:
		case m, ok := <-msgs:
			if !ok {
				return
			}
			sub, isSub := m.(*redis.Subscription)
			if !isSub {
				if msg, ok := m.(*redis.Message); ok {
					s.apply(msg.Payload, time.Now())
				}
				continue
			}
			if sub.Kind != "subscribe" || sub.Channel != s.channel {
				continue
			}
			if !subscribed {
				// The first subscription: the refillers and the budgets'
				// syncer wait for it before they first read the state
				// (awaitSubscribed).
				subscribed = true
				close(s.subscribed)
				continue
			}
			retry.Stop()
			backoff = 0
		}
		if err := s.resync(); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			retry.Reset(backoff)
			continue
		}
		s.st.resyncs.Add(1)
	}
}

func (s *Store) apply(msg string, recv time.Time) {
	f := strings.Fields(msg)
	if len(f) == 3 && f[0] == "b" {
		s.budgetSpent(f[1], f[2])
		return
	}
	if len(f) == 8 && f[0] == "r" {
		var n [5]int64
		for i, v := range f[3:] {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				if i == 0 || i == 2 {
					return // the reset's number and time, which the script writes
				}
				// The pause or the quota the reset kept, as the state
				// held them: a value no member writes (a corrupt or
				// hostile hand's "1e2", which Lua reads as a number) is
				// none, not believed, and drops no reset: dropped
				// whole, the message left every other member paused
				// by the pause the reset cleared.
				x = 0
			}
			n[i] = x
		}
		s.mu.Lock()
		p := s.partLocked(f[1])
		if p == nil {
			s.unheard[s.unheardNext] = unheardReset{id: f[1], at: n[2]}
			s.unheardNext = (s.unheardNext + 1) % unheardMax
		}
		s.mu.Unlock()
		if p != nil {
			s.st.resetsReceived.Add(1)
			p.applyReset(recv, fleetReset{store: f[2], seq: n[0], at: n[2]}, n[1], n[2], n[3], n[4])
		}
		return
	}
	if len(f) == 2 && f[0] == "s" {
		// A held bucket seeded anew for a new window (see learnScript).
		s.mu.Lock()
		p := s.partLocked(f[1])
		s.mu.Unlock()
		if p != nil {
			p.reseeded()
		}
		return
	}
	if len(f) != 4 || (f[0] != "p" && f[0] != "q") {
		return
	}
	a, err1 := strconv.ParseInt(f[2], 10, 64)
	b, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	s.mu.Lock()
	p := s.partLocked(f[1])
	s.mu.Unlock()
	if p == nil {
		return // not used here: a lease will read it when it is
	}
	switch f[0] {
	case "p":
		s.st.pausesReceived.Add(1)
		p.pauseFor(recv, b, microsBetween(b, a))
	case "q":
		p.knownFromFleet(recv, a, microsBetween(0, b))
	}
}

// errBadReply is the error of a script's reply that is not as expected.
var errBadReply = errors.New("redisquota: unexpected reply from Redis")

// badReply counts a call whose reply was not as expected among the calls
// that failed, and returns errBadReply.
func (s *Store) badReply() error {
	s.st.errors.Add(1)
	return errBadReply
}

// Stats are a Store's counters since New, returned by Store.Stats.
type Stats struct {
	// Calls counts the Redis calls the Store made (pub/sub excluded), and
	// Errors those that failed or timed out, or whose reply was not as
	// expected.
	Calls, Errors int64
	// Leases counts the leases granted, and Tokens their tokens.
	Leases, Tokens int64
	// Returned counts the tokens given back unused.
	Returned int64
	// Fallbacks counts the tokens taken from a local limiter while Redis
	// did not answer; Unpaced the tokens given while no quota was known.
	Fallbacks, Unpaced int64
	// PausesSent counts the pauses this member wrote; PausesReceived the
	// pauses the fleet's channel brought (this member's own included).
	PausesSent, PausesReceived int64
	// ResetsSent counts the resets this member wrote (Transport.ResetHost,
	// through resilient.QuotaResetter); ResetsReceived the resets the
	// fleet's channel brought (this member's own included).
	ResetsSent, ResetsReceived int64
	// BudgetSyncs counts the syncs of the retry budgets that succeeded
	// (one Redis call each, for every budget that needed it);
	// BudgetLocal the retries the member's view alone allowed, while
	// Redis did not answer or after Close.
	BudgetSyncs, BudgetLocal int64
	// Resyncs counts the times the member caught up with the fleet's
	// state after go-redis subscribed to the fleet's channel again (a
	// reconnection, whose messages are lost): the partitions' states read
	// again, in one Redis call per 256 partitions, and the budgets synced.
	Resyncs int64
}

type counters struct {
	calls, errors, leases, tokens, returned, fallbacks, unpaced, pausesSent, pausesReceived atomic.Int64
	budgetSyncs, budgetLocal, resetsSent, resetsReceived, resyncs                           atomic.Int64
}

// Stats returns the Store's counters.
func (s *Store) Stats() Stats {
	c := &s.st
	return Stats{
		Calls: c.calls.Load(), Errors: c.errors.Load(),
		Leases: c.leases.Load(), Tokens: c.tokens.Load(), Returned: c.returned.Load(),
		Fallbacks: c.fallbacks.Load(), Unpaced: c.unpaced.Load(),
		PausesSent: c.pausesSent.Load(), PausesReceived: c.pausesReceived.Load(),
		ResetsSent: c.resetsSent.Load(), ResetsReceived: c.resetsReceived.Load(),
		BudgetSyncs: c.budgetSyncs.Load(), BudgetLocal: c.budgetLocal.Load(),
		Resyncs: c.resyncs.Load(),
	}
}
