// The HTTP routes (HttpApi) call no store on the I/O thread: every route's
// store work goes to the node's store executor (Node::run_host, or a lookup
// through Node::when_ready) and is answered from its completion.
//
// The node runs on one set of memory stores (the "I/O thread's") and its
// executor, held by the test, on another ("the executor's"), with different
// contents: an answer read from the wrong set shows in the answer, and a
// write to the wrong set shows in that set. Each route must not answer until
// the test runs the executor's jobs.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <optional>
#include <string>

#include "auth.hpp"
#include "http_api.hpp"
#include "parley/server/config.hpp"
#include "unit/async_fixture.hpp"

namespace parley::server {
namespace {

struct ApiFixture : test::AsyncFixture {
  // The executor's stores: g holds alice (owner), bob and dave, and two
  // messages; the node's own stores (the fixture's) hold alice, bob and
  // carol and no messages.
  std::unique_ptr<MessageStore> ex_messages = make_memory_message_store();
  std::unique_ptr<MembershipStore> ex_members = make_memory_membership_store();
  std::unique_ptr<SessionDirectory> ex_directory = make_memory_session_directory();
  Config cfg;
  Auth auth{std::string(32, 's'), 3600000, /*dev=*/true};  // its API key: `key`
  std::shared_ptr<ClientCodec> json = make_json_codec();
  std::unique_ptr<HttpApi> api;
  std::vector<std::pair<std::string, std::string>> recorded;  // membership entries the routes asked for
  std::vector<std::pair<std::string, std::string>> disconnected;  // (user, why) the routes asked to disconnect

  ApiFixture() {
    REQUIRE(ex_members->create_group("g", "alice").is_ok());
    REQUIRE(ex_members->add("g", "bob", Role::kMember).is_ok());
    REQUIRE(ex_members->add("g", "dave", Role::kMember).is_ok());
    std::vector<AppendOutcome> out;
    REQUIRE(ex_messages->append({{"g", "alice", "c1", "one", 0}, {"g", "dave", "c2", "two", 0}}, &out).is_ok());
    run_executor();  // the node's own start-up jobs
    auth.set_api_key(key);
    api = std::make_unique<HttpApi>(HttpApi::Context{
        cfg, clock, *node, auth, *json, Limits{}, [](HttpApi::Task t) { t(); }, [](HttpApi::Task t) { t(); },
        [this](const std::string& g, const std::string& u) { node->member_removed(g, u); },
        [this](const std::string& g, EntryKind kind, const std::string& u, const std::string& subject) {
          recorded.push_back({g, std::string(entry_kind_name(kind)) + " " + u + (subject.empty() ? "" : " " + subject)});
        },
        [this](const std::string& u, const SendReq& r, Node::RequestDone done) {
          node->send_as(u, r, std::move(done));
          node->flush();
        },
        [this](const std::string& u, const ReadReq& r, Node::RequestDone done) {
          node->read_as(u, r, std::move(done));
          node->flush();
        },
        [this](const std::string& g, const std::string& author, const std::string& cid, const std::string& text,
               const std::string& meta, Node::RequestDone done) {
          Status st = node->record_system(g, author, cid, text, meta, std::move(done));
          node->flush();
          return st;
        },
        [this](const std::string& u, const std::string& why) { disconnected.push_back({u, why}); },
        [](std::function<void(std::string)> done) { done(""); }});
  }

  // Runs every job the node handed its executor on the executor's stores,
  // and hands the outcomes back, until none is left.
  void run_executor() {
    const JobStores stores{*ex_messages, *ex_members, *ex_directory};
    for (int round = 0; round < 20; ++round) {
      node->flush();
      if (executor.store_jobs.empty() && executor.lookups.empty() && executor.jobs.empty()) return;
      while (!executor.store_jobs.empty()) {
        StoreJob job = std::move(executor.store_jobs.front());
        executor.store_jobs.pop_front();
        node->on_store_done(job.id, run_store_job(stores, job));
      }
      while (!executor.lookups.empty()) {
        LookupJob job = std::move(executor.lookups.front());
        executor.lookups.pop_front();
        node->on_lookup_done(job.id, run_lookup(*ex_messages, *ex_members, job));
      }
      while (!executor.jobs.empty()) {
        AppendJob job = std::move(executor.jobs.front());
        executor.jobs.pop_front();
        std::vector<AppendOutcome> out;
        Status st = run_append(*ex_messages, ex_members.get(), job.requests, &out);
        node->on_append_done(job.id, st, std::move(out));
      }
    }
    FAIL("the executor's jobs did not settle");
  }

  // Asks `method target` as `user`: the answer must wait for the executor.
  HttpResponse ask(const std::string& method, const std::string& target, const std::string& user,
                   const std::string& body = "") {
    std::optional<HttpResponse> got;
    HttpRequest req{method, target, "Bearer " + auth.issue(user, clock.now_ms() + 60000), "", body};
    api->handle(req, [&got](HttpResponse r) {
      REQUIRE_FALSE(got.has_value());  // answered once
      got = std::move(r);
    });
    INFO(method, " ", target);
    CHECK_FALSE(got.has_value());  // not from the I/O thread's stores
    run_executor();
    REQUIRE(got.has_value());
    return *got;
  }

  // Asks with `authorization` as given, and runs the executor until answered.
  HttpResponse call(const std::string& method, const std::string& target, const std::string& authorization,
                    const std::string& body = "") {
    std::optional<HttpResponse> got;
    api->handle(HttpRequest{method, target, authorization, "", body}, [&got](HttpResponse r) {
      REQUIRE_FALSE(got.has_value());
      got = std::move(r);
    });
    run_executor();
    REQUIRE(got.has_value());
    return *got;
  }
  const std::string key = std::string(32, 'k');
  HttpResponse app(const std::string& method, const std::string& target, const std::string& body = "") {
    return call(method, target, "ApiKey " + key, body);
  }

  static rapidjson::Document parse(const HttpResponse& r) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    REQUIRE_FALSE(d.HasParseError());
    return d;
  }
  static std::vector<std::string> users_in(const rapidjson::Value& list) {
    std::vector<std::string> out;
    for (const auto& m : list.GetArray()) out.push_back(m["user"].GetString());
    return out;
  }
};

TEST_CASE_FIXTURE(ApiFixture, "HTTP reads come from the executor's stores, not the I/O thread's") {
  HttpResponse members = ask("GET", "/v1/groups/g/members", "alice");
  REQUIRE(members.status == 200);
  CHECK(users_in(parse(members)["members"]) == std::vector<std::string>{"alice", "bob", "dave"});

  HttpResponse presence = ask("GET", "/v1/groups/g/presence", "dave");  // dave is a member only there
  REQUIRE(presence.status == 200);
  CHECK(users_in(parse(presence)["presence"]).size() == 3);

  // carol is a member only in the node's own stores.
  CHECK(ask("GET", "/v1/groups/g/members", "carol").status == 403);
  CHECK(ask("GET", "/v1/groups/g/messages", "carol").status == 403);

  HttpResponse history = ask("GET", "/v1/groups/g/messages", "bob");
  REQUIRE(history.status == 200);
  rapidjson::Document h = parse(history);
  CHECK(h["head"].GetUint64() == 2);
  REQUIRE(h["messages"].Size() == 2);
  CHECK(std::string(h["messages"][1]["c"].GetString()) == "two");

  HttpResponse folded = ask("GET", "/v1/groups/g/messages?fold=1", "bob");
  REQUIRE(folded.status == 200);
  CHECK(parse(folded)["to"].GetUint64() == 2);

  HttpResponse pulled = ask("GET", "/v1/groups/g/pull?after=1", "dave");
  REQUIRE(pulled.status == 200);
  rapidjson::Document p = parse(pulled);
  REQUIRE(p["messages"].Size() == 1);
  CHECK(p["messages"][0]["id"].GetUint64() == 2);

  HttpResponse groups = ask("GET", "/v1/groups", "dave");
  REQUIRE(groups.status == 200);
  rapidjson::Document gs = parse(groups);
  REQUIRE(gs["groups"].Size() == 1);
  CHECK(gs["groups"][0]["unread"].GetUint64() == 1);  // alice's "one"; dave's own does not count

  CHECK(ask("GET", "/healthz", "alice").status == 200);
}

TEST_CASE_FIXTURE(ApiFixture, "HTTP writes go to the executor's stores, not the I/O thread's") {
  CHECK(ask("POST", "/v1/groups", "erin", R"({"group":"h"})").status == 201);
  CHECK(ex_members->role_of("h", "erin")->has_value());
  CHECK_FALSE(*members->group_exists("h"));

  CHECK(ask("POST", "/v1/groups/h/join", "frank").status == 200);
  CHECK(ex_members->role_of("h", "frank")->has_value());
  CHECK(ask("POST", "/v1/groups/h/notify", "frank", R"({"level":"mentions"})").status == 200);
  std::vector<NotifyLevel> level;
  REQUIRE(ex_members->notify_levels("h", {"frank"}, &level).is_ok());
  CHECK(level == std::vector<NotifyLevel>{NotifyLevel::kMentions});

  CHECK(ask("DELETE", "/v1/groups/h/members/frank", "erin").status == 200);
  CHECK_FALSE(ex_members->role_of("h", "frank")->has_value());
  CHECK(ask("POST", "/v1/groups/g/leave", "dave").status == 200);
  CHECK_FALSE(ex_members->role_of("g", "dave")->has_value());
  CHECK(recorded == std::vector<std::pair<std::string, std::string>>{
                        {"h", "join frank"}, {"h", "removed erin frank"}, {"g", "leave dave"}});

  HttpResponse sent = ask("POST", "/v1/groups/g/messages", "bob", R"({"cid":"b1","c":"three"})");
  REQUIRE(sent.status == 200);
  CHECK(parse(sent)["id"].GetUint64() == 3);
  std::vector<Message> stored;
  REQUIRE(ex_messages->read("g", 2, 10, &stored).is_ok());
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].contents == "three");
  std::vector<GroupHead> heads;
  REQUIRE(messages->heads({"g"}, &heads).is_ok());
  CHECK(heads[0].head == 0);

  std::vector<GroupHead> ex_heads;
  REQUIRE(ex_messages->heads({"g"}, &ex_heads).is_ok());
  HttpResponse read =
      ask("POST", "/v1/groups/g/read", "bob", R"({"id":3,"epoch":)" + std::to_string(ex_heads[0].epoch) + "}");
  REQUIRE(read.status == 200);
  CHECK(parse(read)["read"].GetUint64() == 3);
}

TEST_CASE_FIXTURE(ApiFixture, "the server API takes the API key and nothing else") {
  const std::string token = "Bearer " + auth.issue("alice", clock.now_ms() + 60000);
  const std::vector<std::string> refused = {"",     token, "ApiKey " + std::string(32, 'x'), "ApiKey", "ApiKey  " + key,
                                            "Bearer " + key};
  for (const std::string& who : refused) {
    HttpResponse r = call("GET", "/v1/server/groups/g/members", who);
    CHECK(r.status == 401);
  }
  CHECK(auth.is_api_key(key));
  CHECK_FALSE(auth.is_api_key(key.substr(1)));
  CHECK(call("GET", "/v1/groups/g/members", "ApiKey " + key).status == 401);  // a user route wants a user
  CHECK(app("GET", "/v1/server/groups/g/members").status == 200);
  CHECK(app("GET", "/v1/server/groups/nope/members").status == 404);
}

TEST_CASE_FIXTURE(ApiFixture, "the server API: notices, sends on a user's behalf, groups and members") {
  // A system notice, answered with its id after the commit; a resend is a duplicate.
  HttpResponse notice = app("POST", "/v1/server/groups/g/system", R"({"author":"game","cid":"n1","c":"alice won"})");
  REQUIRE(notice.status == 200);
  CHECK(parse(notice)["id"].GetUint64() == 3);
  HttpResponse again = app("POST", "/v1/server/groups/g/system", R"({"author":"game","cid":"n1","c":"alice won"})");
  REQUIRE(again.status == 200);
  CHECK(parse(again)["id"].GetUint64() == 3);
  CHECK(parse(again)["dup"].GetBool());
  std::vector<Message> log;
  REQUIRE(ex_messages->read("g", 2, 10, &log).is_ok());
  REQUIRE(log.size() == 1);
  CHECK(log[0].entry.kind == EntryKind::kSystem);
  CHECK(log[0].user_id == "game");
  CHECK(app("POST", "/v1/server/groups/nope/system", R"({"c":"x"})").status == 404);
  CHECK(app("POST", "/v1/server/groups/g/system", R"({"c":"x","meta":[1]})").status == 400);

  // On a user's behalf: checked as that user's send.
  HttpResponse sent = app("POST", "/v1/server/groups/g/messages", R"({"user":"dave","cid":"d1","c":"gg"})");
  REQUIRE(sent.status == 200);
  CHECK(parse(sent)["id"].GetUint64() == 4);
  CHECK(app("POST", "/v1/server/groups/g/messages", R"({"user":"erin","cid":"e1","c":"hi"})").status == 403);

  // Groups and members, without being a member; history without one too.
  CHECK(app("POST", "/v1/server/groups", R"({"group":"h","owner":"erin"})").status == 201);
  CHECK(ex_members->role_of("h", "erin")->value() == Role::kOwner);
  HttpResponse changed = app("POST", "/v1/server/groups/h/members", R"({"add":["frank","gus","erin"]})");
  REQUIRE(changed.status == 200);
  rapidjson::Document c = parse(changed);
  CHECK(c["added"].Size() == 2);  // erin was there
  CHECK(app("POST", "/v1/server/groups/h/members", R"({"remove":["erin"]})").status == 400);  // the owner
  changed = app("POST", "/v1/server/groups/h/members", R"({"remove":["gus","zed"]})");
  REQUIRE(changed.status == 200);
  CHECK(parse(changed)["removed"].Size() == 1);
  CHECK_FALSE(ex_members->role_of("h", "gus")->has_value());
  CHECK(recorded == std::vector<std::pair<std::string, std::string>>{
                        {"h", "join frank"}, {"h", "join gus"}, {"h", "removed system gus"}});
  HttpResponse history = app("GET", "/v1/server/groups/g/messages?after=2");
  REQUIRE(history.status == 200);
  CHECK(parse(history)["messages"].Size() == 2);
  CHECK(app("GET", "/v1/server/groups/nope/messages").status == 404);

  // Disconnecting a user everywhere is handed to the host, with the reason.
  HttpResponse gone = app("POST", "/v1/server/users/bob/disconnect", R"({"reason":"cheating"})");
  REQUIRE(gone.status == 200);
  CHECK(std::string(parse(gone)["user"].GetString()) == "bob");
  CHECK(call("POST", "/v1/server/users/bob/disconnect", "ApiKey wrong").status == 401);
  CHECK(app("POST", "/v1/server/users/bob/disconnect", R"({"reason":7})").status == 400);
  CHECK(disconnected == std::vector<std::pair<std::string, std::string>>{{"bob", "cheating"}});
}

}  // namespace
}  // namespace parley::server
