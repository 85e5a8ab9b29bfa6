// The run_* functions of store_jobs.hpp: each job kind run on the stores,
// by an executor on its thread or by a node inline.
#include "parley/store_jobs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <type_traits>

namespace parley {

ReadResult run_read(MessageStore& store, const ReadJob& job) {
  ReadResult r;
  r.status = store.read(job.group_id, job.after, job.limit, &r.messages);
  if (r.status.code() == Code::kTrimmed) {
    std::vector<GroupHead> heads;
    if (store.heads({job.group_id}, &heads)) r.trimmed = heads[0].trimmed;
  }
  return r;
}

namespace {
// The first mention of a request that is not a member of its group (kOk:
// none), read from the membership store.
Status check_mentions(MembershipStore& membership, const AppendRequest& r) {
  for (const std::string& u : r.entry.mentions) {
    Result<std::optional<Role>> role = membership.role_of(r.group_id, u);
    if (!role) return role.status();
    if (!role->has_value()) {
      return error(Code::kInvalidArgument,
                   fmt::format("mentions: '{}' is not a member of '{}'", u, r.group_id));
    }
  }
  return Status::ok();
}
}  // namespace

Status run_append(MessageStore& messages, MembershipStore* membership, std::vector<AppendRequest>& requests,
                  std::vector<AppendOutcome>* out) {
  // Most batches mention nobody: appended as they are, no membership read.
  std::vector<std::pair<size_t, Status>> refused;
  if (membership != nullptr) {
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].entry.mentions.empty()) continue;
      Status st = check_mentions(*membership, requests[i]);
      if (st.code() != Code::kInvalidArgument && !st) return st;  // the store failed: the whole batch does
      if (!st) refused.emplace_back(i, std::move(st));
    }
  }
  if (refused.empty()) return messages.append(requests, out);
  std::vector<AppendRequest> kept;
  kept.reserve(requests.size() - refused.size());
  for (size_t i = 0, k = 0; i < requests.size(); ++i) {
    if (k < refused.size() && refused[k].first == i) {
      ++k;
      continue;
    }
    kept.push_back(std::move(requests[i]));
  }
  std::vector<AppendOutcome> stored;
  if (!kept.empty()) {
    if (Status st = messages.append(kept, &stored); !st) return st;
    if (stored.size() != kept.size()) return error(Code::kInternal, "the store answered a different number of outcomes");
  }
  out->clear();
  out->reserve(requests.size());
  for (size_t i = 0, k = 0, s = 0; i < requests.size(); ++i) {
    if (k < refused.size() && refused[k].first == i) {
      AppendOutcome o;
      o.status = std::move(refused[k++].second);
      out->push_back(std::move(o));
    } else {
      out->push_back(std::move(stored[s++]));
    }
  }
  return Status::ok();
}

LookupResult run_lookup(MessageStore& messages, MembershipStore& membership, const LookupJob& job) {
  LookupResult r;
  Result<std::optional<Role>> role = membership.role_of(job.group_id, job.user_id);
  if (!role) {
    r.status = role.status();
    return r;
  }
  r.member = role->has_value();
  if (!r.member) {
    Result<bool> exists = membership.group_exists(job.group_id);
    r.group_exists = !exists || *exists;  // unknown: not told "no such group"
    return r;
  }
  r.group_exists = true;
  std::vector<GroupHead> heads;
  if (Status st = messages.heads({job.group_id}, &heads); !st) {
    r.status = st;
    return r;
  }
  r.head = heads[0];
  if (job.limit > 0 && job.fold) {
    r.folded = true;
    r.read_status = messages.read_folded(job.group_id, job.after, job.limit, job.user_id, &r.page);
  } else if (job.limit > 0) {
    r.read_status = messages.read(job.group_id, job.after, job.limit, &r.messages);
  }
  return r;
}

Status run_unread(MessageStore& messages, MembershipStore& membership, const UnreadOp& o, StoreOpResult* r) {
  r->reads.clear();
  r->moved = false;
  std::vector<std::string> groups = o.group_ids;
  if (groups.empty()) {
    Result<std::vector<std::string>> all = membership.groups_of(o.user_id);
    if (!all) return all.status();
    groups = std::move(*all);
  }
  std::vector<UnreadQuery> queries;
  queries.reserve(groups.size());
  for (const std::string& g : groups) {
    Result<ReadPosition> at = membership.read_position(g, o.user_id);
    if (!at) return at.status();
    queries.push_back(UnreadQuery{g, o.user_id, *at});
  }
  if (o.mark && queries.size() == 1) {
    std::vector<GroupHead> heads;
    if (Status s = messages.heads({groups[0]}, &heads); !s) return s;
    const GroupHead& h = heads[0];
    if (o.mark->epoch != std::max<uint64_t>(h.epoch, 1)) {
      return error(Code::kEpochMismatch, fmt::format("'{}' is in epoch {}, not {}: resume from 0", h.group_id,
                                                     h.epoch, o.mark->epoch));
    }
    Result<ReadPosition> now =
        membership.mark_read(groups[0], o.user_id, ReadPosition{o.mark->epoch, std::min(o.mark->msg_id, h.head)});
    if (!now) return now.status();
    r->moved = now->later_than(queries[0].read);
    queries[0].read = *now;
  }
  std::vector<UnreadCount> counts;
  if (Status s = messages.unread(queries, &counts); !s) return s;
  r->reads.reserve(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    const UnreadCount& c = counts[i];
    const uint64_t at = queries[i].read.epoch == c.epoch ? std::min(queries[i].read.msg_id, c.head) : 0;
    r->reads.push_back(ReadState{c.group_id, c.epoch, at, c.head, c.unread, c.mentions});
  }
  return Status::ok();
}

Status run_notify_level(MembershipStore& membership, const NotifyLevelOp& o, StoreOpResult* r) {
  if (o.level) {
    if (Status s = membership.set_notify_level(o.group_id, o.user_id, *o.level); !s) return s;
  }
  if (Status s = membership.notify_levels(o.group_id, {o.user_id}, &r->levels); !s) return s;
  if (r->levels.size() != 1) return error(Code::kInternal, "the store answered no notification level");
  if (!o.level) {
    // Not a member reads as none: told apart here, like any request on the group.
    Result<std::optional<Role>> role = membership.role_of(o.group_id, o.user_id);
    if (!role) return role.status();
    if (!role->has_value()) {
      return error(Code::kNotFound, fmt::format("'{}' is not a member of '{}'", o.user_id, o.group_id));
    }
  }
  return Status::ok();
}

namespace {

StoreOpResult run_op(const JobStores& st, const StoreOp& op) {
  StoreOpResult r;
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, HeadsOp>) {
          r.status = st.messages.heads(o.group_ids, &r.heads);
        } else if constexpr (std::is_same_v<T, RouteOp>) {
          Result<std::vector<Member>> members = st.membership.members(o.group_id);
          if (!members) {
            r.status = members.status();
            return;
          }
          r.users.reserve(members->size());
          for (Member& m : *members) r.users.push_back(std::move(m.user_id));
          r.status = st.directory.nodes_of(r.users, o.now_ms, &r.nodes);
        } else if constexpr (std::is_same_v<T, NodesOfOp>) {
          r.status = st.directory.nodes_of(o.user_ids, o.now_ms, &r.nodes);
        } else if constexpr (std::is_same_v<T, GroupsOfOp>) {
          Result<std::vector<std::string>> groups = st.membership.groups_of(o.user_id);
          if (groups) {
            r.users = std::move(*groups);
          } else {
            r.status = groups.status();
          }
        } else if constexpr (std::is_same_v<T, MembersOfOp>) {
          for (const std::string& u : o.user_ids) {
            Result<std::optional<Role>> role = st.membership.role_of(o.group_id, u);
            if (!role) {
              r.status = role.status();
              r.users.clear();
              return;
            }
            if (role->has_value()) r.users.push_back(u);
          }
        } else if constexpr (std::is_same_v<T, DirectoryPutOp>) {
          r.status = st.directory.put(o.user_id, o.node_id, o.expires_at_ms);
        } else if constexpr (std::is_same_v<T, DirectoryEraseOp>) {
          r.status = st.directory.erase(o.user_id, o.node_id);
        } else if constexpr (std::is_same_v<T, DirectoryRefreshOp>) {
          r.status = st.directory.refresh_node(o.node_id, o.expires_at_ms);
          if (Status pruned = st.directory.prune(o.now_ms); r.status && !pruned) r.status = pruned;
        } else if constexpr (std::is_same_v<T, PresenceOp>) {
          if (st.presence != nullptr) r.status = st.presence->set_presence(o.user_id, o.node_id, o.status);
        } else if constexpr (std::is_same_v<T, UnreadOp>) {
          r.status = run_unread(st.messages, st.membership, o, &r);
        } else if constexpr (std::is_same_v<T, NotifyLevelsOp>) {
          r.status = st.membership.notify_levels(o.group_id, o.user_ids, &r.levels);
        } else if constexpr (std::is_same_v<T, NotifyLevelOp>) {
          r.status = run_notify_level(st.membership, o, &r);
        } else if constexpr (std::is_same_v<T, HostOp>) {
          try {
            r.status = o.work(st);
          } catch (const std::exception& e) {
            r.status = error(Code::kInternal, fmt::format("host store work failed: {}", e.what()));
          }
        }
      },
      op);
  return r;
}

}  // namespace

Status member_status(bool member, bool group_exists, const std::string& user_id, const std::string& group_id) {
  if (member) return Status::ok();
  if (!group_exists) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return error(Code::kPermissionDenied, fmt::format("'{}' is not a member of '{}'", user_id, group_id));
}

Status check_member(MembershipStore& membership, const std::string& user_id, const std::string& group_id) {
  Result<std::optional<Role>> role = membership.role_of(group_id, user_id);
  if (!role) return role.status();
  if (role->has_value()) return Status::ok();
  Result<bool> found = membership.group_exists(group_id);
  if (!found) return found.status();
  return member_status(false, *found, user_id, group_id);
}

std::vector<StoreOpResult> run_store_job(const JobStores& stores, const StoreJob& job) {
  std::vector<StoreOpResult> out;
  out.reserve(job.ops.size());
  for (const StoreOp& op : job.ops) out.push_back(run_op(stores, op));
  return out;
}

}  // namespace parley
