// Groups' own routes (group_api.cpp, decision 56): kinds and settings,
// invites, joining by a group's rules, discovery, and the app's forms of
// them. Over ApiFixture: every answer comes from the executor's stores.
#include "server/api_fixture.hpp"

namespace parley::server {
namespace {

std::string str(const rapidjson::Value& v, const char* key) { return v[key].GetString(); }

TEST_CASE_FIXTURE(ApiFixture, "groups: a private group lets in whom its owner invites, up to its limit") {
  HttpResponse made = ask("POST", "/v1/groups", "erin",
                          R"({"group":"club","kind":"private","title":"The Club","topic":"members only","member_limit":3})");
  REQUIRE(made.status == 201);
  CHECK(str(parse(made), "kind") == "private");
  GroupSettings stored = ex_members->settings("club").value();
  CHECK(stored.kind == GroupKind::kPrivate);
  CHECK(stored.title == "The Club");
  CHECK(stored.member_limit == 3);

  HttpResponse denied = ask("POST", "/v1/groups/club/join", "frank");
  CHECK(denied.status == 403);
  CHECK(denied.body.find("private") != std::string::npos);
  CHECK_FALSE(ex_members->role_of("club", "frank")->has_value());
  CHECK(ask("GET", "/v1/groups/club", "frank").status == 403);  // not shown to a non-member
  HttpResponse info = ask("GET", "/v1/groups/club", "erin");
  REQUIRE(info.status == 200);
  rapidjson::Document i = parse(info);
  CHECK(str(i, "title") == "The Club");
  CHECK(str(i, "role") == "owner");
  CHECK(i["members"].GetUint64() == 1);

  // Only the owner invites; the invited joins, once.
  CHECK(ask("POST", "/v1/groups/club/invites", "frank", R"({"user":"frank"})").status == 403);
  CHECK(ask("POST", "/v1/groups/club/invites", "erin", R"({"user":"frank"})").status == 200);
  HttpResponse joined = ask("POST", "/v1/groups/club/join", "frank");
  REQUIRE(joined.status == 200);
  CHECK(str(parse(joined), "role") == "member");
  CHECK(ex_members->role_of("club", "frank")->value() == Role::kMember);
  CHECK(ask("POST", "/v1/groups/club/join", "frank").status == 200);  // a member already: no second entry
  CHECK(recorded == std::vector<std::pair<std::string, std::string>>{{"club", "join frank"}});
  CHECK(ask("POST", "/v1/groups/club/invites", "erin", R"({"user":"gus"})").status == 200);
  CHECK(ask("POST", "/v1/groups/club/join", "gus").status == 200);
  // Three members: the limit.
  CHECK(ask("POST", "/v1/groups/club/invites", "erin", R"({"user":"hal"})").status == 200);
  HttpResponse full = ask("POST", "/v1/groups/club/join", "hal");
  CHECK(full.status == 429);
  CHECK(str(parse(full), "name") == "limit_exceeded");
  CHECK(ask("POST", "/v1/groups/nope/invites", "erin", R"({"user":"hal"})").status == 404);
  CHECK(ask("POST", "/v1/groups/nope/join", "hal").status == 404);
  CHECK(refused("POST", "/v1/groups/club/invites", "erin", R"({"user":""})").status == 400);

  // A public group (the fixture's g) takes anyone who asks.
  CHECK(ask("POST", "/v1/groups/g/join", "zoe").status == 200);
  CHECK(ex_members->role_of("g", "zoe")->has_value());
}

TEST_CASE_FIXTURE(ApiFixture, "groups: the owner changes settings, and the change is a system entry of the log") {
  REQUIRE(ask("POST", "/v1/groups", "erin", R"({"group":"club","title":"Old","member_limit":10})").status == 201);
  REQUIRE(ask("POST", "/v1/groups/club/join", "frank").status == 200);  // public: joined without an invite
  CHECK(ask("POST", "/v1/groups/club/settings", "frank", R"({"topic":"mine now"})").status == 403);

  HttpResponse changed = ask("POST", "/v1/groups/club/settings", "erin", R"({"topic":"new topic","kind":"private"})");
  REQUIRE(changed.status == 200);
  rapidjson::Document c = parse(changed);
  CHECK(str(c, "topic") == "new topic");
  CHECK(str(c, "title") == "Old");  // what the body did not name is kept
  CHECK(c["member_limit"].GetUint64() == 10);
  const GroupSettings now = ex_members->settings("club").value();
  CHECK(now == GroupSettings{GroupKind::kPrivate, "Old", "new topic", 10});

  std::vector<Message> log;
  REQUIRE(ex_messages->read("club", 0, 10, &log).is_ok());
  REQUIRE(log.size() == 1);
  CHECK(log[0].entry.kind == EntryKind::kSystem);
  CHECK(log[0].user_id == "erin");
  CHECK(c["id"].GetUint64() == log[0].msg_id);
  rapidjson::Document meta;
  meta.Parse(log[0].entry.meta.c_str());
  REQUIRE(meta.IsObject());
  CHECK(str(meta, "event") == "settings");
  CHECK(str(meta, "kind") == "private");
  CHECK(str(meta, "topic") == "new topic");

  // Bad bodies change nothing.
  for (const char* bad : {"{}", R"({"kind":"secret"})", R"({"member_limit":-1})", R"({"member_limit":"3"})",
                          R"({"title":7})", R"({"title":"a\u0001b"})"}) {
    INFO(bad);
    CHECK(refused("POST", "/v1/groups/club/settings", "erin", bad).status == 400);
  }
  CHECK(refused("POST", "/v1/groups/club/settings", "erin", R"({"title":")" + std::string(201, 't') + R"("})")
            .status == 413);
  CHECK(ex_members->settings("club").value() == now);
  CHECK(ask("POST", "/v1/groups/nope/settings", "erin", R"({"title":"x"})").status == 404);
  log.clear();
  REQUIRE(ex_messages->read("club", 0, 10, &log).is_ok());
  CHECK(log.size() == 1);
}

TEST_CASE_FIXTURE(ApiFixture, "groups: discovery lists public groups by prefix, in pages") {
  for (const char* g : {"pub-1", "pub-2", "pub-3"}) {
    REQUIRE(ask("POST", "/v1/groups", "erin", std::string(R"({"group":")") + g + R"("})").status == 201);
  }
  REQUIRE(ask("POST", "/v1/groups", "erin", R"({"group":"pub-0","kind":"private"})").status == 201);
  REQUIRE(ask("POST", "/v1/groups/pub-2/join", "frank").status == 200);

  HttpResponse first = ask("GET", "/v1/directory?prefix=pub-&limit=2", "zoe");
  REQUIRE(first.status == 200);
  rapidjson::Document f = parse(first);
  REQUIRE(f["groups"].Size() == 2);
  CHECK(str(f["groups"][0], "group") == "pub-1");
  CHECK(str(f["groups"][1], "group") == "pub-2");
  CHECK(f["groups"][1]["members"].GetUint64() == 2);
  CHECK(str(f, "next") == "pub-2");
  HttpResponse second = ask("GET", "/v1/directory?prefix=pub-&limit=2&after=pub-2", "zoe");
  REQUIRE(second.status == 200);
  rapidjson::Document s = parse(second);
  REQUIRE(s["groups"].Size() == 1);
  CHECK(str(s["groups"][0], "group") == "pub-3");
  CHECK_FALSE(s.HasMember("next"));

  HttpResponse all = ask("GET", "/v1/directory", "zoe");
  REQUIRE(all.status == 200);
  CHECK(parse(all)["groups"].Size() == 4);  // g and pub-1..3, not the private pub-0
  CHECK(refused("GET", "/v1/directory?limit=0", "zoe").status == 400);
  CHECK(refused("GET", "/v1/directory?limit=201", "zoe").status == 400);
  CHECK(refused("GET", "/v1/directory?prefix=" + std::string(129, 'p'), "zoe").status == 413);
}

TEST_CASE_FIXTURE(ApiFixture, "groups: the app makes private groups, changes settings and adds members up to the limit") {
  HttpResponse made =
      app("POST", "/v1/server/groups", R"({"group":"team","owner":"erin","kind":"private","member_limit":2})");
  REQUIRE(made.status == 201);
  CHECK(str(parse(made), "kind") == "private");
  HttpResponse info = app("GET", "/v1/server/groups/team");  // the app sees a private group
  REQUIRE(info.status == 200);
  CHECK_FALSE(parse(info).HasMember("role"));

  // The app admits without an invite, but not past the limit; what it added before stays.
  HttpResponse added = app("POST", "/v1/server/groups/team/members", R"({"add":["frank","gus"]})");
  CHECK(added.status == 429);
  CHECK(ex_members->role_of("team", "frank")->value() == Role::kMember);
  CHECK_FALSE(ex_members->role_of("team", "gus")->has_value());

  HttpResponse changed = app("POST", "/v1/server/groups/team/settings", R"({"member_limit":5,"by":"referee"})");
  REQUIRE(changed.status == 200);
  CHECK(ex_members->settings("team")->member_limit == 5);
  std::vector<Message> log;
  REQUIRE(ex_messages->read("team", 0, 10, &log).is_ok());
  REQUIRE(log.size() == 1);
  CHECK(log[0].user_id == "referee");
  CHECK(app("POST", "/v1/server/groups/team/members", R"({"add":["gus"]})").status == 200);
  CHECK(ex_members->role_of("team", "gus")->has_value());
  CHECK(app("POST", "/v1/server/groups/team/settings", R"({"by":"","topic":"x"})").status == 400);
  CHECK(ex_members->settings("team")->topic.empty());

  // Removals come before adds: a full group takes a new member in place of one removed in the same call.
  HttpResponse swapped = app("POST", "/v1/server/groups/team/settings", R"({"member_limit":3})");
  REQUIRE(swapped.status == 200);
  HttpResponse both = app("POST", "/v1/server/groups/team/members", R"({"add":["hal"],"remove":["gus"]})");
  REQUIRE(both.status == 200);
  CHECK(ex_members->role_of("team", "hal")->has_value());
  CHECK_FALSE(ex_members->role_of("team", "gus")->has_value());
}

}  // namespace
}  // namespace parley::server
