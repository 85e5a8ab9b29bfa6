// SqliteStoreImpl: membership (groups, members, roles) and the session
// directory (user -> nodes, with expiry).
#include "store/sqlite_impl.hpp"

namespace parley::sqlite_detail {

// --- MembershipStore ---

Status SqliteStoreImpl::create_group(const std::string& group_id, const std::string& owner) {
  return create_group_with(group_id, owner, GroupSettings{});
}

Status SqliteStoreImpl::create_group_with(const std::string& group_id, const std::string& owner,
                                          const GroupSettings& settings) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  if (Status s = require_id(owner, "user_id"); !s) return s;
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  int created = 0;
  Status s = change(
      Sql::kInsertGroup,
      [&](Query& q) {
        q.bind(1, group_id)
            .bind(2, owner)
            .bind(3, static_cast<int64_t>(settings.kind))
            .bind(4, settings.title)
            .bind(5, settings.topic)
            .bind(6, static_cast<int64_t>(settings.member_limit));
      },
      &created);
  if (!s) return s;
  if (created == 0) {
    return error(Code::kAlreadyExists, fmt::format("group '{}' already exists", group_id));
  }
  if (Status a = add(group_id, owner, Role::kOwner); !a) return a;
  return tx.commit();
}

Result<bool> SqliteStoreImpl::group_exists(const std::string& group_id) {
  bool exists = false;
  Status s = query(
      Sql::kSelectGroup, [&](Query& q) { q.bind(1, group_id); }, [&](const Query&) { exists = true; });
  if (!s) return s;
  return exists;
}

Status SqliteStoreImpl::add(const std::string& group_id, const std::string& user_id, Role role) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  if (Status s = require_id(user_id, "user_id"); !s) return s;
  int changed = 0;
  Status s = change(
      Sql::kUpsertMember,
      [&](Query& q) { q.bind(1, group_id).bind(2, user_id).bind(3, static_cast<int64_t>(role)); }, &changed);
  if (!s) return s;
  if (changed == 0) {
    return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  }
  return change(Sql::kDeleteInvite, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); });
}

Result<GroupSettings> SqliteStoreImpl::settings(const std::string& group_id) {
  std::optional<GroupSettings> out;
  Status s = query(
      Sql::kSelectSettings, [&](Query& q) { q.bind(1, group_id); },
      [&](const Query& q) {
        out = GroupSettings{static_cast<GroupKind>(q.int_at(0)), q.text_at(1), q.text_at(2),
                            static_cast<uint32_t>(q.int_at(3))};
      });
  if (!s) return s;
  if (!out) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return *out;
}

Status SqliteStoreImpl::set_settings(const std::string& group_id, const GroupSettings& settings) {
  int changed = 0;
  Status s = change(
      Sql::kUpdateSettings,
      [&](Query& q) {
        q.bind(1, group_id)
            .bind(2, static_cast<int64_t>(settings.kind))
            .bind(3, settings.title)
            .bind(4, settings.topic)
            .bind(5, static_cast<int64_t>(settings.member_limit));
      },
      &changed);
  if (!s) return s;
  if (changed == 0) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return Status::ok();
}

Status SqliteStoreImpl::invite(const std::string& group_id, const std::string& user_id) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  if (Status s = require_id(user_id, "user_id"); !s) return s;
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  Result<bool> exists = group_exists(group_id);
  if (!exists) return exists.status();
  if (!*exists) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  if (Status s = change(Sql::kInsertInvite, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); }); !s) return s;
  return tx.commit();
}

Result<std::optional<Role>> SqliteStoreImpl::join(const std::string& group_id, const std::string& user_id,
                                                  Admission how) {
  if (Status s = require_id(group_id, "group_id"); !s) return s;
  if (Status s = require_id(user_id, "user_id"); !s) return s;
  Transaction tx(this);
  if (Status s = tx.begin(); !s) return s;
  Result<GroupSettings> rules = settings(group_id);
  if (!rules) return rules.status();
  Result<std::optional<Role>> role = role_of(group_id, user_id);
  if (!role || role->has_value()) return role;
  bool invited = false;
  int64_t members = 0;
  Status s = query(
      Sql::kSelectInvite, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); },
      [&](const Query&) { invited = true; });
  if (s) {
    s = query(
        Sql::kCountMembers, [&](Query& q) { q.bind(1, group_id); }, [&](const Query& q) { members = q.int_at(0); });
  }
  if (s) s = detail::join_refusal(group_id, *rules, how, invited, static_cast<uint64_t>(members));
  if (s) s = add(group_id, user_id, Role::kMember);
  if (s) s = tx.commit();
  if (!s) return s;
  return std::optional<Role>();
}

Status SqliteStoreImpl::public_groups(const std::string& prefix, const std::string& after, size_t limit,
                                      std::vector<GroupListing>* out) {
  out->clear();
  const std::string past = detail::past_prefix(prefix);
  return query(
      Sql::kSelectPublic,
      [&](Query& q) { q.bind(1, prefix).bind(2, after).bind(3, clamp_to_int64(limit)).bind(4, past); },
      [&](const Query& q) {
        out->push_back({q.text_at(0),
                        {static_cast<GroupKind>(q.int_at(1)), q.text_at(2), q.text_at(3),
                         static_cast<uint32_t>(q.int_at(4))},
                        static_cast<uint64_t>(q.int_at(5))});
      });
}

Status SqliteStoreImpl::remove(const std::string& group_id, const std::string& user_id) {
  int removed = 0;
  Status s = change(
      Sql::kDeleteMember, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); }, &removed);
  if (!s) return s;
  if (removed == 0) {
    return error(Code::kNotFound, fmt::format("user '{}' is not a member of group '{}'", user_id, group_id));
  }
  return Status::ok();
}

Result<std::vector<Member>> SqliteStoreImpl::members(const std::string& group_id) {
  Result<bool> exists = group_exists(group_id);
  if (!exists) return exists.status();
  if (!*exists) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  std::vector<Member> out;
  Status s = query(
      Sql::kSelectMembers, [&](Query& q) { q.bind(1, group_id); },
      [&](const Query& q) {
        out.push_back({q.text_at(0), static_cast<Role>(q.int_at(1))});
      });
  if (!s) return s;
  return out;
}

Result<std::vector<std::string>> SqliteStoreImpl::strings(Sql sql, const std::string& key) {
  std::vector<std::string> out;
  Status s = query(
      sql, [&](Query& q) { q.bind(1, key); }, [&](const Query& q) { out.push_back(q.text_at(0)); });
  if (!s) return s;
  return out;
}

Result<std::vector<std::string>> SqliteStoreImpl::groups_of(const std::string& user_id) {
  return strings(Sql::kSelectGroupsOf, user_id);
}

Result<std::optional<Role>> SqliteStoreImpl::role_of(const std::string& group_id,
                                                     const std::string& user_id) {
  std::optional<Role> role;
  Status s = query(
      Sql::kSelectRole, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); },
      [&](const Query& q) { role = static_cast<Role>(q.int_at(0)); });
  if (!s) return s;
  return role;
}

Result<ReadPosition> SqliteStoreImpl::mark_read(const std::string& group_id, const std::string& user_id,
                                                ReadPosition to) {
  // One conditional UPDATE: the position only moves forward, whoever races.
  Status s = change(Sql::kMarkRead, [&](Query& q) {
    q.bind(1, group_id).bind(2, user_id).bind(3, clamp_to_int64(to.epoch)).bind(4, clamp_to_int64(to.msg_id));
  });
  if (!s) return s;
  return read_position(group_id, user_id);
}

Result<ReadPosition> SqliteStoreImpl::read_position(const std::string& group_id, const std::string& user_id) {
  std::optional<ReadPosition> at;
  Status s = query(
      Sql::kSelectRead, [&](Query& q) { q.bind(1, group_id).bind(2, user_id); },
      [&](const Query& q) {
        at = ReadPosition{static_cast<uint64_t>(q.int_at(0)), static_cast<uint64_t>(q.int_at(1))};
      });
  if (!s) return s;
  if (!at) return error(Code::kNotFound, "user '" + user_id + "' is not a member of group '" + group_id + "'");
  return *at;
}

Status SqliteStoreImpl::set_notify_level(const std::string& group_id, const std::string& user_id,
                                         NotifyLevel level) {
  int changed = 0;
  Status s = change(
      Sql::kSetNotify,
      [&](Query& q) { q.bind(1, group_id).bind(2, user_id).bind(3, static_cast<int64_t>(level)); }, &changed);
  if (!s) return s;
  if (changed == 0) return error(Code::kNotFound, "user '" + user_id + "' is not a member of group '" + group_id + "'");
  return Status::ok();
}

Status SqliteStoreImpl::notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                                      std::vector<NotifyLevel>* out) {
  std::vector<NotifyLevel> levels;
  levels.reserve(user_ids.size());
  for (const std::string& u : user_ids) {
    NotifyLevel level = NotifyLevel::kNone;  // not a member
    Status s = query(
        Sql::kSelectNotify, [&](Query& q) { q.bind(1, group_id).bind(2, u); },
        [&](const Query& q) {
          const int64_t v = q.int_at(0);
          level = v == 1 ? NotifyLevel::kMentions : v == 2 ? NotifyLevel::kNone : NotifyLevel::kAll;
        });
    if (!s) return s;
    levels.push_back(level);
  }
  *out = std::move(levels);
  return Status::ok();
}

// --- SessionDirectory ---

Status SqliteStoreImpl::put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) {
  if (Status s = require_id(user_id, "user_id"); !s) return s;
  if (Status s = require_id(node_id, "node_id"); !s) return s;
  return change(Sql::kUpsertSession,
                [&](Query& q) { q.bind(1, user_id).bind(2, node_id).bind(3, expires_at_ms); });
}

Status SqliteStoreImpl::erase(const std::string& user_id, const std::string& node_id) {
  return change(Sql::kDeleteSession, [&](Query& q) { q.bind(1, user_id).bind(2, node_id); });
}

Status SqliteStoreImpl::refresh_node(const std::string& node_id, int64_t expires_at_ms) {
  return change(Sql::kRefreshNode, [&](Query& q) { q.bind(1, node_id).bind(2, expires_at_ms); });
}

Status SqliteStoreImpl::drop_node(const std::string& node_id) {
  return change(Sql::kDropNode, [&](Query& q) { q.bind(1, node_id); });
}

Status SqliteStoreImpl::prune(int64_t now_ms) {
  return change(Sql::kPruneSessions, [&](Query& q) { q.bind(1, now_ms); });
}

Status SqliteStoreImpl::nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                                 std::vector<std::vector<std::string>>* out) {
  std::vector<std::vector<std::string>> result;
  result.reserve(user_ids.size());
  for (const std::string& user_id : user_ids) {
    std::vector<std::string> nodes;
    Status s = query(
        Sql::kSelectNodes, [&](Query& q) { q.bind(1, user_id).bind(2, now_ms); },
        [&](const Query& q) { nodes.push_back(q.text_at(0)); });
    if (!s) return s;
    result.push_back(std::move(nodes));
  }
  *out = std::move(result);
  return Status::ok();
}

Status SqliteStoreImpl::set_presence(const std::string& user_id, const std::string& node_id,
                                     PresenceStatus status) {
  return change(Sql::kSetPresence, [&](Query& q) {
    q.bind(1, user_id).bind(2, node_id).bind(3, static_cast<int64_t>(status));
  });
}

Status SqliteStoreImpl::presence(const std::vector<std::string>& user_ids, int64_t now_ms,
                                 std::vector<PresenceStatus>* out) {
  // online > away > offline, over the user's live entries.
  auto rank = [](PresenceStatus p) {
    return p == PresenceStatus::kOnline ? 2 : p == PresenceStatus::kAway ? 1 : 0;
  };
  std::vector<PresenceStatus> result;
  result.reserve(user_ids.size());
  for (const std::string& user_id : user_ids) {
    PresenceStatus best = PresenceStatus::kOffline;
    Status s = query(
        Sql::kSelectPresence, [&](Query& q) { q.bind(1, user_id).bind(2, now_ms); },
        [&](const Query& q) {
          const int64_t v = q.int_at(0);
          const PresenceStatus p = v == 1 ? PresenceStatus::kOnline : v == 2 ? PresenceStatus::kAway
                                                                             : PresenceStatus::kOffline;
          if (rank(p) > rank(best)) best = p;
        });
    if (!s) return s;
    result.push_back(best);
  }
  *out = std::move(result);
  return Status::ok();
}

}  // namespace parley::sqlite_detail
