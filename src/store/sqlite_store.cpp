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

#include "store/sqlite_impl.hpp"

namespace parley {
namespace sqlite_detail {

Transaction::~Transaction() {
  if (open_ && store_->in_transaction()) (void)store_->run(Sql::kRollback);
}

Status Transaction::begin() {
  Status s = store_->run(begin_);
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
  // A delete's erased text must not stay in the file's free space.
  if (Status d = exec("PRAGMA secure_delete=ON"); !d) return d;
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
  erased_ = false;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (Status s = append_one(requests[i], &heads, &outcomes[i]); !s) return s;
  }
  if (Status s = store_heads(heads); !s) return s;
  if (Status s = tx.commit(); !s) return s;
  if (erased_) {
    // The erased text is gone from the pages (secure_delete), but the WAL
    // still holds the pages as they were: copy the WAL back and truncate it.
    // Best effort: a reader of another connection holding an old snapshot
    // makes it wait for the next checkpoint.
    (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  }
  *out = std::move(outcomes);
  return Status::ok();
}

Status SqliteStoreImpl::check_named(const AppendRequest& request, const Heads& heads, AppendOutcome* outcome,
                                    bool* done) {
  *done = false;
  const uint64_t id = detail::named_id(request);
  if (id == 0) return Status::ok();
  if (!request.client_msg_id.empty()) {  // a resend is answered with its original, whatever came since
    Result<std::optional<Message>> original = lookup_dedup_key(request.user_id, request.client_msg_id);
    if (!original) return original.status();
    if (original->has_value()) {
      Message m = std::move(**original);
      if (auto staged = heads.find(m.group_id); staged != heads.end()) {
        m.epoch = std::max<uint64_t>(staged->second.epoch, 1);
      }
      *outcome = AppendOutcome{std::move(m), true, Status::ok()};
      *done = true;
      return Status::ok();
    }
  }
  detail::NamedEntry named;
  Status s = query(
      Sql::kSelectEntry, [&](Query& q) { q.bind(1, request.group_id).bind(2, clamp_to_int64(id)); },
      [&](const Query& q) {
        named = {true, static_cast<EntryKind>(q.int_at(0)), q.text_at(1), (q.int_at(2) & kTombstone) != 0};
      });
  if (!s) return s;
  bool reacted = false;
  if (request.entry.kind == EntryKind::kReaction) {
    s = query(
        Sql::kSelectReaction,
        [&](Query& q) {
          q.bind(1, request.group_id).bind(2, clamp_to_int64(id)).bind(3, request.user_id).bind(4, request.contents);
        },
        [&](const Query&) { reacted = true; });
    if (!s) return s;
  }
  if (Status rule = detail::check_entry(request, named, reacted, heads.at(request.group_id).epoch); !rule) {
    outcome->status = rule;
    *done = true;
  }
  return Status::ok();
}

Status SqliteStoreImpl::apply_change(const AppendRequest& request) {
  const int64_t target = clamp_to_int64(request.entry.target);
  auto bind_reaction = [&](Query& q) {
    q.bind(1, request.group_id).bind(2, target).bind(3, request.user_id).bind(4, request.contents);
  };
  switch (request.entry.kind) {
    case EntryKind::kDelete: {
      erased_ = true;
      if (Status s = drop_mentions(request.group_id, request.entry.target); !s) return s;
      auto bind = [&](Query& q) { q.bind(1, request.group_id).bind(2, target); };
      if (Status s = change(Sql::kEraseEntry, bind); !s) return s;
      return change(Sql::kEraseEdits, bind);
    }
    case EntryKind::kReaction:
      return change(request.entry.remove ? Sql::kDeleteReaction : Sql::kInsertReaction, bind_reaction);
    case EntryKind::kMessage:
    case EntryKind::kEdit:
    case EntryKind::kJoin:
    case EntryKind::kLeave:
    case EntryKind::kRemoved:
    case EntryKind::kSystem: return Status::ok();
  }
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
  bool done = false;
  if (Status s = check_named(request, *heads, outcome, &done); !s || done) return s;
  const uint64_t msg_id = state.head + 1;
  const std::string mentions = detail::join_ids(request.entry.mentions);  // bound by reference: must outlive the step
  const bool is_message = request.entry.kind == EntryKind::kMessage;
  const uint64_t ord = state.msgs + (is_message ? 1 : 0);  // own: the statement works it out
  int inserted = 0;
  Status s = change(
      Sql::kInsertMessage,
      [&](Query& q) {
        q.bind(1, request.group_id)
            .bind(2, static_cast<int64_t>(msg_id))
            .bind(3, request.timestamp_ms)
            .bind(4, request.user_id)
            .bind(5, request.client_msg_id)
            .bind_blob(6, request.contents)
            .bind(7, static_cast<int64_t>(request.entry.kind))
            .bind(8, clamp_to_int64(request.entry.target))
            .bind(9, clamp_to_int64(request.entry.reply_to))
            .bind(10, mentions)
            .bind(11, request.entry.meta)
            .bind(12, request.entry.remove ? kTakenBack : int64_t{0})
            .bind(13, clamp_to_int64(ord));
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
    *outcome = AppendOutcome{std::move(*original), true, Status::ok()};
    return Status::ok();
  }
  if (Status c = apply_change(request); !c) return c;
  state.head = msg_id;
  state.epoch = std::max<uint64_t>(state.epoch, 1);
  state.msgs = ord;
  state.advanced = true;
  outcome->message = detail::entry_of(request, msg_id, state.epoch);
  if (is_message) {
    if (Status m = add_mentions(outcome->message); !m) return m;
  }
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
        state.msgs = static_cast<uint64_t>(q.int_at(2));
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
          .bind(3, static_cast<int64_t>(state.epoch))
          .bind(4, static_cast<int64_t>(state.msgs));
    });
    if (!s) return s;
  }
  return Status::ok();
}

Result<std::optional<Message>> SqliteStoreImpl::lookup_dedup_key(const std::string& user_id,
                                                                 const std::string& client_msg_id) {
  std::optional<Message> found;
  Status s = query(
      Sql::kSelectByDedupKey, [&](Query& q) { q.bind(1, user_id).bind(2, client_msg_id); },
      [&](const Query& q) { found = message_from(q); });
  if (!s) return s;
  return found;
}

Result<Message> SqliteStoreImpl::find_by_dedup_key(const std::string& user_id,
                                                   const std::string& client_msg_id) {
  Result<std::optional<Message>> looked = lookup_dedup_key(user_id, client_msg_id);
  if (!looked) return looked.status();
  std::optional<Message> found = std::move(*looked);
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

Status SqliteStoreImpl::read_folded(const std::string& group_id, uint64_t after, size_t limit,
                                    const std::string& reader, FoldedPage* out) {
  Transaction tx(this, Sql::kBeginRead);  // the page and its head from one snapshot
  if (Status s = tx.begin(); !s) return s;
  Result<HeadState> state = load_head(group_id);
  if (!state) return state.status();
  FoldedPage page;
  page.epoch = state->epoch;
  page.head = state->head;
  page.to = after >= page.head ? after : after + std::min<uint64_t>(limit, page.head - after);
  std::vector<Message> range;
  if (page.to > after) {
    Status s = query(
        Sql::kSelectRange,
        [&](Query& q) { q.bind(1, group_id).bind(2, clamp_to_int64(after)).bind(3, clamp_to_int64(page.to - after)); },
        [&](const Query& q) { range.push_back(message_from(q)); });
    if (!s) return s;
  }
  for (Message& m : range) {
    if (!detail::listed_when_folded(m.entry.kind)) continue;
    Fold f;
    if (Status s = fold_one(reader, &m, &f); !s) return s;
    page.messages.push_back(std::move(m));
    page.folds.push_back(std::move(f));
  }
  if (Status s = tx.commit(); !s) return s;
  *out = std::move(page);
  return Status::ok();
}

// A message's latest edit, reactions and replies: three index seeks.
Status SqliteStoreImpl::fold_one(const std::string& reader, Message* m, Fold* f) {
  if (m->entry.kind != EntryKind::kMessage || m->deleted) return Status::ok();
  const auto bind = [&](Query& q) { q.bind(1, m->group_id).bind(2, static_cast<int64_t>(m->msg_id)); };
  Status s = query(Sql::kSelectLatestEdit, bind, [&](const Query& q) {
    f->edited = static_cast<uint64_t>(q.int_at(0));
    m->contents = q.text_at(1);
  });
  if (!s) return s;
  std::vector<std::pair<std::string, std::string>> rows;
  s = query(Sql::kSelectReactionsOf, bind, [&](const Query& q) { rows.emplace_back(q.text_at(0), q.text_at(1)); });
  if (!s) return s;
  f->reactions = detail::count_reactions(std::move(rows), reader);
  return query(Sql::kCountReplies, bind, [&](const Query& q) { f->replies = static_cast<uint64_t>(q.int_at(0)); });
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
  if (Status s = change(Sql::kDeleteReactions, [&](Query& q) { q.bind(1, group_id); }); !s) return s;
  if (Status s = change(Sql::kDeleteMentions, [&](Query& q) { q.bind(1, group_id); }); !s) return s;
  Status s = change(Sql::kUpsertHead, [&](Query& q) {
    q.bind(1, group_id).bind(2, int64_t{0}).bind(3, static_cast<int64_t>(epoch)).bind(4, int64_t{0});
  });
  if (!s) return s;
  if (Status c = tx.commit(); !c) return c;
  return epoch;
}

// --- Unread counts (docs/decisions.md 49) ---

// The `own` of the user's last message at or below `at` (0: none): one seek
// in messages_own.
Result<uint64_t> SqliteStoreImpl::own_at(const std::string& group_id, const std::string& user_id, uint64_t at) {
  uint64_t own = 0;
  Status s = query(
      Sql::kSelectOwnAt, [&](Query& q) { q.bind(1, group_id).bind(2, user_id).bind(3, clamp_to_int64(at)); },
      [&](const Query& q) { own = static_cast<uint64_t>(q.int_at(0)); });
  if (!s) return s;
  return own;
}

Status SqliteStoreImpl::add_mentions(const Message& m) {
  for (const std::string& user : detail::mentioned_others(m)) {
    Status s = change(Sql::kInsertMention, [&](Query& q) {
      q.bind(1, m.group_id).bind(2, user).bind(3, clamp_to_int64(m.msg_id));
    });
    if (!s) return s;
  }
  return Status::ok();
}

// Before a delete erases message msg_id's mentions: its mention rows go.
Status SqliteStoreImpl::drop_mentions(const std::string& group_id, uint64_t msg_id) {
  Message m;
  Status s = query(
      Sql::kSelectMentioned, [&](Query& q) { q.bind(1, group_id).bind(2, clamp_to_int64(msg_id)); },
      [&](const Query& q) {
        m.entry.kind = static_cast<EntryKind>(q.int_at(0));
        m.user_id = q.text_at(1);
        m.entry.mentions = detail::split_ids(q.text_at(2));
      });
  if (!s) return s;
  for (const std::string& user : detail::mentioned_others(m)) {
    s = change(Sql::kDeleteMention,
               [&](Query& q) { q.bind(1, group_id).bind(2, user).bind(3, clamp_to_int64(msg_id)); });
    if (!s) return s;
  }
  return Status::ok();
}

// kCountDeleted and kCountMentions: rows in (a, b] of the group, by or for `user_id`.
Result<int64_t> SqliteStoreImpl::count(Sql sql, int64_t a, int64_t b, const std::string& group_id,
                                       const std::string& user_id) {
  int64_t n = 0;
  Status s = query(
      sql, [&](Query& q) { q.bind(1, group_id).bind(2, a).bind(3, b).bind(4, user_id); },
      [&](const Query& q) { n = q.int_at(0); });
  if (!s) return s;
  return n;
}

// messages in (after, head] = msgs - ord(after); the user's own = two seeks
// in messages_own; deleted ones by others: a range of messages_deleted;
// mentions: a range of the user's mention rows.
Result<UnreadCount> SqliteStoreImpl::unread_one(const UnreadQuery& q) {
  Result<HeadState> head = load_head(q.group_id);
  if (!head) return head.status();
  UnreadCount c = detail::unread_frame(q, head->epoch, head->head, 0);
  if (c.after >= c.head) return c;
  uint64_t ord_after = 0;
  if (c.after > 0) {
    Status s = query(
        Sql::kSelectOrd, [&](Query& b) { b.bind(1, q.group_id).bind(2, clamp_to_int64(c.after)); },
        [&](const Query& row) { ord_after = static_cast<uint64_t>(row.int_at(0)); });
    if (!s) return s;
  }
  Result<uint64_t> own_head = own_at(q.group_id, q.user_id, c.head);
  if (!own_head) return own_head.status();
  Result<uint64_t> own_after = own_at(q.group_id, q.user_id, c.after);
  if (!own_after) return own_after.status();
  const int64_t a = clamp_to_int64(c.after);
  const int64_t b = clamp_to_int64(c.head);
  Result<int64_t> deleted = count(Sql::kCountDeleted, a, b, q.group_id, q.user_id);
  if (!deleted) return deleted.status();
  Result<int64_t> mentions = count(Sql::kCountMentions, a, b, q.group_id, q.user_id);
  if (!mentions) return mentions.status();
  c.unread = head->msgs - ord_after - (*own_head - *own_after) - static_cast<uint64_t>(*deleted);
  c.mentions = static_cast<uint64_t>(*mentions);
  return c;
}

Status SqliteStoreImpl::unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) {
  std::vector<UnreadCount> counts;
  counts.reserve(queries.size());
  Transaction tx(this, Sql::kBeginRead);  // one snapshot for every count
  if (Status s = tx.begin(); !s) return s;
  for (const UnreadQuery& q : queries) {
    Result<UnreadCount> c = unread_one(q);
    if (!c) return c.status();
    counts.push_back(std::move(*c));
  }
  if (Status s = tx.commit(); !s) return s;
  out->insert(out->end(), std::make_move_iterator(counts.begin()), std::make_move_iterator(counts.end()));
  return Status::ok();
}

}  // namespace sqlite_detail

using sqlite_detail::SqliteStoreImpl;
using sqlite_detail::sqlite_error;

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
