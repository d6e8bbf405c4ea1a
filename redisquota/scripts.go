package redisquota

import "github.com/redis/go-redis/v9"

// The Lua scripts the Store runs. Times are Redis's own clock (TIME), in
// microseconds since the Unix epoch, so that the members' clocks never
// meet; a member converts what it receives with the time it received it,
// which errs late, never early. Times are written with string.format:
// redis.call would turn a Lua number into a string of 14 significant
// digits, and a time in microseconds has 16.

// luaNum defines num, which the scripts read the partition's state with:
// a value as a finite number, nil for none. Lua's tonumber reads "nan" and
// "inf" (and a number out of range) as numbers that no member writes,
// which compare false with everything, or true with every time: a state
// holding one, from a corrupt or hostile hand, is read as not holding the
// value, and the scripts write theirs over it.
const luaNum = `
local function num(v)
  local x = tonumber(v)
  if x and x == x and x ~= math.huge and x ~= -math.huge then return x end
  return nil
end
`

// luaOwn defines own, which the scripts call on each key of a partition
// they use before they use it: a key holding another type than kind, which
// no member writes (a corrupt or hostile hand, under the Store's prefix),
// is deleted, as the heartbeat replaces the members' key: its WRONGTYPE
// would fail every call of the script, and the partition would be paced by
// each member alone, its pauses and quota unshared, for as long as the key
// lived.
const luaOwn = `
local function own(key, kind)
  local k = redis.call('TYPE', key).ok
  if k ~= kind and k ~= 'none' then redis.call('DEL', key) end
end
`

// luaWritten defines written, which the scripts read a stored value they
// keep and publish, or compare as a time, with: the value as a number when
// it is written as the members write a time (µs), a count or a limit
// (decimal digits, at most 19: an int64), nil otherwise. Lua's tonumber
// reads a number padded with spaces or zeros to megabytes, or "1e2", or
// "0x64", which no member writes: a corrupt or hostile hand's value, kept
// as stored, reached every member with each message that carried it.
const luaWritten = `
local function written(v)
  if type(v) == 'string' and #v <= 19 and string.match(v, '^%d+$') then return tonumber(v) end
  return nil
end
`

// luaBurst defines burst, the bucket's tolerance for a quota of limit:
// frac of it (burstFrac, which the member sends), at least one token. The
// scripts take it from the limit Redis holds (or the one they write), not
// from the member's: a member that has not yet heard that the fleet's
// quota fell (its message on its way, or lost) sent the tolerance of the
// limit it believed, taken at the pace of the one Redis held (2% of 50000
// a second, 1000 tokens of a quota of 100 a second: ten seconds of it at
// once).
const luaBurst = `
local function burst(limit, frac)
  return math.max(math.floor(tonumber(frac) * limit), 1)
end
`

// A partition's state is one hash: limit and window (µs), the quota the
// servers announced, with lset and lby, when (µs) and by which Store (its
// instance id) it was written, lseen, when (µs) a member last reported
// its window, or wrote it (see learnScript), and lheard, when (µs) a
// member last heard it announced, as the members tell (see leaseScript); tat, the theoretical arrival
// time of the GCRA bucket (µs, with a fraction); pause, the end of the
// fleet's pause (µs), with pset and pby, when and by which Store it was
// set, and plater, the pauses written since that it covered (see
// pauseScript); and g:<member>:<instance>:<n>, for each partition of a Store (the
// Store's n-th partition made) that gave tokens back, the net give-back
// the lease script credited to it in all, the number of the call that
// sent it and the tokens that call granted (see leaseScript), which the
// sorted set prefix:{id}:gb orders by its last give-back; and rat, rby and
// rseq, the latest reset (resetScript): when (µs) it ran, the Store (its
// instance id) that ran it and the number of that Store's Reset, which a
// member that missed its message reads (see Store.resync); and scap and
// sreset, the tokens the bucket may still grant before the reset of the
// window a new bucket was seeded in, and that reset (see learnScript); and
// hz and hzt, the longest horizon (µs) a lease was granted with, and when
// (see leaseScript).

// leaseScript counts the member among the partition's active members (those
// that leased within their own member ttl: each is scored by when it
// expires, now + member ttl, so that members with different heartbeats
// count each other; one that expires further ahead than max member ttl,
// or than the caller's member ttl if longer, is corrupt or hostile, and
// forgotten), and takes tokens from the
// partition's GCRA bucket, paced at share·limit/window with a tolerance of
// burst tokens (see luaBurst: of the limit Redis holds). A lease of want
// tokens is granted whole, unless the partition is paused, or its first
// token would conform more than horizon µs from now (the other members
// hold that much already), and holds no more tokens than horizon µs of
// the bucket's pace (at least one): a member that has not heard that the
// quota fell sizes its lease by the one it believes, and took ten seconds
// of the fleet's quota in one lease; its tokens conform one interval apart from
// base + interval (base may be in the past: a full bucket's tokens
// conform at once). giveback tokens a member did not use are first put
// back (never more than a full bucket); a negative giveback charges the
// bucket with the tokens a member sent while pacing locally, never more
// than limit (one window of the quota: a member charges at most its share
// of one window per call, see part.chargeable), so that no call pushes the
// bucket back by more than limit intervals, whatever it sends. A want of 0
// only reads the state. A pause further ahead than max pause, which no
// member writes, is not believed: it is deleted, so that a corrupt or
// hostile value does not refuse every lease of the fleet; so is a window
// longer than max window, or shorter than 1µs (which no member writes: a
// window is written in whole µs, rounded up; one of 5e-324 made the
// interval 0, a reply that does not parse), or a limit past 2^63 (the
// reply's integer) or below 1 (its tokens an infinity apart), deleted
// with the quota and its
// bucket, which a member then writes again, as after Redis lost them; a
// pause before the epoch is none, and the interval is written with all
// its digits (a limit of 10^15 a second has tokens 10^-9 µs apart), so
// that the reply always parses: one that did not failed every lease, and
// every member paced alone, as long as the state lived; and so is a quota
// that no member has heard announced for max heard (lheard, else lset; a
// state with neither, or with a time ahead of now, which no member
// writes, counts from the first lease that finds it): the member that
// leases tells how long ago it last heard it (heard age), and the latest
// time a member did is kept, so that the fleet stops pacing by a quota no
// response has announced for that long, as each Transport does (see
// resilient.MaxBelievedReset), and a member that still hears it keeps it
// for all. While the bucket holds a seeded window's cap (scap, until
// sreset), a lease grants no more than it (tokens given back return to
// it, and a charge takes from it), and the lease that spends it moves the
// bucket's next token to the reset; a reset further ahead than max pause,
// which no member seeds, is not believed: the cap is deleted, so that a
// corrupt or hostile value does not move the bucket's next token years
// ahead, where the member that leased would wait for it. A bucket whose next
// token lies further ahead than two windows of the quota (limit intervals:
// the most a charge pushes it) past the horizon is brought back to it:
// the members' leases and charges never take it there. The horizon is the
// longest a lease was granted with while that lease's tokens may lie ahead
// (hz, the horizon, and hzt, when: for two of it), not the caller's alone:
// Stores of different lease times on one prefix lease with different
// horizons, and the read of a member of a shorter one brought the bucket
// back past the tokens another member's leases held, which the bucket
// then granted again (TestMixedLeaseTimesKeepTheBucket). One further
// ahead than max pause, which no member leases with, is not believed.
//
// The give-back is credited once, however many times it is sent (a call
// whose reply was lost is sent again, with what the member gave back
// since): the member sends the net give-back it had credited in all (cum,
// giveback included), and the script keeps, in the field gfield
// (g:<member>:<instance>:<n>, one per Store and partition made), the cum
// it credited last, and credits the difference (and the tokens granted
// that the member did not get, see below). A field the state does
// not hold (a new Store or partition, or the state was lost or reset)
// credits giveback. A call that reaches Redis after a later one of the
// same field (its call timed out, or Close canceled it, and Redis ran it
// late) credits nothing, and leaves the field as it is: the later one
// carried its give-back, and the difference between its running total
// and the later one's, credited, went backwards (a charge of what the
// member gave back since, which a closed member made no later call to
// repair). The member numbers the totals it sends (seq: the next number
// for a total that differs from the last one sent), and the field holds
// "cum seq", the number of the total it credited last; a call whose
// number is not ahead of it is a late one, unless the field's number lies
// lag or more ahead (none of the member's: a corrupt or hostile hand's),
// which is not believed. A field whose number is behind the call's is
// written, though nothing is credited, so that it keeps the latest
// number. A late call grants no token either: the member gave up on it,
// and nobody would take them; nor does it count the member among the
// active members, which the member may have left since (Close:
// TestCloseLeaveNotUndoneByLateLease, a state read's included:
// TestCloseLeaveNotUndoneByLateStateRead). The member numbers each lease
// call afresh (a call that asks for tokens, or counts the member), and the field holds "cum seq granted" after a
// call that granted tokens; the same call run again (the client resent
// it: go-redis resends a command whose connection broke before its reply
// came), which finds its own number and a grant in the field, is not a
// late one: it gives that grant back and grants anew, the member getting
// the last run's reply only (TestLeaseResentGivesTokensBack); a call
// that says the member's calls from doubt on got no reply (doubt: the
// number of the first; absent or 0 for none) gives back what the field says the call that ran last granted, if it is one
// of them (seq at least doubt), once: the call writes the field. The
// reply ends with the number the field holds after the call (-1 for
// none): one ahead of the call's own is none of the member's, which then
// numbers its calls past it. A call without a number (seq absent) is credited as before, and
// the field then keeps none; a field without a number is read as the
// total it holds. The field is the partition object's own: one the
// Store dropped to make room and made again starts a total of its own,
// and its first call is not read against the old one's total. The
// field is written even when no quota is known and nothing is credited:
// what was sent is spent. The fields that gave nothing back for gb ttl
// are deleted, a few at a time, by the calls that give back.
//
// KEYS[1] the partition's state, KEYS[2] its active members (a sorted
// set by last lease), KEYS[3] the give-back fields (a sorted set by last
// give-back). ARGV: want, giveback, share, burst fraction, horizon (µs), ttl (ms),
// member, member ttl (µs), gfield, cum, gb ttl (µs), max pause (µs; none
// when absent), max window (µs; none when absent), max member ttl (µs),
// heard age (µs; -1 for never), max heard (µs; none when absent), seq
// (none when absent), lag, doubt (none when absent or 0).
//
// It returns {granted, base - now (µs), interval (µs, a string), limit,
// window (µs), pause (µs), now (µs), members, the latest reset: its
// time (µs, 0 for none), Store and number (rat, rby, rseq; none when one
// is longer than any member writes, which every reply would carry:
// TestHostileHugeResetFieldsNotReturned), how long
// ago a member last heard the quota announced (µs, a string; -1 for no
// quota), and the number the give-back field holds (-1 for none)}.
var leaseScript = redis.NewScript(luaNum + luaOwn + luaBurst + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
own(KEYS[1], 'hash')
own(KEYS[2], 'zset')
own(KEYS[3], 'zset')
local s = redis.call('HMGET', KEYS[1], 'limit', 'window', 'tat', 'pause', ARGV[9], 'rat', 'rby', 'rseq', 'lheard', 'lset', 'scap', 'sreset', 'hz', 'hzt')
local rat, rby, rseq = s[6] or '0', s[7] or '', s[8] or '0'
if #rat > 20 or #rby > 64 or #rseq > 20 then
  -- Longer than any member writes (a time, an instance id, a number):
  -- a corrupt or hostile hand's, which every reply would carry. None.
  rat, rby, rseq = '0', '', '0'
end
local limit, window = num(s[1]) or 0, num(s[2]) or 0
local tat, pause = num(s[3]) or 0, num(s[4]) or 0
if pause < 0 then pause = 0 end
local maxwindow = tonumber(ARGV[13])
if (maxwindow and window > maxwindow) or (window > 0 and window < 1) or limit > 2^63 or (limit > 0 and limit < 1) then
  redis.call('HDEL', KEYS[1], 'limit', 'window', 'tat', 'lheard', 'scap', 'sreset')
  limit, window, tat = 0, 0, 0
end
local heard = num(s[9])
if not heard or heard > now then heard = num(s[10]) end
if heard and heard > now then heard = nil end
if limit > 0 and window > 0 then
  if not heard then
    -- A quota whose state says not when it was heard (written by hand,
    -- or with a time ahead): its age counts from now.
    heard = now
    redis.call('HSET', KEYS[1], 'lheard', string.format('%.0f', heard))
  end
  local age = tonumber(ARGV[15])
  if age and age >= 0 and now - age > (heard or 0) + 1000000 then
    heard = now - age
    redis.call('HSET', KEYS[1], 'lheard', string.format('%.0f', heard))
  end
  local maxheard = tonumber(ARGV[16])
  if maxheard and now - (heard or 0) > maxheard then
    redis.call('HDEL', KEYS[1], 'limit', 'window', 'tat', 'lheard', 'scap', 'sreset')
    limit, window, tat = 0, 0, 0
  end
end
local heardAge = '-1'
if limit > 0 and window > 0 and heard then heardAge = string.format('%.0f', now - heard) end
local maxpause = tonumber(ARGV[12])
if maxpause and pause > now + maxpause then
  redis.call('HDEL', KEYS[1], 'pause', 'pset', 'pby')
  pause = 0
end
local want, giveback, cum = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[10])
local prev, pseq, pgrant
if s[5] then
  local c, q, g = string.match(s[5], '^(%S+) (%S+) (%S+)$')
  if not c then c, q = string.match(s[5], '^(%S+) (%S+)$') end
  if c then prev, pseq, pgrant = num(c), num(q), num(g) else prev = num(s[5]) end
end
local seq = num(ARGV[17])
-- The same call run again (go-redis resends a command whose connection
-- broke before its reply came): the member gets this run's reply only.
local again = want > 0 and seq and pseq and seq == pseq and pgrant and pgrant > 0
local late = not again and seq and pseq and seq <= pseq and pseq - seq < (tonumber(ARGV[18]) or 0)
local members = 0
if ARGV[7] ~= '' and not late then
  -- A late call counts nobody: the member may have left since (Close).
  local mttl = tonumber(ARGV[8])
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + mttl), ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. string.format('%.0f', now + math.max(mttl, tonumber(ARGV[14]) or 0)), '+inf')
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  members = redis.call('ZCARD', KEYS[2])
end
if late then
  -- A call that reached Redis after a later one, which carried its
  -- give-back: the difference, credited, would go backwards; and the
  -- member gave up on it: its tokens would go to nobody.
  giveback, want = 0, 0
elseif prev then
  giveback = cum - prev
end
local doubt = num(ARGV[19])
if again or (not late and doubt and doubt > 0 and pseq and pseq >= doubt and pgrant and pgrant > 0) then
  -- The call that ran last granted tokens whose reply the member did
  -- not get (this call's own first run, or a call in doubt): they go
  -- back, once (this call writes the field).
  giveback = giveback + pgrant
end
local held = pseq
local dirty = not late and (giveback ~= 0 or (s[5] and prev ~= cum) or (seq and seq > 0 and seq ~= pseq))
local function field(granted)
  if not dirty then return end
  local f = ARGV[10]
  if seq then
    f = f .. ' ' .. string.format('%.0f', seq)
    if granted > 0 then f = f .. ' ' .. string.format('%.0f', granted) end
    held = seq
  end
  redis.call('HSET', KEYS[1], ARGV[9], f)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[3], string.format('%.0f', now), ARGV[9])
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', now - tonumber(ARGV[11])), 'LIMIT', 0, 8)
  for _, f in ipairs(old) do
    redis.call('HDEL', KEYS[1], f)
    redis.call('ZREM', KEYS[3], f)
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
local function heldSeq()
  if held then return string.format('%.0f', held) end
  return '-1'
end
if limit <= 0 or window <= 0 then
  field(0)
  return {0, 0, '0', 0, 0, string.format('%.0f', pause), string.format('%.0f', now), members, rat, rby, rseq, heardAge, heldSeq()}
end
local interval = window / (limit * tonumber(ARGV[3]))
local tol = burst(limit, ARGV[4]) * interval
local old = tat
local reach = tonumber(ARGV[5])
local hz, hzt = num(s[13]), num(s[14])
if hz and hzt and hz > reach and hzt <= now and now <= hzt + 2 * hz and not (maxpause and hz > maxpause) then
  -- A member of a longer lease time holds tokens that far ahead.
  reach = hz
end
local ahead = 2 * limit * interval + reach
if tat > now + ahead then tat = now + ahead end
if tat < now then tat = now end
if giveback > 0 then
  tat = math.max(now, tat - giveback * interval)
elseif giveback < 0 then
  tat = tat - math.max(giveback, -limit) * interval
end
local cap, capEnd = num(s[11]), num(s[12])
if cap and not (limit > 0 and capEnd and capEnd > now and not (maxpause and capEnd > now + maxpause)) then
  if s[11] or s[12] then redis.call('HDEL', KEYS[1], 'scap', 'sreset') end
  cap = nil
elseif cap then
  cap = cap + math.max(giveback, -limit)
end
local base = tat - tol
local granted = 0
if want > 0 and pause <= now and base + interval - now <= tonumber(ARGV[5]) then
  granted = math.min(want, math.max(math.floor(tonumber(ARGV[5]) / interval), 1))
  if cap then granted = math.max(math.min(granted, math.floor(cap)), 0) end
  tat = tat + granted * interval
  if tonumber(ARGV[5]) >= reach then
    redis.call('HSET', KEYS[1], 'hz', ARGV[5], 'hzt', string.format('%.0f', now))
  end
end
if cap then
  cap = cap - granted
  if cap < 1 then
    -- What remained of the seeded window is spent: nothing until its
    -- reset, and its first token then (base + interval at the reset).
    tat = math.max(tat, capEnd + tol - interval)
    redis.call('HDEL', KEYS[1], 'scap', 'sreset')
  else
    redis.call('HSET', KEYS[1], 'scap', string.format('%.0f', cap))
  end
  if granted == 0 then base = tat - tol end
end
if tat ~= old then
  redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat))
end
field(granted)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {granted, string.format('%.0f', base - now), string.format('%.17g', interval),
  limit, window, string.format('%.0f', pause), string.format('%.0f', now), members, rat, rby, rseq, heardAge, heldSeq()}
`)

// learnScript records the quota a member learned, when it differs from
// the one held, with the time and the Store's instance id (lset, lby), and
// tells the fleet. For the same limit, the window only grows, unless the
// held one is stale: a window of at least half of the held one is still
// seen, and the script reconfirms the held window (lseen: when a member
// last reported it, or wrote it); a shorter one replaces it only when no
// member has reported it for two of its windows, or for max stale if that
// is shorter (now - lseen > min(2·window, max stale), lset for a state
// written without lseen: one reset believed far ahead slows the fleet no
// longer than a believed pause may last, as the Transport's own estimate;
// a time ahead of now, which no member writes, counts from the first
// report that finds it, else the held window was never stale)
// and the response the member
// reports with says that at least half of the quota is left (or does not
// say), as the Transport forgets an estimated window that no response
// comes close to while at least half of its quota is left. So a member
// that has seen only part of a window (one that just started) does not
// make the fleet pace too fast, nor do the members that started while the
// quota was in use (a rolling window's resets, those of its oldest
// request, are close at hand under a steady load, and never confirm the
// window), and one reset believed far ahead does not slow the fleet for
// good. A replaced window takes the bucket's schedule with it:
// the time the bucket is ahead of now (tat - now) shrinks with the
// interval, the same tokens at the new pace. A new bucket is seeded from
// what the response said remains of its window, so that the fleet's first
// window is not overspent: until the reset, the bucket grants
// share·remaining less its tolerance (scap, until sreset: see
// leaseScript), the margin covering the attempts the members sent before
// they knew the quota, from a full bucket (its tolerance at once, then
// the pace: the first token comes now, not last before the reset);
// nothing when that is less than a token, the bucket's next token coming
// at the reset (one interval after it, the fleet of a quota of one an hour
// was refused for two hours, where a Transport without a store waits for
// the reset). A quota of another limit than
// the bucket's is seeded anew from the response that announced it, with a
// cap whatever the pace: the old cap counted the old quota's remaining,
// and, once spent, held the bucket's next token until its reset (a limit
// raised in the first window refused the fleet's calls until then, up to
// resilient.MaxBelievedReset, while the server said that hundreds
// remain). (Spread at the pace up to the
// reset, what remained came last: a fleet whose first response said that
// 3000 of 5000 an hour remain for 20 minutes got its first token 8
// minutes later, its calls refused meanwhile.)
//
// A bucket of the same limit whose next token lies further ahead than a
// margin (max(2s, 1% of the window held): a seed's reset, a spent cap)
// is seeded anew, as a new bucket is, from a response whose reset is
// later than that token by the margin and which says that a seed's worth
// remains (share·remaining less the tolerance, at least a token) and at
// least half of the quota, as a window restarted does: the
// server counts a new window (its limit raised, its window restarted),
// as a Transport without a store believes (a later reset starts a new
// window). Held, the fleet waited out the old reset (up to
// resilient.MaxBelievedReset) while the server said 900 remain. A reset
// within the margin of the held token is the same window's (whole
// seconds, a response's delay), whose remaining the fleet spent: seeded
// anew from each, the fleet would spend what the seed's margin keeps. So
// may be one whose reset is later by more than the margin (a response
// answered seconds after the server counted its request, with a reset in
// seconds from then; a member's clock off the server's by less than
// the Transport corrects), whose count is from before the fleet's latest
// calls: while the bucket is held, the fleet has spent its share of the
// window, and a count of less than half the quota is taken for such a
// response (TestLateResponseOfTheSameWindowDoesNotReseed). It
// tells the fleet ("s <id>"): the members that found the bucket dry ask
// again, instead of waiting for the old reset.
//
// With confirm set, the member reports the quota it holds (its limit is
// the one it knows): the script reconfirms or replaces a window of the
// same limit, and does nothing when Redis holds another limit or none (a
// quota written since, or cleared by a reset: the lease tells the member).
//
// A window held longer than max window, which no member writes, is none:
// it is deleted with its quota and bucket, as the lease script does. Read
// as held, it was the reply's time to the next report (10^300 µs, a
// number that does not parse), and the member, which reports before it
// leases, failed every step for as long as the key lived, the lease that
// deletes it never sent (TestHostileWindowReportedOver).
//
// KEYS[1] the partition's state. ARGV: limit, window (µs), remaining (-1
// unknown), reset (µs from now, -1 unknown; remaining seeds a new bucket
// only with it), share, burst fraction, channel, id, ttl (ms), the Store's instance
// id, confirm (1 or 0), max stale (µs), max window (µs; none when absent).
//
// It returns {1 when it changed the quota, else 0; next (µs, a string)}:
// how long the member need not report the quota again: the window held,
// or, for a shorter window refused, until the held one is stale, if
// sooner; and a third element, 1, when it seeded a held bucket anew.
var learnScript = redis.NewScript(luaNum + luaOwn + luaBurst + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
own(KEYS[1], 'hash')
local s = redis.call('HMGET', KEYS[1], 'limit', 'window', 'tat', 'lseen', 'lset')
redis.call('PEXPIRE', KEYS[1], ARGV[9])
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = num(s[2]) or 0
local maxwindow = tonumber(ARGV[13])
if maxwindow and held > maxwindow then
  redis.call('HDEL', KEYS[1], 'limit', 'window', 'tat', 'lheard', 'scap', 'sreset')
  s[1], s[3], held = false, false, 0
end
local n = string.format('%.0f', now)
local remaining, reset = tonumber(ARGV[3]), tonumber(ARGV[4])
if s[1] == ARGV[1] and held >= window then
  if 2 * window >= held then
    redis.call('HSET', KEYS[1], 'lseen', n, 'lheard', n)
    -- A bucket held past the margin (a seed's reset, a spent cap) whose
    -- hold a reset later by the margin says is over: the server counts
    -- a new window, of which remaining are left. Seeded anew from it,
    -- as a new bucket is: the fleet does not wait out the old reset
    -- while the server says hundreds remain.
    local tat = num(s[3])
    if tat and remaining >= 0 and reset >= 0 then
      local interval = held / (limit * tonumber(ARGV[5]))
      local tol = burst(limit, ARGV[6])
      local allowed = math.floor(math.max(tonumber(ARGV[5]) * remaining - tol, 0))
      local first = tat - tol * interval + interval
      local margin = math.max(2000000, held / 100)
      -- At least half of the quota left, as for a stale window replaced
      -- below: a response of the same window whose reset is later by
      -- its delay (counted when its request arrived, seconds before it
      -- was answered; a member's clock up to 2s off the server's) says
      -- what remained before the fleet's latest calls, which spent it.
      if allowed >= 1 and 2 * remaining >= limit and first > now + margin and now + reset > first + margin then
        redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', now))
        if tol + reset / interval > allowed then
          redis.call('HSET', KEYS[1], 'scap', string.format('%.0f', allowed), 'sreset', string.format('%.0f', now + reset))
        else
          redis.call('HDEL', KEYS[1], 'scap', 'sreset')
        end
        redis.call('PUBLISH', ARGV[7], 's ' .. ARGV[8])
        return {0, string.format('%.0f', held), 1}
      end
    end
    return {0, string.format('%.0f', held)}
  end
  local seen = num(s[4]) or num(s[5]) or 0
  if seen > now then
    -- Reported ahead of now, which no member writes: it counts from now.
    seen = now
    redis.call('HSET', KEYS[1], 'lseen', n)
  end
  local stale = 2 * held
  local maxstale = tonumber(ARGV[12])
  if maxstale and maxstale < stale then stale = maxstale end
  if now - seen <= stale then
    return {0, string.format('%.0f', math.min(held, seen + stale - now + 1000))}
  end
  local left = tonumber(ARGV[3])
  if left >= 0 and 2 * left < limit then
    return {0, string.format('%.0f', held)}
  end
  local tat = num(s[3])
  if tat and tat > now then
    redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', now + (tat - now) * window / held))
  end
elseif s[1] ~= ARGV[1] and ARGV[11] == '1' then
  return {0, string.format('%.0f', window)}
end
redis.call('HSET', KEYS[1], 'limit', ARGV[1], 'window', ARGV[2], 'lset', n, 'lseen', n, 'lheard', n, 'lby', ARGV[10])
-- A bucket of another limit: its cap, and its next token held until the
-- reset once the cap was spent, counted the old quota's remaining.
local relimit = s[3] and s[1] ~= ARGV[1]
if (not s[3] or relimit) and remaining >= 0 and reset >= 0 then
  local interval = window / (limit * tonumber(ARGV[5]))
  local tol = burst(limit, ARGV[6])
  local allowed = math.floor(math.max(tonumber(ARGV[5]) * remaining - tol, 0))
  local tat = now
  if allowed < 1 then
    -- Nothing until the reset, and the first token then.
    tat = now + reset + (tol - 1) * interval
    if relimit then redis.call('HDEL', KEYS[1], 'scap', 'sreset') end
  elseif relimit or tol + reset / interval > allowed then
    redis.call('HSET', KEYS[1], 'scap', string.format('%.0f', allowed), 'sreset', string.format('%.0f', now + reset))
  end
  redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat))
end
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('PUBLISH', ARGV[7], 'q ' .. ARGV[8] .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
return {1, ARGV[2]}
`)

// pauseScript pauses a partition for every member, for dur µs from now,
// unless a later pause is held, with the time and the Store's instance id
// (pset, pby), and tells the fleet. A pause the held one covers is
// recorded in plater ("<set>,<until>,<store>;" for each, the pauses
// written since the held one that no later write covers, 16 at most,
// those over dropped, and those not written as a member writes them: see
// luaWritten), for a reset that clears the held pause, set before
// it, to keep the longest written after it (a 429 received since): the
// reset cleared the fleet's pause whole, and the members sent through it. A pause held further ahead than max
// pause, which no member writes nor believes (see leaseScript), is none:
// it kept the member's pause from Redis and from the fleet's channel.
//
// KEYS[1] the partition's state. ARGV: dur (µs), channel, id, ttl (ms),
// the Store's instance id, max pause (µs; none when absent).
//
// It returns {1 when it set the pause, else 0; now (µs, a string)}.
var pauseScript = redis.NewScript(luaNum + luaOwn + luaWritten + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
own(KEYS[1], 'hash')
local untl = now + tonumber(ARGV[1])
local cur = num(redis.call('HGET', KEYS[1], 'pause')) or 0
local maxpause = tonumber(ARGV[6])
if maxpause and cur > now + maxpause then cur = 0 end
local u, n = string.format('%.0f', untl), string.format('%.0f', now)
if untl <= cur then
  -- Covered by the pause held: recorded in plater, for a reset that
  -- clears the held one, set before it, and must keep this one.
  local list = {}
  for set, e, by in string.gmatch(redis.call('HGET', KEYS[1], 'plater') or '', '(%d+),(%d+),(%w*);') do
    -- One not written as a member writes it (see luaWritten) is none.
    if written(set) and written(e) and #by <= 64 and tonumber(e) > untl and tonumber(e) > now then
      table.insert(list, set .. ',' .. e .. ',' .. by .. ';')
    end
  end
  table.insert(list, n .. ',' .. u .. ',' .. ARGV[5] .. ';')
  while #list > 16 do table.remove(list, 1) end
  redis.call('HSET', KEYS[1], 'plater', table.concat(list))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {0, n}
end
redis.call('HDEL', KEYS[1], 'plater')
redis.call('HSET', KEYS[1], 'pause', u, 'pset', n, 'pby', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[2], 'p ' .. ARGV[3] .. ' ' .. u .. ' ' .. n)
return {1, n}
`)

// resetScript clears a partition's pause and quota for every member
// (resilient.QuotaResetter, which Transport.ResetHost calls) as they were
// at since, the time of the Store's Reset, age µs before now: a pause set,
// or a quota written, after since by another Store is kept (pset and pby,
// lset and lby tell), and what the Store itself wrote before its reset
// ran, it wrote before its Reset (its refiller writes in order); a time
// ahead of now, which no member writes (a corrupt hand, a Redis failed
// over to a replica whose clock is behind), is not after since. A pause
// held that is cleared gives way to the longest another Store wrote after
// since that it covered (plater, see pauseScript). A quota
// cleared takes its bucket with it (tat and the give-back fields: the
// state is deleted, but for a pause kept). It records the reset in the
// state (rat, rby, rseq: when, by which Store, its Reset's number), for the
// members that miss its message (see Store.resync), and tells the fleet,
// with what it kept: "r <id> <store> <seq> <pause> <now> <limit> <window>"
// (pause and limit 0 for none; store the Store's instance id, seq its
// Reset's number, now the time recorded).
//
// A pause, a quota or a time the state holds that is not written as a
// member writes it (see luaWritten: a number of more than 19 digits, or
// padded, in a form Lua reads as a number: a corrupt or hostile hand's)
// is none: kept and published as stored, it reached every member,
// megabytes a message (TestResetPublishesNoHostilePaddedFields); so is
// a pause of plater whose Store is longer than an instance id.
//
// The same reset run again (the client resent it: go-redis resends a
// command whose connection broke before its reply came), which finds its
// own record (rby and rseq its Store's and number, rat its run's time),
// cuts off at its first run's time less age, not at its own: from its
// later time, it took a pause another member set between the two runs,
// after the Reset, for one set before, and cleared it
// (TestResetResentKeepsPauseSetBetween). No two Resets of a Store share a
// number, whatever its partitions (see Store.resetSeq): a partition made
// again that numbered its Resets from one again had its first taken for
// the forgotten one's, resent, and kept a pause set before it
// (TestResetOfPartitionMadeAgainClearsPause).
//
// KEYS[1] the partition's state. ARGV: age (µs), channel, id, the Store's
// instance id, seq, ttl (ms).
var resetScript = redis.NewScript(luaOwn + luaWritten + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
own(KEYS[1], 'hash')
local since = now - tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'pause', 'pset', 'pby', 'limit', 'window', 'lset', 'lby', 'plater', 'rat', 'rby', 'rseq')
local ran = written(s[9])
if ran and ran <= now and s[10] == ARGV[4] and s[11] == ARGV[5] then
  -- This reset, run again (the client resent it): cut off at its first
  -- run's time, not at this one's, which is later than what another
  -- member wrote since.
  since = math.min(since, ran - tonumber(ARGV[1]))
end
local pause, limit, window = s[1], s[4], s[5]
local pset, pby, later = s[2], s[3] or '', s[8] or ''
if #pby > 64 then pby = '' end -- longer than an instance id: no member's
-- A time set ahead of now, which no member writes, is not after since.
local function after(v) local x = written(v) or 0 return x > since and x <= now end
if (written(s[1]) or 0) <= now or not after(s[2]) or s[3] == ARGV[4] then
  -- The held pause, set before since, is cleared: the longest of the
  -- pauses another Store wrote after since, which it covered, is kept.
  pause = nil
  local rest = {}
  for set, e, by in string.gmatch(later, '(%d+),(%d+),(%w*);') do
    if not written(set) or not written(e) or #by > 64 then
      -- Not a member's (see luaWritten): none.
    elseif pause then
      if tonumber(e) > now then table.insert(rest, set .. ',' .. e .. ',' .. by .. ';') end
    elseif tonumber(e) > now and after(set) and by ~= ARGV[4] then
      pause, pset, pby = e, set, by
    end
  end
  later = table.concat(rest)
end
if (written(s[4]) or 0) <= 0 or (written(s[5]) or 0) <= 0 or not after(s[6]) or s[7] == ARGV[4] then
  limit, window = nil, nil
end
if not limit then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'pause', 'pset', 'pby', 'plater')
end
if pause then
  redis.call('HSET', KEYS[1], 'pause', pause, 'pset', pset, 'pby', pby)
  if later ~= '' then redis.call('HSET', KEYS[1], 'plater', later) end
end
local n = string.format('%.0f', now)
redis.call('HSET', KEYS[1], 'rat', n, 'rby', ARGV[4], 'rseq', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[2], 'r ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. (pause or '0') .. ' ' ..
  n .. ' ' .. (limit or '0') .. ' ' .. (window or '0'))
return 1
`)

// heartbeatScript records a member as alive for ttl µs (three of its
// heartbeats, at most max ttl: see Store.memberTTL), scored by when it
// expires, so that members with different
// heartbeats count each other for their own ttl; it forgets those expired,
// and those that expire further ahead than max ttl, or ttl if longer,
// which no member writes (a corrupt or hostile entry would be counted for
// ever), and counts those left. A key of another type, which no member
// writes, is replaced: every heartbeat would fail, and every member count
// itself alone.
//
// KEYS[1] the members' sorted set. ARGV: member, ttl (µs), max ttl (µs).
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])
local cap = math.max(ttl, tonumber(ARGV[3]))
local kind = redis.call('TYPE', KEYS[1])
if kind.ok ~= 'zset' and kind.ok ~= 'none' then
  redis.call('DEL', KEYS[1])
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now + cap), '+inf')
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / 1000) * 2)
return redis.call('ZCARD', KEYS[1])
`)

// budgetScript syncs a member's view of a retry budget: it adds the
// member's net change (deposits less withdrawals, in thousandths of a
// token) to the fleet's balance, kept within [0, burst], and returns the
// balance. A budget Redis does not hold starts full, and so does one whose
// balance is no number (NaN included, which no clamp brings back).
//
// A change is applied once, however many times it is sent (a sync whose
// reply was lost is sent again, with what the member changed since): the
// member sends the net change its budget made in all (cum, delta
// included) and since its last sync (delta), and the script keeps, in the
// budget's field (b:<member>:<instance>:<n>, one per Store and budget),
// the cum it applied last, and applies the difference. A field the budget
// does not hold (a new Store or budget, or Redis lost the state), or that
// holds no number, applies delta. The field is the Store's own, not its
// member id's: a Store that starts with the member id of one before it
// (WithMemberID, a restarted process) starts a total of its own, and its
// first sync is not read against the old one. The fields not synced for field ttl are deleted,
// a few at a time, by the syncs, which the sorted set KEYS[2] orders by
// last sync.
//
// A sync that reaches Redis after a later one of the same field (its
// call timed out, and Redis ran it late) changes nothing, and returns the
// balance: the later one carried its change, and the difference between
// its running total and the later one's, applied, went backwards. The
// member numbers its syncs (seq), and the field keeps the number of the
// one it applied last; a field whose number lies further ahead than lag
// (none of the member's: a corrupt or hostile hand's) is not believed,
// and the sync is applied. A sync without a number (seq absent) is
// applied, and the field then keeps none.
//
// When the balance falls from full, it tells the fleet ("b <id>
// <store>"), so that the members whose views are full sync, and their
// answers then refill it.
//
// The member's withdrawals that the balance, kept at zero, did not pay
// are owed by the member's field, at most burst: the field holds "cum
// rcum owed seq" (seq absent when the sync had none), rcum being the
// running total of the member's give-backs (retries never sent:
// budget.Refund), which the script applies, as it
// does cum, once; what they give back pays what the field owes before it
// credits the balance, so that a withdrawal and its give-back leave the
// balance as they found it, whatever syncs carried them and whichever
// replies were lost. A balance full again, or gone (expired, flushed: the
// field goes with it), owes nothing: every token a give-back might have
// credited it for nothing, the clamp at burst took.
//
// Both keys expire ttl after the last sync; the budget's is given its
// expiry before the fields are written, so that a key of the fields of
// another type (another hand's), which fails the script there, does not
// leave the balance it wrote without one
// (TestBudgetBalanceExpiresWhenFieldsKeyIsAnotherType).
//
// KEYS[1] the budget (a hash: bal, and the fields), KEYS[2] its fields (a
// sorted set by last sync). ARGV: the field, cum, delta, burst, ttl (ms),
// channel, id, the Store's instance id, field ttl (µs), rcum, seq, lag.
//
// It returns the balance.
var budgetScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local burst = tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'bal', ARGV[1])
local old = tonumber(s[1])
if old == nil or old ~= old then old = burst end
local d = tonumber(ARGV[3])
local prev, prevr, owed, pseq
if s[2] then
  local c, r, o, q = string.match(s[2], '^(%S+) (%S+) (%S+) (%S+)$')
  if not c then
    c, r, o = string.match(s[2], '^(%S+) (%S+) (%S+)$')
  end
  if c then
    prev, prevr, owed, pseq = tonumber(c), tonumber(r), tonumber(o), tonumber(q)
  else
    prev = tonumber(s[2])
  end
end
local seq = tonumber(ARGV[11])
if seq and pseq and seq <= pseq and pseq - seq < tonumber(ARGV[12]) then
  return math.min(math.max(old, 0), burst)
end
if prev ~= nil and prev == prev then d = tonumber(ARGV[2]) - prev end
local rcum = tonumber(ARGV[10]) or 0
if owed == nil or owed ~= owed then owed = 0 end
owed = math.min(math.max(owed, 0), burst)
if prevr ~= nil and prevr == prevr then
  local pay = math.min(owed, math.max(rcum - prevr, 0))
  d = d - pay
  owed = owed - pay
end
local bal = math.min(math.max(old + d, 0), burst)
owed = math.min(owed + math.max(-(math.min(math.max(old, 0), burst) + d), 0), burst)
if bal >= burst then owed = 0 end
local f = ARGV[2] .. ' ' .. string.format('%.0f', rcum) .. ' ' .. string.format('%.0f', owed)
if seq then f = f .. ' ' .. string.format('%.0f', seq) end
redis.call('HSET', KEYS[1], 'bal', string.format('%.0f', bal), ARGV[1], f)
-- Before the fields: a key of the fields of another type (another hand's)
-- fails the script there, after the balance was written.
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], string.format('%.0f', now), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - tonumber(ARGV[9])), 'LIMIT', 0, 8)
for _, f in ipairs(gone) do
  redis.call('HDEL', KEYS[1], f)
  redis.call('ZREM', KEYS[2], f)
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if old >= burst and bal < burst then
  redis.call('PUBLISH', ARGV[6], 'b ' .. ARGV[7] .. ' ' .. ARGV[8])
end
return bal
`)
