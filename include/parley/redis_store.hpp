// Redis implementations of the storage interfaces: scale-out across machines.
//
// Nodes on many machines share one Redis (7.0 or newer) or one Redis Cluster;
// which of the two is found out at open. docs/redis.md has the key layout.
// Every group's keys share one hash tag, so each group lives on one shard and
// its append is one Lua script: the head is read and advanced, the messages
// are added to the group's stream and the dedup keys set, atomically. All
// appends of one call (one turn of the node's loop) go out in one pipeline,
// one script per group, and are acknowledged only after Redis answered.
//
// Differences from the SQLite store, all deliberate (docs/decisions.md):
//  - append is atomic per group, not across groups: a failed call may have
//    stored the requests of some groups (their senders' retries are answered
//    as duplicates).
//  - dedup is per (group, user, client_msg_id) and lasts dedup_ttl_s.
//  - retention: with retain_messages or retain_ms set, old messages are
//    trimmed when the group is written to; read() below the trim point
//    answers kTrimmed and heads() reports `trimmed`.
//  - durability is Redis's: see docs/redis.md for appendonly/appendfsync.
//
// Failures: Redis unreachable, timed out or refusing writes: kUnavailable or
// kTimeout with a message naming the server; the client reconnects with
// backoff, and fails fast while waiting.
//
// Thread rules: one thread at a time (one connection per master).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "parley/status.hpp"
#include "parley/store.hpp"

namespace parley {

struct RedisStoreOptions {
  // "redis://HOST:PORT" (or "HOST:PORT"); for a cluster, any of its masters,
  // comma-separated.
  std::string endpoints = "redis://127.0.0.1:6379";
  std::string password;
  // Prepended to every key, so several deployments can share one Redis.
  // Must not contain '{' or '}'.
  std::string key_prefix = "parley";
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 2000;
  int reconnect_min_ms = 100;
  int reconnect_max_ms = 5000;
  int64_t dedup_ttl_s = 24 * 3600;  // how long a resend is recognised
  uint64_t retain_messages = 0;     // per group, at least this many kept (0: all)
  int64_t retain_ms = 0;            // messages older than this are trimmed (0: never)
};

class RedisStore : public MessageStore,
                   public MembershipStore,
                   public SessionDirectory,
                   public PresenceStore {
 public:
  ~RedisStore() override = default;
  // True when talking to a Redis Cluster.
  virtual bool cluster_mode() const = 0;
  // PING every master: ok when all answer.
  virtual Status ping() = 0;
};

// Connects. kInvalidArgument for bad options, kUnavailable if Redis cannot be
// reached.
Result<std::unique_ptr<RedisStore>> open_redis_store(const RedisStoreOptions& options);

}  // namespace parley
