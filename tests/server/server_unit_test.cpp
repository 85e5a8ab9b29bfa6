// Unit tests of parley-server's pieces: tokens, password hashes, endpoints,
// notification bodies, TLS files, and the HttpPoster's bounds against a
// server on 127.0.0.1 that never answers.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "auth.hpp"
#include "parley/server/config.hpp"
#include "http_poster.hpp"
#include "notifiers.hpp"
#include "tls.hpp"

using namespace parley;
using namespace parley::server;

TEST_CASE("a token verifies until it expires, and only with its secret") {
  Auth auth("secret-1", 60000, /*dev=*/true);
  TokenClaims claims;
  Result<std::string> token = auth.login("alice", "", 1000, &claims);
  REQUIRE(token.is_ok());
  CHECK(claims.expires_at_ms == 61000);
  Result<TokenClaims> ok = auth.verify(*token, 60999);
  REQUIRE(ok.is_ok());
  CHECK(ok->user == "alice");
  Result<TokenClaims> expired = auth.verify(*token, 61000);
  CHECK(expired.status().code() == Code::kUnauthenticated);
  CHECK(expired.status().message() == "token expired");
  Auth other("secret-2", 60000, true);
  CHECK(other.verify(*token, 2000).status().message() == "bad token signature");
}

TEST_CASE("a tampered token is refused") {
  Auth auth("k", 60000, true);
  std::string token = auth.issue("alice", 99999);
  std::string forged = auth.issue("mallory", 99999);
  // alice's signature on mallory's claims
  std::string mixed = forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.'));
  CHECK(auth.verify(mixed, 0).status().code() == Code::kUnauthenticated);
  for (const std::string& bad : {std::string(), std::string("v1."), std::string("v2.a.b.c"), token + "x",
                                 std::string("v1.!!.??.**"), std::string(2000, 'v')}) {
    CHECK(auth.verify(bad, 0).status().code() == Code::kUnauthenticated);
  }
}

TEST_CASE("passwords: only the right one logs in, unless dev") {
  std::string line = hash_password_line("bob", "hunter2", 1000);
  REQUIRE(line.rfind("bob:pbkdf2-sha256$1000$", 0) == 0);
  const std::string encoded = line.substr(4);
  CHECK(check_password(encoded, "hunter2"));
  CHECK_FALSE(check_password(encoded, "hunter3"));
  CHECK_FALSE(check_password("plain", "plain"));
  CHECK_FALSE(check_password("pbkdf2-sha256$x$00$00", "x"));

  Auth strict("k", 1000, /*dev=*/false);
  const std::string path = "server_unit_users.txt";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fprintf(f, "# users\n%s\n", line.c_str());
    std::fclose(f);
  }
  REQUIRE(strict.load_users(path).is_ok());
  TokenClaims claims;
  CHECK(strict.login("bob", "hunter2", 0, &claims).is_ok());
  CHECK(strict.login("bob", "nope", 0, &claims).status().code() == Code::kUnauthenticated);
  CHECK(strict.login("carol", "hunter2", 0, &claims).status().code() == Code::kUnauthenticated);
  std::remove(path.c_str());
  CHECK(strict.load_users(path).code() == Code::kNotFound);
}

TEST_CASE("endpoints parse as HOST:PORT and [v6]:PORT") {
  Endpoint e;
  REQUIRE(parse_endpoint("127.0.0.1:8080", &e));
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == 8080);
  REQUIRE(parse_endpoint("[::1]:0", &e));
  CHECK(e.host == "::1");
  CHECK(e.to_string() == "[::1]:0");
  for (const char* bad : {"", "8080", "host:", ":80", "h:70000", "h:8o", "[::1]80", "[::1]"}) {
    CHECK_FALSE(parse_endpoint(bad, &e));
  }
}

TEST_CASE("a notification becomes the documented JSON body") {
  Notification n{"bob", "general", 1, 42, "alice", "he said \"hi\"", "offline"};
  CHECK(
      notification_json(n) ==
      R"({"user":"bob","group":"general","epoch":1,"msg_id":42,"sender":"alice","preview":"he said \"hi\"",)"
      R"("reason":"offline","mentioned":false})");
  n.mentioned = true;
  CHECK(notification_json(n).find(R"("mentioned":true})") != std::string::npos);
}

namespace {

// A self-signed P-256 certificate for "unit" and its key, as PEM files.
void write_self_signed(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("unit"), -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  std::FILE* f = std::fopen(cert_path.c_str(), "w");
  REQUIRE(f);
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  REQUIRE(f);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

}  // namespace

TEST_CASE("TLS files: a matching pair loads; otherwise the error names the flag, the file and why") {
  write_self_signed("server_unit_a.pem", "server_unit_a.key");
  write_self_signed("server_unit_b.pem", "server_unit_b.key");
  {
    std::FILE* f = std::fopen("server_unit_junk.pem", "w");
    REQUIRE(f);
    std::fputs("not PEM\n", f);
    std::fclose(f);
  }
  CHECK(check_tls_files({"--tls-", "server_unit_a.pem", "server_unit_a.key", ""}).is_ok());
  CHECK(check_tls_files({"--peer-tls-", "server_unit_a.pem", "server_unit_a.key", "server_unit_b.pem"})
            .is_ok());

  Status missing = check_tls_files({"--tls-", "server_unit_none.pem", "server_unit_a.key", ""});
  CHECK(missing.message() == "--tls-cert server_unit_none.pem: No such file or directory");
  Status junk = check_tls_files({"--tls-", "server_unit_junk.pem", "server_unit_a.key", ""});
  CHECK(junk.message() ==
        "--tls-cert server_unit_junk.pem: not a PEM certificate (PEM routines: no start line)");
  Status other = check_tls_files({"--tls-", "server_unit_a.pem", "server_unit_b.key", ""});
  CHECK(other.message().rfind("--tls-key server_unit_b.key: not the key of --tls-cert server_unit_a.pem (",
                              0) == 0);
  CHECK(other.message().find("key values mismatch") != std::string::npos);
  Status ca =
      check_tls_files({"--peer-tls-", "server_unit_a.pem", "server_unit_a.key", "server_unit_junk.pem"});
  CHECK(ca.message().rfind("--peer-tls-ca server_unit_junk.pem: no PEM CA certificate (", 0) == 0);
  for (const char* f : {"server_unit_a.pem", "server_unit_a.key", "server_unit_b.pem", "server_unit_b.key",
                        "server_unit_junk.pem"}) {
    std::remove(f);
  }
}

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the
// handshakes and buffers what is sent, and nothing ever answers (a peer or
// webhook that does not read).
struct DeafListener {
  int fd = -1;
  uint16_t port = 0;
  DeafListener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t n = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0);
    port = ntohs(a.sin_port);
  }
  ~DeafListener() { ::close(fd); }
};

TEST_CASE("an HttpPoster's connection sends without waiting for ACKs (TCP_NODELAY, decision 42)") {
  // A request leaves as two writes, headers then body: with Nagle's
  // algorithm the body waits for the delayed ACK of the headers.
  DeafListener deaf;
  HttpPoster::Options o;
  o.host = "127.0.0.1";
  o.port = deaf.port;
  o.timeout_ms = 60000;
  std::mutex m;
  std::condition_variable cv;
  int sockets = 0, nodelay = -1;
  o.on_socket = [&](int fd) {
    int on = 0;
    socklen_t n = sizeof on;
    const int rc = ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &n);
    std::lock_guard<std::mutex> lock(m);
    ++sockets;
    nodelay = rc == 0 ? on : -1;
    cv.notify_all();
  };
  HttpPoster poster(o);
  REQUIRE(poster.post("/hook", std::make_shared<const std::string>("{}"), "application/json", nullptr));
  std::unique_lock<std::mutex> lock(m);
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return sockets > 0; }));
  CHECK(sockets == 1);
  CHECK(nodelay != 0);
  CHECK(nodelay != -1);
}

TEST_CASE("an HttpPoster to a server that never answers: bounded queue, and destroyed without waiting") {
  DeafListener deaf;
  HttpPoster::Options o;
  o.host = "127.0.0.1";
  o.port = deaf.port;
  o.timeout_ms = 60000;  // far longer than the test: the destructor must not wait for it
  o.max_queued = 4;
  std::atomic<int> done{0};
  auto body = std::make_shared<const std::string>("{}");
  auto poster = std::make_unique<HttpPoster>(o);
  // The worker takes the first request and waits for its answer (nothing
  // signals that it has taken it: poll the queue, bounded).
  REQUIRE(poster->post("/hook", body, "application/json", [&](int) { ++done; }));
  for (int i = 0; i < 5000 && poster->queued() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(poster->queued() == 0);
  // The queue holds max_queued more; the next is refused.
  int accepted = 0;
  for (int i = 0; i < 100 && poster->post("/hook", body, "application/json", [&](int) { ++done; }); ++i)
    ++accepted;
  CHECK(accepted == 4);
  CHECK(poster->queued() == 4);
  CHECK_FALSE(poster->post("/hook", body, "application/json", nullptr));
  const auto t0 = std::chrono::steady_clock::now();
  poster.reset();
  const auto waited = std::chrono::steady_clock::now() - t0;
  // Aborted, not timed out: well under the 60 s read timeout.
  CHECK(waited < std::chrono::milliseconds(o.timeout_ms / 2));
  CHECK(done.load() == 0);  // the aborted request and the queued ones are dropped
}
