#include "server_stores.hpp"

#include <filesystem>

#include "log.hpp"
#include "parley/memory_store.hpp"

namespace parley::server {

ServerStores::~ServerStores() {
  executor_.reset();  // finishes and delivers what was handed in, before any store closes
}

NodeStores ServerStores::node_stores() const {
  return NodeStores{*messages_, *membership_, *directory_, presence_, store_executor()};
}

void ServerStores::start_executor(MessageStore& store, MembershipStore& membership, SessionDirectory& directory,
                                  PresenceStore* presence, ThreadedExecutor::Deliver deliver) {
  append_messages_ = std::make_unique<TimedMessageStore>(store);
  executor_ = std::make_unique<ThreadedExecutor>(
      ExecutorStores{*append_messages_, &membership, &directory, presence}, std::move(deliver),
      ThreadedExecutor::Options{});
}

namespace {
// A connection to --db (its directory made if missing), with --sync.
Result<std::unique_ptr<SqliteStore>> open_db(const Config& cfg) {
  std::error_code ec;
  std::filesystem::path db(cfg.db);
  if (db.has_parent_path()) std::filesystem::create_directories(db.parent_path(), ec);
  SqliteOptions o;
  o.sync = cfg.sync == "normal" ? SqliteOptions::Sync::kNormal : SqliteOptions::Sync::kFull;
  return open_sqlite_store(cfg.db, o);
}
}  // namespace

Status ServerStores::open_shared_executor(const Config& cfg) {
  auto appender = open_db(cfg);
  if (!appender) return appender.status();
  append_sqlite_ = std::move(*appender);
  append_messages_ = std::make_unique<TimedMessageStore>(*append_sqlite_);
  executor_ = std::make_unique<ThreadedExecutor>(
      ExecutorStores{*append_messages_, append_sqlite_.get(), append_sqlite_.get(), append_sqlite_.get()},
      ThreadedExecutor::Options{});
  return Status::ok();
}

Status ServerStores::open(const Config& cfg, ThreadedExecutor::Deliver deliver, ServerStores* shared) {
  const bool threaded = cfg.store_executor == "thread";
  if (cfg.store == "memory") {
    memory_messages_ = make_memory_message_store();
    memory_membership_ = make_memory_membership_store();
    memory_directory_ = make_memory_session_directory();
    messages_ = std::make_unique<TimedMessageStore>(*memory_messages_);
    membership_ = memory_membership_.get();
    directory_ = memory_directory_.get();
    return Status::ok();
  }
  if (cfg.store == "redis") {
#ifdef PARLEY_WITH_REDIS
    RedisStoreOptions o;
    o.endpoints = cfg.redis;
    o.password = cfg.redis_password;
    o.key_prefix = cfg.redis_prefix;
    o.connect_timeout_ms = static_cast<int>(cfg.redis_timeout_ms);
    o.command_timeout_ms = static_cast<int>(cfg.redis_timeout_ms);
    o.dedup_ttl_s = cfg.redis_dedup_ttl_s;
    o.retain_messages = cfg.retain_messages;
    o.retain_ms = cfg.retain_ms;
    auto store = open_redis_store(o);
    if (!store) return store.status();
    redis_ = std::move(*store);
    PARLEY_LOG_INFO("store: redis at {}{}", cfg.redis, redis_->cluster_mode() ? " (cluster)" : "");
    messages_ = std::make_unique<TimedMessageStore>(*redis_);
    membership_ = redis_.get();
    directory_ = redis_.get();
    presence_ = redis_.get();
    if (threaded) {
      auto appender = open_redis_store(o);  // a connection of the executor's own
      if (!appender) return appender.status();
      append_redis_ = std::move(*appender);
      start_executor(*append_redis_, *append_redis_, *append_redis_, append_redis_.get(), std::move(deliver));
    }
    return Status::ok();
#else
    return error(Code::kInvalidArgument, "this parley-server was built without Redis (PARLEY_WITH_REDIS)");
#endif
  }
  auto store = open_db(cfg);
  if (!store) return store.status();
  sqlite_ = std::move(*store);
  messages_ = std::make_unique<TimedMessageStore>(*sqlite_);
  membership_ = sqlite_.get();
  directory_ = sqlite_.get();
  presence_ = sqlite_.get();
  if (threaded && shared != nullptr) {
    client_ = &shared->executor_->add_client(std::move(deliver));
  } else if (threaded) {
    auto appender = open_db(cfg);  // a connection of the executor's own
    if (!appender) return appender.status();
    append_sqlite_ = std::move(*appender);
    start_executor(*append_sqlite_, *append_sqlite_, *append_sqlite_, append_sqlite_.get(), std::move(deliver));
  }
  return Status::ok();
}

}  // namespace parley::server
