// PeerLink: parley-server's transport between nodes. Outgoing, one
// HttpPoster per --peer (a worker thread each, POSTing batches and removal
// notices in order); incoming, the peer listener on --peer-listen
// (cpp-httplib on a thread of its own, HTTPS with --peer-tls-*), which
// checks the cluster secret and hands each request to the owner's handlers.
// Thread rules: construct, listen(), send_batch() and the queries on the
// owner's thread; the handlers run on the listener's threads (the owner
// carries them over to its own thread), the done callbacks on the posters'.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "http_poster.hpp"
#include "parley/protocol.hpp"
#include "parley/server/config.hpp"
#include "parley/status.hpp"

namespace httplib {
class Server;
}

namespace parley::server {

class PeerLink {
 public:
  struct Handlers {
    // A batch from a peer (the body of POST /v1/peer/batch).
    std::function<Status(const std::string& body)> batch;
    // A peer's notice that `user` left or was removed from `group`.
    std::function<Status(const std::string& group, const std::string& user)> member_removed;
  };

  explicit PeerLink(const Config& cfg);  // makes the posters
  ~PeerLink();                           // stops the listener and the posters
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  // Starts the listener when --peer-listen is set. Returns an exit code:
  // 0, 1 (cannot listen, bad TLS files) or 2 (bad configuration).
  int listen(Handlers handlers);
  // Stops accepting (in-flight requests finish). Any thread.
  void stop_listening();

  // POSTs a batch to `node_id`; false if there is no such peer or its queue
  // is full (done is then never called).
  bool send_batch(const std::string& node_id, Frame batch, HttpPoster::Done done);
  // Tells every peer that `user` left `group` (best effort).
  void broadcast_member_removed(const std::string& group, const std::string& user);

  size_t peers() const { return posters_.size(); }
  // Calls fn(node_id, calls queued) for each peer, in id order.
  void for_each_peer(const std::function<void(const std::string&, size_t)>& fn) const;

 private:
  const Config& cfg_;
  std::map<std::string, std::unique_ptr<HttpPoster>> posters_;
  std::unique_ptr<httplib::Server> listener_;
  std::thread listener_thread_;
};

}  // namespace parley::server
