// SqliteStoreImpl, the SQLite stores behind open_sqlite_store()
// (include/parley/sqlite_store.hpp): the schema and its statements, the
// statement wrapper (Query), transactions, and the class. Its definitions are
// split by interface: sqlite_store.cpp (the connection, migrations and the
// message log) and sqlite_membership.cpp (membership and the session
// directory). Internal: not installed.
#pragma once

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <unordered_map>
#include <utility>

#include "parley/sqlite_store.hpp"
#include "store/log_rules.hpp"

namespace parley::sqlite_detail {

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
    // v1 -> v2: presence, kept on the session directory's entry (it lives
    // and expires with it).
    R"sql(
ALTER TABLE sessions ADD COLUMN presence INTEGER NOT NULL DEFAULT 0;
)sql",
    // v2 -> v3: entry kinds (edits, deletes, reactions) and structured
    // messages. mentions: user ids joined by '\n' (ids have no control
    // characters); flags: 1 = a tombstone (erased by a delete), 2 = a
    // reaction taken back. reactions: the reactions in force, one row each.
    R"sql(
ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN target INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN meta TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_edits ON messages(group_id, target) WHERE kind = 1;
CREATE TABLE reactions(
  group_id TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  reaction TEXT NOT NULL,
  PRIMARY KEY(group_id, msg_id, user_id, reaction)
) WITHOUT ROWID;
)sql",
    // v3 -> v4: read positions, on the membership row (decision 49).
    R"sql(
ALTER TABLE members ADD COLUMN read_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN read_id INTEGER NOT NULL DEFAULT 0;
)sql",
    // v4 -> v5: what unread counts need (decision 49). groups_log.msgs:
    // entries of kind message so far; messages.ord: the messages with an id
    // at or below the row's; messages.own: for a message, its author's
    // messages in the group at or below it. mentions: one row per (message,
    // mentioned user other than its author), gone with a delete. Existing
    // rows are counted here.
    R"sql(
ALTER TABLE groups_log ADD COLUMN msgs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ord INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN own INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET ord = w.ord, own = w.own FROM (
  SELECT group_id AS g, msg_id AS i,
         SUM(kind = 0) OVER (PARTITION BY group_id ORDER BY msg_id) AS ord,
         CASE WHEN kind = 0 THEN SUM(kind = 0) OVER (PARTITION BY group_id, user_id ORDER BY msg_id)
              ELSE 0 END AS own
  FROM messages) AS w
WHERE messages.group_id = w.g AND messages.msg_id = w.i;
UPDATE groups_log SET msgs = COALESCE(
  (SELECT MAX(ord) FROM messages WHERE messages.group_id = groups_log.group_id), 0);
CREATE INDEX messages_own ON messages(group_id, user_id, msg_id, own) WHERE kind = 0;
CREATE INDEX messages_deleted ON messages(group_id, msg_id, user_id) WHERE kind = 0 AND (flags & 1) = 1;
CREATE TABLE mentions(
  group_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  PRIMARY KEY(group_id, user_id, msg_id)
) WITHOUT ROWID;
WITH RECURSIVE split(g, i, author, rest, u) AS (
  SELECT group_id, msg_id, user_id, mentions || char(10), NULL FROM messages
  WHERE kind = 0 AND mentions <> ''
  UNION ALL
  SELECT g, i, author, substr(rest, instr(rest, char(10)) + 1), substr(rest, 1, instr(rest, char(10)) - 1)
  FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO mentions(group_id, user_id, msg_id)
SELECT g, u, i FROM split WHERE u IS NOT NULL AND u <> author;
)sql",
    // v5 -> v6: notification levels (0 all, 1 mentions, 2 none), on the
    // membership row like the read position.
    R"sql(
ALTER TABLE members ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;
)sql",
    // v6 -> v7: what folded reads need: a message's replies that are not
    // deleted, one seek in this index (a delete's flag takes the row out).
    R"sql(
CREATE INDEX messages_replies ON messages(group_id, reply_to)
  WHERE reply_to <> 0 AND kind = 0 AND (flags & 1) = 0;
)sql",
    // v7 -> v8: group kinds and settings (decision 56), on the group's row
    // (kind 0 public, 1 private; member_limit 0: none); invites: users a
    // private group lets join, until they do.
    R"sql(
ALTER TABLE groups ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE groups ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE groups ADD COLUMN member_limit INTEGER NOT NULL DEFAULT 0;
CREATE TABLE invites(
  group_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY(group_id, user_id)
) WITHOUT ROWID;
)sql",
};
static_assert(std::size(kMigrations) == static_cast<size_t>(SqliteStore::kSchemaVersion),
              "one migration step per schema version");

// Every statement the store runs; prepared once, on first use.
enum class Sql : size_t {
  kBegin,
  kBeginRead,
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
  kSetPresence,
  kSelectPresence,
  kSelectEntry,
  kEraseEntry,
  kEraseEdits,
  kSelectReaction,
  kInsertReaction,
  kDeleteReaction,
  kDeleteReactions,
  kSelectRead,
  kMarkRead,
  kSelectOwnAt,
  kSelectOrd,
  kCountDeleted,
  kInsertMention,
  kDeleteMention,
  kDeleteMentions,
  kCountMentions,
  kSelectMentioned,
  kSetNotify,
  kSelectNotify,
  kSelectLatestEdit,
  kSelectReactionsOf,
  kCountReplies,
  kSelectSettings,
  kUpdateSettings,
  kInsertInvite,
  kSelectInvite,
  kDeleteInvite,
  kCountMembers,
  kSelectPublic,
  kCount,
};

constexpr std::array<const char*, static_cast<size_t>(Sql::kCount)> kSql = {
    "BEGIN IMMEDIATE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SELECT head, epoch, msgs FROM groups_log WHERE group_id = ?1",
    "INSERT INTO groups_log(group_id, head, epoch, msgs) VALUES(?1, ?2, ?3, ?4) "
    "ON CONFLICT(group_id) DO UPDATE SET head = excluded.head, epoch = excluded.epoch, msgs = excluded.msgs",
    "INSERT INTO messages(group_id, msg_id, timestamp_ms, user_id, client_msg_id, contents, kind, target, "
    "reply_to, mentions, meta, flags, ord, own) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
    // own: the author's last message's own + 1 (one seek in messages_own, in the same statement)
    "CASE WHEN ?7 = 0 THEN COALESCE((SELECT own FROM messages WHERE group_id = ?1 AND user_id = ?4 AND kind = 0 "
    "ORDER BY msg_id DESC LIMIT 1), 0) + 1 ELSE 0 END) "
    "ON CONFLICT(user_id, client_msg_id) WHERE client_msg_id <> '' DO NOTHING",
    "SELECT m.group_id, m.msg_id, m.timestamp_ms, m.user_id, m.client_msg_id, m.contents, "
    "COALESCE(g.epoch, 0), m.kind, m.target, m.reply_to, m.mentions, m.meta, m.flags "
    "FROM messages m LEFT JOIN groups_log g ON g.group_id = m.group_id "
    "WHERE m.user_id = ?1 AND m.client_msg_id = ?2 AND m.client_msg_id <> ''",
    "SELECT m.group_id, m.msg_id, m.timestamp_ms, m.user_id, m.client_msg_id, m.contents, g.epoch, "
    "m.kind, m.target, m.reply_to, m.mentions, m.meta, m.flags "
    "FROM messages m JOIN groups_log g ON g.group_id = m.group_id "
    "WHERE m.group_id = ?1 AND m.msg_id > ?2 ORDER BY m.msg_id LIMIT ?3",
    "DELETE FROM messages WHERE group_id = ?1",
    "INSERT INTO groups(group_id, owner, kind, title, topic, member_limit) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT DO NOTHING",
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
    "UPDATE sessions SET presence = ?3 WHERE user_id = ?1 AND node_id = ?2",
    "SELECT presence FROM sessions WHERE user_id = ?1 AND expires_ms > ?2",
    "SELECT kind, user_id, flags FROM messages WHERE group_id = ?1 AND msg_id = ?2",
    "UPDATE messages SET contents = X'', mentions = '', meta = '', flags = flags | 1 "
    "WHERE group_id = ?1 AND msg_id = ?2",
    "UPDATE messages SET contents = X'', mentions = '', meta = '', flags = flags | 1 "
    "WHERE group_id = ?1 AND kind = 1 AND target = ?2",
    "SELECT 1 FROM reactions WHERE group_id = ?1 AND msg_id = ?2 AND user_id = ?3 AND reaction = ?4",
    "INSERT INTO reactions(group_id, msg_id, user_id, reaction) VALUES(?1, ?2, ?3, ?4)",
    "DELETE FROM reactions WHERE group_id = ?1 AND msg_id = ?2 AND user_id = ?3 AND reaction = ?4",
    "DELETE FROM reactions WHERE group_id = ?1",
    "SELECT read_epoch, read_id FROM members WHERE group_id = ?1 AND user_id = ?2",
    "UPDATE members SET read_epoch = ?3, read_id = ?4 WHERE group_id = ?1 AND user_id = ?2 "
    "AND (read_epoch < ?3 OR (read_epoch = ?3 AND read_id < ?4))",
    "SELECT own FROM messages WHERE group_id = ?1 AND user_id = ?2 AND kind = 0 AND msg_id <= ?3 "
    "ORDER BY msg_id DESC LIMIT 1",
    "SELECT ord FROM messages WHERE group_id = ?1 AND msg_id = ?2",
    "SELECT COUNT(*) FROM messages WHERE group_id = ?1 AND kind = 0 AND (flags & 1) = 1 "
    "AND msg_id > ?2 AND msg_id <= ?3 AND user_id <> ?4",
    "INSERT OR IGNORE INTO mentions(group_id, user_id, msg_id) VALUES(?1, ?2, ?3)",
    "DELETE FROM mentions WHERE group_id = ?1 AND user_id = ?2 AND msg_id = ?3",
    "DELETE FROM mentions WHERE group_id = ?1",
    "SELECT COUNT(*) FROM mentions WHERE group_id = ?1 AND user_id = ?4 AND msg_id > ?2 AND msg_id <= ?3",
    "SELECT kind, user_id, mentions FROM messages WHERE group_id = ?1 AND msg_id = ?2",
    "UPDATE members SET notify = ?3 WHERE group_id = ?1 AND user_id = ?2",
    "SELECT notify FROM members WHERE group_id = ?1 AND user_id = ?2",
    "SELECT msg_id, contents FROM messages WHERE group_id = ?1 AND target = ?2 AND kind = 1 "
    "ORDER BY msg_id DESC LIMIT 1",  // the latest edit
    "SELECT reaction, user_id FROM reactions WHERE group_id = ?1 AND msg_id = ?2",
    "SELECT COUNT(*) FROM messages WHERE group_id = ?1 AND reply_to = ?2 "
    "AND reply_to <> 0 AND kind = 0 AND (flags & 1) = 0",
    "SELECT kind, title, topic, member_limit FROM groups WHERE group_id = ?1",
    "UPDATE groups SET kind = ?2, title = ?3, topic = ?4, member_limit = ?5 WHERE group_id = ?1",
    "INSERT OR IGNORE INTO invites(group_id, user_id) SELECT ?1, ?2 "
    "WHERE NOT EXISTS(SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2)",
    "SELECT 1 FROM invites WHERE group_id = ?1 AND user_id = ?2",
    "DELETE FROM invites WHERE group_id = ?1 AND user_id = ?2",
    "SELECT COUNT(*) FROM members WHERE group_id = ?1",
    // ?4: the first id past the prefix's range ('' when the prefix is empty)
    "SELECT g.group_id, g.kind, g.title, g.topic, g.member_limit, "
    "(SELECT COUNT(*) FROM members m WHERE m.group_id = g.group_id) FROM groups g "
    "WHERE g.kind = 0 AND g.group_id >= ?1 AND g.group_id > ?2 AND (?4 = '' OR g.group_id < ?4) "
    "ORDER BY g.group_id LIMIT ?3",
};

inline Code code_of(int rc) {
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
inline Status sqlite_error(sqlite3* db, int rc, const char* what) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return error(code_of(rc), fmt::format("sqlite {}: {} (code {})", what, detail, rc));
}

inline Status require_id(const std::string& id, const char* what) {
  if (!id.empty()) return Status::ok();
  return error(Code::kInvalidArgument, fmt::format("{} is empty", what));
}

inline int64_t clamp_to_int64(uint64_t v) {
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

  // SQLITE_STATIC: the text is read when the statement steps, so it must
  // outlive the step; binding a temporary is refused at compile time.
  Query& bind(int index, const std::string& text) {
    return check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  Query& bind(int index, std::string&& text) = delete;
  Query& bind_blob(int index, const std::string& bytes) {
    return check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC));
  }
  Query& bind_blob(int index, std::string&& bytes) = delete;
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

// messages.flags
constexpr int64_t kTombstone = 1;
constexpr int64_t kTakenBack = 2;

// Column order of kSelectByDedupKey and kSelectRange.
inline Message message_from(const Query& q) {
  Message m;
  m.group_id = q.text_at(0);
  m.msg_id = static_cast<uint64_t>(q.int_at(1));
  m.prev_msg_id = m.msg_id - 1;
  m.timestamp_ms = q.int_at(2);
  m.user_id = q.text_at(3);
  m.client_msg_id = q.text_at(4);
  m.contents = q.text_at(5);
  m.epoch = static_cast<uint64_t>(q.int_at(6));
  m.entry.kind = static_cast<EntryKind>(q.int_at(7));
  m.entry.target = static_cast<uint64_t>(q.int_at(8));
  m.entry.reply_to = static_cast<uint64_t>(q.int_at(9));
  m.entry.mentions = detail::split_ids(q.text_at(10));
  m.entry.meta = q.text_at(11);
  const int64_t flags = q.int_at(12);
  m.deleted = (flags & kTombstone) != 0;
  m.entry.remove = (flags & kTakenBack) != 0;
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
  // kBegin takes the write lock at once; kBeginRead only reads one snapshot.
  explicit Transaction(SqliteStoreImpl* store, Sql begin = Sql::kBegin) : store_(store), begin_(begin) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status begin();
  Status commit();

 private:
  SqliteStoreImpl* store_;
  Sql begin_;
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
  Status read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override;
  Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) override;
  Result<uint64_t> reset_group(const std::string& group_id) override;
  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override;

  Status create_group(const std::string& group_id, const std::string& owner) override;
  Status create_group_with(const std::string& group_id, const std::string& owner,
                           const GroupSettings& settings) override;
  Result<GroupSettings> settings(const std::string& group_id) override;
  Status set_settings(const std::string& group_id, const GroupSettings& settings) override;
  Status invite(const std::string& group_id, const std::string& user_id) override;
  Result<std::optional<Role>> join(const std::string& group_id, const std::string& user_id,
                                   Admission how) override;
  Status public_groups(const std::string& prefix, const std::string& after, size_t limit,
                       std::vector<GroupListing>* out) override;
  Result<bool> group_exists(const std::string& group_id) override;
  Status add(const std::string& group_id, const std::string& user_id, Role role) override;
  Status remove(const std::string& group_id, const std::string& user_id) override;
  Result<std::vector<Member>> members(const std::string& group_id) override;
  Result<std::vector<std::string>> groups_of(const std::string& user_id) override;
  Result<std::optional<Role>> role_of(const std::string& group_id, const std::string& user_id) override;
  Result<ReadPosition> mark_read(const std::string& group_id, const std::string& user_id,
                                 ReadPosition to) override;
  Result<ReadPosition> read_position(const std::string& group_id, const std::string& user_id) override;
  Status set_notify_level(const std::string& group_id, const std::string& user_id, NotifyLevel level) override;
  Status notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                       std::vector<NotifyLevel>* out) override;

  Status put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) override;
  Status erase(const std::string& user_id, const std::string& node_id) override;
  Status refresh_node(const std::string& node_id, int64_t expires_at_ms) override;
  Status drop_node(const std::string& node_id) override;
  Status prune(int64_t now_ms) override;
  Status set_presence(const std::string& user_id, const std::string& node_id, PresenceStatus status) override;
  Status presence(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<PresenceStatus>* out) override;
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
    uint64_t msgs = 0;  // groups_log.msgs
    bool advanced = false;
  };
  using Heads = std::unordered_map<std::string, HeadState>;
  bool erased_ = false;  // this append batch erased contents (a checkpoint follows its commit)

  Status exec(const std::string& sql);
  Result<int64_t> pragma_int(const char* pragma);
  Status append_one(const AppendRequest& request, Heads* heads, AppendOutcome* outcome);
  Result<HeadState> load_head(const std::string& group_id);
  Status store_heads(const Heads& heads);
  Result<Message> find_by_dedup_key(const std::string& user_id, const std::string& client_msg_id);
  Result<std::optional<Message>> lookup_dedup_key(const std::string& user_id, const std::string& client_msg_id);
  // The log's rules for a request that names an entry (log_rules.hpp), its
  // dedup first: *done when the outcome is decided (a duplicate or refused).
  Status check_named(const AppendRequest& request, const Heads& heads, AppendOutcome* outcome, bool* done);
  // What an accepted edit, delete or reaction changes beyond its own row.
  Status apply_change(const AppendRequest& request);
  // A new message's ordinals and mention rows (decision 49).
  Result<uint64_t> own_at(const std::string& group_id, const std::string& user_id, uint64_t at);
  Status add_mentions(const Message& m);
  Status drop_mentions(const std::string& group_id, uint64_t msg_id);
  Result<UnreadCount> unread_one(const UnreadQuery& q);
  Status fold_one(const std::string& reader, Message* m, Fold* f);
  Result<int64_t> count(Sql sql, int64_t a, int64_t b, const std::string& group_id, const std::string& user_id);
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

}  // namespace parley::sqlite_detail
