#include <doctest/doctest.h>

#include <algorithm>

#include "parley/clock.hpp"
#include "parley/gap_detector.hpp"

using namespace parley;

namespace {
MessagePtr msg(const std::string& g, uint64_t id) {
  auto m = std::make_shared<Message>();
  m->group_id = g;
  m->msg_id = id;
  m->prev_msg_id = id - 1;
  return m;
}
std::vector<uint64_t> ids(const std::vector<MessagePtr>& v) {
  std::vector<uint64_t> out;
  for (const auto& m : v) out.push_back(m->msg_id);
  return out;
}
}  // namespace

TEST_CASE("in-order messages are delivered at once") {
  GapDetector d({});
  d.track("g", 0);
  std::vector<MessagePtr> ready;
  CHECK(d.offer(msg("g", 1), 0, &ready) == GapDetector::Offer::kDelivered);
  CHECK(d.offer(msg("g", 2), 0, &ready) == GapDetector::Offer::kDelivered);
  CHECK(ids(ready) == std::vector<uint64_t>{1, 2});
  CHECK(d.delivered("g") == 2);
  CHECK(d.next_deadline() == INT64_MAX);
}

TEST_CASE("early messages wait for the gap and are released in order") {
  GapDetector d({});
  d.track("g", 0);
  std::vector<MessagePtr> ready;
  CHECK(d.offer(msg("g", 3), 10, &ready) == GapDetector::Offer::kHeld);
  CHECK(d.offer(msg("g", 2), 11, &ready) == GapDetector::Offer::kHeld);
  CHECK(ready.empty());
  CHECK(d.held("g") == 2);
  CHECK(d.offer(msg("g", 1), 12, &ready) == GapDetector::Offer::kDelivered);
  CHECK(ids(ready) == std::vector<uint64_t>{1, 2, 3});
  CHECK(d.next_deadline() == INT64_MAX);  // gap closed: no catch-up
}

TEST_CASE("duplicates are dropped") {
  GapDetector d({});
  d.track("g", 5);
  std::vector<MessagePtr> ready;
  CHECK(d.offer(msg("g", 5), 0, &ready) == GapDetector::Offer::kDuplicate);
  CHECK(d.offer(msg("g", 7), 0, &ready) == GapDetector::Offer::kHeld);
  CHECK(d.offer(msg("g", 7), 0, &ready) == GapDetector::Offer::kDuplicate);
  CHECK(ready.empty());
}

TEST_CASE("a gap still open after the grace period asks for the missing range") {
  GapDetector::Options o;
  o.grace_ms = 100;
  o.retry_ms = 50;
  GapDetector d(o);
  d.track("g", 0);
  std::vector<MessagePtr> ready;
  d.offer(msg("g", 4), 1000, &ready);
  CHECK(d.next_deadline() == 1100);
  std::vector<CatchUpRequest> due;
  d.due(1099, &due);
  CHECK(due.empty());
  d.due(1100, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0].group_id == "g");
  CHECK(due[0].after == 0);
  CHECK(due[0].until == 4);
  CHECK(d.next_deadline() == 1150);  // asked again until the gap closes
  for (uint64_t i = 1; i <= 3; ++i) d.offer(msg("g", i), 1120, &ready);
  CHECK(ids(ready) == std::vector<uint64_t>{1, 2, 3, 4});
  CHECK(d.next_deadline() == INT64_MAX);
}

TEST_CASE("a head learned from the store opens a gap even with nothing held") {
  GapDetector::Options o;
  o.grace_ms = 100;
  GapDetector d(o);
  d.track("g", 2);
  d.note_head("g", 2, 0);
  CHECK(d.next_deadline() == INT64_MAX);  // nothing missing
  d.note_head("g", 5, 0);
  std::vector<CatchUpRequest> due;
  d.due(100, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0].after == 2);
  CHECK(due[0].until == 5);
}

TEST_CASE("overflow drops what is held and asks for a catch-up at once") {
  GapDetector::Options o;
  o.max_held = 3;
  GapDetector d(o);
  d.track("g", 0);
  std::vector<MessagePtr> ready;
  for (uint64_t i = 2; i <= 4; ++i) CHECK(d.offer(msg("g", i), 0, &ready) == GapDetector::Offer::kHeld);
  CHECK(d.offer(msg("g", 5), 7, &ready) == GapDetector::Offer::kOverflow);
  CHECK(d.held("g") == 0);
  std::vector<CatchUpRequest> due;
  d.due(7, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0].until == 5);
}

TEST_CASE("any arrival order delivers every message exactly once, in order") {
  Random rng(7);
  for (int round = 0; round < 50; ++round) {
    GapDetector d({});
    d.track("g", 0);
    std::vector<MessagePtr> in;
    for (uint64_t i = 1; i <= 200; ++i) in.push_back(msg("g", i));
    for (size_t i = 0; i < in.size(); ++i) std::swap(in[i], in[i + rng.below(in.size() - i)]);
    // and some duplicates
    for (int k = 0; k < 20; ++k) in.push_back(msg("g", 1 + rng.below(200)));
    std::vector<MessagePtr> ready;
    for (const auto& m : in) d.offer(m, 0, &ready);
    REQUIRE(ready.size() == 200);
    for (size_t i = 0; i < ready.size(); ++i) CHECK(ready[i]->msg_id == i + 1);
  }
}

TEST_CASE("untracked groups are ignored") {
  GapDetector d({});
  std::vector<MessagePtr> ready;
  CHECK(d.offer(msg("x", 1), 0, &ready) == GapDetector::Offer::kUntracked);
  d.track("x", 0);
  d.offer(msg("x", 3), 0, &ready);
  d.untrack("x");
  CHECK(d.next_deadline() == INT64_MAX);
  CHECK_FALSE(d.tracking("x"));
}

TEST_CASE("a partly filled gap keeps its catch-up: it asks for the rest, up to the known head") {
  GapDetector::Options o;
  o.grace_ms = 100;
  GapDetector d(o);
  d.track("g", 0);
  std::vector<MessagePtr> ready;
  d.offer(msg("g", 4), 1000, &ready);
  d.offer(msg("g", 1), 1010, &ready);  // 2 and 3 still missing
  CHECK(ids(ready) == std::vector<uint64_t>{1});
  CHECK(d.next_deadline() == 1100);
  std::vector<CatchUpRequest> due;
  d.due(1100, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0].after == 1);
  CHECK(due[0].until == 4);
}

TEST_CASE("when only the head is known, the catch-up asks for the whole tail range") {
  GapDetector::Options o;
  o.grace_ms = 100;
  GapDetector d(o);
  d.track("g", 3);
  d.note_head("g", 9, 500);  // ids 4..9 lost, nothing held
  CHECK(d.held("g") == 0);
  std::vector<CatchUpRequest> due;
  d.due(600, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0].after == 3);
  CHECK(due[0].until == 9);
  // A hole is a hole: the range is asked again until filled, not reported as late.
  d.due(600 + o.retry_ms, &due);
  REQUIRE(due.size() == 2);
  CHECK(due[1].after == 3);
  CHECK(due[1].until == 9);
}
