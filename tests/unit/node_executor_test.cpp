// The node's appends through a StoreExecutor: a group commit leaves the node
// as an AppendJob and its outcome comes back with on_append_done.
#include <doctest/doctest.h>

#include <deque>

#include "parley/memory_store.hpp"
#include "parley/node.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;

namespace {
// Keeps the jobs until the test runs them.
struct HeldExecutor final : StoreExecutor {
  std::deque<AppendJob> jobs;
  void append(AppendJob job) override { jobs.push_back(std::move(job)); }
};

struct WithExecutor {
  HeldExecutor executor;
};

struct AsyncFixture : WithExecutor, parley::test::Fixture {
  AsyncFixture() : Fixture({}, nullptr, &executor) {}
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
    node->flush();
  }
  size_t stored() {
    std::vector<Message> all;
    REQUIRE(messages->read("g", 0, 1000, &all).is_ok());
    return all.size();
  }
};
}  // namespace

TEST_CASE("with an executor, a turn's sends leave as one job and are acknowledged only at its completion") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->on_client_request(1, SendReq{1, "g", "c1", "one"});
  f.node->on_client_request(1, SendReq{2, "g", "c2", "two"});
  f.node->flush();
  REQUIRE(f.executor.jobs.size() == 1);
  CHECK(f.executor.jobs[0].requests.size() == 2);
  CHECK(f.node->appends_in_flight() == 1);
  CHECK(f.stored() == 0);
  CHECK(f.host.of<AckEv>(1).empty());  // nothing acknowledged before the commit
  CHECK(f.host.of<MessageEv>(2).empty());
  // The node keeps serving while the job is out: a resume is answered.
  REQUIRE(f.node->open_session(3, "carol").is_ok());
  f.node->on_client_request(3, ResumeReq{7, "g", 0, 0});
  f.node->flush();
  CHECK(f.host.of<ResumedEv>(3).size() == 1);
  f.complete_next();
  CHECK(f.node->appends_in_flight() == 0);
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 2);
  CHECK(acks[0].rid == 1);
  CHECK(acks[0].msg_id == 1);
  CHECK(acks[1].msg_id == 2);
  CHECK(f.host.of<MessageEv>(2).size() == 2);
  CHECK(f.host.of<MessageEv>(3).size() == 2);
}

TEST_CASE("with an executor, jobs of later turns wait their turn and complete in order") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int turn = 0; turn < 3; ++turn) {
    f.node->on_client_request(1, SendReq{static_cast<uint64_t>(turn), "g", "c" + std::to_string(turn), "m"});
    f.node->flush();
  }
  REQUIRE(f.executor.jobs.size() == 3);
  CHECK(f.node->appends_in_flight() == 3);
  CHECK(f.node->stats().commits == 3);
  for (int k = 0; k < 3; ++k) f.complete_next();
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 3);
  for (uint64_t i = 0; i < 3; ++i) {
    CHECK(acks[i].rid == i);
    CHECK(acks[i].msg_id == i + 1);
  }
}

TEST_CASE("with an executor, a failed job answers each of its sends with the error, and a resend is stored once") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.node->on_client_request(1, SendReq{4, "g", "c1", "m"});
  f.node->flush();
  f.complete_next(error(Code::kUnavailable, "disk full"));
  CHECK(f.host.of<AckEv>(1).empty());
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rid == 4);
  CHECK(errors[0].client_msg_id == "c1");
  CHECK(errors[0].group_id == "g");
  CHECK(errors[0].code == Code::kUnavailable);
  f.node->on_client_request(1, SendReq{5, "g", "c1", "m"});
  f.node->flush();
  f.complete_next();
  REQUIRE(f.host.of<AckEv>(1).size() == 1);
  CHECK(f.stored() == 1);
}

TEST_CASE("with an executor, a sender gone before the completion is not answered, and the others get the message") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->on_client_request(1, SendReq{1, "g", "c1", "m"});
  f.node->flush();
  f.node->close_session(1, Status::ok());
  f.complete_next();
  CHECK(f.host.of<AckEv>(1).empty());
  CHECK(f.host.of<MessageEv>(2).size() == 1);
  CHECK(f.node->stats().acks == 0);
  // A completion nobody waits for (a job of an earlier incarnation) changes nothing.
  f.node->on_append_done(999, Status::ok(), {});
  f.node->flush();
  CHECK(f.host.of<MessageEv>(2).size() == 1);
}

TEST_CASE("with an executor, a store that answers the wrong number of outcomes fails the job, acknowledging nothing") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.node->on_client_request(1, SendReq{1, "g", "c1", "m"});
  f.node->on_client_request(1, SendReq{2, "g", "c2", "m"});
  f.node->flush();
  REQUIRE(f.executor.jobs.size() == 1);
  f.node->on_append_done(f.executor.jobs[0].id, Status::ok(), {});  // no outcomes
  f.node->flush();
  CHECK(f.host.of<AckEv>(1).empty());
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].code == Code::kInternal);
}
