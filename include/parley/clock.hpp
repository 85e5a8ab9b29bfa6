// Clock and Random: the only sources of time and chance the core uses.
//
// The core never reads the wall clock or a global RNG: both are injected so a
// whole cluster can run on virtual time, reproducibly from a seed. Neither
// class is thread-safe; a node uses its own from its own thread.
#pragma once

#include <cstdint>

namespace parley {

// Milliseconds on some monotonic-enough scale. The system clock uses Unix
// time, so timestamps stored in messages are meaningful to people.
class Clock {
 public:
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;
};

// Wall clock (Unix epoch milliseconds).
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
};

// A clock the caller moves by hand: tests and simulations.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 0) : now_(start_ms) {}
  int64_t now_ms() const override { return now_; }
  void set(int64_t ms) { now_ = ms; }
  void advance(int64_t ms) { now_ += ms; }

 private:
  int64_t now_;
};

// Small, fast, seedable generator (xoshiro256**, seeded by splitmix64).
class Random {
 public:
  explicit Random(uint64_t seed);
  uint64_t next();
  // Uniform in [0, n); n > 0.
  uint64_t below(uint64_t n);
  // Uniform in [lo, hi]; lo <= hi.
  int64_t range(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double unit();
  bool chance(double p) { return unit() < p; }

 private:
  uint64_t s_[4];
};

}  // namespace parley
