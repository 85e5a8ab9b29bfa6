// parley_server_options and parley_server: parley-server (the example chat
// server) running in-process on a thread of its own. Options are
// parley-server's command-line flags, parsed by its own parser at start, so
// they mean exactly what `parley-server --help` and docs/server.md say.
//
// Built without the server (PARLEY_BUILD_SERVER=OFF), the options still
// work and parley_server_start fails with PARLEY_ERR_UNAVAILABLE.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "handle.hpp"

#ifdef PARLEY_C_WITH_SERVER
#include "parley/server/config.hpp"
#include "parley/server/server.hpp"
#endif

using parley::Code;
using parley::Status;
using parley::capi::Kind;

struct parley_server_options final : parley::capi::Handle {
  static constexpr Kind kKind = Kind::kServerOptions;
  parley_server_options() : Handle(kKind) {}
  std::vector<std::string> args;  // "--name[=value]", in the order set
};

#ifdef PARLEY_C_WITH_SERVER

struct parley_server final : parley::capi::Handle {
  static constexpr Kind kKind = Kind::kServer;
  explicit parley_server(parley::server::Config config)
      : Handle(kKind), server(std::make_unique<parley::server::Server>(std::move(config))) {}
  ~parley_server() override { stop(); }

  // Shuts down and joins the server's thread (once); the exit code of run().
  int stop() {
    if (thread.joinable()) {
      server->stop();
      thread.join();
    }
    return exit_code;
  }
  uint16_t port() const { return server->port(); }

  std::unique_ptr<parley::server::Server> server;
  std::thread thread;
  int exit_code = 0;  // written by the thread, read after join
};

namespace {

Status parse(const std::vector<std::string>& args, parley::server::Config* out) {
  std::vector<std::string> words{"parley-server"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  int exit_code = 0;
  if (!parley::server::parse_config(static_cast<int>(words.size()), argv.data(), out, &exit_code)) {
    return parley::error(Code::kInvalidArgument,
                         "parley-server's option parser refused the options (it printed why on stderr)");
  }
  return Status::ok();
}

Status start(std::vector<std::string> args, parley_server** out) {
  parley::server::Config config;
  if (Status st = parse(args, &config); !st) return st;
  config.handle_signals = false;
  auto h = std::make_unique<parley_server>(std::move(config));
  if (int rc = h->server->start(); rc != 0) {
    return parley::error(Code::kUnavailable, "parley-server did not start (exit code " + std::to_string(rc) +
                                                 "); its log on stderr says why");
  }
  parley_server* s = h.get();
  h->thread = std::thread([s] { s->exit_code = s->server->run(); });
  return parley::capi::publish(std::move(h), out);
}

}  // namespace

#else  // !PARLEY_C_WITH_SERVER

struct parley_server final : parley::capi::Handle {
  static constexpr Kind kKind = Kind::kServer;
  parley_server() : Handle(kKind) {}
  int stop() { return 0; }
  uint16_t port() const { return 0; }
};

namespace {
Status start(std::vector<std::string>, parley_server**) {
  return parley::error(Code::kUnavailable,
                       "this library was built without the server (PARLEY_BUILD_SERVER=OFF)");
}
}  // namespace

#endif  // PARLEY_C_WITH_SERVER

namespace {

// Names as on the command line without the dashes: lower case, digits, '-'.
Status check_option_name(const char* name) {
  if (name == nullptr) return parley::capi::null_argument("name");
  const std::string n = name;
  if (n.empty() || n[0] == '-' ||
      n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
    return parley::error(Code::kInvalidArgument,
                         "'" + n + "' is not an option name (as 'listen' for --listen)");
  if (n == "help" || n == "version" || n == "hash-password")
    return parley::error(Code::kInvalidArgument, "--" + n + " is for the command line only");
  return Status::ok();
}

}  // namespace

extern "C" {

PARLEY_EXPORT int parley_server_options_create(parley_server_options** out) {
  return parley::capi::create("parley_server_options_create", out);
}

PARLEY_EXPORT int parley_server_options_destroy(parley_server_options* options) {
  return parley::capi::release("parley_server_options_destroy", options);
}

PARLEY_EXPORT int parley_server_options_set(parley_server_options* options, const char* name,
                                            const char* value) {
  return parley::capi::call("parley_server_options_set", options, [&](parley_server_options& o) -> Status {
    if (Status st = check_option_name(name); !st) return st;
    const std::string flag = std::string("--") + name;
    if (flag != "--peer") {  // the one repeatable option; the others take the last value
      o.args.erase(
          std::remove_if(o.args.begin(), o.args.end(),
                         [&](const std::string& a) { return a == flag || a.rfind(flag + "=", 0) == 0; }),
          o.args.end());
    }
    o.args.push_back(value != nullptr ? flag + "=" + value : flag);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_server_start(const parley_server_options* options, parley_server** out) {
  return parley::capi::call_free("parley_server_start", [&]() -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    std::vector<std::string> args;
    if (options != nullptr) {
      Status st = parley::capi::with_live(options, Kind::kServerOptions, [&] { args = options->args; });
      if (!st) return st;
    }
    return start(std::move(args), out);
  });
}

PARLEY_EXPORT int parley_server_port(parley_server* server, uint16_t* out) {
  return parley::capi::call("parley_server_port", server, [&](parley_server& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    *out = h.port();
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_server_stop(parley_server* server) {
  return parley::capi::call("parley_server_stop", server, [&](parley_server& h) -> Status {
    if (int rc = h.stop(); rc != 0)
      return parley::error(Code::kInternal, "parley-server exited with code " + std::to_string(rc));
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_server_destroy(parley_server* server) {
  return parley::capi::release("parley_server_destroy", server);
}

}  // extern "C"
