"""The leaderboards' Lua scripts: constants with their KEYS/ARGV contract, registered once per client.

Every script first checks the generation pointer (KEYS[1]) against the generation the caller built its keys
for, and answers {-1, current} when a rebuild swapped generations in between; the caller re-reads and retries.
Board keys are derived inside the scripts as ``base .. name`` (names as in keys.py); they carry the same hash
tag as the declared keys, so they hash to the same Redis Cluster slot.

Arithmetic: Redis Lua numbers are doubles. Points (< 2^21), ticks (< 2^32) and score magnitudes (< 2^53) are
integers below 2^53, so every +, * and comparison here is exact; numbers go back to Redis through
string.format('%d') / ('%.17g'), never tostring() (which rounds to 14 digits).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.commands.core import Script

from rewards.leaderboard.keys import MEMBER_DIGITS
from rewards.leaderboard.scores import MAX_POINTS

# Shared helpers; `s` (summary key), `base` (generation key base) and `m` (member) are set by each script.
_PRELUDE = """
local function num(f) return tonumber(redis.call('HGET', s, f)) end
local function boards(scope, d, el)
  if scope == 'at' then return {'at'} end
  local t = {'w:' .. scope}
  if el == '1' then t[#t + 1] = 'we:' .. scope end
  if d ~= '' then t[#t + 1] = 'dw:' .. scope .. ':' .. d end
  return t
end
local function score(p, r) return string.format('%.17g', -(p * 4294967296 + (4294967295 - r))) end
local function scopes()
  local out = {}
  for _, f in ipairs(redis.call('HKEYS', s)) do
    if string.sub(f, 1, 2) == 'p:' then out[#out + 1] = string.sub(f, 3) end
  end
  return out
end
local function unplace(scope, d, el)
  for _, name in ipairs(boards(scope, d, el)) do redis.call('ZREM', base .. name, m) end
end
local function place(scope, d, el, p, r)
  if not p then p, r = num('p:' .. scope) or 0, num('r:' .. scope) or 0 end
  for _, name in ipairs(boards(scope, d, el)) do
    if p > 0 then redis.call('ZADD', base .. name, score(p, r), m) else redis.call('ZREM', base .. name, m) end
    local u = tonumber(redis.call('HGET', reg, name))
    if not u or r > u then redis.call('HSET', reg, name, string.format('%d', r)) end
  end
end
"""

# KEYS[1] citizen summary (hash), base .. 'c:' .. member: the key base "{P:lb}:g:", the member, the generation
# pointer "{P:lb}:gen", the board registry base .. 'reg' and the boards base .. name are all spelled from it
# ARGV[1] "gen id points tick eligible week district": the generation the key is for, then the entry (eligible
# "1"/"0"; the district last, "" none: it may hold spaces)
# Returns 1 applied (the summary holds the citizen's profile), 2 applied (no profile in the summary yet), 0 already
# applied (replay), {-1, gen} generation moved; an error before any write when a total would exceed the exact range
# (MAX_POINTS). The summary's district/eligibility follow the latest applied entry. The generation's high-water mark
# (base .. 'hw') becomes max(mark, entry id), atomically with the apply.
# Cost: this runs once per ledger entry, one round trip each, so it is kept to what it must do. Every argument costs
# (the client encodes it, the server parses it into the ARGV table), hence one key and one string. The
# common case (profile unchanged) makes one redis.call per thing it must touch: GET generation, HMGET summary,
# HSET summary, HMGET registry, one ZADD/ZREM per board, HSET registry only for boards whose tick moved, and
# SET ... GET of the high-water mark (a second SET only when the mark was already higher). Numbers go out through
# string.format('%d') (integer formatting, exact below 2^53) or as the strings read. A district/eligibility move
# takes the general path of _PRELUDE.
APPLY = (
    (
        """
local s = KEYS[1]
local gen, id, delta, tick, el, week, d = string.match(ARGV[1], '^(%d+) (%d+) (%-?%d+) (%d+) ([01]) (%S+) (.*)$')
if not gen then return redis.error_reply('ERR malformed entry: ' .. ARGV[1]) end
local base, m = string.sub(s, 1, -(MEMBER_DIGITS + 3)), string.sub(s, -MEMBER_DIGITS)
local now = redis.call('GET', string.sub(base, 1, #base - #gen - 1) .. 'gen') or '0'
if now ~= gen then return {-1, now} end
local pwf, rwf = 'p:' .. week, 'r:' .. week
local cur = redis.call('HMGET', s, id, 'el', 'd', 'p:at', 'r:at', pwf, rwf, 'b')
if cur[1] then return 0 end
local reg, ts = base .. 'reg', tick
delta, tick = tonumber(delta), tonumber(tick)
local pa, pw = (tonumber(cur[4]) or 0) + delta, (tonumber(cur[6]) or 0) + delta
if pa > MAX_POINTS or pw > MAX_POINTS then
  local scope, p = 'at', pa
  if pa <= MAX_POINTS then scope, p = week, pw end
  return redis.error_reply('ERR score overflow: citizen ' .. m .. ' would reach ' .. string.format('%d', p)
    .. ' points in scope ' .. scope .. ', above the largest exactly rankable total ' .. MAX_POINTS)
end
-- reached ticks as numbers (ra, rw) and as the decimal strings stored (sa, sw): the one in the summary or ts
local ra, rw, sa, sw = tick, tick, ts, ts
if cur[5] and tonumber(cur[5]) >= tick then ra, sa = tonumber(cur[5]), cur[5] end
if cur[7] and tonumber(cur[7]) >= tick then rw, sw = tonumber(cur[7]), cur[7] end
local fmt = string.format
redis.call('HSET', s, 'd', d, 'el', el, id, '1', 'p:at', fmt('%d', pa), 'r:at', sa, pwf, fmt('%d', pw), rwf, sw)
local old_el, old_d = cur[2], cur[3] or ''
if old_el and (old_el ~= el or old_d ~= d) then  -- moved: every scope of the summary to the boards of the new profile
"""
        + _PRELUDE
        + """
  local all = scopes()
  for _, scope in ipairs(all) do unplace(scope, old_d, old_el) end
  for _, scope in ipairs(all) do place(scope, d, el) end
else  -- the common case: each board once, the registry read in one HMGET and written in at most one HSET
  local names = {'at', 'w:' .. week}
  if el == '1' then names[3] = 'we:' .. week end
  if d ~= '' then names[#names + 1] = 'dw:' .. week .. ':' .. d end
  local seen = redis.call('HMGET', reg, unpack(names))
  local score, r, sr = nil, ra, sa
  if pa > 0 then score = fmt('%d', -(pa * 4294967296 + (4294967295 - ra))) end
  local newer
  for i = 1, #names do
    if i == 2 then  -- the weekly boards share one score
      r, sr, score = rw, sw, nil
      if pw > 0 then score = fmt('%d', -(pw * 4294967296 + (4294967295 - rw))) end
    end
    if score then redis.call('ZADD', base .. names[i], score, m) else redis.call('ZREM', base .. names[i], m) end
    local u = seen[i]
    if u ~= sr and (not u or r > tonumber(u)) then  -- the registry keeps each board's newest tick
      newer = newer or {}
      newer[#newer + 1] = names[i]; newer[#newer + 1] = sr
    end
  end
  if newer then redis.call('HSET', reg, unpack(newer)) end
end
-- the high-water mark: SET ... GET answers the mark replaced, put back in the rare case it was higher (decimal
-- integers without leading zeros compare by length, then digit by digit)
local mark = redis.call('SET', base .. 'hw', id, 'GET')
if mark and (#mark > #id or (#mark == #id and mark > id)) then redis.call('SET', base .. 'hw', mark) end
if cur[8] then return 1 end
return 2
"""
    )
    .replace("MAX_POINTS", str(MAX_POINTS))
    .replace("MEMBER_DIGITS", str(MEMBER_DIGITS))
)

# KEYS[1] generation pointer  KEYS[2] citizen summary  KEYS[3] board registry  KEYS[4] openid -> member hash
# ARGV[1] generation  ARGV[2] key base  ARGV[3] member  ARGV[4] eligible "1"/"0"/"" (keep)
# ARGV[5] "1" to set the district to ARGV[6] ("" none), else keep it
# ARGV[7] "1" when the citizen's profile follows (then ARGV[4] and ARGV[5] are given too): ARGV[8] masked display
# name  ARGV[9] banned "1"/"0"  ARGV[10] openid. The profile is written (and the openid mapped) whether or not the
# citizen has points; a citizen without a summary yet gets one holding the profile only.
# Returns {1} moved or written, {0} nothing to do (no summary yet, or already so), {-1, gen} generation moved.
RESTATE = (
    """
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return {-1, gen} end
local s, reg, base, m = KEYS[2], KEYS[3], ARGV[2], ARGV[3]
"""
    + _PRELUDE
    + """
local old_el = redis.call('HGET', s, 'el')
if ARGV[7] == '1' then
  redis.call('HSET', s, 'n', ARGV[8], 'b', ARGV[9])
  redis.call('HSET', KEYS[4], ARGV[10], m)
  if not old_el then
    redis.call('HSET', s, 'el', ARGV[4], 'd', ARGV[6])
    return {1}
  end
elseif not old_el then
  return {0}
end
local old_d = redis.call('HGET', s, 'd') or ''
local el, d = old_el, old_d
if ARGV[4] ~= '' then el = ARGV[4] end
if ARGV[5] == '1' then d = ARGV[6] end
if el == old_el and d == old_d then return {0} end
local all = scopes()
for _, scope in ipairs(all) do unplace(scope, old_d, old_el) end
redis.call('HSET', s, 'd', d, 'el', el)
for _, scope in ipairs(all) do place(scope, d, el) end
return {1}
"""
)

# KEYS[1] generation pointer  KEYS[2] board  KEYS[3] eligible board of the week, or the board itself when there is
# none (all-time: eligibility is read from each summary)  KEYS[4] board registry
# ARGV[1] generation  ARGV[2] key base  ARGV[3] start  ARGV[4] stop  ARGV[5] board name  ARGV[6] "1" with KEYS[3]
# Returns {-1, gen} or {1, card, updated tick or '', {member, score, prize} ...} where prize is the 0-based rank on
# the eligible board, -1 not eligible, -2 eligible (board without prize ranks).
PAGE = """
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return {-1, gen} end
local rows = redis.call('ZRANGE', KEYS[2], ARGV[3], ARGV[4], 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local prize
  if ARGV[6] == '1' then
    prize = redis.call('ZRANK', KEYS[3], rows[i]) or -1
  elseif redis.call('HGET', ARGV[2] .. 'c:' .. rows[i], 'el') == '1' then
    prize = -2
  else
    prize = -1
  end
  out[#out + 1] = rows[i]; out[#out + 1] = rows[i + 1]; out[#out + 1] = prize
end
return {1, redis.call('ZCARD', KEYS[2]), redis.call('HGET', KEYS[4], ARGV[5]) or '', out}
"""

# KEYS[1] generation pointer  KEYS[2] weekly board  KEYS[3] weekly eligible board  KEYS[4] all-time board
# KEYS[5] citizen summary  KEYS[6] catch-up marker
# ARGV[1] generation  ARGV[2] member  ARGV[3] prize places  ARGV[4] neighbours on each side  ARGV[5] ISO week
# Returns {-1, gen}; {-2} while a rebuild is catching this generation up (keys.catchup_key); or
# {1, weekly, eligible, alltime, summary} with
#   weekly/alltime = {rank0 or -1, score or '', card, {above member, score ...}, {below member, score ...}}
#   eligible = {rank0 or -1, card, score of the last prize place or ''}
#   summary = {week points or '', all-time points or '', el or ''}
STANDING = """
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return {-1, gen} end
local catching = redis.call('GET', KEYS[6])
if catching and string.sub(catching, 1, #gen + 1) == gen .. ':' then return {-2} end
local m, n = ARGV[2], tonumber(ARGV[4])
local function around(key)
  local r = redis.call('ZRANK', key, m)
  local card = redis.call('ZCARD', key)
  if not r then return {-1, '', card, {}, {}} end
  local above = {}
  if r > 0 then above = redis.call('ZRANGE', key, math.max(0, r - n), r - 1, 'WITHSCORES') end
  local below = redis.call('ZRANGE', key, r + 1, r + n, 'WITHSCORES')
  return {r, redis.call('ZSCORE', key, m), card, above, below}
end
local places = tonumber(ARGV[3])
local last = redis.call('ZRANGE', KEYS[3], places - 1, places - 1, 'WITHSCORES')
local eligible = {redis.call('ZRANK', KEYS[3], m) or -1, redis.call('ZCARD', KEYS[3]), last[2] or ''}
local week = redis.call('HGET', KEYS[5], 'p:' .. ARGV[5]) or ''
local summary = {week, redis.call('HGET', KEYS[5], 'p:at') or '', redis.call('HGET', KEYS[5], 'el') or ''}
return {1, around(KEYS[2]), eligible, around(KEYS[4]), summary}
"""

# The standing of a citizen named by openid, with everything the answer shows, in one call.
# KEYS[1] generation pointer  KEYS[2] openid -> member hash  KEYS[3] weekly board  KEYS[4] weekly eligible board
# KEYS[5] all-time board  KEYS[6] catch-up marker
# ARGV[1] generation  ARGV[2] key base  ARGV[3] openid  ARGV[4] prize places  ARGV[5] neighbours on each side
# ARGV[6] ISO week
# Returns {-1, gen}; {-2} while a rebuild is catching this generation up; {0} when the openid is not mapped or the
# citizen has no profile yet (the caller asks SQL); or
# {1, member, profile, weekly, eligible, alltime} with
#   profile = {week points or '', all-time points or '', el, banned, masked name}
#   weekly/alltime = {rank0 or -1, score or '', card, {above member, score, name ...}, {below member, score, name ...}}
#     (name '' when that neighbour has no profile yet)
#   eligible = {rank0 or -1, card, score of the last prize place or ''}
# Scores are the strings Redis itself formats (exact integers below 2^53), never converted by Lua.
STANDING_OF = """
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return {-1, gen} end
local catching = redis.call('GET', KEYS[6])
if catching and string.sub(catching, 1, #gen + 1) == gen .. ':' then return {-2} end
local base = ARGV[2]
local m = redis.call('HGET', KEYS[2], ARGV[3])
if not m then return {0} end
local week = ARGV[6]
local p = redis.call('HMGET', base .. 'c:' .. m, 'b', 'el', 'n', 'p:' .. week, 'p:at')
if not p[1] then return {0} end
local n = tonumber(ARGV[5])
local function named(flat)
  local out = {}
  for i = 1, #flat, 2 do
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
    out[#out + 1] = redis.call('HGET', base .. 'c:' .. flat[i], 'n') or ''
  end
  return out
end
local function around(key)
  local r = redis.call('ZRANK', key, m)
  local card = redis.call('ZCARD', key)
  if not r then return {-1, '', card, {}, {}} end
  local above = {}
  if r > 0 then above = redis.call('ZRANGE', key, math.max(0, r - n), r - 1, 'WITHSCORES') end
  local below = redis.call('ZRANGE', key, r + 1, r + n, 'WITHSCORES')
  return {r, redis.call('ZSCORE', key, m), card, named(above), named(below)}
end
local places = tonumber(ARGV[4])
local last = redis.call('ZRANGE', KEYS[4], places - 1, places - 1, 'WITHSCORES')
local eligible = {redis.call('ZRANK', KEYS[4], m) or -1, redis.call('ZCARD', KEYS[4]), last[2] or ''}
local profile = {p[4] or '', p[5] or '', p[2] or '0', p[1], p[3] or ''}
return {1, m, profile, around(KEYS[3]), eligible, around(KEYS[5])}
"""

# KEYS[1] generation pointer  KEYS[2] shadow marker  KEYS[3] catch-up marker
# ARGV[1] the new generation  ARGV[2] the catch-up marker's value ("gen:after_id")
# Returns the previous generation ('0' when there was none). One SET: readers see the old or the new boards whole;
# the catch-up marker is set with it, so no standing is answered from the new boards before they are caught up.
SWAP = """
local old = redis.call('GET', KEYS[1]) or '0'
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return old
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA, reloaded automatically after a SCRIPT FLUSH/restart)."""

    apply: Script
    restate: Script
    page: Script
    standing: Script
    standing_of: Script
    swap: Script


def register(client: redis.Redis) -> Scripts:
    """Register every leaderboard script on a client."""
    return Scripts(
        apply=client.register_script(APPLY),
        restate=client.register_script(RESTATE),
        page=client.register_script(PAGE),
        standing=client.register_script(STANDING),
        standing_of=client.register_script(STANDING_OF),
        swap=client.register_script(SWAP),
    )
