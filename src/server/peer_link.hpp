// PeerLink: parley-server's transport between nodes. Outgoing, one
// HttpPoster per --peer (a worker thread each, POSTing batches and removal
// notices in order); incoming, the peer listener on --peer-listen
// (cpp-httplib on a thread of its own, HTTPS with --peer-tls-*), which
// checks the cluster secret and hands each request to the owner's handlers.
// With --threads N the process runs N shards (docs/decisions.md 46): the
// other shards of this process are local peers, called in process, and a
// remote process is one poster per shard, reaching that process's shards
// through its one listener (shard 0's), which routes each batch by the
// `shard` query parameter.
// Thread rules: construct, listen(), send_batch() and the queries on the
// owner's thread; the handlers run on the listener's threads (the owner
// carries them over to its own thread), the done callbacks on the posters'
// (a local peer's: on that shard's thread).
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

namespace parley::server {
// The node id of shard `index` of a process whose --node-id is `node_id`:
// shard 0 has the process's id, shard k > 0 "ID#k".
std::string shard_node_id(const std::string& node_id, int index);
// The process part of a node id ("ID" of "ID#k") and the shard (k, or 0).
std::string process_of(const std::string& node_id);
int shard_of(const std::string& node_id);
}  // namespace parley::server

namespace httplib {
class Server;
}

namespace parley::server {

class PeerLink {
 public:
  struct Handlers {
    // A batch from a peer (the body of POST /v1/peer/batch) for this
    // process's shard `shard` (0 when the caller named none).
    std::function<Status(const std::string& body, int shard)> batch;
    // A peer's notice that `user` left or was removed from `group`.
    std::function<Status(const std::string& group, const std::string& user)> member_removed;
    // A peer's notice that the app disconnected `user`.
    std::function<Status(const std::string& user, const std::string& why)> disconnect;
  };

  // A shard of this process, reached without a socket.
  struct LocalPeer {
    // Hands a batch to the shard; `done` gets 204 or an error status, on
    // that shard's thread.
    std::function<void(Frame batch, HttpPoster::Done done)> batch;
    std::function<void(const std::string& group, const std::string& user)> member_removed;
    std::function<void(const std::string& user, const std::string& why)> disconnect;
  };

  explicit PeerLink(const Config& cfg);  // makes the posters
  // Adds a shard of this process as a peer (before the node runs).
  void add_local(const std::string& node_id, LocalPeer peer);
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
  // Tells every peer that the app disconnected `user` (best effort).
  void broadcast_disconnect(const std::string& user, const std::string& why);

  size_t peers() const { return posters_.size(); }
  // Calls fn(node_id, calls queued) for each peer, in id order.
  void for_each_peer(const std::function<void(const std::string&, size_t)>& fn) const;

 private:
  // POSTs a JSON notice to every peer process, once, not retried.
  void broadcast(const std::string& path, std::string json);

  const Config& cfg_;
  std::map<std::string, std::unique_ptr<HttpPoster>> posters_;  // by process (--peer id)
  std::map<std::string, LocalPeer> locals_;                     // by shard node id
  std::unique_ptr<httplib::Server> listener_;
  std::thread listener_thread_;
};

}  // namespace parley::server
