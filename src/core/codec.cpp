// The msgpack client codec. Each frame is one msgpack map whose "t" key names
// the type; field keys are short. docs/protocol-core.md lists them.
#include <msgpack.hpp>

#include <algorithm>

#include <fmt/format.h>

#include "core/codec_schema.hpp"
#include "core/msgpack_util.hpp"
#include "core/utf8.hpp"
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

const char* notify_level_name(NotifyLevel level) {
  switch (level) {
    case NotifyLevel::kAll: return "all";
    case NotifyLevel::kMentions: return "mentions";
    case NotifyLevel::kNone: return "none";
  }
  return "all";
}

bool parse_notify_level(const std::string& name, NotifyLevel* level) {
  for (NotifyLevel l : {NotifyLevel::kAll, NotifyLevel::kMentions, NotifyLevel::kNone}) {
    if (name == notify_level_name(l)) {
      *level = l;
      return true;
    }
  }
  return false;
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
  // Text on every codec (docs/decisions.md 37): bytes that are not UTF-8
  // could not be passed on to a JSON client.
  if (!is_utf8(*out)) {
    return error(Code::kInvalidArgument, fmt::format("field '{}' is not UTF-8", key));
  }
  return Status::ok();
}

Status MapView::get_strs(std::string_view key, std::vector<std::string>* out, bool required) const {
  const msgpack::object* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (v->type != msgpack::type::ARRAY) return wrong_type(key, "an array of strings");
  out->clear();
  for (uint32_t i = 0; i < v->via.array.size; ++i) {
    const msgpack::object& e = v->via.array.ptr[i];
    if (e.type != msgpack::type::STR) return wrong_type(key, "an array of strings");
    out->emplace_back(e.via.str.ptr, e.via.str.size);
    if (!is_utf8(out->back())) {
      return error(Code::kInvalidArgument, fmt::format("an element of '{}' is not UTF-8", key));
    }
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

namespace detail {

Status parse_mode(const std::string& s, DeliveryMode* out) {
  if (s == "push")
    *out = DeliveryMode::kPush;
  else if (s == "pull")
    *out = DeliveryMode::kPull;
  else
    return error(Code::kInvalidArgument, fmt::format("unknown mode '{}'", s));
  return Status::ok();
}

Status parse_entry_kind(const std::string& s, EntryKind* out) {
  for (EntryKind k : {EntryKind::kMessage, EntryKind::kEdit, EntryKind::kDelete, EntryKind::kReaction, EntryKind::kJoin,
                      EntryKind::kLeave, EntryKind::kRemoved, EntryKind::kSystem}) {
    if (s == entry_kind_name(k)) {
      *out = k;
      return Status::ok();
    }
  }
  return error(Code::kInvalidArgument, fmt::format("unknown entry kind '{}'", s));
}

Status parse_level(const std::string& s, NotifyLevel* out) {
  if (parse_notify_level(s, out)) return Status::ok();
  return error(Code::kInvalidArgument, fmt::format("unknown notification level '{}' (all, mentions or none)", s));
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

}  // namespace detail

namespace {

using detail::MapView;

// The schema's Writer over a msgpack packer (maps know their size up front).
class MsgpackWriter {
 public:
  void begin(const char* type, uint32_t fields) {
    pk_.pack_map(fields + 1);
    key("t"), str(type);
  }
  void end() {}
  void begin_map(uint32_t fields) { pk_.pack_map(fields); }
  void end_map() {}
  void begin_array(uint32_t n) { pk_.pack_array(n); }
  void end_array() {}
  void key(std::string_view k) { detail::pack_str(pk_, k); }
  // Text only, whatever the caller or a store handed over (see utf8.hpp).
  void str(std::string_view s) { detail::pack_str(pk_, detail::utf8_or_replaced(s, &scratch_)); }
  void bytes(std::string_view s) { detail::pack_bin(pk_, detail::utf8_or_replaced(s, &scratch_)); }
  void json(std::string_view s) { str(s); }  // JSON text as a string
  void u64(uint64_t v) { pk_.pack_uint64(v); }
  void i64(int64_t v) { pk_.pack_int64(v); }
  void boolean(bool b) { b ? pk_.pack_true() : pk_.pack_false(); }
  std::string take() { return std::move(buf_.data); }

 private:
  detail::StringBuffer buf_;
  msgpack::packer<detail::StringBuffer> pk_{buf_};
  std::string scratch_;
};

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
    return detail::decode_request_map(m, limits);
  }

  void peek_ids(const void* data, size_t size, const Limits& limits, uint64_t* rid, std::string* group_id,
                std::string* client_msg_id) const override {
    msgpack::object_handle oh;
    size_t off = 0;
    try {
      oh = msgpack::unpack(static_cast<const char*>(data), size, off, nullptr, nullptr,
                           detail::untrusted_limit(16, size));
    } catch (...) {
      return;
    }
    MapView m(oh.get());
    if (m.valid()) detail::peek_request_ids(m, limits, rid, group_id, client_msg_id);
  }

  std::string encode_event(const ServerEvent& event) const override {
    MsgpackWriter w;
    std::visit(detail::EventWriter<MsgpackWriter>{w}, event);
    return w.take();
  }

  std::string encode_request(const ClientRequest& request) const override {
    MsgpackWriter w;
    std::visit(detail::RequestWriter<MsgpackWriter>{w}, request);
    return w.take();
  }

  Result<ServerEvent> decode_event(const void* data, size_t size) const override {
    msgpack::object_handle oh;
    // An array takes a byte per element at least: a header claiming more
    // elements than there are bytes is refused before msgpack allocates
    // them (16 bytes each; found by the msgpack_frame fuzz target).
    const size_t max_array = std::min<size_t>(size, 1u << 20);
    PARLEY_TRY(detail::unpack_one(data, size, detail::untrusted_limit(max_array, 1u << 30, 5), &oh));
    MapView m(oh.get());
    if (!m.valid()) return error(Code::kInvalidArgument, "an event must be a msgpack map");
    return detail::decode_event_map(m);
  }
};

}  // namespace

std::unique_ptr<ClientCodec> make_msgpack_codec() {
  return std::make_unique<MsgpackCodec>();
}

}  // namespace parley
