#include "http_target.hpp"

#include <fmt/format.h>

#include <cctype>

namespace parley::server {

std::string percent_decode(std::string_view s, bool form) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && form) {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Target parse_target(const std::string& resource) {
  Target t;
  size_t q = resource.find('?');
  std::string_view path(resource.data(), q == std::string::npos ? resource.size() : q);
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view seg =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!seg.empty()) t.segments.push_back(percent_decode(seg, false));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (q != std::string::npos) {
    std::string_view qs(resource.data() + q + 1, resource.size() - q - 1);
    while (!qs.empty()) {
      size_t amp = qs.find('&');
      std::string_view kv = qs.substr(0, amp);
      size_t eq = kv.find('=');
      t.query[percent_decode(kv.substr(0, eq), true)] =
          eq == std::string_view::npos ? "" : percent_decode(kv.substr(eq + 1), true);
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  return t;
}

Status query_u64(const Target& t, const char* key, uint64_t fallback, uint64_t* out) {
  auto it = t.query.find(key);
  if (it == t.query.end() || it->second.empty()) {
    *out = fallback;
    return Status::ok();
  }
  const std::string& v = it->second;
  if (v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) {
    return error(Code::kInvalidArgument,
                 fmt::format("query parameter '{}' must be a non-negative integer", key));
  }
  *out = std::stoull(v);
  return Status::ok();
}

}  // namespace parley::server
