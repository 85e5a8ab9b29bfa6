// Entry kinds through a node: edits, deletes and reactions are sent like
// messages (acknowledged, fanned out in the group's order), the log's rules
// answer with errors, a delete erases the node's cached tail, and only
// messages notify offline members. Codecs: every field of an entry survives
// the client codecs and the peer batch.
#include <doctest/doctest.h>

#include "core/peer_codec.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;
using parley::test::Fixture;
using parley::test::TwoNodes;

namespace {

SendReq entry_req(uint64_t rid, EntryKind kind, uint64_t target, const std::string& contents = "",
                  const std::string& cid = "") {
  SendReq r{rid, "g", cid, contents};
  r.entry.kind = kind;
  r.entry.target = target;
  return r;
}

// The memory store, but reads fail: what a node serves then came from its cache.
struct NoReads final : MessageStore {
  std::unique_ptr<MessageStore> inner = make_memory_message_store();
  Status append(const std::vector<AppendRequest>& r, std::vector<AppendOutcome>* out) override {
    return inner->append(r, out);
  }
  Status read(const std::string&, uint64_t, size_t, std::vector<Message>*) override {
    return error(Code::kUnavailable, "this test's store does not read");
  }
  Status read_folded(const std::string&, uint64_t, size_t, const std::string&, FoldedPage*) override {
    return error(Code::kUnavailable, "this test's store does not read");
  }
  Status heads(const std::vector<std::string>& g, std::vector<GroupHead>* out) override {
    return inner->heads(g, out);
  }
  Result<uint64_t> reset_group(const std::string& g) override { return inner->reset_group(g); }
  Status unread(const std::vector<UnreadQuery>& q, std::vector<UnreadCount>* out) override {
    return inner->unread(q, out);
  }
};

// Alice and bob connected, bob subscribed to g from its start.
struct Chat : Fixture {
  explicit Chat(std::unique_ptr<MessageStore> store = nullptr) : Fixture({}, std::move(store)) {
    REQUIRE(node->open_session(1, "alice").is_ok());
    REQUIRE(node->open_session(2, "bob").is_ok());
    node->on_client_request(2, ResumeReq{1, "g", 0, 0});
    node->flush();
    drain(2);
  }
  void request(SessionId s, const SendReq& r) {
    node->on_client_request(s, r);
    node->flush();
    drain(s);
    drain(s == 1 ? 2 : 1);
  }
  std::vector<ErrorEv> errors(SessionId s) { return host.of<ErrorEv>(s); }
};

}  // namespace

TEST_CASE("node: an edit, a reaction and a delete are acknowledged and pushed in order like messages") {
  Chat f;
  f.request(1, SendReq{1, "g", "c1", "helo"});
  f.request(1, entry_req(2, EntryKind::kEdit, 1, "hello"));
  f.request(2, entry_req(3, EntryKind::kReaction, 1, "👍"));
  f.request(1, entry_req(4, EntryKind::kDelete, 1));
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 3);
  CHECK(acks[1].msg_id == 2);
  CHECK(acks[2].msg_id == 4);
  REQUIRE(f.host.of<AckEv>(2).size() == 1);
  auto pushed = f.host.of<MessageEv>(2);
  REQUIRE(pushed.size() == 4);
  CHECK(pushed[1].message->entry.kind == EntryKind::kEdit);
  CHECK(pushed[1].message->entry.target == 1);
  CHECK(pushed[1].message->contents == "hello");
  CHECK(pushed[2].message->entry.kind == EntryKind::kReaction);
  CHECK(pushed[2].message->contents == "👍");
  CHECK(pushed[3].message->entry.kind == EntryKind::kDelete);
}

TEST_CASE("node: the log's rules answer the sender with their error and nothing is pushed") {
  Chat f;
  f.request(1, SendReq{1, "g", "c1", "mine"});
  f.request(2, entry_req(7, EntryKind::kEdit, 1, "not yours", "b1"));
  auto errors = f.errors(2);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kPermissionDenied);
  CHECK(errors[0].rid == 7);
  CHECK(errors[0].client_msg_id == "b1");
  f.request(2, entry_req(8, EntryKind::kReaction, 5, "x"));
  REQUIRE(f.errors(2).size() == 2);
  CHECK(f.errors(2)[1].code == Code::kNotFound);
  f.request(1, entry_req(9, EntryKind::kDelete, 1));
  f.request(2, entry_req(10, EntryKind::kReaction, 1, "x"));
  REQUIRE(f.errors(2).size() == 3);
  CHECK(f.errors(2)[2].code == Code::kDeleted);
  // Refused before the store: a delete with contents, a reaction without a key.
  f.request(1, entry_req(11, EntryKind::kDelete, 1, "text"));
  f.request(1, entry_req(12, EntryKind::kReaction, 1, ""));
  auto alice_errors = f.errors(1);
  REQUIRE(alice_errors.size() == 2);
  CHECK(alice_errors[0].code == Code::kInvalidArgument);
  CHECK(alice_errors[1].code == Code::kInvalidArgument);
  CHECK(f.host.of<MessageEv>(2).size() == 2);  // the message and its delete
  std::vector<GroupHead> heads;
  REQUIRE(f.messages->heads({"g"}, &heads).is_ok());
  CHECK(heads[0].head == 2);
}

TEST_CASE("node: a change picked from a copy of a reset epoch is refused with epoch_mismatch, whatever id it names") {
  Chat f;
  f.request(1, SendReq{1, "g", "c1", "alice's, epoch 1"});
  REQUIRE(f.messages->reset_group("g").is_ok());  // an operator restores a backup
  SendReq again{2, "g", "c2", "alice's, epoch 2"};
  f.request(1, again);
  const size_t pushed = f.host.of<MessageEv>(2).size();
  // alice's client still holds epoch 1, where message 1 was her first.
  SendReq del = entry_req(3, EntryKind::kDelete, 1, "", "d1");
  del.epoch = 1;
  f.request(1, del);
  auto errors = f.errors(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kEpochMismatch);
  CHECK(errors[0].client_msg_id == "d1");
  CHECK(f.host.of<MessageEv>(2).size() == pushed);
  std::vector<Message> log;
  REQUIRE(f.messages->read("g", 0, 10, &log).is_ok());
  REQUIRE(log.size() == 1);
  CHECK_FALSE(log[0].deleted);
  CHECK(log[0].contents == "alice's, epoch 2");
}

TEST_CASE("node: after a delete, nothing served from the node's cache carries the old text") {
  Chat f(std::make_unique<NoReads>());
  f.request(1, SendReq{1, "g", "c1", "oops, my password"});
  f.request(1, entry_req(2, EntryKind::kEdit, 1, "oops, my password again"));
  f.request(1, SendReq{3, "g", "c3", "fine"});
  f.request(1, entry_req(4, EntryKind::kDelete, 1));
  // Carol resumes from the start: served from the cached tail (the store cannot read).
  REQUIRE(f.node->open_session(3, "carol").is_ok());
  f.node->on_client_request(3, ResumeReq{1, "g", 0, 0});
  f.node->flush();
  CHECK(f.errors(3).empty());
  auto got = f.host.of<MessageEv>(3);
  REQUIRE(got.size() == 4);
  CHECK(got[0].message->deleted);
  CHECK(got[0].message->contents.empty());
  CHECK(got[1].message->deleted);
  CHECK(got[1].message->contents.empty());
  CHECK(got[2].message->contents == "fine");
  // And a pull answered from the cache.
  f.node->on_client_request(3, PullReq{2, "g", 0, 10, 0});
  f.node->flush();
  auto pulled = f.host.of<PullResultEv>(3);
  REQUIRE(pulled.size() == 1);
  REQUIRE(pulled[0].messages.size() == 4);
  CHECK(pulled[0].messages[0]->contents.empty());
  CHECK(pulled[0].messages[1]->contents.empty());
}

TEST_CASE("node: a message mentioning a non-member is refused, the rest of its commit is stored") {
  Chat f;
  SendReq outsider{1, "g", "c1", "hi @bob @dave"};
  outsider.entry.mentions = {"bob", "dave"};
  SendReq members{2, "g", "c2", "hi @bob @carol"};
  members.entry.mentions = {"bob", "carol"};
  f.node->on_client_request(1, outsider);
  f.node->on_client_request(1, members);
  f.node->flush();  // one commit with both
  auto errors = f.errors(1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kInvalidArgument);
  CHECK(errors[0].rid == 1);
  CHECK(errors[0].client_msg_id == "c1");
  CHECK(errors[0].message.find("'dave'") != std::string::npos);
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].rid == 2);
  CHECK(acks[0].msg_id == 1);
  std::vector<Message> stored;
  REQUIRE(f.messages->read("g", 0, 10, &stored).is_ok());
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].entry.mentions == members.entry.mentions);
  // A member who left is not a member.
  REQUIRE(f.members->remove("g", "carol").is_ok());
  SendReq left{3, "g", "c3", "@carol?"};
  left.entry.mentions = {"carol"};
  f.request(1, left);
  REQUIRE(f.errors(1).size() == 2);
  CHECK(f.errors(1)[1].rid == 3);
}

TEST_CASE("node: only messages notify offline members") {
  Chat f;  // carol is offline
  f.request(1, SendReq{1, "g", "c1", "ping"});
  REQUIRE(f.notifier.sent.size() == 1);
  f.request(1, entry_req(2, EntryKind::kEdit, 1, "pong"));
  f.request(2, entry_req(3, EntryKind::kReaction, 1, "👍"));
  f.request(1, entry_req(4, EntryKind::kDelete, 1));
  CHECK(f.notifier.sent.size() == 1);
}

TEST_CASE("node: membership changes recorded by the host are entries of the log, pushed in order, counted by nobody") {
  Chat f;
  f.request(1, SendReq{1, "g", "c1", "before"});
  REQUIRE(f.node->record_membership("g", EntryKind::kJoin, "dave").is_ok());
  REQUIRE(f.members->remove("g", "bob").is_ok());
  REQUIRE(f.node->record_membership("g", EntryKind::kRemoved, "alice", "bob").is_ok());
  f.node->flush();
  f.request(1, SendReq{2, "g", "c2", "after"});
  // bob gets the join and his removal, in order, then nothing more of the group.
  auto pushed = f.host.of<MessageEv>(2);
  REQUIRE(pushed.size() == 3);
  CHECK(pushed[1].message->msg_id == 2);
  CHECK(pushed[1].message->entry.kind == EntryKind::kJoin);
  CHECK(pushed[1].message->user_id == "dave");
  CHECK(pushed[2].message->entry.kind == EntryKind::kRemoved);
  CHECK(pushed[2].message->user_id == "alice");
  CHECK(pushed[2].message->contents == "bob");
  auto acks = f.host.of<AckEv>(1);  // the host's entries are answered to nobody
  REQUIRE(acks.size() == 2);
  CHECK(acks[1].msg_id == 4);
  CHECK(f.notifier.sent.size() == 2);  // carol (offline) of the two messages only
  // Not a membership kind, or bad ids: refused, nothing recorded.
  CHECK(f.node->record_membership("g", EntryKind::kMessage, "dave").code() == Code::kInvalidArgument);
  CHECK(f.node->record_membership("g", EntryKind::kJoin, "dave", "x").code() == Code::kInvalidArgument);
  CHECK(f.node->record_membership("g", EntryKind::kRemoved, "alice").code() == Code::kInvalidArgument);
  CHECK(f.node->record_membership("", EntryKind::kLeave, "dave").code() == Code::kInvalidArgument);
  // Nobody sends one: not a session, not a send outside any session.
  SendReq forged{9, "g", "f1", "bob"};
  forged.entry.kind = EntryKind::kRemoved;
  f.request(1, forged);
  REQUIRE(f.errors(1).size() == 1);
  CHECK(f.errors(1)[0].code == Code::kInvalidArgument);
  std::vector<ServerEvent> answers;
  f.node->send_as("alice", forged, [&answers](const ServerEvent& ev) { answers.push_back(ev); });
  REQUIRE(answers.size() == 1);
  CHECK(std::get<ErrorEv>(answers[0]).code == Code::kInvalidArgument);
  f.node->flush();
  std::vector<Message> stored;
  REQUIRE(f.messages->read("g", 0, 10, &stored).is_ok());
  CHECK(stored.size() == 4);
  std::vector<UnreadCount> counts;
  REQUIRE(f.messages->unread({UnreadQuery{"g", "bob", {}}}, &counts).is_ok());
  CHECK(counts[0].unread == 2);
}

TEST_CASE("node: a system notice from the host is pushed in order, stored once per cid, unread and notified for nobody") {
  Chat f;  // carol is offline
  f.request(1, SendReq{1, "g", "c1", "gg"});
  REQUIRE(f.node->record_system("g", "game", "s1", "alice won the match", R"({"score":[3,1]})").is_ok());
  REQUIRE(f.node->record_system("g", "game", "s1", "alice won the match", R"({"score":[3,1]})").is_ok());  // a resend
  f.node->flush();
  auto pushed = f.host.of<MessageEv>(2);
  REQUIRE(pushed.size() == 2);
  const Message& notice = *pushed[1].message;
  CHECK(notice.msg_id == 2);
  CHECK(notice.entry.kind == EntryKind::kSystem);
  CHECK(notice.user_id == "game");
  CHECK(notice.contents == "alice won the match");
  CHECK(notice.entry.meta == R"({"score":[3,1]})");
  CHECK(f.notifier.sent.size() == 1);  // carol, of alice's message only
  std::vector<UnreadCount> counts;
  REQUIRE(f.messages->unread({UnreadQuery{"g", "carol", {}}}, &counts).is_ok());
  CHECK(counts[0].unread == 1);
  CHECK(counts[0].head == 2);  // the resend was stored once
  // Bad input is refused and records nothing; no client sends one.
  CHECK(f.node->record_system("g", "game", "", "").code() == Code::kInvalidArgument);
  CHECK(f.node->record_system("g", "game", "", "x", "[1]").code() == Code::kInvalidArgument);
  CHECK(f.node->record_system("g", "", "", "x").code() == Code::kInvalidArgument);
  SendReq forged{9, "g", "f1", "I am the game"};
  forged.entry.kind = EntryKind::kSystem;
  f.request(1, forged);
  REQUIRE(f.errors(1).size() == 1);
  CHECK(f.errors(1)[0].code == Code::kInvalidArgument);
  f.node->flush();
  CHECK(f.host.of<MessageEv>(2).size() == 2);
}

TEST_CASE("node: a leave delivered on another node ends the leaver's subscription there") {
  TwoNodes t;
  Fixture& f = t.f;
  t.alice_on_both_bob_on_peer();
  for (SessionId s : {SessionId{10}, SessionId{11}}) t.peer->on_client_request(s, ResumeReq{0, "g", 0, 0});
  f.node->on_client_request(1, ResumeReq{0, "g", 0, 0});
  t.exchange();
  REQUIRE(f.members->remove("g", "alice").is_ok());
  REQUIRE(f.node->record_membership("g", EntryKind::kLeave, "alice").is_ok());
  t.exchange();
  // Both of alice's sessions get the leave, then nothing more of the group.
  auto leave = t.peer_host.of<MessageEv>(10);
  REQUIRE(leave.size() == 1);
  CHECK(leave[0].message->entry.kind == EntryKind::kLeave);
  t.peer->on_client_request(11, SendReq{0, "g", "b1", "after alice left"});
  t.exchange();
  CHECK(t.peer_host.of<MessageEv>(11).size() == 2);
  CHECK(t.peer_host.of<MessageEv>(10).size() == 1);
  CHECK(f.host.of<MessageEv>(1).size() == 1);
}

TEST_CASE("node: a send outside any session is checked, committed and answered like a session's") {
  Chat f;
  CHECK(f.node->open_session(0, "alice").code() == Code::kInvalidArgument);  // 0 is "no session"
  std::vector<ServerEvent> answers;
  auto done = [&answers](const ServerEvent& ev) { answers.push_back(ev); };
  f.node->send_as("alice", SendReq{4, "g", "h1", "from curl"}, done);
  CHECK(answers.empty());  // answered after the commit
  f.node->flush();
  REQUIRE(answers.size() == 1);
  const AckEv& ack = std::get<AckEv>(answers[0]);
  CHECK((ack.rid == 4 && ack.msg_id == 1 && ack.client_msg_id == "h1" && !ack.duplicate && ack.epoch == 1));
  auto pushed = f.host.of<MessageEv>(2);
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].message->user_id == "alice");
  CHECK(pushed[0].message->contents == "from curl");
  // The same cid again: the original, as a duplicate.
  f.node->send_as("alice", SendReq{5, "g", "h1", "from curl"}, done);
  f.node->flush();
  REQUIRE(answers.size() == 2);
  CHECK((std::get<AckEv>(answers[1]).msg_id == 1 && std::get<AckEv>(answers[1]).duplicate));
  // Refused before the store, at once: a non-member, bad input.
  f.node->send_as("eve", SendReq{6, "g", "e1", "let me in"}, done);
  REQUIRE(answers.size() == 3);
  CHECK(std::get<ErrorEv>(answers[2]).code == Code::kPermissionDenied);
  f.node->send_as("alice", SendReq{7, "g", "a2", std::string(70000, 'x')}, done);
  REQUIRE(answers.size() == 4);
  CHECK(std::get<ErrorEv>(answers[3]).code == Code::kTooLarge);
  // Refused by the log's rules, after the commit: bob edits alice's message.
  f.node->send_as("bob", entry_req(8, EntryKind::kEdit, 1, "mine now", "b1"), done);
  f.node->flush();
  REQUIRE(answers.size() == 5);
  CHECK(std::get<ErrorEv>(answers[4]).code == Code::kPermissionDenied);
  CHECK(std::get<ErrorEv>(answers[4]).rid == 8);
  std::vector<Message> stored;
  REQUIRE(f.messages->read("g", 0, 10, &stored).is_ok());
  CHECK(stored.size() == 1);
}

TEST_CASE("codecs: membership entries survive both client codecs and the peer batch, and no client sends one") {
  auto removed = std::make_shared<Message>(Message{"g", 7, 6, 5, "ann", "bob", "", 1});
  removed->entry.kind = EntryKind::kRemoved;
  for (bool json : {false, true}) {
    CAPTURE(json);
    auto codec = json ? make_json_codec() : make_msgpack_codec();
    std::string bytes = codec->encode_event(MessageEv{removed});
    Result<ServerEvent> back = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(back.is_ok());
    const Message& b = *std::get<MessageEv>(*back).message;
    CHECK(b.entry.kind == EntryKind::kRemoved);
    CHECK(b.user_id == "ann");
    CHECK(b.contents == "bob");
    // A client's "k" is ignored: the frame type names the kind.
    std::string forged = R"({"t":"send","rid":1,"g":"g","cid":"x","c":"bob","k":"removed"})";
    Result<ClientRequest> req = codec->decode_request(forged.data(), forged.size(), Limits{});
    if (req.is_ok()) CHECK(std::get<SendReq>(*req).entry.kind == EntryKind::kMessage);
  }
  std::string batch = detail::encode_batch(
      "n2", {std::make_shared<const std::string>(detail::encode_message_item(*removed))});
  Result<detail::PeerBatch> got = detail::decode_batch(batch.data(), batch.size(), Limits{});
  REQUIRE(got.is_ok());
  REQUIRE(got->messages.size() == 1);
  CHECK(got->messages[0]->entry.kind == EntryKind::kRemoved);
  CHECK(got->messages[0]->contents == "bob");
}

TEST_CASE("codecs: every field of an entry survives both client codecs") {
  for (bool json : {false, true}) {
    CAPTURE(json);
    auto codec = json ? make_json_codec() : make_msgpack_codec();
    SendReq send{1, "g", "c1", "see @bob"};
    send.entry.reply_to = 3;
    send.entry.mentions = {"bob", "carol"};
    send.entry.meta = R"({"card":{"n":1}})";
    std::vector<SendReq> reqs = {send, entry_req(2, EntryKind::kEdit, 4, "new"),
                                 entry_req(3, EntryKind::kDelete, 4), entry_req(4, EntryKind::kReaction, 4, "👍")};
    reqs[3].entry.remove = true;
    reqs[2].epoch = 7;
    for (const SendReq& r : reqs) {
      std::string bytes = codec->encode_request(r);
      Result<ClientRequest> back = codec->decode_request(bytes.data(), bytes.size(), Limits{});
      REQUIRE(back.is_ok());
      const SendReq& b = std::get<SendReq>(*back);
      CHECK(b.entry.kind == r.entry.kind);
      CHECK(b.entry.target == r.entry.target);
      CHECK(b.entry.reply_to == r.entry.reply_to);
      CHECK(b.entry.mentions == r.entry.mentions);
      CHECK(b.entry.meta == r.entry.meta);
      CHECK(b.entry.remove == r.entry.remove);
      CHECK(b.contents == r.contents);
      CHECK(b.epoch == r.epoch);
    }
    auto m = std::make_shared<Message>(Message{"g", 9, 8, 5, "ann", "", "c", 1});
    m->entry.kind = EntryKind::kReaction;
    m->entry.target = 4;
    m->entry.remove = true;
    auto tomb = std::make_shared<Message>(Message{"g", 4, 3, 5, "ann", "", "c", 1});
    tomb->deleted = true;
    tomb->entry.reply_to = 2;
    for (const MessagePtr& x : {MessagePtr(m), MessagePtr(tomb)}) {
      std::string bytes = codec->encode_event(MessageEv{x});
      Result<ServerEvent> back = codec->decode_event(bytes.data(), bytes.size());
      REQUIRE(back.is_ok());
      const Message& b = *std::get<MessageEv>(*back).message;
      CHECK(b.entry.kind == x->entry.kind);
      CHECK(b.entry.target == x->entry.target);
      CHECK(b.entry.reply_to == x->entry.reply_to);
      CHECK(b.entry.remove == x->entry.remove);
      CHECK(b.deleted == x->deleted);
    }
  }
}

TEST_CASE("codecs: the JSON codec writes an entry's fields by their documented names, meta as an object") {
  auto codec = make_json_codec();
  auto m = std::make_shared<Message>(Message{"g", 5, 4, 10, "bob", "yes", "c5", 1});
  m->entry.reply_to = 2;
  m->entry.mentions = {"ann"};
  m->entry.meta = R"({"k":[1,2]})";
  CHECK(codec->encode_event(MessageEv{m}) ==
        R"({"t":"msg","g":"g","id":5,"prev":4,"ts":10,"u":"bob","c":"yes","cid":"c5","ep":1,"re":2,)"
        R"("mn":["ann"],"meta":{"k":[1,2]}})");
  std::string edit = R"({"t":"edit","rid":1,"g":"g","to":5,"c":"yes!"})";
  auto r = codec->decode_request(edit.data(), edit.size(), Limits{});
  REQUIRE(r.is_ok());
  CHECK(std::get<SendReq>(*r).entry.kind == EntryKind::kEdit);
  CHECK(std::get<SendReq>(*r).entry.target == 5);
  std::string del = R"({"t":"delete","rid":2,"g":"g","to":5,"epoch":3})";
  r = codec->decode_request(del.data(), del.size(), Limits{});
  REQUIRE(r.is_ok());
  CHECK(std::get<SendReq>(*r).entry.kind == EntryKind::kDelete);
  CHECK(std::get<SendReq>(*r).epoch == 3);
  std::string bad_meta = R"({"t":"send","rid":3,"g":"g","c":"x","meta":"not an object"})";
  CHECK(codec->decode_request(bad_meta.data(), bad_meta.size(), Limits{}).status().code() ==
        Code::kInvalidArgument);
  std::string bad_mentions = R"({"t":"send","rid":3,"g":"g","c":"x","mn":[1]})";
  CHECK(codec->decode_request(bad_mentions.data(), bad_mentions.size(), Limits{}).status().code() ==
        Code::kInvalidArgument);
}

TEST_CASE("codecs: a peer batch carries every field of an entry, and a plain message in its short form") {
  Message plain{"g", 1, 0, 5, "ann", "hi", "c1", 1};
  Message tomb = plain;
  tomb.msg_id = 2;
  tomb.prev_msg_id = 1;
  tomb.contents.clear();
  tomb.deleted = true;
  tomb.entry.reply_to = 1;
  Message react{"g", 3, 2, 6, "bob", "🎉", "", 1};
  react.entry.kind = EntryKind::kReaction;
  react.entry.target = 1;
  react.entry.remove = true;
  Message rich{"g", 4, 3, 7, "bob", "hey @ann", "", 1};
  rich.entry.mentions = {"ann"};
  rich.entry.meta = R"({"x":1})";
  const std::string short_item = detail::encode_message_item(plain);
  CHECK(detail::encode_message_item(rich).size() > short_item.size());
  std::vector<Frame> items;
  for (const Message* m : {&plain, &tomb, &react, &rich}) {
    items.push_back(std::make_shared<const std::string>(detail::encode_message_item(*m)));
  }
  const std::string batch = detail::encode_batch("n1", items);
  auto decoded = detail::decode_batch(batch.data(), batch.size(), Limits{});
  REQUIRE(decoded.is_ok());
  REQUIRE(decoded->messages.size() == 4);
  CHECK(decoded->messages[0]->entry.plain());
  CHECK(decoded->messages[1]->deleted);
  CHECK(decoded->messages[1]->entry.reply_to == 1);
  CHECK(decoded->messages[2]->entry.kind == EntryKind::kReaction);
  CHECK(decoded->messages[2]->entry.target == 1);
  CHECK(decoded->messages[2]->entry.remove);
  CHECK(decoded->messages[3]->entry.mentions == rich.entry.mentions);
  CHECK(decoded->messages[3]->entry.meta == rich.entry.meta);
}
