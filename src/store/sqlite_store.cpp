// SQLite stores: one connection, WAL, cached prepared statements.
//
// Sequencing: append runs in one BEGIN IMMEDIATE transaction, so the writer
// lock is held from the moment a group's head is read until the advanced head
// is committed; two connections (or processes) can never hand out one msg_id
// twice, and the (group_id, msg_id) primary key would refuse it anyway.
// Dedup: a UNIQUE partial index on (user_id, client_msg_id) where
// client_msg_id <> ''; the insert does nothing on conflict and only then is
// the original looked up, so a fresh message costs exactly one INSERT.
#include "parley/sqlite_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <unordered_map>
#include <utility>

namespace parley {
namespace {

// Schema migrations: kMigrations[v] takes the file from version v to v + 1.
// Append steps; never edit one that has shipped.
constexpr const char* kMigrations[] = {
    // v0 -> v1: everything.
    R"sql(
CREATE TABLE groups_log(
  group_id TEXT PRIMARY KEY NOT NULL,
  head INTEGER NOT NULL,
  epoch INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE messages(
  group_id TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  client_msg_id TEXT NOT NULL,
  contents BLOB NOT NULL,
  PRIMARY KEY(group_id, msg_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_dedup ON messages(user_id, client_msg_id)
  WHERE client_msg_id <> '';
CREATE TABLE groups(
  group_id TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE members(
  group_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  role INTEGER NOT NULL,
  PRIMARY KEY(group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, group_id);
CREATE TABLE sessions(
  user_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY(user_id, node_id)
) WITHOUT ROWID;
CREATE INDEX sessions_by_node ON sessions(node_id);
)sql",
};
static_assert(std::size(kMigrations) == static_cast<size_t>(SqliteStore::kSchemaVersion),
              "one migration step per schema version");

// Every statement the store runs; prepared once, on first use.
enum class Sql : size_t {
  kBegin,
  kCommit,
  kRollback,
  kSelectHead,
  kUpsertHead,
  kInsertMessage,
  kSelectByDedupKey,
  kSelectRange,
  kDeleteMessages,
  kInsertGroup,
  kSelectGroup,
  kUpsertMember,
  kDeleteMember,
  kSelectMembers,
  kSelectGroupsOf,
  kSelectRole,
  kUpsertSession,
  kDeleteSession,
  kRefreshNode,
  kDropNode,
  kPruneSessions,
  kSelectNodes,
  kCount,
};

constexpr std::array<const char*, static_cast<size_t>(Sql::kCount)> kSql = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT head, epoch FROM groups_log WHERE group_id = ?1",
    "INSERT INTO groups_log(group_id, head, epoch) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(group_id) DO UPDATE SET head = excluded.head, epoch = excluded.epoch",
    "INSERT INTO messages(group_id, msg_id, timestamp_ms, user_id, client_msg_id, contents) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT(user_id, client_msg_id) WHERE client_msg_id <> '' DO NOTHING",
    "SELECT m.group_id, m.msg_id, m.timestamp_ms, m.user_id, m.client_msg_id, m.contents, "
    "COALESCE(g.epoch, 0) FROM messages m LEFT JOIN groups_log g ON g.group_id = m.group_id "
    "WHERE m.user_id = ?1 AND m.client_msg_id = ?2 AND m.client_msg_id <> ''",
    "SELECT m.group_id, m.msg_id, m.timestamp_ms, m.user_id, m.client_msg_id, m.contents, g.epoch "
    "FROM messages m JOIN groups_log g ON g.group_id = m.group_id "
    "WHERE m.group_id = ?1 AND m.msg_id > ?2 ORDER BY m.msg_id LIMIT ?3",
    "DELETE FROM messages WHERE group_id = ?1",
    "INSERT INTO groups(group_id, owner) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
    "SELECT 1 FROM groups WHERE group_id = ?1",
    "INSERT INTO members(group_id, user_id, role) "
    "SELECT ?1, ?2, ?3 WHERE EXISTS(SELECT 1 FROM groups WHERE group_id = ?1) "
    "ON CONFLICT(group_id, user_id) DO UPDATE SET role = excluded.role",
    "DELETE FROM members WHERE group_id = ?1 AND user_id = ?2",
    "SELECT user_id, role FROM members WHERE group_id = ?1 ORDER BY user_id",
    "SELECT group_id FROM members WHERE user_id = ?1 ORDER BY group_id",
    "SELECT role FROM members WHERE group_id = ?1 AND user_id = ?2",
    "INSERT INTO sessions(user_id, node_id, expires_ms) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(user_id, node_id) DO UPDATE SET expires_ms = excluded.expires_ms",
    "DELETE FROM sessions WHERE user_id = ?1 AND node_id = ?2",
    "UPDATE sessions SET expires_ms = ?2 WHERE node_id = ?1",
    "DELETE FROM sessions WHERE node_id = ?1",
    "DELETE FROM sessions WHERE expires_ms <= ?1",
    "SELECT node_id FROM sessions WHERE user_id = ?1 AND expires_ms > ?2 ORDER BY node_id",
};

Code code_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    // The file or the disk, not the data: worth retrying once fixed.
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM: return Code::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Code::kCorruption;
    default: return Code::kInternal;
  }
}

// `what` says what was being done; the message is SQLite's own.
Status sqlite_error(sqlite3* db, int rc, const char* what) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return error(code_of(rc), fmt::format("sqlite {}: {} (code {})", what, detail, rc));
}

Status require_id(const std::string& id, const char* what) {
  if (!id.empty()) return Status::ok();
  return error(Code::kInvalidArgument, fmt::format("{} is empty", what));
}

int64_t clamp_to_int64(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
}

// One use of a cached statement: binds, steps, and resets it when done.
// Bind failures are kept and reported by the first step().
class Query {
 public:
  Query(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& bind(int index, const std::string& text) {
    return check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  Query& bind_blob(int index, const std::string& bytes) {
    return check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC));
  }
  Query& bind(int index, int64_t value) { return check(sqlite3_bind_int64(stmt_, index, value)); }

  // true: a row is ready; false: done. Errors come back as Status.
  Result<bool> step() {
    if (bind_rc_ != SQLITE_OK) return sqlite_error(db_, bind_rc_, "bind");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlite_error(db_, rc, sqlite3_sql(stmt_));
  }
  // Runs a statement that returns no rows.
  Status run() {
    Result<bool> r = step();
    return r.status();
  }

  int64_t int_at(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text_at(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }
  int changes() const { return sqlite3_changes(db_); }

 private:
  Query& check(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// Column order of kSelectByDedupKey and kSelectRange.
Message message_from(const Query& q) {
  Message m;
  m.group_id = q.text_at(0);
  m.msg_id = static_cast<uint64_t>(q.int_at(1));
  m.prev_msg_id = m.msg_id - 1;
  m.timestamp_ms = q.int_at(2);
  m.user_id = q.text_at(3);
  m.client_msg_id = q.text_at(4);
  m.contents = q.text_at(5);
  m.epoch = static_cast<uint64_t>(q.int_at(6));
  return m;
}

// Steps `q` to the end, calling `row` for each row.
template <typename Row>
Status each_row(Query& q, Row&& row) {
  for (;;) {
    Result<bool> has_row = q.step();
    if (!has_row) return has_row.status();
    if (!*has_row) return Status::ok();
    row(static_cast<const Query&>(q));
  }
}

class SqliteStoreImpl;

// A write transaction that rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(SqliteStoreImpl* store) : store_(store) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status begin();
  Status commit();

 private:
  SqliteStoreImpl* store_;
  bool open_ = false;
};

class SqliteStoreImpl final : public SqliteStore {
 public:
  explicit SqliteStoreImpl(sqlite3* db) : db_(db) {}
  ~SqliteStoreImpl() override {
    for (sqlite3_stmt* stmt : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Status configure(const SqliteOptions& options);
  Status migrate();

  int schema_version() const override { return schema_version_; }
  Status integrity_check() override;

  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override;
  Status read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Message>* out) override;
  Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) override;
  Result<uint64_t> reset_group(const std::string& group_id) override;

  Status create_group(const std::string& group_id, const std::string& owner) override;
  Result<bool> group_exists(const std::string& group_id) override;
  Status add(const std::string& group_id, const std::string& user_id, Role role) override;
  Status remove(const std::string& group_id, const std::string& user_id) override;
  Result<std::vector<Member>> members(const std::string& group_id) override;
  Result<std::vector<std::string>> groups_of(const std::string& user_id) override;
  Result<std::optional<Role>> role_of(const std::string& group_id, const std::string& user_id) override;

  Status put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) override;
  Status erase(const std::string& user_id, const std::string& node_id) override;
  Status refresh_node(const std::string& node_id, int64_t expires_at_ms) override;
  Status drop_node(const std::string& node_id) override;
  Status prune(int64_t now_ms) override;
  Status nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<std::vector<std::string>>* out) override;

  // The cached statement for `sql`, prepared on first use.
  Result<sqlite3_stmt*> statement(Sql sql);
  Status run(Sql sql) {
    Result<sqlite3_stmt*> stmt = statement(sql);
    if (!stmt) return stmt.status();
    return Query(db_, *stmt).run();
  }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  // A group's head as this append batch sees it.
  struct HeadState {
    uint64_t head = 0;
    uint64_t epoch = 0;
    bool advanced = false;
  };
  using Heads = std::unordered_map<std::string, HeadState>;

  Status exec(const std::string& sql);
  Result<int64_t> pragma_int(const char* pragma);
  Status append_one(const AppendRequest& request, Heads* heads, AppendOutcome* outcome);
  Result<HeadState> load_head(const std::string& group_id);
  Status store_heads(const Heads& heads);
  Result<Message> find_by_dedup_key(const std::string& user_id, const std::string& client_msg_id);
  Result<std::vector<std::string>> strings(Sql sql, const std::string& key);

  // Runs `sql` with `bind` applied, calling `row` for each row.
  template <typename Bind, typename Row>
  Status query(Sql sql, Bind&& bind, Row&& row) {
    Result<sqlite3_stmt*> stmt = statement(sql);
    if (!stmt) return stmt.status();
    Query q(db_, *stmt);
    bind(q);
    return each_row(q, row);
  }
  // Prepares, runs and finalizes a one-off statement (pragmas).
  template <typename Row>
  Status once(const char* sql, Row&& row) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(stmt, sqlite3_finalize);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql);
    Query q(db_, stmt);
    return each_row(q, row);
  }
  // Runs a statement that returns no rows; *changes gets the rows it changed.
  template <typename Bind>
  Status change(Sql sql, Bind&& bind, int* changes = nullptr) {
    Result<sqlite3_stmt*> stmt = statement(sql);
    if (!stmt) return stmt.status();
    Query q(db_, *stmt);
    bind(q);
    if (Status s = q.run(); !s) return s;
    if (changes != nullptr) *changes = q.changes();
    return Status::ok();
  }

  sqlite3* db_;
  std::array<sqlite3_stmt*, static_cast<size_t>(Sql::kCount)> stmts_{};
  int schema_version_ = 0;
};

Transaction::~Transaction() {
  if (open_ && store_->in_transaction()) (void)store_->run(Sql::kRollback);
}

Status Transaction::begin() {
  Status s = store_->run(Sql::kBegin);
  open_ = s.is_ok();
  return s;
}

Status Transaction::commit() {
  Status s = store_->run(Sql::kCommit);
  open_ = !s.is_ok();
  return s;
}

Result<sqlite3_stmt*> SqliteStoreImpl::statement(Sql sql) {
  sqlite3_stmt*& slot = stmts_[static_cast<size_t>(sql)];
  if (slot != nullptr) return slot;
  const int rc =
      sqlite3_prepare_v3(db_, kSql[static_cast<size_t>(sql)], -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, "prepare");
  return slot;
}

Status SqliteStoreImpl::exec(const std::string& sql) {
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql.c_str());
  return Status::ok();
}

Result<int64_t> SqliteStoreImpl::pragma_int(const char* pragma) {
  int64_t value = 0;
  if (Status s = once(pragma, [&](const Query& q) { value = q.int_at(0); }); !s) return s;
  return value;
}

Status SqliteStoreImpl::configure(const SqliteOptions& options) {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, std::max(0, options.busy_timeout_ms));
  // journal_mode answers with the mode in force: anything but "wal" means
  // the VFS or file refused it.
  std::string mode;
  Status s = once("PRAGMA journal_mode=WAL", [&](const Query& q) { mode = q.text_at(0); });
  if (!s) return s;
  if (mode != "wal") {
    return error(Code::kInternal, fmt::format("sqlite refused WAL mode (journal_mode={})", mode));
  }
  return exec(options.sync == SqliteOptions::Sync::kFull ? "PRAGMA synchronous=FULL"
                                                         : "PRAGMA synchronous=NORMAL");
}

// Brings the file to kSchemaVersion under the writer lock, so two processes
// opening a new file at once migrate it exactly once.
Status SqliteStoreImpl::migrate() {
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  Result<int64_t> version = pragma_int("PRAGMA user_version");
  if (!version) return version.status();
  if (*version > kSchemaVersion || *version < 0) {
    return error(Code::kInvalidArgument,
                 fmt::format("database schema version {} is newer than this library's ({})", *version,
                             kSchemaVersion));
  }
  for (int64_t v = *version; v < kSchemaVersion; ++v) {
    if (Status s = exec(kMigrations[v]); !s) return s;
  }
  if (*version < kSchemaVersion) {
    if (Status s = exec(fmt::format("PRAGMA user_version={}", kSchemaVersion)); !s) return s;
  }
  if (Status s = tx.commit(); !s) return s;
  schema_version_ = kSchemaVersion;
  return Status::ok();
}

Status SqliteStoreImpl::integrity_check() {
  std::string report;
  Status s = once("PRAGMA integrity_check", [&](const Query& q) {
    if (!report.empty()) report += "; ";
    report += q.text_at(0);
  });
  if (!s) return s;
  if (report == "ok") return Status::ok();
  return error(Code::kCorruption, "sqlite integrity_check: " + report);
}

// --- MessageStore ---

Status SqliteStoreImpl::append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) {
  std::vector<AppendOutcome> outcomes(requests.size());
  Heads heads;
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (Status s = append_one(requests[i], &heads, &outcomes[i]); !s) return s;
  }
  if (Status s = store_heads(heads); !s) return s;
  if (Status s = tx.commit(); !s) return s;
  *out = std::move(outcomes);
  return Status::ok();
}

Status SqliteStoreImpl::append_one(const AppendRequest& request, Heads* heads, AppendOutcome* outcome) {
  if (Status s = require_id(request.group_id, "group_id"); !s) return s;
  if (Status s = require_id(request.user_id, "user_id"); !s) return s;
  auto found = heads->find(request.group_id);
  if (found == heads->end()) {
    Result<HeadState> loaded = load_head(request.group_id);
    if (!loaded) return loaded.status();
    found = heads->emplace(request.group_id, *loaded).first;
  }
  HeadState& state = found->second;
  const uint64_t msg_id = state.head + 1;
  int inserted = 0;
  Status s = change(
      Sql::kInsertMessage,
      [&](Query& q) {
        q.bind(1, request.group_id)
            .bind(2, static_cast<int64_t>(msg_id))
            .bind(3, request.timestamp_ms)
            .bind(4, request.user_id)
            .bind(5, request.client_msg_id)
            .bind_blob(6, request.contents);
      },
      &inserted);
  if (!s) return s;
  if (inserted == 0) {
    // Only the dedup index lets the insert do nothing.
    Result<Message> original = find_by_dedup_key(request.user_id, request.client_msg_id);
    if (!original) return original.status();
    // An original appended earlier in this batch: its head row is written at commit.
    if (auto staged = heads->find(original->group_id); staged != heads->end()) {
      original->epoch = std::max<uint64_t>(staged->second.epoch, 1);
    }
    *outcome = {std::move(*original), true};
    return Status::ok();
  }
  state.head = msg_id;
  state.epoch = std::max<uint64_t>(state.epoch, 1);
  state.advanced = true;
  Message& m = outcome->message;
  m = {request.group_id,      msg_id,     msg_id - 1, request.timestamp_ms, request.user_id, request.contents,
       request.client_msg_id, state.epoch};
  outcome->duplicate = false;
  return Status::ok();
}

Result<SqliteStoreImpl::HeadState> SqliteStoreImpl::load_head(const std::string& group_id) {
  HeadState state;
  Status s = query(
      Sql::kSelectHead, [&](Query& q) { q.bind(1, group_id); },
      [&](const Query& q) {
        state.head = static_cast<uint64_t>(q.int_at(0));
        state.epoch = static_cast<uint64_t>(q.int_at(1));
      });
  if (!s) return s;
  return state;
}

Status SqliteStoreImpl::store_heads(const Heads& heads) {
  for (const auto& entry : heads) {  // not structured bindings: C++17 lambdas cannot capture them
    const HeadState& state = entry.second;
    if (!state.advanced) continue;
    Status s = change(Sql::kUpsertHead, [&](Query& q) {
      q.bind(1, entry.first)
          .bind(2, static_cast<int64_t>(state.head))
          .bind(3, static_cast<int64_t>(state.epoch));
    });
    if (!s) return s;
  }
  return Status::ok();
}

Result<Message> SqliteStoreImpl::find_by_dedup_key(const std::string& user_id,
                                                   const std::string& client_msg_id) {
  std::optional<Message> found;
  Status s = query(
      Sql::kSelectByDedupKey, [&](Query& q) { q.bind(1, user_id).bind(2, client_msg_id); },
      [&](const Query& q) { found = message_from(q); });
  if (!s) return s;
  if (!found) {
    return error(Code::kInternal, fmt::format("append conflicted but no message has dedup key ({}, {})",
                                              user_id, client_msg_id));
  }
  return std::move(*found);
}

Status SqliteStoreImpl::read(const std::string& group_id, uint64_t after, size_t limit,
                             std::vector<Message>* out) {
  std::vector<Message> messages;
  Status s = query(
      Sql::kSelectRange,
      [&](Query& q) { q.bind(1, group_id).bind(2, clamp_to_int64(after)).bind(3, clamp_to_int64(limit)); },
      [&](const Query& q) { messages.push_back(message_from(q)); });
  if (!s) return s;
  out->insert(out->end(), std::make_move_iterator(messages.begin()), std::make_move_iterator(messages.end()));
  return Status::ok();
}

Status SqliteStoreImpl::heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) {
  std::vector<GroupHead> result;
  result.reserve(group_ids.size());
  for (const std::string& group_id : group_ids) {
    Result<HeadState> state = load_head(group_id);
    if (!state) return state.status();
    result.push_back({group_id, state->head, state->epoch});
  }
  out->insert(out->end(), std::make_move_iterator(result.begin()), std::make_move_iterator(result.end()));
  return Status::ok();
}

Result<uint64_t> SqliteStoreImpl::reset_group(const std::string& group_id) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  Result<HeadState> state = load_head(group_id);
  if (!state) return state.status();
  const uint64_t epoch = state->epoch + 1;
  if (Status s = change(Sql::kDeleteMessages, [&](Query& q) { q.bind(1, group_id); }); !s) {
    return s;
  }
  Status s = change(Sql::kUpsertHead, [&](Query& q) {
    q.bind(1, group_id).bind(2, int64_t{0}).bind(3, static_cast<int64_t>(epoch));
  });
  if (!s) return s;
  if (Status c = tx.commit(); !c) return c;
  return epoch;
}

// --- MembershipStore ---

Status SqliteStoreImpl::create_group(const std::string& group_id, const std::string& owner) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  if (Status s = require_id(owner, "user_id"); !s) return s;
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  int created = 0;
  Status s = change(
      Sql::kInsertGroup, [&](Query& q) { q.bind(1, group_id).bind(2, owner); }, &created);
  if (!s) return s;
  if (created == 0) {
    return error(Code::kAlreadyExists, fmt::format("group '{}' already exists", group_id));
  }
  if (Status a = add(group_id, owner, Role::kOwner); !a) return a;
  return tx.commit();
}

Result<bool> SqliteStoreImpl::group_exists(const std::string& group_id) {
  bool exists = false;
  Status s = query(
      Sql::kSelectGroup, [&](Query& q) { q.bind(1, group_id); }, [&](const Query&) { exists = true; });
  if (!s) return s;
  return exists;
}

Status SqliteStoreImpl::add(const std::string& group_id, const std::string& user_id, Role role) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  if (Status s = require_id(user_id, "user_id"); !s) return s;
  int changed = 0;
  Status s = change(
      Sql::kUpsertMember,
      [&](Query& q) { q.bind(1, group_id).bind(2, user_id).bind(3, static_cast<int64_t>(role)); }, &changed);
  if (!s) return s;
  if (changed == 0) {
    return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  }
  return Status::ok();
}

Status SqliteStoreImpl::remove(const std::string& group_id, const std::string& user_id) {
  int removed = 0;
  Status s = change(
      Sql::kDeleteMember, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); }, &removed);
  if (!s) return s;
  if (removed == 0) {
    return error(Code::kNotFound, fmt::format("user '{}' is not a member of group '{}'", user_id, group_id));
  }
  return Status::ok();
}

Result<std::vector<Member>> SqliteStoreImpl::members(const std::string& group_id) {
  Result<bool> exists = group_exists(group_id);
  if (!exists) return exists.status();
  if (!*exists) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  std::vector<Member> out;
  Status s = query(
      Sql::kSelectMembers, [&](Query& q) { q.bind(1, group_id); },
      [&](const Query& q) {
        out.push_back({q.text_at(0), static_cast<Role>(q.int_at(1))});
      });
  if (!s) return s;
  return out;
}

Result<std::vector<std::string>> SqliteStoreImpl::strings(Sql sql, const std::string& key) {
  std::vector<std::string> out;
  Status s = query(
      sql, [&](Query& q) { q.bind(1, key); }, [&](const Query& q) { out.push_back(q.text_at(0)); });
  if (!s) return s;
  return out;
}

Result<std::vector<std::string>> SqliteStoreImpl::groups_of(const std::string& user_id) {
  return strings(Sql::kSelectGroupsOf, user_id);
}

Result<std::optional<Role>> SqliteStoreImpl::role_of(const std::string& group_id,
                                                     const std::string& user_id) {
  std::optional<Role> role;
  Status s = query(
      Sql::kSelectRole, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); },
      [&](const Query& q) { role = static_cast<Role>(q.int_at(0)); });
  if (!s) return s;
  return role;
}

// --- SessionDirectory ---

Status SqliteStoreImpl::put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) {
  if (Status s = require_id(user_id, "user_id"); !s) return s;
  if (Status s = require_id(node_id, "node_id"); !s) return s;
  return change(Sql::kUpsertSession,
                [&](Query& q) { q.bind(1, user_id).bind(2, node_id).bind(3, expires_at_ms); });
}

Status SqliteStoreImpl::erase(const std::string& user_id, const std::string& node_id) {
  return change(Sql::kDeleteSession, [&](Query& q) { q.bind(1, user_id).bind(2, node_id); });
}

Status SqliteStoreImpl::refresh_node(const std::string& node_id, int64_t expires_at_ms) {
  return change(Sql::kRefreshNode, [&](Query& q) { q.bind(1, node_id).bind(2, expires_at_ms); });
}

Status SqliteStoreImpl::drop_node(const std::string& node_id) {
  return change(Sql::kDropNode, [&](Query& q) { q.bind(1, node_id); });
}

Status SqliteStoreImpl::prune(int64_t now_ms) {
  return change(Sql::kPruneSessions, [&](Query& q) { q.bind(1, now_ms); });
}

Status SqliteStoreImpl::nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                                 std::vector<std::vector<std::string>>* out) {
  std::vector<std::vector<std::string>> result;
  result.reserve(user_ids.size());
  for (const std::string& user_id : user_ids) {
    std::vector<std::string> nodes;
    Status s = query(
        Sql::kSelectNodes, [&](Query& q) { q.bind(1, user_id).bind(2, now_ms); },
        [&](const Query& q) { nodes.push_back(q.text_at(0)); });
    if (!s) return s;
    result.push_back(std::move(nodes));
  }
  *out = std::move(result);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const std::string& path,
                                                       const SqliteOptions& options) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, flags, options.vfs.empty() ? nullptr : options.vfs.c_str());
  // The store owns the handle from here, even a failed one (closing it is
  // the only cleanup SQLite asks for).
  auto store = std::make_unique<SqliteStoreImpl>(db);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, fmt::format("open '{}'", path).c_str());
  if (Status s = store->configure(options); !s) return s;
  if (Status s = store->migrate(); !s) return s;
  return std::unique_ptr<SqliteStore>(std::move(store));
}

}  // namespace parley
