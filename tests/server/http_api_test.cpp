// The HTTP routes (HttpApi) call no store on the I/O thread: every route's
// store work goes to the node's store executor (Node::run_host, or a lookup
// through Node::when_ready) and is answered from its completion.
//
// The node runs on one set of memory stores (the "I/O thread's") and its
// executor, held by the test, on another ("the executor's"), with different
// contents: an answer read from the wrong set shows in the answer, and a
// write to the wrong set shows in that set. Each route must not answer until
// the test runs the executor's jobs.
#include "server/api_fixture.hpp"

namespace parley::server {
namespace {

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
