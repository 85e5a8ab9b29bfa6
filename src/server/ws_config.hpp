// websocketpp's configuration for parley-server: single-threaded standalone
// Asio, per-connection state (ConnData) kept inside websocketpp's connection
// object, RFC 6455 only, plain TCP or TLS.
#pragma once

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio.hpp>

#include <cstdint>
#include <string>

#include "parley/node.hpp"

namespace parley::server {

// Per-connection state kept inside websocketpp's connection object.
struct ConnData {
  SessionId session = 0;  // 0: not a chat session (plain HTTP)
  std::string user;
  int64_t expires_at_ms = 0; // when the token it connected with expires (the session ends then)
  size_t handed = 0;         // payload bytes given to websocketpp
  size_t reported = 0;       // of those, reported drained to the node
  int64_t heard_ms = 0;      // when the client last sent a frame (data, ping or pong)
  bool pinged = false;       // a ping went out since then
  bool idle_closed = false;  // closed by the idle timeout
};

// websocketpp's request, except that an upgrade without Sec-WebSocket-Version
// reads as an unparsable version (answered 400 "can't determine version")
// instead of selecting the hixie-76 draft, whose handshake websocketpp
// answers with a 500 when its 8 trailing key bytes are missing. Shadowing
// works because websocketpp's processor functions are templates on the type.
class Request : public websocketpp::http::parser::request {
 public:
  const std::string& get_header(const std::string& key) const {
    const std::string& value = websocketpp::http::parser::request::get_header(key);
    if (value.empty() && key == "Sec-WebSocket-Version") {
      static const std::string kNone = "none";
      return kNone;
    }
    return value;
  }
  // Frees the handshake's headers and body once the connection is open:
  // websocketpp keeps its request for the connection's life (about 1 KB per
  // connection; decision 54). Nothing reads them after the open handler.
  void shed() {
    websocketpp::http::parser::header_list().swap(m_headers);
    std::string().swap(m_body);
  }
};

// websocketpp's response, which it also keeps for the connection's life:
// shed() frees the handshake response's headers once it is written.
class Response : public websocketpp::http::parser::response {
 public:
  void shed() {
    websocketpp::http::parser::header_list().swap(m_headers);
    std::string().swap(m_body);
  }
};

// websocketpp on standalone Asio, single-threaded: no locks, no strands; a
// small read buffer per connection (most frames are small). SocketType is
// plain TCP (as in websocketpp::config::asio) or TLS (as in
// websocketpp::config::asio_tls); the server is built for each.
template <typename SocketType>
struct WsConfig : public websocketpp::config::asio {
  typedef WsConfig type;
  typedef websocketpp::config::asio base;
  typedef websocketpp::concurrency::none concurrency_type;
  typedef Request request_type;
  typedef Response response_type;
  typedef base::message_type message_type;
  typedef base::con_msg_manager_type con_msg_manager_type;
  typedef base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef base::alog_type alog_type;
  typedef base::elog_type elog_type;
  typedef base::rng_type rng_type;
  typedef ConnData connection_base;
  struct transport_config : public base::transport_config {
    typedef typename type::concurrency_type concurrency_type;
    typedef typename type::alog_type alog_type;
    typedef typename type::elog_type elog_type;
    typedef typename type::request_type request_type;
    typedef typename type::response_type response_type;
    typedef SocketType socket_type;
    static const bool enable_multithreading = false;
    // Ending a TLS connection waits for the client's close_notify, which
    // Asio's TLS shutdown never sees while websocketpp still has a read
    // pending (as it has on every WebSocket), so each WSS close would last
    // this whole timeout (websocketpp's default is 5 s) before the session
    // ends. The WebSocket close handshake is complete by then. Plain TCP
    // shuts down at once and never waits.
    static const long timeout_socket_shutdown = 250;
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;
  static const size_t connection_read_buffer_size = 1024;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using PlainWsConfig = WsConfig<websocketpp::transport::asio::basic_socket::endpoint>;
using TlsWsConfig = WsConfig<websocketpp::transport::asio::tls_socket::endpoint>;
using Hdl = websocketpp::connection_hdl;


}  // namespace parley::server
