// TLS settings of parley-server, on OpenSSL contexts that the caller owns:
// websocketpp's asio::ssl::context (HTTPS + WSS on --listen), cpp-httplib's
// SSLServer (the peer listener) and SSLClient (calls to peers).
//
// Every context gets the same modern settings: TLS 1.2 or newer only, no
// TLS compression, no renegotiation, forward-secret AEAD ciphers for TLS 1.2
// (OpenSSL's defaults for TLS 1.3), the server's cipher preference, and
// idle connections' buffers released. Certificates and keys are PEM files.
//
// Errors come back as a Status naming the option, the file and OpenSSL's
// reason; the OpenSSL error queue of the calling thread is left empty. The
// functions touch only the context they are given: call them from one
// thread per context, before the context is used.
#pragma once

#include <openssl/types.h>

#include <string>

#include "parley/status.hpp"

namespace parley::server {

// A certificate chain, its private key and, where certificates are checked,
// the CA bundle they must chain to. Errors name the flags that set them:
// `flags` + "cert", "key" or "ca" (flags is "--tls-" or "--peer-tls-").
struct TlsFiles {
  std::string flags;
  std::string cert;
  std::string key;
  std::string ca;  // empty: nothing is verified
};

// Server side: loads files.cert and files.key; with files.ca, asks every
// client for a certificate and refuses the handshake unless it chains to ca
// (a refused certificate is logged, at most once per 10 s).
Status configure_tls_server(SSL_CTX* ctx, const TlsFiles& files);

// Client side: loads files.cert and files.key as the client certificate
// (empty: none). Verifying the server is left to the caller (cpp-httplib does
// it, against files.ca, with the host name).
Status configure_tls_client(SSL_CTX* ctx, const TlsFiles& files);

// Checks that configure_tls_server would accept `files`, on a throwaway
// context: lets the server fail at startup instead of at the first peer call.
Status check_tls_files(const TlsFiles& files);

}  // namespace parley::server
