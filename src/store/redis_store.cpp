// The Redis stores (see include/parley/redis_store.hpp and docs/redis.md).
#include "parley/redis_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

#include "store/redis_client.hpp"
#include "store/redis_reply.hpp"
#include "store/log_rules.hpp"
#include "store/redis_scripts.hpp"

namespace parley {
namespace {

using redis::Command;
using redis::Reply;

using namespace redis_scripts;  // the Lua scripts (redis_scripts.hpp)

// A script and its SHA-1 as Redis names it (SCRIPT LOAD computes it at
// open, so no hashing code of our own).
struct Script {
  const char* body;
  std::string sha;
};

using namespace redis_detail;  // decoding replies (redis_reply.hpp)

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

  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override {
    for (const AppendRequest& r : requests) {
      if (r.group_id.empty()) return error(Code::kInvalidArgument, "group_id is empty");
      if (r.user_id.empty()) return error(Code::kInvalidArgument, "user_id is empty");
    }
    if (requests.empty()) {
      out->clear();
      return Status::ok();
    }
    std::vector<AppendOutcome> outcomes(requests.size());
    // One script per group, in order of first appearance.
    std::vector<std::string> order;
    std::map<std::string, std::vector<size_t>> by_group;
    for (size_t i = 0; i < requests.size(); ++i) {
      auto [it, inserted] = by_group.try_emplace(requests[i].group_id);
      if (inserted) order.push_back(requests[i].group_id);
      it->second.push_back(i);
    }
    std::vector<Command> commands;
    commands.reserve(order.size());
    for (const std::string& g : order) {
      const std::vector<size_t>& idx = by_group[g];
      Command c = script_command(kAppend, entry_keys(g));
      c.argv.reserve(c.argv.size() + 5 + 12 * idx.size());
      c.argv.push_back(group_key(g) + ":d:");
      c.argv.push_back(std::to_string(std::max<int64_t>(opt_.dedup_ttl_s, 1)));
      c.argv.push_back(std::to_string(opt_.retain_messages));
      const int64_t cutoff = opt_.retain_ms > 0 ? now_hint(requests) - opt_.retain_ms : 0;
      c.argv.push_back(std::to_string(std::max<int64_t>(cutoff, 0)));
      c.argv.push_back(std::to_string(idx.size()));
      for (size_t i : idx) {
        const AppendRequest& r = requests[i];
        const bool plain = r.entry.plain();  // names nothing: the script's defaults, 4 fields
        c.argv.push_back(plain ? "4" : "11");
        c.argv.push_back(r.user_id);
        c.argv.push_back(r.client_msg_id);
        c.argv.push_back(std::to_string(r.timestamp_ms));
        c.argv.push_back(r.contents);
        if (plain) continue;
        c.argv.push_back(std::to_string(static_cast<int>(r.entry.kind)));
        c.argv.push_back(std::to_string(r.entry.target));
        c.argv.push_back(std::to_string(r.entry.reply_to));
        c.argv.push_back(detail::join_ids(r.entry.mentions));
        c.argv.push_back(r.entry.meta);
        c.argv.push_back(r.entry.remove ? "1" : "0");
        c.argv.push_back(std::to_string(r.epoch));
      }
      commands.push_back(std::move(c));
    }
    std::vector<Reply> replies;
    if (Status st = run_scripts(&commands, &replies); !st) return st;
    for (size_t k = 0; k < order.size(); ++k) {
      const Reply& r = replies[k];
      if (Status st = expect_type(r, Reply::Type::kArray, "append"); !st) return st;
      const std::vector<size_t>& idx = by_group[order[k]];
      if (r.elements.size() != idx.size() + 2) return error(Code::kInternal, "redis append: short reply");
      const uint64_t epoch = to_u64(r.elements[0]);
      for (size_t j = 0; j < idx.size(); ++j) {
        const AppendRequest& req = requests[idx[j]];
        const Reply& o = r.elements[j + 2];
        if (o.elements.size() < 2) return error(Code::kInternal, "redis append: bad outcome");
        AppendOutcome& outcome = outcomes[idx[j]];
        if (to_u64(o.elements[1]) == 2) {  // refused by the log's rules: what the script saw
          if (o.elements.size() != 7) return error(Code::kInternal, "redis append: bad refusal");
          detail::NamedEntry named{to_u64(o.elements[2]) == 1,
                                   static_cast<EntryKind>(to_u64(o.elements[3])), o.elements[4].str,
                                   to_u64(o.elements[5]) == 1};
          outcome.status = detail::check_entry(req, named, to_u64(o.elements[6]) == 1, epoch);
          if (outcome.status.is_ok()) {
            outcome.status = error(Code::kInternal, "redis append: the script refused what the rules allow");
          }
          continue;
        }
        Message& m = outcome.message;
        m.group_id = req.group_id;
        m.msg_id = to_u64(o.elements[0]);
        m.prev_msg_id = m.msg_id - 1;
        m.epoch = epoch;
        outcome.duplicate = to_u64(o.elements[1]) == 1;
        if (outcome.duplicate && o.elements.size() == 3) {
          if (Status st = read_stream_fields(o.elements[2], &m); !st) return st;
        } else {
          m.user_id = req.user_id;
          m.client_msg_id = req.client_msg_id;
          m.timestamp_ms = req.timestamp_ms;
          m.contents = req.contents;
          m.entry = req.entry;
        }
      }
    }
    *out = std::move(outcomes);
    return Status::ok();
  }

  Status read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Message>* out) override {
    if (limit == 0) return Status::ok();
    Reply r;
    if (Status st = read_range(group_id, after, limit, nullptr, &r); !st) return st;
    return decode_range(group_id, r, out);
  }

  Status read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override {
    Reply r;
    if (Status st = read_range(group_id, after, limit, &reader, &r); !st) return st;
    FoldedPage page;
    page.epoch = to_u64(r.elements[0]);
    page.head = to_u64(r.elements[1]);
    page.to = after >= page.head ? after : after + std::min<uint64_t>(limit, page.head - after);
    std::vector<Message> range;
    if (Status st = decode_range(group_id, r, &range); !st) return st;
    std::map<uint64_t, const Reply*> folds;  // {id, edit id, its text, replies, reactions}
    for (const Reply& f : r.elements[4].elements) {
      if (f.elements.size() != 5) return error(Code::kCorruption, "redis read: bad fold");
      folds.emplace(to_u64(f.elements[0]), &f);
    }
    for (Message& m : range) {
      if (!detail::listed_when_folded(m.entry.kind)) continue;
      Fold fold;
      if (auto it = folds.find(m.msg_id); it != folds.end()) {
        const std::vector<Reply>& f = it->second->elements;
        fold.edited = to_u64(f[1]);
        if (fold.edited != 0) m.contents = f[2].str;
        fold.replies = to_u64(f[3]);
        std::vector<std::pair<std::string, std::string>> rows;
        for (const Reply& x : f[4].elements) {  // "id\nkey\nuser"
          const size_t a = x.str.find('\n');
          const size_t b = a == std::string::npos ? a : x.str.find('\n', a + 1);
          if (b == std::string::npos) return error(Code::kCorruption, "redis read: bad reaction");
          rows.emplace_back(x.str.substr(a + 1, b - a - 1), x.str.substr(b + 1));
        }
        fold.reactions = detail::count_reactions(std::move(rows), reader);
      }
      page.messages.push_back(std::move(m));
      page.folds.push_back(std::move(fold));
    }
    *out = std::move(page);
    return Status::ok();
  }

  Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) override {
    std::vector<Command> commands;
    commands.reserve(group_ids.size());
    for (const std::string& g : group_ids) {
      commands.push_back(Command{{"HMGET", meta_key(g), "head", "epoch", "trimmed"}, 1});
    }
    std::vector<Reply> replies;
    if (Status st = client_->run(commands, &replies); !st) return st;
    for (size_t i = 0; i < group_ids.size(); ++i) {
      const Reply& r = replies[i];
      if (Status st = expect_type(r, Reply::Type::kArray, "heads"); !st) return st;
      if (r.elements.size() != 3) return error(Code::kInternal, "redis heads: short reply");
      out->push_back(
          GroupHead{group_ids[i], to_u64(r.elements[0]), to_u64(r.elements[1]), to_u64(r.elements[2])});
    }
    return Status::ok();
  }

  // One script per query, pipelined (each on its group's shard).
  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override {
    std::vector<Command> commands;
    commands.reserve(queries.size());
    for (const UnreadQuery& q : queries) {
      const std::string& g = q.group_id;
      commands.push_back(script_command(kUnread, {meta_key(g), skip_key(g), own_key(g), mn_key(g)}));
      commands.back().argv.insert(commands.back().argv.end(), {q.user_id, std::to_string(q.read.epoch),
                                                               std::to_string(q.read.msg_id)});
    }
    std::vector<Reply> replies;
    if (Status st = run_scripts(&commands, &replies); !st) return st;
    for (size_t i = 0; i < queries.size(); ++i) {
      const Reply& r = replies[i];
      if (Status st = expect_type(r, Reply::Type::kArray, "unread"); !st) return st;
      if (r.elements.size() != 6) return error(Code::kInternal, "redis unread: short reply");
      UnreadCount c = detail::unread_frame(queries[i], to_u64(r.elements[0]), to_u64(r.elements[1]),
                                           to_u64(r.elements[2]));
      if (c.after < c.head) {
        c.unread = c.head - c.after - to_u64(r.elements[3]) - to_u64(r.elements[4]);
        c.mentions = to_u64(r.elements[5]);
      }
      out->push_back(std::move(c));
    }
    return Status::ok();
  }

  Result<uint64_t> reset_group(const std::string& group_id) override {
    if (group_id.empty()) return error(Code::kInvalidArgument, "group_id is empty");
    Result<Reply> r = script(kReset, entry_keys(group_id), {});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kInteger, "reset"); !st) return st;
    return static_cast<uint64_t>(r->integer);
  }

  // ---- MembershipStore -----------------------------------------------------

  Status create_group(const std::string& group_id, const std::string& owner) override {
    if (group_id.empty() || owner.empty()) return error(Code::kInvalidArgument, "group_id or owner is empty");
    Result<Reply> r = script(kCreateGroup, {info_key(group_id), members_key(group_id)}, {owner});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kInteger, "create_group"); !st) return st;
    if (r->integer == 0) return error(Code::kAlreadyExists, fmt::format("group '{}' exists", group_id));
    return simple({"SADD", groups_key(owner), group_id}, "create_group");
  }

  Result<bool> group_exists(const std::string& group_id) override {
    Result<Reply> r = client_->call(Command{{"EXISTS", info_key(group_id)}, 1});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kInteger, "group_exists"); !st) return st;
    return r->integer == 1;
  }

  Status add(const std::string& group_id, const std::string& user_id, Role role) override {
    if (user_id.empty()) return error(Code::kInvalidArgument, "user_id is empty");
    Result<Reply> r = script(kAddMember, {info_key(group_id), members_key(group_id)},
                             {user_id, std::to_string(static_cast<int>(role))});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kInteger, "add"); !st) return st;
    if (r->integer == 0) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
    return simple({"SADD", groups_key(user_id), group_id}, "add");
  }

  Status remove(const std::string& group_id, const std::string& user_id) override {
    Result<Reply> r = client_->call(Command{{"HDEL", members_key(group_id), user_id}, 1});
    if (r && !r->is_error() && r->integer == 1) {  // leaving forgets how far the user read
      if (Status st = simple({"HDEL", reads_key(group_id), user_id}, "remove"); !st) return st;
      if (Status st = simple({"HDEL", notify_key(group_id), user_id}, "remove"); !st) return st;
    }
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kInteger, "remove"); !st) return st;
    if (r->integer == 0) {
      return error(Code::kNotFound, fmt::format("'{}' is not a member of '{}'", user_id, group_id));
    }
    return simple({"SREM", groups_key(user_id), group_id}, "remove");
  }

  Result<std::vector<Member>> members(const std::string& group_id) override {
    Result<Reply> r = script(kMembers, {info_key(group_id), members_key(group_id)}, {});
    if (!r) return r.status();
    if (r->is_nil()) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
    if (Status st = expect_type(*r, Reply::Type::kArray, "members"); !st) return st;
    std::vector<Member> out;
    for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
      out.push_back(
          Member{r->elements[i].str, to_u64(r->elements[i + 1]) == 2 ? Role::kOwner : Role::kMember});
    }
    std::sort(out.begin(), out.end(), [](const Member& a, const Member& b) { return a.user_id < b.user_id; });
    return out;
  }

  Result<std::vector<std::string>> groups_of(const std::string& user_id) override {
    Result<Reply> r = client_->call(Command{{"SMEMBERS", groups_key(user_id)}, 1});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kArray, "groups_of"); !st) return st;
    std::vector<std::string> out;
    for (const Reply& e : r->elements) out.push_back(e.str);
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::optional<Role>> role_of(const std::string& group_id, const std::string& user_id) override {
    Result<Reply> r = client_->call(Command{{"HGET", members_key(group_id), user_id}, 1});
    if (!r) return r.status();
    if (r->is_error()) return reply_error(*r, "role_of");
    if (r->is_nil()) return std::optional<Role>();
    return std::optional<Role>(to_u64(*r) == 2 ? Role::kOwner : Role::kMember);
  }

  Result<ReadPosition> mark_read(const std::string& group_id, const std::string& user_id,
                                 ReadPosition to) override {
    return read_position_script(group_id, user_id, {user_id, std::to_string(to.epoch), std::to_string(to.msg_id)});
  }

  Result<ReadPosition> read_position(const std::string& group_id, const std::string& user_id) override {
    return read_position_script(group_id, user_id, {user_id});
  }

  Status set_notify_level(const std::string& group_id, const std::string& user_id, NotifyLevel level) override {
    Result<Reply> r = script(kSetNotify, {members_key(group_id), notify_key(group_id)},
                             {user_id, std::to_string(static_cast<int>(level))});
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kInteger, "set_notify_level"); !st) return st;
    if (r->integer == 0) return error(Code::kNotFound, fmt::format("'{}' is not a member of '{}'", user_id, group_id));
    return Status::ok();
  }

  Status notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                       std::vector<NotifyLevel>* out) override {
    out->clear();
    if (user_ids.empty()) return Status::ok();
    Result<Reply> r = script(kNotifyLevels, {members_key(group_id), notify_key(group_id)}, user_ids);
    if (!r) return r.status();
    if (Status st = expect_type(*r, Reply::Type::kArray, "notify_levels"); !st) return st;
    if (r->elements.size() != user_ids.size()) return error(Code::kInternal, "redis notify levels: bad reply");
    for (const Reply& e : r->elements) {
      const uint64_t v = to_u64(e);
      out->push_back(v == 1 ? NotifyLevel::kMentions : v == 2 ? NotifyLevel::kNone : NotifyLevel::kAll);
    }
    return Status::ok();
  }

  // ---- SessionDirectory ----------------------------------------------------
  // user -> nodes: a sorted set per user (score: expiry); node -> users: a set
  // per node; the nodes: one sorted set (score: the node's expiry), so any
  // node can clean up after one that died.

  Status put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) override {
    if (user_id.empty() || node_id.empty())
      return error(Code::kInvalidArgument, "user_id or node_id is empty");
    // Expiry times are the caller's clock, not Redis's: no key TTLs here;
    // prune() removes what dead nodes left.
    const std::string exp = std::to_string(expires_at_ms);
    return simple_all(
        {
            Command{{"ZADD", nodes_of_key(user_id), exp, node_id}, 1},
            Command{{"SADD", users_of_key(node_id), user_id}, 1},
            Command{{"ZADD", all_nodes_key(), "GT", exp, node_id}, 1},
        },
        "put");
  }

  Status erase(const std::string& user_id, const std::string& node_id) override {
    return simple_all(
        {
            Command{{"ZREM", nodes_of_key(user_id), node_id}, 1},
            Command{{"HDEL", presence_key(user_id), node_id}, 1},
            Command{{"SREM", users_of_key(node_id), user_id}, 1},
        },
        "erase");
  }

  Status refresh_node(const std::string& node_id, int64_t expires_at_ms) override {
    Result<std::vector<std::string>> users = users_of(node_id);
    if (!users) return users.status();
    const std::string exp = std::to_string(expires_at_ms);
    std::vector<Command> commands;
    for (const std::string& u : *users)
      commands.push_back(Command{{"ZADD", nodes_of_key(u), "XX", exp, node_id}, 1});
    commands.push_back(Command{{"ZADD", all_nodes_key(), exp, node_id}, 1});
    return simple_all(std::move(commands), "refresh_node");
  }

  Status drop_node(const std::string& node_id) override {
    Result<std::vector<std::string>> users = users_of(node_id);
    if (!users) return users.status();
    std::vector<Command> commands;
    for (const std::string& u : *users) {
      commands.push_back(Command{{"ZREM", nodes_of_key(u), node_id}, 1});
      commands.push_back(Command{{"HDEL", presence_key(u), node_id}, 1});
    }
    commands.push_back(Command{{"DEL", users_of_key(node_id)}, 1});
    commands.push_back(Command{{"ZREM", all_nodes_key(), node_id}, 1});
    return simple_all(std::move(commands), "drop_node");
  }

  Status prune(int64_t now_ms) override {
    // Nodes whose heartbeat ran out: remove the entries that expired.
    Result<Reply> dead =
        client_->call(Command{{"ZRANGEBYSCORE", all_nodes_key(), "-inf", std::to_string(now_ms)}, 1});
    if (!dead) return dead.status();
    if (Status st = expect_type(*dead, Reply::Type::kArray, "prune"); !st) return st;
    for (const Reply& n : dead->elements) {
      const std::string& node_id = n.str;
      Result<std::vector<std::string>> users = users_of(node_id);
      if (!users) return users.status();
      std::vector<Command> commands;
      for (const std::string& u : *users) {
        commands.push_back(Command{{"ZREMRANGEBYSCORE", nodes_of_key(u), "-inf", std::to_string(now_ms)}, 1});
        commands.push_back(Command{{"HDEL", presence_key(u), node_id}, 1});
      }
      commands.push_back(Command{{"DEL", users_of_key(node_id)}, 1});
      commands.push_back(Command{{"ZREM", all_nodes_key(), node_id}, 1});
      if (Status st = simple_all(std::move(commands), "prune"); !st) return st;
    }
    return Status::ok();
  }

  Status nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<std::vector<std::string>>* out) override {
    std::vector<Command> commands;
    commands.reserve(user_ids.size());
    const std::string min = "(" + std::to_string(now_ms);
    for (const std::string& u : user_ids)
      commands.push_back(Command{{"ZRANGEBYSCORE", nodes_of_key(u), min, "+inf"}, 1});
    std::vector<Reply> replies;
    if (Status st = client_->run(commands, &replies); !st) return st;
    out->clear();
    out->reserve(user_ids.size());
    for (const Reply& r : replies) {
      if (Status st = expect_type(r, Reply::Type::kArray, "nodes_of"); !st) return st;
      std::vector<std::string> nodes;
      for (const Reply& e : r.elements) nodes.push_back(e.str);
      std::sort(nodes.begin(), nodes.end());
      out->push_back(std::move(nodes));
    }
    return Status::ok();
  }

  // ---- PresenceStore -------------------------------------------------------

  Status set_presence(const std::string& user_id, const std::string& node_id,
                      PresenceStatus status) override {
    if (status == PresenceStatus::kOffline)
      return simple({"HDEL", presence_key(user_id), node_id}, "set_presence");
    return simple({"HSET", presence_key(user_id), node_id, std::to_string(static_cast<int>(status))},
                  "set_presence");
  }

  Status presence(const std::vector<std::string>& user_ids, int64_t now_ms,
                  std::vector<PresenceStatus>* out) override {
    std::vector<Command> commands;
    commands.reserve(user_ids.size());
    for (const std::string& u : user_ids) {
      Command c = script_command(kPresence, {nodes_of_key(u), presence_key(u)});
      c.argv.push_back(std::to_string(now_ms));
      commands.push_back(std::move(c));
    }
    std::vector<Reply> replies;
    if (Status st = run_scripts(&commands, &replies); !st) return st;
    out->clear();
    for (const Reply& r : replies) {
      if (Status st = expect_type(r, Reply::Type::kArray, "presence"); !st) return st;
      PresenceStatus best = PresenceStatus::kOffline;
      for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
        const Reply& s = r.elements[i + 1];
        // A live session whose status was never written counts as online.
        const uint64_t v = s.is_nil() ? 1 : to_u64(s);
        best = better(best, v == 2 ? PresenceStatus::kAway : PresenceStatus::kOnline);
      }
      out->push_back(best);
    }
    return Status::ok();
  }

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
    kNotifyLevels
  };

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
  Script scripts_[11] = {{kAppendLua, ""},       {kReadLua, ""},         {kResetLua, ""},
                         {kCreateGroupLua, ""},  {kAddMemberLua, ""},    {kMembersLua, ""},
                         {kPresenceLua, ""},     {kReadPositionLua, ""}, {kUnreadLua, ""},
                         {kSetNotifyLua, ""},    {kNotifyLevelsLua, ""}};
};

}  // namespace

Result<std::unique_ptr<RedisStore>> open_redis_store(const RedisStoreOptions& options) {
  if (options.key_prefix.find_first_of("{}") != std::string::npos) {
    return error(Code::kInvalidArgument, "key_prefix must not contain '{' or '}'");
  }
  Result<std::vector<redis::Endpoint>> seeds = redis::parse_endpoints(options.endpoints);
  if (!seeds) return seeds.status();
  redis::Options o;
  o.seeds = std::move(*seeds);
  o.password = options.password;
  o.connect_timeout_ms = options.connect_timeout_ms;
  o.command_timeout_ms = options.command_timeout_ms;
  o.reconnect_min_ms = options.reconnect_min_ms;
  o.reconnect_max_ms = options.reconnect_max_ms;
  Result<std::unique_ptr<redis::Client>> client = redis::Client::connect(o);
  if (!client) return client.status();
  auto store = std::make_unique<RedisStoreImpl>(options, std::move(*client));
  if (Status st = store->load_scripts(); !st) return st;
  return std::unique_ptr<RedisStore>(std::move(store));
}

}  // namespace parley
