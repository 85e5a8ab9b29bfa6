// RedisStoreImpl, the Redis stores (include/parley/redis_store.hpp and
// docs/redis.md), split by interface: redis_store.cpp (the log, the session
// directory and presence, inline here) and redis_membership.cpp (groups,
// members and their settings). Internal: not installed.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

#include "parley/redis_store.hpp"
#include "store/log_rules.hpp"
#include "store/redis_client.hpp"
#include "store/redis_reply.hpp"
#include "store/redis_scripts.hpp"

namespace parley::redis_detail {

using redis::Command;
using redis::Reply;

using namespace redis_scripts;  // the Lua scripts (redis_scripts.hpp)

// A script and its SHA-1 as Redis names it (SCRIPT LOAD computes it at
// open, so no hashing code of our own).
struct Script {
  const char* body;
  std::string sha;
};

class RedisStoreImpl final : public RedisStore {
 public:
  RedisStoreImpl(RedisStoreOptions options, std::unique_ptr<redis::Client> client)
      : opt_(std::move(options)), client_(std::move(client)), p_(opt_.key_prefix + ":") {}

  bool cluster_mode() const override { return client_->cluster_mode(); }

  Status ping() override {
    std::vector<Reply> replies;
    if (Status st = client_->run({Command{{"PING"}, -1}}, &replies); !st) return st;
    return expect_type(replies[0], Reply::Type::kStatus, "PING");
  }

  // ---- MessageStore --------------------------------------------------------

  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override;
  Status read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Message>* out) override;
  Status read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override;
  Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) override;
  // One script per query, pipelined (each on its group's shard).
  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override;
  Result<uint64_t> reset_group(const std::string& group_id) override;
  // ---- MembershipStore (redis_membership.cpp) --------------------------
  Status create_group(const std::string& group_id, const std::string& owner) override;
  Result<bool> group_exists(const std::string& group_id) override;
  Status add(const std::string& group_id, const std::string& user_id, Role role) override;
  Status remove(const std::string& group_id, const std::string& user_id) override;
  Result<std::vector<Member>> members(const std::string& group_id) override;
  Result<std::vector<std::string>> groups_of(const std::string& user_id) override;
  Result<std::optional<Role>> role_of(const std::string& group_id, const std::string& user_id) override;
  Result<ReadPosition> mark_read(const std::string& group_id, const std::string& user_id,
                                 ReadPosition to) override;
  Result<ReadPosition> read_position(const std::string& group_id, const std::string& user_id) override;
  Status set_notify_level(const std::string& group_id, const std::string& user_id, NotifyLevel level) override;
  Status notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                       std::vector<NotifyLevel>* out) override;
  // Settings on the info hash; the public groups' index, one sorted set
  // (score 0, by id), written after the group's own keys (not in the same
  // slot): discovery checks each listed group's kind, so a crash between
  // the two never lists a private group.
  Status create_group_with(const std::string& group_id, const std::string& owner,
                           const GroupSettings& settings) override;
  Result<GroupSettings> settings(const std::string& group_id) override;
  Status set_settings(const std::string& group_id, const GroupSettings& settings) override;
  Status invite(const std::string& group_id, const std::string& user_id) override;
  Result<std::optional<Role>> join(const std::string& group_id, const std::string& user_id,
                                   Admission how) override;
  Status public_groups(const std::string& prefix, const std::string& after, size_t limit,
                       std::vector<GroupListing>* out) override;
  // ---- SessionDirectory ----------------------------------------------------
  // user -> nodes: a sorted set per user (score: expiry); node -> users: a set
  // per node; the nodes: one sorted set (score: the node's expiry), so any
  // node can clean up after one that died.

  Status put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) override;
  Status erase(const std::string& user_id, const std::string& node_id) override;
  Status refresh_node(const std::string& node_id, int64_t expires_at_ms) override;
  Status drop_node(const std::string& node_id) override;
  Status prune(int64_t now_ms) override;
  Status nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<std::vector<std::string>>* out) override;
  // ---- PresenceStore -------------------------------------------------------

  Status set_presence(const std::string& user_id, const std::string& node_id,
                      PresenceStatus status) override;
  Status presence(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<PresenceStatus>* out) override;
  // Loads every script (at open, and after a NOSCRIPT from a master that
  // restarted or was added).
  Status load_scripts() {
    for (Script& s : scripts_) {
      Result<Reply> r = client_->call(Command{{"SCRIPT", "LOAD", s.body}, -1});
      if (!r) return r.status();
      if (Status st = expect_type(*r, Reply::Type::kString, "SCRIPT LOAD"); !st) return st;
      s.sha = r->str;
    }
    return Status::ok();
  }

 private:
  enum ScriptId {
    kAppend,
    kRead,
    kReset,
    kCreateGroup,
    kAddMember,
    kMembers,
    kPresence,
    kReadPosition,
    kUnread,
    kSetNotify,
    kNotifyLevels,
    kSetSettings,
    kInvite,
    kJoin
  };
  // Lists or unlists a group in the public groups' index.
  Status index_group(const std::string& group_id, GroupKind kind);

  Result<ReadPosition> read_position_script(const std::string& g, const std::string& u,
                                            std::vector<std::string> argv) {
    Result<Reply> r = script(kReadPosition, {members_key(g), reads_key(g)}, std::move(argv));
    if (!r) return r.status();
    if (r->is_nil()) return error(Code::kNotFound, fmt::format("'{}' is not a member of '{}'", u, g));
    if (Status st = expect_type(*r, Reply::Type::kArray, "read position"); !st) return st;
    if (r->elements.size() != 2) return error(Code::kInternal, "redis read position: bad reply");
    return ReadPosition{to_u64(r->elements[0]), to_u64(r->elements[1])};
  }

  // Runs the read script on (after, after + limit]; folded (with the reader)
  // when `reader` is given. *r: its reply, checked for shape and retention.
  Status read_range(const std::string& g, uint64_t after, size_t limit, const std::string* reader, Reply* r) {
    const uint64_t count = std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    std::vector<std::string> keys{meta_key(g), log_key(g), tomb_key(g)};
    if (reader != nullptr) {
      std::vector<std::string> all = entry_keys(g);
      keys.insert(keys.end(), {all[3], all[4], all[8], all[9]});  // rx, edits, rxz, replies
    }
    std::vector<Command> commands{script_command(kRead, std::move(keys))};
    commands[0].argv.push_back(std::to_string(after));
    commands[0].argv.push_back(std::to_string(count));
    if (reader != nullptr) commands[0].argv.push_back(*reader);
    std::vector<Reply> replies;
    if (Status st = run_scripts(&commands, &replies); !st) return st;
    *r = std::move(replies[0]);
    if (Status st = expect_type(*r, Reply::Type::kArray, "read"); !st) return st;
    if (r->elements.size() != (reader != nullptr ? 5u : 4u)) return error(Code::kInternal, "redis read: short reply");
    const uint64_t head = to_u64(r->elements[1]);
    const uint64_t trimmed = to_u64(r->elements[2]);
    if (after < head && after < trimmed) {
      return error(Code::kTrimmed, fmt::format("history of group '{}' is trimmed before id {}", g, trimmed + 1));
    }
    return Status::ok();
  }

  // The entries of a read script's reply, appended to *out.
  static Status decode_range(const std::string& g, const Reply& r, std::vector<Message>* out) {
    const uint64_t epoch = to_u64(r.elements[0]);
    for (const Reply& e : r.elements[3].elements) {
      if (e.elements.size() != 2) return error(Code::kCorruption, "redis read: bad stream entry");
      Message m;
      m.group_id = g;
      m.msg_id = stream_msg_id(e.elements[0].str);
      m.prev_msg_id = m.msg_id - 1;
      m.epoch = epoch;
      if (Status st = read_stream_fields(e.elements[1], &m); !st) return st;
      out->push_back(std::move(m));
    }
    return Status::ok();
  }

  std::string group_key(const std::string& g) const { return p_ + "g:" + tag(g); }
  std::string meta_key(const std::string& g) const { return group_key(g) + ":meta"; }
  std::string log_key(const std::string& g) const { return group_key(g) + ":log"; }
  std::string tomb_key(const std::string& g) const { return group_key(g) + ":tomb"; }
  // The keys of a group's log, in the order the append, read and reset scripts take them.
  std::vector<std::string> entry_keys(const std::string& g) const {
    return {meta_key(g), log_key(g), tomb_key(g), group_key(g) + ":rx", group_key(g) + ":edits",
            skip_key(g), own_key(g), mn_key(g), group_key(g) + ":rxz", group_key(g) + ":replies"};
  }
  // The unread counts' sets (redis_scripts.hpp, decision 49).
  std::string skip_key(const std::string& g) const { return group_key(g) + ":skip"; }
  std::string own_key(const std::string& g) const { return group_key(g) + ":own"; }
  std::string mn_key(const std::string& g) const { return group_key(g) + ":mn"; }
  std::string info_key(const std::string& g) const { return group_key(g) + ":info"; }
  std::string members_key(const std::string& g) const { return group_key(g) + ":members"; }
  std::string reads_key(const std::string& g) const { return group_key(g) + ":reads"; }
  std::string notify_key(const std::string& g) const { return group_key(g) + ":notify"; }
  std::string invites_key(const std::string& g) const { return group_key(g) + ":invites"; }
  std::string public_key() const { return p_ + "public"; }
  std::string user_key(const std::string& u) const { return p_ + "u:" + tag(u); }
  std::string groups_key(const std::string& u) const { return user_key(u) + ":groups"; }
  std::string nodes_of_key(const std::string& u) const { return user_key(u) + ":nodes"; }
  std::string presence_key(const std::string& u) const { return user_key(u) + ":presence"; }
  std::string users_of_key(const std::string& n) const { return p_ + "n:" + tag(n) + ":users"; }
  std::string all_nodes_key() const { return p_ + "nodes"; }

  // The newest request time stands for "now" in age retention (the store
  // has no clock of its own; requests carry the server's time).
  static int64_t now_hint(const std::vector<AppendRequest>& requests) {
    int64_t now = 0;
    for (const AppendRequest& r : requests) now = std::max(now, r.timestamp_ms);
    return now;
  }

  Command script_command(ScriptId id, std::vector<std::string> keys) const {
    Command c;
    c.argv = {"EVALSHA", scripts_[id].sha, std::to_string(keys.size())};
    for (std::string& k : keys) c.argv.push_back(std::move(k));
    c.key_index = keys.empty() ? -1 : 3;
    return c;
  }

  Result<Reply> script(ScriptId id, std::vector<std::string> keys, std::vector<std::string> args) {
    std::vector<Command> commands{script_command(id, std::move(keys))};
    for (std::string& a : args) commands[0].argv.push_back(std::move(a));
    std::vector<Reply> replies;
    if (Status st = run_scripts(&commands, &replies); !st) return st;
    return std::move(replies[0]);
  }

  // Runs EVALSHA commands; any answered NOSCRIPT (a master that restarted
  // without persistence, or joined the cluster) are sent again as EVAL.
  Status run_scripts(std::vector<Command>* commands, std::vector<Reply>* replies) {
    if (Status st = client_->run(*commands, replies); !st) return st;
    std::vector<size_t> again;
    for (size_t i = 0; i < replies->size(); ++i) {
      if ((*replies)[i].is_error() && starts_with((*replies)[i].str, "NOSCRIPT")) again.push_back(i);
    }
    if (again.empty()) return Status::ok();
    std::vector<Command> retry;
    for (size_t i : again) {
      Command c = (*commands)[i];
      c.argv[0] = "EVAL";
      for (const Script& s : scripts_) {
        if (s.sha == c.argv[1]) c.argv[1] = s.body;
      }
      retry.push_back(std::move(c));
    }
    std::vector<Reply> second;
    if (Status st = client_->run(retry, &second); !st) return st;
    for (size_t k = 0; k < again.size(); ++k) (*replies)[again[k]] = std::move(second[k]);
    return Status::ok();
  }

  Result<std::vector<std::string>> users_of(const std::string& node_id) {
    Result<Reply> r = client_->call(Command{{"SMEMBERS", users_of_key(node_id)}, 1});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kArray, "users of node"); !st) return st;
    std::vector<std::string> users;
    for (const Reply& e : r->elements) users.push_back(e.str);
    return users;
  }

  Status simple(std::vector<std::string> argv, const char* what) {
    return simple_all({Command{std::move(argv), 1}}, what);
  }

  // Runs commands whose replies only matter if they are errors.
  Status simple_all(std::vector<Command> commands, const char* what) {
    std::vector<Reply> replies;
    if (Status st = client_->run(commands, &replies); !st) return st;
    for (const Reply& r : replies) {
      if (r.is_error()) return reply_error(r, what);
    }
    return Status::ok();
  }

  RedisStoreOptions opt_;
  std::unique_ptr<redis::Client> client_;
  std::string p_;
  Script scripts_[14] = {{kAppendLua, ""},       {kReadLua, ""},         {kResetLua, ""},
                         {kCreateGroupLua, ""},  {kAddMemberLua, ""},    {kMembersLua, ""},
                         {kPresenceLua, ""},     {kReadPositionLua, ""}, {kUnreadLua, ""},
                         {kSetNotifyLua, ""},    {kNotifyLevelsLua, ""}, {kSetSettingsLua, ""},
                         {kInviteLua, ""},       {kJoinLua, ""}};
};


}  // namespace parley::redis_detail
