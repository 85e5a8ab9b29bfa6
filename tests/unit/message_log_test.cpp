#include <doctest/doctest.h>

#include "parley/memory_store.hpp"
#include "parley/message_log.hpp"

using namespace parley;

namespace {
void fill(MessageStore& store, int n) {
  std::vector<AppendRequest> reqs;
  for (int i = 0; i < n; ++i) reqs.push_back({"g", "u", "", "m" + std::to_string(i + 1), 0});
  std::vector<AppendOutcome> out;
  REQUIRE(store.append(reqs, &out).is_ok());
}
}  // namespace

TEST_CASE("recent history is served from the tail, older from the store") {
  auto store = make_memory_message_store();
  fill(*store, 20);
  MessageLog log(*store, 5);
  std::vector<Message> all;
  REQUIRE(store->read("g", 0, 100, &all).is_ok());
  for (const Message& m : all) log.append({std::make_shared<Message>(m), nullptr});
  CHECK(log.cached_head("g") == 20);

  std::vector<MessageLog::Entry> out;
  REQUIRE(log.read("g", 16, 10, &out).is_ok());
  REQUIRE(out.size() == 4);
  CHECK(out[0].message->msg_id == 17);
  CHECK(log.stats().cache_reads == 1);
  CHECK(log.stats().store_reads == 0);

  out.clear();
  REQUIRE(log.read("g", 2, 3, &out).is_ok());
  REQUIRE(out.size() == 3);
  CHECK(out[0].message->msg_id == 3);
  CHECK(out[2].message->contents == "m5");
  CHECK(log.stats().store_reads == 1);
}

TEST_CASE("a non-contiguous append restarts the tail") {
  auto store = make_memory_message_store();
  MessageLog log(*store, 10);
  auto m = [](uint64_t id) {
    auto x = std::make_shared<Message>();
    x->group_id = "g";
    x->msg_id = id;
    return x;
  };
  log.append({m(1), nullptr});
  log.append({m(2), nullptr});
  log.append({m(7), nullptr});
  CHECK(log.cached_head("g") == 7);
  std::vector<MessageLog::Entry> out;
  REQUIRE(log.read("g", 6, 10, &out).is_ok());
  REQUIRE(out.size() == 1);
  CHECK(log.stats().cache_reads == 1);
}
