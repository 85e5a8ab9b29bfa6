// The app server's own API (docs/protocol.md 3, "Server API"): routes under
// /v1/server/, authenticated by the API key (Authorization: ApiKey KEY),
// never by a user's token. The app speaks as itself (system notices), on a
// user's behalf (a send checked as that user's), and manages groups and
// members without being a member. GET .../messages and .../members are the
// user routes' handlers without the membership check (HttpApi::history,
// HttpApi::members with Call::app).
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http_api.hpp"
#include "http_util.hpp"
#include "log.hpp"
#include "parley/store_jobs.hpp"

namespace parley::server {

namespace {

// Users named by an optional array field of the body (each a valid id).
Status user_list(const rapidjson::Document& doc, const char* key, const Limits& limits,
                 std::vector<std::string>* out) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return Status::ok();
  if (!it->value.IsArray())
    return error(Code::kInvalidArgument, fmt::format("'{}' must be an array of users", key));
  if (it->value.Size() > 1000)
    return error(Code::kTooLarge, fmt::format("'{}' names more than 1000 users", key));
  for (const auto& u : it->value.GetArray()) {
    if (!u.IsString())
      return error(Code::kInvalidArgument, fmt::format("'{}' must be an array of users", key));
    out->emplace_back(u.GetString(), u.GetStringLength());
    if (Status st = validate_id(out->back(), "user", limits); !st) return st;
  }
  return Status::ok();
}

// An optional string field, with its default.
Status optional_string(const rapidjson::Document& doc, const char* key, std::string* out) {
  if (!doc.HasMember(key)) return Status::ok();
  return json_string_field(doc, key, out);
}

}  // namespace

// POST /v1/server/groups/{g}/system {"c", "author"?, "cid"?, "meta"?}: a
// system notice (a `system` entry of the log), answered with its ack after
// the commit; a resend with the same cid is stored once ("dup": true).
void HttpApi::app_system(Call& c) {
  rapidjson::Document doc;
  std::string author = "system", cid, text, meta;
  Status st = json_body(c.req.body, &doc);
  if (st) st = optional_string(doc, "author", &author);
  if (st) st = optional_string(doc, "cid", &cid);
  if (st) st = json_string_field(doc, "c", &text);
  if (st && doc.HasMember("meta")) {
    if (!doc["meta"].IsObject()) {
      st = error(Code::kInvalidArgument, "'meta' must be a JSON object");
    } else {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      doc["meta"].Accept(w);
      meta.assign(buf.GetString(), buf.GetSize());
    }
  }
  if (!st) return c.fail(st);
  on_stores(
      c.reply(), [g = c.group](const JobStores& s) { return group_found(s.membership, g); },
      [this, g = c.group, author, cid, text, meta, reply = c.reply()](const Status& found) {
        if (!found) return reply.fail(found);
        Status recorded = ctx_.record_system(
            g, author, cid, text, meta,
            [this, reply](const ServerEvent& ev) { reply.respond(ack_response(ctx_.codec, ev)); });
        if (!recorded) reply.fail(recorded);
      });
}

// POST /v1/server/groups/{g}/messages {"user", ...the send frame}: a send on
// `user`'s behalf, checked as that user's own (membership, limits, rate).
void HttpApi::app_send(Call& c) {
  rapidjson::Document doc;
  std::string user;
  Status st = json_body(c.req.body, &doc);
  if (st) st = json_string_field(doc, "user", &user);
  if (!st) return c.fail(st);
  doc.RemoveMember("user");
  send_for(user, c.group, doc, c.reply());
}

// POST /v1/server/groups/{g}/members {"add": [users], "remove": [users],
// "by"?}: members removed, then added (as members), in one call; each change
// is made once (adding a member or removing a non-member changes nothing)
// and answered with the users it changed. The owner cannot be removed. Removals
// reach every node and are entries of the log (by "by", default "system")
// with --membership-entries, as joins are.
void HttpApi::app_members(Call& c) {
  rapidjson::Document doc;
  std::vector<std::string> add, remove;
  std::string by = "system";
  Status st = json_body(c.req.body, &doc);
  if (st) st = user_list(doc, "add", ctx_.limits, &add);
  if (st) st = user_list(doc, "remove", ctx_.limits, &remove);
  if (st) st = optional_string(doc, "by", &by);
  if (st) st = validate_id(by, "by", ctx_.limits);
  if (!st) return c.fail(st);
  struct Changed {
    std::vector<std::string> added, removed;
  };
  auto out = std::make_shared<Changed>();
  on_stores(
      c.reply(),
      [out, g = c.group, add, remove](const JobStores& s) -> Status {
        if (Status failed = group_found(s.membership, g); !failed) return failed;
        for (const std::string& u : remove) {
          Result<std::optional<Role>> role = s.membership.role_of(g, u);
          if (!role) return role.status();
          if (*role == std::optional<Role>(Role::kOwner)) {
            return error(Code::kInvalidArgument, fmt::format("'{}' owns '{}' and cannot be removed", u, g));
          }
        }
        for (const std::string& u : remove) {
          Result<std::optional<Role>> role = s.membership.role_of(g, u);
          if (!role) return role.status();
          if (!role->has_value()) continue;
          if (Status failed = s.membership.remove(g, u); !failed) return failed;
          out->removed.push_back(u);
        }
        for (const std::string& u : add) {
          Result<std::optional<Role>> joined = s.membership.join(g, u, Admission::kAdmitted);
          if (!joined) return joined.status();
          if (!joined->has_value()) out->added.push_back(u);
        }
        return Status::ok();
      },
      [this, out, g = c.group, by, reply = c.reply()](const Status& done) {
        // What was changed before a failure stays changed: it is told too.
        for (const std::string& u : out->removed) {
          ctx_.member_removed(g, u);
          ctx_.record_membership(g, EntryKind::kRemoved, by, u);
        }
        for (const std::string& u : out->added) ctx_.record_membership(g, EntryKind::kJoin, u, "");
        if (!done) return reply.fail(done);
        Json j;
        j.str("group", g).array("added");
        for (const std::string& u : out->added) j.item(u);
        j.array_end().array("removed");
        for (const std::string& u : out->removed) j.item(u);
        reply.answer(200, j.array_end().done());
      });
}

// POST /v1/server/users/{user}/disconnect {"reason"?}: every session of the
// user, on every node, gets an error event ("about":"disconnected", the
// reason in its message) and is closed. Answered once this shard's sessions
// are closed and the other shards and peers are told (best effort, as
// removals).
void HttpApi::app_disconnect(Call& c) {
  rapidjson::Document doc;
  std::string why;
  Status st = c.req.body.empty() ? Status::ok() : json_body(c.req.body, &doc);
  if (st && !c.req.body.empty()) st = optional_string(doc, "reason", &why);
  if (st && why.size() > 256) st = error(Code::kTooLarge, "reason is over 256 bytes");
  if (!st) return c.fail(st);
  ctx_.disconnect_user(c.other, why);
  c.answer(200, Json().str("user", c.other).str("reason", why).done());
}

}  // namespace parley::server
