// The client protocol's schema, once, for every encoding.
//
// The msgpack codec (codec.cpp) and the JSON codec (json_codec.cpp) share the
// type names, field names and field rules written here; each supplies a
// Writer and a map View with the operations below. Internal header.
//
//   Writer: begin(type, fields) / end() around one frame object,
//           begin_map(fields) / end_map(), begin_array(n) / end_array(),
//           key(k), str(s), bytes(s), u64(v), i64(v), boolean(b)
//   View:   get_str / get_u64 / get_i64 / get_bool (key, out, required),
//           for_each_map(key, fn(const View&) -> Status[, required])
#pragma once

#include <fmt/format.h>

#include <memory>
#include <string>
#include <utility>

#include "core/util.hpp"
#include "parley/protocol.hpp"

namespace parley::detail {

Status parse_mode(const std::string& s, DeliveryMode* out);
Status parse_status(const std::string& s, PresenceStatus* out);
Status parse_level(const std::string& s, NotifyLevel* out);

Status parse_entry_kind(const std::string& s, EntryKind* out);

// The keys of an entry's fields, each written only when it is not at its
// default; shared by message maps and send requests (whose frame type names
// the kind, so they write no "k").
inline uint32_t entry_field_count(const EntryFields& e, bool with_kind) {
  return (with_kind && e.kind != EntryKind::kMessage) + (e.target != 0) + (e.reply_to != 0) + !e.mentions.empty() +
         !e.meta.empty() + e.remove;
}

template <typename W>
void write_entry_fields(W& w, const EntryFields& e, bool with_kind) {
  if (with_kind && e.kind != EntryKind::kMessage) w.key("k"), w.str(entry_kind_name(e.kind));
  if (e.target != 0) w.key("to"), w.u64(e.target);
  if (e.reply_to != 0) w.key("re"), w.u64(e.reply_to);
  if (!e.mentions.empty()) {
    w.key("mn"), w.begin_array(static_cast<uint32_t>(e.mentions.size()));
    for (const std::string& u : e.mentions) w.str(u);
    w.end_array();
  }
  if (!e.meta.empty()) w.key("meta"), w.json(e.meta);
  if (e.remove) w.key("rm"), w.boolean(true);
}

template <typename V>
Status read_entry_fields(const V& m, EntryFields* e) {
  std::string k;
  PARLEY_TRY(m.get_str("k", &k, false));
  if (!k.empty()) PARLEY_TRY(parse_entry_kind(k, &e->kind));
  PARLEY_TRY(m.get_u64("to", &e->target, false));
  PARLEY_TRY(m.get_u64("re", &e->reply_to, false));
  PARLEY_TRY(m.get_strs("mn", &e->mentions, false));
  PARLEY_TRY(m.get_json("meta", &e->meta, false));
  return m.get_bool("rm", &e->remove, false);
}

// The fields every message map has, then its entry's and the tombstone flag.
constexpr uint32_t kMessageFields = 8;

inline uint32_t message_fields(const Message& m) {
  return kMessageFields + entry_field_count(m.entry, true) + m.deleted;
}

template <typename W>
void write_message_fields(W& w, const Message& m) {
  w.key("g"), w.str(m.group_id);
  w.key("id"), w.u64(m.msg_id);
  w.key("prev"), w.u64(m.prev_msg_id);
  w.key("ts"), w.i64(m.timestamp_ms);
  w.key("u"), w.str(m.user_id);
  w.key("c"), w.bytes(m.contents);
  w.key("cid"), w.str(m.client_msg_id);
  w.key("ep"), w.u64(m.epoch);
  write_entry_fields(w, m.entry, true);
  if (m.deleted) w.key("del"), w.boolean(true);
}

template <typename V>
Status read_message_fields(const V& m, Message* out) {
  PARLEY_TRY(m.get_str("g", &out->group_id, true));
  PARLEY_TRY(m.get_u64("id", &out->msg_id, true));
  PARLEY_TRY(m.get_u64("prev", &out->prev_msg_id, true));
  PARLEY_TRY(m.get_i64("ts", &out->timestamp_ms, true));
  PARLEY_TRY(m.get_str("u", &out->user_id, true));
  PARLEY_TRY(m.get_str("c", &out->contents, true));
  PARLEY_TRY(m.get_u64("ep", &out->epoch, false));
  PARLEY_TRY(read_entry_fields(m, &out->entry));
  PARLEY_TRY(m.get_bool("del", &out->deleted, false));
  return m.get_str("cid", &out->client_msg_id, false);
}

// What a folded answer adds to a message map: "ed" (the latest edit's id),
// "rx" ([{k, n, me}] per reaction key) and "nr" (replies), each only when
// not at its default.
inline uint32_t fold_field_count(const Fold& f) {
  return (f.edited != 0) + !f.reactions.empty() + (f.replies != 0);
}

template <typename W>
void write_fold_fields(W& w, const Fold& f) {
  if (f.edited != 0) w.key("ed"), w.u64(f.edited);
  if (!f.reactions.empty()) {
    w.key("rx"), w.begin_array(static_cast<uint32_t>(f.reactions.size()));
    for (const ReactionCount& r : f.reactions) {
      w.begin_map(2 + r.mine);
      w.key("k"), w.str(r.key);
      w.key("n"), w.u64(r.count);
      if (r.mine) w.key("me"), w.boolean(true);
      w.end_map();
    }
    w.end_array();
  }
  if (f.replies != 0) w.key("nr"), w.u64(f.replies);
}

template <typename V>
Status read_fold_fields(const V& m, Fold* f) {
  PARLEY_TRY(m.get_u64("ed", &f->edited, false));
  PARLEY_TRY(m.get_u64("nr", &f->replies, false));
  return m.for_each_map("rx", [f](const V& r) {
    ReactionCount c;
    PARLEY_TRY(r.get_str("k", &c.key, true));
    PARLEY_TRY(r.get_u64("n", &c.count, true));
    PARLEY_TRY(r.get_bool("me", &c.mine, false));
    f->reactions.push_back(std::move(c));
    return Status::ok();
  }, false);
}

// The frame type of a send request of each kind.
inline const char* send_type(EntryKind kind) {
  switch (kind) {
    case EntryKind::kMessage: return "send";
    case EntryKind::kEdit: return "edit";
    case EntryKind::kDelete: return "delete";
    case EntryKind::kReaction: return "react";
    case EntryKind::kJoin:
    case EntryKind::kLeave:
    case EntryKind::kRemoved:
    case EntryKind::kSystem: break;  // the host's, never a client's request
  }
  return "send";
}

constexpr uint32_t kReadStateFields = 6;

template <typename W>
void write_read_state(W& w, const ReadState& r) {
  w.key("g"), w.str(r.group_id);
  w.key("epoch"), w.u64(r.epoch);
  w.key("id"), w.u64(r.msg_id);
  w.key("head"), w.u64(r.head);
  w.key("unread"), w.u64(r.unread);
  w.key("mn"), w.u64(r.mentions);
}

template <typename V>
Status read_read_state(const V& m, ReadState* out) {
  PARLEY_TRY(m.get_str("g", &out->group_id, true));
  PARLEY_TRY(m.get_u64("epoch", &out->epoch, true));
  PARLEY_TRY(m.get_u64("id", &out->msg_id, true));
  PARLEY_TRY(m.get_u64("head", &out->head, true));
  PARLEY_TRY(m.get_u64("unread", &out->unread, true));
  return m.get_u64("mn", &out->mentions, true);
}

template <typename W>
struct EventWriter {
  W& w;
  void operator()(const AckEv& e) {
    w.begin("ack", 7);
    w.key("rid"), w.u64(e.rid);
    w.key("g"), w.str(e.group_id);
    w.key("cid"), w.str(e.client_msg_id);
    w.key("id"), w.u64(e.msg_id);
    w.key("ts"), w.i64(e.timestamp_ms);
    w.key("dup"), w.boolean(e.duplicate);
    w.key("ep"), w.u64(e.epoch);
    w.end();
  }
  void operator()(const MessageEv& e) {
    w.begin("msg", message_fields(*e.message) + (e.fold ? fold_field_count(*e.fold) : 0));
    write_message_fields(w, *e.message);
    if (e.fold) write_fold_fields(w, *e.fold);
    w.end();
  }
  void operator()(const ResumedEv& e) {
    w.begin("resumed", 5);
    w.key("rid"), w.u64(e.rid);
    w.key("g"), w.str(e.group_id);
    w.key("head"), w.u64(e.head);
    w.key("epoch"), w.u64(e.epoch);
    w.key("mode"), w.str(delivery_mode_name(e.mode));
    w.end();
  }
  void operator()(const PullResultEv& e) {
    w.begin("pulled", e.folded ? 7 : 5);
    w.key("rid"), w.u64(e.rid);
    w.key("g"), w.str(e.group_id);
    w.key("head"), w.u64(e.head);
    w.key("epoch"), w.u64(e.epoch);
    if (e.folded) {
      w.key("fold"), w.boolean(true);
      w.key("to"), w.u64(e.to);
    }
    w.key("msgs"), w.begin_array(static_cast<uint32_t>(e.messages.size()));
    for (size_t i = 0; i < e.messages.size(); ++i) {
      const Message& m = *e.messages[i];
      const Fold* f = e.folded && i < e.folds.size() ? &e.folds[i] : nullptr;
      w.begin_map(message_fields(m) + (f != nullptr ? fold_field_count(*f) : 0));
      write_message_fields(w, m);
      if (f != nullptr) write_fold_fields(w, *f);
      w.end_map();
    }
    w.end_array();
    w.end();
  }
  void operator()(const ModeEv& e) {
    w.begin("mode", 3);
    w.key("g"), w.str(e.group_id);
    w.key("mode"), w.str(delivery_mode_name(e.mode));
    w.key("head"), w.u64(e.head);
    w.end();
  }
  void operator()(const PullHintEv& e) {
    w.begin("hint", 2);
    w.key("g"), w.str(e.group_id);
    w.key("head"), w.u64(e.head);
    w.end();
  }
  void operator()(const PresenceEv& e) {
    w.begin("presence", 5);
    w.key("u"), w.str(e.user_id);
    w.key("g"), w.str(e.group_id);
    w.key("status"), w.str(presence_status_name(e.status));
    w.key("typing"), w.boolean(e.typing);
    w.key("exp"), w.i64(e.expires_at_ms);
    w.end();
  }
  void operator()(const EpochEv& e) {
    w.begin("epoch", 3);
    w.key("g"), w.str(e.group_id);
    w.key("epoch"), w.u64(e.epoch);
    w.key("head"), w.u64(e.head);
    w.end();
  }
  void operator()(const FellBehindEv& e) {
    w.begin("behind", 1);
    w.key("queued"), w.u64(e.queued_bytes);
    w.end();
  }
  void operator()(const ReadEv& e) {
    w.begin("read", 1 + kReadStateFields);
    w.key("rid"), w.u64(e.rid);
    write_read_state(w, e.state);
    w.end();
  }
  void operator()(const ReceiptEv& e) {
    w.begin("receipt", 4);
    w.key("g"), w.str(e.group_id);
    w.key("u"), w.str(e.user_id);
    w.key("epoch"), w.u64(e.epoch);
    w.key("id"), w.u64(e.msg_id);
    w.end();
  }
  void operator()(const UnreadEv& e) {
    w.begin("unread", 2);
    w.key("rid"), w.u64(e.rid);
    w.key("groups"), w.begin_array(static_cast<uint32_t>(e.groups.size()));
    for (const ReadState& r : e.groups) {
      w.begin_map(kReadStateFields);
      write_read_state(w, r);
      w.end_map();
    }
    w.end_array();
    w.end();
  }
  void operator()(const NotifyEv& e) {
    w.begin("notify", 3);
    w.key("rid"), w.u64(e.rid);
    w.key("g"), w.str(e.group_id);
    w.key("level"), w.str(notify_level_name(e.level));
    w.end();
  }
  void operator()(const ErrorEv& e) {
    w.begin("error", 6 + (e.retry_after_ms != 0 ? 1 : 0) + (e.about.empty() ? 0 : 1));
    w.key("rid"), w.u64(e.rid);
    w.key("code"), w.i64(static_cast<int>(e.code));
    w.key("name"), w.str(code_name(e.code));
    w.key("msg"), w.str(e.message);
    w.key("g"), w.str(e.group_id);
    w.key("cid"), w.str(e.client_msg_id);
    if (e.retry_after_ms != 0) w.key("retry_after_ms"), w.u64(e.retry_after_ms);
    if (!e.about.empty()) w.key("about"), w.str(e.about);
    w.end();
  }
};

template <typename W>
struct RequestWriter {
  W& w;
  void operator()(const SendReq& r) {
    w.begin(send_type(r.entry.kind), 4 + entry_field_count(r.entry, false) + (r.epoch != 0 ? 1 : 0));
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    w.key("cid"), w.str(r.client_msg_id);
    w.key("c"), w.bytes(r.contents);
    write_entry_fields(w, r.entry, false);
    if (r.epoch != 0) w.key("epoch"), w.u64(r.epoch);
    w.end();
  }
  void operator()(const ResumeReq& r) {
    w.begin("resume", 4);
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    w.key("after"), w.u64(r.after);
    w.key("epoch"), w.u64(r.epoch);
    w.end();
  }
  void operator()(const UnsubscribeReq& r) {
    w.begin("unsub", 2);
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    w.end();
  }
  void operator()(const PullReq& r) {
    w.begin("pull", 5 + r.fold);
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    w.key("after"), w.u64(r.after);
    w.key("limit"), w.u64(r.limit);
    w.key("epoch"), w.u64(r.epoch);
    if (r.fold) w.key("fold"), w.boolean(true);
    w.end();
  }
  void operator()(const TypingReq& r) {
    w.begin("typing", 2);
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    w.end();
  }
  void operator()(const PresenceReq& r) {
    w.begin("presence", r.receipts ? 4 : 3);
    w.key("rid"), w.u64(r.rid);
    w.key("status"), w.str(presence_status_name(r.status));
    w.key("sub"), w.boolean(r.subscribe);
    if (r.receipts) w.key("receipts"), w.boolean(true);
    w.end();
  }
  void operator()(const ReadReq& r) {
    w.begin("read", 4);
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    w.key("id"), w.u64(r.msg_id);
    w.key("epoch"), w.u64(r.epoch);
    w.end();
  }
  void operator()(const UnreadReq& r) {
    w.begin("unread", r.group_ids.empty() ? 1 : 2);
    w.key("rid"), w.u64(r.rid);
    if (!r.group_ids.empty()) {
      w.key("gs"), w.begin_array(static_cast<uint32_t>(r.group_ids.size()));
      for (const std::string& g : r.group_ids) w.str(g);
      w.end_array();
    }
    w.end();
  }
  void operator()(const NotifyReq& r) {
    w.begin("notify", r.level ? 3 : 2);
    w.key("rid"), w.u64(r.rid);
    w.key("g"), w.str(r.group_id);
    if (r.level) w.key("level"), w.str(notify_level_name(*r.level));
    w.end();
  }
};

// Best effort: the ids of a request map that failed to decode (ids over
// their limit are not echoed).
template <typename V>
void peek_request_ids(const V& m, const Limits& limits, uint64_t* rid, std::string* group_id,
                      std::string* client_msg_id) {
  uint64_t r = 0;
  std::string s;
  if (m.get_u64("rid", &r, true)) *rid = r;
  if (m.get_str("g", &s, true) && s.size() <= limits.max_id_bytes) *group_id = s;
  if (m.get_str("cid", &s, true) && s.size() <= limits.max_id_bytes) *client_msg_id = s;
}

template <typename V>
Result<ClientRequest> decode_request_map(const V& m, const Limits& limits) {
  std::string type;
  PARLEY_TRY(m.get_str("t", &type, true));
  uint64_t rid = 0;
  PARLEY_TRY(m.get_u64("rid", &rid, false));
  if (type == "send" || type == "edit" || type == "delete" || type == "react") {
    SendReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    PARLEY_TRY(m.get_str("cid", &r.client_msg_id, false));
    PARLEY_TRY(m.get_str("c", &r.contents, type != "delete"));
    PARLEY_TRY(read_entry_fields(m, &r.entry));
    PARLEY_TRY(m.get_u64("epoch", &r.epoch, false));
    r.entry.kind = type == "send"     ? EntryKind::kMessage
             : type == "edit"   ? EntryKind::kEdit
             : type == "delete" ? EntryKind::kDelete
                                : EntryKind::kReaction;
    return ClientRequest(std::move(r));
  }
  if (type == "resume") {
    ResumeReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    PARLEY_TRY(m.get_u64("after", &r.after, false));
    PARLEY_TRY(m.get_u64("epoch", &r.epoch, false));
    return ClientRequest(std::move(r));
  }
  if (type == "unsub") {
    UnsubscribeReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    return ClientRequest(std::move(r));
  }
  if (type == "pull") {
    PullReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    PARLEY_TRY(m.get_u64("after", &r.after, false));
    PARLEY_TRY(m.get_u64("epoch", &r.epoch, false));
    PARLEY_TRY(m.get_bool("fold", &r.fold, false));
    uint64_t limit = r.limit;
    PARLEY_TRY(m.get_u64("limit", &limit, false));
    if (limit == 0 || limit > limits.max_read_limit) {
      return error(Code::kInvalidArgument, fmt::format("limit must be 1..{}", limits.max_read_limit));
    }
    r.limit = static_cast<uint32_t>(limit);
    return ClientRequest(std::move(r));
  }
  if (type == "typing") {
    TypingReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    return ClientRequest(std::move(r));
  }
  if (type == "presence") {
    PresenceReq r;
    r.rid = rid;
    std::string status = "online";
    PARLEY_TRY(m.get_str("status", &status, false));
    PARLEY_TRY(parse_status(status, &r.status));
    if (r.status == PresenceStatus::kOffline) {
      return error(Code::kInvalidArgument, "status must be online or away");
    }
    PARLEY_TRY(m.get_bool("sub", &r.subscribe, false));
    PARLEY_TRY(m.get_bool("receipts", &r.receipts, false));
    return ClientRequest(std::move(r));
  }
  if (type == "read") {
    ReadReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    PARLEY_TRY(m.get_u64("id", &r.msg_id, true));
    PARLEY_TRY(m.get_u64("epoch", &r.epoch, true));
    if (r.epoch == 0) return error(Code::kInvalidArgument, "epoch must be the group's epoch, not 0");
    return ClientRequest(std::move(r));
  }
  if (type == "unread") {
    UnreadReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_strs("gs", &r.group_ids, false));
    if (r.group_ids.size() > limits.max_unread_groups) {
      return error(Code::kTooLarge, fmt::format("at most {} groups in one unread request", limits.max_unread_groups));
    }
    return ClientRequest(std::move(r));
  }
  if (type == "notify") {
    NotifyReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    std::string level;
    PARLEY_TRY(m.get_str("level", &level, false));
    if (!level.empty()) {
      r.level.emplace();
      PARLEY_TRY(parse_level(level, &*r.level));
    }
    return ClientRequest(std::move(r));
  }
  return error(Code::kInvalidArgument, fmt::format("unknown request type '{}'", type));
}

template <typename V>
Result<ServerEvent> decode_event_map(const V& m) {
  std::string type;
  PARLEY_TRY(m.get_str("t", &type, true));
  if (type == "msg") {
    auto msg = std::make_shared<Message>();
    PARLEY_TRY(read_message_fields(m, msg.get()));
    auto fold = std::make_shared<Fold>();
    PARLEY_TRY(read_fold_fields(m, fold.get()));
    if (*fold == Fold{}) fold = nullptr;
    return ServerEvent(MessageEv{std::move(msg), std::move(fold)});
  }
  if (type == "ack") {
    AckEv e;
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    PARLEY_TRY(m.get_str("g", &e.group_id, true));
    PARLEY_TRY(m.get_str("cid", &e.client_msg_id, false));
    PARLEY_TRY(m.get_u64("id", &e.msg_id, true));
    PARLEY_TRY(m.get_i64("ts", &e.timestamp_ms, false));
    PARLEY_TRY(m.get_bool("dup", &e.duplicate, false));
    PARLEY_TRY(m.get_u64("ep", &e.epoch, false));
    return ServerEvent(std::move(e));
  }
  if (type == "resumed") {
    ResumedEv e;
    std::string mode = "push";
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    PARLEY_TRY(m.get_str("g", &e.group_id, true));
    PARLEY_TRY(m.get_u64("head", &e.head, true));
    PARLEY_TRY(m.get_u64("epoch", &e.epoch, true));
    PARLEY_TRY(m.get_str("mode", &mode, false));
    PARLEY_TRY(parse_mode(mode, &e.mode));
    return ServerEvent(std::move(e));
  }
  if (type == "pulled") {
    PullResultEv e;
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    PARLEY_TRY(m.get_str("g", &e.group_id, true));
    PARLEY_TRY(m.get_u64("head", &e.head, true));
    PARLEY_TRY(m.get_u64("epoch", &e.epoch, false));
    PARLEY_TRY(m.get_bool("fold", &e.folded, false));
    PARLEY_TRY(m.get_u64("to", &e.to, false));
    Status each = m.for_each_map("msgs", [&e](const V& mm) {
      auto msg = std::make_shared<Message>();
      PARLEY_TRY(read_message_fields(mm, msg.get()));
      e.messages.push_back(std::move(msg));
      if (!e.folded) return Status::ok();
      e.folds.emplace_back();
      return read_fold_fields(mm, &e.folds.back());
    });
    if (!each) return each;
    return ServerEvent(std::move(e));
  }
  if (type == "mode" || type == "hint" || type == "epoch") {
    std::string g;
    uint64_t head = 0;
    PARLEY_TRY(m.get_str("g", &g, true));
    PARLEY_TRY(m.get_u64("head", &head, true));
    if (type == "hint") return ServerEvent(PullHintEv{g, head});
    if (type == "epoch") {
      EpochEv e{g, 0, head};
      PARLEY_TRY(m.get_u64("epoch", &e.epoch, true));
      return ServerEvent(std::move(e));
    }
    ModeEv e{g, DeliveryMode::kPush, head};
    std::string mode;
    PARLEY_TRY(m.get_str("mode", &mode, true));
    PARLEY_TRY(parse_mode(mode, &e.mode));
    return ServerEvent(std::move(e));
  }
  if (type == "presence") {
    PresenceEv e;
    std::string status;
    PARLEY_TRY(m.get_str("u", &e.user_id, true));
    PARLEY_TRY(m.get_str("g", &e.group_id, false));
    PARLEY_TRY(m.get_str("status", &status, true));
    PARLEY_TRY(parse_status(status, &e.status));
    PARLEY_TRY(m.get_bool("typing", &e.typing, false));
    PARLEY_TRY(m.get_i64("exp", &e.expires_at_ms, false));
    return ServerEvent(std::move(e));
  }
  if (type == "behind") {
    FellBehindEv e;
    PARLEY_TRY(m.get_u64("queued", &e.queued_bytes, false));
    return ServerEvent(e);
  }
  if (type == "error") {
    ErrorEv e;
    int64_t code = 0;
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    PARLEY_TRY(m.get_i64("code", &code, true));
    e.code = static_cast<Code>(code);
    PARLEY_TRY(m.get_str("msg", &e.message, false));
    PARLEY_TRY(m.get_str("g", &e.group_id, false));
    PARLEY_TRY(m.get_str("cid", &e.client_msg_id, false));
    PARLEY_TRY(m.get_u64("retry_after_ms", &e.retry_after_ms, false));
    PARLEY_TRY(m.get_str("about", &e.about, false));
    return ServerEvent(std::move(e));
  }
  if (type == "read") {
    ReadEv e;
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    PARLEY_TRY(read_read_state(m, &e.state));
    return ServerEvent(std::move(e));
  }
  if (type == "receipt") {
    ReceiptEv e;
    PARLEY_TRY(m.get_str("g", &e.group_id, true));
    PARLEY_TRY(m.get_str("u", &e.user_id, true));
    PARLEY_TRY(m.get_u64("epoch", &e.epoch, true));
    PARLEY_TRY(m.get_u64("id", &e.msg_id, true));
    return ServerEvent(std::move(e));
  }
  if (type == "unread") {
    UnreadEv e;
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    Status each = m.for_each_map("groups", [&e](const V& g) {
      ReadState r;
      PARLEY_TRY(read_read_state(g, &r));
      e.groups.push_back(std::move(r));
      return Status::ok();
    });
    if (!each) return each;
    return ServerEvent(std::move(e));
  }
  if (type == "notify") {
    NotifyEv e;
    std::string level;
    PARLEY_TRY(m.get_u64("rid", &e.rid, false));
    PARLEY_TRY(m.get_str("g", &e.group_id, true));
    PARLEY_TRY(m.get_str("level", &level, true));
    PARLEY_TRY(parse_level(level, &e.level));
    return ServerEvent(std::move(e));
  }
  return error(Code::kInvalidArgument, fmt::format("unknown event type '{}'", type));
}

}  // namespace parley::detail
