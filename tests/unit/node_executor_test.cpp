// The node's store work through a StoreExecutor: a group commit leaves the
// node as an AppendJob and its outcome comes back with on_append_done; a
// range read (a gap's catch-up, a resume from before the cached tail) leaves
// as a ReadJob and comes back with on_read_done.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <optional>

#include "parley/memory_store.hpp"
#include "parley/sqlite_store.hpp"
#include "parley/node.hpp"
#include "unit/async_fixture.hpp"

using namespace parley;
using parley::test::AsyncFixture;
using parley::test::HeldExecutor;

TEST_CASE("with an executor, a turn's sends leave as one job and are acknowledged only at its completion") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->on_client_request(1, SendReq{1, "g", "c1", "one"});
  f.node->on_client_request(1, SendReq{2, "g", "c2", "two"});
  f.turn();
  REQUIRE(f.executor.jobs.size() == 1);
  CHECK(f.executor.jobs[0].requests.size() == 2);
  CHECK(f.node->appends_in_flight() == 1);
  CHECK(f.stored() == 0);
  CHECK(f.host.of<AckEv>(1).empty());  // nothing acknowledged before the commit
  CHECK(f.host.of<MessageEv>(2).empty());
  // The node keeps serving while the job is out: a resume is answered.
  REQUIRE(f.node->open_session(3, "carol").is_ok());
  f.node->on_client_request(3, ResumeReq{7, "g", 0, 0});
  f.turn();
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
    f.turn();
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
  f.turn();
  f.complete_next(error(Code::kUnavailable, "disk full"));
  CHECK(f.host.of<AckEv>(1).empty());
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rid == 4);
  CHECK(errors[0].client_msg_id == "c1");
  CHECK(errors[0].group_id == "g");
  CHECK(errors[0].code == Code::kUnavailable);
  f.node->on_client_request(1, SendReq{5, "g", "c1", "m"});
  f.turn();
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
  f.turn();
  f.node->close_session(1, Status::ok());
  f.complete_next();
  CHECK(f.host.of<AckEv>(1).empty());
  CHECK(f.host.of<MessageEv>(2).size() == 1);
  CHECK(f.node->stats().acks == 0);
  // A completion nobody waits for (a job of an earlier incarnation) changes nothing.
  f.node->on_append_done(999, Status::ok(), {});
  f.turn();
  CHECK(f.host.of<MessageEv>(2).size() == 1);
}

TEST_CASE("with an executor, a store that answers the wrong number of outcomes fails the job, acknowledging nothing") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.node->on_client_request(1, SendReq{1, "g", "c1", "m"});
  f.node->on_client_request(1, SendReq{2, "g", "c2", "m"});
  f.turn();
  REQUIRE(f.executor.jobs.size() == 1);
  f.node->on_append_done(f.executor.jobs[0].id, Status::ok(), {});  // no outcomes
  f.turn();
  CHECK(f.host.of<AckEv>(1).empty());
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].code == Code::kInternal);
}

// ---- range reads ---------------------------------------------------------

TEST_CASE("with an executor, a resume from before the cached tail is fed from read jobs and answered after the last page") {
  NodeOptions o;
  o.catch_up_page = 2;
  AsyncFixture f(o);
  f.store_elsewhere(5);
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  REQUIRE(f.node->open_session(3, "carol").is_ok());
  f.node->on_client_request(2, ResumeReq{7, "g", 0, 0});
  f.turn();
  REQUIRE(f.executor.reads.size() == 1);
  CHECK(f.executor.reads[0].after == 0);
  CHECK(f.host.events[2].empty());  // nothing before the store answers
  // The node serves meanwhile, and the read in flight is not asked twice,
  // even when the client asks again.
  f.node->on_client_request(3, ResumeReq{8, "g", 5, 0});
  f.node->on_client_request(2, ResumeReq{7, "g", 0, 0});
  f.turn();
  CHECK(f.host.of<ResumedEv>(3).size() == 1);
  CHECK(f.executor.reads.size() == 1);
  int pages = 0;
  while (!f.executor.reads.empty() && pages < 10) {
    CHECK(f.executor.reads.size() == 1);
    CHECK(f.host.of<ResumedEv>(2).empty());
    f.complete_read();
    ++pages;
  }
  CHECK(pages == 3);
  const std::vector<ServerEvent>& evs = f.host.events[2];
  REQUIRE(evs.size() == 6);
  for (size_t i = 0; i < 5; ++i) {
    REQUIRE(std::holds_alternative<MessageEv>(evs[i]));
    CHECK(std::get<MessageEv>(evs[i]).message->msg_id == i + 1);
  }
  REQUIRE(std::holds_alternative<ResumedEv>(evs[5]));
  CHECK(std::get<ResumedEv>(evs[5]).rid == 7);
  CHECK(std::get<ResumedEv>(evs[5]).head == 5);
}

TEST_CASE("with an executor, a read result for a session that closed or resubscribed meanwhile is dropped") {
  AsyncFixture f;
  f.store_elsewhere(3);
  f.bob_resumes(1);
  // Unsubscribed and subscribed again: the new subscription reads for itself.
  f.node->on_client_request(2, UnsubscribeReq{2, "g"});
  f.node->on_client_request(2, ResumeReq{3, "g", 0, 0});
  f.turn();
  REQUIRE(f.executor.reads.size() == 2);
  f.complete_read();  // the old subscription's page
  CHECK(f.host.of<MessageEv>(2).empty());
  f.complete_read();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(msgs[i].message->msg_id == i + 1);
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(f.host.of<ResumedEv>(2)[0].rid == 3);
  // A session that closes with its read out never hears of it.
  REQUIRE(f.node->open_session(4, "carol").is_ok());
  f.node->on_client_request(4, ResumeReq{1, "g", 0, 0});
  f.turn();
  REQUIRE(f.executor.reads.size() == 1);
  f.node->close_session(4, Status::ok());
  f.complete_read();
  CHECK(f.host.events[4].empty());
  CHECK(f.node->reads_in_flight() == 0);
  // A result nobody waits for (a job of an earlier incarnation) changes nothing.
  f.node->on_read_done(999, ReadResult{});
  f.turn();
  CHECK(f.host.of<MessageEv>(2).size() == 3);
}

TEST_CASE("with an executor, a trimmed range tells the resuming session where history starts and goes on from there") {
  AsyncFixture f;
  f.store_elsewhere(5);
  f.bob_resumes(9);
  // As a store with retention answers: ids <= 3 are gone.
  f.complete_read(ReadResult{error(Code::kTrimmed, "trimmed"), {}, 3});
  auto errors = f.host.of<ErrorEv>(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kTrimmed);
  CHECK(errors[0].rid == 9);
  CHECK(errors[0].message.find("before id 4") != std::string::npos);
  REQUIRE(f.executor.reads.size() == 1);
  CHECK(f.executor.reads[0].after == 3);
  f.complete_read();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0].message->msg_id == 4);
  CHECK(msgs[1].message->msg_id == 5);
  CHECK(f.host.of<ResumedEv>(2).size() == 1);
}

TEST_CASE("with an executor, a failed read is asked again after retry_ms, not at once") {
  NodeOptions o;
  o.gap.retry_ms = 200;
  AsyncFixture f(o);
  f.store_elsewhere(2);
  f.bob_resumes(1);
  f.complete_read(ReadResult{error(Code::kUnavailable, "store down"), {}, 0});
  CHECK(f.executor.reads.empty());
  CHECK(f.node->stats().store_errors == 1);
  CHECK(f.host.timer <= f.clock.now_ms() + 200);
  f.clock.set(std::max(f.clock.now_ms() + 200, f.host.timer));
  f.node->on_timer();
  REQUIRE(f.executor.reads.size() == 1);
  f.complete_read();
  CHECK(f.host.of<MessageEv>(2).size() == 2);
}

TEST_CASE("run_read answers a trimmed range with how far the store trimmed") {
  // A store with retention that kept only ids > 3.
  struct Trimmed final : MessageStore {
    Status append(const std::vector<AppendRequest>&, std::vector<AppendOutcome>*) override {
      return error(Code::kInternal, "read only");
    }
    Status read(const std::string& g, uint64_t after, size_t, std::vector<Message>* out) override {
      if (after < 3) return error(Code::kTrimmed, "history of group '" + g + "' is trimmed before id 4");
      out->push_back(Message{g, after + 1, after, 0, "u", "x", "c", 1});
      return Status::ok();
    }
    Status read_folded(const std::string& g, uint64_t, size_t, const std::string&, FoldedPage*) override {
      return error(Code::kTrimmed, "history of group '" + g + "' is trimmed before id 4");
    }
    Status heads(const std::vector<std::string>& ids, std::vector<GroupHead>* out) override {
      for (const std::string& g : ids) out->push_back({g, 9, 1, 3});
      return Status::ok();
    }
    Result<uint64_t> reset_group(const std::string&) override { return error(Code::kInternal, "no"); }
    Status unread(const std::vector<UnreadQuery>&, std::vector<UnreadCount>*) override {
      return error(Code::kInternal, "no");
    }
  } store;
  ReadResult r = run_read(store, ReadJob{1, "g", 1, 10});
  CHECK(r.status.code() == Code::kTrimmed);
  CHECK(r.trimmed == 3);
  CHECK(r.messages.empty());
  ReadResult ok = run_read(store, ReadJob{2, "g", 3, 10});
  CHECK(ok.status.is_ok());
  CHECK(ok.trimmed == 0);
  REQUIRE(ok.messages.size() == 1);
  CHECK(ok.messages[0].msg_id == 4);
}

// ---- lookups -----------------------------------------------------------------

TEST_CASE("with an executor, a request the node cannot answer from its caches waits for a lookup, and the session's later requests wait behind it in order") {
  AsyncFixture f;
  f.open(2, "bob");
  f.node->on_client_request(2, ResumeReq{1, "g", 0, 0});
  f.node->on_client_request(2, SendReq{2, "g", "c1", "hi"});
  f.node->on_client_request(2, UnsubscribeReq{3, "nope"});  // needs nothing, still waits its turn
  f.node->on_client_request(2, SendReq{5, "g", "c0", "second"});
  f.node->flush();
  REQUIRE(f.executor.lookups.size() == 1);  // one lookup for the session
  CHECK(f.executor.lookups[0].group_id == "g");
  CHECK(f.executor.lookups[0].user_id == "bob");
  CHECK(f.node->lookups_in_flight() == 1);
  CHECK(f.host.events[2].empty());
  CHECK(f.executor.jobs.empty());
  f.answer_lookup();
  CHECK(f.executor.lookups.empty());  // the answer served all three
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(f.host.of<ResumedEv>(2)[0].rid == 1);
  REQUIRE(f.host.of<ErrorEv>(2).size() == 1);
  CHECK(f.host.of<ErrorEv>(2)[0].rid == 3);
  REQUIRE(f.executor.jobs.size() == 1);
  REQUIRE(f.executor.jobs[0].requests.size() == 2);  // in the order they were asked
  CHECK(f.executor.jobs[0].requests[0].client_msg_id == "c1");
  CHECK(f.executor.jobs[0].requests[1].client_msg_id == "c0");
  f.complete_next();
  auto acks = f.host.of<AckEv>(2);
  REQUIRE(acks.size() == 2);
  CHECK(acks[0].rid == 2);
  CHECK(acks[0].msg_id == 1);
  CHECK(acks[1].rid == 5);
  // The membership is cached now: the next send needs no lookup.
  f.node->on_client_request(2, SendReq{4, "g", "c2", "again"});
  f.node->flush();
  CHECK(f.executor.lookups.empty());
  CHECK(f.executor.jobs.size() == 1);
  CHECK(f.node->stats().membership_reads == 1);
}

TEST_CASE("with an executor, a non-member or an unknown group is refused when the lookup answers, and nothing is stored") {
  AsyncFixture f;
  f.open(4, "dave");
  f.node->on_client_request(4, SendReq{1, "g", "c1", "let me in"});
  f.node->on_client_request(4, ResumeReq{2, "nope", 0, 0});
  f.node->flush();
  REQUIRE(f.executor.lookups.size() == 1);
  f.answer_lookup();
  REQUIRE(f.executor.lookups.size() == 1);  // the resume needs one of its own
  CHECK(f.executor.lookups[0].group_id == "nope");
  f.answer_lookup();
  auto errors = f.host.of<ErrorEv>(4);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rid == 1);
  CHECK(errors[0].code == Code::kPermissionDenied);
  CHECK(errors[0].client_msg_id == "c1");
  CHECK(errors[1].rid == 2);
  CHECK(errors[1].code == Code::kNotFound);
  CHECK(f.executor.jobs.empty());
  CHECK(f.stored() == 0);
  // A refusal is not cached: the next send asks again.
  f.node->on_client_request(4, SendReq{3, "g", "c1", "let me in"});
  f.node->flush();
  CHECK(f.executor.lookups.size() == 1);
}

TEST_CASE("with an executor, a failed lookup answers the waiting request with the store's error and the next request asks again") {
  AsyncFixture f;
  f.open(2, "bob");
  f.node->on_client_request(2, SendReq{1, "g", "c1", "m"});
  f.node->flush();
  LookupResult down;
  down.status = error(Code::kUnavailable, "store down");
  f.answer_lookup(down);
  auto errors = f.host.of<ErrorEv>(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kUnavailable);
  CHECK(errors[0].client_msg_id == "c1");
  CHECK(f.node->stats().store_errors == 1);
  f.node->on_client_request(2, SendReq{2, "g", "c1", "m"});
  f.turn();
  f.complete_next();
  CHECK(f.host.of<AckEv>(2).size() == 1);
  CHECK(f.stored() == 1);
}

TEST_CASE("with an executor, the answer to a closed session's lookup is dropped") {
  AsyncFixture f;
  f.open(2, "bob");
  f.node->on_client_request(2, SendReq{1, "g", "c1", "m"});
  f.node->flush();
  REQUIRE(f.executor.lookups.size() == 1);
  f.node->close_session(2, Status::ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());  // the id comes back for another connection
  f.answer_lookup();
  CHECK(f.host.events[2].empty());
  CHECK(f.executor.jobs.empty());
  CHECK(f.node->lookups_in_flight() == 0);
  f.node->on_lookup_done(999, LookupResult{});  // unknown: nothing happens
  f.node->flush();
  CHECK(f.host.events[2].empty());
}

TEST_CASE("with an executor, a session with too many requests waiting for the store is refused with limit_exceeded") {
  NodeOptions o;
  o.max_waiting_requests = 2;
  AsyncFixture f(o);
  f.open(2, "bob");
  for (uint64_t i = 1; i <= 3; ++i) {
    f.node->on_client_request(2, SendReq{i, "g", "c" + std::to_string(i), "m"});
  }
  f.node->flush();
  auto errors = f.host.of<ErrorEv>(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rid == 3);
  CHECK(errors[0].code == Code::kLimitExceeded);
  f.turn();
  REQUIRE(f.executor.jobs.size() == 1);
  CHECK(f.executor.jobs[0].requests.size() == 2);
}

TEST_CASE("with an executor, a pull of a range the tail cache does not hold is read with its lookup") {
  AsyncFixture f;
  f.store_elsewhere(5);
  f.open(2, "bob");
  f.node->on_client_request(2, PullReq{1, "g", 1, 3, 0});
  f.node->flush();
  REQUIRE(f.executor.lookups.size() == 1);
  CHECK(f.executor.lookups[0].after == 1);
  CHECK(f.executor.lookups[0].limit == 3);
  f.answer_lookup();
  auto pulled = f.host.of<PullResultEv>(2);
  REQUIRE(pulled.size() == 1);
  CHECK(pulled[0].rid == 1);
  CHECK(pulled[0].head == 5);
  REQUIRE(pulled[0].messages.size() == 3);
  CHECK(pulled[0].messages[0]->msg_id == 2);
  CHECK(pulled[0].messages[2]->msg_id == 4);
  CHECK(f.executor.reads.empty());
}

TEST_CASE("with an executor, a user's sessions wait for the directory to record the user before they are served") {
  AsyncFixture f;
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{1, "g", 0, 0});
  f.node->flush();
  // The put goes at once, in a job of its own (then the read of bob's groups
  // for his presence).
  REQUIRE(f.executor.store_jobs.size() == 2);
  REQUIRE(f.executor.store_jobs[0].ops.size() == 1);
  CHECK(std::holds_alternative<DirectoryPutOp>(f.executor.store_jobs[0].ops[0]));
  CHECK(f.executor.lookups.empty());  // the resume waits behind it
  REQUIRE(f.node->open_session(3, "bob").is_ok());  // a second device while the put is out
  f.node->on_client_request(3, ResumeReq{2, "g", 0, 0});
  f.node->flush();
  CHECK(f.executor.lookups.empty());
  std::vector<std::vector<std::string>> nodes;
  REQUIRE(f.directory->nodes_of({"bob"}, f.clock.now_ms(), &nodes).is_ok());
  CHECK(nodes[0].empty());
  f.run_store_job_next();
  REQUIRE(f.directory->nodes_of({"bob"}, f.clock.now_ms(), &nodes).is_ok());
  CHECK(nodes[0] == std::vector<std::string>{"node-1"});
  CHECK(f.executor.lookups.size() == 2);  // both sessions go on
  f.turn();
  CHECK(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(f.host.of<ResumedEv>(3).size() == 1);
}

TEST_CASE("with an executor, a user whose last session failed is notified of what it missed though the directory's erase is still on the way") {
  AsyncFixture f;
  f.open(1, "alice");
  f.open(2, "bob");
  f.node->on_client_request(2, ResumeReq{1, "g", 0, 0});
  f.turn();
  f.send(1, "c1", "never read");
  f.turn();
  f.complete_next();  // handed to bob's socket, never written (bob does not drain)
  REQUIRE(f.host.of<MessageEv>(2).size() == 1);
  f.node->close_session(2, error(Code::kUnavailable, "connection reset"));
  // The check leaves at once, the erase at the end of the turn: the check's
  // answer still lists this node.
  std::vector<std::vector<std::string>> nodes;
  REQUIRE(f.directory->nodes_of({"bob"}, f.clock.now_ms(), &nodes).is_ok());
  CHECK(nodes[0] == std::vector<std::string>{"node-1"});
  auto bob_told = [&f] {
    for (const Notification& n : f.notifier.sent) {
      if (n.user_id == "bob" && n.msg_id == 1) return true;
    }
    return false;
  };
  CHECK_FALSE(bob_told());  // decided when the check completes
  // The jobs out now (the presence change, the check); the erase is not among them.
  for (size_t queued = f.executor.store_jobs.size(); queued > 0; --queued) f.run_store_job_next();
  bool bob_notified = false;
  for (const Notification& n : f.notifier.sent) bob_notified |= n.user_id == "bob" && n.msg_id == 1;
  CHECK(bob_notified);
  f.turn();  // the erase lands
  REQUIRE(f.directory->nodes_of({"bob"}, f.clock.now_ms(), &nodes).is_ok());
  CHECK(nodes[0].empty());
}

// ---- the node's bookkeeping as store jobs ---------------------------------------

namespace {
bool has_route_op(const std::deque<StoreJob>& jobs, const std::string& group) {
  for (const StoreJob& j : jobs) {
    for (const StoreOp& op : j.ops) {
      if (const auto* r = std::get_if<RouteOp>(&op); r && r->group_id == group) return true;
    }
  }
  return false;
}
}  // namespace

TEST_CASE("with an executor, a commit whose group has no route yet is forwarded when the route comes back, and a route forgotten meanwhile is read again") {
  AsyncFixture f;
  f.open(1, "alice");
  // bob is connected to another node, which this node has not heard of.
  REQUIRE(f.directory->put("bob", "node-2", f.clock.now_ms() + 60000).is_ok());
  f.node->member_removed("g", "nobody");  // forgets the route alice's presence made
  f.send(1, "c1", "hello node-2");
  f.turn();
  REQUIRE(f.executor.jobs.size() == 1);
  AppendJob job = f.executor.jobs.front();
  f.executor.jobs.pop_front();
  std::vector<AppendOutcome> out;
  REQUIRE(f.messages->append(job.requests, &out).is_ok());
  f.node->on_append_done(job.id, Status::ok(), std::move(out));
  f.node->flush();  // committed; the route is asked for at the end of the turn
  REQUIRE(has_route_op(f.executor.store_jobs, "g"));
  CHECK(f.host.peer_calls.empty());
  // bob's node set changes while the route is being read: that answer may be old.
  f.node->member_removed("g", "nobody");
  StoreJob route = f.executor.store_jobs.front();
  f.executor.store_jobs.pop_front();
  f.node->on_store_done(route.id, run_store_job(JobStores{*f.messages, *f.members, *f.directory}, route));
  f.node->flush();
  CHECK(f.host.peer_calls.empty());
  REQUIRE(has_route_op(f.executor.store_jobs, "g"));  // asked again
  f.turn();
  for (int i = 0; i < 20 && f.host.peer_calls.empty(); ++i) {
    f.clock.set(std::max(f.clock.now_ms() + 1, f.host.timer));
    f.node->on_timer();
    f.turn();
  }
  REQUIRE_FALSE(f.host.peer_calls.empty());
  CHECK(f.host.peer_calls[0].first == "node-2");
}

TEST_CASE("with an executor, an active member's membership is read again before it expires, so its sends never wait, and a removal the refresh finds ends it") {
  NodeOptions o;
  o.membership_ttl_ms = 1000;
  AsyncFixture f(o);
  f.open(1, "alice");
  uint64_t rid = 0;
  auto send = [&] {
    ++rid;
    f.node->on_client_request(1, SendReq{rid, "g", "c" + std::to_string(rid), "m"});
    f.node->flush();
  };
  send();
  REQUIRE(f.executor.lookups.size() == 1);  // the first send reads the membership
  f.turn();
  f.complete_next();
  f.clock.advance(600);  // past half its time in the cache
  send();
  CHECK(f.executor.lookups.empty());  // served from the cache ...
  REQUIRE(f.executor.store_jobs.size() == 1);  // ... and read again in the background
  CHECK(std::holds_alternative<MembersOfOp>(f.executor.store_jobs[0].ops[0]));
  f.turn();
  f.complete_next();
  f.clock.advance(600);  // past the first read's expiry: the refresh renewed it
  send();
  CHECK(f.executor.lookups.empty());
  f.turn();
  f.complete_next();
  // Removed in the store, and this node is not told: the next refresh finds it.
  REQUIRE(f.members->remove("g", "alice").is_ok());
  f.clock.advance(600);
  send();
  CHECK(f.executor.lookups.empty());
  f.turn();  // the refresh answers: not a member
  f.complete_next();
  send();
  REQUIRE(f.executor.lookups.size() == 1);
  f.turn();
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kPermissionDenied);
  CHECK(f.host.of<AckEv>(1).size() == 4);
}

TEST_CASE("with an executor, a busy group switches to pull while its route is being read again") {
  NodeOptions o;
  o.policy.pull_min_members = 3;
  o.policy.pull_enter_rate = 5;
  o.policy.window_ms = 1000;
  o.policy.min_dwell_ms = 0;
  AsyncFixture f(o);
  f.open(1, "alice");
  f.open(2, "bob");
  f.node->on_client_request(2, ResumeReq{1, "g", 0, 0});
  f.send(1, "first", "alice's membership is cached from here on");
  f.turn();  // the route is read: 3 members
  f.complete_next();
  REQUIRE(f.host.of<ModeEv>(2).empty());
  f.node->member_removed("g", "nobody");  // a member came or went somewhere: the route is read again
  for (int i = 0; i < 10; ++i) f.send(1, "c" + std::to_string(i), "busy");
  f.node->flush();
  REQUIRE(f.executor.jobs.size() == 1);
  AppendJob job = f.executor.jobs.front();
  f.executor.jobs.pop_front();
  std::vector<AppendOutcome> out;
  REQUIRE(f.messages->append(job.requests, &out).is_ok());
  f.node->on_append_done(job.id, Status::ok(), std::move(out));  // delivered before the route is back
  f.node->flush();
  auto modes = f.host.of<ModeEv>(2);
  REQUIRE(modes.size() == 1);
  CHECK(modes[0].mode == DeliveryMode::kPull);
}

TEST_CASE("executor: a user whose last session here closed is offline here before the store has erased the entry") {
  char dir[] = "/tmp/parley-presence-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/p.db";
  auto opened = open_sqlite_store(path);
  REQUIRE(opened.is_ok());
  std::unique_ptr<SqliteStore> store = std::move(opened.value());
  REQUIRE(store->create_group("g", "alice").is_ok());
  HeldExecutor executor;
  ManualClock clock{1000};
  parley::test::TestHost host;
  NodeOptions o;
  o.node_id = "n1";
  Node node(o, NodeStores{*store, *store, *store, store.get(), &executor}, host, clock);
  REQUIRE(node.start().is_ok());
  const JobStores stores{*store, *store, *store, store.get()};
  auto run_jobs = [&] {
    while (!executor.store_jobs.empty()) {
      StoreJob job = std::move(executor.store_jobs.front());
      executor.store_jobs.pop_front();
      node.on_store_done(job.id, run_store_job(stores, job));
      node.flush();
    }
  };
  auto presence_of = [&](const std::string& user) {
    auto r = node.presence_of(std::vector<std::string>{user});
    REQUIRE(r.is_ok());
    return r.value().at(0);
  };
  REQUIRE(node.open_session(1, "alice").is_ok());
  node.flush();
  run_jobs();  // the directory put, then the presence write
  std::vector<PresenceStatus> stored;
  REQUIRE(store->presence({"alice"}, clock.now_ms(), &stored).is_ok());
  CHECK(stored[0] == PresenceStatus::kOnline);

  node.close_session(1, Status::ok());
  node.flush();
  REQUIRE_FALSE(executor.store_jobs.empty());  // the erase, held
  REQUIRE(store->presence({"alice"}, clock.now_ms(), &stored).is_ok());
  CHECK(stored[0] == PresenceStatus::kOnline);  // the store still lists n1
  CHECK(presence_of("alice") == PresenceStatus::kOffline);
  run_jobs();
  CHECK(presence_of("alice") == PresenceStatus::kOffline);  // now from the store
  store.reset();
  std::filesystem::remove_all(dir);
}
