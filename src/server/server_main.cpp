// parley-server's command line: parse the flags, --hash-password, or serve.
#include <fmt/format.h>

#include <iostream>
#include <string>

#include "auth.hpp"
#include "parley/server/config.hpp"
#include "parley/server/server.hpp"

namespace parley::server {

int server_main(int argc, char** argv) {
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

}  // namespace parley::server
