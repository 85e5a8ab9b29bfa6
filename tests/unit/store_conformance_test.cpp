// Store conformance: every contract of include/parley/store.hpp, checked
// against every implementation (memory and SQLite); what only the SQLite
// store promises is in sqlite_store_test.cpp.
//
// Built a second time into tests/redis with PARLEY_CONFORMANCE_REDIS: then the
// same contracts run on the Redis store, on one redis-server and on a
// three-master Redis Cluster that the test starts itself.
#include "unit/store_fixtures.hpp"

// --- MessageStore ---

TEST_CASE_TEMPLATE("store: ids are dense per group, across batches and groups", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  const std::string binary("a\0b\xff", 4);
  const std::vector<AppendRequest> first = {
      request("g1", "ann", "c1", binary, 5), request("g2", "bob", "", "x", 6),
      request("g1", "bob", "c2", "", 7),     request("g2", "ann", "c3", "y", 8),
      request("g1", "ann", "", "z", 9),
  };
  std::vector<AppendOutcome> out = append_ok(log, first);
  CHECK(ids_of(out) == std::vector<uint64_t>{1, 1, 2, 2, 3});
  for (size_t i = 0; i < first.size(); ++i) {
    CHECK_FALSE(out[i].duplicate);
    check_stored_as_asked(out[i].message, first[i]);
  }

  out = append_ok(log, {request("g2", "cy", ""), request("g1", "cy", ""), request("g1", "cy", "")});
  CHECK(ids_of(out) == std::vector<uint64_t>{3, 4, 5});

  const std::vector<Message> g1 = read_all(log, "g1");
  CHECK(ids_of(g1) == one_to(5));
  CHECK(ids_of(read_all(log, "g2")) == one_to(3));
  check_stored_as_asked(g1[0], first[0]);
  check_stored_as_asked(g1[1], first[2]);
  check_stored_as_asked(g1[2], first[4]);
  CHECK(g1[0].contents.size() == 4);
}

TEST_CASE_TEMPLATE("store: an empty batch succeeds and changes nothing", T, ALL_STORES) {
  T stores;
  std::vector<AppendOutcome> out(3);
  require_ok(stores.log().append({}, &out));
  CHECK(out.empty());
  CHECK(head_of(stores.log(), "g").epoch == 0);
}

TEST_CASE_TEMPLATE("store: a batch with a bad request stores nothing", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("g", "ann", "c0")});
  for (const AppendRequest& bad : {request("", "ann", "cb"), request("g", "", "cb")}) {
    std::vector<AppendOutcome> out(1);
    out[0].message.contents = "untouched";
    const Status s = log.append(
        {request("g", "ann", "c1"), request("new", "bob", "c2"), bad, request("g", "cy", "")}, &out);
    CHECK(s.code() == Code::kInvalidArgument);
    REQUIRE(out.size() == 1);
    CHECK(out[0].message.contents == "untouched");
  }
  CHECK(ids_of(read_all(log, "g")) == one_to(1));
  CHECK(read_all(log, "new").empty());
  CHECK(head_of(log, "new").epoch == 0);
  // The keys of the failed batch were not recorded.
  std::vector<AppendOutcome> out = append_ok(log, {request("g", "ann", "c1"), request("new", "bob", "c2")});
  CHECK_FALSE(out[0].duplicate);
  CHECK_FALSE(out[1].duplicate);
  CHECK(out[0].message.msg_id == 2);
}

TEST_CASE_TEMPLATE("store: duplicates within one batch", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  const std::vector<AppendOutcome> out =
      append_ok(log, {
                         request("g", "ann", "c1", "first", 1),
                         request("g", "ann", "c1", "resend", 2),  // same user and key: duplicate
                         request("g", "bob", "c1", "bob's", 3),   // same key, other user: new
                         request("g", "ann", "", "no key", 4),
                         request("g", "ann", "", "no key", 4),  // empty key: never a duplicate
                         request("g", "ann", "c1", "again", 5),
                     });
  CHECK(ids_of(out) == std::vector<uint64_t>{1, 1, 2, 3, 4, 1});
  CHECK(std::vector<bool>{out[0].duplicate, out[1].duplicate, out[2].duplicate, out[3].duplicate,
                          out[4].duplicate,
                          out[5].duplicate} == std::vector<bool>{false, true, false, false, false, true});
  check_same(out[1].message, out[0].message);
  check_same(out[5].message, out[0].message);
  CHECK(out[1].message.contents == "first");
  CHECK(head_of(log, "g").head == 4);
  CHECK(ids_of(read_all(log, "g")) == one_to(4));
}

TEST_CASE_TEMPLATE("store: a resend in a later batch returns the original", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  const Message original = append_ok(log, {request("g", "ann", "c1", "first", 10)})[0].message;
  append_ok(log, {request("g", "bob", "")});

  const std::vector<AppendOutcome> out = append_ok(
      log, {
               request("g", "cy", "k"),
               request("g", "ann", "c1", "second", 20),
               request("other", "ann", "c1", "elsewhere", 30),  // the key is per user, not per group
               request("g", "dee", ""),
           });
  CHECK(ids_of(out) == std::vector<uint64_t>{3, 1, 1, 4});
  CHECK(out[1].duplicate);
  check_same(out[1].message, original);
  CHECK(ids_of(read_all(log, "g")) == one_to(4));
  CHECK(read_all(log, "g")[0].contents == "first");
  if (T::kDedupAcrossGroups) {
    CHECK(out[2].duplicate);
    check_same(out[2].message, original);
    CHECK(read_all(log, "other").empty());
    CHECK(head_of(log, "other").epoch == 0);
  } else {
    CHECK_FALSE(out[2].duplicate);
    CHECK(out[2].message.group_id == "other");
    CHECK(read_all(log, "other").size() == 1);
    CHECK(append_ok(log, {request("other", "ann", "c1", "again", 40)})[0].duplicate);
  }
}

TEST_CASE_TEMPLATE("store: read ranges and limits", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  std::vector<AppendRequest> batch(6, request("g", "ann", ""));
  for (size_t i = 0; i < batch.size(); ++i) batch[i].contents = std::to_string(i);
  append_ok(log, batch);

  const auto read = [&](uint64_t after, size_t limit) {
    std::vector<Message> out;
    require_ok(log.read("g", after, limit, &out));
    return ids_of(out);
  };
  CHECK(read(0, 100) == one_to(6));
  CHECK(read(2, 2) == std::vector<uint64_t>{3, 4});
  CHECK(read(4, 100) == std::vector<uint64_t>{5, 6});
  CHECK(read(0, 1) == std::vector<uint64_t>{1});
  CHECK(read(0, 0).empty());
  CHECK(read(6, 10).empty());
  CHECK(read(7, 10).empty());
  CHECK(read(std::numeric_limits<uint64_t>::max(), 10).empty());
  CHECK(read(5, std::numeric_limits<size_t>::max()) == std::vector<uint64_t>{6});
  CHECK(read_all(log, "g")[3].contents == "3");

  // read appends to what *out already holds.
  std::vector<Message> out(1);
  out[0].contents = "kept";
  require_ok(log.read("g", 4, 10, &out));
  REQUIRE(out.size() == 3);
  CHECK(out[0].contents == "kept");
  CHECK(out[2].msg_id == 6);

  std::vector<Message> unknown;
  require_ok(log.read("nope", 0, 10, &unknown));
  CHECK(unknown.empty());
}

TEST_CASE_TEMPLATE("store: heads in the order asked, unknown groups are 0/0", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  append_ok(log, {request("a", "u", ""), request("b", "u", ""), request("b", "u", "")});
  std::vector<GroupHead> out;
  require_ok(log.heads({"b", "nope", "a", "b"}, &out));
  REQUIRE(out.size() == 4);
  CHECK(out[0].group_id == "b");
  CHECK(out[0].head == 2);
  CHECK(out[0].epoch == 1);
  CHECK(out[1].group_id == "nope");
  CHECK(out[1].head == 0);
  CHECK(out[1].epoch == 0);
  CHECK(out[2].group_id == "a");
  CHECK(out[2].head == 1);
  CHECK(out[3].group_id == "b");
  CHECK(out[3].head == 2);

  std::vector<GroupHead> none;
  require_ok(log.heads({}, &none));
  CHECK(none.empty());
}

TEST_CASE_TEMPLATE("store: every message returned carries its group's epoch", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  // A duplicate within the first batch of a group, and one in a later batch.
  std::vector<AppendOutcome> out = append_ok(
      log, {request("g", "ann", "c1", "a"), request("g", "ann", "c1", "a"), request("h", "bo", "")});
  for (const AppendOutcome& o : out) CHECK(o.message.epoch == 1);
  CHECK(append_ok(log, {request("g", "ann", "c1", "a")})[0].message.epoch == 1);
  for (const Message& m : read_all(log, "g")) CHECK(m.epoch == 1);
  CHECK(value_of(log.reset_group("g")) == 2);
  out = append_ok(log, {request("g", "ann", "c2", "b"), request("g", "ann", "c2", "b")});
  CHECK(out[0].message.epoch == 2);
  CHECK(out[1].message.epoch == 2);
  CHECK(out[1].duplicate);
  const std::vector<Message> after = read_all(log, "g");
  REQUIRE(after.size() == 1);
  CHECK(after[0].epoch == 2);
  CHECK(read_all(log, "h")[0].epoch == 1);
}

TEST_CASE_TEMPLATE("store: reset starts a new epoch and forgets the history", T, ALL_STORES) {
  T stores;
  MessageStore& log = stores.log();
  CHECK(head_of(log, "g").epoch == 0);
  append_ok(log, {request("g", "ann", "c1", "old"), request("g", "ann", ""), request("keep", "ann", "k1")});
  CHECK(head_of(log, "g").epoch == 1);
  CHECK(head_of(log, "g").head == 2);

  CHECK(value_of(log.reset_group("g")) == 2);
  CHECK(head_of(log, "g").head == 0);
  CHECK(head_of(log, "g").epoch == 2);
  CHECK(read_all(log, "g").empty());

  // Ids restart at 1 in the new epoch; the forgotten message's key is free.
  const std::vector<AppendOutcome> out = append_ok(log, {request("g", "ann", "c1", "new")});
  CHECK_FALSE(out[0].duplicate);
  CHECK(out[0].message.msg_id == 1);
  CHECK(head_of(log, "g").epoch == 2);
  CHECK(read_all(log, "g")[0].contents == "new");

  // Other groups keep their history and their keys.
  CHECK(ids_of(read_all(log, "keep")) == one_to(1));
  CHECK(append_ok(log, {request("keep", "ann", "k1")})[0].duplicate);
  CHECK(head_of(log, "keep").epoch == 1);

  CHECK(value_of(log.reset_group("g")) == 3);
  CHECK(value_of(log.reset_group("fresh")) == 1);
  append_ok(log, {request("fresh", "ann", "")});
  CHECK(head_of(log, "fresh").epoch == 1);
  CHECK(head_of(log, "fresh").head == 1);
}

// --- MembershipStore ---

TEST_CASE_TEMPLATE("store: create a group, its owner is its first member", T, ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  CHECK_FALSE(value_of(m.group_exists("g")));
  require_ok(m.create_group("g", "owner"));
  CHECK(value_of(m.group_exists("g")));
  CHECK(value_of(m.role_of("g", "owner")) == Role::kOwner);
  const std::vector<Member> members = value_of(m.members("g"));
  REQUIRE(members.size() == 1);
  CHECK(members[0].user_id == "owner");
  CHECK(members[0].role == Role::kOwner);

  CHECK(m.create_group("g", "other").code() == Code::kAlreadyExists);
  CHECK_FALSE(value_of(m.role_of("g", "other")).has_value());
  CHECK(m.create_group("", "owner").code() == Code::kInvalidArgument);
  CHECK(m.create_group("h", "").code() == Code::kInvalidArgument);
  CHECK_FALSE(value_of(m.group_exists("h")));
}

TEST_CASE_TEMPLATE("store: add, change and remove members", T, ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  require_ok(m.create_group("g", "owner"));
  require_ok(m.create_group("a", "zed"));
  for (const char* user : {"zed", "amy", "Bob", "\xc3\xa9mile", "amy"}) {
    require_ok(m.add("g", user, Role::kMember));
  }
  require_ok(m.add("g", "Bob", Role::kOwner));

  const std::vector<Member> members = value_of(m.members("g"));
  std::vector<std::string> names;
  names.reserve(members.size());
  for (const Member& member : members) names.push_back(member.user_id);
  CHECK(names == std::vector<std::string>{"Bob", "amy", "owner", "zed", "\xc3\xa9mile"});
  CHECK(members[0].role == Role::kOwner);
  CHECK(members[1].role == Role::kMember);

  CHECK(value_of(m.groups_of("zed")) == std::vector<std::string>{"a", "g"});
  CHECK(value_of(m.groups_of("amy")) == std::vector<std::string>{"g"});
  CHECK(value_of(m.groups_of("nobody")).empty());
  CHECK(value_of(m.role_of("g", "Bob")) == Role::kOwner);
  CHECK(value_of(m.role_of("g", "amy")) == Role::kMember);

  require_ok(m.remove("g", "zed"));
  CHECK_FALSE(value_of(m.role_of("g", "zed")).has_value());
  CHECK(value_of(m.groups_of("zed")) == std::vector<std::string>{"a"});
  CHECK(value_of(m.members("g")).size() == 4);
  CHECK(m.remove("g", "zed").code() == Code::kNotFound);
  CHECK(m.remove("nope", "amy").code() == Code::kNotFound);
}

TEST_CASE_TEMPLATE("store: membership of an unknown group", T, ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  CHECK(m.add("nope", "amy", Role::kMember).code() == Code::kNotFound);
  CHECK_FALSE(value_of(m.group_exists("nope")));
  CHECK(value_of(m.groups_of("amy")).empty());
  CHECK(m.members("nope").status().code() == Code::kNotFound);
  CHECK_FALSE(value_of(m.role_of("nope", "amy")).has_value());
  require_ok(m.create_group("g", "owner"));
  CHECK(m.add("g", "", Role::kMember).code() == Code::kInvalidArgument);
  CHECK(value_of(m.members("g")).size() == 1);
}

// --- SessionDirectory ---

TEST_CASE_TEMPLATE("store: directory entries expire at their time", T, ALL_STORES) {
  T stores;
  SessionDirectory& d = stores.directory();
  require_ok(d.put("u1", "n2", 200));
  require_ok(d.put("u1", "n1", 100));
  require_ok(d.put("u2", "n1", 100));
  CHECK(nodes_of(d, {"u1", "u2", "u3"}, 50) == Nodes{{"n1", "n2"}, {"n1"}, {}});
  CHECK(nodes_of(d, {"u1", "u2"}, 99) == Nodes{{"n1", "n2"}, {"n1"}});
  CHECK(nodes_of(d, {"u1", "u2"}, 100) == Nodes{{"n2"}, {}});
  CHECK(nodes_of(d, {"u2", "u1"}, 200) == Nodes{{}, {}});
  CHECK(nodes_of(d, {}, 0).empty());
}

TEST_CASE_TEMPLATE("store: put sets an entry's expiry, erase removes one entry", T, ALL_STORES) {
  T stores;
  SessionDirectory& d = stores.directory();
  require_ok(d.put("u1", "n1", 100));
  require_ok(d.put("u1", "n1", 300));
  CHECK(nodes_of(d, {"u1"}, 250) == Nodes{{"n1"}});
  require_ok(d.put("u1", "n1", 120));  // the newest put wins, even when earlier
  CHECK(nodes_of(d, {"u1"}, 150) == Nodes{{}});

  require_ok(d.put("u1", "n2", 500));
  require_ok(d.put("u2", "n1", 500));
  require_ok(d.erase("u1", "n2"));
  require_ok(d.erase("u1", "n2"));
  require_ok(d.erase("nobody", "n9"));
  CHECK(nodes_of(d, {"u1", "u2"}, 0) == Nodes{{"n1"}, {"n1"}});
  CHECK(d.put("", "n1", 1).code() == Code::kInvalidArgument);
  CHECK(d.put("u1", "", 1).code() == Code::kInvalidArgument);
}

TEST_CASE_TEMPLATE("store: prune deletes expired entries only", T, ALL_STORES) {
  T stores;
  SessionDirectory& d = stores.directory();
  require_ok(d.put("u1", "dead", 100));
  require_ok(d.put("u1", "alive", 1000));
  require_ok(d.put("u2", "dead", 100));
  require_ok(d.prune(100));
  // Gone for good: a heartbeat of the dead node no longer brings them back.
  require_ok(d.refresh_node("dead", 5000));
  CHECK(nodes_of(d, {"u1", "u2"}, 200) == Nodes{{"alive"}, {}});
  require_ok(d.prune(999));
  CHECK(nodes_of(d, {"u1"}, 200) == Nodes{{"alive"}});
}

TEST_CASE_TEMPLATE("store: a node's heartbeat and restart", T, ALL_STORES) {
  T stores;
  SessionDirectory& d = stores.directory();
  require_ok(d.put("u1", "n1", 100));
  require_ok(d.put("u2", "n1", 100));
  require_ok(d.put("u1", "n2", 100));

  require_ok(d.refresh_node("n1", 1000));
  CHECK(nodes_of(d, {"u1", "u2"}, 500) == Nodes{{"n1"}, {"n1"}});
  require_ok(d.refresh_node("unknown", 1000));

  require_ok(d.drop_node("n1"));
  CHECK(nodes_of(d, {"u1", "u2"}, 0) == Nodes{{"n2"}, {}});
  require_ok(d.drop_node("n1"));
  require_ok(d.put("u2", "n1", 100));
  CHECK(nodes_of(d, {"u2"}, 0) == Nodes{{"n1"}});
}

#ifndef PARLEY_CONFORMANCE_REDIS
// --- PresenceStore (what only the SQLite store promises is in
// sqlite_store_test.cpp) ---

TEST_CASE_TEMPLATE("store: presence is the best status over a user's live nodes", T, PRESENCE_STORES) {
  T stores;
  SessionDirectory& d = stores.directory();
  PresenceStore& p = stores.presence();
  std::vector<PresenceStatus> out;
  require_ok(d.put("ann", "n1", 1000));
  require_ok(d.put("ann", "n2", 500));
  require_ok(d.put("bob", "n1", 1000));
  require_ok(p.set_presence("ann", "n1", PresenceStatus::kAway));
  require_ok(p.set_presence("ann", "n2", PresenceStatus::kOnline));
  require_ok(p.set_presence("bob", "n1", PresenceStatus::kAway));
  require_ok(p.presence({"ann", "bob", "cy"}, 100, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kOnline, PresenceStatus::kAway,
                                           PresenceStatus::kOffline});
  // n2's entry expired: only n1's status counts. An entry is live while
  // now < its expiry, as in the session directory.
  require_ok(p.presence({"ann"}, 600, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kAway});
  require_ok(p.presence({"ann"}, 499, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kOnline});
  require_ok(p.presence({"ann"}, 500, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kAway});
  // kOffline removes a node's status.
  require_ok(p.set_presence("ann", "n2", PresenceStatus::kOffline));
  require_ok(p.presence({"ann"}, 100, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kAway});
  require_ok(p.set_presence("ann", "n2", PresenceStatus::kOnline));
  // The session on n1 closed (erase), or its node died (prune): offline.
  require_ok(d.erase("ann", "n1"));
  require_ok(p.presence({"ann", "bob"}, 100, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kOnline, PresenceStatus::kAway});
  require_ok(d.prune(1000));
  require_ok(p.presence({"ann", "bob"}, 100, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kOffline, PresenceStatus::kOffline});
}

#endif  // PARLEY_CONFORMANCE_REDIS
