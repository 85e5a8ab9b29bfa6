// The Redis stores' Lua scripts (src/store/redis_store.cpp runs them): each
// touches the keys of one hash tag only, so it runs on one shard of a Redis
// Cluster. Internal: not installed.
#pragma once

namespace parley::redis_scripts {

// KEYS: meta, log. ARGV: dedup key prefix, dedup ttl (s), messages to keep,
// cutoff time (ms; 0: none), n, then n x (user, cid, ts, body).
// Returns {epoch, trimmed, outcome...}; an outcome is {id, 0} for a new
// message, {id, 1, user, cid, ts, body} for a duplicate ({id, 1} if the
// original was trimmed away).
constexpr const char* kAppendLua = R"lua(
local meta, log = KEYS[1], KEYS[2]
local keep, cutoff, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local h = redis.call('HMGET', meta, 'head', 'epoch', 'trimmed')
local head, epoch, trimmed = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
if epoch == 0 then epoch = 1 end
local dpre = ARGV[1] .. epoch .. ':'
local out = {epoch, 0}
for i = 0, n - 1 do
  local u, c, t, b = ARGV[6 + 4 * i], ARGV[7 + 4 * i], ARGV[8 + 4 * i], ARGV[9 + 4 * i]
  local dk, dup = nil, nil
  if c ~= '' then
    dk = dpre .. string.len(u) .. ':' .. u .. c
    dup = redis.call('GET', dk)
  end
  if dup then
    local e = redis.call('XRANGE', log, dup, dup)
    if e[1] then
      local f = e[1][2]
      out[#out + 1] = {tonumber(dup), 1, f[2], f[4], f[6], f[8]}
    else
      out[#out + 1] = {tonumber(dup), 1}
    end
  else
    head = head + 1
    redis.call('XADD', log, head .. '-1', 'u', u, 'c', c, 't', t, 'b', b)
    if dk then redis.call('SET', dk, head, 'EX', ARGV[2]) end
    out[#out + 1] = {head, 0}
  end
end
local cut = 0
if keep > 0 then cut = cut + redis.call('XTRIM', log, 'MAXLEN', '~', keep) end
if cutoff > 0 then
  for _ = 1, 1000 do
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 100)
    local keep_from = nil
    for _, e in ipairs(first) do
      if tonumber(e[2][6]) >= cutoff then keep_from = e[1]; break end
    end
    if keep_from == nil then
      if #first == 0 then break end
      keep_from = (tonumber(string.match(first[#first][1], '^(%d+)')) + 1) .. '-0'
    end
    local c = redis.call('XTRIM', log, 'MINID', keep_from)
    cut = cut + c
    if c < 100 then break end
  end
end
if cut > 0 then
  local f = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
  if f[1] then trimmed = tonumber(string.match(f[1][1], '^(%d+)')) - 1 else trimmed = head end
end
redis.call('HSET', meta, 'head', head, 'epoch', epoch, 'trimmed', trimmed)
out[2] = trimmed
return out
)lua";

// KEYS: meta, log. ARGV: after, limit. Returns {epoch, head, trimmed, entries}.
constexpr const char* kReadLua = R"lua(
local h = redis.call('HMGET', KEYS[1], 'head', 'epoch', 'trimmed')
local head, epoch, trimmed = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0')
local after = tonumber(ARGV[1])
if after >= head or after < trimmed then return {epoch, head, trimmed, {}} end
return {epoch, head, trimmed, redis.call('XRANGE', KEYS[2], '(' .. after .. '-1', '+', 'COUNT', ARGV[2])}
)lua";

// KEYS: meta, log. Returns the new epoch.
constexpr const char* kResetLua = R"lua(
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') + 1
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'head', 0, 'epoch', epoch, 'trimmed', 0)
return epoch
)lua";

// KEYS: info, members. ARGV: owner. Returns 0 if the group exists.
constexpr const char* kCreateGroupLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], 2)
return 1
)lua";

// KEYS: info, members. ARGV: user, role. Returns 0 if no such group.
constexpr const char* kAddMemberLua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
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

}  // namespace parley::redis_scripts
