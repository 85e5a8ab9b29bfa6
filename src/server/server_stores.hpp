// The stores parley-server runs its node on, opened from the configuration:
// memory, SQLite (the default) or Redis, each message store wrapped in a
// TimedMessageStore for /metrics. With --store-executor thread (sqlite,
// redis) appends, range reads and lookups run on a ThreadedExecutor over a
// second store instance (a connection of its own); its completions go to `deliver`, on the
// executor's thread.
// Thread rules: everything but the executor's store is used on the server's
// I/O thread.
#pragma once

#include <memory>

#include "parley/node.hpp"
#include "parley/server/config.hpp"
#include "parley/sqlite_store.hpp"
#include "parley/threaded_executor.hpp"
#ifdef PARLEY_WITH_REDIS
#include "parley/redis_store.hpp"
#endif
#include "timed_store.hpp"

namespace parley::server {

class ServerStores {
 public:
  ServerStores() = default;
  ServerStores(const ServerStores&) = delete;
  ServerStores& operator=(const ServerStores&) = delete;
  ~ServerStores();  // joins the executor before its store closes

  // `shared`: the executor of the process's shards (open_shared_executor()),
  // which this node then uses instead of one of its own (SQLite only).
  Status open(const Config& cfg, ThreadedExecutor::Deliver deliver, ServerStores* shared = nullptr);
  // Opens the executor's store connection and starts an executor with no
  // node yet: the shards of one process on one SQLite file share it (one
  // writer, one commit and one fsync for all of them).
  Status open_shared_executor(const Config& cfg);
  // True when this node's executor is another ServerStores' (its timings
  // are reported there).
  bool shares_executor() const { return client_ != nullptr; }

  // What the node is given (valid after open()).
  NodeStores node_stores() const;
  TimedMessageStore& messages() { return *messages_; }
  MembershipStore& membership() { return *membership_; }
  // The store timings of appends (the executor's store when there is one).
  const TimedMessageStore& appends() const { return append_messages_ ? *append_messages_ : *messages_; }
  ThreadedExecutor* executor() const { return executor_.get(); }
  StoreExecutor* store_executor() const {
    return client_ != nullptr ? client_ : static_cast<StoreExecutor*>(executor_.get());
  }

 private:
  void start_executor(MessageStore& store, MembershipStore& membership, SessionDirectory& directory,
                      PresenceStore* presence, ThreadedExecutor::Deliver deliver);

  std::unique_ptr<SqliteStore> sqlite_;
#ifdef PARLEY_WITH_REDIS
  std::unique_ptr<RedisStore> redis_;
#endif
  PresenceStore* presence_ = nullptr;
  std::unique_ptr<MessageStore> memory_messages_;
  std::unique_ptr<MembershipStore> memory_membership_;
  std::unique_ptr<SessionDirectory> memory_directory_;
  std::unique_ptr<TimedMessageStore> messages_;
  MembershipStore* membership_ = nullptr;
  SessionDirectory* directory_ = nullptr;
  // The executor's own store connection (--store-executor thread).
  std::unique_ptr<SqliteStore> append_sqlite_;
#ifdef PARLEY_WITH_REDIS
  std::unique_ptr<RedisStore> append_redis_;
#endif
  std::unique_ptr<TimedMessageStore> append_messages_;
  StoreExecutor* client_ = nullptr;  // this node's face of a shared executor
  std::unique_ptr<ThreadedExecutor> executor_;  // last: destroyed (joined) first
};

}  // namespace parley::server
