// Store conformance for entry kinds (MessageStore::append's log rules):
// edits, deletes that erase, reactions, replies, mentions and meta, on every
// store, and the erase in the SQLite files themselves. Built a second time
// into tests/redis with PARLEY_CONFORMANCE_REDIS, like the conformance suite:
// then the same cases run on one redis-server and on a Redis Cluster.
#include "unit/store_fixtures.hpp"

#include <iterator>

namespace {

// The outcome of one request alone.
AppendOutcome one(MessageStore& log, const AppendRequest& r) {
  return append_ok(log, {r})[0];
}

Code refused(MessageStore& log, const AppendRequest& r) {
  AppendOutcome o = one(log, r);
  CHECK(o.message.msg_id == 0);
  return o.status.code();
}

}  // namespace

#define ENTRY_STORES ALL_STORES

TEST_CASE_TEMPLATE("store: join, leave, removed and system entries are kept with their fields, and counted by nobody",
                   T, ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  AppendRequest notice = change(EntryKind::kSystem, "game", 0, "round 2 starts", "s1");
  notice.entry.meta = R"({"round":2})";
  append_ok(log, {change(EntryKind::kJoin, "bob", 0), request("g", "ann", "", "hi bob"),
                  change(EntryKind::kRemoved, "ann", 0, "cy"), change(EntryKind::kLeave, "bob", 0), notice});
  CHECK(append_ok(log, {notice})[0].duplicate);
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(all.size() == 5);
  CHECK(all[4].entry.kind == EntryKind::kSystem);
  CHECK(all[4].user_id == "game");
  CHECK(all[4].contents == "round 2 starts");
  CHECK(all[4].entry.meta == R"({"round":2})");
  FoldedPage folded;  // every one of them is a line of the folded history
  require_ok(log.read_folded("g", 0, 10, "bob", &folded));
  CHECK(folded.messages.size() == 5);
  CHECK(all[0].entry.kind == EntryKind::kJoin);
  CHECK(all[0].user_id == "bob");
  CHECK(all[0].contents.empty());
  CHECK(all[2].entry.kind == EntryKind::kRemoved);
  CHECK(all[2].user_id == "ann");
  CHECK(all[2].contents == "cy");
  CHECK(all[3].entry.kind == EntryKind::kLeave);
  CHECK(all[3].msg_id == 4);
  std::vector<UnreadCount> counts;
  require_ok(log.unread({UnreadQuery{"g", "bob", {}}, UnreadQuery{"g", "cy", {}}}, &counts));
  CHECK(counts[0].unread == 1);  // ann's message only
  CHECK(counts[1].unread == 1);
}

TEST_CASE_TEMPLATE("store: an edit by its author is an entry naming its message, anyone else's is refused alone",
                   T, ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("g", "ann", "c1", "first")});
  std::vector<AppendOutcome> out =
      append_ok(log, {change(EntryKind::kEdit, "bob", 1, "hijacked"), change(EntryKind::kEdit, "ann", 1, "fixed"),
                      request("g", "bob", "", "after")});
  CHECK(out[0].status.code() == Code::kPermissionDenied);
  CHECK(out[1].status.is_ok());
  CHECK(out[1].message.msg_id == 2);
  CHECK(out[1].message.entry.kind == EntryKind::kEdit);
  CHECK(out[1].message.entry.target == 1);
  CHECK(out[2].message.msg_id == 3);
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(ids_of(all) == one_to(3));
  CHECK(all[0].contents == "first");
  CHECK(all[1].entry.kind == EntryKind::kEdit);
  CHECK(all[1].entry.target == 1);
  CHECK(all[1].contents == "fixed");
  CHECK(all[1].user_id == "ann");
  CHECK(head_of(log, "g").head == 3);
  // Unknown ids, and entries that are not messages, are not found.
  CHECK(refused(log, change(EntryKind::kEdit, "ann", 9, "x")) == Code::kNotFound);
  CHECK(refused(log, change(EntryKind::kEdit, "ann", 2, "x")) == Code::kNotFound);
}

TEST_CASE_TEMPLATE("store: a delete erases its message and the message's edits, leaving tombstones", T,
                   ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  AppendRequest first = request("g", "ann", "c1", "secret");
  first.entry.mentions = {"bob"};
  first.entry.meta = R"({"k":1})";
  append_ok(log, {first, change(EntryKind::kEdit, "ann", 1, "secret too"), request("g", "bob", "", "other")});
  CHECK(refused(log, change(EntryKind::kDelete, "bob", 1)) == Code::kPermissionDenied);
  AppendOutcome del = one(log, change(EntryKind::kDelete, "ann", 1));
  REQUIRE(del.status.is_ok());
  CHECK(del.message.msg_id == 4);
  CHECK(del.message.entry.kind == EntryKind::kDelete);
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(all.size() == 4);
  CHECK(all[0].deleted);
  CHECK(all[0].contents.empty());
  CHECK(all[0].entry.mentions.empty());
  CHECK(all[0].entry.meta.empty());
  CHECK(all[0].user_id == "ann");  // who wrote it stays: the tombstone says whose message was deleted
  CHECK(all[1].deleted);
  CHECK(all[1].contents.empty());
  CHECK(all[1].entry.kind == EntryKind::kEdit);
  CHECK_FALSE(all[2].deleted);
  CHECK(all[2].contents == "other");
  CHECK(all[3].entry.kind == EntryKind::kDelete);
  CHECK(all[3].entry.target == 1);
  // A deleted message takes no edit, reaction or second delete; a reply is fine.
  CHECK(refused(log, change(EntryKind::kEdit, "ann", 1, "again")) == Code::kDeleted);
  CHECK(refused(log, react("bob", 1, "+1")) == Code::kDeleted);
  CHECK(refused(log, change(EntryKind::kDelete, "ann", 1)) == Code::kDeleted);
  AppendRequest reply = request("g", "bob", "", "what was it?");
  reply.entry.reply_to = 1;
  CHECK(one(log, reply).message.msg_id == 5);
}

TEST_CASE_TEMPLATE("store: a reaction is one per message, user and key, and can be taken back once", T,
                   ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("g", "ann", "", "hello")});
  CHECK(one(log, react("bob", 1, "👍")).message.msg_id == 2);
  CHECK(refused(log, react("bob", 1, "👍")) == Code::kAlreadyExists);
  CHECK(one(log, react("ann", 1, "👍")).message.msg_id == 3);
  CHECK(one(log, react("bob", 1, "🎉")).message.msg_id == 4);
  AppendOutcome back = one(log, react("bob", 1, "👍", true));
  REQUIRE(back.status.is_ok());
  CHECK(back.message.entry.remove);
  CHECK(refused(log, react("bob", 1, "👍", true)) == Code::kNotFound);
  CHECK(one(log, react("bob", 1, "👍")).message.msg_id == 6);  // again after taking it back
  CHECK(refused(log, react("bob", 2, "👍")) == Code::kNotFound);  // entry 2 is a reaction
  CHECK(refused(log, react("bob", 40, "👍")) == Code::kNotFound);
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(all.size() == 6);
  CHECK(all[4].entry.kind == EntryKind::kReaction);
  CHECK(all[4].entry.remove);
  CHECK(all[4].contents == "👍");
  CHECK_FALSE(all[5].entry.remove);
  // A reset forgets the group's reactions with its history.
  require_ok(log.reset_group("g").status());
  append_ok(log, {request("g", "ann", "", "new epoch")});
  CHECK(one(log, react("bob", 1, "👍")).status.is_ok());
}

TEST_CASE_TEMPLATE("store: replies, mentions and meta are kept, and a reply names a message at or below the head", T,
                   ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("g", "ann", "", "question")});
  AppendRequest r = request("g", "bob", "c2", "answer");
  r.entry.reply_to = 1;
  r.entry.mentions = {"ann", "carol"};
  r.entry.meta = R"({"card":{"title":"t"}})";
  AppendOutcome o = one(log, r);
  REQUIRE(o.status.is_ok());
  CHECK(o.message.entry.reply_to == 1);
  CHECK(o.message.entry.mentions == r.entry.mentions);
  CHECK(o.message.entry.meta == r.entry.meta);
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(all.size() == 2);
  CHECK(all[1].entry.reply_to == 1);
  CHECK(all[1].entry.mentions == r.entry.mentions);
  CHECK(all[1].entry.meta == r.entry.meta);
  CHECK(all[1].entry.kind == EntryKind::kMessage);
  AppendRequest beyond = request("g", "bob", "", "to the future");
  beyond.entry.reply_to = 3;
  CHECK(refused(log, beyond) == Code::kNotFound);
  // A resend is the original, with its fields.
  AppendOutcome again = one(log, r);
  CHECK(again.duplicate);
  CHECK(again.message.msg_id == 2);
  CHECK(again.message.entry.mentions == r.entry.mentions);
}

TEST_CASE_TEMPLATE("store: a resend of a change is answered with its original, also after its message was deleted",
                   T, ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("g", "ann", "", "typo")});
  const AppendRequest edit = change(EntryKind::kEdit, "ann", 1, "fixed", "e1");
  CHECK(one(log, edit).message.msg_id == 2);
  const AppendRequest del = change(EntryKind::kDelete, "ann", 1, "", "d1");
  CHECK(one(log, del).message.msg_id == 3);
  AppendOutcome resent = one(log, edit);
  CHECK(resent.status.is_ok());
  CHECK(resent.duplicate);
  CHECK(resent.message.msg_id == 2);
  CHECK(resent.message.deleted);  // as stored now: erased
  AppendOutcome resent_delete = one(log, del);
  CHECK(resent_delete.duplicate);
  CHECK(resent_delete.message.msg_id == 3);
  CHECK(head_of(log, "g").head == 3);
}

TEST_CASE_TEMPLATE("store: a request sees the ones before it in its batch", T, ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  std::vector<AppendOutcome> out = append_ok(
      log, {request("g", "ann", "", "one"), change(EntryKind::kEdit, "ann", 1, "uno"), react("bob", 1, "x"),
            react("bob", 1, "x"), change(EntryKind::kDelete, "ann", 1), react("carol", 1, "y")});
  CHECK(ids_of(std::vector<AppendOutcome>(out.begin(), out.begin() + 3)) == one_to(3));
  CHECK(out[3].status.code() == Code::kAlreadyExists);
  CHECK(out[4].message.msg_id == 4);
  CHECK(out[5].status.code() == Code::kDeleted);
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(all.size() == 4);
  CHECK(all[0].deleted);
  CHECK(all[1].deleted);
}

TEST_CASE_TEMPLATE("store: a change or reply naming an id of a reset epoch is refused, not applied to the new owner",
                   T, ENTRY_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("g", "ann", "", "ann's, epoch 1")});
  AppendRequest current = change(EntryKind::kEdit, "ann", 1, "fixed");
  current.epoch = 1;
  CHECK(one(log, current).status.is_ok());  // the client's epoch is the log's
  Result<uint64_t> reset = log.reset_group("g");
  REQUIRE(reset.is_ok());
  const uint64_t now = *reset;
  REQUIRE(now == 2);
  append_ok(log, {request("g", "ann", "", "ann's again, epoch 2"), request("g", "bob", "", "bob's")});
  // Picked from the epoch-1 copy: message 1 is someone else's text now.
  AppendRequest stale_delete = change(EntryKind::kDelete, "ann", 1);
  stale_delete.epoch = 1;
  AppendRequest stale_react = react("bob", 2, "+1");
  stale_react.epoch = 1;
  AppendRequest stale_reply = request("g", "bob", "", "re: the old one");
  stale_reply.entry.reply_to = 1;
  stale_reply.epoch = 1;
  std::vector<AppendOutcome> out = append_ok(log, {stale_delete, stale_react, stale_reply});
  for (const AppendOutcome& o : out) {
    CHECK(o.status.code() == Code::kEpochMismatch);
    CHECK(o.message.msg_id == 0);
  }
  std::vector<Message> all = read_all(log, "g");
  REQUIRE(ids_of(all) == one_to(2));
  CHECK_FALSE(all[0].deleted);
  CHECK(all[0].contents == "ann's again, epoch 2");
  // Named with the current epoch, or none, the same changes go in.
  stale_delete.epoch = now;
  stale_react.epoch = 0;
  out = append_ok(log, {stale_delete, stale_react});
  CHECK(out[0].status.is_ok());
  CHECK(out[1].status.is_ok());
  CHECK(out[0].message.epoch == now);
  CHECK(read_all(log, "g")[0].deleted);
}

#ifndef PARLEY_CONFORMANCE_REDIS
namespace {
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("sqlite store: a deleted message's text is gone from the database file and its WAL") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  std::unique_ptr<SqliteStore> s = open_store(path);
  // Long enough for overflow pages: a delete frees them, and freed pages keep
  // their bytes unless the store zeroes them (secure_delete).
  const std::string secret = std::string(9000, '.') + "SECRET-0123456789-TEXT";
  const std::string edited = "EDITED-9876543210-TEXT";
  append_ok(*s, {request("g", "ann", "", secret), request("g", "bob", "", "stays")});
  append_ok(*s, {change(EntryKind::kEdit, "ann", 1, edited)});
  // Checkpointed while open, so the text is in the main file too.
  RawDb(path).exec("PRAGMA wal_checkpoint(FULL)");
  REQUIRE((file_bytes(path) + file_bytes(path + "-wal")).find("SECRET-0123456789") != std::string::npos);
  REQUIRE(one(*s, change(EntryKind::kDelete, "ann", 1)).status.is_ok());
  const std::string files = file_bytes(path) + file_bytes(path + "-wal");
  CHECK(files.find("SECRET-0123456789") == std::string::npos);
  CHECK(files.find(edited) == std::string::npos);
  CHECK(files.find("stays") != std::string::npos);
}

namespace {
Status entry_check(EntryKind kind, uint64_t target, uint64_t reply_to, std::vector<std::string> mentions,
                   std::string meta, bool remove, const std::string& contents, const Limits& limits) {
  return validate_entry(EntryFields{kind, target, reply_to, std::move(mentions), std::move(meta), remove}, contents,
                        limits);
}
}  // namespace

TEST_CASE("validate_entry: each kind takes its own fields") {
  Limits l;
  const std::vector<std::string> none;
  CHECK(entry_check(EntryKind::kMessage, 0, 0, none, "", false, "hi", l).is_ok());
  CHECK(entry_check(EntryKind::kMessage, 0, 3, {"ann", "bob"}, R"({"a":1})", false, "hi", l).is_ok());
  CHECK(entry_check(EntryKind::kMessage, 2, 0, none, "", false, "hi", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kMessage, 0, 0, {"ann", "ann"}, "", false, "", l).code() ==
        Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kMessage, 0, 0, {""}, "", false, "", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kMessage, 0, 0, none, "[1]", false, "", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kMessage, 0, 0, none, "{", false, "", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kMessage, 0, 0, none, "{\"a\":\"" + std::string(5000, 'x') + "\"}", false, "",
                       l)
            .code() == Code::kTooLarge);
  CHECK(entry_check(EntryKind::kMessage, 0, 0, std::vector<std::string>(51, "x"), "", false, "", l).code() ==
        Code::kTooLarge);
  CHECK(entry_check(EntryKind::kEdit, 0, 0, none, "", false, "x", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kEdit, 1, 0, none, "", false, "x", l).is_ok());
  CHECK(entry_check(EntryKind::kEdit, 1, 1, none, "", false, "x", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kEdit, 1, 0, none, "", true, "x", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kDelete, 1, 0, none, "", false, "", l).is_ok());
  CHECK(entry_check(EntryKind::kDelete, 1, 0, none, "", false, "x", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kReaction, 1, 0, none, "", true, "👍", l).is_ok());
  CHECK(entry_check(EntryKind::kReaction, 1, 0, none, "", false, "", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kReaction, 1, 0, none, "", false, "a\tb", l).code() == Code::kInvalidArgument);
  CHECK(entry_check(EntryKind::kReaction, 1, 0, none, "", false, std::string(65, 'x'), l).code() ==
        Code::kTooLarge);
}
#endif  // PARLEY_CONFORMANCE_REDIS
