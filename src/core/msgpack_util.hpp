// Small helpers over msgpack-cxx shared by the client and peer codecs.
// Internal: never included by a public header.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/status.hpp"

namespace parley::detail {

// Limits for unpacking untrusted bytes: bounded containers, strings, depth.
// Events nest one level deeper than requests: a folded answer's reaction
// counts are maps in an array in a message map in the answer's array.
inline msgpack::unpack_limit untrusted_limit(size_t max_array, size_t max_bytes, size_t depth = 4) {
  return msgpack::unpack_limit(max_array, /*map=*/64, max_bytes, max_bytes, /*ext=*/0, depth);
}

// Unpacks exactly one object occupying all of [data, data+size). Never throws.
Status unpack_one(const void* data, size_t size, const msgpack::unpack_limit& limit,
                  msgpack::object_handle* out);

// A read-only view of a msgpack map with short string keys.
class MapView {
 public:
  explicit MapView(const msgpack::object& o) : o_(o) {}
  bool valid() const { return o_.type == msgpack::type::MAP; }
  const msgpack::object* find(std::string_view key) const;
  // Each getter: missing key -> `fallback` when optional, else error.
  Status get_str(std::string_view key, std::string* out, bool required) const;
  Status get_u64(std::string_view key, uint64_t* out, bool required) const;
  Status get_i64(std::string_view key, int64_t* out, bool required) const;
  Status get_bool(std::string_view key, bool* out, bool required) const;
  // An array of strings (each as get_str).
  Status get_strs(std::string_view key, std::vector<std::string>* out, bool required) const;
  // JSON text in a string (the JSON codec has it as an object).
  Status get_json(std::string_view key, std::string* out, bool required) const {
    return get_str(key, out, required);
  }
  // Calls fn(MapView) for each element of the array at `key` (required);
  // an element that is not a map is an error.
  template <typename Fn>
  Status for_each_map(std::string_view key, Fn&& fn, bool required = true) const {
    const msgpack::object* v = find(key);
    if (!v && !required) return Status::ok();
    if (!v || v->type != msgpack::type::ARRAY) {
      return error(Code::kInvalidArgument, "field '" + std::string(key) + "' must be an array");
    }
    for (uint32_t i = 0; i < v->via.array.size; ++i) {
      MapView m(v->via.array.ptr[i]);
      if (!m.valid())
        return error(Code::kInvalidArgument, "an element of '" + std::string(key) + "' must be a map");
      if (Status s = fn(m); !s) return s;
    }
    return Status::ok();
  }

 private:
  const msgpack::object& o_;
};

template <typename Packer>
void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

template <typename Packer>
void pack_bin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

// A packer target that appends to a std::string.
struct StringBuffer {
  std::string data;
  void write(const char* p, size_t n) { data.append(p, n); }
};

}  // namespace parley::detail
