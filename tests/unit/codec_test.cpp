#include <doctest/doctest.h>

#include "parley/clock.hpp"
#include "parley/protocol.hpp"

using namespace parley;

// Both codecs share one schema; each round-trip test runs on both.
std::unique_ptr<ClientCodec> codec_under_test(bool json) {
  return json ? make_json_codec() : make_msgpack_codec();
}

TEST_CASE("every request survives encode and decode") {
  bool json = false;
  SUBCASE("msgpack") {}
  SUBCASE("json") {
    json = true;
  }
  auto codec = codec_under_test(json);
  Limits limits;
  // JSON carries contents as a string, so an escaped NUL stands in for binary.
  std::vector<ClientRequest> reqs = {
      SendReq{1, "g", "c1", std::string("bin\0ary \xc3\xa9", 10)},
      ResumeReq{2, "g", 41, 3},
      UnsubscribeReq{3, "g"},
      PullReq{4, "g", 10, 50},
      TypingReq{5, "g"},
      PresenceReq{6, PresenceStatus::kAway, false},
  };
  for (const ClientRequest& r : reqs) {
    std::string bytes = codec->encode_request(r);
    Result<ClientRequest> back = codec->decode_request(bytes.data(), bytes.size(), limits);
    REQUIRE(back.is_ok());
    CHECK(back->index() == r.index());
  }
  std::string bytes = codec->encode_request(reqs[0]);
  auto send = std::get<SendReq>(*codec->decode_request(bytes.data(), bytes.size(), limits));
  CHECK(send.contents == std::string("bin\0ary \xc3\xa9", 10));
  CHECK(send.client_msg_id == "c1");
  bytes = codec->encode_request(reqs[1]);
  auto resume = std::get<ResumeReq>(*codec->decode_request(bytes.data(), bytes.size(), limits));
  CHECK(resume.after == 41);
  CHECK(resume.epoch == 3);
}

TEST_CASE("every event survives encode and decode") {
  bool json = false;
  SUBCASE("msgpack") {}
  SUBCASE("json") {
    json = true;
  }
  auto codec = codec_under_test(json);
  auto m = std::make_shared<Message>(Message{"g", 7, 6, 1234, "u", "hi", "c"});
  std::vector<ServerEvent> evs = {
      AckEv{1, "g", "c", 7, 1234, true},
      MessageEv{m},
      ResumedEv{2, "g", 7, 1, DeliveryMode::kPull},
      PullResultEv{3, "g", {m, m}, 9, 2},
      ModeEv{"g", DeliveryMode::kPull, 7},
      PullHintEv{"g", 8},
      PresenceEv{"u", "g", PresenceStatus::kAway, true, 99},
      EpochEv{"g", 2, 0},
      FellBehindEv{77},
      ErrorEv{4, Code::kPermissionDenied, "no", "g", "c"},
  };
  for (const ServerEvent& e : evs) {
    std::string bytes = codec->encode_event(e);
    Result<ServerEvent> back = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(back.is_ok());
    CHECK(back->index() == e.index());
  }
  std::string bytes = codec->encode_event(evs[1]);
  auto msg = std::get<MessageEv>(*codec->decode_event(bytes.data(), bytes.size()));
  CHECK(msg.message->msg_id == 7);
  CHECK(msg.message->prev_msg_id == 6);
  CHECK(msg.message->contents == "hi");
  bytes = codec->encode_event(evs[9]);
  auto err = std::get<ErrorEv>(*codec->decode_event(bytes.data(), bytes.size()));
  CHECK(err.code == Code::kPermissionDenied);
  bytes = codec->encode_event(evs[3]);
  auto pulled = std::get<PullResultEv>(*codec->decode_event(bytes.data(), bytes.size()));
  REQUIRE(pulled.messages.size() == 2);
  CHECK(pulled.messages[1]->user_id == "u");
  CHECK(pulled.head == 9);
  CHECK(pulled.epoch == 2);
}

TEST_CASE("the JSON codec speaks the documented field names") {
  auto codec = make_json_codec();
  auto m =
      std::make_shared<Message>(Message{"general", 42, 41, 1764290000123, "alice", "hello", "a1b2-1", 1});
  CHECK(codec->encode_event(MessageEv{m}) ==
        R"({"t":"msg","g":"general","id":42,"prev":41,"ts":1764290000123,"u":"alice","c":"hello",)"
        R"("cid":"a1b2-1","ep":1})");
  std::string send = R"({"t":"send","rid":1,"g":"general","cid":"a1b2-1","c":"h\u00e9llo","extra":[1,2]})";
  auto r = codec->decode_request(send.data(), send.size(), Limits{});
  REQUIRE(r.is_ok());
  CHECK(std::get<SendReq>(*r).contents == "h\xc3\xa9llo");
}

TEST_CASE("malformed JSON requests get a clear error, never an exception") {
  auto codec = make_json_codec();
  Limits limits;
  auto decode = [&](const std::string& s) { return codec->decode_request(s.data(), s.size(), limits); };
  CHECK(decode("").status().message().find("malformed JSON") != std::string::npos);
  CHECK(decode("{\"t\":").status().code() == Code::kInvalidArgument);
  CHECK(decode("[1,2]").status().message().find("object") != std::string::npos);
  CHECK(decode(R"({"t":"zzz"})").status().message().find("unknown request type") != std::string::npos);
  CHECK(decode(R"({"t":"send","c":"x"})").status().message().find("'g'") != std::string::npos);
  CHECK(decode(R"({"t":"send","g":7,"c":"x"})").status().message().find("'g' must be a string") !=
        std::string::npos);
  CHECK(decode(R"({"t":"resume","g":"x","after":-1})").status().code() == Code::kInvalidArgument);
  CHECK(decode("{\"t\":\"send\",\"g\":\"\xff\",\"c\":\"x\"}").status().code() == Code::kInvalidArgument);
  // Regression (fuzz: json_frame): an unpaired low surrogate escape is refused, not decoded into bytes
  // that are not UTF-8; a pair is fine.
  CHECK(decode(R"({"t":"send","g":"g","c":"\udf0d"})").status().message() ==
        "field 'c' is not UTF-8 (an unpaired surrogate escape)");
  CHECK(decode(R"({"t":"send","g":"g","cid":"\ud41c\udf0d","c":"x"})").status().code() ==
        Code::kInvalidArgument);
  CHECK(decode(R"({"t":"send","g":"g","c":"\ud83c\udf0d"})").is_ok());
  CHECK(decode(std::string(100000, '[')).status().code() == Code::kInvalidArgument);  // no stack overflow
  std::string big =
      codec->encode_request(SendReq{1, "g", "c", std::string(json_max_frame_bytes(limits), 'x')});
  CHECK(decode(big).status().code() == Code::kTooLarge);
}

TEST_CASE("a refused request's ids can still be read for its error") {
  bool json = false;
  SUBCASE("msgpack") {}
  SUBCASE("json") {
    json = true;
  }
  auto codec = codec_under_test(json);
  // A pull with limit 0 is refused, but its rid and group are there.
  std::string bytes = codec->encode_request(PullReq{11, "room", 0, 0});
  Limits limits;
  REQUIRE_FALSE(codec->decode_request(bytes.data(), bytes.size(), limits).is_ok());
  uint64_t rid = 0;
  std::string g, cid = "untouched";
  codec->peek_ids(bytes.data(), bytes.size(), limits, &rid, &g, &cid);
  CHECK(rid == 11);
  CHECK(g == "room");
  CHECK(cid == "untouched");
  codec->peek_ids("\xc1", 1, limits, &rid, &g, &cid);  // garbage: nothing changes
  CHECK(rid == 11);
}

TEST_CASE("malformed requests get a clear error, never an exception") {
  auto codec = make_msgpack_codec();
  Limits limits;
  auto decode = [&](const std::string& s) { return codec->decode_request(s.data(), s.size(), limits); };
  CHECK(decode("").status().code() == Code::kInvalidArgument);
  CHECK(decode("\xc1").status().code() == Code::kInvalidArgument);          // never-used byte
  CHECK(decode("\x92\x01\x02").status().code() == Code::kInvalidArgument);  // not a map
  CHECK(decode("\x81\xa1t\xa3zzz").status().message().find("unknown request type") != std::string::npos);
  CHECK(decode("\x81\xa1t\xa4send").status().message().find("'g'") != std::string::npos);
  CHECK(decode("\xdd\xff\xff\xff\xff").status().code() == Code::kInvalidArgument);  // huge array header
  std::string big =
      codec->encode_request(SendReq{1, "g", "c", std::string(limits.max_contents_bytes + 1024, 'x')});
  CHECK(decode(big).status().code() == Code::kTooLarge);
  std::string trailing = codec->encode_request(TypingReq{1, "g"}) + "x";
  CHECK(decode(trailing).status().message().find("trailing") != std::string::npos);
  PullReq p{1, "g", 0, 0};
  CHECK(decode(codec->encode_request(p)).status().message().find("limit") != std::string::npos);
}

TEST_CASE("an array header longer than the frame is refused before it is allocated") {
  // Regression (fuzz: msgpack_frame): 5 bytes announcing 1M elements made msgpack allocate 16 MB.
  auto codec = make_msgpack_codec();
  const std::string frame("\xdd\x00\x0f\xff\xff", 5);
  Result<ServerEvent> ev = codec->decode_event(frame.data(), frame.size());
  CHECK(ev.status().message().find("array size overflow") != std::string::npos);
}

TEST_CASE("random bytes never crash the decoder") {
  bool json = false;
  SUBCASE("msgpack") {}
  SUBCASE("json") {
    json = true;
  }
  auto codec = codec_under_test(json);
  Random rng(3);
  std::string good = codec->encode_request(SendReq{1, "group", "cid", "contents"});
  for (int i = 0; i < 20000; ++i) {
    std::string s = good;
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) s[rng.below(s.size())] = static_cast<char>(rng.next());
    if (rng.chance(0.3)) s.resize(rng.below(s.size() + 1));
    auto r = codec->decode_request(s.data(), s.size(), Limits{});
    if (!r.is_ok()) CHECK(r.status().code() != Code::kOk);
  }
}
