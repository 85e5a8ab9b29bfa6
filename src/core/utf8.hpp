// UTF-8 checks for the text fields of the protocol (contents, user, group and
// client message ids; docs/decisions.md 37). Internal header, over utfcpp
// (Debian's libutfcpp-dev, header-only).
//
// Valid means RFC 3629: shortest form, no surrogates (U+D800..DFFF), nothing
// above U+10FFFF. NUL and other control characters are valid UTF-8; the id
// rules refuse those separately.
#pragma once

#include <utf8.h>

#include <iterator>
#include <string>
#include <string_view>

namespace parley::detail {

inline bool is_utf8(std::string_view s) {
  return utf8::is_valid(s.begin(), s.end());
}

// `s` when it is UTF-8; otherwise a copy in *scratch with each invalid
// sequence replaced by U+FFFD. For encoders that must never write anything
// but UTF-8, whatever a store or a caller handed them.
inline std::string_view utf8_or_replaced(std::string_view s, std::string* scratch) {
  if (is_utf8(s)) return s;
  scratch->clear();
  utf8::replace_invalid(s.begin(), s.end(), std::back_inserter(*scratch));
  return *scratch;
}

}  // namespace parley::detail
