// RedisStoreImpl: the MembershipStore (groups, members, read positions,
// notification levels, group settings and invites). Keys per group in the
// group's slot ({g}); per user its groups set; the public groups' index one
// sorted set (docs/redis.md).
#include "store/redis_impl.hpp"

namespace parley::redis_detail {

Status RedisStoreImpl::create_group(const std::string& group_id, const std::string& owner) {
  return create_group_with(group_id, owner, GroupSettings{});
}

namespace {
std::vector<std::string> settings_args(const GroupSettings& s) {
  return {std::to_string(static_cast<int>(s.kind)), s.title, s.topic, std::to_string(s.member_limit)};
}
Role role_from(const Reply& r) { return to_u64(r) == 2 ? Role::kOwner : Role::kMember; }
}  // namespace

Status RedisStoreImpl::create_group_with(const std::string& group_id, const std::string& owner,
                                         const GroupSettings& settings) {
  if (group_id.empty() || owner.empty()) return error(Code::kInvalidArgument, "group_id or owner is empty");
  std::vector<std::string> args = settings_args(settings);
  args.insert(args.begin(), owner);
  Result<Reply> r = script(kCreateGroup, {info_key(group_id), members_key(group_id)}, std::move(args));
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "create_group"); !st) return st;
  if (r->integer == 0) return error(Code::kAlreadyExists, fmt::format("group '{}' exists", group_id));
  if (Status st = simple({"SADD", groups_key(owner), group_id}, "create_group"); !st) return st;
  return index_group(group_id, settings.kind);
}

Status RedisStoreImpl::index_group(const std::string& group_id, GroupKind kind) {
  if (kind == GroupKind::kPublic) return simple({"ZADD", public_key(), "0", group_id}, "public index");
  return simple({"ZREM", public_key(), group_id}, "public index");
}

Result<GroupSettings> RedisStoreImpl::settings(const std::string& group_id) {
  Result<Reply> r = client_->call(Command{{"HMGET", info_key(group_id), "owner", "kind", "title", "topic", "limit"}, 1});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kArray, "settings"); !st) return st;
  if (r->elements.size() != 5) return error(Code::kInternal, "redis settings: bad reply");
  if (r->elements[0].is_nil()) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return GroupSettings{to_u64(r->elements[1]) == 1 ? GroupKind::kPrivate : GroupKind::kPublic, r->elements[2].str,
                       r->elements[3].str, static_cast<uint32_t>(to_u64(r->elements[4]))};
}

Status RedisStoreImpl::set_settings(const std::string& group_id, const GroupSettings& settings) {
  Result<Reply> r = script(kSetSettings, {info_key(group_id)}, settings_args(settings));
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "set_settings"); !st) return st;
  if (r->integer == 0) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return index_group(group_id, settings.kind);
}

Status RedisStoreImpl::invite(const std::string& group_id, const std::string& user_id) {
  if (group_id.empty() || user_id.empty()) return error(Code::kInvalidArgument, "group_id or user_id is empty");
  Result<Reply> r = script(kInvite, {info_key(group_id), members_key(group_id), invites_key(group_id)}, {user_id});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "invite"); !st) return st;
  if (r->integer == 0) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return Status::ok();
}

Result<std::optional<Role>> RedisStoreImpl::join(const std::string& group_id, const std::string& user_id,
                                                 Admission how) {
  if (group_id.empty() || user_id.empty()) return error(Code::kInvalidArgument, "group_id or user_id is empty");
  Result<Reply> r = script(kJoin, {info_key(group_id), members_key(group_id), invites_key(group_id)},
                           {user_id, std::to_string(static_cast<int>(how))});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kArray, "join"); !st) return st;
  if (r->elements.empty()) return error(Code::kInternal, "redis join: bad reply");
  const int64_t code = r->elements[0].integer;
  if (code == -1) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  if (code == -2 && r->elements.size() == 5) {
    GroupSettings rules;
    rules.kind = r->elements[1].integer == 1 ? GroupKind::kPrivate : GroupKind::kPublic;
    rules.member_limit = static_cast<uint32_t>(r->elements[2].integer);
    Status refused = detail::join_refusal(group_id, rules, how, r->elements[4].integer == 1,
                                          static_cast<uint64_t>(r->elements[3].integer));
    return refused ? error(Code::kInternal, "redis join: refused by the script, not by the rules") : refused;
  }
  if (code > 0) return std::optional<Role>(role_from(r->elements[0]));
  if (Status st = simple({"SADD", groups_key(user_id), group_id}, "join"); !st) return st;
  return std::optional<Role>();
}

Status RedisStoreImpl::public_groups(const std::string& prefix, const std::string& after, size_t limit,
                                     std::vector<GroupListing>* out) {
  out->clear();
  const std::string past = detail::past_prefix(prefix);
  std::string min = after < prefix ? "[" + prefix : "(" + after;
  const std::string max = past.empty() ? "+" : "(" + past;
  // A page of the index, then each group's settings and count; an entry
  // the index still has for a group made private since is skipped, and the
  // next page of the index read in its place.
  while (out->size() < limit) {
    const size_t want = limit - out->size();
    Result<Reply> ids =
        client_->call(Command{{"ZRANGEBYLEX", public_key(), min, max, "LIMIT", "0", std::to_string(want)}, 1});
    if (!ids) return ids.status();
    if (Status st = expect_type(*ids, Reply::Type::kArray, "public groups"); !st) return st;
    if (ids->elements.empty()) break;
    std::vector<Command> commands;
    for (const Reply& id : ids->elements) {
      commands.push_back(Command{{"HMGET", info_key(id.str), "owner", "kind", "title", "topic", "limit"}, 1});
      commands.push_back(Command{{"HLEN", members_key(id.str)}, 1});
    }
    std::vector<Reply> replies;
    if (Status st = client_->run(commands, &replies); !st) return st;
    for (size_t i = 0; i < ids->elements.size(); ++i) {
      const Reply& info = replies[2 * i];
      if (Status st = expect_type(info, Reply::Type::kArray, "public groups"); !st) return st;
      if (info.elements.size() != 5 || info.elements[0].is_nil() || to_u64(info.elements[1]) == 1) continue;
      out->push_back({ids->elements[i].str,
                      {GroupKind::kPublic, info.elements[2].str, info.elements[3].str,
                       static_cast<uint32_t>(to_u64(info.elements[4]))},
                      to_u64(replies[2 * i + 1])});
    }
    if (ids->elements.size() < want) break;
    min = "(" + ids->elements.back().str;
  }
  return Status::ok();
}

Result<bool> RedisStoreImpl::group_exists(const std::string& group_id) {
  Result<Reply> r = client_->call(Command{{"EXISTS", info_key(group_id)}, 1});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "group_exists"); !st) return st;
  return r->integer == 1;
}

Status RedisStoreImpl::add(const std::string& group_id, const std::string& user_id, Role role) {
  if (user_id.empty()) return error(Code::kInvalidArgument, "user_id is empty");
  Result<Reply> r = script(kAddMember, {info_key(group_id), members_key(group_id), invites_key(group_id)},
                           {user_id, std::to_string(static_cast<int>(role))});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "add"); !st) return st;
  if (r->integer == 0) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  return simple({"SADD", groups_key(user_id), group_id}, "add");
}

Status RedisStoreImpl::remove(const std::string& group_id, const std::string& user_id) {
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

Result<std::vector<Member>> RedisStoreImpl::members(const std::string& group_id) {
  Result<Reply> r = script(kMembers, {info_key(group_id), members_key(group_id)}, {});
  if (!r) return r.status();
  if (r->is_nil()) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
  if (Status st = expect_type(*r, Reply::Type::kArray, "members"); !st) return st;
  std::vector<Member> out;
  for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    out.push_back(
        Member{r->elements[i].str, role_from(r->elements[i + 1])});
  }
  std::sort(out.begin(), out.end(), [](const Member& a, const Member& b) { return a.user_id < b.user_id; });
  return out;
}

Result<std::vector<std::string>> RedisStoreImpl::groups_of(const std::string& user_id) {
  Result<Reply> r = client_->call(Command{{"SMEMBERS", groups_key(user_id)}, 1});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kArray, "groups_of"); !st) return st;
  std::vector<std::string> out;
  for (const Reply& e : r->elements) out.push_back(e.str);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::optional<Role>> RedisStoreImpl::role_of(const std::string& group_id, const std::string& user_id) {
  Result<Reply> r = client_->call(Command{{"HGET", members_key(group_id), user_id}, 1});
  if (!r) return r.status();
  if (r->is_error()) return reply_error(*r, "role_of");
  if (r->is_nil()) return std::optional<Role>();
  return std::optional<Role>(role_from(*r));
}

Result<ReadPosition> RedisStoreImpl::mark_read(const std::string& group_id, const std::string& user_id,
                               ReadPosition to) {
  return read_position_script(group_id, user_id, {user_id, std::to_string(to.epoch), std::to_string(to.msg_id)});
}

Result<ReadPosition> RedisStoreImpl::read_position(const std::string& group_id, const std::string& user_id) {
  return read_position_script(group_id, user_id, {user_id});
}

Status RedisStoreImpl::set_notify_level(const std::string& group_id, const std::string& user_id, NotifyLevel level) {
  Result<Reply> r = script(kSetNotify, {members_key(group_id), notify_key(group_id)},
                           {user_id, std::to_string(static_cast<int>(level))});
  if (!r) return r.status();
  if (Status st = expect_type(*r, Reply::Type::kInteger, "set_notify_level"); !st) return st;
  if (r->integer == 0) return error(Code::kNotFound, fmt::format("'{}' is not a member of '{}'", user_id, group_id));
  return Status::ok();
}

Status RedisStoreImpl::notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                     std::vector<NotifyLevel>* out) {
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

}  // namespace parley::redis_detail
