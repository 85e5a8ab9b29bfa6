// The Redis client (src/store/redis_client.hpp) against real redis-server
// processes: routing, pipelining, redirections, timeouts and reconnects.
#include "store/redis_client.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_fixture.hpp"

namespace parley::redis {
namespace {

using namespace std::string_literals;
using testing::RedisCluster;
using testing::RedisServer;

Options options_for(const std::string& endpoints) {
  Result<std::vector<Endpoint>> seeds = parse_endpoints(endpoints);
  REQUIRE_MESSAGE(seeds.is_ok(), seeds.status().to_string());
  Options options;
  options.seeds = *seeds;
  return options;
}

std::unique_ptr<Client> connect_or_fail(const Options& options) {
  Result<std::unique_ptr<Client>> client = Client::connect(options);
  REQUIRE_MESSAGE(client.is_ok(), client.status().to_string());
  return std::move(*client);
}

Command get(const std::string& key) {
  return Command{{"GET", key}, 1};
}
Command set(const std::string& key, const std::string& value) {
  return Command{{"SET", key, value}, 1};
}

// Calls PING until it succeeds (at most 10 s); the last result.
Result<Reply> ping_until_up(Client& client) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    Result<Reply> r = client.call(Command{{"PING"}, -1});
    if (r.is_ok() || std::chrono::steady_clock::now() > deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The master that owns a slot in RedisCluster's initial layout.
size_t initial_owner(uint16_t slot) {
  return slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2;
}

// A key whose slot master `m` owns in the initial layout.
std::string key_on(size_t m) {
  for (int i = 0;; ++i) {
    std::string key = "key:" + std::to_string(i);
    if (initial_owner(key_slot(key)) == m) return key;
  }
}

std::string get_direct(int port, const std::string& key) {
  testing::detail::Connection c(port);
  testing::detail::ReplyPtr r = c.command({"GET", key});
  return r->type == REDIS_REPLY_NIL ? "(nil)" : testing::detail::text_of(*r);
}

// -- key_slot -----------------------------------------------------------------

TEST_CASE("key_slot gives the cluster spec's slots and follows the hash-tag rule") {
  CHECK(key_slot("foo") == 12182);
  CHECK(key_slot("123456789") == 12739);  // CRC16/XMODEM check value 0x31C3
  CHECK(key_slot("") == 0);
  CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
  CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
  CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
  CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));
  // An empty tag {} does not count: the whole key is hashed.
  CHECK(key_slot("foo{}{bar}") == 8363);
  CHECK(key_slot("foo{}{bar}") != key_slot("bar"));
  CHECK(key_slot("{}") == 15257);
  CHECK(key_slot("a{b") == 13340);  // no closing brace: the whole key
}

TEST_CASE("key_slot agrees with CLUSTER KEYSLOT of a real server") {
  RedisServer server({"--cluster-enabled", "yes"});
  testing::detail::Connection c(server.port());
  std::vector<std::string> keys = {"foo", "foo{}{bar}", "foo{{bar}}zap",   "{a}b",
                                   "}{",  "{{}}",       "bin\0ary{x\0y}"s, std::string(1000, 'z')};
  for (int i = 0; i < 200; ++i) keys.push_back("group:" + std::to_string(i * 7919) + (i % 3 ? ":log" : ""));
  for (const std::string& key : keys) {
    CAPTURE(key);
    CHECK(std::to_string(key_slot(key)) == c.ok({"CLUSTER", "KEYSLOT", key}));
  }
}

// -- parse_endpoints ------------------------------------------------------------

TEST_CASE("parse_endpoints accepts host:port lists with or without redis://") {
  Result<std::vector<Endpoint>> one = parse_endpoints("127.0.0.1:6379");
  REQUIRE(one.is_ok());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].host == "127.0.0.1");
  CHECK((*one)[0].port == 6379);

  Result<std::vector<Endpoint>> many = parse_endpoints("redis://a.example:7000,b:7001,[::1]:7002");
  REQUIRE(many.is_ok());
  REQUIRE(many->size() == 3);
  CHECK((*many)[0].host == "a.example");
  CHECK((*many)[0].port == 7000);
  CHECK((*many)[1].host == "b");
  CHECK((*many)[1].port == 7001);
  CHECK((*many)[2].host == "::1");
  CHECK((*many)[2].port == 7002);

  CHECK(parse_endpoints("localhost:65535").is_ok());
}

TEST_CASE("parse_endpoints rejects malformed input with kInvalidArgument") {
  for (const char* bad : {"", "redis://", "localhost", "localhost:", ":6379", "host:0", "host:65536",
                          "host:12a", "host:-1", "a:1,", ",a:1", "a:1,,b:2", "http://a:1",
                          "redis://user:pw@a:1", "a b:1", "::1:6379", "[::1]6379", "a:1 ", "rediss://a:1"}) {
    CAPTURE(bad);
    Result<std::vector<Endpoint>> r = parse_endpoints(bad);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
}

// -- standalone -----------------------------------------------------------------

TEST_CASE("standalone: a pipelined run returns every reply in order") {
  RedisServer server;
  auto client = connect_or_fail(options_for(server.endpoint()));
  CHECK_FALSE(client->cluster_mode());
  CHECK(client->masters() == 1);

  std::vector<Command> commands;
  for (int i = 0; i < 300; ++i) {
    commands.push_back(set("k:" + std::to_string(i), "v:" + std::to_string(i)));
    commands.push_back(get("k:" + std::to_string(i)));
    commands.push_back(Command{{"INCR", "counter"}, 1});
  }
  std::vector<Reply> replies = {Reply{}};  // run() clears it
  REQUIRE(client->run(commands, &replies).is_ok());
  REQUIRE(replies.size() == commands.size());
  for (size_t i = 0; i < 300; ++i) {
    CAPTURE(i);
    const Reply& s = replies[3 * i];
    CHECK(s.type == Reply::Type::kStatus);
    CHECK(s.str == "OK");
    const Reply& g = replies[3 * i + 1];
    CHECK(g.type == Reply::Type::kString);
    CHECK(g.str == "v:" + std::to_string(i));
    const Reply& n = replies[3 * i + 2];
    CHECK(n.type == Reply::Type::kInteger);
    CHECK(n.integer == static_cast<long long>(i + 1));
  }

  Result<Reply> missing = client->call(get("no-such-key"));
  REQUIRE(missing.is_ok());
  CHECK(missing->is_nil());

  Result<Reply> list = client->call(Command{{"RPUSH", "list", "a", "b", "c"}, 1});
  REQUIRE(list.is_ok());
  Result<Reply> range = client->call(Command{{"LRANGE", "list", "0", "-1"}, 1});
  REQUIRE(range.is_ok());
  REQUIRE(range->type == Reply::Type::kArray);
  REQUIRE(range->elements.size() == 3);
  CHECK(range->elements[2].str == "c");

  std::vector<Reply> none = {Reply{}};
  REQUIRE(client->run({}, &none).is_ok());
  CHECK(none.empty());
}

TEST_CASE("standalone: an error reply is a kError reply, not a failed run") {
  RedisServer server;
  auto client = connect_or_fail(options_for(server.endpoint()));
  std::vector<Reply> replies;
  REQUIRE(
      client
          ->run({set("s", "x"), Command{{"LPUSH", "s", "y"}, 1}, Command{{"NOSUCHCOMMAND"}, -1}, get("s")},
                &replies)
          .is_ok());
  REQUIRE(replies.size() == 4);
  CHECK(replies[0].str == "OK");
  CHECK(replies[1].is_error());
  CHECK(replies[1].str.rfind("WRONGTYPE", 0) == 0);
  CHECK(replies[2].is_error());
  CHECK(replies[2].str.rfind("ERR unknown command", 0) == 0);
  CHECK(replies[3].str == "x");
}

TEST_CASE("standalone: keys and values are binary-safe") {
  RedisServer server;
  auto client = connect_or_fail(options_for(server.endpoint()));
  const std::string key = "k\0ey\r\n"s;
  std::string value = "\0\r\n$3\r\n*1\xff"s;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  std::vector<Reply> replies;
  REQUIRE(client->run({set(key, value), get(key), Command{{"STRLEN", key}, 1}}, &replies).is_ok());
  REQUIRE(replies.size() == 3);
  CHECK(replies[1].type == Reply::Type::kString);
  CHECK(replies[1].str == value);
  CHECK(replies[2].integer == static_cast<long long>(value.size()));
  CHECK(get_direct(server.port(), key) == value);
}

TEST_CASE("standalone: AUTH with the password, kUnauthenticated without it or with a wrong one") {
  RedisServer server({"--requirepass", "s3cret"});
  Options options = options_for(server.endpoint());
  Result<std::unique_ptr<Client>> anonymous = Client::connect(options);
  REQUIRE_FALSE(anonymous.is_ok());
  CHECK(anonymous.status().code() == Code::kUnauthenticated);

  options.password = "wrong";
  Result<std::unique_ptr<Client>> wrong = Client::connect(options);
  REQUIRE_FALSE(wrong.is_ok());
  CHECK(wrong.status().code() == Code::kUnauthenticated);

  options.password = "s3cret";
  auto client = connect_or_fail(options);
  CHECK_FALSE(client->cluster_mode());
  Result<Reply> r = client->call(set("a", "1"));
  REQUIRE(r.is_ok());
  CHECK(r->str == "OK");
}

TEST_CASE("connect fails with kUnavailable when no seed answers, and skips dead seeds") {
  const int dead_port = testing::detail::free_port();
  Options options = options_for("127.0.0.1:" + std::to_string(dead_port));
  Result<std::unique_ptr<Client>> none = Client::connect(options);
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().code() == Code::kUnavailable);
  CHECK(none.status().message().find("127.0.0.1:" + std::to_string(dead_port)) != std::string::npos);

  RedisServer server;
  auto client =
      connect_or_fail(options_for("127.0.0.1:" + std::to_string(dead_port) + "," + server.endpoint()));
  Result<Reply> r = client->call(Command{{"PING"}, -1});
  REQUIRE(r.is_ok());
  CHECK(r->str == "PONG");
}

// -- cluster ----------------------------------------------------------------------

TEST_CASE("cluster: 1000 keys over three masters in one run") {
  RedisCluster cluster;
  auto client = connect_or_fail(options_for(cluster.seeds()));
  CHECK(client->cluster_mode());
  CHECK(client->masters() == 3);

  std::vector<Command> writes;
  std::vector<Command> reads;
  for (int i = 0; i < 1000; ++i) {
    writes.push_back(set("key:" + std::to_string(i), "value:" + std::to_string(i)));
    reads.push_back(get("key:" + std::to_string(i)));
  }
  reads.push_back(Command{{"PING"}, -1});  // no key: any master
  std::vector<Reply> replies;
  REQUIRE(client->run(writes, &replies).is_ok());
  REQUIRE(replies.size() == 1000);
  for (const Reply& r : replies) CHECK(r.str == "OK");

  REQUIRE(client->run(reads, &replies).is_ok());
  REQUIRE(replies.size() == 1001);
  for (int i = 0; i < 1000; ++i) CHECK(replies[static_cast<size_t>(i)].str == "value:" + std::to_string(i));
  CHECK(replies[1000].str == "PONG");

  // Each key is on the master that owns its slot, so every master got some.
  long long total = 0;
  for (size_t m = 0; m < 3; ++m) {
    const long long n = std::stoll(testing::detail::Connection(cluster.master(m).port()).ok({"DBSIZE"}));
    CHECK(n > 200);
    total += n;
  }
  CHECK(total == 1000);
  CHECK(get_direct(cluster.master(initial_owner(key_slot("key:7"))).port(), "key:7") == "value:7");
}

TEST_CASE("cluster: MOVED after a slot migration is followed and updates the map") {
  RedisCluster cluster;
  auto client = connect_or_fail(options_for(cluster.seeds()));
  std::vector<Command> writes;
  std::vector<Command> reads;
  for (int i = 0; i < 300; ++i) {
    writes.push_back(set("key:" + std::to_string(i), "value:" + std::to_string(i)));
    reads.push_back(get("key:" + std::to_string(i)));
  }
  // Keys sharing key:7's slot, so the moved slot holds several.
  for (int i = 0; i < 5; ++i) {
    writes.push_back(set("{key:7}:" + std::to_string(i), std::to_string(i)));
    reads.push_back(get("{key:7}:" + std::to_string(i)));
  }
  std::vector<Reply> replies;
  REQUIRE(client->run(writes, &replies).is_ok());

  const uint16_t slot = key_slot("key:7");
  const size_t from = initial_owner(slot);
  const size_t to = (from + 1) % 3;
  cluster.move_slot(slot, to);
  // The old owner now redirects: the client has to follow MOVED.
  {
    testing::detail::Connection c(cluster.master(from).port());
    testing::detail::ReplyPtr r = c.command({"GET", "key:7"});
    REQUIRE(r->type == REDIS_REPLY_ERROR);
    CHECK(testing::detail::text_of(*r).rfind("MOVED " + std::to_string(slot), 0) == 0);
  }

  REQUIRE(client->run(reads, &replies).is_ok());
  REQUIRE(replies.size() == reads.size());
  for (int i = 0; i < 300; ++i) CHECK(replies[static_cast<size_t>(i)].str == "value:" + std::to_string(i));
  for (int i = 0; i < 5; ++i) CHECK(replies[static_cast<size_t>(300 + i)].str == std::to_string(i));

  // The map was updated: the old owner sees no more commands for the slot.
  testing::detail::Connection old_owner(cluster.master(from).port());
  old_owner.ok({"CONFIG", "RESETSTAT"});
  std::vector<Command> slot_reads(reads.begin() + 300, reads.end());
  REQUIRE(client->run(slot_reads, &replies).is_ok());
  REQUIRE(replies.size() == 5);
  CHECK(replies[4].str == "4");
  CHECK(old_owner.ok({"INFO", "errorstats"}).find("errorstat_MOVED") == std::string::npos);

  Result<Reply> w = client->call(set("key:7", "new"));
  REQUIRE(w.is_ok());
  CHECK(w->str == "OK");
  CHECK(get_direct(cluster.master(to).port(), "key:7") == "new");
  CHECK(client->masters() == 3);
}

TEST_CASE("cluster: ASK during a slot migration is followed with ASKING") {
  RedisCluster cluster;
  auto client = connect_or_fail(options_for(cluster.seeds()));
  const std::string other = key_on(0) == "key:7" ? key_on(1) : key_on(0);
  std::vector<Reply> replies;
  REQUIRE(client->run({set("key:7", "seven"), set(other, "other")}, &replies).is_ok());

  const uint16_t slot = key_slot("key:7");
  const size_t from = initial_owner(slot);
  const size_t to = (from + 1) % 3;
  cluster.move_slot(slot, to, /*finish=*/false);
  {
    testing::detail::Connection c(cluster.master(from).port());
    testing::detail::ReplyPtr r = c.command({"GET", "key:7"});
    REQUIRE(r->type == REDIS_REPLY_ERROR);
    CHECK(testing::detail::text_of(*r).rfind("ASK " + std::to_string(slot), 0) == 0);
  }

  REQUIRE(client->run({get(other), get("key:7"), get(other)}, &replies).is_ok());
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].str == "other");
  CHECK(replies[1].str == "seven");
  CHECK(replies[2].str == "other");

  // A new key of the migrating slot is created on the importing master.
  Result<Reply> w = client->call(set("{key:7}new", "fresh"));
  REQUIRE(w.is_ok());
  CHECK(w->str == "OK");
  Result<Reply> r = client->call(get("{key:7}new"));
  REQUIRE(r.is_ok());
  CHECK(r->str == "fresh");
  CHECK(get_direct(cluster.master(from).port(), "{key:7}new").rfind("ASK ", 0) == 0);
}

TEST_CASE("cluster: a dead master fails its commands only, and its slots are found again elsewhere") {
  RedisCluster cluster;
  Options options = options_for(cluster.seeds());
  options.reconnect_min_ms = 5000;  // the dead master stays in backoff throughout
  auto client = connect_or_fail(options);
  const std::string on0 = key_on(0);
  const std::string on1 = key_on(1);
  std::vector<Reply> replies;
  REQUIRE(client->run({set(on0, "zero"), set(on1, "one")}, &replies).is_ok());

  cluster.master(0).kill9();
  Result<Reply> lost = client->call(get(on0));
  REQUIRE_FALSE(lost.is_ok());
  CHECK(lost.status().code() == Code::kUnavailable);
  CHECK(lost.status().message().find(cluster.master(0).endpoint()) != std::string::npos);
  Result<Reply> alive = client->call(get(on1));
  REQUIRE(alive.is_ok());
  CHECK(alive->str == "one");

  // What a failover does: master 1 takes over master 0's slots.
  const std::string id1 = testing::detail::Connection(cluster.master(1).port()).ok({"CLUSTER", "MYID"});
  for (size_t m : {1, 2}) {
    testing::detail::ContextPtr c = testing::detail::try_connect(cluster.master(m).port(), 10000);
    REQUIRE(c != nullptr);
    for (int s = 0; s <= 5460; ++s) {
      const std::string slot = std::to_string(s);
      const char* argv[] = {"CLUSTER", "SETSLOT", slot.c_str(), "NODE", id1.c_str()};
      REQUIRE(redisAppendCommandArgv(c.get(), 5, argv, nullptr) == REDIS_OK);
    }
    for (int s = 0; s <= 5460; ++s) {
      void* raw = nullptr;
      REQUIRE(redisGetReply(c.get(), &raw) == REDIS_OK);
      testing::detail::ReplyPtr r(static_cast<redisReply*>(raw));
      REQUIRE_MESSAGE(r->type == REDIS_REPLY_STATUS, testing::detail::text_of(*r));
    }
  }

  // The failure made the client ask the others for the slot map.
  Result<Reply> moved = client->call(set(on0, "again"));
  REQUIRE_MESSAGE(moved.is_ok(), moved.status().to_string());
  CHECK(moved->str == "OK");
  CHECK(get_direct(cluster.master(1).port(), on0) == "again");
  CHECK(client->masters() == 2);
}

// -- faults -------------------------------------------------------------------------

namespace {
// A client of `server` with a reconnect backoff of 1-2 s, that has set a=1.
std::unique_ptr<Client> client_with_backoff(RedisServer& server) {
  Options options = options_for(server.endpoint());
  options.reconnect_min_ms = 1000;
  options.reconnect_max_ms = 2000;
  auto client = connect_or_fail(options);
  REQUIRE(client->call(set("a", "1")).is_ok());
  return client;
}
}  // namespace

TEST_CASE("faults: a stopped or killed server fails run() fast with kUnavailable, then comes back") {
  RedisServer server;
  auto client = client_with_backoff(server);

  for (bool kill9 : {false, true}) {
    CAPTURE(kill9);
    if (kill9) {
      server.kill9();
    } else {
      server.stop();
    }
    Result<Reply> first = client->call(get("a"));
    REQUIRE_FALSE(first.is_ok());
    CHECK(first.status().code() == Code::kUnavailable);
    CHECK(first.status().message().find(server.endpoint()) != std::string::npos);
    // Inside the backoff delay: no new connect attempt, an immediate failure.
    Result<Reply> second = client->call(get("a"));
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.status().code() == Code::kUnavailable);
    CHECK(second.status().message().find("is down (retrying in ") != std::string::npos);

    server.start();
    Result<Reply> back = ping_until_up(*client);
    REQUIRE_MESSAGE(back.is_ok(), back.status().to_string());
    CHECK(back->str == "PONG");
    std::vector<Reply> replies;
    REQUIRE(client->run({set("b", "2"), get("b")}, &replies).is_ok());
    CHECK(replies[1].str == "2");
  }
}

TEST_CASE("faults: a connection the server dropped while idle (a restart) is replaced at once, not failed") {
  RedisServer server;
  auto client = client_with_backoff(server);
  server.stop();
  server.start();
  // The old connection is dead; the call goes through on a new one.
  Result<Reply> after = client->call(set("b", "2"));
  REQUIRE_MESSAGE(after.is_ok(), after.status().to_string());
  CHECK(after->str == "OK");
  // Once per connection: with the server gone, the call fails (no loop), and
  // the next one is inside the backoff.
  server.stop();
  Result<Reply> down = client->call(get("b"));
  REQUIRE_FALSE(down.is_ok());
  CHECK(down.status().code() == Code::kUnavailable);
  Result<Reply> waiting = client->call(get("b"));
  REQUIRE_FALSE(waiting.is_ok());
  CHECK(waiting.status().message().find("is down (retrying in ") != std::string::npos);
}

TEST_CASE("faults: a command over command_timeout_ms fails with kTimeout, and the client recovers") {
  RedisServer server({"--enable-debug-command", "yes"});
  Options options = options_for(server.endpoint());
  options.command_timeout_ms = 200;
  options.reconnect_min_ms = 50;
  options.reconnect_max_ms = 200;
  auto client = connect_or_fail(options);

  Result<Reply> slow = client->call(Command{{"DEBUG", "SLEEP", "1"}, -1});
  REQUIRE_FALSE(slow.is_ok());
  CHECK(slow.status().code() == Code::kTimeout);
  CHECK(slow.status().message().find("timed out") != std::string::npos);
  CHECK(slow.status().message().find(server.endpoint()) != std::string::npos);

  // The late reply of DEBUG SLEEP must not be taken for PING's.
  Result<Reply> back = ping_until_up(*client);
  REQUIRE_MESSAGE(back.is_ok(), back.status().to_string());
  CHECK(back->str == "PONG");
  std::vector<Reply> replies;
  REQUIRE(client->run({set("x", "1"), get("x")}, &replies).is_ok());
  CHECK(replies[0].str == "OK");
  CHECK(replies[1].str == "1");
}

}  // namespace
}  // namespace parley::redis
