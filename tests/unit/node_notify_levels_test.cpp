// Notification levels through a node (issue 13 item 5): a member's level
// for a group (all, mentions, none) is set and read with the notify request,
// told to the user's other sessions, and honoured for offline members and
// for failed sessions' undelivered messages; a notification says whether
// the user was mentioned. Codecs: the notify frames and the peer notify
// item survive encoding.
#include <doctest/doctest.h>

#include "core/peer_codec.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;
using parley::test::Fixture;
using parley::test::TwoNodes;

namespace {

// alice connected; bob and carol offline.
struct Levels : Fixture {
  Levels() { REQUIRE(node->open_session(1, "alice").is_ok()); }
  void request(SessionId s, const ClientRequest& r) {
    node->on_client_request(s, r);
    node->flush();
  }
  void say(const std::string& cid, const std::string& text, std::vector<std::string> mentions = {}) {
    SendReq r{0, "g", cid, text};
    r.entry.mentions = std::move(mentions);
    request(1, r);
  }
  // (user, preview, mentioned) of each notification so far.
  std::vector<std::tuple<std::string, std::string, bool>> sent() const {
    std::vector<std::tuple<std::string, std::string, bool>> out;
    for (const Notification& n : notifier.sent) out.emplace_back(n.user_id, n.preview, n.mentioned);
    return out;
  }
};

using Sent = std::vector<std::tuple<std::string, std::string, bool>>;

}  // namespace

TEST_CASE("node: offline members are notified by their level, and a notification says who was mentioned") {
  Levels f;
  REQUIRE(f.members->set_notify_level("g", "bob", NotifyLevel::kMentions).is_ok());
  f.say("c1", "plain");
  CHECK(f.sent() == Sent{{"carol", "plain", false}});
  f.say("c2", "@bob", {"bob"});
  CHECK(f.sent() == Sent{{"carol", "plain", false}, {"bob", "@bob", true}, {"carol", "@bob", false}});
  REQUIRE(f.members->set_notify_level("g", "carol", NotifyLevel::kNone).is_ok());
  f.say("c3", "@carol @bob", {"carol", "bob"});
  REQUIRE(f.sent().size() == 4);
  CHECK(f.sent()[3] == std::make_tuple(std::string("bob"), std::string("@carol @bob"), true));
  // Back to all.
  REQUIRE(f.members->set_notify_level("g", "bob", NotifyLevel::kAll).is_ok());
  f.say("c4", "again");
  REQUIRE(f.sent().size() == 5);
  CHECK(f.sent()[4] == std::make_tuple(std::string("bob"), std::string("again"), false));
}

TEST_CASE("node: a failed session's undelivered messages are notified by the user's level") {
  Levels f;
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.request(2, ResumeReq{0, "g", 0, 0});
  f.drain(2);
  REQUIRE(f.members->set_notify_level("g", "bob", NotifyLevel::kMentions).is_ok());
  REQUIRE(f.members->set_notify_level("g", "carol", NotifyLevel::kNone).is_ok());
  f.say("c1", "not for bob");
  f.say("c2", "for @bob", {"bob"});  // both queued to bob, not written

  f.node->close_session(2, error(Code::kUnavailable, "connection reset"));
  f.node->flush();
  REQUIRE(f.notifier.sent.size() == 1);
  CHECK(f.notifier.sent[0].user_id == "bob");
  CHECK(f.notifier.sent[0].msg_id == 2);
  CHECK(f.notifier.sent[0].mentioned);
  CHECK(f.notifier.sent[0].reason.find("connection reset") != std::string::npos);
}

TEST_CASE("node: of a failed session's undelivered entries only others' messages are notified") {
  Levels f;
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.request(2, ResumeReq{0, "g", 0, 0});
  f.drain(2);
  f.say("c1", "a message");
  SendReq react{0, "g", "c2", "+1"};
  react.entry.kind = EntryKind::kReaction;
  react.entry.target = 1;
  f.request(1, react);
  REQUIRE(f.node->record_membership("g", EntryKind::kJoin, "dave").is_ok());
  f.request(2, SendReq{0, "g", "b1", "bob's own"});  // all four queued to bob, not written
  REQUIRE(f.notifier.sent.size() == 2);  // carol (offline) of the two messages
  f.node->close_session(2, error(Code::kUnavailable, "connection reset"));
  f.node->flush();
  REQUIRE(f.notifier.sent.size() == 3);
  CHECK(f.notifier.sent[2].user_id == "bob");
  CHECK(f.notifier.sent[2].msg_id == 1);
}

TEST_CASE("node: the notify request sets and reads the level, and tells the user's other sessions") {
  Levels f;
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  REQUIRE(f.node->open_session(3, "bob").is_ok());
  f.request(2, NotifyReq{5, "g", std::nullopt});
  auto got = f.host.of<NotifyEv>(2);
  REQUIRE(got.size() == 1);
  CHECK(got[0].rid == 5);
  CHECK(got[0].group_id == "g");
  CHECK(got[0].level == NotifyLevel::kAll);
  CHECK(f.host.of<NotifyEv>(3).empty());  // a read tells nobody else
  f.request(2, NotifyReq{6, "g", NotifyLevel::kMentions});
  got = f.host.of<NotifyEv>(2);
  REQUIRE(got.size() == 2);
  CHECK(got[1].rid == 6);
  CHECK(got[1].level == NotifyLevel::kMentions);
  auto told = f.host.of<NotifyEv>(3);
  REQUIRE(told.size() == 1);
  CHECK(told[0].rid == 0);
  CHECK(told[0].level == NotifyLevel::kMentions);
  CHECK(f.host.of<NotifyEv>(1).empty());
  std::vector<NotifyLevel> stored;
  REQUIRE(f.members->notify_levels("g", {"bob"}, &stored).is_ok());
  CHECK(stored == std::vector<NotifyLevel>{NotifyLevel::kMentions});
  // Not a member: permission_denied, nothing stored.
  REQUIRE(f.node->open_session(4, "eve").is_ok());
  f.request(4, NotifyReq{7, "g", NotifyLevel::kNone});
  auto errors = f.host.of<ErrorEv>(4);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == Code::kPermissionDenied);
  CHECK(errors[0].rid == 7);
  CHECK(f.host.of<NotifyEv>(4).empty());
}

TEST_CASE("node: a level set on one node is told to the user's sessions on another") {
  TwoNodes t;
  Fixture& f = t.f;
  t.alice_on_both_bob_on_peer();
  f.node->on_client_request(1, NotifyReq{3, "g", NotifyLevel::kNone});
  t.exchange();
  REQUIRE(f.host.of<NotifyEv>(1).size() == 1);
  auto told = t.peer_host.of<NotifyEv>(10);
  REQUIRE(told.size() == 1);
  CHECK(told[0].rid == 0);
  CHECK(told[0].group_id == "g");
  CHECK(told[0].level == NotifyLevel::kNone);
  CHECK(t.peer_host.of<NotifyEv>(11).empty());
}

TEST_CASE("codecs: the peer notify item keeps every field, and an unknown level refuses the batch") {
  std::string item = detail::encode_notify_item({"ann", "g", NotifyLevel::kMentions});
  std::string batch = detail::encode_batch("n2", {std::make_shared<const std::string>(item)});
  Result<detail::PeerBatch> got = detail::decode_batch(batch.data(), batch.size(), Limits{});
  REQUIRE(got.is_ok());
  REQUIRE(got->levels.size() == 1);
  CHECK(got->levels[0].user_id == "ann");
  CHECK(got->levels[0].group_id == "g");
  CHECK(got->levels[0].level == NotifyLevel::kMentions);
  item.back() = 3;  // the level is the last byte: a fixint
  batch = detail::encode_batch("n2", {std::make_shared<const std::string>(item)});
  CHECK(detail::decode_batch(batch.data(), batch.size(), Limits{}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("codecs: the notify request and event survive both client codecs, and a bad level is invalid_argument") {
  for (bool json : {false, true}) {
    CAPTURE(json);
    auto codec = json ? make_json_codec() : make_msgpack_codec();
    for (std::optional<NotifyLevel> level : {std::optional<NotifyLevel>(), std::optional(NotifyLevel::kNone),
                                             std::optional(NotifyLevel::kMentions)}) {
      std::string bytes = codec->encode_request(NotifyReq{3, "g", level});
      Result<ClientRequest> req = codec->decode_request(bytes.data(), bytes.size(), Limits{});
      REQUIRE(req.is_ok());
      const NotifyReq& r = std::get<NotifyReq>(*req);
      CHECK(r.rid == 3);
      CHECK(r.group_id == "g");
      CHECK(r.level == level);
    }
    std::string bytes = codec->encode_event(NotifyEv{4, "g", NotifyLevel::kMentions});
    Result<ServerEvent> ev = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(ev.is_ok());
    const NotifyEv& e = std::get<NotifyEv>(*ev);
    CHECK(e.rid == 4);
    CHECK(e.group_id == "g");
    CHECK(e.level == NotifyLevel::kMentions);
  }
  auto codec = make_json_codec();
  std::string bad = R"({"t":"notify","rid":1,"g":"g","level":"loud"})";
  Result<ClientRequest> r = codec->decode_request(bad.data(), bad.size(), Limits{});
  REQUIRE(!r.is_ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(r.status().message().find("loud") != std::string::npos);
}
