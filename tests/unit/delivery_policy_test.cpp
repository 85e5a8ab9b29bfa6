#include <doctest/doctest.h>

#include "parley/delivery_policy.hpp"

using namespace parley;

namespace {
DeliveryPolicy::Options opts() {
  DeliveryPolicy::Options o;
  o.pull_min_members = 100;
  o.pull_enter_rate = 10;
  o.pull_exit_rate = 2;
  o.window_ms = 10000;
  o.min_dwell_ms = 5000;
  return o;
}
}  // namespace

TEST_CASE("small groups stay in push whatever their rate") {
  DeliveryPolicy p(opts());
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(p.observe("g", 10, i * 10).has_value());
  CHECK(p.mode("g") == DeliveryMode::kPush);
}

TEST_CASE("a large busy group switches to pull, and back when it quiets down") {
  DeliveryPolicy p(opts());
  std::optional<DeliveryMode> change;
  int64_t t = 0;
  for (; t < 20000 && !change; t += 50) change = p.observe("g", 500, t);  // 20 msg/s
  REQUIRE(change.has_value());
  CHECK(*change == DeliveryMode::kPull);
  CHECK(p.rate("g", t) >= 10);
  // Quiet: the rate decays; the mode holds for the dwell time, then flips.
  CHECK_FALSE(p.evaluate("g", 500, t + 1000).has_value());
  auto back = p.evaluate("g", 500, t + 20000);
  REQUIRE(back.has_value());
  CHECK(*back == DeliveryMode::kPush);
}

TEST_CASE("hysteresis: a rate between the thresholds changes nothing") {
  DeliveryPolicy p(opts());
  int64_t t = 0;
  for (; t < 20000; t += 50) p.observe("g", 500, t);
  REQUIRE(p.mode("g") == DeliveryMode::kPull);
  for (int64_t u = t; u < t + 30000; u += 200) CHECK_FALSE(p.observe("g", 500, u).has_value());  // 5 msg/s
  CHECK(p.mode("g") == DeliveryMode::kPull);
}

TEST_CASE("a mode is kept for min_dwell_ms, even when the group shrinks at once") {
  DeliveryPolicy p(opts());
  int64_t t = 0;
  std::optional<DeliveryMode> change;
  for (; t < 20000 && !change; t += 50) change = p.observe("g", 500, t);
  REQUIRE(change == DeliveryMode::kPull);
  const int64_t since = t - 50;
  // Members leave: the group is far below the pull size, but the mode holds.
  CHECK_FALSE(p.evaluate("g", 10, since + 1).has_value());
  CHECK_FALSE(p.evaluate("g", 10, since + 4999).has_value());
  CHECK(p.mode("g") == DeliveryMode::kPull);
  CHECK(p.evaluate("g", 10, since + 5000) == DeliveryMode::kPush);
}

TEST_CASE("the rate counts only the last window_ms") {
  DeliveryPolicy p(opts());  // 10 buckets of 1000 ms
  for (int i = 0; i < 50; ++i) p.observe("g", 10, 3000 + i);  // 50 messages in bucket 3
  CHECK(p.rate("g", 3999) == doctest::Approx(5.0));
  CHECK(p.rate("g", 12999) == doctest::Approx(5.0));  // buckets 3..12
  CHECK(p.rate("g", 13000) == doctest::Approx(0.0));  // buckets 4..13: bucket 3 is out
}
