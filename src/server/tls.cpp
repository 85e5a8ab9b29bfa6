#include "tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "log.hpp"

namespace parley::server {
namespace {

// TLS 1.2 suites: ECDHE key exchange (forward secrecy) and AEAD ciphers only,
// the intermediate profile of Mozilla's server-side TLS guidelines without
// DHE. TLS 1.3 suites are OpenSSL's defaults, which are all of this kind.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// OpenSSL's reason for the oldest error queued on this thread (the root
// cause, e.g. "PEM routines: no start line"); empties the queue.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_error();
  std::string out = "unknown OpenSSL error";
  if (e != 0) {
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    out = reason != nullptr ? reason : fmt::format("error {:#x}", e);
    if (lib != nullptr) out = fmt::format("{}: {}", lib, out);
  }
  ERR_clear_error();
  return out;
}

Status file_error(const std::string& flag, const std::string& path, const std::string& what) {
  return error(Code::kInvalidArgument, fmt::format("{} {}: {}", flag, path, what));
}

// OpenSSL says "system lib" for a missing file; say which file and why.
Status readable(const std::string& flag, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return file_error(flag, path, std::strerror(errno));
  std::fclose(f);
  return Status::ok();
}

Status apply_common_settings(SSL_CTX* ctx) {
  ERR_clear_error();
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return error(Code::kInternal, "cannot apply the TLS settings: " + openssl_reason());
  }
  return Status::ok();
}

Status load_identity(SSL_CTX* ctx, const TlsFiles& files) {
  const std::string cert_flag = files.flags + "cert";
  const std::string key_flag = files.flags + "key";
  if (Status st = readable(cert_flag, files.cert); !st) return st;
  if (Status st = readable(key_flag, files.key); !st) return st;
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
    return file_error(cert_flag, files.cert, "not a PEM certificate (" + openssl_reason() + ")");
  }
  // OpenSSL 3 checks that the key matches the certificate while loading it.
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    const int reason = ERR_GET_REASON(ERR_peek_error());
    const bool mismatch = ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_X509 &&
                          (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH);
    const std::string what =
        mismatch ? fmt::format("not the key of {} {}", cert_flag, files.cert) : "not a PEM private key";
    return file_error(key_flag, files.key, what + " (" + openssl_reason() + ")");
  }
  return Status::ok();
}

// OpenSSL's verify callback on a server that checks client certificates:
// logs a refused certificate (at most one line per 10 s, the port may be
// knocked on) and keeps OpenSSL's verdict.
int log_refused_client(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 1) return 1;
  static std::atomic<int64_t> last_ms{-10000};
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  int64_t last = last_ms.load();
  if (now_ms - last >= 10000 && last_ms.compare_exchange_strong(last, now_ms)) {
    char subject[256] = "no subject";
    if (X509* cert = X509_STORE_CTX_get_current_cert(store); cert != nullptr) {
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    }
    PARLEY_LOG_WARN("refused a client certificate ({}): {}", subject,
                    X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
  }
  return 0;
}

Status load_client_ca(SSL_CTX* ctx, const TlsFiles& files) {
  const std::string flag = files.flags + "ca";
  if (Status st = readable(flag, files.ca); !st) return st;
  if (SSL_CTX_load_verify_locations(ctx, files.ca.c_str(), nullptr) != 1) {
    return file_error(flag, files.ca, "no PEM CA certificate (" + openssl_reason() + ")");
  }
  // The CA names sent in the certificate request; owned by ctx.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str()); names != nullptr) {
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, log_refused_client);
  // Session resumption on a context that verifies clients needs an id context.
  static const unsigned char kSessionContext[] = "parley-peer";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  ERR_clear_error();
  return Status::ok();
}

}  // namespace

Status configure_tls_server(SSL_CTX* ctx, const TlsFiles& files) {
  if (Status st = apply_common_settings(ctx); !st) return st;
  if (Status st = load_identity(ctx, files); !st) return st;
  return files.ca.empty() ? Status::ok() : load_client_ca(ctx, files);
}

Status configure_tls_client(SSL_CTX* ctx, const TlsFiles& files) {
  if (Status st = apply_common_settings(ctx); !st) return st;
  return files.cert.empty() ? Status::ok() : load_identity(ctx, files);
}

Status check_tls_files(const TlsFiles& files) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return error(Code::kInternal, "cannot make a TLS context: " + openssl_reason());
  Status st = configure_tls_server(ctx, files);
  SSL_CTX_free(ctx);
  return st;
}

}  // namespace parley::server
