// parley-server: the Parley engine as a stand-alone chat server. See
// docs/protocol.md for what clients speak and `parley-server --help` for
// the options.
#include <fmt/format.h>

#include <iostream>
#include <string>

#include "auth.hpp"
#include "config.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  using namespace parley::server;
  Config config;
  int exit_code = 0;
  if (!parse_config(argc, argv, &config, &exit_code)) return exit_code;
  if (!config.hash_password_user.empty()) {
    std::string password;
    std::getline(std::cin, password);
    fmt::print("{}\n", hash_password_line(config.hash_password_user, password));
    return 0;
  }
  Server server(std::move(config));
  if (int rc = server.start(); rc != 0) return rc;
  return server.run();
}
