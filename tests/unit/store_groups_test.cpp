// Store conformance for group kinds, settings, invites, joins and discovery
// (MembershipStore::create_group_with ... public_groups, docs/decisions.md
// 56). Built a second time into tests/redis with PARLEY_CONFORMANCE_REDIS:
// then the same cases run on one redis-server and on a Redis Cluster.
#include "unit/store_fixtures.hpp"

namespace {

GroupSettings private_settings(const std::string& title, uint32_t limit = 0) {
  GroupSettings s;
  s.kind = GroupKind::kPrivate;
  s.title = title;
  s.topic = "topic of " + title;
  s.member_limit = limit;
  return s;
}

std::vector<std::string> ids_of(const std::vector<GroupListing>& page) {
  std::vector<std::string> out;
  for (const GroupListing& g : page) out.push_back(g.group_id);
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("store: a group's settings are set at its creation and replaced whole", T, ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  require_ok(m.create_group("plain", "owner"));
  CHECK(value_of(m.settings("plain")) == GroupSettings{});

  const GroupSettings club = private_settings("The Club \xc3\xa9", 12);
  require_ok(m.create_group_with("club", "ann", club));
  CHECK(value_of(m.settings("club")) == club);
  CHECK(value_of(m.role_of("club", "ann")) == Role::kOwner);
  CHECK(value_of(m.groups_of("ann")) == std::vector<std::string>{"club"});
  CHECK(m.create_group_with("club", "bob", GroupSettings{}).code() == Code::kAlreadyExists);
  CHECK(value_of(m.settings("club")) == club);

  GroupSettings open;
  open.title = "now open";
  require_ok(m.set_settings("club", open));
  CHECK(value_of(m.settings("club")) == open);
  CHECK(value_of(m.settings("plain")) == GroupSettings{});

  CHECK(m.settings("nope").status().code() == Code::kNotFound);
  CHECK(m.set_settings("nope", club).code() == Code::kNotFound);
  CHECK_FALSE(value_of(m.group_exists("nope")));
}

TEST_CASE_TEMPLATE("store: joining follows the group's kind, its invites and its member limit", T, ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  require_ok(m.create_group("pub", "owner"));
  CHECK_FALSE(value_of(m.join("pub", "amy", Admission::kAsked)).has_value());  // joined now
  CHECK(value_of(m.join("pub", "amy", Admission::kAsked)) == Role::kMember);  // already
  CHECK(value_of(m.join("pub", "owner", Admission::kAsked)) == Role::kOwner);
  CHECK(value_of(m.groups_of("amy")) == std::vector<std::string>{"pub"});

  require_ok(m.create_group_with("priv", "owner", private_settings("p")));
  CHECK(m.join("priv", "amy", Admission::kAsked).status().code() == Code::kPermissionDenied);
  CHECK_FALSE(value_of(m.role_of("priv", "amy")).has_value());
  require_ok(m.invite("priv", "amy"));
  require_ok(m.invite("priv", "amy"));  // twice is once
  CHECK_FALSE(value_of(m.role_of("priv", "amy")).has_value());  // invited is not a member
  CHECK_FALSE(value_of(m.join("priv", "amy", Admission::kAsked)).has_value());
  CHECK(value_of(m.role_of("priv", "amy")) == Role::kMember);
  // The invite is spent: after leaving, asking is refused again.
  require_ok(m.remove("priv", "amy"));
  CHECK(m.join("priv", "amy", Admission::kAsked).status().code() == Code::kPermissionDenied);
  // Admitted (by the owner or the app) needs no invite.
  CHECK_FALSE(value_of(m.join("priv", "amy", Admission::kAdmitted)).has_value());
  // A member's invite is nothing: it does not outlive the membership.
  require_ok(m.invite("priv", "amy"));
  require_ok(m.remove("priv", "amy"));
  CHECK(m.join("priv", "amy", Admission::kAsked).status().code() == Code::kPermissionDenied);
  // An invite is spent by an add too.
  require_ok(m.invite("priv", "bob"));
  require_ok(m.add("priv", "bob", Role::kMember));
  require_ok(m.remove("priv", "bob"));
  CHECK(m.join("priv", "bob", Admission::kAsked).status().code() == Code::kPermissionDenied);
  // Invites are per group.
  require_ok(m.invite("priv", "cat"));
  require_ok(m.create_group_with("priv2", "owner", private_settings("q")));
  CHECK(m.join("priv2", "cat", Admission::kAsked).status().code() == Code::kPermissionDenied);

  // The limit counts members, the owner among them, and binds the admitted too.
  require_ok(m.create_group_with("small", "owner", GroupSettings{GroupKind::kPublic, "", "", 2}));
  CHECK_FALSE(value_of(m.join("small", "amy", Admission::kAsked)).has_value());
  Status full = m.join("small", "bob", Admission::kAsked).status();
  CHECK(full.code() == Code::kLimitExceeded);
  CHECK(full.message().find("2") != std::string::npos);
  CHECK(m.join("small", "bob", Admission::kAdmitted).status().code() == Code::kLimitExceeded);
  CHECK(value_of(m.join("small", "amy", Admission::kAsked)) == Role::kMember);  // a member is not refused
  CHECK(value_of(m.members("small")).size() == 2);
  require_ok(m.remove("small", "amy"));
  CHECK_FALSE(value_of(m.join("small", "bob", Admission::kAsked)).has_value());
  // A limit lowered below the members keeps them and refuses the next.
  require_ok(m.set_settings("pub", GroupSettings{GroupKind::kPublic, "", "", 1}));
  CHECK(value_of(m.members("pub")).size() == 2);
  CHECK(m.join("pub", "cat", Admission::kAdmitted).status().code() == Code::kLimitExceeded);

  CHECK(m.join("nope", "amy", Admission::kAdmitted).status().code() == Code::kNotFound);
  CHECK(m.invite("nope", "amy").code() == Code::kNotFound);
  CHECK(m.join("pub", "", Admission::kAsked).status().code() == Code::kInvalidArgument);
  CHECK_FALSE(value_of(m.group_exists("nope")));
}

TEST_CASE_TEMPLATE("store: discovery lists public groups by prefix, in pages, with their member counts", T,
                   ALL_STORES) {
  T stores;
  MembershipStore& m = stores.membership();
  for (const char* g : {"game-a", "game-c", "gam", "gamf", "other", "game-"}) require_ok(m.create_group(g, "o"));
  require_ok(m.create_group_with("game-b", "o", private_settings("hidden")));
  GroupSettings titled;
  titled.title = "Game C";
  titled.topic = "c's topic";
  titled.member_limit = 50;
  require_ok(m.set_settings("game-c", titled));
  require_ok(m.add("game-c", "amy", Role::kMember));
  require_ok(m.add("game-c", "bob", Role::kMember));

  std::vector<GroupListing> page;
  require_ok(m.public_groups("game-", "", 10, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"game-", "game-a", "game-c"});
  REQUIRE(page.size() == 3);
  CHECK(page[2].settings == titled);
  CHECK(page[2].members == 3);
  CHECK(page[1].members == 1);
  CHECK(page[1].settings == GroupSettings{});

  // Pages: `after` is the last id of the page before.
  require_ok(m.public_groups("game-", "", 2, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"game-", "game-a"});
  require_ok(m.public_groups("game-", "game-a", 2, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"game-c"});
  require_ok(m.public_groups("game-", "game-c", 2, &page));
  CHECK(page.empty());
  // `after` before the prefix's range starts at the prefix.
  require_ok(m.public_groups("game-", "a", 10, &page));
  CHECK(page.size() == 3);

  require_ok(m.public_groups("", "", 100, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"gam", "game-", "game-a", "game-c", "gamf", "other"});
  require_ok(m.public_groups("zzz", "", 10, &page));
  CHECK(page.empty());

  // Made private it leaves the listing; made public again it comes back.
  require_ok(m.set_settings("game-a", private_settings("now private")));
  require_ok(m.public_groups("game-", "", 10, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"game-", "game-c"});
  require_ok(m.public_groups("game", "", 1, &page));  // a page skips the private ones and stays full
  CHECK(ids_of(page) == std::vector<std::string>{"game-"});
  require_ok(m.public_groups("game", "game-", 1, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"game-c"});
  require_ok(m.set_settings("game-a", GroupSettings{}));
  require_ok(m.public_groups("game-", "", 10, &page));
  CHECK(ids_of(page) == std::vector<std::string>{"game-", "game-a", "game-c"});
}
