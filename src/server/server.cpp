// parley::server::Server: the facade over ServerImpl<Ws> (server_impl.hpp),
// plain or TLS.
#include "parley/server/server.hpp"

#include "server_impl.hpp"
#include "sharded_server.hpp"

namespace parley::server {

Server::Server(Config config) {
  if (config.threads > 1) {
    if (config.tls()) {
      impl_ = std::make_unique<ShardedServer<TlsWsConfig>>(config);
    } else {
      impl_ = std::make_unique<ShardedServer<PlainWsConfig>>(config);
    }
  } else if (config.tls()) {
    impl_ = std::make_unique<ServerImpl<TlsWsConfig>>(std::move(config));
  } else {
    impl_ = std::make_unique<ServerImpl<PlainWsConfig>>(std::move(config));
  }
}
Server::~Server() = default;
int Server::start() {
  return impl_->start();
}
int Server::run() {
  return impl_->run();
}
void Server::stop() {
  impl_->stop();
}
uint16_t Server::port() const {
  return impl_->port();
}

}  // namespace parley::server
