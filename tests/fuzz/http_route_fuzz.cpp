// Fuzz target: what parley-server does with an HTTP request before a route
// handler runs, in-process and without a server. One input = the bytes a
// client sends on a new connection:
//  1. websocketpp's request parser consumes them in reads of the server's
//     buffer size (1024), with the server's body limit; it may refuse them
//     only with websocketpp::http::exception (the server answers that with
//     its status), never with another exception;
//  2. a complete request's URI is built from Host and the request target as
//     the connection does (get_uri_from_host, "ws" for an upgrade);
//  3. the resource is split by parse_target (src/server/http_target),
//     whose segments and query choose the route; the query parameters the
//     routes read go through query_u64.
//  4. the request, as plain values, goes through the server's route table
//     (HttpApi, src/server/http_api.hpp) over a node on fresh memory stores
//     holding group "g" of alice and bob; "Authorization: Bearer alice" (or
//     bob) is replaced with a real token of that user so that the fuzzer
//     reaches the routes behind the token.
// Checked besides "no crash": segments are never empty; query_u64 accepts
// exactly 1..19 digits (else invalid_argument with a message) and returns
// their value; percent-encoding every byte of a parsed target and parsing it
// again gives the same target; the route table answers exactly once, with a
// status it documents; an error answer is a JSON {code, name, msg} whose
// status matches its code, and changes no membership.
#include <websocketpp/http/request.hpp>
#include <websocketpp/processors/processor.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <rapidjson/document.h>

#include "auth.hpp"
#include "fuzz_check.hpp"
#include "http_api.hpp"
#include "http_target.hpp"
#include "http_util.hpp"
#include "parley/memory_store.hpp"

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

struct NullHost final : parley::NodeHost {
  void send_to_session(parley::SessionId, const std::vector<parley::Frame>&) override {}
  void close_session(parley::SessionId, const parley::Status&) override {}
  void send_to_node(const std::string&, uint64_t, const parley::Frame&) override {}
  void set_timer(int64_t) override {}
};

// Every membership of the fixture's users, to see that an error changed none.
std::vector<std::string> memberships(parley::MembershipStore& m) {
  std::vector<std::string> out;
  for (const char* u : {"alice", "bob", "carol"}) {
    auto groups = m.groups_of(u);
    check(groups.is_ok(), "groups_of failed on the memory store");
    for (const std::string& g : *groups) out.push_back(std::string(u) + "@" + g);
  }
  return out;
}

// Step 4: the route table over plain values, on fresh memory stores.
void check_routes(const websocketpp::http::parser::request& wreq, const std::string& resource) {
  using namespace parley;
  using namespace parley::server;
  ManualClock clock{1000000};
  auto messages = make_memory_message_store();
  auto members = make_memory_membership_store();
  auto directory = make_memory_session_directory();
  check(members->create_group("g", "alice").is_ok() && members->add("g", "bob", Role::kMember).is_ok(),
        "fixture");
  NullHost host;
  Node node(NodeOptions{}, NodeStores{*messages, *members, *directory}, host, clock);
  check(node.start().is_ok(), "node start");
  Config cfg;
  cfg.dev = true;
  const Auth auth(std::string(32, 's'), 3600000, /*dev=*/true);
  std::shared_ptr<ClientCodec> codec = make_json_codec();
  HttpApi api(HttpApi::Context{cfg, clock, node, auth, *codec, Limits{},
                               [](HttpApi::Task t) { t(); }, [](HttpApi::Task t) { t(); },
                               [&node](const std::string& g, const std::string& u) { node.member_removed(g, u); },
                               [&node](const std::string& g, EntryKind kind, const std::string& u,
                                       const std::string& subject) {
                                 if (!node.record_membership(g, kind, u, subject)) std::abort();  // valid ids only
                               },
                               [&node](const std::string& u, const SendReq& r, Node::RequestDone done) {
                                 node.send_as(u, r, std::move(done));
                                 node.flush();
                               },
                               [&node](const std::string& u, const ReadReq& r, Node::RequestDone done) {
                                 node.read_as(u, r, std::move(done));
                                 node.flush();
                               },
                               [&node](const std::string& g, const std::string& author, const std::string& cid,
                                       const std::string& text, const std::string& meta, Node::RequestDone done) {
                                 Status st = node.record_system(g, author, cid, text, meta, std::move(done));
                                 node.flush();
                                 return st;
                               },
                               [&node](const std::string& u, const std::string& why) {
                                 node.disconnect_user(u, why);
                                 node.flush();
                               },
                               [](std::function<void(std::string)> done) { done("# metrics\n"); }});
  HttpRequest req{wreq.get_method(), resource, wreq.get_header("Authorization"), wreq.get_header("If-None-Match"),
                  wreq.get_body()};
  for (const char* u : {"alice", "bob"}) {
    if (req.authorization == std::string("Bearer ") + u) req.authorization = "Bearer " + auth.issue(u, 2000000);
  }
  const std::vector<std::string> before = memberships(*members);
  int answers = 0;
  HttpResponse got;
  api.handle(req, [&](HttpResponse r) {
    ++answers;
    got = std::move(r);
  });
  check(answers == 1, "the route table did not answer exactly once");
  static const int kStatuses[] = {200, 201, 304, 400, 401, 403, 404, 409, 410, 413, 429, 500, 503, 504};
  check(std::find(std::begin(kStatuses), std::end(kStatuses), got.status) != std::end(kStatuses),
        "an undocumented HTTP status");
  if (got.status >= 400) {
    rapidjson::Document doc;
    doc.Parse(got.body.data(), got.body.size());
    check(!doc.HasParseError() && doc.IsObject() && doc.HasMember("code") && doc["code"].IsInt() &&
              doc.HasMember("name") && doc.HasMember("msg"),
          "an error answer is not {code, name, msg}");
    check(http_status_for(static_cast<Code>(doc["code"].GetInt())) == got.status,
          "an error's status does not match its code");
    check(memberships(*members) == before, "a refused request changed a membership");
  }
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
    check_routes(req, uri->get_resource());
  });
  return 0;
}
