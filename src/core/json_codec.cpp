// The JSON client codec: the msgpack codec's schema (codec_schema.hpp) as
// JSON text, on RapidJSON (fast in-situ-free parsing with UTF-8 validation
// and an iterative parser, so deep nesting cannot exhaust the stack).
// Contents travel as JSON strings, so they must be valid UTF-8.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fmt/format.h>

#include "core/codec_schema.hpp"
#include "core/utf8.hpp"
#include "parley/protocol.hpp"

namespace parley {
namespace {

using Value = rapidjson::Value;

Status missing(std::string_view key) {
  return error(Code::kInvalidArgument, fmt::format("field '{}' is missing", key));
}
Status wrong_type(std::string_view key, const char* want) {
  return error(Code::kInvalidArgument, fmt::format("field '{}' must be {}", key, want));
}

// The schema's View over a RapidJSON object.
class JsonView {
 public:
  explicit JsonView(const Value& v) : v_(v) {}
  bool valid() const { return v_.IsObject(); }

  Status get_str(std::string_view key, std::string* out, bool required) const {
    const Value* v = find(key);
    if (!v) return required ? missing(key) : Status::ok();
    if (!v->IsString()) return wrong_type(key, "a string");
    // The parser validates the bytes of a frame, but RapidJSON 1.1.0 (Debian
    // 12) decodes an escaped unpaired low surrogate ("\udc00") into bytes
    // that are not UTF-8 (Tencent/rapidjson#1738, fixed after 1.1.0); echoed
    // into a frame, they would make it invalid JSON for every recipient.
    // Found by the json_frame fuzz target.
    if (!detail::is_utf8(std::string_view(v->GetString(), v->GetStringLength()))) {
      return error(Code::kInvalidArgument,
                   fmt::format("field '{}' is not UTF-8 (an unpaired surrogate escape)", key));
    }
    out->assign(v->GetString(), v->GetStringLength());
    return Status::ok();
  }
  Status get_u64(std::string_view key, uint64_t* out, bool required) const {
    const Value* v = find(key);
    if (!v) return required ? missing(key) : Status::ok();
    if (!v->IsUint64()) return wrong_type(key, "a non-negative integer");
    *out = v->GetUint64();
    return Status::ok();
  }
  Status get_i64(std::string_view key, int64_t* out, bool required) const {
    const Value* v = find(key);
    if (!v) return required ? missing(key) : Status::ok();
    if (!v->IsInt64()) return wrong_type(key, "an integer");
    *out = v->GetInt64();
    return Status::ok();
  }
  Status get_bool(std::string_view key, bool* out, bool required) const {
    const Value* v = find(key);
    if (!v) return required ? missing(key) : Status::ok();
    if (!v->IsBool()) return wrong_type(key, "a boolean");
    *out = v->GetBool();
    return Status::ok();
  }
  Status get_strs(std::string_view key, std::vector<std::string>* out, bool required) const {
    const Value* v = find(key);
    if (!v) return required ? missing(key) : Status::ok();
    if (!v->IsArray()) return wrong_type(key, "an array of strings");
    out->clear();
    for (const Value& e : v->GetArray()) {
      if (!e.IsString()) return wrong_type(key, "an array of strings");
      out->emplace_back(e.GetString(), e.GetStringLength());
      if (!detail::is_utf8(out->back())) {
        return error(Code::kInvalidArgument, fmt::format("an element of '{}' is not UTF-8", key));
      }
    }
    return Status::ok();
  }
  // A JSON object, kept as its text.
  Status get_json(std::string_view key, std::string* out, bool required) const {
    const Value* v = find(key);
    if (!v) return required ? missing(key) : Status::ok();
    if (!v->IsObject()) return wrong_type(key, "an object");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v->Accept(w);
    out->assign(buf.GetString(), buf.GetSize());
    return Status::ok();
  }
  template <typename Fn>
  Status for_each_map(std::string_view key, Fn&& fn, bool required = true) const {
    const Value* v = find(key);
    if (!v && !required) return Status::ok();
    if (!v || !v->IsArray()) return wrong_type(key, "an array");
    for (const Value& e : v->GetArray()) {
      JsonView m(e);
      if (!m.valid())
        return error(Code::kInvalidArgument, fmt::format("an element of '{}' must be an object", key));
      if (Status s = fn(m); !s) return s;
    }
    return Status::ok();
  }

 private:
  const Value* find(std::string_view key) const {
    for (auto it = v_.MemberBegin(); it != v_.MemberEnd(); ++it) {
      if (std::string_view(it->name.GetString(), it->name.GetStringLength()) == key) return &it->value;
    }
    return nullptr;
  }
  const Value& v_;
};

// The schema's Writer over a RapidJSON writer.
class JsonWriter {
 public:
  void begin(const char* type, uint32_t) {
    w_.StartObject();
    key("t"), str(type);
  }
  void end() { w_.EndObject(); }
  void begin_map(uint32_t) { w_.StartObject(); }
  void end_map() { w_.EndObject(); }
  void begin_array(uint32_t) { w_.StartArray(); }
  void end_array() { w_.EndArray(); }
  void key(std::string_view k) { w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  // Never anything but UTF-8, whatever the caller or a store handed over:
  // a browser fails the WebSocket on a text frame that is not UTF-8. The
  // protocol refuses such text where it comes in (docs/decisions.md 37);
  // this replaces what got past that with U+FFFD.
  void str(std::string_view s) {
    s = detail::utf8_or_replaced(s, &scratch_);
    w_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  void bytes(std::string_view s) { str(s); }
  // JSON text written as it is (a message's meta, checked to be an object
  // when it was sent).
  void json(std::string_view s) {
    w_.RawValue(s.data(), s.size(), rapidjson::kObjectType);
  }
  void u64(uint64_t v) { w_.Uint64(v); }
  void i64(int64_t v) { w_.Int64(v); }
  void boolean(bool b) { w_.Bool(b); }
  std::string take() { return std::string(buf_.GetString(), buf_.GetSize()); }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
  std::string scratch_;
};

constexpr unsigned kParseFlags = rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;

Status parse(const void* data, size_t size, rapidjson::Document* doc) {
  doc->Parse<kParseFlags>(static_cast<const char*>(data), size);
  if (doc->HasParseError()) {
    return error(Code::kInvalidArgument, fmt::format("malformed JSON at offset {}: {}", doc->GetErrorOffset(),
                                                     rapidjson::GetParseError_En(doc->GetParseError())));
  }
  if (!doc->IsObject()) return error(Code::kInvalidArgument, "a frame must be a JSON object");
  return Status::ok();
}

class JsonCodec final : public ClientCodec {
 public:
  Result<ClientRequest> decode_request(const void* data, size_t size, const Limits& limits) const override {
    size_t max_frame = json_max_frame_bytes(limits);
    if (size > max_frame) {
      return error(Code::kTooLarge, fmt::format("frame is {} bytes; the limit is {}", size, max_frame));
    }
    rapidjson::Document doc;
    PARLEY_TRY(parse(data, size, &doc));
    return detail::decode_request_map(JsonView(doc), limits);
  }

  void peek_ids(const void* data, size_t size, const Limits& limits, uint64_t* rid, std::string* group_id,
                std::string* client_msg_id) const override {
    rapidjson::Document doc;
    if (parse(data, size, &doc))
      detail::peek_request_ids(JsonView(doc), limits, rid, group_id, client_msg_id);
  }

  std::string encode_event(const ServerEvent& event) const override {
    JsonWriter w;
    std::visit(detail::EventWriter<JsonWriter>{w}, event);
    return w.take();
  }

  std::string encode_request(const ClientRequest& request) const override {
    JsonWriter w;
    std::visit(detail::RequestWriter<JsonWriter>{w}, request);
    return w.take();
  }

  Result<ServerEvent> decode_event(const void* data, size_t size) const override {
    rapidjson::Document doc;
    PARLEY_TRY(parse(data, size, &doc));
    return detail::decode_event_map(JsonView(doc));
  }
};

}  // namespace

size_t json_max_frame_bytes(const Limits& limits) {
  // Every byte of contents or an id may be escaped as \uXXXX (6 bytes).
  return 6 * (limits.max_contents_bytes + 4 * limits.max_id_bytes) + 256;
}

std::unique_ptr<ClientCodec> make_json_codec() {
  return std::make_unique<JsonCodec>();
}

}  // namespace parley
