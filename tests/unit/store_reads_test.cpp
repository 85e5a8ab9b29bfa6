// Store conformance for read positions (MembershipStore::mark_read and
// read_position, docs/decisions.md 49): forward only, per member, forgotten
// on leaving. Built a second time into tests/redis with
// PARLEY_CONFORMANCE_REDIS: then the same cases run on one redis-server and
// on a Redis Cluster.
#include "unit/store_fixtures.hpp"

#include "sim/fold.hpp"

TEST_CASE_TEMPLATE("store: a read position moves only forward, per member, and a leaver's is forgotten", T,
                   ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  require_ok(m.create_group("g", "ann"));
  require_ok(m.add("g", "bob", Role::kMember));
  CHECK(value_of(m.read_position("g", "ann")).msg_id == 0);
  // Two devices race: the furthest wins, whichever comes last.
  ReadPosition at = value_of(m.mark_read("g", "ann", {1, 7}));
  CHECK(at.epoch == 1);
  CHECK(at.msg_id == 7);
  at = value_of(m.mark_read("g", "ann", {1, 5}));
  CHECK(at.msg_id == 7);
  CHECK(value_of(m.read_position("g", "ann")).msg_id == 7);
  // A newer epoch is later whatever its id; an older one never.
  at = value_of(m.mark_read("g", "ann", {2, 1}));
  CHECK(at.epoch == 2);
  CHECK(at.msg_id == 1);
  at = value_of(m.mark_read("g", "ann", {1, 99}));
  CHECK(at.epoch == 2);
  CHECK(at.msg_id == 1);
  // Each member has its own; a role change keeps it.
  CHECK(value_of(m.read_position("g", "bob")).msg_id == 0);
  require_ok(m.add("g", "ann", Role::kOwner));
  CHECK(value_of(m.read_position("g", "ann")).msg_id == 1);
  // Not a member: not_found, and nothing stored.
  CHECK(m.mark_read("g", "eve", {1, 3}).status().code() == Code::kNotFound);
  CHECK(m.read_position("g", "eve").status().code() == Code::kNotFound);
  CHECK(m.read_position("nope", "ann").status().code() == Code::kNotFound);
  // Leaving forgets it: back in, nothing read.
  require_ok(m.remove("g", "ann"));
  CHECK(m.read_position("g", "ann").status().code() == Code::kNotFound);
  require_ok(m.add("g", "ann", Role::kMember));
  ReadPosition fresh = value_of(m.read_position("g", "ann"));
  CHECK(fresh.epoch == 0);
  CHECK(fresh.msg_id == 0);
}

namespace {

// The counts of decision 49 the long way: every entry in (after, head] of
// the log as read back.
UnreadCount brute_unread(MessageStore& log, const std::string& group, const std::string& user, ReadPosition read) {
  const GroupHead head = head_of(log, group);
  UnreadCount c;
  c.group_id = group;
  c.epoch = head.epoch;
  c.head = head.head;
  c.after = std::min(read.epoch == head.epoch ? read.msg_id : 0, head.head);
  for (const Message& m : read_all(log, group)) {
    if (m.msg_id <= c.after || m.entry.kind != EntryKind::kMessage || m.user_id == user || m.deleted) continue;
    ++c.unread;
    const std::vector<std::string>& mn = m.entry.mentions;
    if (std::find(mn.begin(), mn.end(), user) != mn.end()) ++c.mentions;
  }
  return c;
}

UnreadCount unread_of(MessageStore& log, const std::string& group, const std::string& user, ReadPosition read) {
  std::vector<UnreadCount> out;
  require_ok(log.unread({UnreadQuery{group, user, read}}, &out));
  REQUIRE(out.size() == 1);
  return out[0];
}

void check_same(const UnreadCount& got, const UnreadCount& want) {
  CHECK(got.group_id == want.group_id);
  CHECK(got.epoch == want.epoch);
  CHECK(got.head == want.head);
  CHECK(got.after == want.after);
  CHECK(got.unread == want.unread);
  CHECK(got.mentions == want.mentions);
  CHECK_FALSE(got.trimmed);
}

AppendRequest entry(const std::string& user, EntryKind kind, uint64_t target, const std::string& contents = "x") {
  AppendRequest r = request("g", user, "", contents);
  r.entry.kind = kind;
  r.entry.target = target;
  return r;
}

}  // namespace

TEST_CASE_TEMPLATE("store: a notification level is per member, all by default, kept across a role change, "
                   "forgotten on leaving", T, ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  require_ok(m.create_group("g", "ann"));
  require_ok(m.add("g", "bob", Role::kMember));
  require_ok(m.add("g", "cy", Role::kMember));
  using L = std::vector<NotifyLevel>;
  auto levels = [&](const std::vector<std::string>& users) {
    L out{NotifyLevel::kMentions};  // cleared by the store
    require_ok(m.notify_levels("g", users, &out));
    return out;
  };
  CHECK(levels({"ann", "bob", "eve"}) == L{NotifyLevel::kAll, NotifyLevel::kAll, NotifyLevel::kNone});
  require_ok(m.set_notify_level("g", "bob", NotifyLevel::kMentions));
  require_ok(m.set_notify_level("g", "cy", NotifyLevel::kNone));
  CHECK(levels({"cy", "bob", "ann"}) == L{NotifyLevel::kNone, NotifyLevel::kMentions, NotifyLevel::kAll});
  CHECK(levels({}).empty());
  // Back to all, and a role change keeps a level.
  require_ok(m.set_notify_level("g", "cy", NotifyLevel::kAll));
  require_ok(m.add("g", "bob", Role::kOwner));
  CHECK(levels({"bob", "cy"}) == L{NotifyLevel::kMentions, NotifyLevel::kAll});
  // Not a member (or no such group): not_found, nothing stored.
  CHECK(m.set_notify_level("g", "eve", NotifyLevel::kNone).code() == Code::kNotFound);
  CHECK(m.set_notify_level("nope", "ann", NotifyLevel::kNone).code() == Code::kNotFound);
  CHECK(levels({"eve"}) == L{NotifyLevel::kNone});
  // Leaving forgets it: back in, all.
  require_ok(m.remove("g", "bob"));
  CHECK(levels({"bob"}) == L{NotifyLevel::kNone});
  require_ok(m.add("g", "bob", Role::kMember));
  CHECK(levels({"bob"}) == L{NotifyLevel::kAll});
  // Another group's level is its own.
  require_ok(m.create_group("h", "bob"));
  require_ok(m.set_notify_level("h", "bob", NotifyLevel::kNone));
  CHECK(levels({"bob"}) == L{NotifyLevel::kAll});
}

TEST_CASE_TEMPLATE("store: unread counts others' messages after the position, minus deleted ones, with mentions",
                   T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  AppendRequest hello = request("g", "ann", "", "hello");  // 1
  AppendRequest ping = request("g", "bob", "", "@ann @cat @ann");  // 2: mentions ann once, cat
  ping.entry.mentions = {"ann", "cat", "ann"};
  AppendRequest self = request("g", "bob", "", "@bob");  // 3: a self-mention counts for nobody
  self.entry.mentions = {"bob"};
  append_ok(log, {hello, ping, self, request("g", "cat", "")});  // 4: cat
  append_ok(log, {entry("bob", EntryKind::kEdit, 2, "@ann @cat"),  // 5
                  entry("ann", EntryKind::kReaction, 2, "+1")});  // 6
  // ann has 3 unread (2, 3, 4) with 1 mention; bob 2 (1, 4); cat 3 with 1.
  UnreadCount ann = unread_of(log, "g", "ann", {1, 0});
  CHECK(ann.unread == 3);
  CHECK(ann.mentions == 1);
  CHECK(ann.head == 6);
  CHECK(unread_of(log, "g", "bob", {1, 0}).unread == 2);
  CHECK(unread_of(log, "g", "bob", {1, 0}).mentions == 0);
  CHECK(unread_of(log, "g", "cat", {1, 0}).mentions == 1);
  // From a position: only what follows it.
  CHECK(unread_of(log, "g", "ann", {1, 2}).unread == 2);
  CHECK(unread_of(log, "g", "ann", {1, 2}).mentions == 0);
  // A delete takes the message out of every count, mentions too.
  append_ok(log, {entry("bob", EntryKind::kDelete, 2)});  // 7
  ann = unread_of(log, "g", "ann", {1, 0});
  CHECK(ann.unread == 2);
  CHECK(ann.mentions == 0);
  CHECK(unread_of(log, "g", "cat", {1, 0}).mentions == 0);
  CHECK(unread_of(log, "g", "cat", {1, 0}).unread == 2);
  // Read to the head, or past it: nothing unread.
  CHECK(unread_of(log, "g", "ann", {1, 7}).unread == 0);
  UnreadCount past = unread_of(log, "g", "ann", {1, 99});
  CHECK(past.unread == 0);
  CHECK(past.after == 7);
  // A position of another epoch counts from the start.
  CHECK(unread_of(log, "g", "ann", {2, 7}).unread == 2);
  // An unknown group: nothing, epoch 0.
  UnreadCount none = unread_of(log, "nope", "ann", {1, 3});
  CHECK(none.epoch == 0);
  CHECK(none.head == 0);
  CHECK(none.unread == 0);
  // A reset: the old epoch's position counts the new history from 0.
  CHECK(value_of(log.reset_group("g")) == 2);
  CHECK(unread_of(log, "g", "ann", {1, 7}).unread == 0);
  append_ok(log, {request("g", "bob", "")});
  UnreadCount after_reset = unread_of(log, "g", "ann", {1, 7});
  CHECK(after_reset.epoch == 2);
  CHECK(after_reset.after == 0);
  CHECK(after_reset.unread == 1);
}

namespace {

const std::vector<std::string> kUsers = {"ann", "bob", "cat"};

// 40 batches of messages (some mentioning users, themselves too), edits,
// deletes and reactions by three users, the same for every store.
void random_log(MessageStore& log, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::map<uint64_t, std::string> live;  // message id -> author, not deleted
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<AppendRequest> requests;
    for (size_t n = 1 + pick(4); n > 0; --n) {
      const std::string& u = kUsers[pick(kUsers.size())];
      std::vector<uint64_t> own;
      for (const auto& [id, author] : live) {
        if (author == u) own.push_back(id);
      }
      const size_t what = pick(10);
      if (what < 6 || own.empty()) {
        AppendRequest r = request("g", u, "", "m");
        for (size_t k = pick(3); k > 0; --k) r.entry.mentions.push_back(kUsers[pick(kUsers.size())]);
        if (!live.empty() && pick(3) == 0) r.entry.reply_to = std::next(live.begin(), pick(live.size()))->first;
        requests.push_back(r);
      } else if (what == 6) {
        requests.push_back(entry(u, EntryKind::kEdit, own[pick(own.size())]));
      } else if (what == 7) {
        const uint64_t id = own[pick(own.size())];
        requests.push_back(entry(u, EntryKind::kDelete, id));
        live.erase(id);
      } else {
        AppendRequest r = entry(u, EntryKind::kReaction, std::next(live.begin(), pick(std::min<size_t>(live.size(), 3)))->first,
                                kUsers[pick(3)]);
        r.entry.remove = pick(4) == 0;  // refused when not there: fine, the log goes on
        requests.push_back(r);
      }
    }
    for (const AppendOutcome& o : append_ok(log, requests)) {
      if (o.status && o.message.entry.kind == EntryKind::kMessage) live[o.message.msg_id] = o.message.user_id;
    }
  }
}

// Every user's counts from positions across the log (and past its head)
// against brute_unread; returns the sum of the unread counts.
uint64_t check_against_brute_force(MessageStore& log) {
  const uint64_t head = head_of(log, "g").head;
  REQUIRE(head > 40);
  std::vector<UnreadQuery> queries;
  for (const std::string& u : kUsers) {
    for (uint64_t after : {uint64_t{0}, uint64_t{1}, head / 3, head / 2, head - 1, head, head + 3}) {
      queries.push_back(UnreadQuery{"g", u, {1, after}});
    }
  }
  std::vector<UnreadCount> got;
  require_ok(log.unread(queries, &got));
  REQUIRE(got.size() == queries.size());
  uint64_t total = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    CAPTURE(queries[i].user_id);
    CAPTURE(queries[i].read.msg_id);
    check_same(got[i], brute_unread(log, "g", queries[i].user_id, queries[i].read));
    total += got[i].unread;
  }
  return total;
}

}  // namespace

TEST_CASE_TEMPLATE("store: unread counts equal a brute-force count over the log, for every user and position", T,
                   ALL_STORES) {
  T stores;
  random_log(stores.log(), 49);
  CHECK(check_against_brute_force(stores.log()) > 0);
}

namespace {

// The folded view of the whole log, applying its entries in order (the
// simulation's fold, tests/sim/fold.hpp): message
// id -> (latest contents, fold) for `reader`.
std::map<uint64_t, std::pair<std::string, Fold>> brute_fold(MessageStore& log, const std::string& reader) {
  const std::vector<Message> all = read_all(log, "g");
  std::vector<const Message*> history;
  for (const Message& m : all) history.push_back(&m);
  std::map<uint64_t, std::pair<std::string, Fold>> out;
  for (const auto& [id, f] : sim::fold(history)) {  // the simulation's fold, in log order
    Fold want{f.edited, {}, f.replies};
    for (const auto& [key, users] : f.reactions) {
      want.reactions.push_back({key, users.size(), users.count(reader) == 1});
    }
    out[id] = {f.contents, want};
  }
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("store: folded pages equal a brute-force fold over the log, for every reader and page size", T,
                   ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  random_log(log, 50);
  const uint64_t head = head_of(log, "g").head;
  size_t edited = 0, reacted = 0, answered = 0;
  for (const std::string& reader : kUsers) {
    const auto want = brute_fold(log, reader);
    for (size_t limit : {size_t{7}, size_t{1000}}) {
      std::map<uint64_t, std::pair<std::string, Fold>> got;
      uint64_t after = 0;
      for (int pages = 0; after < head && pages < 1000; ++pages) {
        FoldedPage page;
        require_ok(log.read_folded("g", after, limit, reader, &page));
        REQUIRE(page.head == head);
        REQUIRE(page.to > after);
        for (size_t i = 0; i < page.messages.size(); ++i) {
          got[page.messages[i].msg_id] = {page.messages[i].contents, page.folds[i]};
        }
        after = page.to;
      }
      CHECK(after == head);
      REQUIRE(got.size() == want.size());
      for (const auto& [id, f] : want) {
        CAPTURE(id);
        CHECK(got[id].first == f.first);
        CHECK(got[id].second == f.second);
        edited += f.second.edited != 0;
        reacted += !f.second.reactions.empty();
        answered += f.second.replies != 0;
      }
    }
  }
  // The log has every kind of fold to compare.
  CHECK(edited > 0);
  CHECK(reacted > 0);
  CHECK(answered > 0);
}

#ifndef PARLEY_CONFORMANCE_REDIS
TEST_CASE("sqlite store: a version 4 file gets its counts on migrating to version 8, and keeps counting") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  random_log(*open_store(path), 7);
  // What version 4 was: no ordinals, no mention rows.
  RawDb(path).exec(
      "DROP TABLE mentions; DROP INDEX messages_own; DROP INDEX messages_deleted; "
      "ALTER TABLE messages DROP COLUMN ord; ALTER TABLE messages DROP COLUMN own; "
      "ALTER TABLE groups_log DROP COLUMN msgs; ALTER TABLE members DROP COLUMN notify; "
      "DROP INDEX messages_replies; DROP TABLE invites; ALTER TABLE groups DROP COLUMN kind; "
      "ALTER TABLE groups DROP COLUMN title; ALTER TABLE groups DROP COLUMN topic; "
      "ALTER TABLE groups DROP COLUMN member_limit; PRAGMA user_version = 4");
  std::unique_ptr<SqliteStore> s = open_store(path);
  CHECK(s->schema_version() == 8);
  const uint64_t before = check_against_brute_force(*s);
  CHECK(before > 0);
  random_log(*s, 8);  // appends after the migration continue the ordinals
  CHECK(check_against_brute_force(*s) > before);
  require_ok(s->integrity_check());
}
#endif
