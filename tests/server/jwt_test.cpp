// The app's own tokens (jwt.hpp): HS256 with the shared secret, RS256 and
// ES256 with JWKS keys (the file read again when it changes), the claims
// checked, and every other algorithm, key or claim refused with a reason.
// The tokens are signed here with libjwt and keys OpenSSL makes for the test.
#include <doctest/doctest.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "auth.hpp"
#include "jwt.hpp"

namespace parley::server {
namespace {

const std::string kSecret(40, 's');
constexpr int64_t kNow = 1800000000000;  // ms
constexpr long kNowS = kNow / 1000;

std::string b64url(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

// A key pair made for the test: its private key as PEM (to sign with) and
// its public half as a JWK (for the JWKS file).
struct TestKey {
  std::string private_pem;
  std::string jwk;
};

TestKey make_key(const char* kty, const std::string& kid) {
  EVP_PKEY* k = std::string(kty) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                                          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(k != nullptr);
  TestKey out;
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  out.private_pem.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  if (std::string(kty) == "RSA") {
    BIGNUM* bn_n = nullptr;
    BIGNUM* bn_e = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn_n) == 1);
    REQUIRE(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &bn_e) == 1);
    auto bytes = [](const BIGNUM* b) {
      std::string s(static_cast<size_t>(BN_num_bytes(b)), '\0');
      BN_bn2bin(b, reinterpret_cast<unsigned char*>(s.data()));
      return s;
    };
    out.jwk = R"({"kty":"RSA","kid":")" + kid + R"(","use":"sig","n":")" + b64url(bytes(bn_n)) + R"(","e":")" +
              b64url(bytes(bn_e)) + R"("})";
    BN_free(bn_n);
    BN_free(bn_e);
  } else {
    unsigned char point[65];
    size_t len = 0;
    REQUIRE(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len) == 1);
    REQUIRE(len == 65);
    const std::string p(reinterpret_cast<char*>(point), len);
    out.jwk = R"({"kty":"EC","kid":")" + kid + R"(","crv":"P-256","x":")" + b64url(p.substr(1, 32)) + R"(","y":")" +
              b64url(p.substr(33, 32)) + R"("})";
  }
  EVP_PKEY_free(k);
  return out;
}

// A token with `grants` (name -> JSON value), signed with `alg` and `key`.
std::string sign(jwt_alg_t alg, const std::string& key, const std::map<std::string, long>& numbers,
                 const std::map<std::string, std::string>& strings, const std::string& kid = "") {
  jwt_t* j = nullptr;
  REQUIRE(jwt_new(&j) == 0);
  for (const auto& [k, v] : numbers) REQUIRE(jwt_add_grant_int(j, k.c_str(), v) == 0);
  for (const auto& [k, v] : strings) REQUIRE(jwt_add_grant(j, k.c_str(), v.c_str()) == 0);
  if (!kid.empty()) REQUIRE(jwt_add_header(j, "kid", kid.c_str()) == 0);
  REQUIRE(jwt_set_alg(j, alg, alg == JWT_ALG_NONE ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
                      alg == JWT_ALG_NONE ? 0 : static_cast<int>(key.size())) == 0);
  char* text = jwt_encode_str(j);
  REQUIRE(text != nullptr);
  std::string out = text;
  free(text);
  jwt_free(j);
  return out;
}

std::string hs256(const std::map<std::string, long>& numbers, const std::map<std::string, std::string>& strings,
                  const std::string& secret = kSecret) {
  return sign(JWT_ALG_HS256, secret, numbers, strings);
}

const std::map<std::string, long> kValid = {{"exp", kNowS + 600}, {"iat", kNowS}};

std::string why(const Result<JwtClaims>& r) {
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  return r.status().message();
}

struct JwksFile {
  std::string path;
  JwksFile() {
    char name[] = "/tmp/parley-jwks-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
  }
  ~JwksFile() { std::filesystem::remove(path); }
  void write(const std::string& text, int64_t mtime_s) const {
    std::ofstream(path, std::ios::trunc) << text;
    std::filesystem::last_write_time(path, std::filesystem::file_time_type(std::chrono::seconds(mtime_s)));
  }
};

}  // namespace

TEST_CASE("jwt: HS256 with the shared secret, and its claims checked") {
  auto v = JwtVerifier::make(JwtOptions{kSecret, "", "sub", "", "", 30000});
  REQUIRE(v.is_ok());
  JwtVerifier& jwt = **v;
  Result<JwtClaims> ok = jwt.verify(hs256(kValid, {{"sub", "alice"}}), kNow);
  REQUIRE(ok.is_ok());
  CHECK(ok->user == "alice");
  CHECK(ok->expires_at_ms == kNow + 600000);
  CHECK(ok->issued_at_ms == kNow);

  CHECK(why(jwt.verify(hs256(kValid, {{"sub", "alice"}}, std::string(40, 'x')), kNow)) == "bad token signature");
  CHECK(why(jwt.verify(hs256({{"exp", kNowS - 31}}, {{"sub", "alice"}}), kNow)) == "token expired");
  CHECK(jwt.verify(hs256({{"exp", kNowS - 29}}, {{"sub", "alice"}}), kNow).is_ok());  // within the leeway
  CHECK(why(jwt.verify(hs256({}, {{"sub", "alice"}}), kNow)) == "the token has no 'exp' claim");
  CHECK(why(jwt.verify(hs256(kValid, {}), kNow)) == "the token has no 'sub' claim");
  CHECK(why(jwt.verify(hs256({{"exp", kNowS + 600}, {"nbf", kNowS + 60}}, {{"sub", "a"}}), kNow)) ==
        "token not valid yet (nbf)");
  CHECK(why(jwt.verify(hs256(kValid, {{"sub", "a\tb"}}), kNow)).find("control character") != std::string::npos);
  CHECK(why(jwt.verify(sign(JWT_ALG_NONE, "", kValid, {{"sub", "alice"}}), kNow)).find("not accepted") !=
        std::string::npos);
  CHECK(why(jwt.verify(sign(JWT_ALG_HS384, kSecret, kValid, {{"sub", "alice"}}), kNow)).find("HS384") !=
        std::string::npos);
  for (const char* bad : {"", "a.b", "a.b.c.d", "!!.??.zz", "v1.x.y"}) CHECK(why(jwt.verify(bad, kNow)) != "");
  // NumericDates may have a fraction; a claim that is not a number is refused, not read as absent.
  auto with_claims = [](const std::string& payload) {
    const std::string signing = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(payload);
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
         reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &len);
    return signing + "." + b64url(std::string(reinterpret_cast<char*>(mac), len));
  };
  const std::string exp = std::to_string(kNowS + 600);
  CHECK(jwt.verify(with_claims(R"({"sub":"a","exp":)" + exp + ".5}"), kNow)->expires_at_ms == kNow + 600500);
  CHECK(why(jwt.verify(with_claims(R"({"sub":"a","exp":")" + exp + R"("})"), kNow)) ==
        "the token's 'exp' claim is not a number");
  CHECK(why(jwt.verify(with_claims(R"({"sub":"a","exp":)" + exp + R"(,"nbf":"later"})"), kNow)) ==
        "the token's 'nbf' claim is not a number");
  CHECK(jwt.verify(with_claims(R"({"sub":"a","exp":)" + exp + "}"), kNow).is_ok());  // the helper signs right
  // A session on a token ends with its exp and the leeway, as the check at connect.
  CHECK(jwt.verify(hs256({{"exp", kNowS - 10}}, {{"sub", "alice"}}), kNow)->valid_until_ms == kNow + 20000);
  // An RS256 token is refused without a JWKS.
  const TestKey rsa = make_key("RSA", "k1");
  CHECK(why(jwt.verify(sign(JWT_ALG_RS256, rsa.private_pem, kValid, {{"sub", "alice"}}, "k1"), kNow))
            .find("no RSA key") != std::string::npos);
}

TEST_CASE("jwt: audience, issuer and the user's claim are as configured") {
  auto v = JwtVerifier::make(JwtOptions{kSecret, "", "uid", "chat", "https://game.example", 0});
  REQUIRE(v.is_ok());
  JwtVerifier& jwt = **v;
  const std::map<std::string, std::string> good = {{"uid", "bob"}, {"aud", "chat"}, {"iss", "https://game.example"}};
  REQUIRE(jwt.verify(hs256(kValid, good), kNow).is_ok());
  CHECK(jwt.verify(hs256(kValid, good), kNow)->user == "bob");
  auto without = [&](const char* claim) {
    auto g = good;
    g.erase(claim);
    return hs256(kValid, g);
  };
  CHECK(why(jwt.verify(without("aud"), kNow)) == "the token is not for the audience 'chat'");
  CHECK(why(jwt.verify(without("iss"), kNow)) == "the token is not from the issuer 'https://game.example'");
  CHECK(why(jwt.verify(without("uid"), kNow)) == "the token has no 'uid' claim");
  CHECK(why(jwt.verify(hs256({{"exp", kNowS - 1}}, good), kNow)) == "token expired");  // no leeway here
  auto other = good;
  other["aud"] = "billing";
  CHECK(why(jwt.verify(hs256(kValid, other), kNow)) == "the token is not for the audience 'chat'");

  CHECK(JwtVerifier::make(JwtOptions{}).status().code() == Code::kInvalidArgument);
  CHECK(JwtVerifier::make(JwtOptions{"short", "", "sub", "", "", 0}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("jwt: RS256 and ES256 with the JWKS's keys by kid, and the file read again when it changes") {
  const TestKey rsa = make_key("RSA", "r1");
  const TestKey ec = make_key("EC", "e1");
  const TestKey later = make_key("EC", "e2");
  JwksFile file;
  file.write(R"({"keys":[)" + rsa.jwk + "," + ec.jwk + "]}", 1000);
  auto v = JwtVerifier::make(JwtOptions{"", file.path, "sub", "", "", 30000});
  REQUIRE_MESSAGE(v.is_ok(), v.status().to_string());
  JwtVerifier& jwt = **v;
  CHECK(jwt.key_count() == 2);
  const std::map<std::string, std::string> carol = {{"sub", "carol"}};
  CHECK(jwt.verify(sign(JWT_ALG_RS256, rsa.private_pem, kValid, carol, "r1"), kNow)->user == "carol");
  CHECK(jwt.verify(sign(JWT_ALG_ES256, ec.private_pem, kValid, carol, "e1"), kNow)->user == "carol");
  // The kid picks the key; a key of another type, another key or no key is refused.
  CHECK(why(jwt.verify(sign(JWT_ALG_ES256, ec.private_pem, kValid, carol, "r1"), kNow)) == "no EC key 'r1' in the JWKS");
  CHECK(why(jwt.verify(sign(JWT_ALG_ES256, later.private_pem, kValid, carol, "e1"), kNow)) == "bad token signature");
  CHECK(why(jwt.verify(sign(JWT_ALG_ES256, later.private_pem, kValid, carol, "e2"), kNow)) ==
        "no EC key 'e2' in the JWKS");
  // Without a secret, HS256 is refused even when signed with a public key's text.
  CHECK(why(jwt.verify(sign(JWT_ALG_HS256, rsa.jwk, kValid, carol), kNow)) == "HS256 tokens are not accepted here");
  // A header naming two algorithms is refused, whichever one a parser would keep.
  const std::string two_algs = b64url(R"({"alg":"RS256","kid":"r1","alg":"HS256"})") + "." +
                               b64url(R"({"sub":"carol","exp":)" + std::to_string(kNowS + 600) + "}") + ".c2ln";
  CHECK(why(jwt.verify(two_algs, kNow)) == "malformed token");

  // The file changes: the new key is taken (after the one-second look), the dropped one refused.
  file.write(R"({"keys":[)" + later.jwk + "]}", 2000);
  CHECK(jwt.verify(sign(JWT_ALG_ES256, later.private_pem, kValid, carol, "e2"), kNow + 2000)->user == "carol");
  CHECK(jwt.key_count() == 1);
  CHECK(why(jwt.verify(sign(JWT_ALG_RS256, rsa.private_pem, kValid, carol, "r1"), kNow + 2000)) ==
        "no RSA key 'r1' in the JWKS");
  // A file that does not load keeps the keys in force.
  file.write("{not json", 3000);
  CHECK(jwt.verify(sign(JWT_ALG_ES256, later.private_pem, kValid, carol, "e2"), kNow + 4000).is_ok());
  CHECK(jwt.key_count() == 1);
}

TEST_CASE("jwt: a JWKS that is not one is refused with what is wrong") {
  const TestKey rsa = make_key("RSA", "r1");
  CHECK(parse_jwks("[]").status().code() == Code::kInvalidArgument);
  CHECK(parse_jwks(R"({"keys":[{"kty":"oct","k":"AAAA"}]})").status().message().find("kty") != std::string::npos);
  CHECK(parse_jwks(R"({"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]})").status().message().find("P-256") !=
        std::string::npos);
  CHECK(parse_jwks(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})").status().message().find("2048") !=
        std::string::npos);
  std::string e_one = rsa.jwk;
  e_one.replace(e_one.find(R"("e":")") + 5, 4, "AQ");  // e = 1: any signature would pass
  CHECK(parse_jwks(R"({"keys":[)" + e_one + "]}").status().message().find("exponent") != std::string::npos);
  CHECK(parse_jwks(R"({"keys":[)" + rsa.jwk + "," + rsa.jwk + "]}").status().message().find("two keys") !=
        std::string::npos);
  auto only_enc = parse_jwks(R"({"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]})");
  REQUIRE(only_enc.is_ok());
  CHECK(only_enc->empty());  // encryption keys are not for signatures
  JwksFile file;
  file.write("{}", 1000);
  CHECK(JwtVerifier::make(JwtOptions{"", file.path, "sub", "", "", 0}).status().code() == Code::kInvalidArgument);
  CHECK(JwtVerifier::make(JwtOptions{"", "/nonexistent/jwks.json", "sub", "", "", 0}).status().code() ==
        Code::kInvalidArgument);
}

TEST_CASE("jwt: Auth takes the app's JWTs beside its own tokens") {
  Auth auth(std::string(32, 'q'), 3600000, /*dev=*/true);
  const std::string jwt_token = hs256(kValid, {{"sub", "dave"}});
  CHECK(auth.verify(jwt_token, kNow).status().code() == Code::kUnauthenticated);  // not set up yet
  auth.set_jwt(std::move(*JwtVerifier::make(JwtOptions{kSecret, "", "sub", "", "", 0})));
  Result<TokenClaims> claims = auth.verify(jwt_token, kNow);
  REQUIRE(claims.is_ok());
  CHECK(claims->user == "dave");
  CHECK(claims->expires_at_ms == kNow + 600000);
  CHECK(claims->valid_until_ms == kNow + 600000);  // no leeway in this verifier
  const std::string own = auth.issue("erin", kNow + 1000);
  CHECK(auth.verify(own, kNow)->user == "erin");
}

}  // namespace parley::server
