-- The Redis engine's script (src/engine/ngx_bayeux_engine_redis.c): every
-- operation is one call of it, atomic.  util/lua-to-c makes it a C string
-- when nginx is configured; the module loads it with SCRIPT LOAD and calls
-- it with EVALSHA, so a line number in a Redis error is this file's.
--
-- ARGV[1] names the operation, ARGV[2] is the key prefix, ARGV[3] the
-- lifetime of a session in milliseconds; an operation's own arguments
-- follow.  Keys are built here: a publish reaches keys named by set
-- members, which cannot be declared in advance; on a Redis Cluster they
-- all share the slot of the prefix, a hash tag ("{bayeux:}s:<id>").

local op, P, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ttl2 = 2 * ttl

-- On a Redis Cluster the prefix is a hash tag, declared as the script's
-- one key, and the workers' channels are in its slot: notifications go by
-- sharded pub/sub, which stays within the slot's shard.  A primary
-- without it (before Redis 7.0) is sent "<prefix>~" as the key, in the
-- same slot: PUBLISH, which the cluster carries to every node.
local declared = KEYS[1] or ''
local importing = string.sub(declared, -1) == '!'
local publish = (declared == P or declared == P .. '!') and 'SPUBLISH'
                or 'PUBLISH'

-- A node that imports the slot (the worker followed ASK, the key it
-- declares ends in "!") refuses a command on several keys when some of
-- them are missing: there they go one at a time.
local function count_existing(keys)
  if not importing then return redis.call('EXISTS', unpack(keys)) end
  local n = 0
  for _, k in ipairs(keys) do n = n + redis.call('EXISTS', k) end
  return n
end

local function delete(keys)
  if not importing then return redis.call('DEL', unpack(keys)) end
  for _, k in ipairs(keys) do redis.call('DEL', k) end
end

-- the most held subscriptions a publish through the publisher location
-- counts exactly (see "pu")
local held_counted = 1000

-- the copies unhold() queued in this call, one per message and session
-- let go: the operations that let sessions go ("cb", "tb", "up", "un")
-- report them, as a publish reports its own, for
-- bayeux_redis_messages_queued_total
local unheld_copies = 0

-- A session lives on: its hash for ttl, at every connect.  The keys that
-- hang off it get 2 x ttl, and are renewed only when the set of its
-- subscriptions has less than ttl left, so that most connects touch two
-- keys, not 3 + 2 per channel.  They outlive the hash all the same:
--
--   S:  at least ttl once this ran; "su" sets it to the hash's own PTTL;
--   c:  at least its subscribers' S: (set with them, and only raised);
--   q:  2 x ttl when a push creates it or messages are put back, and
--       taken whole by the connects and takes that renew the hash; where
--       it may keep messages ("q": the ack extension's, a parked
--       connect's), renewed with S: (or each time, without S:), so that
--       it outlives S: as S: outlives the hash.
--
-- What an expired session leaves is gone at most 2 x ttl later.
local function refresh(id, q)
  redis.call('PEXPIRE', P .. 's:' .. id, ttl)
  local subs = P .. 'S:' .. id
  local t = redis.call('PTTL', subs)
  if t >= ttl then return end
  if q then redis.call('PEXPIRE', P .. 'q:' .. id, ttl2) end
  if t == -2 then return end
  redis.call('PEXPIRE', subs, ttl2)
  for _, ch in ipairs(redis.call('SMEMBERS', subs)) do
    for _, k in ipairs({P .. 'c:' .. ch, P .. 'H:' .. ch}) do
      local left = redis.call('PTTL', k)
      if left ~= -2 and left < ttl2 then redis.call('PEXPIRE', k, ttl2) end
    end
  end
end

-- the whole queue, which goes away with its last message (LPOP with a
-- count: Redis 6.2); a count beyond the length takes what there is
local function take(q)
  return redis.call('LPOP', q, '2147483647') or {}
end

-- A session is found by the browser that handshook it, recorded in its
-- field "b"; browser '': by any (bayeux_trust_client_session on).
local function known(id, b)
  local s = P .. 's:' .. id
  if b == '' then return redis.call('EXISTS', s) == 1 end
  return redis.call('HGET', s, 'b') == b
end

-- A user's sessions: the set "u:<user>", renewed by their connects, and
-- cleaned of sessions that expired whenever it is read.
local function user_sessions(user)
  local u = P .. 'u:' .. user
  local live = {}
  for _, id in ipairs(redis.call('SMEMBERS', u)) do
    if redis.call('EXISTS', P .. 's:' .. id) == 1 then
      live[#live + 1] = id
    else
      redis.call('SREM', u, id)
    end
  end
  return live
end

-- The worker (channel w; '' or nil: none) of the connect parked with
-- token t is told that the session changed: it takes the connect's reply.
local function wake_parked(w, id, t)
  if w and w ~= '' then redis.call(publish, w, id .. ' ' .. t) end
end

-- A session ends (a disconnect, or its queue overflowed): the user's
-- set, the sweep's deadlines, its channels, its keys.  "st": its hash's
-- fields w, t, u.  Returns the user and 1 if it was the user's last.
local function finish(id, st)
  local s = P .. 's:' .. id
  wake_parked(st[1], id, st[2])
  local user, last = st[3] or '', 0
  if user ~= '' then
    redis.call('SREM', P .. 'u:' .. user, id)
    if #user_sessions(user) == 0 then last = 1 end
  end
  redis.call('ZREM', P .. 'X', id .. ' ' .. user)
  local subs = P .. 'S:' .. id
  for _, ch in ipairs(redis.call('SMEMBERS', subs)) do
    redis.call('SREM', P .. 'c:' .. ch, id)
    redis.call('SREM', P .. 'H:' .. ch, id)
  end
  delete({s, P .. 'q:' .. id, subs, P .. 'Z:' .. id, P .. 'O:' .. id})
  return user, last
end

-- The bounds of a session's queue, "<messages> <bytes>" (0: none), as
-- the operations that queue are given them.
local function limits(arg)
  local n, b = string.match(arg, '^(%d+) (%d+)$')
  return {n = tonumber(n), b = tonumber(b)}
end

-- Redis's clock (ms), read once per call of the script: an operation
-- happens at one time
local clock
local function now_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end

-- bayeux_max_inactivity: a session's last activity, "a" (ms of Redis's
-- clock), written only by the operations that count, and the period, "ia",
-- given at handshake; its connects check them.  "act", an operation's
-- argument: "s" its session is active (a message of its client), "d" the
-- sessions it queues a message for are (client_server), "" none.
local function mark(s, now)
  redis.call('HSET', s, 'a', now or now_ms())
end

local function inactive(a, ia)
  if not ia then return false end
  return now_ms() - tonumber(a) > tonumber(ia)
end

-- Adds an entry to worker channel w's list in "lists" (by channel), the
-- channels in "order" as they first come: one notification each.
local function add(lists, order, w, entry)
  local list = lists[w]
  if not list then
    list = {}
    lists[w] = list
    order[#order + 1] = w
  end
  list[#list + 1] = entry
end

-- A parked connect (worker channel w, token t) to notify, in "d".
local function wake(d, id, w, t)
  add(d.wake, d.workers, w, id .. ' ' .. t)
end

-- Lazy messages (bayeux_lazy_channel) wait in the queue as the others
-- do, without a notification.  The hash's field "z" is the time (ms)
-- they are due at while the queue holds only lazy messages (none: what
-- is queued is due); "L" holds the same deadlines by session, swept by
-- every worker ("lz").  A lazy message into an empty queue sets them;
-- one that is not lazy clears "z" and notifies as ever; a connect takes
-- what is due, and is held while it is not.  A deadline lives in Redis,
-- not in the worker that published: any worker's sweep delivers it, and
-- if none sweeps, the next connect finds it past.
local function lazy_wait(id, s, st, len, d)
  if d.due then
    if len == 1 then
      redis.call('HSET', s, 'z', d.due)
      redis.call('ZADD', P .. 'L', d.due, id)
      redis.call('PEXPIRE', P .. 'L', ttl2)
      return true
    end
    return st[4] and st[4] ~= ''
  end
  if st[4] and st[4] ~= '' then redis.call('HSET', s, 'z', '') end
  return false
end

-- A parked connect that acknowledged all it was given ("k") is given a
-- message that comes into its empty queue by the publish itself: the
-- message stays kept at the head of the queue as batch "ab" + 1, and the
-- notification carries it, so that the worker answers without a script
-- call of its own.  Lost on the way (the worker died, the connect went
-- away), it is given again by the session's next connect.
local function give_parked(d, id, s, st, msg)
  local batch = (tonumber(st[7] or '0') or 0) + 1
  redis.call('HSET', s, 'w', '', 't', '',
             'ak', batch .. ':1:' .. #msg .. ',', 'an', 1, 'ab', batch)
  add(d.give, d.givers, st[1], id .. ' ' .. st[2] .. ' ' .. batch)
end

-- Queues a message for a session that exists: its hash "s", the hash's
-- fields w, t, o, z, an, k, ab in "st" (receiver()), "lim" the queue's
-- bounds, "d.due" the deadline of a lazy message.  A queue that goes over
-- them is emptied and the session marked overflowed ("o"): nothing more
-- is queued for it, and its next connect (or the one it holds, woken)
-- ends it.  Those go into "full", the messages dropped are counted in
-- "dropped", worker channels to notify go into "wake" (per worker) and
-- "workers".
local function push(id, s, st, msg, lim, d)
  if st[3] == '1' then
    d.dropped = d.dropped + 1
    return
  end
  local q = P .. 'q:' .. id
  local len = redis.call('RPUSH', q, msg)
  local size = redis.call('HINCRBY', s, 'qb', #msg)
  d.queued = d.queued + 1
  if len == 1 then redis.call('PEXPIRE', q, ttl2) end
  local held = false
  if (lim.n > 0 and len > lim.n) or (lim.b > 0 and size > lim.b) then
    redis.call('DEL', q)
    redis.call('HSET', s, 'o', '1', 'qb', '0', 'ak', '', 'an', '0')
    d.full[#d.full + 1] = id
    d.dropped = d.dropped + len
  else
    d.n = d.n + 1
    -- the messages the ack extension keeps were given: not waiting
    held = lazy_wait(id, s, st, len - (tonumber(st[5] or '0') or 0), d)
    if d.now then mark(s, d.now) end
    if st[1] ~= '' and not held and st[6] == '1' and len == 1 then
      give_parked(d, id, s, st, msg)
      return
    end
  end
  if st[1] ~= '' and not held then wake(d, id, st[1], st[2]) end
end

-- A session a message may go to: its hash's name, and the fields push()
-- reads (none if it is gone).
local function receiver(id)
  local s = P .. 's:' .. id
  return s, redis.call('HMGET', s, 'w', 't', 'o', 'z', 'an', 'k', 'ab')
end

-- Notifications, one PUBLISH each to a worker's channel: "<id> <token>
-- ..." wakes its parked connects, "!<id> <token> <batch> ...\n<message>"
-- gives them the message.  Returns the receivers, the sessions that
-- overflowed, the messages dropped and the copies queued (the work per
-- subscriber that held sessions spare Redis).
local function notify(d, msg)
  for _, w in ipairs(d.workers) do
    redis.call(publish, w, table.concat(d.wake[w], ' '))
  end
  for _, w in ipairs(d.givers) do
    redis.call(publish, w, '!' .. table.concat(d.give[w], ' ') .. '\n'
               .. msg)
  end
  return {d.n, d.full, d.dropped, d.queued}
end

-- "lazy": the lazy timeout of a lazy message (ms), or ''; "act" of the
-- operation: "d", what it queues is its receivers' activity
local function deliveries(lazy, act)
  local d = {wake = {}, workers = {}, give = {}, givers = {}, full = {},
             n = 0, dropped = 0, queued = 0}
  if lazy and lazy ~= '' then d.due = now_ms() + tonumber(lazy) end
  if act and string.find(act, 'd', 1, true) then d.now = now_ms() end
  return d
end

-- Held sessions.  A connect that stays parked while its deliveries are
-- pushed (a websocket's) is held by its worker: the session leaves the
-- subscriber sets "c:<name>" for "H:<name>", and a publish to them costs
-- Redis no work per session: the message goes once into the log of the
-- channel (or pattern), "l:<name>", and once to every worker, on the
-- stream channel "N", and the workers deliver it to the sessions they
-- hold.  Every message has a sequence number, "n": Redis's clock in
-- microseconds, made to grow; the session's hash keeps, in "h", the last
-- one its worker is known to have given it (written when it is held, and
-- by the worker's refreshes).  When the worker lets the session go (the
-- hold is over, the client went away or sent a new connect, a message
-- the worker does not give itself came), it names the last message it
-- gave, and what was logged after it is queued as a publish would have
-- queued it: nothing is lost whichever way the hold ends.  A worker that
-- died lets nothing go: the session's next connect starts from how far
-- the worker wrote it gave the stream to all it held ("g:<worker
-- channel>", "wc"), or from "h".  So does the first connect of a session
-- held from its handshake by none (hold_unclaimed()).

-- the next sequence number, as text (exact: below 2^53)
local function next_seq()
  local n = P .. 'n'
  local seq = now_ms() * 1000
  local last = tonumber(redis.call('GET', n) or '0')
  if seq <= last then seq = last + 1 end
  local text = string.format('%.0f', seq)
  redis.call('SET', n, text, 'PX', ttl2)
  return text
end

-- A log entry: "<seq> <publisher> <lazy timeout> <act>\n<message>", '-'
-- for none (the publisher is named when it must not receive it).  Kept
-- for 2 x ttl, and at most "lim.n" (bayeux_max_queue) of them: a session
-- that missed more overflows.  "t:<name>" is the last sequence number
-- trimmed: a cursor before it missed messages.  The hash "T:<name>"
-- counts the entries trimmed, "k", and names the trim that made it, "c"
-- (it goes when no trim came for 2 x ttl, and "k" starts again).
local function log_append(name, seq, entry, lim)
  local l = P .. 'l:' .. name
  redis.call('ZADD', l, seq, entry)
  local cutoff = string.format('%.0f', (now_ms() - ttl2) * 1000)
  local trimmed
  local n = redis.call('ZREMRANGEBYSCORE', l, '-inf', '(' .. cutoff)
  if n > 0 then trimmed = cutoff end
  if lim.n > 0 then
    local over = redis.call('ZCARD', l) - lim.n
    if over > 0 then
      trimmed = redis.call('ZRANGE', l, over - 1, over - 1, 'WITHSCORES')[2]
      n = n + redis.call('ZREMRANGEBYRANK', l, 0, over - 1)
    end
  end
  if trimmed then
    redis.call('SET', P .. 't:' .. name, trimmed, 'PX', ttl2)
    local T = P .. 'T:' .. name
    if redis.call('HINCRBY', T, 'k', n) == n then
      redis.call('HSET', T, 'c', trimmed)
    end
    redis.call('PEXPIRE', T, ttl2)
  end
  redis.call('PEXPIRE', l, ttl2)
end

-- the fields of hash "key", by name, and how many there are
local function hash_fields(key)
  local flat, fields = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  return fields, #flat / 2
end

-- where a session held from "from" is in the log of channel "ch": from
-- its start ("Z:" fields "start") for a subscription made while held
local function held_from(start, ch, from)
  local at = tonumber(start[ch] or '')
  if at and at > from then return at end
  return from
end

-- Where a session held by none (its client went away, or has not
-- connected yet) is in the logs of channels "chans", "from" the sequence
-- number it is held from (a number, or one by channel): "O:<id>" keeps,
-- by channel, how many entries the log had up to there, how many it had
-- trimmed and since when ("T:"'s "k" and "c").  If the log trims past
-- where the session is, what it trimmed after that is known
-- (trimmed_after()): a session that missed more than the log keeps
-- counts all as dropped.
local function mark_positions(id, chans, from)
  local marks = {}
  for _, ch in ipairs(chans) do
    local at = type(from) == 'table' and from[ch] or from
    local t = redis.call('HMGET', P .. 'T:' .. ch, 'k', 'c')
    marks[#marks + 1] = ch
    marks[#marks + 1] = redis.call('ZCOUNT', P .. 'l:' .. ch, '-inf',
                                   string.format('%.0f', at))
                        .. ' ' .. (t[1] or '0') .. ' ' .. (t[2] or '-')
  end
  local O = P .. 'O:' .. id
  for i = 1, #marks, 1000 do
    redis.call('HSET', O, unpack(marks, i, math.min(i + 999, #marks)))
  end
  -- (no connect renews a session held by none: it lives ttl at most)
  if #marks > 0 then redis.call('PEXPIRE', O, ttl) end
end

-- how many entries the log of channel "ch" trimmed after the place
-- "mark" (its "O:" field) says: the trims since went first through the
-- entries it had up to there, the oldest
local function trimmed_after(ch, mark)
  local upto, k, c = string.match(mark, '^(%d+) (%d+) (%S+)$')
  local t = redis.call('HMGET', P .. 'T:' .. ch, 'k', 'c')
  local since = tonumber(t[1] or '0')
  if c == t[2] then since = since - tonumber(k) end
  return math.max(0, since - tonumber(upto))
end

-- "k" members of the held set H, drawn at random, are checked: the
-- sessions that expired while held (their worker died, or they never
-- connected) go as publishes and subscribes come, without a read of the
-- whole set
local function check_held(H, k)
  for _, id in ipairs(redis.call('SRANDMEMBER', H, k)) do
    if redis.call('EXISTS', P .. 's:' .. id) == 0 then
      redis.call('SREM', H, id)
    end
  end
end

-- moves the session from the subscriber sets "c:" of its subscriptions
-- ("subs" if the caller read them) to the held ones "H:" (unless it is
-- still there: "stayed"); returns its subscriptions and the sequence
-- number it is held from
local function held_sets(id, stayed, subs)
  subs = subs or redis.call('SMEMBERS', P .. 'S:' .. id)
  if not stayed then
    for _, ch in ipairs(subs) do
      local H = P .. 'H:' .. ch
      redis.call('SREM', P .. 'c:' .. ch, id)
      redis.call('SADD', H, id)
      if redis.call('PTTL', H) < ttl2 then
        redis.call('PEXPIRE', H, ttl2)
      end
    end
  end
  return subs, redis.call('GET', P .. 'n') or '0'
end

-- A session between its handshake and its first connect is held by no
-- worker (its "w" is ''): a publish logs what its subscriptions get, as
-- for a session whose worker died, and its first connect lets it go from
-- its "h" before anything else, so that it is given what it missed.
local function hold_unclaimed(id, s)
  local subs, seq = held_sets(id)
  redis.call('HSET', s, 'h', seq, 'hl', '', 'ha', '')
  mark_positions(id, subs, seq)
end

-- whether a session whose hash has "h" and "w" is held by no worker
-- (hold_unclaimed(): the only way a held session has no worker)
local function unclaimed(h, w)
  return h and h ~= '' and w == ''
end

-- The session held by the parked connect (worker channel w, token t):
-- its worker learns it, with the cursor, the ack extension's last batch,
-- the time left before bayeux_max_inactivity may end it and the period
-- ('-': none; the worker sends the connects after that time to the
-- script, which checks it; a message that counts as activity, "d",
-- makes it the period again) and the subscriptions, on its own channel,
-- after every message the cursor covers and before any that it does
-- not.  "subs" its subscriptions and "read" its hash's "ab", "a" and
-- "ia", if the caller has them; "from": where the batch the caller gives
-- begins in the logs ("ha"), if it gives one from there.  Returns the
-- sequence number it is held from.
local function hold_session(id, s, w, t, polling, stayed, subs, read,
                            from)
  local seq
  subs, seq = held_sets(id, stayed, subs)
  local st = read or redis.call('HMGET', s, 'ab', 'a', 'ia')
  local ab, left, period = st[1], '-', '-'
  if not ab or ab == '' then ab = '0' end
  if st[3] then
    left = string.format('%d', math.max(0, tonumber(st[3])
                                            - (now_ms() - tonumber(st[2]))))
    period = st[3]
  end
  redis.call('HSET', s, 'h', seq, 'hl', polling and '1' or '',
             'ha', from or '')
  redis.call(publish, w, 'h ' .. id .. ' ' .. t .. ' ' .. seq .. ' ' .. ab
             .. ' ' .. left .. ' ' .. period .. '\n'
             .. table.concat(subs, '\n'))
  return seq
end

-- bayeux_max_inactivity client_server: the messages a held session's
-- worker gave it, up to "upto", were its activity, which the worker did
-- not write.  The last one logged for its subscriptions tells when (a
-- message logged before a subscription is older than the subscribe,
-- which was activity too).
local function held_activity(s, subs, upto, a)
  local last = tonumber(a)
  for _, ch in ipairs(subs) do
    local e = redis.call('ZREVRANGEBYSCORE', P .. 'l:' .. ch,
                         string.format('%.0f', upto), '-inf', 'LIMIT', 0, 1)
    local seq, act = string.match(e[1] or '', '^(%d+) %S+ %S+ (%S+)\n')
    if act == 'd' and math.floor(tonumber(seq) / 1000) > last then
      last = math.floor(tonumber(seq) / 1000)
    end
  end
  if last > tonumber(a) then mark(s, last) end
end

-- The subscriptions of a held session changed: its worker (channel w,
-- the connect's token t) learns them all, on its own channel, after the
-- messages of the stream published before and before those after.
local function resubscribed(id, w, t)
  if w == '' then return end
  redis.call(publish, w, 's ' .. id .. ' ' .. t .. '\n'
             .. table.concat(redis.call('SMEMBERS', P .. 'S:' .. id), '\n'))
end

-- moves a session let go from the held sets "H:" of its subscriptions
-- "subs" to the subscriber sets "c:"
local function subscriber_sets(id, subs)
  for _, ch in ipairs(subs) do
    local c = P .. 'c:' .. ch
    redis.call('SREM', P .. 'H:' .. ch, id)
    redis.call('SADD', c, id)
    if redis.call('PTTL', c) < ttl2 then redis.call('PEXPIRE', c, ttl2) end
  end
end

-- A held session goes back into the subscriber sets "c:" of its
-- subscriptions "subs" (unless it is to be held again at once: "stay"):
-- what was logged for them after "from" (after its start, "Z:", for one
-- made while held), each message once, as {seq, entry}, and whether a
-- log was trimmed past where the session was: then how many entries
-- were trimmed after it, where "O:" tells (mark_positions()).
-- "starts_kept": "Z:" stays, for the session may be let go again from
-- "from" (a batch given from the logs, "ha").
local function release_held(id, s, subs, from, stay, starts_kept)
  local start, starts = hash_fields(P .. 'Z:' .. id)
  local O = P .. 'O:' .. id
  local mark, marks = hash_fields(O)
  local lost, entries, seen = false, {}, {}
  if not stay then subscriber_sets(id, subs) end
  for _, ch in ipairs(subs) do
    local after = held_from(start, ch, from)
    local trimmed = tonumber(redis.call('GET', P .. 't:' .. ch) or '0')
    if trimmed > after then
      lost = lost or 0
      if mark[ch] then lost = lost + trimmed_after(ch, mark[ch]) end
    end
    for _, e in ipairs(redis.call('ZRANGEBYSCORE', P .. 'l:' .. ch,
                                  '(' .. string.format('%.0f', after),
                                  '+inf')) do
      local seq = tonumber(string.match(e, '^(%d+)'))
      if not seen[seq] then
        seen[seq] = true
        entries[#entries + 1] = {seq, e}
      end
    end
  end
  redis.call('HSET', s, 'h', '', 'hl', '', 'ha', '')
  if not starts_kept and starts > 0 then
    redis.call('DEL', P .. 'Z:' .. id)
  end
  if marks > 0 then redis.call('DEL', O) end
  return entries, lost
end

-- how many log entries of "entries" (release_held()) were published by
-- another session than "id": those it is given
local function others(id, entries)
  local n = 0
  for _, e in ipairs(entries) do
    if string.match(e[2], '^%d+ (%S+)') ~= id then n = n + 1 end
  end
  return n
end

-- A session whose batches are a range of the logs ("ha" up to its "h"),
-- let go from "cur" ('': its worker named none): whether its worker saw
-- them acknowledged (it names "h" or later); then they are no longer
-- kept ("ak", "an")
local function range_acknowledged(s, cur, h)
  if cur == '' or tonumber(cur) < tonumber(h) then return false end
  redis.call('HSET', s, 'ak', '', 'an', '0')
  return true
end

-- Lets a held session go, its worker having given it the messages up to
-- "cur" ('': its hash's "h"): back into the subscriber sets, and what
-- was logged after "cur" queued ("Z:<id>" names the subscriptions made
-- while it was held, from the number they were made at).  "lim" the
-- queue's bounds.
--
-- A long-polling session whose connects acknowledge (the ack extension)
-- has, in "ha", where the batches its worker gave and "ak" lists begin:
-- they are the messages logged from there up to "h".  A worker that names
-- a message before "h" did not see them acknowledged, and one that names
-- none died: what was logged after "ha" is queued, the batches first,
-- kept as a connect that acknowledges keeps them, so that the next
-- connect's acknowledgement decides.  A worker that names "h" or later
-- saw its connect acknowledge them.  "stay": the caller holds the
-- session again before its script ends, so its sets are left as they
-- are.
--
-- "direct": the caller, a connect without acks that holds the session
-- again at once, gives what was logged itself, after the queue: it is
-- returned (the messages, in order, then the subscriptions), not queued,
-- and the sets stay, unless a message is lazy, the queue's bounds would
-- be passed, or batches wait for an acknowledgement ("ha"): then all is
-- as without it.  "direct" 'ack': the caller is a connect that
-- acknowledged every batch, which gives what was logged as its batch,
-- from "cur" (kept as "ha"): the same, if its queue holds only those
-- batches.  "read": the hash's fields below, if the caller has them.
local function unhold(id, s, cur, lim, stay, direct, read)
  -- (connect() builds "read" in this order)
  local st = read or redis.call('HMGET', s, 'h', 'o', 'z', 'an', 'k', 'ab',
                                'ha', 'a', 'ia', 'qb')
  if not st[1] or st[1] == '' then return end
  local subs = redis.call('SMEMBERS', P .. 'S:' .. id)
  if st[9] then
    held_activity(s, subs, math.max(tonumber(st[1]), tonumber(cur) or 0),
                  st[8])
  end
  if st[7] and st[7] ~= '' then
    if range_acknowledged(s, cur, st[1]) then st[4] = '0' else cur = st[7] end
  end
  if cur == '' then cur = st[1] end
  if direct ~= 'ack' then direct = direct and (not st[7] or st[7] == '') end
  local entries, lost = release_held(id, s, subs, tonumber(cur),
                                     stay or direct, direct == 'ack')
  if lost then
    if direct and not stay then subscriber_sets(id, subs) end
    -- it missed more than the log kept: what the logs and its queue
    -- still had is counted as dropped, and what was trimmed if a session
    -- held by none (not known for one whose worker could not keep up)
    local q = P .. 'q:' .. id
    local n = redis.call('LLEN', q) + others(id, entries) + lost
    redis.call('DEL', q)
    redis.call('HSET', s, 'o', '1', 'ol', '1', 'od', n, 'qb', '0')
    return
  end
  table.sort(entries, function(a, b) return a[1] < b[1] end)
  if direct then
    local given, bytes, queued = {}, tonumber(st[10] or '0') or 0, nil
    if direct == 'ack' then
      -- its queue may hold only the batches its connect drops ("an";
      -- none if they were in the logs, "ha": acknowledged above)
      local an = tonumber(st[4] or '') or 0
      if redis.call('LLEN', P .. 'q:' .. id) ~= an then given = nil end
      bytes, queued = 0, 0
    end
    for _, e in ipairs(given and entries or {}) do
      local pub, lazy, msg = string.match(e[2], '^%d+ (%S+) (%S+) %S+\n(.*)$')
      if pub and pub ~= id then
        if lazy ~= '-' then given = nil break end
        given[#given + 1] = msg
        bytes = bytes + #msg
      end
    end
    if given
       and (lim.n == 0
            or (queued or redis.call('LLEN', P .. 'q:' .. id)) + #given
               <= lim.n)
       and (lim.b == 0 or bytes <= lim.b)
    then
      return given, subs
    end
    if not stay then subscriber_sets(id, subs) end
  end
  -- queued as a publish queues, without a notification: the caller
  -- takes them, or a later wake does
  local rst = {'', '', st[2], st[3], st[4], st[5], st[6]}
  local full, dropped = false, 0
  for _, e in ipairs(entries) do
    local pub, lazy, act, msg =
      string.match(e[2], '^%d+ (%S+) (%S+) (%S+)\n(.*)$')
    if pub and pub ~= id then
      local d = deliveries()
      if lazy ~= '-' then
        d.due = math.floor(e[1] / 1000) + tonumber(lazy)
      end
      if act == 'd' then d.now = now_ms() end
      push(id, s, rst, msg, lim, d)
      unheld_copies = unheld_copies + d.queued
      if #d.full > 0 then full = true end
      dropped = dropped + d.dropped
      local now = redis.call('HMGET', s, 'o', 'z')
      rst[3], rst[4] = now[1], now[2]
    end
  end
  if full then
    -- no publish saw it overflow: its end tells ("ol" 2, "od" dropped)
    redis.call('HSET', s, 'ol', '2', 'od', dropped)
  end
end

-- handshake; ARGV: id, browser, grants (the protocol's text, kept in
-- "g"), user (kept in "u", and the session counted as the user's), "1"
-- if its end is watched for ("X", the sweep's: "id user" by deadline),
-- the inactivity period in ms ("0": none).  Returns {1, 1 if it is the
-- user's first session} or {0}: the id is taken.
if op == 'hs' then
  local id, user = ARGV[4], ARGV[7]
  local s = P .. 's:' .. id
  if redis.call('EXISTS', s) == 1 then return {0} end
  -- held by no worker until its first connect (hold_unclaimed(); it has
  -- no subscription yet)
  redis.call('HSET', s, 'c', '0', 'w', '', 't', '', 'o', '', 'b', ARGV[5],
             'g', ARGV[6], 'u', user, 'h', redis.call('GET', P .. 'n') or '0')
  if ARGV[9] ~= '0' then
    redis.call('HSET', s, 'a', now_ms(), 'ia', ARGV[9])
  end
  redis.call('PEXPIRE', s, ttl)
  local first = 0
  if user ~= '' then
    local u = P .. 'u:' .. user
    redis.call('SADD', u, id)
    if redis.call('PTTL', u) < ttl2 then redis.call('PEXPIRE', u, ttl2) end
    if #user_sessions(user) == 1 then first = 1 end
  end
  if ARGV[8] == '1' then
    redis.call('ZADD', P .. 'X', now_ms() + ttl, id .. ' ' .. user)
    redis.call('PEXPIRE', P .. 'X', ttl2)
  end
  return {1, first}
end

-- The sessions that expired, each told once, whichever worker of
-- whichever host sweeps; ARGV: the most to take.  A session still alive
-- gets its real deadline.  Returns id, user, 1 if it was the user's last
-- session, for each.
if op == 'sw' then
  local X, now, res = P .. 'X', now_ms(), {}
  local due = redis.call('ZRANGEBYSCORE', X, '-inf', now, 'LIMIT', 0,
                         tonumber(ARGV[4]))
  for _, m in ipairs(due) do
    local sp = string.find(m, ' ', 1, true)
    local id, user = string.sub(m, 1, sp - 1), string.sub(m, sp + 1)
    local left = redis.call('PTTL', P .. 's:' .. id)
    if left ~= -2 then
      if left < 0 then left = ttl end
      redis.call('ZADD', X, now + left, m)
      redis.call('PEXPIRE', X, ttl2)
    else
      redis.call('ZREM', X, m)
      local last = 0
      if user ~= '' then
        redis.call('SREM', P .. 'u:' .. user, id)
        if #user_sessions(user) == 0 then last = 1 end
      end
      res[#res + 1] = id
      res[#res + 1] = user
      res[#res + 1] = last
    end
  end
  return res
end

-- The ack extension: what a connect that acknowledges is given stays at
-- the head of its queue "q:<id>" until a later connect acknowledges it,
-- so that keeping it costs no copy.  The hash's "ak" lists the batches
-- kept, oldest first, as "<batch>:<messages>:<bytes>," each, "an" how
-- many messages they are, "ab" the last batch given; the kept messages
-- count against the queue's bounds as queued ones do ("qb").

-- the batches of "ak" after "acked": their text and messages; and how
-- many messages and bytes the others are
local function acked(ak, acked)
  local rest, n, gone, bytes = {}, 0, 0, 0
  for b, m, y in string.gmatch(ak or '', '(%d+):(%d+):(%d+),') do
    if tonumber(b) <= acked then
      gone = gone + tonumber(m)
      bytes = bytes + tonumber(y)
    else
      rest[#rest + 1] = b .. ':' .. m .. ':' .. y .. ','
      n = n + tonumber(m)
    end
  end
  return table.concat(rest), n, gone, bytes
end

-- Gives the whole queue: the "n" messages kept first, the others become
-- batch "last" + 1 after the kept ones ("ak").  Returns the messages,
-- the last batch and the new "ak".  "logged": the messages to give
-- instead, read from the logs (the queue then holds none).
local function give(id, n, ak, last, logged)
  local msgs = logged or redis.call('LRANGE', P .. 'q:' .. id, 0, -1)
  local batch = tonumber(last or '0') or 0
  if #msgs > n then
    local bytes = 0
    for i = n + 1, #msgs do bytes = bytes + #msgs[i] end
    batch = batch + 1
    ak = ak .. batch .. ':' .. (#msgs - n) .. ':' .. bytes .. ','
  end
  return msgs, batch, ak
end

-- A connect: its messages if there are any (or it must not be held),
-- otherwise it is parked with the worker channel and token given.  A
-- session whose queue overflowed ends: {-3, user, 1 if it was the
-- user's last session, "ol", "od"}: "ol" 1 if what it missed while held
-- was no longer logged, 2 if it overflowed as it was let go (and "od"
-- messages were dropped), 0 if a publish overflowed it.
--
-- A long-polling connect answered at once, its first, one given what
-- was queued (its session was let go: its connects go to other nginx
-- hosts or workers in turn) or one that must not wait ("4"), holds the
-- session between connects ({2, messages}, with the ack extension {2,
-- messages, batch, from}: the batch is what the logs hold for it after
-- "from", or if "from" is where it is held from, the head of its
-- queue), as a connect that parks would: its subscriptions
-- cost a publish nothing per session from then on, not only once a
-- connect finds nothing and parks.  "stayed": the session, let go by
-- this script, is still in the held sets; "given": what it was given
-- from the logs as it was let go (unhold()'s "direct"), after its
-- queue, "subs" its subscriptions and "read" its hash's fields (the
-- letting go changed only "h", "hl" and "ha", and "ak" and "an" with
-- "ha", which the caller updated).
local function connect(id, b, hold, w, t, ack, cur, lim, stayed, given,
                       subs, read)
  local s = P .. 's:' .. id
  local st = read or redis.call('HMGET', s, 'c', 'w', 't', 'o', 'b', 'u',
                                'z', 'an', 'ab', 'ak', 'a', 'ia', 'qb', 'h',
                                'ol', 'hl', 'od', 'k', 'ha')
  if not st[1] or (b ~= '' and st[5] ~= b) then return {-1} end
  if st[14] and st[14] ~= '' then
    -- held: let go first, from where the giving stopped: "cur", this
    -- worker's own, or how far its worker wrote it gave the stream
    -- ("wc"), for it gave every session it held up to there; a
    -- long-polling session's "h" is exact ("gv")
    if cur == '' and st[2] ~= '' and st[16] ~= '1' then
      local g = redis.call('GET', P .. 'g:' .. st[2])
      if g and tonumber(g) > tonumber(st[14]) then cur = g end
    end
    -- the first connect of a session held by none, long-polling, ends
    -- held or ends the session, or with the ack extension gives what it
    -- missed: its sets move once, if at all
    local stay = unclaimed(st[14], st[2]) and st[1] ~= '1'
                 and (hold == '3' or hold == '4')
    -- one that will be held again (no lazy messages wait, no
    -- bayeux_max_inactivity to check) is given what was logged without
    -- copies, if it may; with the ack extension, if it acknowledged
    -- every batch given ("ab"): what was logged after them is its batch
    local direct = (hold == '3' or hold == '4')
                   and st[4] ~= '1' and not st[12]
                   and (not st[7] or st[7] == '')
    if ack ~= '' then
      direct = direct and tonumber(ack) >= (tonumber(st[9] or '') or 0)
               and 'ack'
      if direct and (cur == '' or tonumber(cur) < tonumber(st[14])) then
        cur = st[14]
      end
    end
    -- unhold()'s fields, in its HMGET's order: h, o, z, an, k, ab, ha,
    -- a, ia, qb (built by hand: a lookup by name costs each connect)
    local given, subs = unhold(id, s, cur, lim, stay, direct,
                               {st[14], st[4], st[7], st[8], st[18], st[9],
                                st[19], st[11], st[12], st[13]})
    if given then
      -- what unhold() wrote to its hash: not read again (a batch the
      -- logs kept, "ha", was acknowledged: it let it go)
      if st[19] and st[19] ~= '' then st[8], st[10] = '0', '' end
      st[14], st[16], st[19] = '', '', ''
      return connect(id, b, hold, w, t, ack, cur, lim, true, given, subs,
                     st)
    end
    return connect(id, b, hold, w, t, ack, cur, lim, stay)
  end
  if st[4] == '1' then
    -- (its connect parked elsewhere, if any, is told by the PUBLISH)
    local user, last = finish(id, {st[2], st[3], st[6]})
    return {-3, user, last, tonumber(st[15] or '') or 0,
            tonumber(st[17] or '') or 0}
  end
  if inactive(st[11], st[12]) then
    local user, last = finish(id, {st[2], st[3], st[6]})
    return {-4, user, last}
  end
  if st[6] and st[6] ~= '' then
    local u = P .. 'u:' .. st[6]
    if redis.call('PTTL', u) < ttl then redis.call('PEXPIRE', u, ttl2) end
  end
  wake_parked(st[2], id, st[3])
  -- what is acknowledged goes; the size of the queue ("qb") is written
  -- with the hash's other fields below
  local q, ak, kept = P .. 'q:' .. id, st[10], 0
  local qb = tonumber(st[13] or '0') or 0
  if ack ~= '' and ak and ak ~= '' then
    local gone, bytes
    ak, kept, gone, bytes = acked(ak, tonumber(ack))
    if gone > 0 then
      redis.call('LTRIM', q, gone, -1)
      qb = qb - bytes
    end
  end
  -- only lazy messages wait, not yet due, and nothing is kept for an
  -- ack: held with them, as with none
  local z = tonumber(st[7] or '')
  if z and st[1] == '1' and hold ~= '0' and hold ~= '4' and z > now_ms()
     and kept == 0
     and (ack ~= '' or tonumber(st[8] or '0') == 0)
  then
    redis.call('HSET', s, 'w', w, 't', t, 'k', ack ~= '' and '1' or '',
               'ak', ak or '', 'an', kept, 'qb', qb)
    refresh(id)
    return {1}
  end
  if ack ~= '' then
    -- what it missed, given from the logs (after the batches it
    -- acknowledged, dropped above), is its batch: the messages logged
    -- after "cur" for its subscriptions ("from")
    local from = given and #given > 0 and cur or nil
    local msgs, batch
    msgs, batch, ak = give(id, kept, ak or '', st[9], from and given)
    if hold == '4' or (hold == '3' and (#msgs > 0 or st[1] ~= '1')) then
      -- held between connects as one without acks is; what it is given
      -- stays kept until a connect acknowledges it: in the logs after
      -- "from" ("ha") as its worker's batches are, or at the head of its
      -- queue ("ak", with "ha" empty), where its worker's next batch
      -- ("gv") drops it
      redis.call('HSET', s, 'c', '1', 'w', w, 't', t, 'k', '1', 'ak', ak,
                 'an', #msgs, 'ab', batch, 'z', '', 'qb', qb)
      -- (ab, a, ia)
      local seq = hold_session(id, s, w, t, true, stayed, subs,
                               {batch, st[11], st[12]}, from)
      refresh(id, #msgs > 0)
      return {2, msgs, batch, from or seq}
    end
    if stayed then
      -- not held while the batch it is given waits to be acknowledged
      subscriber_sets(id, redis.call('SMEMBERS', P .. 'S:' .. id))
    end
    if #msgs > 0 or st[1] ~= '1' or hold == '0' then
      -- the fields that keep their value are not written again
      if st[1] ~= '1' or st[2] ~= '' or st[3] ~= ''
         or (st[7] and st[7] ~= '')
      then
        redis.call('HSET', s, 'c', '1', 'w', '', 't', '', 'z', '')
      end
      redis.call('HSET', s, 'ak', ak, 'an', #msgs, 'ab', batch, 'qb', qb)
      refresh(id, #msgs > 0)
      return {0, msgs, batch}
    end
    redis.call('HSET', s, 'w', w, 't', t, 'k', '1', 'ak', '', 'an', '0',
               'z', '', 'qb', qb)
    if hold == '3' then hold_session(id, s, w, t, true) end
    refresh(id)
    return {1}
  end
  local msgs = take(q)
  for _, m in ipairs(given or {}) do msgs[#msgs + 1] = m end
  if tonumber(st[8] or '0') ~= 0 then
    -- it stopped acknowledging: what was kept is taken with the rest
    redis.call('HSET', s, 'ak', '', 'an', '0')
  end
  if hold == '4' or (hold == '3' and (st[1] ~= '1' or #msgs > 0)) then
    redis.call('HSET', s, 'c', '1', 'w', w, 't', t, 'k', '', 'qb', '0',
               'z', '')
    -- (ab, a, ia)
    hold_session(id, s, w, t, true, stayed, subs, {st[9], st[11], st[12]})
    refresh(id)
    return {2, msgs}
  end
  if #msgs > 0 or st[1] ~= '1' or hold == '0' then
    -- the hash is written only if it changes
    if st[1] ~= '1' or st[2] ~= '' or st[3] ~= '' or #msgs > 0 then
      redis.call('HSET', s, 'c', '1', 'w', '', 't', '', 'qb', '0', 'z', '')
    end
    refresh(id)
    return {0, msgs}
  end
  redis.call('HSET', s, 'w', w, 't', t, 'k', '')
  if hold == '2' or hold == '3' then
    hold_session(id, s, w, t, hold == '3', stayed)
  end
  refresh(id)
  return {1}
end

-- Takes the queue of a parked connect if it is still the one parked:
-- mode "w" (woken) leaves it parked when the queue is empty, "r"
-- (released) ends it in any case.
local function take_parked(id, w, t, mode, cur, lim)
  local s = P .. 's:' .. id
  local st = redis.call('HMGET', s, 'w', 't', 'o', 'u', 'k', 'ab', 'h', 'z',
                        'ol', 'od', 'an', 'ak')
  if not st[1] then return {-2} end
  if st[1] ~= w or st[2] ~= t then return {-1} end
  if st[7] and st[7] ~= '' then
    unhold(id, s, cur, lim)
    return take_parked(id, w, t, mode, cur, lim)
  end
  if st[3] == '1' then
    local user, last = finish(id, {'', '', st[4]})
    return {-3, user, last, tonumber(st[9] or '') or 0,
            tonumber(st[10] or '') or 0}
  end
  if st[5] == '1' then
    -- it acknowledged all it was given when it came: all is new, but
    -- for the batches its worker saw it acknowledge (kept by unhold()
    -- when an unsubscribe let the session go before the worker did)
    if tonumber(st[11] or '0') ~= 0 then
      local _, _, gone, bytes = acked(st[12], math.huge)
      redis.call('LTRIM', P .. 'q:' .. id, gone, -1)
      redis.call('HINCRBY', s, 'qb', -bytes)
    end
    local msgs, batch, ak = give(id, 0, '', st[6])
    if #msgs == 0 and mode == 'w' then return {1} end
    redis.call('HSET', s, 'w', '', 't', '', 'ak', ak, 'an', #msgs,
               'ab', batch, 'z', '')
    refresh(id, #msgs > 0)
    return {0, msgs, batch}
  end
  -- lazy messages not yet due (a held session's, let go) wait
  local z = tonumber(st[8] or '')
  if mode == 'w' and z and z > now_ms() then return {1} end
  local msgs = take(P .. 'q:' .. id)
  if #msgs == 0 and mode == 'w' then return {1} end
  redis.call('HSET', s, 'w', '', 't', '', 'qb', '0', 'z', '')
  refresh(id)
  return {0, msgs}
end

-- The connects of one event loop iteration in one call.  ARGV: worker
-- channel, queue bounds, then id, browser, hold (0, 1, 2: may be held,
-- 3: may be held between connects, a long-polling one's, 4: answered at
-- once, may be held between connects), token, the batch it acknowledges
-- ('': none) and, for a session this worker held, the last message it
-- gave ('': none) of each; returns the reply of each, in order: {-1}
-- unknown, {0, messages} ({0, messages, batch} if it acknowledges), {2,
-- messages} ({2, messages, batch, from}) answered and held between
-- connects, {1} parked; then the copies queued for the sessions let go,
-- if any (a number).
if op == 'cb' then
  local w, lim, res = ARGV[4], limits(ARGV[5]), {}
  for i = 6, #ARGV - 5, 6 do
    res[#res + 1] = connect(ARGV[i], ARGV[i + 1], ARGV[i + 2], w,
                            ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], lim)
  end
  if unheld_copies > 0 then res[#res + 1] = unheld_copies end
  return res
end

-- The parked connects named by one notification in one call.  ARGV:
-- worker channel, mode, queue bounds, then id, token and the last
-- message given to its held session ('': none) of each; returns the
-- reply of each, in order: {-2} unknown, {-1} superseded, {1} nothing,
-- {0, msgs} ({0, msgs, batch} for a connect that acknowledges), {-3,
-- user, last}: its queue overflowed, the session ended; then the copies
-- queued for the sessions let go, if any (a number).
if op == 'tb' then
  local w, mode, lim, res = ARGV[4], ARGV[5], limits(ARGV[6]), {}
  for i = 7, #ARGV - 2, 3 do
    res[#res + 1] = take_parked(ARGV[i], w, ARGV[i + 1], mode,
                                ARGV[i + 2], lim)
  end
  if unheld_copies > 0 then res[#res + 1] = unheld_copies end
  return res
end

-- A long-polling session held between its connects whose worker saw
-- more published for it than its queue holds ("missed" messages, the
-- last at "cur"): it ends as a full queue ends, at its next connect ("ol"
-- 2), with all it missed counted as dropped ("od"): those, the batch
-- its last reply gave if no connect acknowledged it ("unacked": the ack
-- extension's, in "ak"), and what was logged after "cur".  Back in the
-- subscriber sets, what is published next is dropped, and counted, as
-- for any full queue.  (A message trimmed from the logs before this runs
-- goes uncounted.)
local function overflow_held(id, s, cur, missed, unacked)
  local dropped = missed
  if unacked then
    local _, kept = acked(redis.call('HGET', s, 'ak'), 0)
    dropped = dropped + kept
  end
  local entries = release_held(id, s,
                               redis.call('SMEMBERS', P .. 'S:' .. id),
                               tonumber(cur))
  redis.call('DEL', P .. 'q:' .. id)
  redis.call('HSET', s, 'o', '1', 'ol', '2',
             'od', dropped + others(id, entries), 'qb', '0', 'ak', '',
             'an', '0')
end

-- A held session whose connect went away, its worker having given it the
-- messages up to "cur" ('': its "h"), stays held, by no worker: in the
-- held sets, so that a publish costs Redis no copy for it, as for a
-- session not yet connected (hold_unclaimed()); its next connect, on any
-- host, lets it go from there.  One whose connects acknowledge keeps the
-- batches the logs hold for it ("ha") unless "cur" shows them
-- acknowledged (range_acknowledged()).  A session not held is let go
-- as ever.
local function hold_by_none(id, s, cur, lim)
  local st = redis.call('HMGET', s, 'h', 'ha')
  if not st[1] or st[1] == '' then
    unhold(id, s, cur, lim)
    return
  end
  local h, ha = st[1], st[2] or ''
  if ha ~= '' then
    if range_acknowledged(s, cur, h) then h, ha = cur, '' end
  elseif cur ~= '' then
    h = cur
  end
  redis.call('HSET', s, 'h', h, 'hl', '', 'ha', ha)
  local start = hash_fields(P .. 'Z:' .. id)
  local subs, from = redis.call('SMEMBERS', P .. 'S:' .. id), {}
  for _, ch in ipairs(subs) do from[ch] = held_from(start, ch, tonumber(h)) end
  mark_positions(id, subs, from)
end

-- unpark: the connect went away; ARGV: id, worker channel, token, the
-- last message given to its held session ('': none), queue bounds, "0"
-- if the session's client has not come back since its last reply (it is
-- not kept alive: its lifetime runs from its worker's last renewal, at
-- most one refresh period after that reply), how many messages its
-- worker kept for it when they came to more than its queue holds ("0":
-- it did not; then the last one given is the last it saw), and "1" if
-- its last reply's batch is not acknowledged yet; returns the copies
-- queued for the session let go
if op == 'up' then
  local id = ARGV[4]
  local s = P .. 's:' .. id
  local st = redis.call('HMGET', s, 'w', 't')
  if st[1] == ARGV[5] and st[2] == ARGV[6] then
    if ARGV[10] ~= '0' then
      overflow_held(id, s, ARGV[7], tonumber(ARGV[10]), ARGV[11] == '1')
    else
      hold_by_none(id, s, ARGV[7], limits(ARGV[8]))
    end
    redis.call('HSET', s, 'w', '', 't', '')
    if ARGV[9] ~= '0' then refresh(id, true) end
  end
  return unheld_copies
end

-- A long-polling session held between its connects gets its messages
-- from its worker, which names, before the reply leaves, the last one
-- it gives: a connect elsewhere lets the session go from there, exactly.
-- A reply to a connect that acknowledges names its batch too, as "ak"
-- lists it: its messages are those after the last reply's ("ha"), which
-- the connect acknowledged (the worker gives to none that did not).
-- (The worker's refreshes, "rf", keep it alive.)
-- A reply gives what was published before its connect came: a message
-- Redis ran before this call, which the worker had not read from the
-- stream when it sent the call, may be for the session; then nothing is
-- written, and the worker reads the stream up to the last sequence
-- number, which the call returns, and sends the reply's "gv" again,
-- unchecked.  ARGV: worker channel, the last sequence number it read
-- ("seen"), then id, token, that message's number, the batch ('': none)
-- and '1' to check ('': not) of each reply; returns for each 1, 2 if
-- the worker must read the stream further first, -1 if the session is
-- no longer held by that connect (another took it over), -2 if it is
-- gone; then the last sequence number.

-- whether a log of the session's subscriptions holds a message after
-- both the last one the worker read and the reply's last ("upto"), up to
-- "head": one the reply may lack (after the reply's last too: a worker
-- whose link broke read nothing meanwhile, and what was published
-- meanwhile went to its sessions when they were held again)
local function lacks(id, seen, upto, head)
  local from = math.max(seen, tonumber(upto))
  if tonumber(head) <= from then return false end
  from = string.format('%.0f', from)
  for _, name in ipairs(redis.call('SMEMBERS', P .. 'S:' .. id)) do
    if redis.call('ZCOUNT', P .. 'l:' .. name, '(' .. from, head) > 0 then
      return true
    end
  end
  return false
end

if op == 'gv' then
  local w, seen, res = ARGV[4], tonumber(ARGV[5]), {}
  local head = redis.call('GET', P .. 'n') or '0'
  for i = 6, #ARGV - 4, 5 do
    local s = P .. 's:' .. ARGV[i]
    local st = redis.call('HMGET', s, 'w', 't', 'h')
    if not st[1] then
      res[#res + 1] = -2
    elseif st[1] ~= w or st[2] ~= ARGV[i + 1] or not st[3] or st[3] == ''
    then
      res[#res + 1] = -1
    elseif ARGV[i + 4] == '1' and lacks(ARGV[i], seen, ARGV[i + 2], head)
    then
      res[#res + 1] = 2
    elseif ARGV[i + 3] ~= '' then
      local b, n = string.match(ARGV[i + 3], '^(%d+):(%d+):')
      local kept = redis.call('HMGET', s, 'ha', 'an', 'ak')
      if kept[1] == '' and tonumber(kept[2] or '0') ~= 0 then
        -- the batches kept in its queue, given by the connect that held
        -- it: the worker gives only to a connect that acknowledged them
        local _, _, gone, bytes = acked(kept[3], math.huge)
        redis.call('LTRIM', P .. 'q:' .. ARGV[i], gone, -1)
        redis.call('HINCRBY', s, 'qb', -bytes)
      end
      redis.call('HSET', s, 'h', ARGV[i + 2], 'ha', st[3], 'ak', ARGV[i + 3],
                 'an', n, 'ab', b)
      res[#res + 1] = 1
    else
      redis.call('HSET', s, 'h', ARGV[i + 2])
      res[#res + 1] = 1
    end
  end
  res[#res + 1] = head
  return res
end

-- put back; ARGV: id, queue bounds, messages: back at the head, in
-- order (they were queued: they count again, over the bounds or not)
if op == 'pb' then
  local id = ARGV[4]
  local s = P .. 's:' .. id
  local st = redis.call('HMGET', s, 'w', 't', 'o')
  if not st[1] or st[3] == '1' then return 0 end
  local q = P .. 'q:' .. id
  local size = 0
  for i = #ARGV, 6, -1 do
    redis.call('LPUSH', q, ARGV[i])
    size = size + #ARGV[i]
  end
  redis.call('HINCRBY', s, 'qb', size)
  redis.call('HSET', s, 'z', '')
  redis.call('PEXPIRE', q, ttl2)
  wake_parked(st[1], id, st[2])
  return 1
end

-- subscribe; ARGV: id, browser, most subscriptions, act, channels.  All
-- are added, or none if the session would have too many (-2).
if op == 'su' then
  local id = ARGV[4]
  local s = P .. 's:' .. id
  if not known(id, ARGV[5]) then return -1 end
  if ARGV[7] == 's' then mark(s) end
  local t = redis.call('PTTL', s)
  if t == -2 then return -1 end
  if t < 0 then t = ttl end
  local subs = P .. 'S:' .. id
  local before = redis.call('SCARD', subs)
  local new, n = {}, before
  for i = 8, #ARGV do
    local ch = ARGV[i]
    if not new[ch] and redis.call('SISMEMBER', subs, ch) == 0 then
      new[ch] = true
      n = n + 1
    end
  end
  if n > tonumber(ARGV[6]) then return -2 end
  -- A held session stays held: its worker learns the new subscriptions
  -- (resubscribed()), in the stream's order; what was logged for them
  -- before now is not the session's, whoever lets it go ("Z:").  One
  -- not yet connected and with no earlier subscription has missed
  -- nothing: it is held from now, and needs no start per channel.
  local held = redis.call('HMGET', s, 'h', 'w', 't')
  local set, Z, starts, from = 'c:', P .. 'Z:' .. id, {}, nil
  if held[1] and held[1] ~= '' then
    set = 'H:'
    from = redis.call('GET', P .. 'n') or '0'
    if unclaimed(held[1], held[2]) then
      local chans = {}
      for ch in pairs(new) do chans[#chans + 1] = ch end
      mark_positions(id, chans, from)
      if before == 0 then
        redis.call('HSET', s, 'h', from)
        from = nil
      end
    end
  end
  local checked = set ~= 'H:'
  for i = 8, #ARGV do
    local ch = ARGV[i]
    local c = P .. set .. ch
    if not checked and new[ch] then
      -- two members checked per subscribe: the sessions that join and
      -- then expire unconnected do not come to outnumber the live ones
      check_held(c, 2)
      checked = true
    end
    redis.call('SADD', c, id)
    if redis.call('PTTL', c) < t then redis.call('PEXPIRE', c, t) end
    if from and new[ch] then
      starts[#starts + 1] = ch
      starts[#starts + 1] = from
    end
    redis.call('SADD', subs, ch)
  end
  for i = 1, #starts, 1000 do
    redis.call('HSET', Z, unpack(starts, i, math.min(i + 999, #starts)))
  end
  if #starts > 0 then redis.call('PEXPIRE', Z, ttl2) end
  redis.call('PEXPIRE', subs, t)
  if set == 'H:' then resubscribed(id, held[2], held[3]) end
  return 0
end

-- unsubscribe; ARGV: id, browser, queue bounds, act, channels; returns
-- -1 unknown, or {0, the copies queued for the session let go}
if op == 'un' then
  local id = ARGV[4]
  local s = P .. 's:' .. id
  if not known(id, ARGV[5]) then return -1 end
  if ARGV[7] == 's' then mark(s) end
  local held = redis.call('HMGET', s, 'h', 'w', 't', 'ha')
  local by_none = unclaimed(held[1], held[2])
  if (held[4] and held[4] ~= '') or by_none then
    -- batches given and not yet acknowledged, or what a session not yet
    -- connected missed, may hold messages of these channels: queued (and
    -- kept) now, before the log is read without them
    unhold(id, s, '', limits(ARGV[6]))
  end
  for i = 8, #ARGV do
    redis.call('SREM', P .. 'c:' .. ARGV[i], id)
    redis.call('SREM', P .. 'H:' .. ARGV[i], id)
    redis.call('SREM', P .. 'S:' .. id, ARGV[i])
    redis.call('HDEL', P .. 'Z:' .. id, ARGV[i])
    redis.call('HDEL', P .. 'O:' .. id, ARGV[i])
  end
  if by_none then
    -- held again by none, from now on, unless it overflowed
    if redis.call('HGET', s, 'o') ~= '1' then hold_unclaimed(id, s) end
  elseif held[1] and held[1] ~= '' then
    if held[4] and held[4] ~= '' then
      -- let go above: its worker learns it by the wake
      wake_parked(held[2], id, held[3])
    else
      -- still held: its worker stops giving it these, in order
      resubscribed(id, held[2], held[3])
    end
  end
  return {0, unheld_copies}
end

-- publish; ARGV: publisher ('': the server's; '-': a session of another
-- shard, checked there), its browser, broadcast to publisher (0 or 1),
-- queue bounds, message, lazy timeout ('': not lazy), act, the channel
-- and the patterns that match it.  Returns the number of receivers, the
-- sessions whose queue just overflowed, and the number of messages
-- dropped.
if op == 'pu' then
  local pub = ARGV[4]
  local own = pub ~= '' and pub ~= '-'
  if own and not known(pub, ARGV[5]) then return {-1} end
  local seen = {}
  if ARGV[6] == '0' then seen[pub] = true end
  local lim = limits(ARGV[7])
  local msg = ARGV[8]
  local d = deliveries(ARGV[9], ARGV[10])
  if own and string.find(ARGV[10], 's', 1, true) then
    mark(P .. 's:' .. pub, d.now)
  end
  -- The channel and its patterns (ARGV[11] on): most names have no
  -- subscriber, and in a steady fan-out every subscriber is held, so
  -- one EXISTS for the sets of those not held, and one for the held
  -- ones of the patterns, spare a call per name.
  local c, H, pat = {}, {}, {}
  for i = 11, #ARGV do
    c[#c + 1] = P .. 'c:' .. ARGV[i]
    H[i] = P .. 'H:' .. ARGV[i]
    if i > 11 then pat[#pat + 1] = H[i] end
  end
  if count_existing(c) > 0 then
    for _, set in ipairs(c) do
      for _, id in ipairs(redis.call('SMEMBERS', set)) do
        if not seen[id] then
          seen[id] = true
          local s, st = receiver(id)
          if not st[1] then
            redis.call('SREM', set, id)
          else
            push(id, s, st, msg, lim, d)
          end
        end
      end
    end
  end
  -- the held sessions: logged once, and given by their workers
  local seq, entry, held, total, keys = nil, nil, {}, 0, {}
  local patterns = #pat > 0 and count_existing(pat) > 0
  for i = 11, #ARGV do
    held[i] = (i == 11 or patterns) and redis.call('SCARD', H[i]) or 0
    total = total + held[i]
  end
  -- The publisher location answers with the count.  Up to
  -- held_counted held subscriptions it is exact: each session once,
  -- one whose hash is gone not counted (one EXISTS call).  Beyond, it
  -- is the held subscriptions reached, which reads none of them: a
  -- publish costs Redis the same whatever the audience.
  local exact = pub == '' and total <= held_counted
  for i = 11, #ARGV do
    if held[i] > 0 then
      if not seq then
        seq = next_seq()
        entry = seq .. ' ' .. ((ARGV[6] == '0' and pub ~= '') and pub or '-')
                .. ' ' .. (ARGV[9] ~= '' and ARGV[9] or '-') .. ' '
                .. (d.now and 'd' or '-') .. '\n' .. msg
      end
      log_append(ARGV[i], seq, entry, lim)
      check_held(H[i], 1)
      if exact then
        for _, id in ipairs(redis.call('SMEMBERS', H[i])) do
          if not seen[id] then
            seen[id] = true
            keys[#keys + 1] = P .. 's:' .. id
          end
        end
      else
        d.n = d.n + held[i]
      end
    end
  end
  if #keys > 0 then d.n = d.n + count_existing(keys) end
  if seq then redis.call(publish, P .. 'N', ARGV[11] .. '\n' .. entry) end
  return notify(d, msg)
end

-- deliver; ARGV: "c" and a session id, or "u" and a user; queue bounds,
-- message, lazy timeout ('': not lazy), act.  Returns as publish does,
-- {-1} for a session that is gone.
if op == 'dl' then
  local ids = {ARGV[5]}
  if ARGV[4] == 'u' then ids = user_sessions(ARGV[5]) end
  local lim, msg = limits(ARGV[6]), ARGV[7]
  local d = deliveries(ARGV[8], ARGV[9])
  for _, id in ipairs(ids) do
    local s, st = receiver(id)
    if st[1] then
      push(id, s, st, msg, lim, d)
    elseif ARGV[4] == 'c' then
      return {-1}
    end
  end
  return notify(d, msg)
end

-- The lazy deadlines that passed ("L"), each taken once whichever worker
-- sweeps: the connect parked for the session, if any, is notified.
-- ARGV: the most to take.  Returns how many were taken.
if op == 'lz' then
  local L, now = P .. 'L', now_ms()
  local due = redis.call('ZRANGEBYSCORE', L, '-inf', now, 'LIMIT', 0,
                         tonumber(ARGV[4]))
  local d = deliveries()
  for _, id in ipairs(due) do
    redis.call('ZREM', L, id)
    local s = P .. 's:' .. id
    local st = redis.call('HMGET', s, 'w', 't', 'z')
    local z = tonumber(st[3] or '')
    if z and z <= now then
      redis.call('HSET', s, 'z', '')
      if st[1] ~= '' then wake(d, id, st[1], st[2]) end
    end
  end
  notify(d)
  return #due
end

-- count; ARGV: "u" and a user (its sessions), or "c" and a channel (its
-- subscribers)
if op == 'cn' then
  if ARGV[4] == 'u' then return #user_sessions(ARGV[5]) end
  local n = 0
  for _, c in ipairs({P .. 'c:' .. ARGV[5], P .. 'H:' .. ARGV[5]}) do
    for _, id in ipairs(redis.call('SMEMBERS', c)) do
      if redis.call('EXISTS', P .. 's:' .. id) == 1 then
        n = n + 1
      else
        redis.call('SREM', c, id)
      end
    end
  end
  return n
end

-- disconnect; ARGV: id, browser
if op == 'dc' then
  local id = ARGV[4]
  local s = P .. 's:' .. id
  local st = redis.call('HMGET', s, 'w', 't', 'b', 'u')
  if not st[1] or (ARGV[5] ~= '' and st[3] ~= ARGV[5]) then
    return -1
  end
  local user, last = finish(id, {st[1], st[2], st[4]})
  return {0, user, last}
end

-- touch: is the session known, and what was it granted; ARGV: id,
-- browser, act
if op == 'to' then
  local st = redis.call('HMGET', P .. 's:' .. ARGV[4], 'b', 'g')
  if not st[1] or (ARGV[5] ~= '' and st[1] ~= ARGV[5]) then return {-1} end
  if ARGV[6] == 's' then mark(P .. 's:' .. ARGV[4]) end
  return {0, st[2] or ''}
end

-- given: worker channel, the last message of the stream it gave every
-- session it holds (those it did not give one to it lets go first)
if op == 'wc' then
  redis.call('SET', P .. 'g:' .. ARGV[4], ARGV[5], 'PX', ttl2)
  return 0
end

-- refresh; ARGV: worker channel, then id, token and the last message
-- given to its held session ('': none) of each connect it holds (or
-- held between connects, which renew their user's set as a connect does)
if op == 'rf' then
  local n = 0
  for i = 5, #ARGV - 2, 3 do
    local s = P .. 's:' .. ARGV[i]
    local st = redis.call('HMGET', s, 'w', 't', 'h', 'u')
    if st[1] == ARGV[4] and st[2] == ARGV[i + 1] then
      if ARGV[i + 2] ~= '' and st[3] and st[3] ~= '' then
        redis.call('HSET', s, 'h', ARGV[i + 2])
      end
      refresh(ARGV[i], true)
      if st[4] and st[4] ~= '' then
        local u = P .. 'u:' .. st[4]
        if redis.call('PTTL', u) < ttl then
          redis.call('PEXPIRE', u, ttl2)
        end
      end
      n = n + 1
    end
  end
  return n
end

return redis.error_reply('ERR unknown bayeux operation')
