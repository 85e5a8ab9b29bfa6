// The head sync through an executor: the store's heads leave the node as a
// HeadsOp and come back later, so what they say may be older than what the
// node has learned from messages meanwhile.
#include <doctest/doctest.h>

#include <algorithm>

#include "parley/node.hpp"
#include "unit/async_fixture.hpp"

using namespace parley;
using parley::test::AsyncFixture;

TEST_CASE("with an executor, a gap found by the head sync is read as jobs, a page at a time, one out at a time") {
  NodeOptions o;
  o.head_sync_ms = 1000;
  o.gap.grace_ms = 50;
  o.catch_up_page = 2;
  AsyncFixture f(o);
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.turn();
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  f.store_elsewhere(5);
  f.timers_until_read();
  REQUIRE(f.executor.reads.size() == 1);
  CHECK(f.executor.reads[0].group_id == "g");
  CHECK(f.executor.reads[0].after == 0);
  CHECK(f.executor.reads[0].limit == 2);
  CHECK(f.node->reads_in_flight() == 1);
  CHECK(f.host.of<MessageEv>(2).empty());
  // The gap's retry comes due while the page is out: no second read of it.
  for (int i = 0; i < 5; ++i) {
    f.clock.advance(1000);
    f.node->on_timer();
    f.turn();
  }
  CHECK(f.executor.reads.size() == 1);
  f.complete_read();
  CHECK(f.host.of<MessageEv>(2).size() == 2);
  REQUIRE(f.executor.reads.size() == 1);  // the next page went out at the completion
  CHECK(f.executor.reads[0].after == 2);
  while (!f.executor.reads.empty()) f.complete_read();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 5);
  for (size_t i = 0; i < msgs.size(); ++i) CHECK(msgs[i].message->msg_id == i + 1);
  CHECK(f.node->reads_in_flight() == 0);
  CHECK(f.node->stats().catch_up_messages == 5);
  // A later gap of the same group is read again.
  f.store_elsewhere(2);
  f.timers_until_read();
  REQUIRE(f.executor.reads.size() == 1);
  CHECK(f.executor.reads[0].after == 5);
  f.complete_read();
  CHECK(f.host.of<MessageEv>(2).size() == 7);
}

TEST_CASE("with an executor, one head sync is out at a time") {
  NodeOptions o;
  o.head_sync_ms = 1000;
  AsyncFixture f(o);
  f.open(2, "bob");
  f.node->on_client_request(2, ResumeReq{1, "g", 0, 0});
  f.turn();
  auto heads_jobs = [&] {
    size_t n = 0;
    for (const StoreJob& j : f.executor.store_jobs) {
      for (const StoreOp& op : j.ops) n += std::holds_alternative<HeadsOp>(op) ? 1 : 0;
    }
    return n;
  };
  for (int i = 0; i < 5; ++i) {
    f.clock.advance(1100);
    f.node->on_timer();
  }
  CHECK(heads_jobs() == 1);
  CHECK(f.node->stats().head_syncs == 1);
  f.turn();
  f.clock.advance(1100);
  f.node->on_timer();
  CHECK(heads_jobs() == 1);
  CHECK(f.node->stats().head_syncs == 2);
}

TEST_CASE("with an executor, heads read before the node learned the group's epoch do not reset the group") {
  NodeOptions o;
  o.head_sync_ms = 1000;
  AsyncFixture f(o);
  f.open(1, "alice");
  f.open(2, "bob");
  f.node->on_client_request(2, ResumeReq{1, "g", 0, 0});
  f.turn();
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  // The head sync goes out while g has no message: its answer says epoch 0.
  f.clock.advance(1100);
  f.node->on_timer();
  f.node->flush();
  auto& jobs = f.executor.store_jobs;
  auto it = std::find_if(jobs.begin(), jobs.end(),
                         [](const StoreJob& j) { return std::holds_alternative<HeadsOp>(j.ops[0]); });
  REQUIRE(it != jobs.end());
  StoreJob heads = std::move(*it);
  jobs.erase(it);
  std::vector<StoreOpResult> stale = run_store_job(JobStores{*f.messages, *f.members, *f.directory}, heads);
  REQUIRE(stale[0].heads.size() == 1);
  REQUIRE(stale[0].heads[0].epoch == 0);
  // Before it comes back, alice's first message commits: the node is in epoch 1.
  f.send(1, "c1", "one");
  f.turn();
  f.complete_next();
  REQUIRE(f.host.of<MessageEv>(2).size() == 1);
  CHECK(f.host.of<MessageEv>(2)[0].message->epoch == 1);
  f.node->on_store_done(heads.id, std::move(stale));
  f.turn();
  CHECK(f.host.of<EpochEv>(2).empty());
  // Bob's subscription goes on: the next message is pushed to him.
  f.send(1, "c2", "two");
  f.turn();
  f.complete_next();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[1].message->msg_id == 2);
  // A reset the store makes afterwards is still found by the next head sync.
  REQUIRE(f.messages->reset_group("g").is_ok());
  for (int i = 0; i < 3 && f.host.of<EpochEv>(2).empty(); ++i) {
    f.clock.advance(1100);
    f.node->on_timer();
    f.turn();
  }
  auto epochs = f.host.of<EpochEv>(2);
  REQUIRE(epochs.size() == 1);
  CHECK(epochs[0].epoch == 2);
}
