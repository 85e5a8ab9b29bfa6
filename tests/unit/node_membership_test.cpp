// The node's membership cache: a member's requests need no store read, a
// removal ends the cached membership at once on every node told, a node not
// told stops trusting it after membership_ttl_ms, and a join is seen at once.
#include <doctest/doctest.h>

#include "core/node_impl.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;
using parley::test::Fixture;
using parley::test::TestHost;

namespace {
// A second node on the fixture's stores (another server of the cluster).
struct SecondNode {
  TestHost host;
  std::unique_ptr<Node> node;
  explicit SecondNode(Fixture& f, NodeOptions o = {}) {
    o.node_id = "node-2";
    node = std::make_unique<Node>(o, NodeStores{*f.messages, *f.members, *f.directory}, host, f.clock);
    REQUIRE(node->start().is_ok());
  }
};

size_t stored(Fixture& f) {
  std::vector<Message> all;
  REQUIRE(f.messages->read("g", 0, 1000, &all).is_ok());
  return all.size();
}
}  // namespace

TEST_CASE("a member's sends are authorised from the node's cache: one membership read for many sends") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 10; ++i) {
    f.send(1, "c" + std::to_string(i), "m");
    f.node->flush();
    f.drain(1);
    f.clock.advance(100);
  }
  CHECK(f.host.of<AckEv>(1).size() == 10);
  CHECK(f.node->stats().membership_reads == 1);
}

TEST_CASE("a removed member's send is refused on every node told, though its membership was cached") {
  Fixture f;
  SecondNode b(f);
  REQUIRE(f.node->open_session(1, "bob").is_ok());
  REQUIRE(b.node->open_session(2, "bob").is_ok());
  f.send(1, "a1", "on node 1");
  b.node->on_client_request(2, SendReq{0, "g", "b1", "on node 2"});
  f.node->flush();
  b.node->flush();
  REQUIRE(f.host.of<AckEv>(1).size() == 1);
  REQUIRE(b.host.of<AckEv>(2).size() == 1);
  // The owner removes bob; the server tells every node.
  REQUIRE(f.members->remove("g", "bob").is_ok());
  f.node->member_removed("g", "bob");
  b.node->member_removed("g", "bob");
  f.send(1, "a2", "still here?");
  b.node->on_client_request(2, SendReq{0, "g", "b2", "still here?"});
  f.node->flush();
  b.node->flush();
  REQUIRE(f.host.of<ErrorEv>(1).size() == 1);
  CHECK(f.host.of<ErrorEv>(1)[0].code == Code::kPermissionDenied);
  REQUIRE(b.host.of<ErrorEv>(2).size() == 1);
  CHECK(b.host.of<ErrorEv>(2)[0].code == Code::kPermissionDenied);
  CHECK(stored(f) == 2);
}

TEST_CASE("a node not told of a removal refuses the removed member once membership_ttl_ms has passed") {
  Fixture f;
  NodeOptions o;
  o.membership_ttl_ms = 5000;
  SecondNode b(f, o);
  REQUIRE(b.node->open_session(2, "bob").is_ok());
  b.node->on_client_request(2, SendReq{0, "g", "b1", "cached"});
  b.node->flush();
  REQUIRE(b.host.of<AckEv>(2).size() == 1);
  REQUIRE(f.members->remove("g", "bob").is_ok());  // node-2 is never told
  f.clock.advance(5000);
  b.node->on_client_request(2, SendReq{0, "g", "b2", "too late"});
  b.node->flush();
  REQUIRE(b.host.of<ErrorEv>(2).size() == 1);
  CHECK(b.host.of<ErrorEv>(2)[0].code == Code::kPermissionDenied);
  CHECK(stored(f) == 1);
}

TEST_CASE("a join elsewhere counts at once: non-members are never cached") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "dave").is_ok());
  f.send(1, "d1", "let me in");
  f.node->flush();
  REQUIRE(f.host.of<ErrorEv>(1).size() == 1);
  CHECK(f.host.of<ErrorEv>(1)[0].code == Code::kPermissionDenied);
  REQUIRE(f.members->add("g", "dave", Role::kMember).is_ok());  // joined through another node
  f.send(1, "d2", "now?");
  f.node->flush();
  CHECK(f.host.of<AckEv>(1).size() == 1);
  CHECK(stored(f) == 1);
}

// The FIFO behind each session's unwritten messages (node_impl.hpp).
TEST_CASE("a session's FIFO of unwritten messages keeps order across compaction and refills after emptying") {
  parley::node_parts::Fifo<int> q;
  CHECK(q.empty());
  for (int i = 0; i < 200; ++i) q.emplace_back(i);
  for (int i = 0; i < 150; ++i) {
    REQUIRE(q.front() == i);
    q.pop_front();  // compacts once 64+ are consumed and they are half the buffer
  }
  std::vector<int> rest(q.begin(), q.end());
  REQUIRE(rest.size() == 50);
  CHECK(rest.front() == 150);
  CHECK(rest.back() == 199);
  while (!q.empty()) q.pop_front();
  q.emplace_back(7);
  CHECK(q.front() == 7);
  CHECK(std::vector<int>(q.begin(), q.end()) == std::vector<int>{7});
}
