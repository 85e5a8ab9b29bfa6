// HttpApi: parley-server's HTTP routes (docs/server.md, "HTTP API") as a
// table over plain request and response values, so that they can be
// tested and fuzzed without a socket: the WebSocket gateway turns each
// websocketpp request into an HttpRequest and writes the HttpResponse back.
//
// Routes: GET / (the web client), GET /healthz, GET /metrics, POST
// /v1/login, GET /v1/me, GET|POST /v1/groups, GET /v1/directory, GET
// /v1/groups/{g}, POST
// /v1/groups/{g}/join|leave|notify|read|messages|settings|invites, GET
// /v1/groups/{g}/members|presence|messages|pull, DELETE
// /v1/groups/{g}/members/{user}; and the app server's own API
// (server_api.cpp): POST /v1/server/groups, GET /v1/server/groups/{g},
// POST /v1/server/groups/{g}/system|messages|members|settings, GET
// /v1/server/groups/{g}/messages|members, POST
// /v1/server/users/{user}/disconnect. Every /v1 route but login needs a
// bearer token, and /v1/server/... the API key (Authorization: ApiKey KEY)
// instead; a path no route has is not_found, a route asked with another
// method is invalid_argument ("use POST for this route").
//
// Thread rules: handle() on the server's I/O thread, where the node lives.
// No route calls a store on it: store work goes to the node's store
// executor as Node::run_host work (or waits for a Node::when_ready lookup),
// and the answer comes from its completion, on the I/O thread; login hashes
// the password on a worker and posts the answer back. So a response may
// come later than handle() returns (without an executor, the node runs the
// work inline and most answers come at once).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "auth.hpp"
#include "http_target.hpp"
#include "http_util.hpp"
#include "parley/clock.hpp"
#include "parley/node.hpp"
#include "parley/protocol.hpp"
#include "parley/server/config.hpp"
#include "parley/store.hpp"

namespace parley::server {

struct HttpRequest {
  std::string method;
  std::string resource;  // the request target: path and query
  std::string authorization;
  std::string if_none_match;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
};

// The node's answer to a request made on a caller's behalf, as an HTTP error
// (with Retry-After when the node gave one).
HttpResponse error_response(const ErrorEv& e);
// The answer to a send or notice: its ack event's JSON, or the error.
HttpResponse ack_response(const ClientCodec& codec, const ServerEvent& ev);

class HttpApi {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using Task = std::function<void()>;

  // What the routes work on; everything must outlive the HttpApi.
  struct Context {
    const Config& cfg;
    const Clock& clock;
    Node& node;  // and through it the stores (Node::run_host)
    const Auth& auth;
    const ClientCodec& codec;  // message objects in responses
    Limits limits;
    // Runs a task off the I/O thread (password hashing) ...
    std::function<void(Task)> offload;
    // ... and one back on it.
    std::function<void(Task)> post;
    // `user` left or was removed from `group`: the node and the peers are told.
    std::function<void(const std::string& group, const std::string& user)> member_removed;
    // A membership change to record in the group's log (Node::record_membership), with
    // --membership-entries.
    std::function<void(const std::string& group, EntryKind kind, const std::string& user,
                       const std::string& subject)>
        record_membership;
    // A send outside any session (Node::send_as); the node's turn is flushed after it.
    std::function<void(const std::string& user, const SendReq& request, Node::RequestDone done)> send_as;
    // A read report outside any session (Node::read_as).
    std::function<void(const std::string& user, const ReadReq& request, Node::RequestDone done)> read_as;
    // A system notice (Node::record_system), answered by `done` after its
    // commit; the node's turn is flushed after it.
    std::function<Status(const std::string& group, const std::string& author, const std::string& cid,
                         const std::string& text, const std::string& meta, Node::RequestDone done)>
        record_system;
    // The app ends `user`'s sessions on every node (Node::disconnect_user
    // here, on this process's other shards and on every peer).
    std::function<void(const std::string& user, const std::string& why)> disconnect_user;
    // The /metrics text, handed to the callback (at once, or later from a
    // task posted to the I/O thread: a sharded process gathers every shard's).
    std::function<void(std::function<void(std::string)>)> metrics;
  };

  explicit HttpApi(Context ctx);

  // Answers `req` through `respond`, exactly once (at once, or later from a
  // posted task).
  void handle(const HttpRequest& req, Respond respond);

  // Requests refused for a bad or missing token.
  uint64_t auth_failures() const { return auth_failures_; }

 private:
  struct Reply;  // how a request is answered
  struct Call;   // one request being answered
  using Handler = void (HttpApi::*)(Call&);
  struct Route {
    const char* method;
    std::vector<const char*> pattern;  // "{g}" and "{user}" match one segment (checked as ids)
    bool token;                        // needs a bearer token
    Handler handler;
  };
  static const std::vector<Route>& routes();

  void index(Call& c);
  void healthz(Call& c);
  void metrics(Call& c);
  void login(Call& c);
  void me(Call& c);
  void list_groups(Call& c);
  void create_group(Call& c);
  void join(Call& c);
  // Group settings, invites and discovery (group_api.cpp).
  void group_info(Call& c);
  void change_settings(Call& c);
  void invite(Call& c);
  void directory(Call& c);
  void set_notify(Call& c);
  void post_message(Call& c);
  void post_read(Call& c);
  void leave(Call& c);
  void remove_member(Call& c);
  void members(Call& c);
  void presence(Call& c);
  void history(Call& c);
  void pull(Call& c);
  void peer(Call& c);
  void ws(Call& c);
  // The app server's API (server_api.cpp), behind the API key.
  void app_create_group(Call& c);
  void app_system(Call& c);
  void app_send(Call& c);
  void app_members(Call& c);
  void app_disconnect(Call& c);

  void member_list(Call& c, bool presence_only);
  void read_as(const std::string& user, const ReadReq& r, const Respond& respond);
  // Node::run_host and Node::when_ready for a route, the continuation
  // guarded: an exception in it answers `reply` with internal (and is
  // logged) instead of leaving the event loop, as one inside handle() does.
  void on_stores(const Reply& reply, Node::HostWork work, std::function<void(const Status&)> done);
  void when_ready(const Reply& reply, const std::string& user, const ClientRequest& request,
                  std::function<void()> then);
  // A send (message, edit, delete, reaction) by `user` from a JSON body: the
  // send frame without "g" (HTTP: the caller's; the server API: on a user's behalf).
  void send_for(const std::string& user, const std::string& group, rapidjson::Document& doc, const Reply& reply);
  std::string messages_json(const std::string& g, uint64_t epoch, uint64_t head, const std::vector<MessagePtr>& msgs,
                            const FoldedPage* folded = nullptr);

  Context ctx_;
  uint64_t auth_failures_ = 0;
};

// How a request is answered: at once, or from a continuation (a copy).
struct HttpApi::Reply {
  Respond respond;

  void answer(int status, std::string body, std::string type = "application/json") const {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = std::move(type);
    respond(std::move(r));
  }
  void fail(const Status& st) const { answer(http_status_for(st.code()), error_json(st)); }
};

// One request being answered: what the route table matched, and the answer.
// It lives only while the route's handler runs: store work and its
// continuation copy what they need (the reply() among it).
struct HttpApi::Call : HttpApi::Reply {
  const HttpRequest& req;
  Target target;
  std::string user;   // the token's user, for routes that need one
  int64_t expires_at_ms = 0;  // and when the token expires
  std::string group;  // {g}
  std::string other;  // {user}
  bool app = false;   // the app server, with the API key (user is empty)

  Call(const HttpRequest& r, Target t, Respond done) : Reply{std::move(done)}, req(r), target(std::move(t)) {}
  Reply reply() const { return Reply{respond}; }
};

}  // namespace parley::server
