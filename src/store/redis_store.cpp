// The Redis stores (see include/parley/redis_store.hpp and docs/redis.md):
// RedisStoreImpl's log, session directory and presence (its membership:
// redis_membership.cpp), and opening one.
#include "store/redis_impl.hpp"

namespace parley {
namespace redis_detail {

// ---- MessageStore --------------------------------------------------------

Status RedisStoreImpl::append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) {
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

Status RedisStoreImpl::read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Message>* out) {
  if (limit == 0) return Status::ok();
  Reply r;
  if (Status st = read_range(group_id, after, limit, nullptr, &r); !st) return st;
  return decode_range(group_id, r, out);
}

Status RedisStoreImpl::read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                   FoldedPage* out) {
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

Status RedisStoreImpl::heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) {
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

Status RedisStoreImpl::unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) {
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

Result<uint64_t> RedisStoreImpl::reset_group(const std::string& group_id) {
  if (group_id.empty()) return error(Code::kInvalidArgument, "group_id is empty");
  Result<Reply> r = script(kReset, entry_keys(group_id), {});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "reset"); !st) return st;
  return static_cast<uint64_t>(r->integer);
}

// ---- SessionDirectory and PresenceStore ----------------------------------

Status RedisStoreImpl::put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) {
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

Status RedisStoreImpl::erase(const std::string& user_id, const std::string& node_id) {
  return simple_all(
      {
          Command{{"ZREM", nodes_of_key(user_id), node_id}, 1},
          Command{{"HDEL", presence_key(user_id), node_id}, 1},
          Command{{"SREM", users_of_key(node_id), user_id}, 1},
      },
      "erase");
}

Status RedisStoreImpl::refresh_node(const std::string& node_id, int64_t expires_at_ms) {
  Result<std::vector<std::string>> users = users_of(node_id);
  if (!users) return users.status();
  const std::string exp = std::to_string(expires_at_ms);
  std::vector<Command> commands;
  for (const std::string& u : *users)
    commands.push_back(Command{{"ZADD", nodes_of_key(u), "XX", exp, node_id}, 1});
  commands.push_back(Command{{"ZADD", all_nodes_key(), exp, node_id}, 1});
  return simple_all(std::move(commands), "refresh_node");
}

Status RedisStoreImpl::drop_node(const std::string& node_id) {
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

Status RedisStoreImpl::prune(int64_t now_ms) {
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

Status RedisStoreImpl::nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                std::vector<std::vector<std::string>>* out) {
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

Status RedisStoreImpl::set_presence(const std::string& user_id, const std::string& node_id,
                    PresenceStatus status) {
  if (status == PresenceStatus::kOffline)
    return simple({"HDEL", presence_key(user_id), node_id}, "set_presence");
  return simple({"HSET", presence_key(user_id), node_id, std::to_string(static_cast<int>(status))},
                "set_presence");
}

Status RedisStoreImpl::presence(const std::vector<std::string>& user_ids, int64_t now_ms,
                std::vector<PresenceStatus>* out) {
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

}  // namespace redis_detail

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
  auto store = std::make_unique<redis_detail::RedisStoreImpl>(options, std::move(*client));
  if (Status st = store->load_scripts(); !st) return st;
  return std::unique_ptr<RedisStore>(std::move(store));
}

}  // namespace parley
