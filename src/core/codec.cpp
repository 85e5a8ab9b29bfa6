// The msgpack client codec. Each frame is one msgpack map whose "t" key names
// the type; field keys are short. docs/protocol-core.md lists them.
#include <msgpack.hpp>

#include <fmt/format.h>

#include "core/msgpack_util.hpp"
#include "core/util.hpp"
#include "parley/protocol.hpp"

namespace parley {

const char* delivery_mode_name(DeliveryMode mode) {
  return mode == DeliveryMode::kPull ? "pull" : "push";
}

const char* presence_status_name(PresenceStatus status) {
  switch (status) {
    case PresenceStatus::kOffline: return "offline";
    case PresenceStatus::kOnline: return "online";
    case PresenceStatus::kAway: return "away";
  }
  return "offline";
}

namespace detail {

Status unpack_one(const void* data, size_t size, const msgpack::unpack_limit& limit,
                  msgpack::object_handle* out) {
  try {
    size_t off = 0;
    *out = msgpack::unpack(static_cast<const char*>(data), size, off, nullptr, nullptr, limit);
    if (off != size) return error(Code::kInvalidArgument, "trailing bytes after the frame");
    return Status::ok();
  } catch (const std::exception& e) {
    return error(Code::kInvalidArgument, fmt::format("malformed msgpack: {}", e.what()));
  } catch (...) {
    return error(Code::kInvalidArgument, "malformed msgpack");
  }
}

const msgpack::object* MapView::find(std::string_view key) const {
  for (uint32_t i = 0; i < o_.via.map.size; ++i) {
    const msgpack::object& k = o_.via.map.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &o_.via.map.ptr[i].val;
    }
  }
  return nullptr;
}

namespace {
Status missing(std::string_view key) {
  return error(Code::kInvalidArgument, fmt::format("field '{}' is missing", key));
}
Status wrong_type(std::string_view key, const char* want) {
  return error(Code::kInvalidArgument, fmt::format("field '{}' must be {}", key, want));
}
}  // namespace

Status MapView::get_str(std::string_view key, std::string* out, bool required) const {
  const msgpack::object* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (v->type == msgpack::type::STR) {
    out->assign(v->via.str.ptr, v->via.str.size);
  } else if (v->type == msgpack::type::BIN) {
    out->assign(v->via.bin.ptr, v->via.bin.size);
  } else {
    return wrong_type(key, "a string");
  }
  return Status::ok();
}

Status MapView::get_u64(std::string_view key, uint64_t* out, bool required) const {
  const msgpack::object* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (v->type != msgpack::type::POSITIVE_INTEGER) return wrong_type(key, "a non-negative integer");
  *out = v->via.u64;
  return Status::ok();
}

Status MapView::get_i64(std::string_view key, int64_t* out, bool required) const {
  const msgpack::object* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (v->type == msgpack::type::POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
    *out = static_cast<int64_t>(v->via.u64);
  } else if (v->type == msgpack::type::NEGATIVE_INTEGER) {
    *out = v->via.i64;
  } else {
    return wrong_type(key, "an integer");
  }
  return Status::ok();
}

Status MapView::get_bool(std::string_view key, bool* out, bool required) const {
  const msgpack::object* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (v->type != msgpack::type::BOOLEAN) return wrong_type(key, "a boolean");
  *out = v->via.boolean;
  return Status::ok();
}

}  // namespace detail

namespace {

using detail::MapView;
using detail::pack_bin;
using detail::pack_str;
using Packer = msgpack::packer<detail::StringBuffer>;

void pack_message_fields(Packer& pk, const Message& m) {
  pack_str(pk, "g"), pack_str(pk, m.group_id);
  pack_str(pk, "id"), pk.pack_uint64(m.msg_id);
  pack_str(pk, "prev"), pk.pack_uint64(m.prev_msg_id);
  pack_str(pk, "ts"), pk.pack_int64(m.timestamp_ms);
  pack_str(pk, "u"), pack_str(pk, m.user_id);
  pack_str(pk, "c"), pack_bin(pk, m.contents);
  pack_str(pk, "cid"), pack_str(pk, m.client_msg_id);
  pack_str(pk, "ep"), pk.pack_uint64(m.epoch);
}
constexpr uint32_t kMessageFields = 8;

Status read_message_fields(const MapView& m, Message* out) {
  PARLEY_TRY(m.get_str("g", &out->group_id, true));
  PARLEY_TRY(m.get_u64("id", &out->msg_id, true));
  PARLEY_TRY(m.get_u64("prev", &out->prev_msg_id, true));
  PARLEY_TRY(m.get_i64("ts", &out->timestamp_ms, true));
  PARLEY_TRY(m.get_str("u", &out->user_id, true));
  PARLEY_TRY(m.get_str("c", &out->contents, true));
  PARLEY_TRY(m.get_u64("ep", &out->epoch, false));
  return m.get_str("cid", &out->client_msg_id, false);
}

void begin(Packer& pk, const char* type, uint32_t fields) {
  pk.pack_map(fields + 1);
  pack_str(pk, "t"), pack_str(pk, type);
}

struct EventEncoder {
  Packer& pk;
  void operator()(const AckEv& e) {
    begin(pk, "ack", 7);
    pack_str(pk, "rid"), pk.pack_uint64(e.rid);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "cid"), pack_str(pk, e.client_msg_id);
    pack_str(pk, "id"), pk.pack_uint64(e.msg_id);
    pack_str(pk, "ts"), pk.pack_int64(e.timestamp_ms);
    pack_str(pk, "dup"), e.duplicate ? pk.pack_true() : pk.pack_false();
    pack_str(pk, "ep"), pk.pack_uint64(e.epoch);
  }
  void operator()(const MessageEv& e) {
    begin(pk, "msg", kMessageFields);
    pack_message_fields(pk, *e.message);
  }
  void operator()(const ResumedEv& e) {
    begin(pk, "resumed", 5);
    pack_str(pk, "rid"), pk.pack_uint64(e.rid);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "head"), pk.pack_uint64(e.head);
    pack_str(pk, "epoch"), pk.pack_uint64(e.epoch);
    pack_str(pk, "mode"), pack_str(pk, delivery_mode_name(e.mode));
  }
  void operator()(const PullResultEv& e) {
    begin(pk, "pulled", 4);
    pack_str(pk, "rid"), pk.pack_uint64(e.rid);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "head"), pk.pack_uint64(e.head);
    pack_str(pk, "msgs"), pk.pack_array(static_cast<uint32_t>(e.messages.size()));
    for (const MessagePtr& m : e.messages) {
      pk.pack_map(kMessageFields);
      pack_message_fields(pk, *m);
    }
  }
  void operator()(const ModeEv& e) {
    begin(pk, "mode", 3);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "mode"), pack_str(pk, delivery_mode_name(e.mode));
    pack_str(pk, "head"), pk.pack_uint64(e.head);
  }
  void operator()(const PullHintEv& e) {
    begin(pk, "hint", 2);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "head"), pk.pack_uint64(e.head);
  }
  void operator()(const PresenceEv& e) {
    begin(pk, "presence", 5);
    pack_str(pk, "u"), pack_str(pk, e.user_id);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "status"), pack_str(pk, presence_status_name(e.status));
    pack_str(pk, "typing"), e.typing ? pk.pack_true() : pk.pack_false();
    pack_str(pk, "exp"), pk.pack_int64(e.expires_at_ms);
  }
  void operator()(const EpochEv& e) {
    begin(pk, "epoch", 3);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "epoch"), pk.pack_uint64(e.epoch);
    pack_str(pk, "head"), pk.pack_uint64(e.head);
  }
  void operator()(const FellBehindEv& e) {
    begin(pk, "behind", 1);
    pack_str(pk, "queued"), pk.pack_uint64(e.queued_bytes);
  }
  void operator()(const ErrorEv& e) {
    begin(pk, "error", 6);
    pack_str(pk, "rid"), pk.pack_uint64(e.rid);
    pack_str(pk, "code"), pk.pack_int(static_cast<int>(e.code));
    pack_str(pk, "name"), pack_str(pk, code_name(e.code));
    pack_str(pk, "msg"), pack_str(pk, e.message);
    pack_str(pk, "g"), pack_str(pk, e.group_id);
    pack_str(pk, "cid"), pack_str(pk, e.client_msg_id);
  }
};

struct RequestEncoder {
  Packer& pk;
  void operator()(const SendReq& r) {
    begin(pk, "send", 4);
    pack_str(pk, "rid"), pk.pack_uint64(r.rid);
    pack_str(pk, "g"), pack_str(pk, r.group_id);
    pack_str(pk, "cid"), pack_str(pk, r.client_msg_id);
    pack_str(pk, "c"), pack_bin(pk, r.contents);
  }
  void operator()(const ResumeReq& r) {
    begin(pk, "resume", 4);
    pack_str(pk, "rid"), pk.pack_uint64(r.rid);
    pack_str(pk, "g"), pack_str(pk, r.group_id);
    pack_str(pk, "after"), pk.pack_uint64(r.after);
    pack_str(pk, "epoch"), pk.pack_uint64(r.epoch);
  }
  void operator()(const UnsubscribeReq& r) {
    begin(pk, "unsub", 2);
    pack_str(pk, "rid"), pk.pack_uint64(r.rid);
    pack_str(pk, "g"), pack_str(pk, r.group_id);
  }
  void operator()(const PullReq& r) {
    begin(pk, "pull", 5);
    pack_str(pk, "rid"), pk.pack_uint64(r.rid);
    pack_str(pk, "g"), pack_str(pk, r.group_id);
    pack_str(pk, "after"), pk.pack_uint64(r.after);
    pack_str(pk, "limit"), pk.pack_uint32(r.limit);
    pack_str(pk, "epoch"), pk.pack_uint64(r.epoch);
  }
  void operator()(const TypingReq& r) {
    begin(pk, "typing", 2);
    pack_str(pk, "rid"), pk.pack_uint64(r.rid);
    pack_str(pk, "g"), pack_str(pk, r.group_id);
  }
  void operator()(const PresenceReq& r) {
    begin(pk, "presence", 3);
    pack_str(pk, "rid"), pk.pack_uint64(r.rid);
    pack_str(pk, "status"), pack_str(pk, presence_status_name(r.status));
    pack_str(pk, "sub"), r.subscribe ? pk.pack_true() : pk.pack_false();
  }
};

Status parse_mode(const std::string& s, DeliveryMode* out) {
  if (s == "push")
    *out = DeliveryMode::kPush;
  else if (s == "pull")
    *out = DeliveryMode::kPull;
  else
    return error(Code::kInvalidArgument, fmt::format("unknown mode '{}'", s));
  return Status::ok();
}

Status parse_status(const std::string& s, PresenceStatus* out) {
  if (s == "online")
    *out = PresenceStatus::kOnline;
  else if (s == "away")
    *out = PresenceStatus::kAway;
  else if (s == "offline")
    *out = PresenceStatus::kOffline;
  else
    return error(Code::kInvalidArgument, fmt::format("unknown presence status '{}'", s));
  return Status::ok();
}

Result<ClientRequest> decode_request_map(const MapView& m, const Limits& limits) {
  std::string type;
  PARLEY_TRY(m.get_str("t", &type, true));
  uint64_t rid = 0;
  PARLEY_TRY(m.get_u64("rid", &rid, false));
  if (type == "send") {
    SendReq r;
    r.rid = rid;
    PARLEY_TRY(m.get_str("g", &r.group_id, true));
    PARLEY_TRY(m.get_str("cid", &r.client_msg_id, false));
    PARLEY_TRY(m.get_str("c", &r.contents, true));
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
    return ClientRequest(std::move(r));
  }
  return error(Code::kInvalidArgument, fmt::format("unknown request type '{}'", type));
}

Result<ServerEvent> decode_event_map(const MapView& m) {
  std::string type;
  PARLEY_TRY(m.get_str("t", &type, true));
  if (type == "msg") {
    auto msg = std::make_shared<Message>();
    PARLEY_TRY(read_message_fields(m, msg.get()));
    return ServerEvent(MessageEv{std::move(msg)});
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
    const msgpack::object* msgs = m.find("msgs");
    if (!msgs || msgs->type != msgpack::type::ARRAY) {
      return error(Code::kInvalidArgument, "field 'msgs' must be an array");
    }
    for (uint32_t i = 0; i < msgs->via.array.size; ++i) {
      MapView mm(msgs->via.array.ptr[i]);
      if (!mm.valid()) return error(Code::kInvalidArgument, "a message must be a map");
      auto msg = std::make_shared<Message>();
      PARLEY_TRY(read_message_fields(mm, msg.get()));
      e.messages.push_back(std::move(msg));
    }
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
    return ServerEvent(std::move(e));
  }
  return error(Code::kInvalidArgument, fmt::format("unknown event type '{}'", type));
}

class MsgpackCodec final : public ClientCodec {
 public:
  Result<ClientRequest> decode_request(const void* data, size_t size, const Limits& limits) const override {
    size_t max_frame = limits.max_contents_bytes + 4 * limits.max_id_bytes + 256;
    if (size > max_frame) {
      return error(Code::kTooLarge, fmt::format("frame is {} bytes; the limit is {}", size, max_frame));
    }
    msgpack::object_handle oh;
    PARLEY_TRY(detail::unpack_one(data, size, detail::untrusted_limit(16, max_frame), &oh));
    MapView m(oh.get());
    if (!m.valid()) return error(Code::kInvalidArgument, "a request must be a msgpack map");
    return decode_request_map(m, limits);
  }

  std::string encode_event(const ServerEvent& event) const override {
    detail::StringBuffer buf;
    Packer pk(buf);
    std::visit(EventEncoder{pk}, event);
    return std::move(buf.data);
  }

  std::string encode_request(const ClientRequest& request) const override {
    detail::StringBuffer buf;
    Packer pk(buf);
    std::visit(RequestEncoder{pk}, request);
    return std::move(buf.data);
  }

  Result<ServerEvent> decode_event(const void* data, size_t size) const override {
    msgpack::object_handle oh;
    PARLEY_TRY(detail::unpack_one(data, size, detail::untrusted_limit(1u << 20, 1u << 30), &oh));
    MapView m(oh.get());
    if (!m.valid()) return error(Code::kInvalidArgument, "an event must be a msgpack map");
    return decode_event_map(m);
  }
};

}  // namespace

std::unique_ptr<ClientCodec> make_msgpack_codec() {
  return std::make_unique<MsgpackCodec>();
}

}  // namespace parley
