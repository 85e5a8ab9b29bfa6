// parley-server: the Parley engine as a stand-alone chat server. The server
// is a library part (src/server, include/parley/server); see
// docs/protocol.md for what clients speak and `parley-server --help` for the
// options.
#include "parley/server/server.hpp"

int main(int argc, char** argv) {
  return parley::server::server_main(argc, argv);
}
