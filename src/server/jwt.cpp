#include "jwt.hpp"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <limits>
#include <sstream>
#include <vector>

#include "log.hpp"
#include "parley/message.hpp"

namespace parley::server {

namespace {

Status unauthenticated(const std::string& why) { return error(Code::kUnauthenticated, why); }

// base64url (no padding) -> bytes; false for anything else.
bool unb64url(std::string s, std::string* out) {
  for (char& c : s) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '=' || !(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) return false;
  }
  const size_t pad = (4 - s.size() % 4) % 4;
  if (pad == 3) return false;
  s.append(pad, '=');
  std::vector<unsigned char> buf(s.size() / 4 * 3 + 1);
  const int n = EVP_DecodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return false;
  out->assign(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n) - pad);
  return true;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// An EVP_PKEY from key parameters (OpenSSL 3's fromdata).
Pkey pkey_from(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) key = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return Pkey(key);
}

Result<std::string> pem_of(const Pkey& key) {
  if (!key) return error(Code::kInvalidArgument, "the key's parameters are not a valid public key");
  BIO* bio = BIO_new(BIO_s_mem());
  std::string pem;
  if (bio != nullptr && PEM_write_bio_PUBKEY(bio, key.get()) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    pem.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  if (pem.empty()) return error(Code::kInternal, "cannot write the key as PEM");
  return pem;
}

// A JWK's base64url member.
Status member_bytes(const rapidjson::Value& jwk, const char* name, std::string* out) {
  auto it = jwk.FindMember(name);
  if (it == jwk.MemberEnd() || !it->value.IsString() || !unb64url(it->value.GetString(), out) || out->empty()) {
    return error(Code::kInvalidArgument, fmt::format("a key's '{}' is missing or not base64url", name));
  }
  return Status::ok();
}

Result<std::string> rsa_pem(const rapidjson::Value& jwk) {
  std::string n, e;
  if (Status st = member_bytes(jwk, "n", &n); !st) return st;
  if (Status st = member_bytes(jwk, "e", &e); !st) return st;
  if (n.size() < 256) return error(Code::kInvalidArgument, "an RSA key under 2048 bits");
  if (e.size() > 8 || (e.size() == 1 && static_cast<unsigned char>(e[0]) < 3) || (e.back() & 1) == 0) {
    return error(Code::kInvalidArgument, "an RSA key's exponent must be odd and at least 3");
  }
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  Pkey key;
  if (bn_n != nullptr && bn_e != nullptr && bld != nullptr &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    key = pkey_from("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return pem_of(key);
}

Result<std::string> ec_pem(const rapidjson::Value& jwk) {
  auto crv = jwk.FindMember("crv");
  if (crv == jwk.MemberEnd() || !crv->value.IsString() || std::string(crv->value.GetString()) != "P-256") {
    return error(Code::kInvalidArgument, "an EC key must be on curve P-256 (ES256)");
  }
  std::string x, y;
  if (Status st = member_bytes(jwk, "x", &x); !st) return st;
  if (Status st = member_bytes(jwk, "y", &y); !st) return st;
  if (x.size() != 32 || y.size() != 32) return error(Code::kInvalidArgument, "a P-256 key's x and y are 32 bytes");
  std::string point = "\x04" + x + y;  // uncompressed
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  Pkey key;
  if (bld != nullptr && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1) {
    key = pkey_from("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return pem_of(key);
}

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using Jwt = std::unique_ptr<jwt_t, JwtFree>;

// A NumericDate claim (seconds, whole or not) in ms: nullopt when absent;
// kUnauthenticated when present but not a number.
Result<std::optional<int64_t>> claim_ms(jwt_t* j, const char* name) {
  char* json = jwt_get_grants_json(j, name);
  if (json == nullptr) return std::optional<int64_t>();
  rapidjson::Document d;
  d.Parse(json);
  free(json);
  if (d.HasParseError() || !d.IsNumber()) {
    return unauthenticated(fmt::format("the token's '{}' claim is not a number", name));
  }
  constexpr double kFar = static_cast<double>(std::numeric_limits<int64_t>::max() / 4);  // no overflow in sums
  const double ms = std::clamp(d.GetDouble() * 1000.0, -kFar, kFar);
  return std::optional<int64_t>(static_cast<int64_t>(ms));
}

// Whether the token's "aud" (a string or an array of strings) names `want`.
bool audience_has(jwt_t* j, const std::string& want) {
  char* json = jwt_get_grants_json(j, "aud");
  if (json == nullptr) return false;
  rapidjson::Document d;
  d.Parse(json);
  free(json);
  if (d.HasParseError()) return false;
  if (d.IsString()) return want == d.GetString();
  if (!d.IsArray()) return false;
  for (const auto& a : d.GetArray()) {
    if (a.IsString() && want == a.GetString()) return true;
  }
  return false;
}

}  // namespace

struct JwtVerifier::Keys {
  std::map<std::string, std::pair<std::string, std::string>> by_kid;  // kid -> (kty, PEM)
};

Result<std::map<std::string, std::pair<std::string, std::string>>> parse_jwks(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("keys") || !d["keys"].IsArray()) {
    return error(Code::kInvalidArgument, "a JWKS file is a JSON object with a \"keys\" array");
  }
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& jwk : d["keys"].GetArray()) {
    if (!jwk.IsObject() || !jwk.HasMember("kty") || !jwk["kty"].IsString()) {
      return error(Code::kInvalidArgument, "each key is an object with a \"kty\"");
    }
    const std::string kty = jwk["kty"].GetString();
    const std::string kid = jwk.HasMember("kid") && jwk["kid"].IsString() ? jwk["kid"].GetString() : "";
    if (jwk.HasMember("use") && jwk["use"].IsString() && std::string(jwk["use"].GetString()) != "sig") continue;
    Result<std::string> pem = kty == "RSA" ? rsa_pem(jwk)
                              : kty == "EC"
                                  ? ec_pem(jwk)
                                  : Result<std::string>(error(Code::kInvalidArgument, "kty must be RSA or EC"));
    if (!pem) return error(pem.status().code(), fmt::format("key '{}': {}", kid, pem.status().message()));
    if (!out.emplace(kid, std::make_pair(kty, std::move(*pem))).second) {
      return error(Code::kInvalidArgument, fmt::format("two keys have the kid '{}'", kid));
    }
  }
  return out;
}

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::make(JwtOptions options) {
  if (options.secret.empty() && options.jwks_file.empty()) {
    return error(Code::kInvalidArgument, "JWTs need a shared secret (HS256) or a JWKS file (RS256, ES256)");
  }
  if (!options.secret.empty() && options.secret.size() < 32) {
    return error(Code::kInvalidArgument, "an HS256 secret needs at least 32 bytes");
  }
  std::unique_ptr<JwtVerifier> v(new JwtVerifier(std::move(options)));
  v->keys_ = std::make_shared<Keys>();
  if (!v->opt_.jwks_file.empty()) {
    if (Status st = v->load_jwks(); !st) return st;
  }
  return v;
}

Status JwtVerifier::load_jwks() {
  struct stat info {};
  if (::stat(opt_.jwks_file.c_str(), &info) != 0) {
    return error(Code::kInvalidArgument, fmt::format("cannot read the JWKS file {}", opt_.jwks_file));
  }
  {
    // Seen, good or bad: a file that does not load is warned about once per change.
    std::lock_guard<std::mutex> lock(mu_);
    file_mtime_ns_ = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
    file_size_ = static_cast<uint64_t>(info.st_size);
  }
  std::ifstream in(opt_.jwks_file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_jwks(text.str());
  if (!parsed) {
    return error(Code::kInvalidArgument, fmt::format("{}: {}", opt_.jwks_file, parsed.status().message()));
  }
  auto keys = std::make_shared<Keys>();
  keys->by_kid = std::move(*parsed);
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(keys);
  return Status::ok();
}

void JwtVerifier::maybe_reload(int64_t now_ms) {
  if (opt_.jwks_file.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now_ms - checked_at_ms_ < 1000) return;
    checked_at_ms_ = now_ms;
    struct stat info {};
    if (::stat(opt_.jwks_file.c_str(), &info) != 0) return;
    const int64_t mtime = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
    if (mtime == file_mtime_ns_ && static_cast<uint64_t>(info.st_size) == file_size_) return;
  }
  if (Status st = load_jwks(); !st) {
    PARLEY_LOG_WARN("keeping the JWKS keys in force: {}", st.message());
  } else {
    PARLEY_LOG_INFO("reloaded {} JWKS key(s) from {}", key_count(), opt_.jwks_file);
  }
}

size_t JwtVerifier::key_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_->by_kid.size();
}

Result<JwtClaims> JwtVerifier::verify(const std::string& token, int64_t now_ms) {
  if (token.size() > 8192 || std::count(token.begin(), token.end(), '.') != 2) {
    return unauthenticated("malformed token");
  }
  maybe_reload(now_ms);
  // The header, read here (libjwt reads no algorithm from a token it is not
  // given a key for): its alg and kid choose the key.
  std::string header_json;
  rapidjson::Document header;
  if (!unb64url(token.substr(0, token.find('.')), &header_json) ||
      header.Parse(header_json.c_str(), header_json.size()).HasParseError() || !header.IsObject() ||
      !header.HasMember("alg") || !header["alg"].IsString()) {
    return unauthenticated("malformed token");
  }
  // One alg only: libjwt's parser could read another duplicate than this one.
  int algs = 0;
  for (const auto& member : header.GetObject()) algs += std::string(member.name.GetString()) == "alg";
  if (algs != 1) return unauthenticated("malformed token");
  const std::string alg_name = header["alg"].GetString();
  const jwt_alg_t alg = alg_name == "HS256" ? JWT_ALG_HS256
                        : alg_name == "RS256" ? JWT_ALG_RS256
                        : alg_name == "ES256" ? JWT_ALG_ES256
                                              : JWT_ALG_INVAL;
  const std::string kid = header.HasMember("kid") && header["kid"].IsString() ? header["kid"].GetString() : "";
  // The key comes from what this server accepts, never from the token: an
  // HS256 token is checked with the secret only, an RS256/ES256 one with a
  // public key of that type only.
  std::string key;
  if (alg == JWT_ALG_HS256) {
    if (opt_.secret.empty()) return unauthenticated("HS256 tokens are not accepted here");
    key = opt_.secret;
  } else if (alg == JWT_ALG_RS256 || alg == JWT_ALG_ES256) {
    const char* want = alg == JWT_ALG_RS256 ? "RSA" : "EC";
    std::shared_ptr<const Keys> keys;
    {
      std::lock_guard<std::mutex> lock(mu_);
      keys = keys_;
    }
    auto it = keys->by_kid.find(kid);
    if (it == keys->by_kid.end() || it->second.first != want) {
      return unauthenticated(fmt::format("no {} key '{}' in the JWKS", want, kid));
    }
    key = it->second.second;
  } else {
    return unauthenticated(fmt::format("the algorithm {} is not accepted (HS256, RS256, ES256)",
                                       alg_name.size() <= 16 ? alg_name : alg_name.substr(0, 16) + "..."));
  }
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                 static_cast<int>(key.size())) != 0) {
    return unauthenticated("bad token signature");
  }
  Jwt j(raw);
  if (jwt_get_alg(j.get()) != alg) return unauthenticated("bad token signature");

  JwtClaims claims;
  const char* user = jwt_get_grant(j.get(), opt_.user_claim.c_str());
  if (user == nullptr) return unauthenticated(fmt::format("the token has no '{}' claim", opt_.user_claim));
  claims.user = user;
  if (Status st = validate_id(claims.user, opt_.user_claim.c_str(), Limits{}); !st) {
    return unauthenticated(fmt::format("the token's user: {}", st.message()));
  }
  Result<std::optional<int64_t>> exp = claim_ms(j.get(), "exp");
  if (!exp) return exp.status();
  if (!exp->has_value()) return unauthenticated("the token has no 'exp' claim");
  claims.expires_at_ms = **exp;
  claims.valid_until_ms = claims.expires_at_ms + opt_.leeway_ms;
  if (claims.valid_until_ms <= now_ms) return unauthenticated("token expired");
  Result<std::optional<int64_t>> nbf = claim_ms(j.get(), "nbf");
  if (!nbf) return nbf.status();
  if (nbf->has_value() && **nbf > now_ms + opt_.leeway_ms) return unauthenticated("token not valid yet (nbf)");
  if (!opt_.audience.empty() && !audience_has(j.get(), opt_.audience)) {
    return unauthenticated(fmt::format("the token is not for the audience '{}'", opt_.audience));
  }
  if (!opt_.issuer.empty()) {
    const char* iss = jwt_get_grant(j.get(), "iss");
    if (iss == nullptr || opt_.issuer != iss) {
      return unauthenticated(fmt::format("the token is not from the issuer '{}'", opt_.issuer));
    }
  }
  Result<std::optional<int64_t>> iat = claim_ms(j.get(), "iat");
  if (!iat) return iat.status();
  claims.issued_at_ms = iat->value_or(0);
  return claims;
}

}  // namespace parley::server
