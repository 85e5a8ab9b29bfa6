// Core micro-benchmarks: the gap detector and local fan-out.
//
//   BM_GapDetector/in_order        offer messages in order
//   BM_GapDetector/shuffled        offer messages shuffled within windows of 64
//   BM_FanOut/N                    one peer message delivered to N subscribed sessions
//   BM_FanOutBaseline/N            the floor: hand one shared buffer to N queues
// Per-delivery figures are the items_per_second counters (one item = one delivery).
#include <benchmark/benchmark.h>

#include <algorithm>

#include "core/peer_codec.hpp"
#include "parley/gap_detector.hpp"
#include "parley/memory_store.hpp"
#include "parley/node.hpp"

using namespace parley;

namespace {

MessagePtr make_message(uint64_t id) {
  auto m = std::make_shared<Message>();
  m->group_id = "g";
  m->user_id = "sender";
  m->msg_id = id;
  m->prev_msg_id = id - 1;
  m->contents = std::string(128, 'x');
  m->client_msg_id = "c" + std::to_string(id);
  return m;
}

void BM_GapDetector(benchmark::State& state) {
  const bool shuffled = state.range(0) != 0;
  constexpr size_t kChunk = 1 << 14;
  Random rng(1);
  GapDetector d({});
  d.track("g", 0);
  uint64_t next = 1;
  std::vector<MessagePtr> chunk, ready;
  ready.reserve(kChunk);
  for (auto _ : state) {
    state.PauseTiming();
    chunk.clear();
    for (size_t i = 0; i < kChunk; ++i) chunk.push_back(make_message(next + i));
    if (shuffled) {
      for (size_t w = 0; w < kChunk; w += 64) {
        for (size_t i = w; i < w + 64; ++i) std::swap(chunk[i], chunk[i + rng.below(w + 64 - i)]);
      }
    }
    next += kChunk;
    ready.clear();
    state.ResumeTiming();
    for (const MessagePtr& m : chunk) d.offer(m, 0, &ready);
    benchmark::DoNotOptimize(ready.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kChunk));
}
BENCHMARK(BM_GapDetector)->Arg(0)->Arg(1)->ArgName("shuffled");

// A host that only counts: the node's own cost is what is measured.
struct CountingHost final : NodeHost {
  uint64_t frames = 0;
  void send_to_session(SessionId, const std::vector<Frame>& f) override { frames += f.size(); }
  void close_session(SessionId, const Status&) override {}
  void send_to_node(const std::string&, uint64_t, const Frame&) override {}
  void set_timer(int64_t) override {}
};

void BM_FanOut(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto messages = make_memory_message_store();
  auto members = make_memory_membership_store();
  auto directory = make_memory_session_directory();
  (void)members->create_group("g", "sender");
  for (int i = 0; i < n; ++i) (void)members->add("g", "u" + std::to_string(i), Role::kMember);
  ManualClock clock(0);
  CountingHost host;
  NodeOptions o;
  o.session_queue_bytes = SIZE_MAX / 2;
  o.policy.pull_min_members = SIZE_MAX;  // stay in push mode
  Node node(o, NodeStores{*messages, *members, *directory}, host, clock);
  (void)node.start();
  for (int i = 0; i < n; ++i) {
    (void)node.open_session(static_cast<SessionId>(i + 1), "u" + std::to_string(i));
    node.on_client_request(static_cast<SessionId>(i + 1), ResumeReq{0, "g", 0, 0});
  }
  node.flush();
  constexpr size_t kChunk = 4096;
  std::vector<std::string> batches;
  uint64_t next = 1;
  for (auto _ : state) {
    state.PauseTiming();
    batches.clear();
    for (size_t i = 0; i < kChunk; ++i) {
      Frame item = std::make_shared<const std::string>(detail::encode_message_item(*make_message(next++)));
      batches.push_back(detail::encode_batch("peer", {item}));
    }
    state.ResumeTiming();
    for (const std::string& b : batches) {
      (void)node.on_peer_batch(b.data(), b.size());
      node.flush();
    }
  }
  if (host.frames < state.iterations() * kChunk * static_cast<uint64_t>(n))
    state.SkipWithError("deliveries missing");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kChunk * n));
}
BENCHMARK(BM_FanOut)->Arg(10)->Arg(100)->Arg(1000)->ArgName("sessions");

void BM_FanOutBaseline(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<std::vector<Frame>> queues(static_cast<size_t>(n));
  const Frame frame = std::make_shared<const std::string>(std::string(180, 'x'));
  for (auto _ : state) {
    for (auto& q : queues) q.push_back(frame);
    for (auto& q : queues) q.clear();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_FanOutBaseline)->Arg(10)->Arg(100)->Arg(1000)->ArgName("sessions");

}  // namespace

BENCHMARK_MAIN();
