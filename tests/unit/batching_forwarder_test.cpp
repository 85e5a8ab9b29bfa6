#include <doctest/doctest.h>

#include <climits>

#include "core/peer_codec.hpp"
#include "parley/batching_forwarder.hpp"

using namespace parley;

namespace {
struct Sent {
  std::string dest;
  uint64_t call_id;
  size_t items;
};

struct Harness {
  Random rng{1};
  std::vector<Sent> sent;
  BatchingForwarder fwd;
  explicit Harness(BatchingForwarder::Options o)
      : fwd("self", o, rng, [this](const std::string& d, uint64_t id, const Frame& batch) {
          auto b = detail::decode_batch(batch->data(), batch->size(), Limits{});
          REQUIRE(b.is_ok());
          CHECK(b->from == "self");
          sent.push_back({d, id, b->messages.size()});
        }) {}
};

Frame item(uint64_t id) {
  Message m;
  m.group_id = "g";
  m.user_id = "u";
  m.msg_id = id;
  m.prev_msg_id = id - 1;
  m.contents = "hello";
  return std::make_shared<const std::string>(detail::encode_message_item(m));
}
}  // namespace

TEST_CASE("adaptive: an idle link sends at once, a busy one batches") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kAdaptive;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent[0].items == 1);
  for (uint64_t i = 2; i <= 10; ++i) h.fwd.enqueue("b", item(i), 1);
  CHECK(h.sent.size() == 1);  // one call in flight at a time
  h.fwd.on_result("b", h.sent[0].call_id, true, 5);
  REQUIRE(h.sent.size() == 2);
  CHECK(h.sent[1].items == 9);
}

TEST_CASE("fixed: flushes on the period, at a per-destination phase") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kFixed;
  o.period_ms = 50;
  Harness h(o);
  for (uint64_t i = 1; i <= 5; ++i) h.fwd.enqueue("b", item(i), 0);
  CHECK(h.sent.empty());
  const int64_t t = h.fwd.next_deadline();
  CHECK(t >= 0);
  CHECK(t <= 50);
  h.fwd.poll(t);
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent[0].items == 5);
}

TEST_CASE("fixed: a steady stream is flushed once per period, not postponed by new items") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kFixed;
  o.period_ms = 50;
  Harness h(o);
  uint64_t id = 0;
  for (int64_t t = 0; t < 2000; ++t) {  // one item per ms, answers after 2 ms
    h.fwd.enqueue("b", item(++id), t);
    h.fwd.poll(t);
    if (!h.sent.empty() && t % 2 == 0) h.fwd.on_result("b", h.sent.back().call_id, true, t);
  }
  // 2000 ms at 50 ms +- 20 %: about 40 calls.
  CHECK(h.sent.size() >= 33);
  CHECK(h.sent.size() <= 50);
  size_t items = 0;
  for (const Sent& s : h.sent) items += s.items;
  CHECK(items >= 1900);
}

TEST_CASE("fixed: a full queue flushes early") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kFixed;
  o.max_items = 4;
  Harness h(o);
  for (uint64_t i = 1; i <= 4; ++i) h.fwd.enqueue("b", item(i), 0);
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent[0].items == 4);
}

TEST_CASE("failed calls are retried with backoff, then dropped") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kAdaptive;
  o.max_attempts = 3;
  o.backoff_ms = 10;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  int64_t now = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    REQUIRE(h.sent.size() == static_cast<size_t>(attempt));
    h.fwd.on_result("b", h.sent.back().call_id, false, now);
    if (attempt < 3) {
      now = h.fwd.next_deadline();
      CHECK(now >= 10 << (attempt - 1));
      h.fwd.poll(now);
    }
  }
  CHECK(h.sent.size() == 3);
  CHECK(h.fwd.stats().retries == 2);
  CHECK(h.fwd.stats().batches_dropped == 1);
  CHECK(h.fwd.stats().items_dropped == 1);
  CHECK(h.fwd.next_deadline() == INT64_MAX);  // nothing queued forever
}

TEST_CASE("a call without an answer times out and counts as failed") {
  BatchingForwarder::Options o;
  o.call_timeout_ms = 100;
  o.max_attempts = 1;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  CHECK(h.fwd.next_deadline() == 100);
  h.fwd.poll(100);
  CHECK(h.fwd.stats().timeouts == 1);
  CHECK(h.fwd.stats().batches_dropped == 1);
  // a late answer for the old call is ignored
  h.fwd.on_result("b", h.sent[0].call_id, true, 150);
  h.fwd.enqueue("b", item(2), 200);
  CHECK(h.sent.size() == 2);
}

TEST_CASE("the queue is bounded: overflow drops the oldest items") {
  BatchingForwarder::Options o;
  o.max_queued_bytes = 200;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);  // in flight
  for (uint64_t i = 2; i <= 50; ++i) h.fwd.enqueue("b", item(i), 0);
  CHECK(h.fwd.queued_items("b") < 49);
  CHECK(h.fwd.stats().items_dropped > 0);
}

TEST_CASE("peer batches reject malformed input") {
  const std::string junk = "\x93\x01\xa1x\x91\x92\x00\x01";
  CHECK(detail::decode_batch(junk.data(), junk.size(), Limits{}).status().code() == Code::kInvalidArgument);
  CHECK(detail::decode_batch("", 0, Limits{}).status().code() == Code::kInvalidArgument);
  Message m;
  m.group_id = "g";
  m.user_id = "u";
  m.msg_id = 5;
  m.prev_msg_id = 3;  // inconsistent
  Frame bad = std::make_shared<const std::string>(detail::encode_message_item(m));
  std::string batch = detail::encode_batch("a", {bad});
  CHECK_FALSE(detail::decode_batch(batch.data(), batch.size(), Limits{}).is_ok());
}

TEST_CASE("a peer batch with text that is not UTF-8 or an id over the limit is refused whole") {
  // Regression (fuzz: capi_bytes): a JSON node passed such contents on to its clients as they were.
  Message m{"g", 1, 0, 5, "u", "fine", "c1", 1};
  auto batch_of = [&m](const Message& msg, const std::string& from = "peer") {
    Frame ok = std::make_shared<const std::string>(detail::encode_message_item(m));  // a valid item first
    Frame item = std::make_shared<const std::string>(detail::encode_message_item(msg));
    return detail::encode_batch(from, {ok, item});
  };
  auto status_of = [](const std::string& batch) {
    return detail::decode_batch(batch.data(), batch.size(), Limits{}).status();
  };
  CHECK(status_of(batch_of(m)).is_ok());
  Message bad = m;
  bad.contents = "caf\xe9";  // Latin-1
  CHECK(status_of(batch_of(bad)).code() == Code::kInvalidArgument);
  CHECK(status_of(batch_of(bad)).message() == "contents is not UTF-8");
  bad = m;
  bad.user_id = "\xed\xb0\x80";  // a surrogate
  CHECK(status_of(batch_of(bad)).message() == "user_id is not UTF-8");
  bad = m;
  bad.client_msg_id = "c\xff";
  CHECK(status_of(batch_of(bad)).code() == Code::kInvalidArgument);
  CHECK(status_of(batch_of(m, "n\xc3")).message() == "from is not UTF-8");
  // Ids over the limit are too_large, as from a client (parley.h, docs/protocol.md section 4).
  bad = m;
  bad.group_id = std::string(Limits{}.max_id_bytes + 1, 'g');
  CHECK(status_of(batch_of(bad)).code() == Code::kTooLarge);
  CHECK(status_of(batch_of(m, std::string(Limits{}.max_id_bytes + 1, 'n'))).code() == Code::kTooLarge);
  PresenceEv p{"\xff", "g", PresenceStatus::kOnline, false, 0};
  Frame presence = std::make_shared<const std::string>(detail::encode_presence_item(p));
  CHECK(status_of(detail::encode_batch("peer", {presence})).message() == "user_id is not UTF-8");
  Frame interest = std::make_shared<const std::string>(detail::encode_interest_item("g\xc0", 1, 0));
  CHECK(status_of(detail::encode_batch("peer", {interest})).message() == "group_id is not UTF-8");
}

TEST_CASE("a batch holds at most max_bytes: the item that would overflow it waits for the next batch") {
  const size_t one = item(1)->size();
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kAdaptive;
  o.max_bytes = one * 5 / 2;  // two items fit, the third does not
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);  // in flight at once
  for (uint64_t i = 2; i <= 6; ++i) h.fwd.enqueue("b", item(i), 0);
  size_t delivered = 0;
  for (int64_t t = 1; delivered < 6 && t < 10; ++t) {
    delivered += h.sent.back().items;
    h.fwd.on_result("b", h.sent.back().call_id, true, t);
  }
  REQUIRE(h.sent.size() == 4);  // 1, then 2 + 2 + 1 by bytes
  for (const Sent& s : h.sent) CHECK(s.items <= 2);
  CHECK(delivered == 6);  // nothing dropped at the boundary
  CHECK(h.fwd.stats().items_sent == 6);
  CHECK(h.fwd.stats().items_dropped == 0);
  CHECK(h.fwd.queued_items("b") == 0);
}

TEST_CASE("a batch holds at most max_items") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kAdaptive;
  o.max_items = 4;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  for (uint64_t i = 2; i <= 10; ++i) h.fwd.enqueue("b", item(i), 1);
  h.fwd.on_result("b", h.sent.back().call_id, true, 2);
  REQUIRE(h.sent.size() == 2);
  CHECK(h.sent[1].items == 4);
  CHECK(h.fwd.queued_items("b") == 5);
  CHECK(h.fwd.stats().max_batch_items == 4);
}

TEST_CASE("retries back off exponentially: each wait doubles, with up to half again of jitter") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kAdaptive;
  o.max_attempts = 5;
  o.backoff_ms = 40;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  int64_t now = 0;
  for (int attempt = 1; attempt < 5; ++attempt) {
    h.fwd.on_result("b", h.sent.back().call_id, false, now);
    const int64_t at = h.fwd.next_deadline();
    const int64_t wait = at - now;
    const int64_t base = int64_t{40} << (attempt - 1);
    CHECK(wait >= base);
    CHECK(wait <= base + base / 2);
    h.fwd.poll(at - 1);
    CHECK(h.sent.size() == static_cast<size_t>(attempt));  // not before its time
    h.fwd.poll(at);
    REQUIRE(h.sent.size() == static_cast<size_t>(attempt + 1));
    now = at;
  }
}

TEST_CASE("a late result of an earlier call does not complete the batch in flight") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kAdaptive;
  o.backoff_ms = 10;
  o.call_timeout_ms = 1000;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  const uint64_t first = h.sent[0].call_id;
  h.fwd.on_result("b", first, false, 0);
  h.fwd.poll(h.fwd.next_deadline());  // the retry: a new call
  REQUIRE(h.sent.size() == 2);
  const uint64_t second = h.sent[1].call_id;
  CHECK(second != first);
  const int64_t timeout = h.fwd.next_deadline();
  h.fwd.on_result("b", first, true, 20);  // the first call's answer, late
  CHECK(h.fwd.next_deadline() == timeout);  // still waiting for the second
  h.fwd.enqueue("b", item(2), 21);
  CHECK(h.sent.size() == 2);  // the link is still busy: item 2 waits
  h.fwd.on_result("b", second, true, 22);
  REQUIRE(h.sent.size() == 3);
  CHECK(h.sent[2].items == 1);
}

TEST_CASE("fixed: an idle queue keeps its phase, its first item waits for the next tick") {
  BatchingForwarder::Options o;
  o.mode = BatchingForwarder::Mode::kFixed;
  o.period_ms = 50;
  o.jitter = 0;
  Harness h(o);
  h.fwd.enqueue("b", item(1), 0);
  const int64_t phase = h.fwd.next_deadline();
  h.fwd.poll(phase);
  REQUIRE(h.sent.size() == 1);
  h.fwd.on_result("b", h.sent[0].call_id, true, phase);
  // Idle for a while; an item arriving between ticks waits for the next one.
  const int64_t now = phase + 1000 + 17;
  h.fwd.enqueue("b", item(2), now);
  const int64_t next = h.fwd.next_deadline();
  CHECK(next > now);
  CHECK(next <= now + 50);
  CHECK((next - phase) % 50 == 0);  // on the destination's own phase
  h.fwd.poll(next - 1);
  CHECK(h.sent.size() == 1);
  h.fwd.poll(next);
  CHECK(h.sent.size() == 2);
}
