#include <doctest/doctest.h>

#include "parley/clock.hpp"
#include "parley/message.hpp"
#include "parley/status.hpp"
#include "parley/version.hpp"

using namespace parley;

TEST_CASE("status carries code and message") {
  Status s = error(Code::kNotFound, "group 'g' does not exist");
  CHECK_FALSE(s.is_ok());
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.to_string() == "not_found: group 'g' does not exist");
  CHECK(Status::ok().to_string() == "ok");
  Result<int> r = 5;
  CHECK(r.is_ok());
  CHECK(*r == 5);
  Result<int> e = error(Code::kTimeout, "slow");
  CHECK_FALSE(e.is_ok());
  CHECK(e.status().code() == Code::kTimeout);
}

TEST_CASE("validation names the bad field") {
  Limits limits;
  limits.max_contents_bytes = 10;
  CHECK(validate_submission("g", "u", "", "short", limits).is_ok());
  Status empty_group = validate_submission("", "u", "", "x", limits);
  CHECK(empty_group.code() == Code::kInvalidArgument);
  CHECK(empty_group.message().find("group_id") != std::string::npos);
  CHECK(validate_submission("g", "u", "", std::string(11, 'x'), limits).code() == Code::kTooLarge);
  CHECK(validate_submission("g", std::string(129, 'u'), "", "x", limits).code() == Code::kTooLarge);
  CHECK(validate_submission("g", "u", std::string("a\nb"), "x", limits).code() == Code::kInvalidArgument);
  // Ids and contents are UTF-8 text (docs/decisions.md 37).
  CHECK(
      validate_submission("gr\xc3\xbcn", "\xc3\xa9mile", "\xe2\x82\xac", "\xf0\x9f\x8c\x8d", limits).is_ok());
  CHECK(validate_submission("g", "u", "", "\xff", limits).message() == "contents is not UTF-8");
  CHECK(validate_submission("g", "u", "", "\xff", limits).code() == Code::kInvalidArgument);
  CHECK(validate_submission("g\xc3", "u", "", "x", limits).message() == "group_id is not UTF-8");
  CHECK(validate_submission("g", "\xed\xa0\x80", "", "x", limits).message() == "user_id is not UTF-8");
  CHECK(validate_submission("g", "u", "\xc0\xaf", "x", limits).message() == "client_msg_id is not UTF-8");
  CHECK(validate_id("n\x80", "from", limits).code() == Code::kInvalidArgument);
}

TEST_CASE("limits are inclusive: exactly the limit is accepted, one byte more is too_large") {
  Limits limits;
  limits.max_contents_bytes = 10;
  limits.max_id_bytes = 8;
  CHECK(validate_submission("g", "u", "", std::string(10, 'x'), limits).is_ok());
  CHECK(validate_submission("g", "u", "", std::string(11, 'x'), limits).code() == Code::kTooLarge);
  CHECK(validate_submission(std::string(8, 'g'), std::string(8, 'u'), std::string(8, 'c'), "x", limits).is_ok());
  CHECK(validate_id(std::string(9, 'g'), "group_id", limits).code() == Code::kTooLarge);
}

TEST_CASE("ids hold no control character, DEL among them") {
  Limits limits;
  for (const char* bad : {"a\x01b", "tab\there", "del\x7f"}) {
    CAPTURE(bad);
    Status s = validate_id(bad, "user_id", limits);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message() == "user_id contains a control character");
  }
  CHECK(validate_id("~tilde", "user_id", limits).is_ok());  // 0x7e, the last printable
}

TEST_CASE("random is reproducible from its seed") {
  Random a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    CHECK(x == b.next());
    differs |= x != c.next();
  }
  CHECK(differs);
  for (int i = 0; i < 1000; ++i) {
    int64_t v = a.range(-3, 3);
    CHECK(v >= -3);
    CHECK(v <= 3);
  }
}

TEST_CASE("header and library versions agree") {
  CHECK(version_number() == PARLEY_VERSION_NUMBER);
  CHECK(std::string(version_string()) == PARLEY_VERSION_STRING);
}
