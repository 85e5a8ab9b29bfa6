// The store conformance suite's fixtures: the implementations under test
// (memory and SQLite; Redis on one server and on a cluster when built with
// PARLEY_CONFORMANCE_REDIS) and helpers over their interfaces. Included by
// each file of the suite.
#pragma once

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "parley/memory_store.hpp"
#include "parley/sqlite_store.hpp"
#include "support/sqlite_vfs_forward.hpp"
#ifdef PARLEY_CONFORMANCE_REDIS
#include "parley/redis_store.hpp"
#include "support/redis_fixture.hpp"
#endif

using namespace parley;

namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/parley-store-XXXXXX";
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void require_ok(const Status& s) {
  REQUIRE_MESSAGE(s.is_ok(), s.to_string());
}

template <typename T>
T value_of(Result<T> r) {
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r.value());
}

std::unique_ptr<SqliteStore> open_store(const std::string& path, const SqliteOptions& options = {}) {
  return value_of(open_sqlite_store(path, options));
}

// The implementations under test. Each gives the three interfaces.
// kDedupAcrossGroups: a (user, client_msg_id) seen in one group is a
// duplicate in every group. The Redis store dedups per group (decisions.md).
struct MemoryStores {
  static constexpr bool kDedupAcrossGroups = true;
  std::unique_ptr<MessageStore> log_ = make_memory_message_store();
  std::unique_ptr<MembershipStore> membership_ = make_memory_membership_store();
  std::unique_ptr<SessionDirectory> directory_ = make_memory_session_directory();
  MessageStore& log() { return *log_; }
  MembershipStore& membership() { return *membership_; }
  SessionDirectory& directory() { return *directory_; }
};

struct SqliteStores {
  static constexpr bool kDedupAcrossGroups = true;
  TempDir dir;
  std::unique_ptr<SqliteStore> store = open_store(dir.file("parley.db"));
  MessageStore& log() { return *store; }
  MembershipStore& membership() { return *store; }
  SessionDirectory& directory() { return *store; }
  PresenceStore& presence() { return *store; }
};

AppendRequest request(const std::string& group, const std::string& user, const std::string& client_msg_id,
                      const std::string& contents = "hi", int64_t timestamp_ms = 1000) {
  return AppendRequest{group, user, client_msg_id, contents, timestamp_ms};
}

std::vector<AppendOutcome> append_ok(MessageStore& log, const std::vector<AppendRequest>& batch) {
  std::vector<AppendOutcome> out;
  require_ok(log.append(batch, &out));
  REQUIRE(out.size() == batch.size());
  return out;
}

// An entry of `kind` in group g naming `target` (edits, deletes, reactions, membership).
[[maybe_unused]] AppendRequest change(EntryKind kind, const std::string& user, uint64_t target,
                                      const std::string& contents = "", const std::string& client_msg_id = "") {
  AppendRequest r = request("g", user, client_msg_id, contents);
  r.entry.kind = kind;
  r.entry.target = target;
  return r;
}

[[maybe_unused]] AppendRequest react(const std::string& user, uint64_t target, const std::string& key,
                                     bool remove = false) {
  AppendRequest r = change(EntryKind::kReaction, user, target, key);
  r.entry.remove = remove;
  return r;
}

std::vector<Message> read_all(MessageStore& log, const std::string& group) {
  std::vector<Message> out;
  require_ok(log.read(group, 0, std::numeric_limits<size_t>::max(), &out));
  return out;
}

GroupHead head_of(MessageStore& log, const std::string& group) {
  std::vector<GroupHead> out;
  require_ok(log.heads({group}, &out));
  REQUIRE(out.size() == 1);
  return out[0];
}

std::vector<uint64_t> ids_of(const std::vector<Message>& messages) {
  std::vector<uint64_t> ids;
  ids.reserve(messages.size());
  for (const Message& m : messages) ids.push_back(m.msg_id);
  return ids;
}

std::vector<uint64_t> ids_of(const std::vector<AppendOutcome>& outcomes) {
  std::vector<uint64_t> ids;
  ids.reserve(outcomes.size());
  for (const AppendOutcome& o : outcomes) ids.push_back(o.message.msg_id);
  return ids;
}

std::vector<uint64_t> one_to(uint64_t n) {
  std::vector<uint64_t> ids(n);
  for (uint64_t i = 0; i < n; ++i) ids[i] = i + 1;
  return ids;
}

void check_stored_as_asked(const Message& m, const AppendRequest& r) {
  CHECK(m.group_id == r.group_id);
  CHECK(m.user_id == r.user_id);
  CHECK(m.client_msg_id == r.client_msg_id);
  CHECK(m.contents == r.contents);
  CHECK(m.timestamp_ms == r.timestamp_ms);
  CHECK(m.prev_msg_id == m.msg_id - 1);
}

[[maybe_unused]] void check_same(const Message& a, const Message& b) {
  CHECK(a.msg_id == b.msg_id);
  check_stored_as_asked(a, {b.group_id, b.user_id, b.client_msg_id, b.contents, b.timestamp_ms});
}

[[maybe_unused]] std::vector<std::vector<std::string>> nodes_of(SessionDirectory& directory,
                                               const std::vector<std::string>& users, int64_t now_ms) {
  std::vector<std::vector<std::string>> out{{"stale"}};
  require_ok(directory.nodes_of(users, now_ms, &out));
  REQUIRE(out.size() == users.size());
  return out;
}

using Nodes = std::vector<std::vector<std::string>>;

}  // namespace

TYPE_TO_STRING(MemoryStores);
TYPE_TO_STRING(SqliteStores);

#ifdef PARLEY_CONFORMANCE_REDIS
namespace {

// Each test gets its own key prefix on a server (or cluster) shared by the
// whole program, started on first use and stopped at exit.
std::unique_ptr<RedisStore> open_redis(const std::string& endpoints) {
  static int instance = 0;
  RedisStoreOptions o;
  o.endpoints = endpoints;
  o.key_prefix = "conformance" + std::to_string(++instance);
  return value_of(open_redis_store(o));
}

std::string endpoints_of(testing::RedisServer& s) {
  return s.endpoint();
}
std::string endpoints_of(testing::RedisCluster& c) {
  return c.seeds();
}

// The Redis store on a server (or cluster) started on first use.
template <typename Servers>
struct RedisStoresOn {
  static constexpr bool kDedupAcrossGroups = false;
  static Servers& servers() {
    static Servers s;
    return s;
  }
  std::unique_ptr<RedisStore> store = open_redis(endpoints_of(servers()));
  MessageStore& log() { return *store; }
  MembershipStore& membership() { return *store; }
  SessionDirectory& directory() { return *store; }
  PresenceStore& presence() { return *store; }
};
using RedisStores = RedisStoresOn<testing::RedisServer>;
using RedisClusterStores = RedisStoresOn<testing::RedisCluster>;

}  // namespace

TYPE_TO_STRING(RedisStores);
TYPE_TO_STRING(RedisClusterStores);
#define ALL_STORES RedisStores, RedisClusterStores
#define PRESENCE_STORES RedisStores, RedisClusterStores
#else
#define ALL_STORES MemoryStores, SqliteStores
#define PRESENCE_STORES SqliteStores  // the memory store keeps no presence
#endif

namespace {

// A raw connection for looking behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    const std::string message = err != nullptr ? err : "";
    sqlite3_free(err);
    REQUIRE_MESSAGE(rc == SQLITE_OK, message);
  }
  int64_t int_query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace
