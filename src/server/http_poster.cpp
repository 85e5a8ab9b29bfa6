#include "http_poster.hpp"

#include <httplib.h>

#include <chrono>
#include <set>

#include "log.hpp"

namespace parley::server {
namespace {

// The client for `o`: plain HTTP, or HTTPS that shows o.tls.cert and accepts
// only a server certificate that chains to o.tls.ca and names o.host. Null
// (logged) when the TLS settings cannot be applied.
std::unique_ptr<httplib::ClientImpl> make_client(const HttpPoster::Options& o) {
  if (!o.use_tls) return std::make_unique<httplib::ClientImpl>(o.host, o.port);
  auto client = std::make_unique<httplib::SSLClient>(o.host, o.port);
  Status st = client->ssl_context() == nullptr ? error(Code::kInternal, "cannot make a TLS context")
                                               : configure_tls_client(client->ssl_context(), o.tls);
  if (!st) {
    PARLEY_LOG_ERROR("HTTPS to {}:{}: {}", o.host, o.port, st.message());
    return nullptr;
  }
  client->set_ca_cert_path(o.tls.ca);
  client->enable_server_certificate_verification(true);
  return client;
}

// Why a request got no answer; for a refused certificate, OpenSSL's reason.
std::string describe(const httplib::ClientImpl& client, httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection: return "cannot connect";
    case httplib::Error::ConnectionTimeout: return "connect timed out";
    case httplib::Error::Read: return "no answer (connection closed or read timed out)";
    case httplib::Error::Write: return "cannot send the request";
    case httplib::Error::SSLConnection: return "TLS handshake failed";
    case httplib::Error::SSLLoadingCerts: return "cannot load the CA certificates";
    case httplib::Error::SSLServerVerification: {
      const long v = static_cast<const httplib::SSLClient&>(client).get_openssl_verify_result();
      return v == X509_V_OK
                 ? "server certificate refused (it does not name the host)"
                 : fmt::format("server certificate refused ({})", X509_verify_cert_error_string(v));
    }
    default: return httplib::to_string(e);
  }
}

}  // namespace

HttpPoster::HttpPoster(Options options) : options_(std::move(options)), worker_([this] { run(); }) {}

HttpPoster::~HttpPoster() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  jobs_.clear();
  cv_.notify_all();
  // Aborts the request in flight: stop() is thread-safe in cpp-httplib (it
  // shuts the socket down, so that the worker's Post returns at once). Again
  // until the worker has let go of its client: a request that was just
  // starting may open its socket after the first stop().
  for (int i = 0; client_ != nullptr && i < 100000; ++i) {
    client_->stop();
    cv_.wait_for(lock, std::chrono::milliseconds(10), [this] { return client_ == nullptr; });
  }
  lock.unlock();
  worker_.join();
}

bool HttpPoster::post(std::string path, std::shared_ptr<const std::string> body, std::string content_type,
                      Done done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || jobs_.size() >= options_.max_queued) return false;
    jobs_.push_back(Job{std::move(path), std::move(body), std::move(content_type), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

size_t HttpPoster::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

void HttpPoster::run() {
  std::unique_ptr<httplib::ClientImpl> client = make_client(options_);
  if (client) {
    client->set_keep_alive(true);
    // A request leaves as two writes (headers, then body): with Nagle the
    // body waits for the peer's delayed ACK of the headers (40 ms on Linux)
    // on every call after the first of a connection (decision 42, for the
    // peer links and the webhook).
    client->set_tcp_nodelay(true);
    if (options_.on_socket) client->set_socket_options(options_.on_socket);
    const time_t sec = static_cast<time_t>(options_.timeout_ms / 1000);
    const time_t usec = static_cast<time_t>((options_.timeout_ms % 1000) * 1000);
    client->set_connection_timeout(sec, usec);
    client->set_read_timeout(sec, usec);
    client->set_write_timeout(sec, usec);
    std::lock_guard<std::mutex> lock(mutex_);
    client_ = client.get();
  }
  httplib::Headers headers;
  if (!options_.authorization.empty()) headers.emplace("Authorization", options_.authorization);
  std::set<httplib::Error> reported;  // reasons logged since the last answer
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) {
        client_ = nullptr;
        cv_.notify_all();
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (!client) {
      if (job.done) job.done(0);
      continue;
    }
    httplib::Result res =
        client->Post(job.path.c_str(), headers, job.body->data(), job.body->size(), job.content_type.c_str());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {  // aborted by the destructor: dropped like the queued ones
        client_ = nullptr;
        cv_.notify_all();
        return;
      }
    }
    const char* scheme = options_.use_tls ? "https" : "http";
    if (!res && reported.insert(res.error()).second) {
      PARLEY_LOG_WARN("POST {}://{}:{}{} failed: {}", scheme, options_.host, options_.port, job.path,
                      describe(*client, res.error()));
    } else if (res && !reported.empty()) {
      PARLEY_LOG_INFO("{}://{}:{} answers again", scheme, options_.host, options_.port);
      reported.clear();
    }
    if (job.done) job.done(res ? res->status : 0);
  }
}

}  // namespace parley::server
