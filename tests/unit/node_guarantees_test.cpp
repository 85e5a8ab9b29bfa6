// Node guarantees the mutation campaign (tests/mutation/mutants.txt) showed
// untested: presence subscriptions, member removal, notification rules,
// paused subscriptions, the send bucket's refill. Each case names one
// guarantee and fails when it breaks.
#include <doctest/doctest.h>

#include "parley/memory_store.hpp"
#include "parley/node.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;
using parley::test::Fixture;
using parley::test::TestHost;
using parley::test::TwoNodes;

namespace {
std::vector<uint64_t> ids_of(const std::vector<MessageEv>& msgs) {
  std::vector<uint64_t> out;
  for (const MessageEv& m : msgs) out.push_back(m.message->msg_id);
  return out;
}
size_t notified(const RecordingNotifier& n, const std::string& user) {
  size_t k = 0;
  for (const Notification& x : n.sent) k += x.user_id == user;
  return k;
}
}  // namespace

TEST_CASE("presence events reach only sessions that asked for them, and never the user's own") {
  Fixture f;
  REQUIRE(f.node->open_session(2, "bob").is_ok());  // asks for presence
  f.node->on_client_request(2, PresenceReq{0, PresenceStatus::kOnline, true});
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  REQUIRE(f.node->open_session(3, "carol").is_ok());  // in the group, never asked
  f.node->on_client_request(3, ResumeReq{0, "g", 0, 0});
  REQUIRE(f.node->open_session(4, "carol").is_ok());  // asked, then unsubscribed
  f.node->on_client_request(4, PresenceReq{0, PresenceStatus::kOnline, true});
  f.node->on_client_request(4, PresenceReq{0, PresenceStatus::kOnline, false});
  f.node->on_client_request(4, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  REQUIRE(f.node->open_session(1, "alice").is_ok());  // alice asks, in the group
  f.node->on_client_request(1, PresenceReq{0, PresenceStatus::kOnline, true});
  f.node->on_client_request(1, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  f.node->on_client_request(1, TypingReq{0, "g"});
  f.node->on_client_request(1, PresenceReq{0, PresenceStatus::kAway, true});
  f.node->flush();
  std::vector<PresenceEv> bob;  // of alice (carol's coming online is there too)
  for (const PresenceEv& e : f.host.of<PresenceEv>(2)) {
    if (e.user_id == "alice") bob.push_back(e);
  }
  REQUIRE(bob.size() == 3);  // alice online, typing, away
  CHECK(bob[0].status == PresenceStatus::kOnline);
  CHECK(bob[1].typing);
  CHECK(bob[2].status == PresenceStatus::kAway);
  CHECK(f.host.of<PresenceEv>(3).empty());
  CHECK(f.host.of<PresenceEv>(4).empty());
  CHECK(f.host.of<PresenceEv>(1).empty());  // alice is not told of herself
  // carol asks now: from then on she is told.
  f.node->on_client_request(3, PresenceReq{0, PresenceStatus::kOnline, true});
  f.node->on_client_request(1, PresenceReq{0, PresenceStatus::kOnline, true});
  f.node->flush();
  REQUIRE(f.host.of<PresenceEv>(3).size() == 1);
  CHECK(f.host.of<PresenceEv>(3)[0].user_id == "alice");
}

TEST_CASE("a removed member's every session on the node stops receiving the group") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (SessionId s : {2, 3, 4}) {  // bob's laptop, phone and tablet
    REQUIRE(f.node->open_session(s, "bob").is_ok());
    f.node->on_client_request(s, ResumeReq{0, "g", 0, 0});
  }
  REQUIRE(f.node->open_session(5, "carol").is_ok());
  f.node->on_client_request(5, ResumeReq{0, "g", 0, 0});
  f.send(1, "c1", "before");
  f.node->flush();
  for (SessionId s : {2, 3, 4, 5}) REQUIRE(f.host.of<MessageEv>(s).size() == 1);
  REQUIRE(f.members->remove("g", "bob").is_ok());
  f.node->member_removed("g", "bob");
  f.send(1, "c2", "after");
  f.node->flush();
  for (SessionId s : {2, 3, 4}) {
    CAPTURE(s);
    CHECK(f.host.of<MessageEv>(s).size() == 1);
  }
  CHECK(f.host.of<MessageEv>(5).size() == 2);
  // bob's sends are refused on every session.
  f.send(3, "b1", "still here?");
  f.node->flush();
  REQUIRE(f.host.of<ErrorEv>(3).size() == 1);
  CHECK(f.host.of<ErrorEv>(3)[0].code == Code::kPermissionDenied);
}

TEST_CASE("a removed member is not notified of the group's messages any more") {
  Fixture f;  // route_ttl_ms 1000: the route would be reused within the second
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.send(1, "c1", "for carol");
  f.node->flush();
  REQUIRE(notified(f.notifier, "carol") == 1);
  REQUIRE(f.members->remove("g", "carol").is_ok());
  f.node->member_removed("g", "carol");
  f.send(1, "c2", "not for carol");
  f.node->flush();
  CHECK(notified(f.notifier, "carol") == 1);
}

TEST_CASE("the sender is never notified of its own message, even when it left before the commit") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "c1", "sent, then gone");
  f.node->close_session(1, Status::ok());  // before the turn's commit
  f.node->flush();
  std::vector<Message> stored;
  REQUIRE(f.messages->read("g", 0, 10, &stored).is_ok());
  REQUIRE(stored.size() == 1);
  CHECK(notified(f.notifier, "alice") == 0);
  CHECK(notified(f.notifier, "bob") == 1);
  CHECK(notified(f.notifier, "carol") == 1);
}

TEST_CASE("a member who came online elsewhere between routing and commit is not notified") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.send(1, "c1", "carol is offline");
  f.node->flush();
  REQUIRE(notified(f.notifier, "carol") == 1);
  // carol connects to another node; this node's cached route still has her offline.
  REQUIRE(f.directory->put("carol", "node-2", f.clock.now_ms() + 30000).is_ok());
  f.send(1, "c2", "carol is online on node-2");
  f.node->flush();
  CHECK(notified(f.notifier, "carol") == 1);
}

TEST_CASE("a failed session's messages are not notified while the user is connected to another node") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  f.drain(2);
  REQUIRE(f.directory->put("bob", "node-2", f.clock.now_ms() + 30000).is_ok());  // bob's phone
  f.send(1, "c1", "queued to the laptop, never written");
  f.node->flush();
  f.node->close_session(2, error(Code::kUnavailable, "connection reset"));
  f.node->flush();
  CHECK(notified(f.notifier, "bob") == 0);
}

TEST_CASE("a duplicate send is acknowledged with the original id, and neither delivered nor notified again") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.send(1, "c1", "once");
  f.node->flush();
  f.send(1, "c1", "once");
  f.node->flush();
  REQUIRE(f.host.of<AckEv>(1).size() == 2);
  CHECK(f.host.of<AckEv>(1)[1].duplicate);
  CHECK(f.host.of<MessageEv>(2).size() == 1);
  CHECK(notified(f.notifier, "carol") == 1);
  CHECK(f.node->stats().duplicate_sends == 1);
}

TEST_CASE("a paused subscription gets nothing pushed until its client resumes") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.send(1, "c1", "epoch 1");
  f.node->flush();
  REQUIRE(f.host.of<MessageEv>(2).size() == 1);
  // The group is reset; the head sync tells the node, which pauses bob at 0.
  REQUIRE(f.messages->reset_group("g").is_ok());
  f.clock.advance(1500);
  f.node->on_timer();
  REQUIRE(f.host.of<EpochEv>(2).size() == 1);
  f.send(1, "c2", "epoch 2, #1");
  f.node->flush();
  CHECK(f.host.of<MessageEv>(2).size() == 1);  // not pushed while paused
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 2});
  f.node->flush();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 2);  // once, after the resume
  CHECK(msgs[1].message->epoch == 2);
  CHECK(msgs[1].message->msg_id == 1);
}

TEST_CASE("the send bucket refills at the rate from the last send, not from the first") {
  NodeOptions o;
  o.send_rate_per_user = 10;  // a token every 100 ms
  o.send_burst_per_user = 2;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "a", "m");
  f.send(1, "b", "m");
  f.node->flush();
  REQUIRE(f.host.of<AckEv>(1).size() == 2);
  f.clock.advance(100);  // one token back
  f.send(1, "c", "m");
  f.send(1, "d", "m");
  f.node->flush();
  CHECK(f.host.of<AckEv>(1).size() == 3);
  REQUIRE(f.host.of<ErrorEv>(1).size() == 1);
  CHECK(f.host.of<ErrorEv>(1)[0].client_msg_id == "d");
  CHECK(f.host.of<ErrorEv>(1)[0].retry_after_ms == 100);
}

TEST_CASE("a notification preview is cut at a character boundary, never inside a UTF-8 sequence") {
  NodeOptions o;
  o.notify_preview_bytes = 4;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.send(1, "c1", "abc\xc3\xa9z");     // "abcéz": the 4th byte starts é
  f.send(1, "c2", "ab\xe2\x82\xacz");  // "ab€z": the 4-byte cut falls inside €
  f.send(1, "c3", "abcd");
  f.node->flush();
  REQUIRE(f.notifier.sent.size() == 3);
  CHECK(f.notifier.sent[0].preview == "abc");
  CHECK(f.notifier.sent[1].preview == "ab");
  CHECK(f.notifier.sent[2].preview == "abcd");
}

namespace {
// The memory store, with appends that fail while `down` is set, and
// retention as a store with it has: ids up to `trimmed` are gone.
struct FlakyStore final : MessageStore {
  std::unique_ptr<MessageStore> inner = make_memory_message_store();
  bool down = false;
  uint64_t trimmed = 0;
  Status append(const std::vector<AppendRequest>& r, std::vector<AppendOutcome>* out) override {
    if (down) return error(Code::kUnavailable, "disk unplugged");
    return inner->append(r, out);
  }
  Status read(const std::string& g, uint64_t after, size_t limit, std::vector<Message>* out) override {
    if (after < trimmed) return error(Code::kTrimmed, "history is trimmed");
    return inner->read(g, after, limit, out);
  }
  Status read_folded(const std::string& g, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override {
    if (after < trimmed) return error(Code::kTrimmed, "history is trimmed");
    return inner->read_folded(g, after, limit, reader, out);
  }
  Status heads(const std::vector<std::string>& g, std::vector<GroupHead>* out) override {
    const size_t from = out->size();
    Status s = inner->heads(g, out);
    for (size_t i = from; i < out->size(); ++i) (*out)[i].trimmed = trimmed;
    return s;
  }
  Result<uint64_t> reset_group(const std::string& g) override { return inner->reset_group(g); }
  Status unread(const std::vector<UnreadQuery>& q, std::vector<UnreadCount>* out) override {
    return inner->unread(q, out);
  }
};
}  // namespace

TEST_CASE("a send whose commit failed gets an error with its cid, never an ack, and nothing is delivered") {
  auto store = std::make_unique<FlakyStore>();
  FlakyStore* flaky = store.get();
  Fixture f({}, std::move(store));
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  flaky->down = true;
  f.node->on_client_request(1, SendReq{7, "g", "c1", "lost?"});
  f.node->on_client_request(1, SendReq{8, "g", "c2", "lost too?"});
  f.node->flush();
  CHECK(f.host.of<AckEv>(1).empty());
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rid == 7);
  CHECK(errors[0].client_msg_id == "c1");
  CHECK(errors[0].code == Code::kUnavailable);
  CHECK(errors[1].client_msg_id == "c2");
  CHECK(f.host.of<MessageEv>(2).empty());
  CHECK(f.notifier.sent.empty());
  // The client's resend, once the store is back, is stored once.
  flaky->down = false;
  f.node->on_client_request(1, SendReq{9, "g", "c1", "lost?"});
  f.node->flush();
  REQUIRE(f.host.of<AckEv>(1).size() == 1);
  CHECK(f.host.of<AckEv>(1)[0].msg_id == 1);
  CHECK_FALSE(f.host.of<AckEv>(1)[0].duplicate);
}

TEST_CASE("a node that starts following a group is forwarded its messages at once, not when a route expires") {
  TwoNodes t;  // node-1: bob will follow "h" here
  Fixture& f = t.f;
  REQUIRE(f.members->create_group("h", "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());  // bob is online on node-1, not yet in "h"
  REQUIRE(t.peer->open_session(10, "alice").is_ok());
  t.exchange();
  t.peer->on_client_request(10, SendReq{0, "h", "a1", "only alice is here"});
  t.exchange();  // the peer's route of "h" is cached: alice alone
  const size_t calls_before = t.peer_host.peer_calls.size();
  REQUIRE(f.members->add("h", "bob", Role::kMember).is_ok());
  f.node->on_client_request(2, ResumeReq{0, "h", 0, 0});
  t.exchange();  // node-1 announces its interest in "h"
  t.peer->on_client_request(10, SendReq{0, "h", "a2", "bob is here now"});
  t.exchange();  // no time passes: the route must not be the cached one
  CHECK(t.peer_host.peer_calls.size() > calls_before);
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0].message->msg_id == 1);
  CHECK(msgs[1].message->msg_id == 2);
}

TEST_CASE("what a node committed between a follower's head read and its interest is sent again, not healed") {
  TwoNodes t;
  Fixture& f = t.f;
  REQUIRE(f.members->create_group("h", "alice").is_ok());
  REQUIRE(f.members->add("h", "bob", Role::kMember).is_ok());
  REQUIRE(t.peer->open_session(10, "alice").is_ok());
  t.peer->on_client_request(10, ResumeReq{0, "h", 0, 0});
  t.peer->on_client_request(10, SendReq{0, "h", "a1", "before bob"});
  t.exchange();  // the peer follows "h"; its route, cached, has no other node
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "h", 0, 0});  // reads head 1, announces interest
  f.node->flush();                                         // the interest is on its way...
  t.peer->on_client_request(10, SendReq{0, "h", "a2", "while bob's interest travels"});
  t.peer->flush();  // ...and message 2 goes by the cached route: to nobody
  CHECK(t.peer_host.peer_calls.empty());
  t.exchange();  // the interest arrives; no time passes, no head sync
  CHECK(t.peer->stats().resent_on_interest == 1);
  CHECK(ids_of(f.host.of<MessageEv>(2)) == std::vector<uint64_t>{1, 2});
  CHECK(f.node->stats().catch_ups == 0);
  // Later messages go by the new route, once each.
  t.peer->on_client_request(10, SendReq{0, "h", "a3", "after"});
  t.exchange();
  CHECK(ids_of(f.host.of<MessageEv>(2)) == std::vector<uint64_t>{1, 2, 3});
  CHECK(t.peer->stats().resent_on_interest == 1);
}

TEST_CASE("a pull returns at most max_read_limit messages, whatever limit it asks for") {
  NodeOptions o;
  o.limits.max_read_limit = 10;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 25; ++i) f.send(1, "c" + std::to_string(i), "m");
  f.node->flush();
  Result<PullResultEv> r = f.node->pull("bob", PullReq{0, "g", 0, 1000});
  REQUIRE(r.is_ok());
  REQUIRE(r->messages.size() == 10);
  CHECK(r->messages.front()->msg_id == 1);
  CHECK(r->messages.back()->msg_id == 10);
  CHECK(r->head == 25);
}

TEST_CASE("one turn's burst past the queue bound reaches a session that wrote everything, more before it is written cuts it off") {
  NodeOptions o;
  o.session_queue_bytes = 4096;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  f.drain(2);
  // One commit of 8 x 1000 bytes: twice the bound, all in one turn.
  for (int i = 0; i < 8; ++i) f.send(1, "a" + std::to_string(i), std::string(1000, 'a'));
  f.node->flush();
  CHECK(f.host.closed.count(2) == 0);
  CHECK(f.host.of<MessageEv>(2).size() == 8);
  CHECK(f.host.written[2] > o.session_queue_bytes);
  // Nothing of it written yet, and another turn's messages arrive: behind.
  f.drain(1);
  f.send(1, "b0", std::string(1000, 'b'));
  f.node->flush();
  CHECK(f.host.closed.count(2) == 1);
  CHECK(f.host.closed[2].code() == Code::kBackpressure);
  CHECK(f.host.of<FellBehindEv>(2).size() == 1);
}

TEST_CASE("a session resuming a long history is fed as it drains, never cut off for it") {
  NodeOptions o;
  o.session_queue_bytes = 4096;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 100; ++i) f.send(1, "c" + std::to_string(i), std::string(100, 'x'));
  f.node->flush();
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  for (int turn = 0; turn < 100 && f.host.of<ResumedEv>(2).empty(); ++turn) {
    CHECK(f.host.written[2] <= o.session_queue_bytes);
    f.drain(2);
    f.node->flush();
  }
  CHECK(f.host.closed.count(2) == 0);
  CHECK(f.host.of<FellBehindEv>(2).empty());
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(ids_of(f.host.of<MessageEv>(2)).size() == 100);
  CHECK(ids_of(f.host.of<MessageEv>(2)).back() == 100);
}

TEST_CASE("a session behind trimmed history is told where it starts again, and moves on past the hole") {
  NodeOptions o;
  o.tail_per_group = 4;  // the node's cache does not reach back either
  auto store = std::make_unique<FlakyStore>();
  FlakyStore* flaky = store.get();
  Fixture f(o, std::move(store));
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 10; ++i) f.send(1, "c" + std::to_string(i), "m");
  f.node->flush();
  flaky->trimmed = 5;  // retention removed 1..5
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{42, "g", 0, 0});
  f.node->flush();
  auto errors = f.host.of<ErrorEv>(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kTrimmed);
  CHECK(errors[0].rid == 42);
  CHECK(errors[0].message.find("before id 6") != std::string::npos);
  CHECK(ids_of(f.host.of<MessageEv>(2)) == std::vector<uint64_t>{6, 7, 8, 9, 10});
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(f.host.of<ResumedEv>(2)[0].head == 10);
}

TEST_CASE("a resume is fed only while the session's queue has room: live traffic plus history never cut it off") {
  NodeOptions o;
  o.session_queue_bytes = 4096;
  Fixture f(o);
  REQUIRE(f.members->create_group("h", "alice").is_ok());
  REQUIRE(f.members->add("h", "bob", Role::kMember).is_ok());
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 4; ++i) f.send(1, "h" + std::to_string(i), std::string(1400, 'h'), "h");
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  f.drain(2);
  // Two large live messages wait unwritten: the queue is past half full...
  f.send(1, "g0", std::string(1400, 'g'));
  f.send(1, "g1", std::string(1400, 'g'));
  f.node->flush();
  REQUIRE(f.host.of<MessageEv>(2).size() == 2);
  // ... when bob resumes "h": its history must wait for the queue to drain.
  f.node->on_client_request(2, ResumeReq{0, "h", 0, 0});
  f.node->flush();
  CHECK(f.host.closed.count(2) == 0);
  for (int turn = 0; turn < 20 && f.host.of<ResumedEv>(2).size() < 2; ++turn) {
    f.drain(2);
    f.node->flush();
  }
  CHECK(f.host.closed.count(2) == 0);
  CHECK(f.host.of<FellBehindEv>(2).empty());
  CHECK(f.host.of<MessageEv>(2).size() == 6);
}

TEST_CASE("a client resuming with a copy of an older epoch is told the new one and gets it from the start") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 3; ++i) f.send(1, "old" + std::to_string(i), "epoch 1");
  f.node->flush();
  REQUIRE(f.messages->reset_group("g").is_ok());
  std::vector<AppendOutcome> out;
  REQUIRE(f.messages->append({{"g", "carol", "n1", "new 1", 0}, {"g", "carol", "n2", "new 2", 0}}, &out).is_ok());
  // bob's phone held 1..3 of epoch 1; it reconnects after the reset.
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{5, "g", 3, 1});
  f.node->flush();
  auto epochs = f.host.of<EpochEv>(2);
  REQUIRE(epochs.size() == 1);
  CHECK(epochs[0].epoch == 2);
  auto msgs = f.host.of<MessageEv>(2);
  CHECK(ids_of(msgs) == std::vector<uint64_t>{1, 2});
  for (const MessageEv& m : msgs) CHECK(m.message->epoch == 2);
  REQUIRE(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(f.host.of<ResumedEv>(2)[0].epoch == 2);
}

TEST_CASE("a pull naming an older epoch is refused with epoch_mismatch, never answered from the new history") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "old", "epoch 1");
  f.node->flush();
  REQUIRE(f.messages->reset_group("g").is_ok());
  std::vector<AppendOutcome> out;
  REQUIRE(f.messages->append({{"g", "carol", "n1", "new 1", 0}}, &out).is_ok());
  Result<PullResultEv> stale = f.node->pull("bob", PullReq{0, "g", 0, 10, 1});
  CHECK(stale.status().code() == Code::kEpochMismatch);
  Result<PullResultEv> fresh = f.node->pull("bob", PullReq{0, "g", 0, 10, 2});
  REQUIRE(fresh.is_ok());
  REQUIRE(fresh->messages.size() == 1);
  CHECK(fresh->messages[0]->contents == "new 1");
  CHECK(fresh->epoch == 2);
}
