// DeliveryPolicy: push or pull, per group.
//
// Pushing turns one message into one delivery per member (write
// amplification); pulling makes every client read it (read amplification).
// Small or quiet groups are pushed. A group with at least pull_min_members
// members whose rate over a sliding window reaches pull_enter_rate switches to
// pull: the node stops pushing bodies, sends a PullHint per session instead,
// and serves pulls from its tail cache. It goes back to push when the rate
// falls below pull_exit_rate (or the group shrinks below pull_min_members *
// 0.8); a mode lasts at least min_dwell_ms, so the two thresholds and the
// dwell time give hysteresis.
//
// Pure state machine, time passed in. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "parley/protocol.hpp"

namespace parley {

class DeliveryPolicy {
 public:
  struct Options {
    size_t pull_min_members = 100;
    double pull_enter_rate = 20.0;  // messages per second
    double pull_exit_rate = 5.0;
    int64_t window_ms = 10000;  // split into kBuckets buckets
    int64_t min_dwell_ms = 5000;
  };
  static constexpr int kBuckets = 10;

  explicit DeliveryPolicy(Options options) : options_(options) {}

  // Counts one message of the group and re-evaluates; returns the new mode if
  // it changed.
  std::optional<DeliveryMode> observe(const std::string& group_id, size_t members, int64_t now_ms);
  // Re-evaluates without a message (lets a quiet group go back to push).
  std::optional<DeliveryMode> evaluate(const std::string& group_id, size_t members, int64_t now_ms);
  DeliveryMode mode(const std::string& group_id) const;
  // Messages per second over the window ending at now_ms.
  double rate(const std::string& group_id, int64_t now_ms) const;
  void forget(const std::string& group_id) { groups_.erase(group_id); }

 private:
  struct Group {
    std::array<uint32_t, kBuckets> counts{};
    std::array<int64_t, kBuckets> epochs{};  // which bucket period each slot holds
    DeliveryMode mode = DeliveryMode::kPush;
    int64_t since_ms = INT64_MIN / 2;
  };
  int64_t bucket_of(int64_t now_ms) const { return now_ms / (options_.window_ms / kBuckets); }
  double rate_of(const Group& g, int64_t now_ms) const;

  Options options_;
  std::unordered_map<std::string, Group> groups_;
};

}  // namespace parley
