// The unit tests' host and fixture for one Node on the memory stores.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "parley/memory_store.hpp"
#include "parley/node.hpp"

namespace parley::test {

// Records everything a node does; sessions drain instantly unless stalled.
struct TestHost : NodeHost {
  std::shared_ptr<ClientCodec> codec = make_msgpack_codec();
  std::map<SessionId, std::vector<ServerEvent>> events;
  std::map<SessionId, int> writes;
  std::map<SessionId, size_t> written;
  std::vector<std::pair<std::string, Frame>> peer_calls;
  std::map<SessionId, Status> closed;
  int64_t timer = INT64_MAX;

  void send_to_session(SessionId s, const std::vector<Frame>& frames) override {
    ++writes[s];
    for (const Frame& f : frames) {
      auto ev = codec->decode_event(f->data(), f->size());
      REQUIRE(ev.is_ok());
      events[s].push_back(*ev);
      written[s] += f->size();
    }
  }
  void close_session(SessionId s, const Status& reason) override { closed[s] = reason; }
  void send_to_node(const std::string& n, uint64_t, const Frame& batch) override {
    peer_calls.push_back({n, batch});
  }
  void set_timer(int64_t at) override { timer = at; }

  template <typename T>
  std::vector<T> of(SessionId s) {
    std::vector<T> out;
    for (const ServerEvent& e : events[s]) {
      if (auto* x = std::get_if<T>(&e)) out.push_back(*x);
    }
    return out;
  }
};

struct Fixture {
  ManualClock clock{1000};
  std::unique_ptr<MessageStore> messages = make_memory_message_store();
  std::unique_ptr<MembershipStore> members = make_memory_membership_store();
  std::unique_ptr<SessionDirectory> directory = make_memory_session_directory();
  RecordingNotifier notifier;
  TestHost host;
  std::unique_ptr<Node> node;

  // `store`: a message store of the test's own in place of the memory store;
  // `executor`: the node's StoreExecutor (null: appends inline).
  // `membership`, `dir`: stores of the test's own (e.g. shared with an executor).
  explicit Fixture(NodeOptions o = {}, std::unique_ptr<MessageStore> store = nullptr,
                   StoreExecutor* executor = nullptr, std::unique_ptr<MembershipStore> membership = nullptr,
                   std::unique_ptr<SessionDirectory> dir = nullptr) {
    if (store) messages = std::move(store);
    if (membership) members = std::move(membership);
    if (dir) directory = std::move(dir);
    node = std::make_unique<Node>(o, NodeStores{*messages, *members, *directory, nullptr, executor}, host, clock,
                                  &notifier);
    REQUIRE(node->start().is_ok());
    REQUIRE(members->create_group("g", "alice").is_ok());
    REQUIRE(members->add("g", "bob", Role::kMember).is_ok());
    REQUIRE(members->add("g", "carol", Role::kMember).is_ok());
  }
  void send(SessionId s, const std::string& cid, const std::string& text, const std::string& g = "g") {
    node->on_client_request(s, SendReq{0, g, cid, text});
  }
  void drain(SessionId s) {
    node->on_session_drained(s, host.written[s]);
    host.written[s] = 0;
  }
};

// node-1 (the fixture's node) and a second node, "peer", on the same stores.
// exchange() hands each node's peer calls to the other and answers them.
struct TwoNodes {
  Fixture f;  // node-1
  TestHost peer_host;
  std::unique_ptr<Node> peer;
  size_t to_peer = 0, to_node1 = 0;
  TwoNodes() {
    NodeOptions po;
    po.node_id = "peer";
    peer = std::make_unique<Node>(po, NodeStores{*f.messages, *f.members, *f.directory}, peer_host, f.clock);
    REQUIRE(peer->start().is_ok());
  }
  // alice on node-1 (session 1) and on the peer (10), bob on the peer (11).
  void alice_on_both_bob_on_peer() {
    REQUIRE(f.node->open_session(1, "alice").is_ok());
    REQUIRE(peer->open_session(10, "alice").is_ok());
    REQUIRE(peer->open_session(11, "bob").is_ok());
    exchange();
  }
  void exchange() {
    for (int round = 0; round < 4; ++round) {
      f.node->flush();
      peer->flush();
      for (; to_peer < f.host.peer_calls.size(); ++to_peer) {
        const Frame& b = f.host.peer_calls[to_peer].second;
        REQUIRE(peer->on_peer_batch(b->data(), b->size()).is_ok());
        f.node->on_peer_result("peer", to_peer + 1, true);
      }
      for (; to_node1 < peer_host.peer_calls.size(); ++to_node1) {
        const Frame& b = peer_host.peer_calls[to_node1].second;
        REQUIRE(f.node->on_peer_batch(b->data(), b->size()).is_ok());
        peer->on_peer_result("node-1", to_node1 + 1, true);
      }
    }
  }
};

}  // namespace parley::test
