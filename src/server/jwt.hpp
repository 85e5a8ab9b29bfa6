// The app's own tokens (docs/server.md, "The app's own tokens"; decision
// 57): JSON Web Tokens signed with HS256 (a secret shared with the app) or
// with RS256/ES256 (private keys the app keeps, public keys in a JWKS file
// this server reads, and reads again when it changes). libjwt checks the
// signatures; this class picks the key, refuses every other algorithm, and
// checks the claims (the user id's claim, expiry, not-before, audience,
// issuer).
//
// Thread rules: verify() may be called from any thread at once (the I/O
// threads of every shard): the keys are swapped whole under a mutex when
// the JWKS file changed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "parley/status.hpp"

namespace parley::server {

struct JwtOptions {
  std::string secret;              // HS256's shared secret ("": HS256 is refused)
  std::string jwks_file;           // RS256/ES256 public keys ("": those are refused)
  std::string user_claim = "sub";  // the claim that names the user
  std::string audience;            // "" or the "aud" a token must carry
  std::string issuer;              // "" or the "iss" a token must carry
  int64_t leeway_ms = 30000;       // clock skew allowed on exp and nbf
};

struct JwtClaims {
  std::string user;
  int64_t expires_at_ms = 0;   // exp
  int64_t valid_until_ms = 0;  // exp and the leeway: when a session on it ends
  int64_t issued_at_ms = 0;  // 0: the token has no iat
};

class JwtVerifier {
 public:
  // kInvalidArgument if neither a secret nor a JWKS file is given, or the
  // JWKS file does not load.
  static Result<std::unique_ptr<JwtVerifier>> make(JwtOptions options);

  // The claims of a valid token; kUnauthenticated with the reason otherwise.
  Result<JwtClaims> verify(const std::string& token, int64_t now_ms);

  // Reads the JWKS file again if it changed since the last look (at most
  // once a second; verify() calls it). A file that does not load keeps the
  // keys in force (and is logged).
  void maybe_reload(int64_t now_ms);
  // How many public keys are in force.
  size_t key_count();

 private:
  explicit JwtVerifier(JwtOptions options) : opt_(std::move(options)) {}
  struct Keys;  // kid -> PEM, by key type
  Status load_jwks();

  JwtOptions opt_;
  std::mutex mu_;
  std::shared_ptr<const Keys> keys_;
  int64_t checked_at_ms_ = 0;
  int64_t file_mtime_ns_ = 0;
  uint64_t file_size_ = 0;
};

// Loads a JWKS document's RSA and P-256 EC keys as PEM public keys, by kid
// ("" for a key without one). kInvalidArgument naming what is wrong.
Result<std::map<std::string, std::pair<std::string, std::string>>> parse_jwks(const std::string& json);

}  // namespace parley::server
