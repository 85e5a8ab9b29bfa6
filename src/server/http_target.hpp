// The request target of an HTTP request ("/v1/groups/g%201/pull?after=4"),
// split into decoded path segments and query parameters: what the server's
// routes are chosen by. Pure functions of the bytes a client sent, so they are
// tested (and fuzzed: tests/fuzz/http_route_fuzz.cpp) without a server.
// Thread rules: none (plain values, no state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "parley/status.hpp"

namespace parley::server {

struct Target {
  std::vector<std::string> segments;         // non-empty, percent-decoded
  std::map<std::string, std::string> query;  // form-decoded; a repeated key keeps its last value
};

// Decodes %XX escapes (a '%' not followed by two hex digits stays as it is);
// in a query string ('form' true) '+' is a space too. Never fails.
std::string percent_decode(std::string_view s, bool form);

// Splits "/a/b?x=1&y=2" into decoded path segments (empty ones dropped) and
// query parameters. Never fails: any string is some target.
Target parse_target(const std::string& resource);

// Reads an unsigned decimal query parameter into *out; absent or empty ->
// fallback. kInvalidArgument (naming the key) for anything but 1..19 digits.
Status query_u64(const Target& t, const char* key, uint64_t fallback, uint64_t* out);

}  // namespace parley::server
