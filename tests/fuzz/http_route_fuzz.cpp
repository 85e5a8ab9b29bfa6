// Fuzz target: what parley-server does with an HTTP request before a route
// handler runs, in-process and without a server. One input = the bytes a
// client sends on a new connection:
//  1. websocketpp's request parser consumes them in reads of the server's
//     buffer size (1024), with the server's body limit; it may refuse them
//     only with websocketpp::http::exception (the server answers that with
//     its status), never with another exception;
//  2. a complete request's URI is built from Host and the request target as
//     the connection does (get_uri_from_host, "ws" for an upgrade);
//  3. the resource is split by parse_target (examples/server/http_target),
//     whose segments and query choose the route; the query parameters the
//     routes read go through query_u64.
// Checked besides "no crash": segments are never empty; query_u64 accepts
// exactly 1..19 digits (else invalid_argument with a message) and returns
// their value; percent-encoding every byte of a parsed target and parsing it
// again gives the same target.
#include <websocketpp/http/request.hpp>
#include <websocketpp/processors/processor.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_check.hpp"
#include "http_target.hpp"

namespace {

using parley::fuzz::check;
using parley::server::Target;

constexpr size_t kReadBuffer = 1024;       // WsConfig::connection_read_buffer_size
constexpr size_t kMaxHttpBody = 1u << 20;  // --max-http-body default

std::string encode_all(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out.push_back('%');
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string encode_target(const Target& t) {
  std::string out;
  for (const std::string& seg : t.segments) out += "/" + encode_all(seg);
  char sep = '?';
  for (const auto& [key, value] : t.query) {
    out += sep + encode_all(key) + "=" + encode_all(value);
    sep = '&';
  }
  return out;
}

void check_query_u64(const Target& t, const char* key) {
  uint64_t v = 7;
  parley::Status st = parley::server::query_u64(t, key, 7, &v);
  auto it = t.query.find(key);
  const std::string given = it == t.query.end() ? std::string() : it->second;
  const bool digits =
      !given.empty() && given.size() <= 19 && given.find_first_not_of("0123456789") == std::string::npos;
  if (given.empty()) {
    check(st.is_ok() && v == 7, "query_u64: an absent parameter does not give the fallback");
  } else if (digits) {
    check(st.is_ok() && v == std::strtoull(given.c_str(), nullptr, 10), "query_u64: wrong value for digits");
  } else {
    parley::fuzz::check_error(st, {parley::Code::kInvalidArgument}, "query_u64");
  }
}

void check_target(const std::string& resource) {
  const Target t = parley::server::parse_target(resource);
  for (const std::string& seg : t.segments) check(!seg.empty(), "parse_target: an empty segment");
  for (const char* key : {"after", "before", "limit", "epoch", "token"}) check_query_u64(t, key);
  const Target again = parley::server::parse_target(encode_target(t));
  check(again.segments == t.segments && again.query == t.query,
        "parse_target: a fully percent-encoded target parses differently");
}

// Feeds the request parser as the server's connection does. False: the
// request is refused (or incomplete), so no route is chosen.
bool read_request(const uint8_t* data, size_t size, websocketpp::http::parser::request* req) {
  req->set_max_body_size(kMaxHttpBody);
  size_t off = 0;
  try {
    while (off < size && !req->ready()) {
      const size_t n = std::min(kReadBuffer, size - off);
      const size_t used = req->consume(reinterpret_cast<const char*>(data) + off, n);
      check(used <= n, "consume used more bytes than it was given");
      off += n;
    }
  } catch (const websocketpp::http::exception& e) {
    check(e.m_error_code >= 400 && e.m_error_code <= 599,
          "the parser refused a request with a non-error status");
    return false;
  }
  return req->ready();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parley::fuzz::no_throw("the HTTP request path", [&] {
    websocketpp::http::parser::request req;
    if (!read_request(data, size, &req)) return;
    check(!req.get_method().empty() && !req.get_header("Host").empty(),
          "a ready request without method or Host");
    const bool upgrade = websocketpp::processor::is_websocket_handshake(req);
    websocketpp::uri_ptr uri = websocketpp::processor::get_uri_from_host(req, upgrade ? "ws" : "http");
    if (!uri->get_valid()) return;  // the server answers 400
    check_target(uri->get_resource());
  });
  return 0;
}
