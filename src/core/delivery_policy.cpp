#include "parley/delivery_policy.hpp"

namespace parley {

double DeliveryPolicy::rate_of(const Group& g, int64_t now_ms) const {
  const int64_t current = bucket_of(now_ms);
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if (g.epochs[i] > current - kBuckets && g.epochs[i] <= current) total += g.counts[i];
  }
  return static_cast<double>(total) * 1000.0 / static_cast<double>(options_.window_ms);
}

double DeliveryPolicy::rate(const std::string& group_id, int64_t now_ms) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? 0.0 : rate_of(it->second, now_ms);
}

DeliveryMode DeliveryPolicy::mode(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? DeliveryMode::kPush : it->second.mode;
}

std::optional<DeliveryMode> DeliveryPolicy::observe(const std::string& group_id, size_t members,
                                                    int64_t now_ms) {
  Group& g = groups_[group_id];
  const int64_t b = bucket_of(now_ms);
  const int slot = static_cast<int>(b % kBuckets);
  if (g.epochs[slot] != b) {
    g.epochs[slot] = b;
    g.counts[slot] = 0;
  }
  ++g.counts[slot];
  return evaluate(group_id, members, now_ms);
}

std::optional<DeliveryMode> DeliveryPolicy::evaluate(const std::string& group_id, size_t members,
                                                     int64_t now_ms) {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return std::nullopt;
  Group& g = it->second;
  if (now_ms - g.since_ms < options_.min_dwell_ms) return std::nullopt;
  const double r = rate_of(g, now_ms);
  DeliveryMode want = g.mode;
  if (g.mode == DeliveryMode::kPush) {
    if (members >= options_.pull_min_members && r >= options_.pull_enter_rate) want = DeliveryMode::kPull;
  } else if (r < options_.pull_exit_rate ||
             static_cast<double>(members) < 0.8 * static_cast<double>(options_.pull_min_members)) {
    want = DeliveryMode::kPush;
  }
  if (want == g.mode) return std::nullopt;
  g.mode = want;
  g.since_ms = now_ms;
  return want;
}

}  // namespace parley
