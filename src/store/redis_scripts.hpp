// The Redis stores' Lua scripts (src/store/redis_store.cpp runs them): each
// touches the keys of one hash tag only, so it runs on one shard of a Redis
// Cluster. Internal: not installed.
#pragma once

namespace parley::redis_scripts {

// A group's keys, in this order, for the append, read and reset scripts:
// meta (hash: head, epoch, trimmed), log (stream: one entry per id, fields
// u, c, t, b, then k, to, re, mn, m, rm when not at their default), tomb
// (sorted set: the tombstones of erased entries, score = id, member =
// "id\nkind\nuser\ncid\nts\ntarget\nreply_to"), rx (set of the reactions in
// force, "id\nuser\nkey"), edits (hash: message id -> "edit id,edit id..."),
// and what unread counts need (decision 49): skip (sorted set of the ids no
// count includes: every entry of another kind than message, and deleted
// messages; score = member = id), own (sorted set, all scores 0, ordered by
// member: "user\n" .. id as 20 digits, for each message not deleted) and
// mn (the same for each user a message not deleted mentions, its author
// aside). A count is then a ZCOUNT and two ZLEXCOUNTs.
// A delete XDELs its message and the message's edits from the stream and
// adds their tombstones: the text leaves Redis (a stream cannot rewrite an
// entry in place).
// Folded reads need two more: rxz (sorted set, all scores 0, ordered by
// member: id as 20 digits .. "\n" .. key .. "\n" .. user, one per reaction in
// force, so a message's reactions are one ZRANGEBYLEX) and replies (hash:
// message id -> its replies not deleted). A group written before they
// existed gets them built once, by its first folded read (meta field fold;
// a group started by this version has it from its first append).

// ARGV: dedup key prefix, dedup ttl (s), messages to keep, cutoff time (ms;
// 0: none), n, then per request: its field count f (4 or 11), then user,
// cid, ts, body and, when f is 11, kind, target, reply_to, mentions joined
// by '\n', meta, remove 0/1, epoch of the named ids or 0. A plain message
// (every entry field at its default) sends only its first four.
// Returns {epoch, trimmed, outcome...}; an outcome is {id, 0} for a new
// entry, {id, 1, stream fields} for a duplicate (an erased original's
// tombstone as the read script gives it; {id, 1} if the original was trimmed
// away), {0, 2, found, kind, user, deleted,
// reacted} for a request the log's rules refused (what the rules saw: the
// C++ side turns it into the error, src/store/log_rules.hpp, whose rules
// this script applies too).
constexpr const char* kAppendLua = R"lua(
local meta, log, tomb, rx, edits = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local skip, own, mnz = KEYS[6], KEYS[7], KEYS[8]
local rxz, rpl = KEYS[9], KEYS[10]
local keep, cutoff, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local h = redis.call('HMGET', meta, 'head', 'epoch', 'trimmed')
local head, epoch, trimmed = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
if epoch == 0 then epoch = 1 end
local dpre = ARGV[1] .. epoch .. ':'
local out = {epoch, 0}
local function split(s)
  local parts = {}
  for p in string.gmatch(s .. '\n', '([^\n]*)\n') do parts[#parts + 1] = p end
  return parts
end
local function fields_of(f)
  local m = {}
  for j = 1, #f, 2 do m[f[j]] = f[j + 1] end
  return m
end
local function lex(user, id) return user .. '\n' .. string.format('%020d', id) end
-- Adds (ZADD) or removes (ZREM) a message's own and mention members; m:
-- its stream fields.
local function counted(cmd, id, m)
  if (m.k or '0') ~= '0' then return end
  local function one(key, user)
    if cmd == 'ZADD' then redis.call('ZADD', key, 0, lex(user, id)) else redis.call('ZREM', key, lex(user, id)) end
  end
  one(own, m.u)
  if m.mn then
    local seen = {}
    for _, x in ipairs(split(m.mn)) do
      if x ~= m.u and not seen[x] then
        seen[x] = true
        one(mnz, x)
      end
    end
  end
end
-- Entries that retention removes: their members go with them.
-- The bounds of a message's reactions in rxz.
local function rx_range(id) return '[' .. string.format('%020d', id) .. '\n', '(' .. string.format('%020d', id) .. '\v' end
local function forget(entries)
  for _, e in ipairs(entries) do
    local id = tonumber(string.match(e[1], '^(%d+)'))
    counted('ZREM', id, fields_of(e[2]))
    redis.call('HDEL', rpl, id)
    local lo, hi = rx_range(id)
    redis.call('ZREMRANGEBYLEX', rxz, lo, hi)
  end
end
-- What is stored at id: {kind, user, deleted}, or nil.
local function entry_at(id)
  if id < 1 or id > head then return nil end
  local e = redis.call('XRANGE', log, id .. '-1', id .. '-1')
  if e[1] then
    local m = fields_of(e[1][2])
    return {tonumber(m.k or '0'), m.u, false}
  end
  local t = redis.call('ZRANGEBYSCORE', tomb, id, id)
  if t[1] then
    local p = split(t[1])
    return {tonumber(p[2]), p[3], true}
  end
  return nil
end
-- Erases entry id: its stream entry becomes a tombstone, and no count
-- includes it any more.
local function erase(id)
  local e = redis.call('XRANGE', log, id .. '-1', id .. '-1')
  if not e[1] then return end
  local m = fields_of(e[1][2])
  counted('ZREM', id, m)
  if (m.k or '0') == '0' then
    if m.re and redis.call('HINCRBY', rpl, m.re, -1) <= 0 then redis.call('HDEL', rpl, m.re) end
    local lo, hi = rx_range(id)
    redis.call('ZREMRANGEBYLEX', rxz, lo, hi)
  end
  redis.call('ZADD', skip, id, id)
  redis.call('XDEL', log, id .. '-1')
  redis.call('ZADD', tomb, id, table.concat({id, m.k or '0', m.u, m.c, m.t, m.to or '0', m.re or '0'}, '\n'))
end
local a = 6
for i = 0, n - 1 do
  local f = tonumber(ARGV[a])
  local u, c, t, b = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local k, to, re, mn, m, rm, ep = 0, 0, 0, '', '', false, 0
  if f == 11 then
    k, to, re = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
    mn, m, rm, ep = ARGV[a + 8], ARGV[a + 9], ARGV[a + 10] == '1', tonumber(ARGV[a + 11])
  end
  a = a + 1 + f
  local dk, dup = nil, nil
  if c ~= '' then
    dk = dpre .. string.len(u) .. ':' .. u .. c
    dup = redis.call('GET', dk)
  end
  local named = to
  if k == 0 then named = re end
  local refused, seen, reacted = false, nil, false
  if not dup and named > 0 and ep ~= 0 and ep ~= epoch then
    refused = true  -- names an id of a reset epoch (the C++ side words it)
  elseif not dup and named > 0 then
    seen = entry_at(named)
    if k == 3 then reacted = redis.call('SISMEMBER', rx, named .. '\n' .. u .. '\n' .. b) == 1 end
    if not seen or seen[1] ~= 0 then
      refused = true
    elseif k ~= 0 then
      refused = seen[3] or ((k == 1 or k == 2) and seen[2] ~= u) or (k == 3 and rm ~= reacted)
    end
  end
  if dup then
    local e = redis.call('XRANGE', log, dup, dup)
    local erased = nil
    if not e[1] then erased = redis.call('ZRANGEBYSCORE', tomb, dup, dup)[1] end
    if e[1] then
      out[#out + 1] = {tonumber(dup), 1, e[1][2]}
    elseif erased then
      local p = split(erased)
      out[#out + 1] = {tonumber(dup), 1, {'u', p[3], 'c', p[4], 't', p[5], 'b', '', 'k', p[2], 'to', p[6],
                                          're', p[7], 'del', '1'}}
    else
      out[#out + 1] = {tonumber(dup), 1}
    end
  elseif refused then
    if seen then
      out[#out + 1] = {0, 2, 1, seen[1], seen[2], seen[3] and 1 or 0, reacted and 1 or 0}
    else
      out[#out + 1] = {0, 2, 0, 0, '', 0, reacted and 1 or 0}
    end
  else
    head = head + 1
    local f = {'u', u, 'c', c, 't', t, 'b', b}
    if k ~= 0 then f[#f + 1] = 'k'; f[#f + 1] = k end
    if to > 0 then f[#f + 1] = 'to'; f[#f + 1] = to end
    if re > 0 then f[#f + 1] = 're'; f[#f + 1] = re end
    if mn ~= '' then f[#f + 1] = 'mn'; f[#f + 1] = mn end
    if m ~= '' then f[#f + 1] = 'm'; f[#f + 1] = m end
    if rm then f[#f + 1] = 'rm'; f[#f + 1] = '1' end
    redis.call('XADD', log, head .. '-1', unpack(f))
    if k == 0 then
      counted('ZADD', head, {u = u, mn = mn ~= '' and mn or nil})
      if re > 0 then redis.call('HINCRBY', rpl, re, 1) end
    else
      redis.call('ZADD', skip, head, head)
    end
    if dk then redis.call('SET', dk, head, 'EX', ARGV[2]) end
    if k == 1 then
      local prev = redis.call('HGET', edits, to)
      redis.call('HSET', edits, to, prev and (prev .. ',' .. head) or tostring(head))
    elseif k == 2 then
      erase(to)
      local ids = redis.call('HGET', edits, to)
      if ids then
        for id in string.gmatch(ids, '%d+') do erase(tonumber(id)) end
        redis.call('HDEL', edits, to)
      end
    elseif k == 3 then
      local key = to .. '\n' .. u .. '\n' .. b
      if rm then redis.call('SREM', rx, key) else redis.call('SADD', rx, key) end
      local z = string.format('%020d', to) .. '\n' .. b .. '\n' .. u
      if rm then redis.call('ZREM', rxz, z) else redis.call('ZADD', rxz, 0, z) end
    end
    out[#out + 1] = {head, 0}
  end
end
local cut = 0
if keep > 0 then
  local over = redis.call('XLEN', log) - keep
  if over > 0 then
    local gone = redis.call('XRANGE', log, '-', '+', 'COUNT', over)
    forget(gone)
    cut = cut + redis.call('XTRIM', log, 'MINID', (tonumber(string.match(gone[#gone][1], '^(%d+)')) + 1) .. '-0')
  end
end
if cutoff > 0 then
  for _ = 1, 1000 do
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 100)
    local keep_from = nil
    for _, e in ipairs(first) do
      if tonumber(e[2][6]) >= cutoff then keep_from = e[1]; break end
    end
    local gone = {}
    for _, e in ipairs(first) do
      if e[1] == keep_from then break end
      gone[#gone + 1] = e
    end
    if keep_from == nil then
      if #first == 0 then break end
      keep_from = (tonumber(string.match(first[#first][1], '^(%d+)')) + 1) .. '-0'
    end
    forget(gone)
    local c = redis.call('XTRIM', log, 'MINID', keep_from)
    cut = cut + c
    if c < 100 then break end
  end
end
if cut > 0 then
  local f = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
  if f[1] then trimmed = tonumber(string.match(f[1][1], '^(%d+)')) - 1 else trimmed = head end
  -- Tombstones below the stream's first entry go with it (a deleted message
  -- right at the retention edge counts as trimmed).
  redis.call('ZREMRANGEBYSCORE', tomb, '-inf', trimmed)
  redis.call('ZREMRANGEBYSCORE', skip, '-inf', trimmed)
end
redis.call('HSET', meta, 'head', head, 'epoch', epoch, 'trimmed', trimmed)
-- A group this version starts keeps rxz and replies from its first entry.
if not h[2] then redis.call('HSET', meta, 'fold', 1) end
out[2] = trimmed
return out
)lua";

// KEYS: meta, log, tomb, and for a folded read rx, edits, rxz, replies.
// ARGV: after, limit, and for a folded read the reader. Returns {epoch,
// head, trimmed, entries}: the stream's entries in (after, after + limit],
// with each erased id's tombstone in its place as {"id-1", {u, user, c, cid,
// t, ts, b, "", k, kind, to, target, re, reply_to, del, 1}}; a folded read
// adds folds, {id, latest edit id, its text, replies, reactions as
// "id\nkey\nuser"...} for each message of the range not deleted that has
// any of them.
constexpr const char* kReadLua = R"lua(
local h = redis.call('HMGET', KEYS[1], 'head', 'epoch', 'trimmed', 'fold')
local head, epoch, trimmed = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
local after = tonumber(ARGV[1])
local folded = ARGV[3] ~= nil
if after >= head or after < trimmed then
  if folded then return {epoch, head, trimmed, {}, {}} end
  return {epoch, head, trimmed, {}}
end
local last = math.min(head, after + tonumber(ARGV[2]))
local entries = redis.call('XRANGE', KEYS[2], (after + 1) .. '-1', last .. '-1')
local tombs = redis.call('ZRANGEBYSCORE', KEYS[3], after + 1, last)
local out, i = {}, 1
for _, t in ipairs(tombs) do
  local p = {}
  for x in string.gmatch(t .. '\n', '([^\n]*)\n') do p[#p + 1] = x end
  local id = tonumber(p[1])
  while entries[i] and tonumber(string.match(entries[i][1], '^(%d+)')) < id do
    out[#out + 1] = entries[i]
    i = i + 1
  end
  out[#out + 1] = {id .. '-1', {'u', p[3], 'c', p[4], 't', p[5], 'b', '', 'k', p[2], 'to', p[6], 're', p[7],
                                'del', '1'}}
end
while entries[i] do
  out[#out + 1] = entries[i]
  i = i + 1
end
if not folded then return {epoch, head, trimmed, out} end
local log, rx, edits, rxz, rpl = KEYS[2], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local function fields_of(f)
  local m = {}
  for j = 1, #f, 2 do m[f[j]] = f[j + 1] end
  return m
end
if h[4] ~= '1' then  -- built once for a group written before folded reads existed
  redis.call('DEL', rxz, rpl)
  for _, r in ipairs(redis.call('SMEMBERS', rx)) do  -- "id\nuser\nkey"
    local id, u, key = string.match(r, '^(%d+)\n([^\n]*)\n(.*)$')
    redis.call('ZADD', rxz, 0, string.format('%020d', tonumber(id)) .. '\n' .. key .. '\n' .. u)
  end
  local from = '-'
  repeat
    local batch = redis.call('XRANGE', log, from, '+', 'COUNT', 1000)
    for _, e in ipairs(batch) do
      local f = fields_of(e[2])
      if (f.k or '0') == '0' and f.re then redis.call('HINCRBY', rpl, f.re, 1) end
    end
    if #batch > 0 then from = '(' .. batch[#batch][1] end
  until #batch < 1000
  redis.call('HSET', KEYS[1], 'fold', 1)
end
local folds = {}
for _, e in ipairs(out) do
  local f = fields_of(e[2])
  if (f.k or '0') == '0' and not f.del then
    local id = tonumber(string.match(e[1], '^(%d+)'))
    local ed, text = 0, ''
    local ids = redis.call('HGET', edits, id)
    if ids then
      ed = tonumber(string.match(ids, '(%d+)$'))
      local x = redis.call('XRANGE', log, ed .. '-1', ed .. '-1')
      if x[1] then text = fields_of(x[1][2]).b end
    end
    local p = string.format('%020d', id)
    local rs = redis.call('ZRANGEBYLEX', rxz, '[' .. p .. '\n', '(' .. p .. '\v')
    local nr = tonumber(redis.call('HGET', rpl, id) or '0')
    if ed > 0 or #rs > 0 or nr > 0 then folds[#folds + 1] = {id, ed, text, nr, rs} end
  end
end
return {epoch, head, trimmed, out, folds}
)lua";

// KEYS: as the append script's. Returns the new epoch.
constexpr const char* kResetLua = R"lua(
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') + 1
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
redis.call('HSET', KEYS[1], 'head', 0, 'epoch', epoch, 'trimmed', 0, 'fold', 1)
return epoch
)lua";

// KEYS: info, members. ARGV: owner, kind, title, topic, member limit.
// Returns 0 if the group exists.
constexpr const char* kCreateGroupLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'kind', ARGV[2], 'title', ARGV[3], 'topic', ARGV[4],
           'limit', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], 2)
return 1
)lua";

// KEYS: info, members, invites. ARGV: user, role. Returns 0 if no such
// group. A member's invite is spent.
constexpr const char* kAddMemberLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
)lua";

// KEYS: info. ARGV: kind, title, topic, member limit. Returns 0 if no such
// group.
constexpr const char* kSetSettingsLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'title', ARGV[2], 'topic', ARGV[3], 'limit', ARGV[4])
return 1
)lua";

// KEYS: info, members, invites. ARGV: user. Returns 0 if no such group; a
// member is not invited.
constexpr const char* kInviteLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1
)lua";

// KEYS: info, members, invites. ARGV: user, admission (0 asked, 1
// admitted). The group's join rules (log_rules.hpp, join_refusal), at
// once: {-1} no such group; {role} a member already; {0} joined now (its
// invite spent); {-2, kind, limit, members, invited} refused (the caller
// says why from these).
constexpr const char* kJoinLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local role = redis.call('HGET', KEYS[2], ARGV[1])
if role then return {tonumber(role)} end
local s = redis.call('HMGET', KEYS[1], 'kind', 'limit')
local kind = tonumber(s[1] or '0') or 0
local limit = tonumber(s[2] or '0') or 0
local count = redis.call('HLEN', KEYS[2])
local invited = redis.call('SISMEMBER', KEYS[3], ARGV[1])
if (kind == 1 and ARGV[2] == '0' and invited == 0) or (limit > 0 and count >= limit) then
  return {-2, kind, limit, count, invited}
end
redis.call('HSET', KEYS[2], ARGV[1], 1)
redis.call('SREM', KEYS[3], ARGV[1])
return {0}
)lua";

// KEYS: info, members. Returns false if no such group, else HGETALL.
constexpr const char* kMembersLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HGETALL', KEYS[2])
)lua";

// KEYS: a user's nodes (zset), the user's presence (hash). ARGV: now.
// Returns {node, status-or-false, ...} for the unexpired nodes.
constexpr const char* kPresenceLua = R"lua(
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local out = {}
for _, node in ipairs(nodes) do
  out[#out + 1] = node
  out[#out + 1] = redis.call('HGET', KEYS[2], node)
end
return out
)lua";

// KEYS: members, reads. ARGV: user, epoch, id. Moves the user's read
// position ("epoch:id" in the reads hash) forward only; returns {epoch, id}
// in force afterwards, or false if the user is not a member. With no ARGV[2]
// it only reads.
constexpr const char* kReadPositionLua = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
local at = redis.call('HGET', KEYS[2], ARGV[1])
local e, i = 0, 0
if at then
  local p = string.find(at, ':', 1, true)
  e, i = tonumber(string.sub(at, 1, p - 1)), tonumber(string.sub(at, p + 1))
end
if ARGV[2] then
  local te, ti = tonumber(ARGV[2]), tonumber(ARGV[3])
  if te > e or (te == e and ti > i) then
    e, i = te, ti
    redis.call('HSET', KEYS[2], ARGV[1], e .. ':' .. i)
  end
end
return {e, i}
)lua";

// KEYS: members, notify. ARGV: user, level (0 all, 1 mentions, 2 none).
// Sets a member's notification level (the notify hash holds only levels
// other than all); returns 0 if the user is not a member.
constexpr const char* kSetNotifyLua = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
)lua";

// KEYS: members, notify. ARGV: users. Each user's level in order: 2 (none)
// for a non-member, else its own or 0 (all).
constexpr const char* kNotifyLevelsLua = R"lua(
local out = {}
for i, u in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[1], u) == 0 then
    out[i] = 2
  else
    out[i] = tonumber(redis.call('HGET', KEYS[2], u) or '0')
  end
end
return out
)lua";

// KEYS: meta, skip, own, mn. ARGV: user, epoch and id of the user's read
// position. Returns {epoch, head, trimmed, skipped, own, mentions}: the
// counts over (after, head], where after is the position's id in this epoch
// (else 0), at most head, at least trimmed (UnreadCount; the C++ side works
// out the same `after` and unread = head - after - skipped - own).
constexpr const char* kUnreadLua = R"lua(
local h = redis.call('HMGET', KEYS[1], 'head', 'epoch', 'trimmed')
local head, epoch, trimmed = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
local after = 0
if tonumber(ARGV[2]) == epoch then after = math.min(tonumber(ARGV[3]), head) end
after = math.max(after, trimmed)
if after >= head then return {epoch, head, trimmed, 0, 0, 0} end
local function lex(id) return ARGV[1] .. '\n' .. string.format('%020d', id) end
return {epoch, head, trimmed, redis.call('ZCOUNT', KEYS[2], '(' .. after, head),
        redis.call('ZLEXCOUNT', KEYS[3], '(' .. lex(after), '[' .. lex(head)),
        redis.call('ZLEXCOUNT', KEYS[4], '(' .. lex(after), '[' .. lex(head))}
)lua";

}  // namespace parley::redis_scripts
