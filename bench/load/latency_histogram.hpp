// LatencyHistogram: a log-linear histogram of non-negative integer values
// (nanoseconds here), in the manner of HdrHistogram: exact below 256, then 128
// linear buckets per power of two, so a reported value is at most 0.8% above
// the true one. Fixed memory (about 57 KiB), no allocation after construction;
// two histograms merge by adding their buckets.
//
// Not thread-safe: each load shard owns its own and the main thread merges
// them once the shards have stopped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace parley::load {

class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  // Records one value; negative values count as 0.
  void record(int64_t value) {
    const uint64_t v = value < 0 ? 0 : static_cast<uint64_t>(value);
    ++counts_[index_of(v)];
    ++count_;
    max_ = std::max(max_, v);
  }

  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }

  // The smallest recorded value v such that at least `percent`% of the values
  // are <= v, reported as the top of its bucket (never above max()). 0 when empty.
  uint64_t percentile(double percent) const {
    if (count_ == 0) return 0;
    const double wanted = std::ceil(percent / 100.0 * static_cast<double>(count_));
    const uint64_t target = std::max<uint64_t>(1, static_cast<uint64_t>(wanted));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= target) return std::min(max_, highest_of(i));
    }
    return max_;
  }

 private:
  static constexpr int kLinear = 256;  // values below this have their own bucket
  static constexpr int kHalf = 128;    // buckets per power of two above it
  static constexpr int kTopBit = 62;   // larger values are clamped
  static constexpr size_t kBuckets = kLinear + (kTopBit - 8 + 1) * kHalf;

  static size_t index_of(uint64_t v) {
    if (v < static_cast<uint64_t>(kLinear)) return static_cast<size_t>(v);
    v = std::min<uint64_t>(v, (uint64_t{1} << (kTopBit + 1)) - 1);
    const int bit = 63 - __builtin_clzll(v);  // >= 8
    const int shift = bit - 7;
    return kLinear + static_cast<size_t>(bit - 8) * kHalf + static_cast<size_t>((v >> shift) - kHalf);
  }

  static uint64_t highest_of(size_t index) {
    if (index < static_cast<size_t>(kLinear)) return index;
    const size_t j = index - kLinear;
    const int shift = static_cast<int>(j / kHalf) + 1;
    const uint64_t sub = j % kHalf + kHalf;
    return ((sub + 1) << shift) - 1;
  }

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace parley::load
