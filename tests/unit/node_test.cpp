#include <doctest/doctest.h>

#include <map>

#include "core/peer_codec.hpp"
#include "parley/memory_store.hpp"
#include "parley/node.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;

using parley::test::Fixture;
using parley::test::TestHost;

TEST_CASE("a send is acknowledged only after the store committed it") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "c1", "hello");
  CHECK(f.host.of<AckEv>(1).empty());
  std::vector<Message> stored;
  REQUIRE(f.messages->read("g", 0, 10, &stored).is_ok());
  CHECK(stored.empty());  // nothing committed before the turn ends
  f.node->flush();
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].msg_id == 1);
  REQUIRE(f.messages->read("g", 0, 10, &stored).is_ok());
  CHECK(stored.size() == 1);
}

TEST_CASE("one turn is one group commit, and each session gets one write") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  const int writes_before = f.host.writes[2];
  for (int i = 0; i < 10; ++i) f.send(1, "c" + std::to_string(i), "m");
  f.node->flush();
  CHECK(f.node->stats().commits == 1);
  CHECK(f.host.writes[2] == writes_before + 1);
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 10);
  for (size_t i = 0; i < msgs.size(); ++i) CHECK(msgs[i].message->msg_id == i + 1);
}

TEST_CASE("a resend with the same client_msg_id returns the original id") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "c1", "hello");
  f.node->flush();
  f.send(1, "c1", "hello");
  f.node->flush();
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 2);
  CHECK(acks[1].msg_id == acks[0].msg_id);
  CHECK(acks[1].duplicate);
  std::vector<GroupHead> heads;
  REQUIRE(f.messages->heads({"g"}, &heads).is_ok());
  CHECK(heads[0].head == 1);
}

TEST_CASE("bad requests get a clear error and change nothing") {
  Fixture f;
  REQUIRE(f.members->create_group("other", "bob").is_ok());
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "c1", "x", "other");             // not a member
  f.send(1, "c2", "x", "nope");              // unknown group
  f.send(1, "c3", std::string(70000, 'x'));  // too large
  f.node->on_client_request(1, ResumeReq{0, "other", 0, 0});
  f.node->on_client_request(1, PullReq{0, "other", 0, 10});
  f.node->on_client_request(1, TypingReq{0, "other"});
  f.node->on_client_request(1, ResumeReq{0, "g", 99, 0});  // beyond the head
  const std::string junk = "\x81\xa1t\xa3zzz";
  f.node->on_client_frame(1, junk.data(), junk.size());
  f.node->on_client_request(1, PresenceReq{0, PresenceStatus::kOffline, true});
  f.node->flush();
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 9);
  CHECK(errors[8].code == Code::kInvalidArgument);
  CHECK(f.node->presence_of("alice") == PresenceStatus::kOnline);
  CHECK(errors[0].code == Code::kPermissionDenied);
  CHECK(errors[1].code == Code::kNotFound);
  CHECK(errors[2].code == Code::kTooLarge);
  CHECK(errors[3].code == Code::kPermissionDenied);
  CHECK(errors[4].code == Code::kPermissionDenied);
  CHECK(errors[5].code == Code::kPermissionDenied);
  CHECK(errors[6].code == Code::kInvalidArgument);
  CHECK(errors[7].code == Code::kInvalidArgument);
  std::vector<GroupHead> heads;
  REQUIRE(f.messages->heads({"g", "other"}, &heads).is_ok());
  CHECK(heads[0].head == 0);
  CHECK(heads[1].head == 0);
  CHECK(f.host.of<MessageEv>(1).empty());
}

TEST_CASE("resume delivers what was missed, then Resumed, then live messages") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  for (int i = 0; i < 5; ++i) f.send(1, "c" + std::to_string(i), "m" + std::to_string(i));
  f.node->flush();
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{9, "g", 2, 0});
  f.node->flush();
  f.send(1, "late", "live");
  f.node->flush();
  std::vector<uint64_t> ids;
  bool resumed_before_live = false;
  for (const ServerEvent& e : f.host.events[2]) {
    if (auto* m = std::get_if<MessageEv>(&e)) ids.push_back(m->message->msg_id);
    if (auto* r = std::get_if<ResumedEv>(&e)) {
      CHECK(r->rid == 9);
      CHECK(r->head == 5);
      resumed_before_live = ids.size() == 3;
    }
  }
  CHECK(ids == std::vector<uint64_t>{3, 4, 5, 6});
  CHECK(resumed_before_live);
}

TEST_CASE("a session that falls behind is told so and closed, and others are unaffected") {
  NodeOptions o;
  o.session_queue_bytes = 4096;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());    // never drains
  REQUIRE(f.node->open_session(3, "carol").is_ok());  // drains
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->on_client_request(3, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  for (int i = 0; i < 100; ++i) {
    f.send(1, "c" + std::to_string(i), std::string(100, 'x'));
    f.node->flush();
    f.drain(1);  // the sender reads its acks
    f.drain(3);
  }
  CHECK(f.host.closed.count(2) == 1);
  CHECK(f.host.closed[2].code() == Code::kBackpressure);
  CHECK(f.host.of<FellBehindEv>(2).size() == 1);
  CHECK(f.host.of<MessageEv>(3).size() == 100);
  CHECK(f.node->stats().fell_behind == 1);
}

TEST_CASE("offline members are notified, online ones are not") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.send(1, "c1", "ping");
  f.node->flush();
  REQUIRE(f.notifier.sent.size() == 1);
  CHECK(f.notifier.sent[0].user_id == "carol");
  CHECK(f.notifier.sent[0].reason == "offline");
  CHECK(f.notifier.sent[0].preview == "ping");
}

TEST_CASE("a failed session's unwritten messages are notified and the reason is reported next time") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  REQUIRE(f.node->open_session(3, "carol").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  f.drain(2);
  f.send(1, "c1", "first");
  f.node->flush();
  f.drain(2);  // bob got "first"
  f.send(1, "c2", "second");
  f.node->flush();  // queued to bob, not written
  f.node->close_session(2, error(Code::kUnavailable, "connection reset"));
  f.node->flush();
  REQUIRE(f.notifier.sent.size() == 1);
  CHECK(f.notifier.sent[0].user_id == "bob");
  CHECK(f.notifier.sent[0].msg_id == 2);
  CHECK(f.notifier.sent[0].reason.find("connection reset") != std::string::npos);
  REQUIRE(f.node->open_session(4, "bob").is_ok());
  f.node->flush();
  auto errors = f.host.of<ErrorEv>(4);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("connection reset") != std::string::npos);
}

TEST_CASE("presence updates reach online co-members who asked, and typing is throttled") {
  Fixture f;
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, PresenceReq{0, PresenceStatus::kOnline, true});
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  REQUIRE(f.members->create_group("secret", "dave").is_ok());
  REQUIRE(f.members->add("secret", "alice", Role::kMember).is_ok());
  f.node->flush();
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.node->on_client_request(1, TypingReq{0, "g"});
  f.node->on_client_request(1, TypingReq{0, "g"});  // throttled
  f.node->flush();
  auto updates = f.host.of<PresenceEv>(2);
  REQUIRE(updates.size() == 2);  // alice online (in g only, not "secret"), alice typing
  CHECK(updates[0].user_id == "alice");
  CHECK(updates[0].group_id == "g");
  CHECK(updates[0].status == PresenceStatus::kOnline);
  CHECK(updates[1].typing);
  CHECK(f.node->presence_of("alice") == PresenceStatus::kOnline);
}

TEST_CASE("messages from a peer are delivered in order and a lost one is caught up from the store") {
  NodeOptions o;
  o.gap.grace_ms = 100;
  Fixture f(o);
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  // Another node appended 1..3 and forwarded only 1 and 3.
  std::vector<AppendOutcome> out;
  REQUIRE(
      f.messages
          ->append({{"g", "alice", "a", "1", 0}, {"g", "alice", "b", "2", 0}, {"g", "alice", "c", "3", 0}},
                   &out)
          .is_ok());
  // A peer node on the same stores builds the batch, as in a cluster.
  TestHost peer_host;
  NodeOptions po;
  po.node_id = "peer";
  Node peer(po, NodeStores{*f.messages, *f.members, *f.directory}, peer_host, f.clock);
  REQUIRE(peer.start().is_ok());
  REQUIRE(peer.open_session(10, "alice").is_ok());
  peer.on_client_request(10, SendReq{0, "g", "d", "4"});
  peer.flush();
  // The first call (alice's presence) is in flight; its answer releases the message.
  REQUIRE(peer_host.peer_calls.size() == 1);
  peer.on_peer_result("node-1", 1, true);
  peer.flush();
  REQUIRE(peer_host.peer_calls.size() == 2);
  CHECK(peer_host.peer_calls[1].first == "node-1");  // bob is here
  // Message 4 arrives while 1..3 never came: held, then caught up after the grace period.
  for (const auto& [dest, batch] : peer_host.peer_calls) {
    REQUIRE(f.node->on_peer_batch(batch->data(), batch->size()).is_ok());
  }
  f.node->flush();
  CHECK(f.node->stats().peer_messages_in == 1);
  CHECK(f.host.of<MessageEv>(2).empty());
  f.clock.advance(100);
  f.node->on_timer();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK(msgs[i].message->msg_id == i + 1);
  CHECK(f.node->stats().catch_ups >= 1);
  // The same batch again changes nothing.
  const Frame& batch = peer_host.peer_calls[1].second;
  REQUIRE(f.node->on_peer_batch(batch->data(), batch->size()).is_ok());
  f.node->flush();
  CHECK(f.host.of<MessageEv>(2).size() == 4);
  CHECK(f.node->on_peer_batch("junk", 4).code() == Code::kInvalidArgument);
}

TEST_CASE("head sync finds a message nobody forwarded") {
  NodeOptions o;
  o.head_sync_ms = 1000;
  o.gap.grace_ms = 50;
  Fixture f(o);
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  std::vector<AppendOutcome> out;
  REQUIRE(f.messages->append({{"g", "alice", "a", "lost", 0}}, &out).is_ok());
  for (int i = 0; i < 40 && f.host.of<MessageEv>(2).empty(); ++i) {
    f.clock.set(std::max(f.clock.now_ms() + 1, f.host.timer));
    f.node->on_timer();
  }
  REQUIRE(f.host.of<MessageEv>(2).size() == 1);
  CHECK(f.clock.now_ms() <= 1000 + 1100 + 50);
}

TEST_CASE("an epoch change makes subscribers resync") {
  NodeOptions o;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  f.send(1, "c1", "before");
  f.node->on_client_request(1, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  f.clock.advance(1500);
  f.node->on_timer();  // learns epoch 1
  REQUIRE(f.messages->reset_group("g").is_ok());
  f.clock.advance(1500);
  f.node->on_timer();
  auto epochs = f.host.of<EpochEv>(1);
  REQUIRE(epochs.size() == 1);
  CHECK(epochs[0].epoch == 2);
  // Resuming with the old epoch is told the new one and starts from 0.
  f.node->on_client_request(1, ResumeReq{0, "g", 1, 1});
  f.node->flush();
  CHECK(f.host.of<EpochEv>(1).size() == 2);
}

TEST_CASE("pull mode: large busy groups get hints and pull from the tail") {
  NodeOptions o;
  o.policy.pull_min_members = 3;
  o.policy.pull_enter_rate = 5;
  o.policy.window_ms = 1000;
  o.policy.min_dwell_ms = 0;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.node->flush();
  for (int i = 0; i < 20; ++i) {
    f.send(1, "c" + std::to_string(i), "m");
    f.node->flush();
    f.drain(2);
    f.clock.advance(10);
  }
  CHECK(f.node->mode("g") == DeliveryMode::kPull);
  auto modes = f.host.of<ModeEv>(2);
  REQUIRE(modes.size() == 1);
  const size_t pushed = f.host.of<MessageEv>(2).size();
  CHECK(pushed < 20);
  f.clock.advance(200);
  f.node->on_timer();
  REQUIRE_FALSE(f.host.of<PullHintEv>(2).empty());
  f.node->on_client_request(2, PullReq{5, "g", pushed, 100});
  f.node->flush();
  auto pulls = f.host.of<PullResultEv>(2);
  REQUIRE(pulls.size() == 1);
  CHECK(pulls[0].messages.size() == 20 - pushed);
  CHECK(pulls[0].messages.front()->msg_id == pushed + 1);
  CHECK(pulls[0].head == 20);
}

TEST_CASE("a second resume in the same session never sends a message twice") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  for (int i = 0; i < 5; ++i) f.send(1, "c" + std::to_string(i), "m");
  f.node->flush();
  REQUIRE(f.host.of<MessageEv>(2).size() == 5);
  // The client resumes from an older point (its answer to a pull was in flight).
  f.node->on_client_request(2, ResumeReq{0, "g", 2, 0});
  f.send(1, "c5", "m");
  f.node->flush();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 6);
  for (size_t i = 0; i < msgs.size(); ++i) CHECK(msgs[i].message->msg_id == i + 1);
}

TEST_CASE("a message from a newer epoch resyncs subscribers at once, an older one is dropped") {
  Fixture f;
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.send(1, "c1", "old history");
  f.node->flush();
  REQUIRE(f.host.of<MessageEv>(2).size() == 1);
  CHECK(f.host.of<MessageEv>(2)[0].message->epoch == 1);
  auto batch_of = [](const Message& m) {
    Frame item = std::make_shared<const std::string>(detail::encode_message_item(m));
    return detail::encode_batch("peer", {item});
  };
  // Another node restored the group from a backup and appended to it.
  REQUIRE(f.messages->reset_group("g").is_ok());
  std::vector<AppendOutcome> out;
  REQUIRE(
      f.messages->append({{"g", "carol", "n1", "new 1", 0}, {"g", "carol", "n2", "new 2", 0}}, &out).is_ok());
  const std::string fresh = batch_of(out[1].message);
  REQUIRE(f.node->on_peer_batch(fresh.data(), fresh.size()).is_ok());
  f.node->flush();
  auto epochs = f.host.of<EpochEv>(2);
  REQUIRE(epochs.size() == 1);  // without waiting for the head sync
  CHECK(epochs[0].epoch == 2);
  CHECK(f.host.of<MessageEv>(2).size() == 1);  // the new #2 was not mixed into the old history
  // bob starts over in the new epoch and gets exactly the new history.
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 2});
  f.node->flush();
  // A straggler from the old epoch changes nothing.
  Message stale{"g", 2, 1, 0, "alice", "old #2", "c9", 1};
  const std::string old_batch = batch_of(stale);
  REQUIRE(f.node->on_peer_batch(old_batch.data(), old_batch.size()).is_ok());
  f.node->flush();
  auto msgs = f.host.of<MessageEv>(2);
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[1].message->contents == "new 1");
  CHECK(msgs[2].message->contents == "new 2");
  CHECK(msgs[2].message->epoch == 2);
}

TEST_CASE("a message another of the user's sessions was handed is not notified when the last one fails") {
  for (bool with_phone : {true, false}) {
    CAPTURE(with_phone);
    Fixture f;
    REQUIRE(f.node->open_session(1, "alice").is_ok());
    REQUIRE(f.node->open_session(3, "bob").is_ok());  // laptop
    f.node->on_client_request(3, ResumeReq{0, "g", 0, 0});
    if (with_phone) {
      REQUIRE(f.node->open_session(2, "bob").is_ok());
      f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
    }
    f.node->flush();
    for (int i = 1; i <= 3; ++i) f.send(1, "c" + std::to_string(i), "m");
    f.node->flush();
    if (with_phone) {
      f.drain(2);  // the phone got all three; the laptop got nothing written
      f.node->close_session(2, error(Code::kUnavailable, "phone lost its network"));
    }
    f.node->close_session(3, error(Code::kUnavailable, "laptop went to sleep"));
    f.node->flush();
    std::vector<uint64_t> notified;
    for (const Notification& n : f.notifier.sent) {
      if (n.user_id == "bob") notified.push_back(n.msg_id);
    }
    if (with_phone) {
      CHECK(notified.empty());
    } else {
      CHECK(notified == std::vector<uint64_t>{1, 2, 3});
    }
  }
}

TEST_CASE("a user over the send rate is refused with retry_after, and nothing is stored") {
  NodeOptions o;
  o.send_rate_per_user = 10;  // one every 100 ms
  o.send_burst_per_user = 3;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "alice").is_ok());  // the limit is per user, not per session
  REQUIRE(f.node->open_session(3, "bob").is_ok());
  for (int i = 0; i < 4; ++i) f.send(i % 2 == 0 ? 1 : 2, "a" + std::to_string(i), "m");
  f.send(3, "b0", "bob has his own bucket");
  f.node->flush();
  const std::vector<ErrorEv> refused = f.host.of<ErrorEv>(2);
  REQUIRE(refused.size() == 1);  // the 4th send of the burst of 3
  CHECK(refused[0].code == Code::kLimitExceeded);
  CHECK(refused[0].client_msg_id == "a3");
  CHECK(refused[0].retry_after_ms == 100);
  CHECK(f.host.of<AckEv>(1).size() == 2);
  CHECK(f.host.of<AckEv>(2).size() == 1);
  CHECK(f.host.of<AckEv>(3).size() == 1);
  std::vector<Message> stored;
  REQUIRE(f.messages->read("g", 0, 100, &stored).is_ok());
  CHECK(stored.size() == 4);

  // After retry_after_ms the same send goes through, exactly once.
  f.clock.advance(100);
  f.send(2, "a3", "m");
  f.node->flush();
  REQUIRE(f.host.of<AckEv>(2).size() == 2);
  CHECK_FALSE(f.host.of<AckEv>(2)[1].duplicate);
  CHECK(f.host.of<ErrorEv>(2).size() == 1);

  // The error frame carries retry_after_ms on the wire (both codecs).
  for (auto codec : {std::shared_ptr<const ClientCodec>(make_msgpack_codec()),
                     std::shared_ptr<const ClientCodec>(make_json_codec())}) {
    const std::string frame = codec->encode_event(ServerEvent(refused[0]));
    Result<ServerEvent> back = codec->decode_event(frame.data(), frame.size());
    REQUIRE(back.is_ok());
    CHECK(std::get<ErrorEv>(*back).retry_after_ms == 100);
  }
}

TEST_CASE("a user at its connection limit cannot open another session") {
  NodeOptions o;
  o.max_sessions_per_user = 2;
  Fixture f(o);
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "alice").is_ok());
  const Status third = f.node->open_session(3, "alice");
  CHECK(third.code() == Code::kLimitExceeded);
  CHECK(third.message().find("limit is 2") != std::string::npos);
  CHECK(f.node->session_count() == 2);
  CHECK(f.node->open_session(4, "bob").is_ok());
  f.node->close_session(1, Status::ok());
  CHECK(f.node->open_session(5, "alice").is_ok());
}
