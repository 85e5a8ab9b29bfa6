#include "auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace parley::server {
namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

bool unhex(const std::string& s, std::string* out) {
  if (s.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < s.size(); i += 2) {
    int v = 0;
    for (size_t k = i; k < i + 2; ++k) {
      char c = s[k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + d;
    }
    out->push_back(static_cast<char>(v));
  }
  return true;
}

// base64url without padding, through OpenSSL's base64.
std::string b64url(const std::string& in) {
  std::vector<unsigned char> out(4 * ((in.size() + 2) / 3) + 1);
  int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  std::string s(reinterpret_cast<char*>(out.data()), static_cast<size_t>(n));
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

bool unb64url(std::string s, std::string* out) {
  for (char& c : s) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (c == '+' || c == '/' || c == '=')
      return false;
  }
  while (s.size() % 4) s.push_back('=');
  std::vector<unsigned char> buf(s.size() / 4 * 3 + 1);
  int n = EVP_DecodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(s.data()),
                          static_cast<int>(s.size()));
  if (n < 0) return false;
  size_t pad = 0;
  for (size_t i = s.size(); i > 0 && s[i - 1] == '='; --i) ++pad;
  out->assign(reinterpret_cast<char*>(buf.data()), static_cast<size_t>(n) - pad);
  return true;
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string pbkdf2(const std::string& password, const std::string& salt, int iterations) {
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                    iterations, EVP_sha256(), sizeof out, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

bool equal_ct(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Status unauthenticated(std::string why) {
  return error(Code::kUnauthenticated, std::move(why));
}

}  // namespace

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) throw std::runtime_error("RAND_bytes failed");
  return hex(buf.data(), bytes);
}

std::string hash_password_line(const std::string& user, const std::string& password, int iterations) {
  std::string salt;
  unhex(random_hex(16), &salt);
  std::string h = pbkdf2(password, salt, iterations);
  return fmt::format("{}:pbkdf2-sha256${}${}${}", user, iterations,
                     hex(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()),
                     hex(reinterpret_cast<const unsigned char*>(h.data()), h.size()));
}

bool check_password(const std::string& encoded, const std::string& password) {
  // pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX
  const std::string prefix = "pbkdf2-sha256$";
  if (encoded.compare(0, prefix.size(), prefix) != 0) return false;
  size_t a = prefix.size();
  size_t b = encoded.find('$', a);
  if (b == std::string::npos) return false;
  size_t c = encoded.find('$', b + 1);
  if (c == std::string::npos) return false;
  std::string iter_s = encoded.substr(a, b - a);
  if (iter_s.empty() || iter_s.size() > 9 || iter_s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  int iterations = std::stoi(iter_s);
  std::string salt, want;
  if (iterations < 1 || !unhex(encoded.substr(b + 1, c - b - 1), &salt) ||
      !unhex(encoded.substr(c + 1), &want)) {
    return false;
  }
  return equal_ct(pbkdf2(password, salt, iterations), want);
}

Auth::Auth(std::string secret, int64_t ttl_ms, bool dev)
    : secret_(std::move(secret)), ttl_ms_(ttl_ms), dev_(dev) {}

Status Auth::load_users(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(Code::kNotFound, fmt::format("cannot read users file '{}'", path));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string::npos) {
      return error(Code::kInvalidArgument, fmt::format("{}:{}: want NAME:HASH", path, lineno));
    }
    users_[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return Status::ok();
}

Result<std::string> Auth::login(const std::string& user, const std::string& password, int64_t now_ms,
                                TokenClaims* claims) const {
  if (!dev_) {
    auto it = users_.find(user);
    // Hash even for unknown users so timing does not tell which names exist.
    bool ok = check_password(it == users_.end() ? "pbkdf2-sha256$200000$00$00" : it->second, password);
    if (it == users_.end() || !ok) return unauthenticated("wrong user name or password");
  }
  claims->user = user;
  claims->expires_at_ms = now_ms + ttl_ms_;
  return issue(user, claims->expires_at_ms);
}

std::string Auth::issue(const std::string& user, int64_t expires_at_ms) const {
  std::string body = "v1." + b64url(user) + "." + b64url(std::to_string(expires_at_ms));
  return body + "." + b64url(hmac_sha256(secret_, body));
}

Result<TokenClaims> Auth::verify(const std::string& token, int64_t now_ms) const {
  if (token.empty()) return unauthenticated("a token is required (log in at POST /v1/login)");
  if (jwt_ != nullptr && token.compare(0, 3, "v1.") != 0) {
    Result<JwtClaims> jwt = jwt_->verify(token, now_ms);
    if (!jwt) return jwt.status();
    return TokenClaims{std::move(jwt->user), jwt->expires_at_ms, jwt->valid_until_ms};
  }
  if (token.size() > 1024 || token.compare(0, 3, "v1.") != 0) return unauthenticated("malformed token");
  size_t mac_dot = token.rfind('.');
  std::string body = token.substr(0, mac_dot);
  std::string mac;
  if (!unb64url(token.substr(mac_dot + 1), &mac) || !equal_ct(mac, hmac_sha256(secret_, body))) {
    return unauthenticated("bad token signature");
  }
  size_t user_dot = body.find('.', 3);
  std::string user, exp;
  if (user_dot == std::string::npos || !unb64url(body.substr(3, user_dot - 3), &user) ||
      !unb64url(body.substr(user_dot + 1), &exp) || exp.empty() || exp.size() > 18 ||
      exp.find_first_not_of("0123456789") != std::string::npos) {
    return unauthenticated("malformed token");
  }
  TokenClaims claims{user, std::stoll(exp), 0};
  claims.valid_until_ms = claims.expires_at_ms;
  if (claims.expires_at_ms <= now_ms) return unauthenticated("token expired");
  return claims;
}

bool Auth::is_api_key(const std::string& presented) const {
  return !api_key_.empty() && equal_ct(presented, api_key_);
}

Result<std::string> load_or_make_secret(const std::string& given, const std::string& data_dir, const char* file) {
  if (!given.empty()) return given;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  const fs::path path = fs::path(data_dir) / file;
  std::ifstream in(path);
  std::string secret;
  if (in && std::getline(in, secret) && secret.size() >= 32) return secret;
  secret = random_hex(32);
  // Made 0600 from the start: never readable by others, not even for a moment.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const std::string line = secret + "\n";
  const bool written = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (fd >= 0) ::close(fd);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, ec);  // a file made before
  if (!written) return error(Code::kUnavailable, fmt::format("cannot write {}", path.string()));
  return secret;
}

}  // namespace parley::server
