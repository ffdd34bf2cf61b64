//! The Lua scripts: every mutation of the shared ledger is one of these,
//! run atomically by Redis. Times in leases are Redis `TIME` (one clock for
//! every host); times in snapshots are Keepa's `timestamp`.

use std::sync::LazyLock;

use redis::Script;

/// Helpers prepended to every script.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%d', n) end
-- Extends a key's TTL to at least `ms` (never shortens it).
local function touch(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 or (ttl >= 0 and ttl < ms) then redis.call('PEXPIRE', key, ms) end
end
"#;

/// KEYS: state, res, jobs. ARGV: owner, lease_ms, channel, state_ttl_ms,
/// mine (JSON `[{j, w?, p?}]`).
///
/// Drops expired leases; replaces this owner's published demands (keeping
/// their fair-queue position `v`), renewing their lease; publishes on the
/// channel only if they changed (so two processes never wake each other in
/// a loop); returns the state as JSON.
const LOAD: &str = r#"
local owner, lease, chan = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = now_ms()
local reserved, recheck = 0, nil
local r = redis.call('HGETALL', KEYS[2])
for i = 1, #r, 2 do
  local rec = cjson.decode(r[i + 1])
  local e = tonumber(rec.e)
  if e <= now then
    redis.call('HDEL', KEYS[2], r[i])
  else
    reserved = reserved + rec.a
    if rec.o ~= owner and (recheck == nil or e < recheck) then recheck = e end
  end
end
local mine = {}
for _, m in ipairs(cjson.decode(ARGV[5])) do mine[owner .. '|' .. fmt(m.j)] = m end
local changed = false
local others, own = {}, {}
local jobs = redis.call('HGETALL', KEYS[3])
for i = 1, #jobs, 2 do
  local f, raw = jobs[i], jobs[i + 1]
  local rec = cjson.decode(raw)
  local e = tonumber(rec.e)
  if rec.o == owner then
    local m = mine[f]
    mine[f] = nil
    local w, p = nil, nil
    if m then w, p = m.w, m.p end
    if w ~= rec.w or p ~= rec.p then changed = true end
    rec.w, rec.p, rec.e = w, p, fmt(now + lease)
    if rec.w == nil and rec.p == nil and rec.v == nil then
      redis.call('HDEL', KEYS[3], f)
    else
      local enc = cjson.encode(rec)
      redis.call('HSET', KEYS[3], f, enc)
      if rec.v ~= nil then table.insert(own, enc) end
    end
  elseif e <= now then
    redis.call('HDEL', KEYS[3], f)
  else
    table.insert(others, raw)
    if recheck == nil or e < recheck then recheck = e end
  end
end
for f, m in pairs(mine) do
  if m.w ~= nil or m.p ~= nil then
    changed = true
    redis.call('HSET', KEYS[3], f,
      cjson.encode({o = owner, j = m.j, e = fmt(now + lease), w = m.w, p = m.p}))
  end
end
touch(KEYS[3], lease)
if changed then redis.call('PUBLISH', chan, owner) end
local s = redis.call('HMGET', KEYS[1], 'ts', 'left', 'rin', 'rate', 'ver', 'sync', 'ftot', 'fobs', 'fgap')
local function f(x, d) if x then return x else return d end end
return '{"has":' .. (s[1] and 'true' or 'false')
  .. ',"ts":' .. f(s[1], '0') .. ',"left":' .. f(s[2], '0')
  .. ',"rin":' .. f(s[3], '0') .. ',"rate":' .. f(s[4], '0')
  .. ',"ver":' .. f(s[5], '0') .. ',"sync":' .. f(s[6], 'null')
  .. ',"ftot":' .. f(s[7], '0') .. ',"fobs":' .. f(s[8], '0') .. ',"fgap":' .. f(s[9], '0')
  .. ',"reserved":' .. fmt(reserved)
  .. ',"recheck":' .. (recheck and fmt(recheck - now) or 'null')
  .. ',"others":[' .. table.concat(others, ',') .. ']'
  .. ',"own":[' .. table.concat(own, ',') .. ']}'
"#;

/// KEYS: state, res, jobs. ARGV: owner, lease_ms, channel, state_ttl_ms,
/// expected version (-1: any), job, amount, vtime ('' for none).
///
/// Returns the new reservation id, or -1 if the version moved (nothing
/// written). The reservation is a lease: `e` = Redis time + lease.
const RESERVE: &str = r#"
local owner, lease = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
local expected = tonumber(ARGV[5])
if expected >= 0 and ver ~= expected then return -1 end
local id = redis.call('HINCRBY', KEYS[1], 'nid', 1)
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('HSET', KEYS[2], fmt(id), cjson.encode({o = owner, j = tonumber(ARGV[6]),
  a = tonumber(ARGV[7]), e = fmt(now + lease)}))
touch(KEYS[2], lease)
local f = owner .. '|' .. ARGV[6]
local raw = redis.call('HGET', KEYS[3], f)
local rec
if raw then rec = cjson.decode(raw) else rec = {o = owner, j = tonumber(ARGV[6])} end
rec.w = nil
if ARGV[8] ~= '' then rec.v = ARGV[8] end
rec.e = fmt(now + lease)
if rec.p == nil and rec.v == nil then
  redis.call('HDEL', KEYS[3], f)
else
  redis.call('HSET', KEYS[3], f, cjson.encode(rec))
  touch(KEYS[3], lease)
end
redis.call('PUBLISH', ARGV[3], owner)
return id
"#;

/// KEYS: state, res. ARGV: owner, lease_ms, channel, state_ttl_ms, kind
/// (observe|sync|charged|refused|timedout|unsent), id, consumed, at,
/// has snapshot (1/0), ts, left, refill_in, rate, cap kind (m|f), cap n.
///
/// The in-process `Ledger::observe`/`settle`, atomically: the newest
/// snapshot by (timestamp, next refill, lower balance) wins; the foreign
/// estimate counts what the server took beyond our own charges and open
/// reservations at an unchanged rate; timed-out reservations older than an adopted snapshot
/// leave; a settlement of an unknown id changes nothing. Returns 1 if a
/// snapshot was adopted.
const SETTLE: &str = r#"
local kind, id = ARGV[5], ARGV[6]
local function project(cur, t, cap)
  local nxt = cur.ts + cur.rin
  if t < nxt then return cur.left end
  local n = math.floor((t - nxt) / 60000) + 1
  if cur.left >= cap then return cap end
  return math.min(cur.left + cur.rate * n, cap)
end
local function adopt(own)
  local new = {ts = tonumber(ARGV[10]), left = tonumber(ARGV[11]),
               rin = tonumber(ARGV[12]), rate = tonumber(ARGV[13])}
  local c = redis.call('HMGET', KEYS[1], 'ts', 'left', 'rin', 'rate')
  local res = redis.call('HGETALL', KEYS[2])
  if c[1] then
    local cur = {ts = tonumber(c[1]), left = tonumber(c[2]), rin = tonumber(c[3]), rate = tonumber(c[4])}
    local a1, a2, a3 = new.ts, new.ts + new.rin, -new.left
    local b1, b2, b3 = cur.ts, cur.ts + cur.rin, -cur.left
    if not (a1 > b1 or (a1 == b1 and (a2 > b2 or (a2 == b2 and a3 > b3)))) then return 0 end
    if cur.rate == new.rate then
      local cap = tonumber(ARGV[15])
      if ARGV[14] == 'm' then cap = cap * cur.rate end
      -- Open reservations may already be charged in this snapshot: those
      -- in flight and timed-out ones it resolves (see Ledger::observe).
      local open = 0
      for i = 1, #res, 2 do
        local r = cjson.decode(res[i + 1])
        if (not r.t) or tonumber(r.t) < new.ts then open = open + r.a end
      end
      local gap = project(cur, new.ts, cap) - own - open - new.left
      if gap > 0 then
        redis.call('HINCRBY', KEYS[1], 'ftot', fmt(gap))
        local lg = tonumber(redis.call('HGET', KEYS[1], 'fgap') or '0')
        if gap > lg then redis.call('HSET', KEYS[1], 'fgap', fmt(gap)) end
      end
    end
    redis.call('HINCRBY', KEYS[1], 'fobs', fmt(new.ts - cur.ts))
  end
  redis.call('HSET', KEYS[1], 'ts', ARGV[10], 'left', ARGV[11], 'rin', ARGV[12], 'rate', ARGV[13])
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
  for i = 1, #res, 2 do
    local r = cjson.decode(res[i + 1])
    if r.t and tonumber(r.t) < new.ts then redis.call('HDEL', KEYS[2], res[i]) end
  end
  return 1
end
local out = 0
if kind == 'observe' then
  out = adopt(0)
elseif kind == 'sync' then
  redis.call('HSET', KEYS[1], 'sync', ARGV[8])
elseif kind == 'unsent' then
  redis.call('HDEL', KEYS[2], id)
elseif kind == 'timedout' then
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    local r = cjson.decode(raw)
    r.t = ARGV[8]
    redis.call('HSET', KEYS[2], id, cjson.encode(r))
  end
else
  if redis.call('HDEL', KEYS[2], id) == 0 then return 0 end
  if ARGV[9] == '1' then
    local own = 0
    if kind == 'charged' then own = tonumber(ARGV[7]) end
    out = adopt(own)
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4])) end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return out
"#;

/// KEYS: state, res, jobs, policy. ARGV: owner, lease_ms, state_ttl_ms.
///
/// Extends every live lease of `owner` (an expired one stays expired) and
/// the keys' TTLs. Returns how many leases it renewed.
const RENEW: &str = r#"
local owner, lease, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local n = 0
for _, k in ipairs({KEYS[2], KEYS[3]}) do
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    local r = cjson.decode(all[i + 1])
    if r.o == owner and tonumber(r.e) > now then
      r.e = fmt(now + lease)
      redis.call('HSET', k, all[i], cjson.encode(r))
      n = n + 1
    end
  end
  touch(k, lease)
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ttl) end
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], ttl) end
return n
"#;

/// KEYS: jobs. ARGV: owner, channel. Withdraws `owner`'s published demands
/// (a clean shutdown); its reservations stay until settled or expired.
const RELEASE: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local r = cjson.decode(all[i + 1])
  if r.o == ARGV[1] then redis.call('HDEL', KEYS[1], all[i]); n = n + 1 end
end
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return n
"#;

/// KEYS: policy. ARGV: spec JSON, ttl_ms, mode (replace|keep). `keep`
/// stores the spec only if none is stored; returns the spec in force.
const POLICY: &str = r#"
if ARGV[3] == 'replace' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
"#;

pub(super) struct Scripts {
    pub(super) load: Script,
    pub(super) reserve: Script,
    pub(super) settle: Script,
    pub(super) renew: Script,
    pub(super) release: Script,
    pub(super) policy: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let with = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
    Scripts {
        load: with(LOAD),
        reserve: with(RESERVE),
        settle: with(SETTLE),
        renew: with(RENEW),
        release: with(RELEASE),
        policy: Script::new(POLICY),
    }
});
