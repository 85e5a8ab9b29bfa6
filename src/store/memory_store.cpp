// In-memory stores. Same observable semantics as the SQLite stores; the
// conformance suite (tests/unit/store_conformance_test.cpp) runs both.
#include "parley/memory_store.hpp"

#include "store/log_rules.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace parley {
namespace {

Status require_id(const std::string& id, const char* what) {
  if (!id.empty()) return Status::ok();
  return error(Code::kInvalidArgument, std::string(what) + " is empty");
}

// (user_id, client_msg_id) -> where the original message is.
using DedupKey = std::pair<std::string, std::string>;

struct MessageRef {
  std::string group_id;
  uint64_t msg_id = 0;
};

// (message, user, key): one reaction.
using Reaction = std::tuple<uint64_t, std::string, std::string>;

// Sorted ids: how many lie in (after, upto].
size_t count_in(const std::vector<uint64_t>& ids, uint64_t after, uint64_t upto) {
  return static_cast<size_t>(std::upper_bound(ids.begin(), ids.end(), upto) -
                             std::upper_bound(ids.begin(), ids.end(), after));
}

struct GroupLog {
  uint64_t epoch = 0;
  std::vector<Message> messages;  // messages[i].msg_id == i + 1
  std::set<Reaction> reactions;
  // What unread counts need (decision 49), as sorted id vectors counted by
  // binary search: ord[i] = entries of kind message among ids 1..i+1; each
  // user's own messages; deleted messages; each user's mentions in
  // messages that are not deleted.
  std::vector<uint64_t> ord;
  std::map<std::string, std::vector<uint64_t>> own;
  std::set<uint64_t> deleted;
  std::map<std::string, std::vector<uint64_t>> mentions;
  // What folded reads need: each message's latest edit, and its replies
  // that are not deleted.
  std::map<uint64_t, uint64_t> latest_edit;
  std::map<uint64_t, uint64_t> replies;
};

class MemoryMessageStore final : public MessageStore {
 public:
  // Every check that can fail the whole batch comes first; after it, each
  // request is applied in turn (a refused one gets its own status), so a
  // request sees the ones before it in the batch.
  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override {
    for (const AppendRequest& request : requests) {
      if (Status s = require_id(request.group_id, "group_id"); !s) return s;
      if (Status s = require_id(request.user_id, "user_id"); !s) return s;
    }
    std::vector<AppendOutcome> outcomes(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) apply(requests[i], &outcomes[i]);
    *out = std::move(outcomes);
    return Status::ok();
  }

  Status read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Message>* out) override {
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return Status::ok();
    const std::vector<Message>& messages = it->second.messages;
    if (after >= messages.size()) return Status::ok();
    const size_t end = after + std::min<size_t>(limit, messages.size() - after);
    out->insert(out->end(), messages.begin() + static_cast<ptrdiff_t>(after),
                messages.begin() + static_cast<ptrdiff_t>(end));
    return Status::ok();
  }

  Status read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override {
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return Status::ok();
    const GroupLog& log = it->second;
    out->epoch = log.epoch;
    out->head = log.messages.size();
    out->to = after >= out->head ? after : after + std::min<uint64_t>(limit, out->head - after);
    for (uint64_t id = after + 1; id <= out->to; ++id) {
      Message m = log.messages[id - 1];
      if (!detail::listed_when_folded(m.entry.kind)) continue;
      Fold f;
      if (m.entry.kind == EntryKind::kMessage && !m.deleted) {
        if (auto e = log.latest_edit.find(id); e != log.latest_edit.end()) {
          f.edited = e->second;
          m.contents = log.messages[e->second - 1].contents;
        }
        std::vector<std::pair<std::string, std::string>> rows;
        for (auto r = log.reactions.lower_bound(Reaction{id, "", ""}); r != log.reactions.end() && std::get<0>(*r) == id;
             ++r) {
          rows.emplace_back(std::get<2>(*r), std::get<1>(*r));
        }
        f.reactions = detail::count_reactions(std::move(rows), reader);
        if (auto r = log.replies.find(id); r != log.replies.end()) f.replies = r->second;
      }
      out->messages.push_back(std::move(m));
      out->folds.push_back(std::move(f));
    }
    return Status::ok();
  }

  Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) override {
    for (const std::string& group_id : group_ids) {
      GroupHead head{group_id, 0, 0};
      if (auto it = groups_.find(group_id); it != groups_.end()) {
        head.head = it->second.messages.size();
        head.epoch = it->second.epoch;
      }
      out->push_back(std::move(head));
    }
    return Status::ok();
  }

  Result<uint64_t> reset_group(const std::string& group_id) override {
    if (Status s = require_id(group_id, "group_id"); !s) return s;
    GroupLog& log = groups_[group_id];
    for (const Message& m : log.messages) {
      if (!m.client_msg_id.empty()) dedup_.erase({m.user_id, m.client_msg_id});
    }
    const uint64_t epoch = log.epoch + 1;
    log = GroupLog{};
    log.epoch = epoch;
    return epoch;
  }

  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override {
    for (const UnreadQuery& q : queries) {
      auto it = groups_.find(q.group_id);
      if (it == groups_.end()) {
        out->push_back(detail::unread_frame(q, 0, 0, 0));
        continue;
      }
      const GroupLog& log = it->second;
      UnreadCount c = detail::unread_frame(q, log.epoch, log.messages.size(), 0);
      if (c.after < c.head) {
        const uint64_t messages = log.ord[c.head - 1] - (c.after == 0 ? 0 : log.ord[c.after - 1]);
        size_t own = 0;
        if (auto o = log.own.find(q.user_id); o != log.own.end()) own = count_in(o->second, c.after, c.head);
        size_t deleted = 0;  // by others: the user's own are not in `messages - own` to begin with
        for (auto d = log.deleted.upper_bound(c.after); d != log.deleted.end() && *d <= c.head; ++d) {
          if (log.messages[*d - 1].user_id != q.user_id) ++deleted;
        }
        c.unread = messages - own - deleted;
        if (auto m = log.mentions.find(q.user_id); m != log.mentions.end()) {
          c.mentions = count_in(m->second, c.after, c.head);
        }
      }
      out->push_back(std::move(c));
    }
    return Status::ok();
  }

 private:
  void apply(const AppendRequest& request, AppendOutcome* outcome) {
    if (!request.client_msg_id.empty()) {
      auto it = dedup_.find({request.user_id, request.client_msg_id});
      if (it != dedup_.end()) {
        outcome->message = groups_.at(it->second.group_id).messages[it->second.msg_id - 1];
        outcome->duplicate = true;
        return;
      }
    }
    GroupLog& log = groups_[request.group_id];
    const uint64_t id = detail::named_id(request);
    detail::NamedEntry named;
    if (id != 0 && id <= log.messages.size()) {
      const Message& m = log.messages[id - 1];
      named = {true, m.entry.kind, m.user_id, m.deleted};
    }
    const Reaction reaction{request.entry.target, request.user_id, request.contents};
    const bool reacted = request.entry.kind == EntryKind::kReaction && log.reactions.count(reaction) != 0;
    if (Status s = detail::check_entry(request, named, reacted, log.epoch); !s) {
      outcome->status = s;
      return;
    }
    log.epoch = std::max<uint64_t>(log.epoch, 1);
    Message m = detail::entry_of(request, log.messages.size() + 1, log.epoch);
    const bool is_message = m.entry.kind == EntryKind::kMessage;
    log.ord.push_back((log.ord.empty() ? 0 : log.ord.back()) + (is_message ? 1 : 0));
    if (is_message) {
      log.own[m.user_id].push_back(m.msg_id);
      for (const std::string& u : detail::mentioned_others(m)) log.mentions[u].push_back(m.msg_id);
      if (m.entry.reply_to != 0) ++log.replies[m.entry.reply_to];
    }
    if (m.entry.kind == EntryKind::kEdit) log.latest_edit[m.entry.target] = m.msg_id;
    if (m.entry.kind == EntryKind::kDelete) erase(&log, m.entry.target);
    if (m.entry.kind == EntryKind::kReaction) {
      if (m.entry.remove) {
        log.reactions.erase(reaction);
      } else {
        log.reactions.insert(reaction);
      }
    }
    if (!m.client_msg_id.empty()) {
      dedup_.emplace(DedupKey{m.user_id, m.client_msg_id}, MessageRef{m.group_id, m.msg_id});
    }
    outcome->message = m;
    log.messages.push_back(std::move(m));
  }

  // A delete of `target`: it and its edits become tombstones (a scan of the
  // group's log: the memory store is for tests and simulations).
  static void erase(GroupLog* log, uint64_t target) {
    log->deleted.insert(target);
    log->latest_edit.erase(target);
    if (const uint64_t answered = log->messages[target - 1].entry.reply_to; answered != 0) {
      if (--log->replies[answered] == 0) log->replies.erase(answered);
    }
    for (const std::string& u : detail::mentioned_others(log->messages[target - 1])) {
      std::vector<uint64_t>& ids = log->mentions[u];
      ids.erase(std::lower_bound(ids.begin(), ids.end(), target));
    }
    erase_contents(&log->messages[target - 1]);
    for (Message& m : log->messages) {
      if (m.entry.kind == EntryKind::kEdit && m.entry.target == target) erase_contents(&m);
    }
  }

  std::map<std::string, GroupLog> groups_;
  std::map<DedupKey, MessageRef> dedup_;
};

class MemoryMembershipStore final : public MembershipStore {
 public:
  Status create_group(const std::string& group_id, const std::string& owner) override {
    return create_group_with(group_id, owner, GroupSettings{});
  }

  Status create_group_with(const std::string& group_id, const std::string& owner,
                           const GroupSettings& settings) override {
    if (Status s = require_ids(group_id, owner); !s) return s;
    if (groups_.count(group_id)) {
      return error(Code::kAlreadyExists, "group '" + group_id + "' already exists");
    }
    groups_[group_id][owner] = Role::kOwner;
    groups_by_user_[owner].insert(group_id);
    settings_[group_id] = settings;
    return Status::ok();
  }

  Result<GroupSettings> settings(const std::string& group_id) override {
    if (!groups_.count(group_id)) return no_group(group_id);
    return settings_[group_id];
  }

  Status set_settings(const std::string& group_id, const GroupSettings& settings) override {
    if (!groups_.count(group_id)) return no_group(group_id);
    settings_[group_id] = settings;
    return Status::ok();
  }

  Status invite(const std::string& group_id, const std::string& user_id) override {
    if (Status s = require_ids(group_id, user_id); !s) return s;
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return no_group(group_id);
    if (!it->second.count(user_id)) invites_.insert({group_id, user_id});
    return Status::ok();
  }

  Result<std::optional<Role>> join(const std::string& group_id, const std::string& user_id,
                                   Admission how) override {
    if (Status s = require_ids(group_id, user_id); !s) return s;
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return no_group(group_id);
    if (auto member = it->second.find(user_id); member != it->second.end()) {
      return std::optional<Role>(member->second);
    }
    const bool invited = invites_.count({group_id, user_id}) > 0;
    if (Status refused = detail::join_refusal(group_id, settings_[group_id], how, invited, it->second.size());
        !refused) {
      return refused;
    }
    invites_.erase({group_id, user_id});
    it->second[user_id] = Role::kMember;
    groups_by_user_[user_id].insert(group_id);
    return std::optional<Role>();
  }

  Status public_groups(const std::string& prefix, const std::string& after, size_t limit,
                       std::vector<GroupListing>* out) override {
    out->clear();
    auto it = after < prefix ? groups_.lower_bound(prefix) : groups_.upper_bound(after);
    for (; it != groups_.end() && out->size() < limit; ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      const GroupSettings& s = settings_[it->first];
      if (s.kind == GroupKind::kPublic) out->push_back({it->first, s, it->second.size()});
    }
    return Status::ok();
  }

  Result<bool> group_exists(const std::string& group_id) override { return groups_.count(group_id) > 0; }

  Status add(const std::string& group_id, const std::string& user_id, Role role) override {
    if (Status s = require_ids(group_id, user_id); !s) return s;
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return no_group(group_id);
    it->second[user_id] = role;
    groups_by_user_[user_id].insert(group_id);
    invites_.erase({group_id, user_id});
    return Status::ok();
  }

  Status remove(const std::string& group_id, const std::string& user_id) override {
    auto it = groups_.find(group_id);
    if (it == groups_.end() || it->second.erase(user_id) == 0) return not_member(group_id, user_id);
    reads_.erase({group_id, user_id});
    levels_.erase({group_id, user_id});
    auto user = groups_by_user_.find(user_id);
    user->second.erase(group_id);
    if (user->second.empty()) groups_by_user_.erase(user);
    return Status::ok();
  }

  Result<std::vector<Member>> members(const std::string& group_id) override {
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return no_group(group_id);
    std::vector<Member> out;
    for (const auto& [user_id, role] : it->second) out.push_back({user_id, role});
    return out;
  }

  Result<std::vector<std::string>> groups_of(const std::string& user_id) override {
    auto it = groups_by_user_.find(user_id);
    if (it == groups_by_user_.end()) return std::vector<std::string>{};
    return std::vector<std::string>(it->second.begin(), it->second.end());
  }

  Result<std::optional<Role>> role_of(const std::string& group_id, const std::string& user_id) override {
    std::optional<Role> role;
    if (auto group = groups_.find(group_id); group != groups_.end()) {
      if (auto member = group->second.find(user_id); member != group->second.end()) {
        role = member->second;
      }
    }
    return role;
  }

  Result<ReadPosition> mark_read(const std::string& group_id, const std::string& user_id,
                                 ReadPosition to) override {
    Result<ReadPosition> now = read_position(group_id, user_id);
    if (!now) return now;
    if (!to.later_than(*now)) return now;
    reads_[{group_id, user_id}] = to;
    return to;
  }

  Result<ReadPosition> read_position(const std::string& group_id, const std::string& user_id) override {
    Result<std::optional<Role>> role = role_of(group_id, user_id);
    if (!role->has_value()) return not_member(group_id, user_id);
    auto it = reads_.find({group_id, user_id});
    return it == reads_.end() ? ReadPosition{} : it->second;
  }

  Status set_notify_level(const std::string& group_id, const std::string& user_id, NotifyLevel level) override {
    Result<std::optional<Role>> role = role_of(group_id, user_id);
    if (!role->has_value()) return not_member(group_id, user_id);
    levels_[{group_id, user_id}] = level;
    return Status::ok();
  }

  Status notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                       std::vector<NotifyLevel>* out) override {
    out->clear();
    for (const std::string& u : user_ids) {
      auto it = levels_.find({group_id, u});
      out->push_back(it != levels_.end() ? it->second : role_of(group_id, u)->has_value() ? NotifyLevel::kAll
                                                                                          : NotifyLevel::kNone);
    }
    return Status::ok();
  }

 private:
  static Status require_ids(const std::string& group_id, const std::string& user_id) {
    if (Status s = require_id(group_id, "group_id"); !s) return s;
    return require_id(user_id, "user_id");
  }
  static Status not_member(const std::string& group_id, const std::string& user_id) {
    return error(Code::kNotFound, "user '" + user_id + "' is not a member of group '" + group_id + "'");
  }
  static Status no_group(const std::string& group_id) {
    return error(Code::kNotFound, "group '" + group_id + "' does not exist");
  }

  std::map<std::string, std::map<std::string, Role>> groups_;  // group -> members
  std::map<std::string, std::set<std::string>> groups_by_user_;
  std::map<std::pair<std::string, std::string>, ReadPosition> reads_;  // (group, user)
  std::map<std::pair<std::string, std::string>, NotifyLevel> levels_;  // (group, user): set, not kAll by default
  std::map<std::string, GroupSettings> settings_;
  std::set<std::pair<std::string, std::string>> invites_;  // (group, user), not members
};

class MemorySessionDirectory final : public SessionDirectory {
 public:
  Status put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) override {
    if (Status s = require_id(user_id, "user_id"); !s) return s;
    if (Status s = require_id(node_id, "node_id"); !s) return s;
    entries_[user_id][node_id] = expires_at_ms;
    users_by_node_[node_id].insert(user_id);
    return Status::ok();
  }

  Status erase(const std::string& user_id, const std::string& node_id) override {
    auto user = entries_.find(user_id);
    if (user == entries_.end() || user->second.erase(node_id) == 0) return Status::ok();
    if (user->second.empty()) entries_.erase(user);
    auto node = users_by_node_.find(node_id);
    node->second.erase(user_id);
    if (node->second.empty()) users_by_node_.erase(node);
    return Status::ok();
  }

  Status refresh_node(const std::string& node_id, int64_t expires_at_ms) override {
    auto node = users_by_node_.find(node_id);
    if (node == users_by_node_.end()) return Status::ok();
    for (const std::string& user_id : node->second) entries_[user_id][node_id] = expires_at_ms;
    return Status::ok();
  }

  Status drop_node(const std::string& node_id) override {
    auto node = users_by_node_.find(node_id);
    if (node == users_by_node_.end()) return Status::ok();
    const std::set<std::string> users = node->second;  // a copy: erase() edits the index
    for (const std::string& user_id : users) {
      if (Status s = erase(user_id, node_id); !s) return s;
    }
    return Status::ok();
  }

  Status prune(int64_t now_ms) override {
    std::vector<std::pair<std::string, std::string>> expired;
    for (const auto& [user_id, nodes] : entries_) {
      for (const auto& [node_id, expires_at_ms] : nodes) {
        if (expires_at_ms <= now_ms) expired.emplace_back(user_id, node_id);
      }
    }
    for (const auto& [user_id, node_id] : expired) {
      if (Status s = erase(user_id, node_id); !s) return s;
    }
    return Status::ok();
  }

  Status nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<std::vector<std::string>>* out) override {
    std::vector<std::vector<std::string>> result(user_ids.size());
    for (size_t i = 0; i < user_ids.size(); ++i) {
      auto user = entries_.find(user_ids[i]);
      if (user == entries_.end()) continue;
      for (const auto& [node_id, expires_at_ms] : user->second) {
        if (now_ms < expires_at_ms) result[i].push_back(node_id);
      }
    }
    *out = std::move(result);
    return Status::ok();
  }

 private:
  // user -> node -> expires_at_ms; an entry is live while now_ms < expires_at_ms.
  std::map<std::string, std::map<std::string, int64_t>> entries_;
  std::map<std::string, std::set<std::string>> users_by_node_;
};

}  // namespace

std::unique_ptr<MessageStore> make_memory_message_store() {
  return std::make_unique<MemoryMessageStore>();
}

std::unique_ptr<MembershipStore> make_memory_membership_store() {
  return std::make_unique<MemoryMembershipStore>();
}

std::unique_ptr<SessionDirectory> make_memory_session_directory() {
  return std::make_unique<MemorySessionDirectory>();
}

}  // namespace parley
