// Groups' own routes (docs/protocol.md 3, "Groups"; decision 56): making
// one with its kind and settings, reading and changing them, inviting to a
// private group, joining by the group's rules, and discovery of public
// groups; and the app's forms of them under /v1/server/. The rules (who may
// join) are the store's, checked atomically by MembershipStore::join; a
// change of settings is a `system` entry of the group's log, so every
// member's client learns it in order.
#include <fmt/format.h>

#include "http_api.hpp"
#include "http_util.hpp"
#include "log.hpp"
#include "parley/store_jobs.hpp"

namespace parley::server {

namespace {

constexpr uint64_t kMaxDirectoryPage = 200;

const char* kind_name(GroupKind k) { return k == GroupKind::kPrivate ? "private" : "public"; }

// The settings fields a body may carry; absent ones keep what is there.
struct SettingsPatch {
  std::optional<GroupKind> kind;
  std::optional<std::string> title, topic;
  std::optional<uint32_t> member_limit;

  bool empty() const { return !kind && !title && !topic && !member_limit; }
  GroupSettings applied_to(GroupSettings s) const {
    if (kind) s.kind = *kind;
    if (title) s.title = *title;
    if (topic) s.topic = *topic;
    if (member_limit) s.member_limit = *member_limit;
    return s;
  }
};

// An optional string field.
Status text_field(const rapidjson::Document& doc, const char* key, std::optional<std::string>* out) {
  if (!doc.HasMember(key)) return Status::ok();
  std::string v;
  if (Status st = json_string_field(doc, key, &v); !st) return st;
  *out = std::move(v);
  return Status::ok();
}

// The settings fields of a body, each checked as validate_group_settings
// checks it.
Status parse_patch(const rapidjson::Document& doc, SettingsPatch* out) {
  if (auto it = doc.FindMember("kind"); it != doc.MemberEnd()) {
    const std::string k = it->value.IsString() ? it->value.GetString() : "";
    if (k != "public" && k != "private") return error(Code::kInvalidArgument, "'kind' must be public or private");
    out->kind = k == "private" ? GroupKind::kPrivate : GroupKind::kPublic;
  }
  if (Status st = text_field(doc, "title", &out->title); !st) return st;
  if (Status st = text_field(doc, "topic", &out->topic); !st) return st;
  if (auto it = doc.FindMember("member_limit"); it != doc.MemberEnd()) {
    if (!it->value.IsUint64() || it->value.GetUint64() > kMaxMemberLimit) {
      return error(Code::kInvalidArgument,
                   fmt::format("'member_limit' must be a whole number from 0 (none) to {}", kMaxMemberLimit));
    }
    out->member_limit = static_cast<uint32_t>(it->value.GetUint64());
  }
  return validate_group_settings(out->applied_to(GroupSettings{}));
}

Json& settings_json(Json& j, const GroupSettings& s) {
  return j.str("kind", kind_name(s.kind)).str("title", s.title).str("topic", s.topic).u64("member_limit",
                                                                                          s.member_limit);
}

// --max-groups-per-user (`max`, 0: none), checked before a create or a join.
Status check_group_limit(MembershipStore& membership, const std::string& user, size_t max) {
  if (max == 0) return Status::ok();
  Result<std::vector<std::string>> groups = membership.groups_of(user);
  if (!groups) return groups.status();
  if (groups->size() < max) return Status::ok();
  return error(Code::kLimitExceeded,
               fmt::format("'{}' is in {} groups; the limit is {}", user, groups->size(), max));
}

}  // namespace

// POST /v1/groups {"group", "kind"?, "title"?, "topic"?, "member_limit"?}:
// a group with the caller as its owner (public unless it says private).
void HttpApi::create_group(Call& c) {
  rapidjson::Document doc;
  std::string g;
  SettingsPatch patch;
  Status st = json_body(c.req.body, &doc);
  if (st) st = json_string_field(doc, "group", &g);
  if (st) st = validate_id(g, "group", ctx_.limits);
  if (st) st = parse_patch(doc, &patch);
  if (!st) return c.fail(st);
  const GroupSettings settings = patch.applied_to(GroupSettings{});
  on_stores(
      c.reply(),
      [g, settings, user = c.user, max = ctx_.cfg.max_groups_per_user](const JobStores& s) -> Status {
        if (Status failed = check_group_limit(s.membership, user, max); !failed) return failed;
        return s.membership.create_group_with(g, user, settings);
      },
      [g, settings, user = c.user, reply = c.reply()](const Status& created) {
        if (!created) return reply.fail(created);
        PARLEY_LOG_INFO("{} created {} group {}", user, kind_name(settings.kind), g);
        Json j;
        j.str("group", g).str("role", "owner");
        reply.answer(201, settings_json(j, settings).done());
      });
}

// POST /v1/groups/{g}/join: the caller joins by the group's rules (a
// private group needs an invite; no group takes more than its limit).
void HttpApi::join(Call& c) {
  auto before = std::make_shared<std::optional<Role>>();  // the role it had (none: joined now)
  on_stores(
      c.reply(),
      [before, g = c.group, user = c.user, max = ctx_.cfg.max_groups_per_user](const JobStores& s) -> Status {
        if (Status failed = group_found(s.membership, g); !failed) return failed;
        Result<std::optional<Role>> role = s.membership.role_of(g, user);
        if (!role) return role.status();
        if (!role->has_value()) {
          if (Status failed = check_group_limit(s.membership, user, max); !failed) return failed;
        }
        Result<std::optional<Role>> joined = s.membership.join(g, user, Admission::kAsked);
        if (!joined) return joined.status();
        *before = *joined;
        return Status::ok();
      },
      [this, before, g = c.group, user = c.user, reply = c.reply()](const Status& st) {
        if (!st) return reply.fail(st);
        if (!*before) ctx_.record_membership(g, EntryKind::kJoin, user, "");
        reply.answer(200, Json().str("group", g).str("role", *before ? role_name(**before) : "member").done());
      });
}

// GET /v1/groups/{g}: the group's settings and member count, with the
// caller's role; a private group shows itself to its members only.
void HttpApi::group_info(Call& c) {
  struct Info {
    GroupSettings settings;
    size_t members = 0;
    std::optional<Role> role;
  };
  auto out = std::make_shared<Info>();
  on_stores(
      c.reply(),
      [out, g = c.group, user = c.user, app = c.app](const JobStores& s) -> Status {
        Result<GroupSettings> settings = s.membership.settings(g);
        if (!settings) return settings.status();
        Result<std::optional<Role>> role = app ? std::optional<Role>() : s.membership.role_of(g, user);
        if (!role) return role.status();
        if (!app && settings->kind == GroupKind::kPrivate && !role->has_value()) {
          return error(Code::kPermissionDenied, fmt::format("'{}' is private: members only", g));
        }
        Result<std::vector<Member>> members = s.membership.members(g);
        if (!members) return members.status();
        *out = Info{std::move(*settings), members->size(), *role};
        return Status::ok();
      },
      [out, g = c.group, reply = c.reply()](const Status& st) {
        if (!st) return reply.fail(st);
        Json j;
        j.str("group", g);
        settings_json(j, out->settings).u64("members", out->members);
        if (out->role) j.str("role", role_name(*out->role));
        reply.answer(200, j.done());
      });
}

// POST /v1/groups/{g}/settings {"kind"?, "title"?, "topic"?,
// "member_limit"?}: the owner changes what it names (the rest is kept); the
// app does too, at /v1/server/groups/{g}/settings ({"by"?} names who, by
// default "system"). Recorded as a `system` entry of the log by the one who
// changed it, with the settings in its meta; answered after its commit
// with the settings in force and the entry's id.
void HttpApi::change_settings(Call& c) {
  rapidjson::Document doc;
  SettingsPatch patch;
  std::string by = c.app ? "system" : c.user;
  Status st = json_body(c.req.body, &doc);
  if (st) st = parse_patch(doc, &patch);
  if (st && c.app && doc.HasMember("by")) {
    st = json_string_field(doc, "by", &by);
    if (st) st = validate_id(by, "by", ctx_.limits);
  }
  if (st && patch.empty()) {
    st = error(Code::kInvalidArgument, "name at least one of kind, title, topic, member_limit");
  }
  if (!st) return c.fail(st);
  auto now = std::make_shared<GroupSettings>();
  on_stores(
      c.reply(),
      [now, patch, g = c.group, user = c.user, app = c.app](const JobStores& s) -> Status {
        Result<GroupSettings> was = s.membership.settings(g);
        if (!was) return was.status();
        if (!app) {
          Result<std::optional<Role>> role = s.membership.role_of(g, user);
          if (!role) return role.status();
          if (*role != std::optional<Role>(Role::kOwner)) {
            return error(Code::kPermissionDenied, fmt::format("only the owner of '{}' changes its settings", g));
          }
        }
        *now = patch.applied_to(*was);
        return s.membership.set_settings(g, *now);
      },
      [this, now, g = c.group, by, reply = c.reply()](const Status& changed) {
        if (!changed) return reply.fail(changed);
        Json meta;
        meta.str("event", "settings").str("by", by);
        const std::string text = fmt::format("{} changed the group's settings", by);
        const std::string meta_json = settings_json(meta, *now).done();
        auto answer = [now, g, reply](const AckEv* ack) {
          Json j;
          j.str("group", g);
          settings_json(j, *now);
          if (ack != nullptr) j.u64("id", ack->msg_id);
          reply.answer(200, j.done());
        };
        // The settings are in force whatever becomes of the entry: a failed
        // entry is logged, and the answer then has no id.
        Status recorded = ctx_.record_system(g, by, "", text, meta_json, [answer, g](const ServerEvent& ev) {
          const auto* ack = std::get_if<AckEv>(&ev);
          if (ack == nullptr) PARLEY_LOG_WARN("the change of {}'s settings is in force but not in its log", g);
          answer(ack);
        });
        if (!recorded) {
          PARLEY_LOG_WARN("the change of {}'s settings is in force but not in its log: {}", g, recorded.message());
          answer(nullptr);
        }
      });
}

// POST /v1/groups/{g}/invites {"user"}: the owner lets `user` join the
// (private) group; the invite is spent when the user joins.
void HttpApi::invite(Call& c) {
  rapidjson::Document doc;
  std::string invited;
  Status st = json_body(c.req.body, &doc);
  if (st) st = json_string_field(doc, "user", &invited);
  if (st) st = validate_id(invited, "user", ctx_.limits);
  if (!st) return c.fail(st);
  on_stores(
      c.reply(),
      [g = c.group, user = c.user, invited](const JobStores& s) -> Status {
        if (Status failed = group_found(s.membership, g); !failed) return failed;
        Result<std::optional<Role>> role = s.membership.role_of(g, user);
        if (!role) return role.status();
        if (*role != std::optional<Role>(Role::kOwner)) {
          return error(Code::kPermissionDenied, fmt::format("only the owner of '{}' invites", g));
        }
        return s.membership.invite(g, invited);
      },
      [g = c.group, invited, reply = c.reply()](const Status& done) {
        if (!done) return reply.fail(done);
        reply.answer(200, Json().str("group", g).str("user", invited).done());
      });
}

// GET /v1/directory?prefix=&after=&limit=: public groups whose id starts
// with `prefix`, after `after`, at most `limit` (default 50, at most 200);
// "next" is the `after` of the next page, absent on the last.
void HttpApi::directory(Call& c) {
  uint64_t limit = 50;
  Status st = query_u64(c.target, "limit", 50, &limit);
  if (st && (limit == 0 || limit > kMaxDirectoryPage)) {
    st = error(Code::kInvalidArgument, fmt::format("limit must be 1 to {}", kMaxDirectoryPage));
  }
  auto text = [&](const char* key) {
    auto it = c.target.query.find(key);
    return it == c.target.query.end() ? std::string() : it->second;
  };
  const std::string prefix = text("prefix"), after = text("after");
  if (st && (prefix.size() > ctx_.limits.max_id_bytes || after.size() > ctx_.limits.max_id_bytes)) {
    st = error(Code::kTooLarge, "prefix and after are ids: too long");
  }
  if (!st) return c.fail(st);
  auto page = std::make_shared<std::vector<GroupListing>>();
  on_stores(
      c.reply(),
      // One more than asked: whether there is a next page.
      [page, prefix, after, limit](const JobStores& s) {
        return s.membership.public_groups(prefix, after, limit + 1, page.get());
      },
      [page, limit, reply = c.reply()](const Status& read) {
        if (!read) return reply.fail(read);
        const bool more = page->size() > limit;
        if (more) page->resize(limit);
        Json j;
        j.array("groups");
        for (const GroupListing& g : *page) {
          j.item_begin().str("group", g.group_id);
          settings_json(j, g.settings).u64("members", g.members).item_end();
        }
        j.array_end();
        if (more) j.str("next", page->back().group_id);
        reply.answer(200, j.done());
      });
}

// POST /v1/server/groups {"group", "owner", "kind"?, "title"?, "topic"?,
// "member_limit"?}: a group with its owner, made by the app (no per-user
// group limit).
void HttpApi::app_create_group(Call& c) {
  rapidjson::Document doc;
  std::string g, owner;
  SettingsPatch patch;
  Status st = json_body(c.req.body, &doc);
  if (st) st = json_string_field(doc, "group", &g);
  if (st) st = validate_id(g, "group", ctx_.limits);
  if (st) st = json_string_field(doc, "owner", &owner);
  if (st) st = validate_id(owner, "owner", ctx_.limits);
  if (st) st = parse_patch(doc, &patch);
  if (!st) return c.fail(st);
  const GroupSettings settings = patch.applied_to(GroupSettings{});
  on_stores(
      c.reply(), [g, owner, settings](const JobStores& s) { return s.membership.create_group_with(g, owner, settings); },
      [g, owner, settings, reply = c.reply()](const Status& created) {
        if (!created) return reply.fail(created);
        PARLEY_LOG_INFO("the app created {} group {} for {}", kind_name(settings.kind), g, owner);
        Json j;
        j.str("group", g).str("owner", owner);
        reply.answer(201, settings_json(j, settings).done());
      });
}

}  // namespace parley::server
