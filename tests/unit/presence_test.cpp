#include <doctest/doctest.h>

#include "parley/presence.hpp"

using namespace parley;

TEST_CASE("local status changes are reported once") {
  Presence p({});
  CHECK(p.set_local("a", PresenceStatus::kOnline));
  CHECK_FALSE(p.set_local("a", PresenceStatus::kOnline));
  CHECK(p.set_local("a", PresenceStatus::kAway));
  CHECK(p.status("a", 0) == PresenceStatus::kAway);
  CHECK(p.set_local("a", PresenceStatus::kOffline));
  CHECK(p.status("a", 0) == PresenceStatus::kOffline);
}

TEST_CASE("typing is throttled per user and group") {
  Presence::Options o;
  o.typing_throttle_ms = 2000;
  o.typing_ttl_ms = 5000;
  Presence p(o);
  int64_t exp = 0;
  CHECK(p.typing("a", "g", 0, &exp));
  CHECK(exp == 5000);
  CHECK_FALSE(p.typing("a", "g", 1999, &exp));
  CHECK(p.typing("a", "h", 1999, &exp));  // another group
  CHECK(p.typing("a", "g", 2000, &exp));
}

TEST_CASE("remote statuses expire") {
  Presence::Options o;
  o.remote_ttl_ms = 1000;
  Presence p(o);
  p.observe_remote(PresenceEv{"b", "g", PresenceStatus::kAway, false, 0}, 0);
  CHECK(p.status("b", 999) == PresenceStatus::kAway);
  CHECK(p.status("b", 1000) == PresenceStatus::kOffline);
  p.expire(1000);
  CHECK(p.status("b", 0) == PresenceStatus::kOffline);
}
