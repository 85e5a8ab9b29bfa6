// Store conformance for read positions (MembershipStore::mark_read and
// read_position, docs/decisions.md 49): forward only, per member, forgotten
// on leaving. Built a second time into tests/redis with
// PARLEY_CONFORMANCE_REDIS: then the same cases run on one redis-server and
// on a Redis Cluster.
#include "unit/store_fixtures.hpp"

TEST_CASE_TEMPLATE("store: a read position moves only forward, per member, and a leaver's is forgotten", T,
                   ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  require_ok(m.create_group("g", "ann"));
  require_ok(m.add("g", "bob", Role::kMember));
  CHECK(value_of(m.read_position("g", "ann")).msg_id == 0);
  // Two devices race: the furthest wins, whichever comes last.
  ReadPosition at = value_of(m.mark_read("g", "ann", {1, 7}));
  CHECK(at.epoch == 1);
  CHECK(at.msg_id == 7);
  at = value_of(m.mark_read("g", "ann", {1, 5}));
  CHECK(at.msg_id == 7);
  CHECK(value_of(m.read_position("g", "ann")).msg_id == 7);
  // A newer epoch is later whatever its id; an older one never.
  at = value_of(m.mark_read("g", "ann", {2, 1}));
  CHECK(at.epoch == 2);
  CHECK(at.msg_id == 1);
  at = value_of(m.mark_read("g", "ann", {1, 99}));
  CHECK(at.epoch == 2);
  CHECK(at.msg_id == 1);
  // Each member has its own; a role change keeps it.
  CHECK(value_of(m.read_position("g", "bob")).msg_id == 0);
  require_ok(m.add("g", "ann", Role::kOwner));
  CHECK(value_of(m.read_position("g", "ann")).msg_id == 1);
  // Not a member: not_found, and nothing stored.
  CHECK(m.mark_read("g", "eve", {1, 3}).status().code() == Code::kNotFound);
  CHECK(m.read_position("g", "eve").status().code() == Code::kNotFound);
  CHECK(m.read_position("nope", "ann").status().code() == Code::kNotFound);
  // Leaving forgets it: back in, nothing read.
  require_ok(m.remove("g", "ann"));
  CHECK(m.read_position("g", "ann").status().code() == Code::kNotFound);
  require_ok(m.add("g", "ann", Role::kMember));
  ReadPosition fresh = value_of(m.read_position("g", "ann"));
  CHECK(fresh.epoch == 0);
  CHECK(fresh.msg_id == 0);
}
