// HttpPoster: one worker thread that POSTs queued requests, in order, to one
// HTTP server over one keep-alive connection (cpp-httplib). Used for the peer
// transport (one per peer node) and the webhook notifier. With Options::tls
// it speaks HTTPS, shows tls.cert and checks the server's certificate against
// tls.ca and the host name; a refused certificate fails the request.
//
// post() never blocks: a full queue refuses the request (returns false).
// Each request's `done` callback runs on the worker thread with the HTTP
// status (0 when the request failed: connect error, timeout); hand it back
// to the owner's thread yourself. A request that gets no answer is logged
// (warn) once per reason until the server answers again (info), so a down or
// misconfigured server is reported, not every request to it. The destructor
// aborts the request in progress (it does not wait for a server that does
// not answer) and stops the worker; queued requests are dropped (done is not
// called).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tls.hpp"

namespace httplib {
class ClientImpl;
}

namespace parley::server {

class HttpPoster {
 public:
  struct Options {
    std::string host;
    uint16_t port = 0;
    int64_t timeout_ms = 2000;  // connect, read and write each
    size_t max_queued = 10000;
    std::string authorization;  // sent as the Authorization header if set
    bool use_tls = false;
    TlsFiles tls;  // with use_tls: client certificate (optional) and CA (required)
    // Called on the worker thread with each new connection's socket, once the
    // poster has set its options (TCP_NODELAY): a caller may add its own
    // (SO_MARK, buffer sizes) or check them.
    std::function<void(int fd)> on_socket;
  };
  using Done = std::function<void(int status)>;

  explicit HttpPoster(Options options);
  ~HttpPoster();
  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;

  bool post(std::string path, std::shared_ptr<const std::string> body, std::string content_type, Done done);
  size_t queued() const;

 private:
  struct Job {
    std::string path;
    std::shared_ptr<const std::string> body;
    std::string content_type;
    Done done;
  };
  void run();

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  httplib::ClientImpl* client_ = nullptr;  // the worker's, while it has one (under mutex_)
  std::thread worker_;
};

}  // namespace parley::server
