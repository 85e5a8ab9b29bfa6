// The unit tests' fixture for a node whose store work goes through an
// executor the test holds: jobs wait until the test runs them, so a test
// decides when each completion comes back and in what order.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <string>

#include "parley/node.hpp"
#include "unit/node_fixture.hpp"

namespace parley::test {

// Keeps the jobs until the test runs them.
struct HeldExecutor final : StoreExecutor {
  std::deque<AppendJob> jobs;
  std::deque<ReadJob> reads;
  std::deque<LookupJob> lookups;
  std::deque<StoreJob> store_jobs;
  void append(AppendJob job) override { jobs.push_back(std::move(job)); }
  void read(ReadJob job) override { reads.push_back(std::move(job)); }
  void lookup(LookupJob job) override { lookups.push_back(std::move(job)); }
  void run(StoreJob job) override { store_jobs.push_back(std::move(job)); }
};

struct WithExecutor {
  HeldExecutor executor;
};

struct AsyncFixture : WithExecutor, parley::test::Fixture {
  explicit AsyncFixture(NodeOptions o = {}) : Fixture(std::move(o), nullptr, &executor) {}
  // Answers the oldest lookup from the stores (or with `given`).
  void answer_lookup(std::optional<LookupResult> given = std::nullopt) {
    REQUIRE_FALSE(executor.lookups.empty());
    LookupJob job = std::move(executor.lookups.front());
    executor.lookups.pop_front();
    node->on_lookup_done(job.id, given ? std::move(*given) : run_lookup(*messages, *members, job));
    node->flush();
  }
  // Opens a session and lets the directory record it (its requests wait for that).
  void open(SessionId id, const std::string& user) {
    REQUIRE(node->open_session(id, user).is_ok());
    turn();
  }
  // Ends the turn and answers the lookups it sent out (and those their
  // answers send out), as an executor would meanwhile.
  void turn() {
    node->flush();
    for (int round = 0; round < 100 && !(executor.lookups.empty() && executor.store_jobs.empty()); ++round) {
      while (!executor.store_jobs.empty()) run_store_job_next();
      while (!executor.lookups.empty()) answer_lookup();
    }
  }
  // Runs the oldest store job (heads, routes, directory writes) on the stores.
  void run_store_job_next() {
    REQUIRE_FALSE(executor.store_jobs.empty());
    StoreJob job = std::move(executor.store_jobs.front());
    executor.store_jobs.pop_front();
    node->on_store_done(job.id, run_store_job(JobStores{*messages, *members, *directory}, job));
    node->flush();
  }
  // Runs the oldest read job on the store (or answers it with `given`) and
  // hands the result back.
  void complete_read(std::optional<ReadResult> given = std::nullopt) {
    REQUIRE_FALSE(executor.reads.empty());
    ReadJob job = std::move(executor.reads.front());
    executor.reads.pop_front();
    node->on_read_done(job.id, given ? std::move(*given) : run_read(*messages, job));
    turn();
  }
  // Bob resumes g from 0 and the first page goes out as a read job.
  void bob_resumes(uint64_t rid) {
    REQUIRE(node->open_session(2, "bob").is_ok());
    node->on_client_request(2, ResumeReq{rid, "g", 0, 0});
    turn();
    REQUIRE(executor.reads.size() == 1);
  }
  // Stores n messages of alice's in g without this node (as another node would).
  void store_elsewhere(int n) {
    for (int i = 0; i < n; ++i) {
      std::vector<AppendOutcome> out;
      REQUIRE(messages->append({{"g", "alice", "e" + std::to_string(elsewhere++), "m", 0}}, &out).is_ok());
    }
  }
  int elsewhere = 0;
  // Runs the oldest job on the store and hands its outcome back, as an
  // executor thread and the host's post would.
  void complete_next(const Status& fail = Status::ok()) {
    REQUIRE_FALSE(executor.jobs.empty());
    AppendJob job = std::move(executor.jobs.front());
    executor.jobs.pop_front();
    std::vector<AppendOutcome> out;
    Status st = fail;
    if (st) st = messages->append(job.requests, &out);
    node->on_append_done(job.id, st, std::move(out));
    turn();
  }
  // Fires the node's timers (head syncs among them) until a read job is out.
  void timers_until_read() {
    for (int i = 0; i < 40 && executor.reads.empty(); ++i) {
      clock.set(std::max(clock.now_ms() + 1, host.timer));
      node->on_timer();
      turn();  // the head sync's store job
    }
  }
  size_t stored() {
    std::vector<Message> all;
    REQUIRE(messages->read("g", 0, 1000, &all).is_ok());
    return all.size();
  }
};

}  // namespace parley::test
