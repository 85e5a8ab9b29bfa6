#include "http_api.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include "http_util.hpp"
#include "log.hpp"
#include "parley/store_jobs.hpp"
#include "web_assets.hpp"

namespace parley::server {

const std::vector<HttpApi::Route>& HttpApi::routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", {}, false, &HttpApi::index},
      {"GET", {"index.html"}, false, &HttpApi::index},
      {"GET", {"healthz"}, false, &HttpApi::healthz},
      {"GET", {"metrics"}, false, &HttpApi::metrics},
      {"POST", {"v1", "login"}, false, &HttpApi::login},
      {"*", {"v1", "peer", "*"}, false, &HttpApi::peer},
      {"*", {"v1", "ws"}, false, &HttpApi::ws},
      {"GET", {"v1", "me"}, true, &HttpApi::me},
      {"GET", {"v1", "groups"}, true, &HttpApi::list_groups},
      {"POST", {"v1", "groups"}, true, &HttpApi::create_group},
      {"GET", {"v1", "directory"}, true, &HttpApi::directory},
      {"GET", {"v1", "groups", "{g}"}, true, &HttpApi::group_info},
      {"POST", {"v1", "groups", "{g}", "settings"}, true, &HttpApi::change_settings},
      {"POST", {"v1", "groups", "{g}", "invites"}, true, &HttpApi::invite},
      {"POST", {"v1", "groups", "{g}", "join"}, true, &HttpApi::join},
      {"POST", {"v1", "groups", "{g}", "leave"}, true, &HttpApi::leave},
      {"POST", {"v1", "groups", "{g}", "notify"}, true, &HttpApi::set_notify},
      {"GET", {"v1", "groups", "{g}", "members"}, true, &HttpApi::members},
      {"GET", {"v1", "groups", "{g}", "presence"}, true, &HttpApi::presence},
      {"GET", {"v1", "groups", "{g}", "messages"}, true, &HttpApi::history},
      {"POST", {"v1", "groups", "{g}", "messages"}, true, &HttpApi::post_message},
      {"POST", {"v1", "groups", "{g}", "read"}, true, &HttpApi::post_read},
      {"GET", {"v1", "groups", "{g}", "pull"}, true, &HttpApi::pull},
      {"DELETE", {"v1", "groups", "{g}", "members", "{user}"}, true, &HttpApi::remove_member},
      {"POST", {"v1", "server", "groups"}, true, &HttpApi::app_create_group},
      {"GET", {"v1", "server", "groups", "{g}"}, true, &HttpApi::group_info},
      {"POST", {"v1", "server", "groups", "{g}", "settings"}, true, &HttpApi::change_settings},
      {"POST", {"v1", "server", "groups", "{g}", "system"}, true, &HttpApi::app_system},
      {"POST", {"v1", "server", "groups", "{g}", "messages"}, true, &HttpApi::app_send},
      {"GET", {"v1", "server", "groups", "{g}", "messages"}, true, &HttpApi::history},
      {"POST", {"v1", "server", "groups", "{g}", "members"}, true, &HttpApi::app_members},
      {"GET", {"v1", "server", "groups", "{g}", "members"}, true, &HttpApi::members},
      {"POST", {"v1", "server", "users", "{user}", "disconnect"}, true, &HttpApi::app_disconnect},
  };
  return kRoutes;
}

HttpApi::HttpApi(Context ctx) : ctx_(std::move(ctx)) {}

namespace {

// Does `seg` have the shape of `pattern`? ("*" at the end: one or more
// segments; "{x}": any one segment.)
bool shape_matches(const std::vector<const char*>& pattern, const std::vector<std::string>& seg) {
  if (!pattern.empty() && std::string(pattern.back()) == "*") {
    if (seg.size() < pattern.size()) return false;
  } else if (seg.size() != pattern.size()) {
    return false;
  }
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string p = pattern[i];
    if (p == "*" || p.front() == '{') continue;
    if (p != seg[i]) return false;
  }
  return true;
}

}  // namespace

// The node's answer to a request made on a caller's behalf, as an HTTP error.
HttpResponse error_response(const ErrorEv& e) {
  HttpResponse r;
  r.status = http_status_for(e.code);
  r.body = error_json(Status(e.code, e.message));
  if (e.retry_after_ms != 0)
    r.headers.emplace_back("Retry-After", std::to_string((e.retry_after_ms + 999) / 1000));
  return r;
}

namespace {
// Runs a route's continuation; an exception in it answers with internal.
template <typename R, typename F>
void guarded(const R& reply, F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    PARLEY_LOG_ERROR("HTTP answer failed: {}", e.what());
    reply.fail(error(Code::kInternal, "internal error"));
  }
}
// Who may read a group's members and history: the app (the group must
// exist) or a member.
Status may_read(MembershipStore& membership, bool app, const std::string& user, const std::string& g) {
  return app ? group_found(membership, g) : check_member(membership, user, g);
}
}  // namespace

void HttpApi::on_stores(const Reply& reply, Node::HostWork work, std::function<void(const Status&)> done) {
  ctx_.node.run_host(std::move(work), [reply, done = std::move(done)](const Status& st) {
    guarded(reply, [&] { done(st); });
  });
}

void HttpApi::when_ready(const Reply& reply, const std::string& user, const ClientRequest& request,
                         std::function<void()> then) {
  ctx_.node.when_ready(user, request, [reply, then = std::move(then)] { guarded(reply, then); });
}

HttpResponse ack_response(const ClientCodec& codec, const ServerEvent& ev) {
  if (const auto* e = std::get_if<ErrorEv>(&ev)) return error_response(*e);
  HttpResponse r;
  if (const auto* ack = std::get_if<AckEv>(&ev)) r.body = codec.encode_event(*ack);
  return r;
}

void HttpApi::handle(const HttpRequest& req, Respond respond) {
  Call c(req, parse_target(req.resource), std::move(respond));
  const std::vector<std::string>& seg = c.target.segments;
  try {
    // Every /v1 route but login, and the two that only point elsewhere,
    // needs a token; it is checked first, so that nothing about the routes
    // shows without one.
    const bool open =
        seg.size() < 2 || seg[0] != "v1" || seg[1] == "login" || seg[1] == "peer" || seg[1] == "ws";
    c.app = !open && seg[1] == "server";
    if (c.app) {
      // The app server's API: its key, never a user's token.
      const std::string& a = req.authorization;
      const bool given = a.size() > 7 && a.compare(0, 7, "ApiKey ") == 0;
      if (!given || !ctx_.auth.is_api_key(a.substr(7))) {
        ++auth_failures_;
        return c.fail(
            error(Code::kUnauthenticated,
                  given ? "bad API key" : "the server API needs the API key: Authorization: ApiKey KEY"));
      }
    } else if (!open) {
      Result<TokenClaims> who = ctx_.auth.verify(bearer_token(req.authorization), ctx_.clock.now_ms());
      if (!who) {
        ++auth_failures_;
        return c.fail(who.status());
      }
      c.user = who->user;
      c.expires_at_ms = who->expires_at_ms;
    }
    const Route* shaped = nullptr;
    std::vector<const char*> allowed;
    for (const Route& r : routes()) {
      if (!shape_matches(r.pattern, seg)) continue;
      if (!shaped) {
        shaped = &r;
        // Ids in the path are checked before anything else about the route.
        for (size_t i = 0; i < r.pattern.size(); ++i) {
          const std::string p = r.pattern[i];
          if (p == "{g}") {
            if (Status st = validate_id(seg[i], "group_id", ctx_.limits); !st) return c.fail(st);
            c.group = seg[i];
          } else if (p == "{user}") {
            if (Status st = validate_id(seg[i], "user", ctx_.limits); !st) return c.fail(st);
            c.other = seg[i];
          }
        }
      }
      if (std::string(r.method) == "*" || req.method == r.method) return (this->*r.handler)(c);
      allowed.push_back(r.method);
    }
    if (!allowed.empty()) {
      return c.fail(
          error(Code::kInvalidArgument, fmt::format("use {} for this route", fmt::join(allowed, " or "))));
    }
    c.fail(error(Code::kNotFound, fmt::format("no route for {} {}", req.method, req.resource)));
  } catch (const std::exception& e) {
    PARLEY_LOG_ERROR("HTTP {} {}: {}", req.method, req.resource, e.what());
    c.fail(error(Code::kInternal, "internal error"));
  }
}

void HttpApi::index(Call& c) {
  if (!ctx_.cfg.web_root.empty()) {
    std::ifstream in(std::filesystem::path(ctx_.cfg.web_root) / "index.html", std::ios::binary);
    if (!in) return c.fail(error(Code::kNotFound, "index.html not found in --web-root"));
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return c.answer(200, std::move(body), "text/html; charset=utf-8");
  }
  c.answer(200, std::string(web_index_html()), "text/html; charset=utf-8");
}

// A membership read through the node's store executor: unavailable while
// the store (or the executor) cannot answer.
void HttpApi::healthz(Call& c) {
  on_stores(
      c.reply(), [](const JobStores& s) -> Status { return s.membership.group_exists("healthz").status(); },
      [this, reply = c.reply()](const Status& probe) {
        reply.answer(probe ? 200 : 503,
                     Json().str("status", probe ? "ok" : "unavailable").str("node", ctx_.cfg.node_id).done());
      });
}

void HttpApi::metrics(Call& c) {
  ctx_.metrics([respond = c.respond](std::string text) {
    HttpResponse r;
    r.body = std::move(text);
    r.content_type = "text/plain; version=0.0.4";
    respond(std::move(r));
  });
}

void HttpApi::peer(Call& c) {
  c.fail(error(Code::kNotFound, "the peer transport listens on --peer-listen"));
}

void HttpApi::ws(Call& c) {
  c.fail(error(Code::kInvalidArgument, "/v1/ws needs a WebSocket upgrade"));
}

void HttpApi::login(Call& c) {
  rapidjson::Document doc;
  std::string user, password;
  Status st = json_body(c.req.body, &doc);
  if (st) st = json_string_field(doc, "user", &user);
  if (st && doc.HasMember("password")) st = json_string_field(doc, "password", &password);
  if (st) st = validate_id(user, "user", ctx_.limits);
  if (!st) return c.fail(st);
  // Password hashing is slow on purpose: do it off the I/O thread.
  const int64_t now = ctx_.clock.now_ms();
  ctx_.offload([this, respond = c.respond, user, password, now] {
    TokenClaims claims;
    Result<std::string> token = ctx_.auth.login(user, password, now, &claims);
    ctx_.post([this, respond, token, claims] {
      HttpResponse r;
      if (!token) {
        ++auth_failures_;
        r.status = http_status_for(token.status().code());
        r.body = error_json(token.status());
      } else {
        r.body = Json()
                     .str("token", *token)
                     .str("user", claims.user)
                     .num("expires_at", claims.expires_at_ms)
                     .done();
      }
      respond(std::move(r));
    });
  });
}

void HttpApi::me(Call& c) {
  c.answer(
      200,
      Json().str("user", c.user).num("expires_at", c.expires_at_ms).str("node", ctx_.cfg.node_id).done());
}

// The caller's groups with its role, read state and notification level in
// each (protocol.md 2.1).
void HttpApi::list_groups(Call& c) {
  struct Row {
    ReadState state;
    std::optional<Role> role;
    NotifyLevel level = NotifyLevel::kAll;
  };
  auto rows = std::make_shared<std::vector<Row>>();
  on_stores(
      c.reply(),
      [rows, user = c.user](const JobStores& s) -> Status {
        StoreOpResult states;
        if (Status failed = run_unread(s.messages, s.membership, UnreadOp{user, {}, std::nullopt}, &states);
            !failed)
          return failed;
        for (ReadState& state : states.reads) {
          Result<std::optional<Role>> role = s.membership.role_of(state.group_id, user);
          std::vector<NotifyLevel> level;
          if (Status failed = s.membership.notify_levels(state.group_id, {user}, &level); !failed)
            return failed;
          rows->push_back(
              {std::move(state), role ? *role : std::nullopt, level.empty() ? NotifyLevel::kAll : level[0]});
        }
        return Status::ok();
      },
      [rows, reply = c.reply()](const Status& st) {
        if (!st) return reply.fail(st);
        Json j;
        j.array("groups");
        for (const Row& r : *rows) {
          const ReadState& s = r.state;
          j.item_begin()
              .str("group", s.group_id)
              .str("role", r.role ? role_name(*r.role) : "member")
              .num("epoch", static_cast<int64_t>(s.epoch))
              .num("read", static_cast<int64_t>(s.msg_id))
              .num("head", static_cast<int64_t>(s.head))
              .num("unread", static_cast<int64_t>(s.unread))
              .num("mentions", static_cast<int64_t>(s.mentions))
              .str("notify", notify_level_name(r.level))
              .item_end();
        }
        reply.answer(200, j.array_end().done());
      });
}

// POST /v1/groups/{g}/notify {"level"}: the caller's notification level.
void HttpApi::set_notify(Call& c) {
  rapidjson::Document doc;
  std::string name;
  NotifyLevel level = NotifyLevel::kAll;
  Status st = json_body(c.req.body, &doc);
  if (st) st = json_string_field(doc, "level", &name);
  if (st && !parse_notify_level(name, &level)) {
    st = error(Code::kInvalidArgument,
               fmt::format("unknown notification level '{}' (all, mentions or none)", name));
  }
  if (!st) return c.fail(st);
  auto r = std::make_shared<StoreOpResult>();
  on_stores(
      c.reply(),
      [r, op = NotifyLevelOp{c.user, c.group, level}](const JobStores& s) -> Status {
        return run_notify_level(s.membership, op, r.get());
      },
      [r, g = c.group, reply = c.reply()](Status set) {
        if (set.code() == Code::kNotFound) set = error(Code::kPermissionDenied, set.message());
        if (!set) return reply.fail(set);
        reply.answer(200, Json().str("group", g).str("level", notify_level_name(r->levels[0])).done());
      });
}

// POST /v1/groups/{g}/messages: a send as over the WebSocket (protocol.md
// 2.1). The body is the send frame without "g" (the path names the group):
// {"cid","c"} and the optional fields, or with "t" an edit, delete or
// reaction. Answered once it is stored with the ack event, or with the error.
void HttpApi::post_message(Call& c) {
  rapidjson::Document doc;
  if (Status st = json_body(c.req.body, &doc); !st) return c.fail(st);
  send_for(c.user, c.group, doc, c.reply());
}

void HttpApi::send_for(const std::string& user, const std::string& group, rapidjson::Document& doc,
                       const Reply& reply) {
  if (doc.HasMember("g"))
    return reply.fail(error(Code::kInvalidArgument, "the group is named by the path, not 'g'"));
  auto& alloc = doc.GetAllocator();
  if (!doc.HasMember("t")) doc.AddMember("t", "send", alloc);
  doc.AddMember("g", rapidjson::Value(group.data(), static_cast<rapidjson::SizeType>(group.size()), alloc),
                alloc);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  Result<ClientRequest> req = ctx_.codec.decode_request(buf.GetString(), buf.GetSize(), ctx_.limits);
  if (!req) return reply.fail(req.status());
  const SendReq* send = std::get_if<SendReq>(&*req);
  if (send == nullptr)
    return reply.fail(error(Code::kInvalidArgument, "'t' must be send, edit, delete or react"));
  when_ready(reply, user, *send, [this, user, send = *send, respond = reply.respond] {
    ctx_.send_as(user, send,
                 [respond, this](const ServerEvent& ev) { respond(ack_response(ctx_.codec, ev)); });
  });
}

// POST /v1/groups/{g}/read {"id","epoch"}: the caller has read up to `id`,
// as the WebSocket `read` request (protocol.md 2.1, "Read state"); answered
// with the read state in force, as GET /v1/groups gives it.
void HttpApi::post_read(Call& c) {
  rapidjson::Document doc;
  if (Status st = json_body(c.req.body, &doc); !st) return c.fail(st);
  ReadReq r;
  r.group_id = c.group;
  for (auto [key, out] : {std::pair<const char*, uint64_t*>{"id", &r.msg_id}, {"epoch", &r.epoch}}) {
    if (!doc.HasMember(key) || !doc[key].IsUint64()) {
      return c.fail(
          error(Code::kInvalidArgument, fmt::format("field '{}' (a non-negative integer) is required", key)));
    }
    *out = doc[key].GetUint64();
  }
  if (r.epoch == 0) return c.fail(error(Code::kInvalidArgument, "epoch must be the group's epoch, not 0"));
  when_ready(c.reply(), c.user, r,
             [this, user = c.user, r, respond = c.respond] { read_as(user, r, respond); });
}

void HttpApi::read_as(const std::string& user, const ReadReq& r, const Respond& respond) {
  ctx_.read_as(user, r, [respond](const ServerEvent& ev) {
    HttpResponse out;
    if (const auto* read = std::get_if<ReadEv>(&ev)) {
      const ReadState& s = read->state;
      out.body = Json()
                     .str("group", s.group_id)
                     .num("epoch", static_cast<int64_t>(s.epoch))
                     .num("read", static_cast<int64_t>(s.msg_id))
                     .num("head", static_cast<int64_t>(s.head))
                     .num("unread", static_cast<int64_t>(s.unread))
                     .num("mentions", static_cast<int64_t>(s.mentions))
                     .done();
    } else if (const auto* e = std::get_if<ErrorEv>(&ev)) {
      out = error_response(*e);
    }
    respond(std::move(out));
  });
}

void HttpApi::leave(Call& c) {
  on_stores(
      c.reply(),
      [g = c.group, user = c.user](const JobStores& s) -> Status { return s.membership.remove(g, user); },
      [this, g = c.group, user = c.user, reply = c.reply()](const Status& st) {
        if (!st) return reply.fail(st);
        ctx_.member_removed(g, user);
        ctx_.record_membership(g, EntryKind::kLeave, user, "");
        reply.answer(200, Json().str("group", g).done());
      });
}

// DELETE /v1/groups/{g}/members/{user}: the owner removes a member.
void HttpApi::remove_member(Call& c) {
  on_stores(
      c.reply(),
      [g = c.group, user = c.user, other = c.other](const JobStores& s) -> Status {
        Result<std::optional<Role>> role = s.membership.role_of(g, user);
        if (!role) return role.status();
        if (*role != std::optional<Role>(Role::kOwner)) {
          if (Status failed = check_member(s.membership, user, g); !failed)
            return failed;  // not_found / not a member
          return error(Code::kPermissionDenied, fmt::format("only the owner of '{}' removes members", g));
        }
        if (other == user) return error(Code::kInvalidArgument, "the owner cannot remove itself; use leave");
        return s.membership.remove(g, other);
      },
      [this, g = c.group, user = c.user, other = c.other, reply = c.reply()](const Status& st) {
        if (!st) return reply.fail(st);
        ctx_.member_removed(g, other);
        ctx_.record_membership(g, EntryKind::kRemoved, user, other);
        reply.answer(200, Json().str("group", g).str("removed", other).done());
      });
}

void HttpApi::members(Call& c) {
  member_list(c, false);
}
void HttpApi::presence(Call& c) {
  member_list(c, true);
}

// The members and the presence store's word on each are read off the I/O
// thread; the node's own view of its local users is added back on it.
void HttpApi::member_list(Call& c, bool presence_only) {
  struct Listed {
    std::vector<Member> members;
    std::vector<std::string> users;
    std::vector<PresenceStatus> stored;  // empty without a presence store
  };
  auto out = std::make_shared<Listed>();
  on_stores(
      c.reply(),
      [out, g = c.group, user = c.user, app = c.app,
       now = ctx_.clock.now_ms()](const JobStores& s) -> Status {
        if (Status failed = may_read(s.membership, app, user, g); !failed) {
          return failed;
        }
        Result<std::vector<Member>> list = s.membership.members(g);
        if (!list) return list.status();
        out->members = std::move(*list);
        for (const Member& m : out->members) out->users.push_back(m.user_id);
        if (s.presence == nullptr) return Status::ok();
        return s.presence->presence(out->users, now, &out->stored);
      },
      [this, out, presence_only, reply = c.reply()](const Status& st) {
        if (!st) return reply.fail(st);
        const std::vector<PresenceStatus> status = ctx_.node.presence_of(out->users, out->stored);
        Json j;
        j.array(presence_only ? "presence" : "members");
        for (size_t i = 0; i < out->members.size(); ++i) {
          const Member& m = out->members[i];
          j.item_begin().str("user", m.user_id);
          if (!presence_only) j.str("role", role_name(m.role));
          j.str("status", presence_status_name(status[i])).item_end();
        }
        reply.answer(200, j.array_end().done());
      });
}

// {"group","epoch","head","messages":[msg objects]}
// Folded ({"group","epoch","head","to","messages"}) when `folded` is given:
// each message then has its fold's fields (protocol.md).
std::string HttpApi::messages_json(const std::string& g, uint64_t epoch, uint64_t head,
                                   const std::vector<MessagePtr>& msgs, const FoldedPage* folded) {
  Json j;
  j.str("group", g).u64("epoch", epoch).u64("head", head);
  if (folded != nullptr) j.u64("to", folded->to);
  j.array("messages");
  for (size_t i = 0; i < msgs.size(); ++i) {
    std::shared_ptr<const Fold> fold;
    if (folded != nullptr) fold = std::make_shared<const Fold>(folded->folds[i]);
    j.raw(ctx_.codec.encode_event(MessageEv{msgs[i], std::move(fold)}));
  }
  return j.array_end().done();
}

void HttpApi::history(Call& c) {
  uint64_t after = 0, before = 0, limit = 50;
  Status st = validate_id(c.group, "group_id", ctx_.limits);
  if (st) st = query_u64(c.target, "after", 0, &after);
  if (st) st = query_u64(c.target, "before", 0, &before);
  if (st) st = query_u64(c.target, "limit", 50, &limit);
  if (st && (limit == 0 || limit > ctx_.limits.max_read_limit)) {
    st = error(Code::kInvalidArgument, fmt::format("limit must be 1..{}", ctx_.limits.max_read_limit));
  }
  if (st && before != 0 && after != 0)
    st = error(Code::kInvalidArgument, "give either before or after, not both");
  uint64_t fold = 0;
  if (st) st = query_u64(c.target, "fold", 0, &fold);
  if (st && fold > 1) st = error(Code::kInvalidArgument, "fold must be 0 or 1");
  if (!st) return c.fail(st);
  struct Page {
    uint64_t epoch = 0;
    uint64_t head = 0;
    std::vector<Message> rows;
    FoldedPage folded;
  };
  auto out = std::make_shared<Page>();
  on_stores(
      c.reply(),
      [out, g = c.group, user = c.user, app = c.app, after, before, limit,
       fold](const JobStores& s) -> Status {
        if (Status failed = may_read(s.membership, app, user, g); !failed) {
          return failed;
        }
        std::vector<GroupHead> heads;
        if (Status failed = s.messages.heads({g}, &heads); !failed) return failed;
        out->head = heads[0].head;
        out->epoch = heads[0].epoch;
        // The page (from, from + count]: before a given id, or after one.
        uint64_t from = after;
        uint64_t count = after < out->head ? limit : 0;
        if (before != 0) {
          const uint64_t end = std::min(before, out->head + 1);  // exclusive
          from = end > limit + 1 ? end - 1 - limit : 0;
          count = end > 1 ? end - 1 - from : 0;
        }
        if (fold == 1) {
          if (Status failed = s.messages.read_folded(g, from, static_cast<size_t>(count), user, &out->folded);
              !failed)
            return failed;
          out->rows = std::move(out->folded.messages);
          // folded as of this head
          if (out->folded.epoch != 0) out->head = out->folded.head, out->epoch = out->folded.epoch;
        } else if (count > 0) {
          if (Status failed = s.messages.read(g, from, static_cast<size_t>(count), &out->rows); !failed)
            return failed;
        }
        return Status::ok();
      },
      [this, out, g = c.group, fold, reply = c.reply()](const Status& read) {
        if (!read) return reply.fail(read);
        std::vector<MessagePtr> msgs;
        msgs.reserve(out->rows.size());
        for (Message& m : out->rows) msgs.push_back(std::make_shared<const Message>(std::move(m)));
        reply.answer(200, messages_json(g, out->epoch, out->head, msgs, fold == 1 ? &out->folded : nullptr));
      });
}

void HttpApi::pull(Call& c) {
  PullReq r;
  r.group_id = c.group;
  uint64_t limit = 100;
  Status st = query_u64(c.target, "after", 0, &r.after);
  if (st) st = query_u64(c.target, "epoch", 0, &r.epoch);
  if (st) st = query_u64(c.target, "limit", 100, &limit);
  if (st && (limit == 0 || limit > ctx_.limits.max_read_limit)) {
    st = error(Code::kInvalidArgument, fmt::format("limit must be 1..{}", ctx_.limits.max_read_limit));
  }
  if (!st) return c.fail(st);
  r.limit = static_cast<uint32_t>(limit);
  when_ready(c.reply(), c.user, r,
             [this, r, user = c.user, etag_if = c.req.if_none_match, reply = c.reply()] {
               Result<PullResultEv> ev = ctx_.node.pull(user, r);
               if (!ev) return reply.fail(ev.status());
               HttpResponse res;
               const std::string etag = fmt::format("\"{}-{}-{}-{}\"", ev->epoch, ev->head, r.after, r.limit);
               res.headers.emplace_back("ETag", etag);
               if (etag_if == etag) {
                 res.status = 304;
               } else {
                 res.body = messages_json(r.group_id, ev->epoch, ev->head, ev->messages);
               }
               reply.respond(std::move(res));
             });
}

}  // namespace parley::server
