// Fuzz target: the app's tokens (src/server/jwt.hpp). One input = a token,
// then optionally "\n" and a JWKS document. The token goes through a
// verifier that takes HS256 with a fixed secret and ES256 with one fixed
// P-256 key (kid "k1"), at a fixed time; the document through parse_jwks.
// Checked besides "no crash": a refusal is unauthenticated with a reason; an
// accepted token names a valid user id and expires after the time it was
// checked at (less the leeway); parse_jwks either refuses with
// invalid_argument and a reason or gives one PEM public key per kid.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_check.hpp"
#include "jwt.hpp"
#include "parley/message.hpp"

namespace {

using parley::fuzz::check;

constexpr int64_t kNow = 1800000000000;
const char* const kJwks =
    R"({"keys":[{"kty":"EC","kid":"k1","crv":"P-256","x":"P9AUaCP8VCnXb21s3swPAJswBSS2rkP_hFgevEbH46M",)"
    R"("y":"jJOfR1Ox8ZAVVNQgHe9z7vy3INSPLJSfdDEXKcGSOgQ"}]})";

parley::server::JwtVerifier& verifier() {
  static std::unique_ptr<parley::server::JwtVerifier> v = [] {
    char path[] = "/tmp/parley-fuzz-jwks-XXXXXX";
    const int fd = mkstemp(path);
    check(fd >= 0, "a temporary JWKS file");
    check(write(fd, kJwks, std::char_traits<char>::length(kJwks)) > 0, "the JWKS file written");
    close(fd);
    auto made = parley::server::JwtVerifier::make(
        parley::server::JwtOptions{std::string(40, 's'), path, "sub", "", "", 30000});
    unlink(path);  // read at make(); later looks find it gone and keep the keys
    check(made.is_ok(), "the verifier is made");
    return std::move(*made);
  }();
  return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string token = input.substr(0, nl);
  parley::Result<parley::server::JwtClaims> claims = verifier().verify(token, kNow);
  if (claims) {
    check(parley::validate_id(claims->user, "user", parley::Limits{}).is_ok(), "an accepted token names a valid user");
    check(claims->expires_at_ms + 30000 > kNow, "an accepted token has not expired");
  } else {
    parley::fuzz::check_error(claims.status(), {parley::Code::kUnauthenticated}, "verify");
  }
  if (nl != std::string::npos) {
    auto keys = parley::server::parse_jwks(input.substr(nl + 1));
    if (keys) {
      for (const auto& [kid, key] : *keys) {
        check(key.first == "RSA" || key.first == "EC", "a key is RSA or EC");
        check(key.second.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0, "a key is a PEM public key");
      }
    } else {
      parley::fuzz::check_error(keys.status(), {parley::Code::kInvalidArgument, parley::Code::kInternal}, "parse_jwks");
    }
  }
  return 0;
}
