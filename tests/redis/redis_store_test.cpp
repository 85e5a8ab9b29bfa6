// What only the Redis store promises (the shared contracts run in
// store_conformance_redis.cpp): retention that answers "trimmed" instead of
// leaving holes, dedup keys with a TTL, the key layout of docs/redis.md,
// presence, errors while Redis is down and recovery, and a node over Redis
// whose history was trimmed under it.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "parley/loopback.hpp"
#include "parley/redis_store.hpp"
#include "store/redis_client.hpp"
#include "support/redis_fixture.hpp"

using namespace parley;

namespace {

template <typename T>
T value_of(Result<T> r) {
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r.value());
}

void require_ok(const Status& s) {
  REQUIRE_MESSAGE(s.is_ok(), s.to_string());
}

std::unique_ptr<RedisStore> open(const std::string& endpoint, RedisStoreOptions o = {}) {
  o.endpoints = endpoint;
  return value_of(open_redis_store(o));
}

std::vector<AppendOutcome> append(MessageStore& log, const std::string& group, int n, int64_t ts,
                                  const std::string& cid_prefix = "") {
  std::vector<AppendRequest> batch;
  for (int i = 0; i < n; ++i) {
    batch.push_back({group, "ann", cid_prefix.empty() ? "" : cid_prefix + std::to_string(i),
                     "m" + std::to_string(i), ts});
  }
  std::vector<AppendOutcome> out;
  require_ok(log.append(batch, &out));
  return out;
}

GroupHead head_of(MessageStore& log, const std::string& group) {
  std::vector<GroupHead> out;
  require_ok(log.heads({group}, &out));
  return out.at(0);
}

std::unique_ptr<redis::Client> raw_client(const std::string& endpoint) {
  redis::Options o;
  o.seeds = value_of(redis::parse_endpoints(endpoint));
  return value_of(redis::Client::connect(o));
}

}  // namespace

TEST_CASE("redis store: retention by count trims old messages and says so") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.retain_messages = 50;
  auto store = open(server.endpoint(), o);
  for (int batch = 0; batch < 20; ++batch) append(*store, "busy", 50, 1000);
  const GroupHead h = head_of(*store, "busy");
  CHECK(h.head == 1000);
  // Trimming keeps exactly the newest 50 (it reads what it removes, so the
  // unread counts' members go with it: decision 49).
  CHECK(h.trimmed == 950);

  std::vector<Message> got;
  const Status st = store->read("busy", 0, 10, &got);
  CHECK(st.code() == Code::kTrimmed);
  CHECK(st.message().find("before id " + std::to_string(h.trimmed + 1)) != std::string::npos);
  CHECK(got.empty());
  CHECK(store->read("busy", h.trimmed - 1, 10, &got).code() == Code::kTrimmed);

  // From the trim point on, the history is dense up to the head.
  require_ok(store->read("busy", h.trimmed, 100000, &got));
  REQUIRE(got.size() == h.head - h.trimmed);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].msg_id == h.trimmed + 1 + i);
  // Asking at or beyond the head is an empty answer, not an error.
  got.clear();
  require_ok(store->read("busy", h.head, 10, &got));
  CHECK(got.empty());
  // Other groups are untouched.
  append(*store, "quiet", 3, 1000);
  CHECK(head_of(*store, "quiet").trimmed == 0);
}

TEST_CASE("redis store: unread counts start at the retention edge, and what was trimmed leaves no members") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.retain_messages = 20;
  o.key_prefix = "cnt";
  auto store = open(server.endpoint(), o);
  for (int i = 0; i < 50; ++i) {  // ann, then bob mentioning ann, in turn
    AppendRequest r{"g", i % 2 == 0 ? "ann" : "bob", "", "m", 1000};
    if (i % 2 == 1) r.entry.mentions = {"ann", "bob"};
    std::vector<AppendOutcome> out;
    require_ok(store->append({r}, &out));
  }
  std::vector<UnreadCount> c;
  require_ok(store->unread({UnreadQuery{"g", "ann", {1, 3}}, UnreadQuery{"g", "ann", {1, 40}}}, &c));
  REQUIRE(c.size() == 2);
  CHECK(c[0].trimmed);
  CHECK(c[0].after == 30);
  CHECK(c[0].unread == 10);  // bob's of 31..50
  CHECK(c[0].mentions == 10);
  CHECK_FALSE(c[1].trimmed);
  CHECK(c[1].unread == 5);
  auto raw = raw_client(server.endpoint());
  auto card = [&](const std::string& key) {
    return value_of(raw->call(redis::Command{{"ZCARD", "cnt:g:{g}:" + key}, 1})).integer;
  };
  CHECK(card("own") == 20);
  CHECK(card("mn") == 10);
  CHECK(card("skip") == 0);
}

TEST_CASE("redis store: retention by age trims what is older than the newest append allows") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.retain_ms = 10'000;
  auto store = open(server.endpoint(), o);
  append(*store, "g", 150, 1'000);           // ids 1..150, old
  append(*store, "g", 10, 5'000);            // ids 151..160
  CHECK(head_of(*store, "g").trimmed == 0);  // nothing older than 10 s yet
  append(*store, "g", 1, 12'000);            // the 1 s messages are now 11 s old
  const GroupHead h = head_of(*store, "g");
  CHECK(h.head == 161);
  CHECK(h.trimmed == 150);
  std::vector<Message> got;
  CHECK(store->read("g", 0, 10, &got).code() == Code::kTrimmed);
  require_ok(store->read("g", 150, 100, &got));
  REQUIRE(got.size() == 11);
  CHECK(got.front().msg_id == 151);
  CHECK(got.front().timestamp_ms == 5'000);
}

TEST_CASE("redis store: dedup keys carry the configured TTL and live in the group's slot") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.dedup_ttl_s = 777;
  o.key_prefix = "ttl";
  auto store = open(server.endpoint(), o);
  append(*store, "room}{%", 2, 1000, "cid-");
  auto raw = raw_client(server.endpoint());
  redis::Reply keys = value_of(raw->call(redis::Command{{"KEYS", "ttl:g:*:d:*"}, -1}));
  REQUIRE(keys.elements.size() == 2);
  for (const redis::Reply& k : keys.elements) {
    // The group id is escaped inside one hash tag: every key of the group
    // hashes to the same slot (one script may touch them all on a cluster).
    CHECK(k.str.rfind("ttl:g:{room%7D%7B%25}:d:1:", 0) == 0);
    CHECK(redis::key_slot(k.str) == redis::key_slot("ttl:g:{room%7D%7B%25}:meta"));
    const redis::Reply ttl = value_of(raw->call(redis::Command{{"TTL", k.str}, 1}));
    CHECK(ttl.integer > 700);
    CHECK(ttl.integer <= 777);
  }
  // A resend within the TTL is a duplicate; after the key expires it would
  // be new (checked by expiring it by hand).
  CHECK(append(*store, "room}{%", 1, 2000, "cid-")[0].duplicate);
  require_ok(raw->call(redis::Command{{"DEL", keys.elements[0].str}, 1}).status());
  require_ok(raw->call(redis::Command{{"DEL", keys.elements[1].str}, 1}).status());
  const std::vector<AppendOutcome> again = append(*store, "room}{%", 1, 2000, "cid-");
  CHECK_FALSE(again[0].duplicate);
  CHECK(again[0].message.msg_id == 3);
}

TEST_CASE("redis store: while Redis is down calls fail with unavailable, then work again") {
  testing::RedisServer server({"--appendonly", "yes", "--appendfsync", "always"});
  RedisStoreOptions o;
  o.reconnect_min_ms = 10;
  o.reconnect_max_ms = 50;
  auto store = open(server.endpoint(), o);
  const std::vector<AppendOutcome> before = append(*store, "g", 5, 1000, "a");
  require_ok(store->create_group("g", "ann"));

  server.kill9();
  std::vector<AppendOutcome> out;
  const Status down = store->append({{"g", "ann", "b0", "x", 1000}}, &out);
  CHECK(down.code() == Code::kUnavailable);
  CHECK(down.message().find(server.endpoint()) != std::string::npos);
  CHECK(store->ping().code() == Code::kUnavailable);
  std::vector<GroupHead> heads;
  CHECK_FALSE(store->heads({"g"}, &heads).is_ok());
  CHECK_FALSE(store->role_of("g", "ann").is_ok());

  server.start();
  // Bounded: the client retries after its backoff (at most 50 ms here).
  Status up = store->ping();
  for (int i = 0; i < 200 && !up.is_ok(); ++i) up = store->ping();
  require_ok(up);
  // Everything acknowledged before the crash is there (appendfsync always),
  // and sequencing goes on from it.
  CHECK(head_of(*store, "g").head == 5);
  CHECK(append(*store, "g", 5, 1000, "a")[4].duplicate);
  CHECK(append(*store, "g", 1, 1000)[0].message.msg_id == 6);
  CHECK(value_of(store->role_of("g", "ann")) == std::optional<Role>(Role::kOwner));
}

TEST_CASE("redis store: bad options are refused at open") {
  RedisStoreOptions o;
  o.key_prefix = "a{b}";
  CHECK(open_redis_store(o).status().code() == Code::kInvalidArgument);
  o = {};
  o.endpoints = "http://example";
  CHECK(open_redis_store(o).status().code() == Code::kInvalidArgument);
  o.endpoints = "127.0.0.1:1";  // nothing listens on port 1
  CHECK(open_redis_store(o).status().code() == Code::kUnavailable);
}

TEST_CASE("redis store: a session resuming into trimmed history is told, then gets the rest in order") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.retain_messages = 20;
  auto store = open(server.endpoint(), o);
  require_ok(store->create_group("g", "ann"));
  require_ok(store->add("g", "bob", Role::kMember));
  for (int i = 0; i < 10; ++i) append(*store, "g", 30, 1000);  // 300 messages, trimmed
  const GroupHead h = head_of(*store, "g");
  REQUIRE(h.trimmed > 0);

  LoopbackCluster cluster(NodeStores{*store, *store, *store, store.get()});
  NodeOptions no;
  no.tail_per_group = 8;  // the resume must reach the store
  value_of(cluster.add_node(no));
  std::vector<ServerEvent> events;
  const SessionId bob =
      value_of(cluster.connect(0, "bob", [&](SessionId, const ServerEvent& ev) { events.push_back(ev); }));
  cluster.request(bob, ResumeReq{7, "g", 0, 0});
  cluster.run_for(200);

  std::vector<uint64_t> ids;
  bool told = false;
  bool resumed = false;
  for (const ServerEvent& ev : events) {
    if (const auto* e = std::get_if<ErrorEv>(&ev)) {
      CHECK(e->code == Code::kTrimmed);
      CHECK(e->rid == 7);
      CHECK(e->group_id == "g");
      CHECK(ids.empty());  // before any message
      told = true;
    } else if (const auto* m = std::get_if<MessageEv>(&ev)) {
      ids.push_back(m->message->msg_id);
    } else if (std::holds_alternative<ResumedEv>(ev)) {
      resumed = true;
    }
  }
  CHECK(told);
  CHECK(resumed);
  REQUIRE(ids.size() == h.head - h.trimmed);
  for (size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == h.trimmed + 1 + i);
}

TEST_CASE("redis store: a deleted message's text and its edits' text are gone from every key of the group") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.key_prefix = "erase";
  std::unique_ptr<RedisStore> store = open(server.endpoint(), o);
  const std::string secret = "SECRET-0123456789-TEXT";
  const std::string edited = "EDITED-9876543210-TEXT";
  AppendRequest edit{"g", "ann", "e1", edited, 2};
  edit.entry.kind = EntryKind::kEdit;
  edit.entry.target = 1;
  std::vector<AppendOutcome> out;
  require_ok(store->append({{"g", "ann", "c1", secret, 1}, edit, {"g", "bob", "", "stays", 3}}, &out));
  AppendRequest del{"g", "ann", "", "", 4};
  del.entry.kind = EntryKind::kDelete;
  del.entry.target = 1;
  require_ok(store->append({del}, &out));
  REQUIRE(out.at(0).status.is_ok());
  // Everything under the prefix, whatever its type.
  std::unique_ptr<redis::Client> raw = raw_client(server.endpoint());
  redis::Reply keys = value_of(raw->call(redis::Command{{"KEYS", "erase:*"}, -1}));
  REQUIRE_FALSE(keys.elements.empty());
  std::string dump;
  std::function<void(const redis::Reply&)> add = [&](const redis::Reply& r) {
    dump += r.str;
    dump += ' ';
    for (const redis::Reply& e : r.elements) add(e);
  };
  for (const redis::Reply& k : keys.elements) {
    const std::string type = value_of(raw->call(redis::Command{{"TYPE", k.str}, 1})).str;
    std::vector<std::string> argv;
    if (type == "stream") argv = {"XRANGE", k.str, "-", "+"};
    if (type == "zset") argv = {"ZRANGE", k.str, "0", "-1"};
    if (type == "set") argv = {"SMEMBERS", k.str};
    if (type == "hash") argv = {"HGETALL", k.str};
    if (type == "string") argv = {"GET", k.str};
    const std::string what = "a key of type " + type;
    REQUIRE_MESSAGE(!argv.empty(), what);
    add(value_of(raw->call(redis::Command{argv, 1})));
  }
  CHECK(dump.find("stays") != std::string::npos);
  CHECK(dump.find(secret) == std::string::npos);
  CHECK(dump.find(edited) == std::string::npos);
}

TEST_CASE("redis store: a group written before folded reads existed gets their keys built by its first one") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.key_prefix = "fold";
  std::unique_ptr<RedisStore> store = open(server.endpoint(), o);
  AppendRequest answer{"g", "bob", "", "yes", 2};
  answer.entry.reply_to = 1;
  AppendRequest like{"g", "bob", "", "👍", 3};
  like.entry.kind = EntryKind::kReaction;
  like.entry.target = 1;
  AppendRequest gone = answer;
  gone.contents = "no";
  AppendRequest del{"g", "bob", "", "", 5};
  del.entry.kind = EntryKind::kDelete;
  del.entry.target = 4;
  std::vector<AppendOutcome> out;
  require_ok(store->append({{"g", "ann", "", "question?", 1}, answer, like, gone, del}, &out));
  FoldedPage before;
  require_ok(store->read_folded("g", 0, 10, "bob", &before));
  REQUIRE(before.folds.size() == 3);
  CHECK(before.folds[0] == Fold{0, {ReactionCount{"👍", 1, true}}, 1});
  // What an older version wrote: no reaction index, no reply counts, no mark.
  std::unique_ptr<redis::Client> raw = raw_client(server.endpoint());
  require_ok(raw->call(redis::Command{{"DEL", "fold:g:{g}:rxz", "fold:g:{g}:replies"}, 1}).status());
  require_ok(raw->call(redis::Command{{"HDEL", "fold:g:{g}:meta", "fold"}, 1}).status());
  FoldedPage rebuilt;
  require_ok(store->read_folded("g", 0, 10, "bob", &rebuilt));
  CHECK(rebuilt.folds == before.folds);
  CHECK(value_of(raw->call(redis::Command{{"HGET", "fold:g:{g}:meta", "fold"}, 1})).str == "1");
  CHECK(value_of(raw->call(redis::Command{{"HGET", "fold:g:{g}:replies", "1"}, 1})).str == "1");
}

TEST_CASE("redis store: discovery skips a group the public index still names after it was made private") {
  testing::RedisServer server;
  RedisStoreOptions o;
  o.key_prefix = "disc";
  std::unique_ptr<RedisStore> store = open(server.endpoint(), o);
  for (const char* g : {"pub-a", "pub-b", "pub-c", "pub-d"}) require_ok(store->create_group(g, "owner"));
  // A node that died between the group's own script and the index's ZREM
  // (they are in different slots) left pub-b private but indexed.
  std::unique_ptr<redis::Client> raw = raw_client(server.endpoint());
  require_ok(raw->call(redis::Command{{"HSET", "disc:g:{pub-b}:info", "kind", "1"}, 1}).status());
  CHECK(value_of(raw->call(redis::Command{{"ZSCORE", "disc:public", "pub-b"}, 1})).str == "0");
  std::vector<GroupListing> page;
  require_ok(store->public_groups("pub", "", 10, &page));
  std::vector<std::string> ids;
  for (const GroupListing& g : page) ids.push_back(g.group_id);
  CHECK(ids == std::vector<std::string>{"pub-a", "pub-c", "pub-d"});
  // A page that meets the stale entry reads on and stays full.
  require_ok(store->public_groups("pub", "", 2, &page));
  REQUIRE(page.size() == 2);
  CHECK(page[0].group_id == "pub-a");
  CHECK(page[1].group_id == "pub-c");
}
