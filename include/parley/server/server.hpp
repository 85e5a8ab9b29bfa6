// Server: parley-server's adapters around one parley::Node, as a library
// part (target parley_server; examples/server/main.cpp is its thin main).
//
// One thread (the caller of run()) owns an Asio io_context on which
// websocketpp serves WebSocket clients (/v1/ws), the HTTP web service
// (/v1/...) and the web client (/), over TLS with --tls-cert (HTTPS and WSS
// only) or plain otherwise; the Node, its reads and the notifier are used
// only there. Other threads live at the edges and talk to the I/O
// thread by posting to it: the store executor (appends, with a store
// connection of its own, --store-executor thread), one HttpPoster per peer
// node and one for the webhook (outgoing HTTP), the peer listener
// (cpp-httplib, incoming peer batches) and one worker for password hashing.
#pragma once

#include <memory>
#include <string>

#include "parley/server/config.hpp"

namespace parley::server {

class Server {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the stores and starts listening; prints the listening line.
  // Returns a non-zero exit code on failure.
  int start();
  // Serves until SIGINT/SIGTERM (when config.handle_signals) or stop(), then
  // shuts down cleanly. Returns the exit code.
  int run();
  // Asks run() to shut down cleanly, as SIGTERM does. Thread-safe; callable
  // before run() (it then returns at once after start()).
  void stop();
  // The bound HTTP/WebSocket port (after start()); useful with port 0.
  uint16_t port() const;

 private:
  class Impl;  // an interface, implemented once per endpoint type (plain, TLS)
  template <typename WsConfig>
  friend class ServerImpl;
  template <typename WsConfig>
  friend class ShardedServer;
  std::unique_ptr<Impl> impl_;
};

// parley-server's whole command line: parses argv (and --config), answers
// --help, --version and --hash-password, or serves until stopped. Returns
// the process exit code.
int server_main(int argc, char** argv);

}  // namespace parley::server
