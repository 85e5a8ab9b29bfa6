#include <doctest/doctest.h>

#include "core/utf8.hpp"
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
  CHECK(err.about.empty());
  ErrorEv earlier{0, Code::kBackpressure, "your previous connection failed: behind", "", ""};
  earlier.about = "previous_connection";
  bytes = codec->encode_event(earlier);
  if (json) CHECK(bytes.find(R"("about":"previous_connection")") != std::string::npos);
  CHECK(std::get<ErrorEv>(*codec->decode_event(bytes.data(), bytes.size())).about == "previous_connection");
  bytes = codec->encode_event(evs[3]);
  auto pulled = std::get<PullResultEv>(*codec->decode_event(bytes.data(), bytes.size()));
  REQUIRE(pulled.messages.size() == 2);
  CHECK(pulled.messages[1]->user_id == "u");
  CHECK(pulled.head == 9);
  CHECK(pulled.epoch == 2);
}

TEST_CASE("a folded pull and its answer survive encode and decode, folds with their messages") {
  bool json = false;
  SUBCASE("msgpack") {}
  SUBCASE("json") {
    json = true;
  }
  auto codec = codec_under_test(json);
  PullReq req{5, "g", 10, 20, 1, true};
  std::string bytes = codec->encode_request(req);
  Result<ClientRequest> decoded = codec->decode_request(bytes.data(), bytes.size(), Limits{});
  REQUIRE_MESSAGE(decoded.is_ok(), decoded.status().to_string());
  auto back_req = std::get<PullReq>(*decoded);
  CHECK(back_req.fold);
  CHECK(back_req.after == 10);
  req.fold = false;
  bytes = codec->encode_request(req);
  CHECK_FALSE(std::get<PullReq>(*codec->decode_request(bytes.data(), bytes.size(), Limits{})).fold);

  auto plain = std::make_shared<Message>(Message{"g", 11, 10, 1, "u", "first", ""});
  auto edited = std::make_shared<Message>(Message{"g", 12, 11, 2, "v", "latest", ""});
  PullResultEv ev;
  ev.rid = 5;
  ev.group_id = "g";
  ev.messages = {plain, edited};
  ev.head = 40;
  ev.epoch = 1;
  ev.folded = true;
  ev.to = 30;
  ev.folds = {Fold{}, Fold{31, {ReactionCount{"👍", 3, true}, ReactionCount{"🎉", 1, false}}, 2}};
  bytes = codec->encode_event(ev);
  Result<ServerEvent> event = codec->decode_event(bytes.data(), bytes.size());
  REQUIRE_MESSAGE(event.is_ok(), event.status().to_string());
  auto back = std::get<PullResultEv>(*event);
  CHECK(back.folded);
  CHECK(back.to == 30);
  CHECK(back.head == 40);
  REQUIRE(back.messages.size() == 2);
  CHECK(back.messages[1]->contents == "latest");
  CHECK(back.folds == ev.folds);
  // A plain answer says nothing of folds.
  ev.folded = false;
  bytes = codec->encode_event(ev);
  back = std::get<PullResultEv>(*codec->decode_event(bytes.data(), bytes.size()));
  CHECK_FALSE(back.folded);
  CHECK(back.folds.empty());
  CHECK(bytes.find("\"rx\"") == std::string::npos);
  CHECK(bytes.find("rx") == std::string::npos);
}

TEST_CASE("the JSON codec writes a folded message's edit, reactions and replies as documented") {
  auto codec = make_json_codec();
  auto m = std::make_shared<Message>(Message{"general", 42, 41, 1764290000123, "alice", "hello!", "a1b2-1", 1});
  auto fold = std::make_shared<const Fold>(Fold{45, {ReactionCount{"+1", 2, true}}, 3});
  CHECK(codec->encode_event(MessageEv{m, fold}) ==
        R"({"t":"msg","g":"general","id":42,"prev":41,"ts":1764290000123,"u":"alice","c":"hello!",)"
        R"("cid":"a1b2-1","ep":1,"ed":45,"rx":[{"k":"+1","n":2,"me":true}],"nr":3})");
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

TEST_CASE("the msgpack codec refuses text fields that are not UTF-8") {
  // Regression (fuzz: capi_bytes): contents and ids were bytes to the msgpack codec, so a JSON
  // session in the same cluster received a frame that was not JSON. Text on every codec now.
  auto codec = make_msgpack_codec();
  Limits limits;
  auto decode = [&](const ClientRequest& r) {
    const std::string bytes = codec->encode_request(r);
    return codec->decode_request(bytes.data(), bytes.size(), limits).status();
  };
  // "\xff" never appears in UTF-8; "\xed\xa0\x80" is a surrogate; "\xc0\xaf" an overlong "/";
  // "\xe2\x82" a cut sequence.
  for (const std::string bad : {"\xff", "\xed\xa0\x80", "\xc0\xaf", "a\xe2\x82"}) {
    CAPTURE(bad);
    // The encoder writes only UTF-8, so these frames are packed by hand: contents as bin (what the
    // codec writes) and as str, then each id.
    const std::string frame =
        "\x84\xa1t\xa4send\xa1g\xa1g\xa3"
        "cid\xa0\xa1"
        "c";
    const std::string as_bin = frame + "\xc4" + char(bad.size()) + bad;
    Status s = codec->decode_request(as_bin.data(), as_bin.size(), limits).status();
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message() == "field 'c' is not UTF-8");
    const std::string as_str = frame + char(0xa0 | bad.size()) + bad;
    CHECK(codec->decode_request(as_str.data(), as_str.size(), limits).status().message() ==
          "field 'c' is not UTF-8");
    const std::string bad_group = "\x83\xa1t\xa4send\xa1g" + std::string(1, char(0xa0 | bad.size())) + bad +
                                  "\xa1"
                                  "c\xa1x";
    s = codec->decode_request(bad_group.data(), bad_group.size(), limits).status();
    CHECK(s.message() == "field 'g' is not UTF-8");
    // Its error event does not echo the group either.
    uint64_t rid = 0;
    std::string g = "untouched", cid;
    codec->peek_ids(bad_group.data(), bad_group.size(), limits, &rid, &g, &cid);
    CHECK(g == "untouched");
  }
  CHECK(decode(SendReq{1, "gr\xc3\xbcn",
                       "\xe2\x82\xac"
                       "1",
                       "\xf0\x9f\x8c\x8d \xed\x9f\xbf"})
            .is_ok());
}

TEST_CASE("the encoders write only UTF-8, whatever they are handed") {
  // The last line of defence: a message that got past the checks (a store written by an older
  // version) still makes frames every client can decode; each invalid sequence becomes U+FFFD.
  auto m = std::make_shared<Message>(Message{"g\xff", 1, 0, 5, "u",
                                             "a\xe2\x82"
                                             "b\xed\xa0\x80",
                                             "c", 1});
  const std::string fixed_contents =
      "a\xef\xbf\xbd"
      "b\xef\xbf\xbd";
  for (bool json : {false, true}) {
    CAPTURE(json);
    auto codec = codec_under_test(json);
    const std::string bytes = codec->encode_event(MessageEv{m});
    Result<ServerEvent> back = codec->decode_event(bytes.data(), bytes.size());
    REQUIRE(back.is_ok());
    const Message& got = *std::get<MessageEv>(*back).message;
    CHECK(got.group_id == "g\xef\xbf\xbd");
    CHECK(got.contents == fixed_contents);
  }
  CHECK(make_json_codec()
            ->encode_event(MessageEv{m})
            .find("\"c\":\"a\xef\xbf\xbd"
                  "b") != std::string::npos);
}

TEST_CASE("UTF-8 is checked as RFC 3629 says") {
  using detail::is_utf8;
  CHECK(is_utf8(""));
  CHECK(is_utf8(std::string("a\0b", 3)));
  CHECK(is_utf8("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf"));
  CHECK(is_utf8("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));
  for (const char* bad : {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                          "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xfe",
                          "\xff", "\xc3", "\xe2\x82", "\xf0\x9f\x8c", "\xc3(", "ok\xe2\x82\xacok\xe2"}) {
    CAPTURE(bad);
    CHECK_FALSE(is_utf8(bad));
  }
  std::string scratch;
  CHECK(detail::utf8_or_replaced("fine \xe2\x82\xac", &scratch) == "fine \xe2\x82\xac");
  // Each invalid sequence becomes U+FFFD; the valid text around it stays.
  for (const auto& [bad, kept] : std::vector<std::pair<std::string, std::string>>{{"\xe2\x82x", "x"},
                                                                                  {"\xf0\x9f\x8c", ""},
                                                                                  {"\xed\xa0", ""},
                                                                                  {"\xc0\xafz\xff", "z"},
                                                                                  {"a\x80"
                                                                                   "b",
                                                                                   "ab"}}) {
    CAPTURE(bad);
    const std::string out(detail::utf8_or_replaced(bad, &scratch));
    CHECK(is_utf8(out));
    CHECK(out.find("\xef\xbf\xbd") != std::string::npos);
    std::string rest;  // out without its U+FFFDs
    for (size_t i = 0; i < out.size();) {
      if (out.compare(i, 3, "\xef\xbf\xbd") == 0) {
        i += 3;
      } else {
        rest += out[i++];
      }
    }
    CHECK(rest == kept);
  }
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
