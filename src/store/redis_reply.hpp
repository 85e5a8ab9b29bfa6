// Decoding what Redis answers, for the Redis stores (redis_store.cpp):
// numbers and stream ids from replies, error replies as Status, a stream
// entry's fields as a Message, and the hash tags that keep a group's keys
// in one Redis Cluster slot. Internal: not installed.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <string>

#include "parley/message.hpp"
#include "parley/protocol.hpp"
#include "parley/status.hpp"
#include "store/log_rules.hpp"
#include "store/redis_client.hpp"

namespace parley::redis_detail {

using redis::Reply;

// Escapes what would end or confuse a hash tag; ids are printable but may
// hold '{', '}' or '%'.
inline std::string tag(const std::string& id) {
  std::string out;
  out.reserve(id.size() + 2);
  out += '{';
  for (char c : id) {
    if (c == '{') {
      out += "%7B";
    } else if (c == '}') {
      out += "%7D";
    } else if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  out += '}';
  return out;
}

inline uint64_t to_u64(const std::string& s) {
  try {
    return std::stoull(s);
  } catch (...) {
    return 0;
  }
}

inline uint64_t to_u64(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return static_cast<uint64_t>(std::max<long long>(r.integer, 0));
  if (r.type == Reply::Type::kString || r.type == Reply::Type::kStatus) return to_u64(r.str);
  return 0;
}

// Stream ids are "MSGID-1".
inline uint64_t stream_msg_id(const std::string& id) {
  try {
    return std::stoull(id.substr(0, id.find('-')));
  } catch (...) {
    return 0;
  }
}

inline bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// A Redis error reply as a Status: what retrying may cure is unavailable.
inline Status reply_error(const Reply& r, const char* what) {
  static const char* const kTransient[] = {"LOADING",     "BUSY",     "OOM",        "READONLY",
                                           "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "NOREPLICAS",
                                           "MISCONF",     "MOVED",    "ASK",        "NOSCRIPT"};
  for (const char* p : kTransient) {
    if (starts_with(r.str, p)) return error(Code::kUnavailable, fmt::format("redis {}: {}", what, r.str));
  }
  return error(Code::kInternal, fmt::format("redis {}: {}", what, r.str));
}

inline Status expect_type(const Reply& r, Reply::Type type, const char* what) {
  if (r.is_error()) return reply_error(r, what);
  if (r.type != type) return error(Code::kInternal, fmt::format("redis {}: unexpected reply", what));
  return Status::ok();
}

// Field `name` of a stream entry's flat field list.
inline const std::string* field(const Reply& fields, const char* name) {
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    if (fields.elements[i].str == name) return &fields.elements[i + 1].str;
  }
  return nullptr;
}

inline int64_t to_i64(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (...) {
    return 0;
  }
}

// A stream entry's fields (docs/redis.md; redis_scripts.hpp) into m.
inline Status read_stream_fields(const Reply& f, Message* m) {
  const std::string* u = field(f, "u");
  const std::string* c = field(f, "c");
  const std::string* t = field(f, "t");
  const std::string* b = field(f, "b");
  if (!u || !c || !t || !b) return error(Code::kCorruption, "redis: a stream entry lacks a field");
  m->user_id = *u;
  m->client_msg_id = *c;
  m->timestamp_ms = to_i64(*t);
  m->contents = *b;
  if (const std::string* k = field(f, "k")) m->entry.kind = static_cast<EntryKind>(to_u64(*k));
  if (const std::string* to = field(f, "to")) m->entry.target = to_u64(*to);
  if (const std::string* re = field(f, "re")) m->entry.reply_to = to_u64(*re);
  if (const std::string* mn = field(f, "mn")) m->entry.mentions = parley::detail::split_ids(*mn);
  if (const std::string* meta = field(f, "m")) m->entry.meta = *meta;
  m->entry.remove = field(f, "rm") != nullptr;
  m->deleted = field(f, "del") != nullptr;
  return Status::ok();
}

inline PresenceStatus better(PresenceStatus a, PresenceStatus b) {
  auto rank = [](PresenceStatus s) {
    return s == PresenceStatus::kOnline ? 2 : s == PresenceStatus::kAway ? 1 : 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace parley::redis_detail
