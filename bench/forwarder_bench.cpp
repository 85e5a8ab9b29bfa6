// Forwarder batching on virtual time: messages per peer call and the latency
// batching adds, for fixed (50 ms, random phase, jitter) and adaptive modes,
// at 1k / 10k / 100k messages per second to one peer.
//
// The peer link has a one-way delay of 1 ms and each call costs the receiver
// 20 us plus 1 us per message, so a saturated link shows how adaptive mode
// grows its batches. Added latency = arrival time - send time - link delay.
// Prints medians and p99 over 10 s of virtual time.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <vector>

#include "core/event_queue.hpp"
#include "core/peer_codec.hpp"
#include "parley/batching_forwarder.hpp"

using namespace parley;

namespace {

struct Outcome {
  double items_per_call_median = 0;
  double added_ms_p50 = 0, added_ms_p99 = 0;
  uint64_t calls = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Outcome run(BatchingForwarder::Mode mode, int rate) {
  constexpr int64_t kLinkUs = 1000;
  constexpr int64_t kRunMs = 10000;
  ManualClock clock(0);  // microseconds here
  detail::EventQueue q;
  Random rng(7);
  std::map<uint64_t, int64_t> sent_at;  // msg id -> enqueue time (us)
  std::vector<double> added_ms, items;
  int64_t receiver_free_at = 0;
  BatchingForwarder* fwd_ptr = nullptr;
  BatchingForwarder::Options o;
  o.mode = mode;
  o.period_ms = 50 * 1000;  // the forwarder's clock is in microseconds here
  o.call_timeout_ms = 2000 * 1000;
  o.backoff_ms = 50 * 1000;
  o.max_items = 100000;
  o.max_bytes = 64 << 20;
  BatchingForwarder fwd("a", o, rng, [&](const std::string& dest, uint64_t call_id, const Frame& batch) {
    Limits limits;
    limits.max_batch_messages = 1000000;
    auto b = detail::decode_batch(batch->data(), batch->size(), limits);
    items.push_back(static_cast<double>(b->messages.size()));
    const int64_t arrive = std::max(clock.now_ms() + kLinkUs, receiver_free_at);
    receiver_free_at = arrive + 20 + static_cast<int64_t>(b->messages.size());
    q.at(arrive, [&, b = std::move(b)] {
      for (const MessagePtr& m : b->messages)
        added_ms.push_back((clock.now_ms() - sent_at[m->msg_id] - kLinkUs) / 1000.0);
    });
    q.at(receiver_free_at + kLinkUs,
         [&, dest, call_id] { fwd_ptr->on_result(dest, call_id, true, clock.now_ms()); });
  });
  fwd_ptr = &fwd;
  const int64_t gap_us = 1000000 / rate;
  uint64_t id = 0;
  for (int64_t t = 0; t < kRunMs * 1000; t += gap_us) {
    q.at(t, [&, t] {
      Message m;
      m.group_id = "g";
      m.user_id = "u";
      m.msg_id = ++id;
      m.prev_msg_id = id - 1;
      m.contents = std::string(128, 'x');
      sent_at[m.msg_id] = t;
      fwd.enqueue("b", std::make_shared<const std::string>(detail::encode_message_item(m)), clock.now_ms());
    });
  }
  // Timers: poll every 100 us of virtual time.
  const int64_t until = kRunMs * 1000 + 200000;
  for (int64_t t = 0; t < until; t += 100) q.at(t, [&] { fwd.poll(clock.now_ms()); });
  while (q.run_next(clock, until)) {
  }
  Outcome out;
  out.items_per_call_median = percentile(items, 0.5);
  out.added_ms_p50 = percentile(added_ms, 0.5);
  out.added_ms_p99 = percentile(added_ms, 0.99);
  out.calls = items.size();
  return out;
}

}  // namespace

int main() {
  std::printf("%-9s %9s %8s %16s %14s %14s\n", "mode", "msgs/s", "calls", "msgs/call p50", "added p50 ms",
              "added p99 ms");
  for (auto mode : {BatchingForwarder::Mode::kFixed, BatchingForwarder::Mode::kAdaptive}) {
    for (int rate : {1000, 10000, 100000}) {
      Outcome o = run(mode, rate);
      std::printf("%-9s %9d %8llu %16.0f %14.2f %14.2f\n",
                  mode == BatchingForwarder::Mode::kFixed ? "fixed" : "adaptive", rate,
                  static_cast<unsigned long long>(o.calls), o.items_per_call_median, o.added_ms_p50,
                  o.added_ms_p99);
    }
  }
  return 0;
}
