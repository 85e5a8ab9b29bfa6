// ApiFixture: an HttpApi over a node whose store executor the test holds
// and runs on stores of its own (http_api_test.cpp says why), with the
// host's callbacks recorded. Shared by the HTTP route tests.
#pragma once

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <optional>
#include <string>

#include "auth.hpp"
#include "http_api.hpp"
#include "parley/server/config.hpp"
#include "unit/async_fixture.hpp"

namespace parley::server {

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

  // Asks `method target` as `user`, answered at once (refused before any store work).
  HttpResponse refused(const std::string& method, const std::string& target, const std::string& user,
                       const std::string& body = "") {
    std::optional<HttpResponse> got;
    HttpRequest req{method, target, "Bearer " + auth.issue(user, clock.now_ms() + 60000), "", body};
    api->handle(req, [&got](HttpResponse r) { got = std::move(r); });
    INFO(method, " ", target);
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

}  // namespace parley::server
