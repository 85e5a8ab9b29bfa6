// Accounts for the example server: HMAC-SHA256 signed tokens with an expiry,
// PBKDF2-SHA256 password hashes, and the users file; and the app's own
// tokens (JWTs, jwt.hpp) when set. OpenSSL does the cryptography. Thread
// rules: an Auth is immutable after its setup (the JWT verifier locks what
// it reloads).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "jwt.hpp"

#include "parley/status.hpp"

namespace parley::server {

struct TokenClaims {
  std::string user;
  int64_t expires_at_ms = 0;
  int64_t valid_until_ms = 0;  // when a session on it ends (a JWT: its exp and the leeway)
};

class Auth {
 public:
  // `secret` signs tokens. dev: any user name logs in with any password.
  Auth(std::string secret, int64_t ttl_ms, bool dev);

  // Loads NAME:pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX lines ('#' comments).
  Status load_users(const std::string& path);

  // Checks a login; returns a token valid for ttl_ms from now_ms.
  Result<std::string> login(const std::string& user, const std::string& password, int64_t now_ms,
                            TokenClaims* claims) const;
  std::string issue(const std::string& user, int64_t expires_at_ms) const;
  // kUnauthenticated with the reason (malformed, bad signature, expired).
  // A token of this server's own ("v1.") or, with set_jwt, the app's JWT.
  Result<TokenClaims> verify(const std::string& token, int64_t now_ms) const;
  // Accepts the app's JWTs too.
  void set_jwt(std::shared_ptr<JwtVerifier> jwt) { jwt_ = std::move(jwt); }
  // The server API's key (none: the server API refuses every call).
  void set_api_key(std::string key) { api_key_ = std::move(key); }
  // Whether `presented` is the server API's key (compared in constant time).
  bool is_api_key(const std::string& presented) const;

 private:
  std::string secret_;
  std::string api_key_;
  std::shared_ptr<JwtVerifier> jwt_;
  int64_t ttl_ms_;
  bool dev_;
  std::unordered_map<std::string, std::string> users_;  // name -> hash line
};

// A users-file line for `user` and `password` (random salt).
std::string hash_password_line(const std::string& user, const std::string& password, int iterations = 200000);
// Checks a password against a "pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX" hash.
bool check_password(const std::string& encoded, const std::string& password);
// `bytes` random bytes as hex (for secrets and salts).
std::string random_hex(size_t bytes);
// A key: `given` if not empty, else the first line of DATA_DIR/`file`, made
// once (32 random bytes as hex, mode 0600): the token secret ("secret"),
// the server API's key ("api-key").
Result<std::string> load_or_make_secret(const std::string& given, const std::string& data_dir,
                                        const char* file = "secret");

}  // namespace parley::server
