// Read state through a node (docs/decisions.md 49): a read report moves the
// user's position forward only, is answered with the counts, and reaches the
// user's other sessions on this node and on others; an unread request gives
// every group's state. Codecs: the new frames and the peer item survive
// encoding.
#include <doctest/doctest.h>

#include <functional>

#include "core/peer_codec.hpp"
#include "unit/async_fixture.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;
using parley::test::AsyncFixture;
using parley::test::Fixture;
using parley::test::TwoNodes;

namespace {

// alice on sessions 1 and 3, bob on 2; bob has sent three messages to g,
// the second mentioning alice.
struct Reads : Fixture {
  Reads() {
    REQUIRE(node->open_session(1, "alice").is_ok());
    REQUIRE(node->open_session(2, "bob").is_ok());
    REQUIRE(node->open_session(3, "alice").is_ok());
    for (int i = 1; i <= 3; ++i) {
      SendReq r{0, "g", "b" + std::to_string(i), "hi " + std::to_string(i)};
      if (i == 2) r.entry.mentions = {"alice"};
      node->on_client_request(2, r);
      node->flush();
    }
  }
  void request(SessionId s, const ClientRequest& r) {
    node->on_client_request(s, r);
    node->flush();
  }
};

void check_state(const ReadState& s, uint64_t msg_id, uint64_t unread, uint64_t mentions) {
  CHECK(s.group_id == "g");
  CHECK(s.epoch == 1);
  CHECK(s.head == 3);
  CHECK(s.msg_id == msg_id);
  CHECK(s.unread == unread);
  CHECK(s.mentions == mentions);
}

}  // namespace

TEST_CASE("node: a read report is answered with the counts and tells the user's other sessions only") {
  Reads f;
  f.request(1, ReadReq{7, "g", 1, 1});
  auto answer = f.host.of<ReadEv>(1);
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].rid == 7);
  check_state(answer[0].state, 1, 2, 1);
  auto told = f.host.of<ReadEv>(3);
  REQUIRE(told.size() == 1);
  CHECK(told[0].rid == 0);
  check_state(told[0].state, 1, 2, 1);
  CHECK(f.host.of<ReadEv>(2).empty());
  // The other device reads further: the first one hears of it.
  f.request(3, ReadReq{8, "g", 2, 1});
  REQUIRE(f.host.of<ReadEv>(1).size() == 2);
  check_state(f.host.of<ReadEv>(1)[1].state, 2, 1, 0);
  // A report behind the position does not move it and tells nobody.
  f.request(1, ReadReq{9, "g", 1, 1});
  REQUIRE(f.host.of<ReadEv>(1).size() == 3);
  check_state(f.host.of<ReadEv>(1)[2].state, 2, 1, 0);
  CHECK(f.host.of<ReadEv>(3).size() == 2);
  ReadPosition stored = f.members->read_position("g", "alice").value();
  CHECK(stored.msg_id == 2);
  // Past the head counts as the head.
  f.request(1, ReadReq{10, "g", 99, 1});
  check_state(f.host.of<ReadEv>(1).back().state, 3, 0, 0);
  CHECK(f.members->read_position("g", "alice").value().msg_id == 3);
}

TEST_CASE("node: unread gives every group of the user, or the ones named, and refuses a group it is not in") {
  Reads f;
  REQUIRE(f.members->create_group("h", "alice").is_ok());
  f.request(1, UnreadReq{4, {}});
  auto all = f.host.of<UnreadEv>(1);
  REQUIRE(all.size() == 1);
  CHECK(all[0].rid == 4);
  REQUIRE(all[0].groups.size() == 2);
  check_state(all[0].groups[0], 0, 3, 1);
  CHECK(all[0].groups[1].group_id == "h");
  CHECK(all[0].groups[1].unread == 0);
  CHECK(all[0].groups[1].epoch == 0);
  // bob's own messages are not unread for him.
  f.request(2, UnreadReq{5, {"g"}});
  REQUIRE(f.host.of<UnreadEv>(2).size() == 1);
  check_state(f.host.of<UnreadEv>(2)[0].groups.at(0), 0, 0, 0);
  f.request(2, UnreadReq{6, {"g", "h"}});
  auto errors = f.host.of<ErrorEv>(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rid == 6);
  CHECK(errors[0].code == Code::kPermissionDenied);
  CHECK(f.host.of<UnreadEv>(2).size() == 1);
}

TEST_CASE("node: a read report for another epoch or a group one is not in changes nothing") {
  Reads f;
  f.request(1, ReadReq{1, "g", 2, 5});
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kEpochMismatch);
  CHECK(f.members->read_position("g", "alice").value().msg_id == 0);
  REQUIRE(f.members->create_group("h", "carol").is_ok());
  f.request(1, ReadReq{2, "h", 1, 1});
  REQUIRE(f.host.of<ErrorEv>(1).size() == 2);
  CHECK(f.host.of<ErrorEv>(1)[1].code == Code::kPermissionDenied);
  CHECK(f.host.of<ReadEv>(1).empty());
  CHECK(f.host.of<ReadEv>(3).empty());
}

TEST_CASE("node: a read on one node reaches the user's sessions on another") {
  TwoNodes t;
  Fixture& f = t.f;
  t.alice_on_both_bob_on_peer();
  t.peer->on_client_request(11, SendReq{0, "g", "b1", "hi"});
  t.exchange();
  f.node->on_client_request(1, ReadReq{3, "g", 1, 1});
  t.exchange();
  REQUIRE(f.host.of<ReadEv>(1).size() == 1);
  auto told = t.peer_host.of<ReadEv>(10);
  REQUIRE(told.size() == 1);
  CHECK(told[0].rid == 0);
  CHECK(told[0].state.msg_id == 1);
  CHECK(told[0].state.unread == 0);
  CHECK(t.peer_host.of<ReadEv>(11).empty());
}

TEST_CASE("node: a read reported outside any session is answered and tells every session of the user") {
  Reads f;
  std::vector<ServerEvent> answers;
  f.node->read_as("alice", ReadReq{9, "g", 2, 1}, [&answers](const ServerEvent& ev) { answers.push_back(ev); });
  f.node->flush();
  REQUIRE(answers.size() == 1);
  const ReadEv& answer = std::get<ReadEv>(answers[0]);
  CHECK(answer.rid == 9);
  check_state(answer.state, 2, 1, 0);
  for (SessionId s : {SessionId{1}, SessionId{3}}) {
    auto told = f.host.of<ReadEv>(s);
    REQUIRE(told.size() == 1);
    CHECK(told[0].rid == 0);
    check_state(told[0].state, 2, 1, 0);
  }
  f.node->read_as("eve", ReadReq{10, "g", 2, 1}, [&answers](const ServerEvent& ev) { answers.push_back(ev); });
  REQUIRE(answers.size() == 2);
  CHECK(std::get<ErrorEv>(answers[1]).code == Code::kPermissionDenied);
}

TEST_CASE("codecs: read, unread and receipt frames and the peer read item keep every field") {
  for (auto& codec : {make_json_codec(), make_msgpack_codec()}) {
    const ReadState st{"g", 2, 5, 9, 3, 1};
    std::string bytes = codec->encode_request(ReadReq{4, "g", 5, 2});
    Result<ClientRequest> req = codec->decode_request(bytes.data(), bytes.size(), Limits{});
    REQUIRE(req.is_ok());
    const ReadReq& rr = std::get<ReadReq>(req.value());
    CHECK(rr.rid == 4);
    CHECK(rr.msg_id == 5);
    CHECK(rr.epoch == 2);
    bytes = codec->encode_request(UnreadReq{6, {"a", "b"}});
    req = codec->decode_request(bytes.data(), bytes.size(), Limits{});
    REQUIRE(req.is_ok());
    CHECK(std::get<UnreadReq>(req.value()).group_ids == std::vector<std::string>{"a", "b"});
    bytes = codec->encode_request(ReadReq{4, "g", 5, 0});
    CHECK(codec->decode_request(bytes.data(), bytes.size(), Limits{}).status().code() == Code::kInvalidArgument);
    Limits few;
    few.max_unread_groups = 1;
    bytes = codec->encode_request(UnreadReq{6, {"a", "b"}});
    CHECK(codec->decode_request(bytes.data(), bytes.size(), few).status().code() == Code::kTooLarge);
    bytes = codec->encode_event(UnreadEv{6, {st, st}});
    Result<ServerEvent> ev = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(ev.is_ok());
    const UnreadEv& u = std::get<UnreadEv>(ev.value());
    REQUIRE(u.groups.size() == 2);
    bytes = codec->encode_event(ReadEv{1, u.groups[1]});
    ev = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(ev.is_ok());
    const ReadState& back = std::get<ReadEv>(ev.value()).state;
    CHECK(back.group_id == "g");
    CHECK(back.epoch == 2);
    CHECK(back.msg_id == 5);
    CHECK(back.head == 9);
    CHECK(back.unread == 3);
    CHECK(back.mentions == 1);
    bytes = codec->encode_request(PresenceReq{2, PresenceStatus::kAway, true, true});
    req = codec->decode_request(bytes.data(), bytes.size(), Limits{});
    REQUIRE(req.is_ok());
    CHECK(std::get<PresenceReq>(req.value()).receipts);
    bytes = codec->encode_event(ReceiptEv{"g", "bob", 2, 7});
    ev = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(ev.is_ok());
    const ReceiptEv& rc = std::get<ReceiptEv>(ev.value());
    CHECK(rc.user_id == "bob");
    CHECK(rc.epoch == 2);
    CHECK(rc.msg_id == 7);
  }
  const std::string item = detail::encode_read_item({"alice", ReadState{"g", 2, 5, 9, 3, 1}});
  const std::string batch = detail::encode_batch("n1", {std::make_shared<const std::string>(item)});
  Result<detail::PeerBatch> b = detail::decode_batch(batch.data(), batch.size(), Limits{});
  REQUIRE(b.is_ok());
  REQUIRE(b.value().reads.size() == 1);
  CHECK(b.value().reads[0].user_id == "alice");
  CHECK(b.value().reads[0].state.unread == 3);
  CHECK(b.value().reads[0].state.mentions == 1);
}

TEST_CASE("node: read receipts reach co-members who asked and follow the group, at most one per 2 s, the latest last") {
  Reads f;
  REQUIRE(f.node->open_session(4, "carol").is_ok());
  f.request(2, PresenceReq{1, PresenceStatus::kOnline, false, true});  // bob asks for receipts
  f.request(2, ResumeReq{2, "g", 0, 0});
  f.request(4, ResumeReq{3, "g", 0, 0});  // carol follows g but did not ask
  f.request(3, PresenceReq{4, PresenceStatus::kOnline, false, true});  // alice's other device asked
  f.request(3, ResumeReq{5, "g", 0, 0});
  f.request(1, ReadReq{6, "g", 1, 1});
  auto got = f.host.of<ReceiptEv>(2);
  REQUIRE(got.size() == 1);
  CHECK(got[0].group_id == "g");
  CHECK(got[0].user_id == "alice");
  CHECK(got[0].epoch == 1);
  CHECK(got[0].msg_id == 1);
  CHECK(f.host.of<ReceiptEv>(4).empty());
  CHECK(f.host.of<ReceiptEv>(3).empty());  // alice's own device gets the read event instead
  // Two more reads within the throttle: held back, then the latest alone.
  f.request(1, ReadReq{7, "g", 2, 1});
  f.request(1, ReadReq{8, "g", 3, 1});
  CHECK(f.host.of<ReceiptEv>(2).size() == 1);
  f.clock.advance(2000);
  f.node->on_timer();
  f.node->flush();
  got = f.host.of<ReceiptEv>(2);
  REQUIRE(got.size() == 2);
  CHECK(got[1].msg_id == 3);
  // A read that moves nothing sends no receipt.
  f.clock.advance(5000);
  f.request(1, ReadReq{9, "g", 2, 1});
  f.node->on_timer();
  f.node->flush();
  CHECK(f.host.of<ReceiptEv>(2).size() == 2);
}

namespace {

// bob's message 1 edited by him (4), a 👍 on it from alice (5), alice's answer to it (6).
// `done`: what ends each send's turn (and commits it).
void fold_some(Fixture& f, const std::function<void()>& done) {
  SendReq edit{0, "g", "e1", "hi 1, edited"};
  edit.entry.kind = EntryKind::kEdit;
  edit.entry.target = 1;
  SendReq like{0, "g", "r1", "👍"};
  like.entry.kind = EntryKind::kReaction;
  like.entry.target = 1;
  SendReq answer{0, "g", "a1", "yes"};
  answer.entry.reply_to = 1;
  f.node->on_client_request(2, edit);
  done();
  f.node->on_client_request(1, like);
  done();
  f.node->on_client_request(1, answer);
  done();
}

void check_folded(const PullResultEv& ev) {
  CHECK(ev.folded);
  CHECK(ev.head == 6);
  CHECK(ev.to == 6);
  CHECK(ev.epoch == 1);
  REQUIRE(ev.messages.size() == 4);  // 1, 2, 3 and the answer; the edit and the reaction are folded in
  REQUIRE(ev.folds.size() == 4);
  CHECK(ev.messages[0]->contents == "hi 1, edited");
  CHECK(ev.folds[0] == Fold{4, {ReactionCount{"👍", 1, true}}, 1});
  CHECK(ev.messages[3]->msg_id == 6);
  CHECK(ev.folds[3] == Fold{});
}

}  // namespace

TEST_CASE("node: a folded pull answers each message as it stands, and a plain pull still lists every entry") {
  Reads f;
  fold_some(f, [&f] { f.node->flush(); });
  f.request(1, PullReq{11, "g", 0, 50, 1, true});
  auto pulled = f.host.of<PullResultEv>(1);
  REQUIRE(pulled.size() == 1);
  CHECK(pulled[0].rid == 11);
  check_folded(pulled[0]);
  f.request(1, PullReq{12, "g", 0, 50, 1});
  pulled = f.host.of<PullResultEv>(1);
  REQUIRE(pulled.size() == 2);
  CHECK_FALSE(pulled[1].folded);
  CHECK(pulled[1].messages.size() == 6);
  CHECK(pulled[1].folds.empty());
  // A copy of another epoch is told so; a non-member learns nothing.
  f.request(1, PullReq{13, "g", 0, 50, 2, true});
  auto errors = f.host.of<ErrorEv>(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kEpochMismatch);
  REQUIRE(f.node->open_session(4, "mallory").is_ok());
  f.request(4, PullReq{14, "g", 0, 50, 0, true});
  REQUIRE(f.host.of<ErrorEv>(4).size() == 1);
  CHECK(f.host.of<ErrorEv>(4)[0].code == Code::kPermissionDenied);
  CHECK(f.host.of<PullResultEv>(4).empty());
}

TEST_CASE("with an executor, every folded pull is read by a lookup on the executor") {
  AsyncFixture f;
  f.open(1, "alice");
  f.open(2, "bob");
  f.node->on_client_request(1, ResumeReq{0, "g", 0, 0});  // the node follows g for alice
  f.turn();
  for (int i = 1; i <= 3; ++i) {
    f.node->on_client_request(2, SendReq{0, "g", "b" + std::to_string(i), "hi " + std::to_string(i)});
    f.turn();
    f.complete_next();
  }
  fold_some(f, [&f] {
    f.turn();
    f.complete_next();
  });
  // Each folded pull is a lookup: the second one too, when the node knows
  // alice is a member, follows g and holds everything after its `after`.
  for (uint64_t i = 1; i <= 2; ++i) {
    const uint64_t after = i == 1 ? 0 : 6;
    f.node->on_client_request(1, PullReq{i, "g", after, 50, 0, true});
    f.node->flush();
    REQUIRE(f.executor.lookups.size() == 1);
    CHECK(f.executor.lookups[0].fold);
    CHECK(f.host.of<PullResultEv>(1).size() == i - 1);  // nothing before the completion
    f.answer_lookup();
    auto pulled = f.host.of<PullResultEv>(1);
    REQUIRE(pulled.size() == i);
    if (i == 1) {
      check_folded(pulled[0]);
    } else {
      CHECK(pulled[1].folded);
      CHECK(pulled[1].to == 6);
      CHECK(pulled[1].messages.empty());
    }
  }
}
