// A host's store work and requests outside any session leave the node's
// turn like the node's own: Node::run_host runs the host's work as a store
// job on the executor, and Node::when_ready makes a request that needs the
// store wait for a lookup, then serves it with the lookup's answer.
#include <doctest/doctest.h>

#include "unit/async_fixture.hpp"

using namespace parley;
using parley::test::AsyncFixture;

TEST_CASE_FIXTURE(AsyncFixture, "run_host: the host's work runs as a store job, and its answer comes after it") {
  turn();
  std::vector<std::string> groups;
  std::optional<Status> done;
  node->run_host(
      [&groups](const JobStores& s) {
        Result<std::vector<std::string>> g = s.membership.groups_of("bob");
        if (g) groups = *g;
        return g.status();
      },
      [&done](const Status& st) { done = st; });
  REQUIRE(executor.store_jobs.size() == 1);
  CHECK(groups.empty());
  CHECK_FALSE(done.has_value());
  run_store_job_next();
  CHECK(groups == std::vector<std::string>{"g"});
  REQUIRE(done.has_value());
  CHECK(done->is_ok());

  // The work's error is the answer.
  done.reset();
  node->run_host([](const JobStores&) { return error(Code::kUnavailable, "down"); },
                 [&done](const Status& st) { done = st; });
  run_store_job_next();
  REQUIRE(done.has_value());
  CHECK(done->code() == Code::kUnavailable);
}

TEST_CASE_FIXTURE(AsyncFixture, "when_ready: a host's send waits for its lookup, and the answer authorises it") {
  turn();
  bool ready = false;
  std::optional<ServerEvent> answer;
  node->when_ready("bob", SendReq{0, "g", "b1", "hi"}, [&] {
    ready = true;
    node->send_as("bob", SendReq{0, "g", "b1", "hi"}, [&answer](const ServerEvent& ev) { answer = ev; });
  });
  CHECK_FALSE(ready);
  REQUIRE(executor.lookups.size() == 1);
  CHECK(node->lookups_in_flight() == 1);
  const uint64_t reads = node->stats().membership_reads;

  // Served with the lookup's answer: no store read of its own.
  REQUIRE(executor.lookups.front().user_id == "bob");
  answer_lookup();
  CHECK(ready);
  CHECK(node->lookups_in_flight() == 0);
  CHECK(node->stats().membership_reads == reads);
  REQUIRE(executor.jobs.size() == 1);
  complete_next();
  REQUIRE(answer.has_value());
  CHECK(std::holds_alternative<AckEv>(*answer));

  // A cached member's request needs nothing: at once.
  bool again = false;
  node->when_ready("bob", SendReq{0, "g", "b2", "hi"}, [&again] { again = true; });
  CHECK(again);
  CHECK(executor.lookups.empty());
}

TEST_CASE_FIXTURE(AsyncFixture, "when_ready: a non-member's pull is refused with the lookup's answer") {
  turn();
  REQUIRE(members->create_group("h", "alice").is_ok());
  std::optional<Result<PullResultEv>> pulled;
  PullReq r;
  r.group_id = "h";
  r.limit = 10;
  node->when_ready("bob", r, [&] { pulled = node->pull("bob", r); });
  CHECK_FALSE(pulled.has_value());
  // The store changes after the lookup read it: the answer, not the store, decides.
  LookupJob job = std::move(executor.lookups.front());
  executor.lookups.pop_front();
  LookupResult answer = run_lookup(*messages, *members, job);
  REQUIRE(members->add("h", "bob", Role::kMember).is_ok());
  node->on_lookup_done(job.id, std::move(answer));
  REQUIRE(pulled.has_value());
  CHECK(pulled->status().code() == Code::kPermissionDenied);
}

TEST_CASE_FIXTURE(AsyncFixture, "record_system with an answer: the ack comes after the commit, a resend is a duplicate") {
  turn();
  std::vector<ServerEvent> answers;
  auto done = [&answers](const ServerEvent& ev) { answers.push_back(ev); };
  REQUIRE(node->record_system("g", "game", "n1", "alice won", "", done).is_ok());
  node->flush();
  CHECK(answers.empty());  // not before the commit
  complete_next();
  REQUIRE(answers.size() == 1);
  const auto* ack = std::get_if<AckEv>(&answers[0]);
  REQUIRE(ack != nullptr);
  CHECK((ack->msg_id == 1 && !ack->duplicate));
  REQUIRE(node->record_system("g", "game", "n1", "alice won", "", done).is_ok());
  node->flush();
  complete_next();
  REQUIRE(answers.size() == 2);
  ack = std::get_if<AckEv>(&answers[1]);
  REQUIRE(ack != nullptr);
  CHECK((ack->msg_id == 1 && ack->duplicate));
}

TEST_CASE_FIXTURE(AsyncFixture, "a failed connection is reported on the user's next one, marked as such") {
  open(1, "bob");
  node->close_session(1, error(Code::kBackpressure, "behind"));
  turn();
  open(2, "bob");
  std::vector<ErrorEv> errors = host.of<ErrorEv>(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].about == "previous_connection");
  CHECK(errors[0].code == Code::kBackpressure);
  // Only once, and a request's error is never marked.
  node->close_session(2, Status::ok());
  turn();
  open(3, "bob");
  node->on_client_request(3, SendReq{9, "nope", "c", "x"});
  turn();
  errors = host.of<ErrorEv>(3);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].about.empty());
  CHECK(errors[0].rid == 9);
}

TEST_CASE_FIXTURE(AsyncFixture, "disconnect_user ends every session of the user here, each told why, and only those") {
  open(1, "bob");
  open(2, "bob");
  open(3, "carol");
  CHECK(node->disconnect_user("bob", "cheating") == 2);
  turn();
  for (SessionId id : {SessionId(1), SessionId(2)}) {
    REQUIRE(host.closed.count(id) == 1);
    CHECK(host.closed[id].code() == Code::kPermissionDenied);
    std::vector<ErrorEv> told = host.of<ErrorEv>(id);
    REQUIRE(told.size() == 1);
    CHECK(told[0].about == "disconnected");
    CHECK(told[0].message == "disconnected by the app: cheating");
  }
  CHECK(host.closed.count(3) == 0);
  CHECK(node->session_count() == 1);
  CHECK(node->disconnect_user("bob", "") == 0);
  open(4, "bob");  // may come back, and is told why the last one ended
  CHECK(node->session_count() == 2);
  std::vector<ErrorEv> report = host.of<ErrorEv>(4);
  REQUIRE(report.size() == 1);
  CHECK(report[0].about == "previous_connection");
  CHECK(report[0].code == Code::kPermissionDenied);
}
