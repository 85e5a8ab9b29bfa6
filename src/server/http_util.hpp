// What the server's HTTP and WebSocket sides share: status codes for
// errors, a small JSON object builder, error bodies, bearer tokens.
// Thread rules: none (plain functions and values).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "parley/status.hpp"
#include "parley/store.hpp"

namespace parley::server {

// The HTTP status for an error code (kOk: 200).
int http_status_for(Code code);

// A small JSON object builder over RapidJSON's writer.
class Json {
 public:
  Json() { w_.StartObject(); }
  Json& str(const char* k, std::string_view v) {
    w_.Key(k);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  Json& num(const char* k, int64_t v) {
    w_.Key(k);
    w_.Int64(v);
    return *this;
  }
  Json& u64(const char* k, uint64_t v) {
    w_.Key(k);
    w_.Uint64(v);
    return *this;
  }
  // Starts an array of objects under k; each item via item_begin/item_end.
  Json& array(const char* k) {
    w_.Key(k);
    w_.StartArray();
    return *this;
  }
  Json& item_begin() {
    w_.StartObject();
    return *this;
  }
  Json& item_end() {
    w_.EndObject();
    return *this;
  }
  // A string item of an array.
  Json& item(std::string_view v) {
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  Json& array_end() {
    w_.EndArray();
    return *this;
  }
  // A value that is already JSON text.
  Json& raw(std::string_view json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  std::string done() {
    w_.EndObject();
    return std::string(buf_.GetString(), buf_.GetSize());
  }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
};

// An error event as a WebSocket client receives it.
std::string error_event_json(const Status& st);
// An error as an HTTP body: {"code","name","msg"}.
std::string error_json(const Status& st);
// The token of an "Authorization: Bearer T" header ("" if it is not one).
std::string bearer_token(const std::string& header);
bool constant_time_equal(const std::string& a, const std::string& b);
const char* role_name(Role r);
// The string field `key` of a JSON object (invalid_argument naming it when
// it is missing or not a string).
Status json_string_field(const rapidjson::Document& doc, const char* key, std::string* out);
// Parses a request body as a JSON object (invalid_argument if it is not one).
Status json_body(const std::string& body, rapidjson::Document* doc);
// kNotFound unless the group exists.
Status group_found(MembershipStore& membership, const std::string& group);

}  // namespace parley::server
