// The smallest embedding: three Parley nodes in one process on the memory
// stores, joined by an in-process network (LoopbackCluster), with a handful of
// users in two groups. It prints every delivery, then shows a user
// reconnecting to another node and resuming without loss.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "parley/loopback.hpp"
#include "parley/memory_store.hpp"

using namespace parley;

namespace {

struct Printer final : Notifier {
  void notify(const Notification& n) override {
    std::printf("  notify  %-6s %s#%llu from %s: \"%s\" (%s)\n", n.user_id.c_str(), n.group_id.c_str(),
                static_cast<unsigned long long>(n.msg_id), n.sender_id.c_str(), n.preview.c_str(),
                n.reason.c_str());
  }
};

void check(const Status& s, const char* what) {
  if (s) return;
  std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
  std::exit(1);
}

}  // namespace

int main() {
  auto messages = make_memory_message_store();
  auto members = make_memory_membership_store();
  auto directory = make_memory_session_directory();
  check(members->create_group("general", "alice"), "create general");
  for (const char* u : {"bob", "carol", "dave", "erin"})
    check(members->add("general", u, Role::kMember), "join");
  check(members->create_group("ops", "alice"), "create ops");
  check(members->add("ops", "dave", Role::kMember), "join ops");

  LoopbackCluster cluster(NodeStores{*messages, *members, *directory}, /*latency_ms=*/2);
  Printer printer;
  for (int i = 1; i <= 3; ++i) {
    NodeOptions o;
    o.node_id = "node-" + std::to_string(i);
    o.seed = static_cast<uint64_t>(i);
    check(cluster.add_node(o, &printer).status(), "add node");
  }

  std::map<SessionId, std::pair<std::string, std::string>> who;  // session -> (user, node)
  auto on_event = [&](SessionId s, const ServerEvent& ev) {
    const auto& [user, node] = who[s];
    if (auto* m = std::get_if<MessageEv>(&ev)) {
      std::printf("  [%5lld ms] %s -> %-6s %s#%llu from %s: \"%s\"\n",
                  static_cast<long long>(cluster.now_ms()), node.c_str(), user.c_str(),
                  m->message->group_id.c_str(), static_cast<unsigned long long>(m->message->msg_id),
                  m->message->user_id.c_str(), m->message->contents.c_str());
    } else if (auto* a = std::get_if<AckEv>(&ev)) {
      std::printf("  [%5lld ms] %s -> %-6s ack %s = %s#%llu\n", static_cast<long long>(cluster.now_ms()),
                  node.c_str(), user.c_str(), a->client_msg_id.c_str(), a->group_id.c_str(),
                  static_cast<unsigned long long>(a->msg_id));
    } else if (auto* e = std::get_if<ErrorEv>(&ev)) {
      std::printf("  [%5lld ms] %s -> %-6s error %s: %s\n", static_cast<long long>(cluster.now_ms()),
                  node.c_str(), user.c_str(), code_name(e->code), e->message.c_str());
    }
  };
  auto connect = [&](size_t node, const std::string& user) {
    Result<SessionId> s = cluster.connect(node, user, on_event);
    check(s.status(), "connect");
    who[*s] = {user, cluster.node(node).id()};
    return *s;
  };

  std::printf("three nodes, groups 'general' (5 members) and 'ops' (2 members)\n\n");
  SessionId alice = connect(0, "alice");
  SessionId bob = connect(1, "bob");
  SessionId carol = connect(2, "carol");
  SessionId dave = connect(2, "dave");
  for (SessionId s : {alice, bob, carol, dave}) cluster.request(s, ResumeReq{0, "general", 0, 0});
  for (SessionId s : {alice, dave}) cluster.request(s, ResumeReq{0, "ops", 0, 0});
  cluster.run_for(20);

  std::printf("alice and bob talk in 'general' (erin is offline: she is notified):\n");
  cluster.request(alice, SendReq{0, "general", "a1", "hello everyone"});
  cluster.run_for(20);
  cluster.request(bob, SendReq{0, "general", "b1", "hi alice"});
  cluster.run_for(20);
  std::printf("\nalice writes to 'ops'; bob is not a member and is refused:\n");
  cluster.request(alice, SendReq{0, "ops", "a2", "deploy at 5?"});
  cluster.request(bob, SendReq{0, "ops", "b2", "can I see ops?"});
  cluster.run_for(20);

  std::printf("\nbob disconnects; two messages arrive; he reconnects to node-3 and resumes after #2:\n");
  cluster.disconnect(bob);
  cluster.run_for(10);
  cluster.request(carol, SendReq{0, "general", "c1", "bob, are you there?"});
  cluster.request(dave, SendReq{0, "general", "d1", "he will catch up"});
  cluster.run_for(20);
  bob = connect(2, "bob");
  cluster.request(bob, ResumeReq{0, "general", 2, 0});
  cluster.run_for(20);
  std::printf("\nalice resends a1 (her ack was 'lost'): same id, no second message:\n");
  cluster.request(alice, SendReq{0, "general", "a1", "hello everyone"});
  cluster.run_for(20);
  return 0;
}
