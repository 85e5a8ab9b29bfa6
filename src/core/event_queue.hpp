// A virtual-time event queue: callbacks ordered by (time, insertion order).
// Shared by the loopback cluster and the simulation so both run
// deterministically. Internal.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "parley/clock.hpp"

namespace parley::detail {

class EventQueue {
 public:
  void at(int64_t t, std::function<void()> fn) { q_.push(Event{t, seq_++, std::move(fn)}); }
  // Runs the earliest event due at or before `until`, moving `clock` to its
  // time. False when there is none.
  bool run_next(ManualClock& clock, int64_t until) {
    if (q_.empty() || q_.top().time > until) return false;
    Event e = q_.top();
    q_.pop();
    if (e.time > clock.now_ms()) clock.set(e.time);
    e.fn();
    return true;
  }
  bool empty() const { return q_.empty(); }

 private:
  struct Event {
    int64_t time;
    uint64_t seq;
    std::function<void()> fn;
    bool operator<(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };
  std::priority_queue<Event, std::vector<Event>> q_;
  uint64_t seq_ = 0;
};

}  // namespace parley::detail
