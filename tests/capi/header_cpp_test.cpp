// parley.h compiles as C++ (built with -Wall -Wextra -Wpedantic -Werror),
// next to the C++ headers: its version macros must be token for token those
// of version.hpp (a redefinition would not compile) and its codes those of
// status.hpp. A captureless lambda serves as a callback.
#include "parley/parley.h"
#include "parley/status.hpp"
#include "parley/version.hpp"

#include <cstdio>

static_assert(PARLEY_ERR_CLOSED == static_cast<int>(parley::Code::kClosed), "codes are parley::Code");
static_assert(PARLEY_VERSION_NUMBER >= 100, "version macros are usable in constant expressions");

int main() {
  parley_store* store = nullptr;
  parley_node* node = nullptr;
  if (parley_store_open_memory(&store) != PARLEY_OK) return 1;
  if (parley_node_create(nullptr, store, &node) != PARLEY_OK) return 1;
  int frames = 0;
  const int rc = parley_node_set_deliver(
      node,
      [](void* user_data, uint64_t, const parley_bytes*, size_t count) {
        *static_cast<int*>(user_data) += static_cast<int>(count);
      },
      &frames, nullptr);
  if (rc != PARLEY_OK || parley_node_destroy(node) != PARLEY_OK || parley_store_close(store) != PARLEY_OK)
    return 1;
  if (parley_version() != PARLEY_VERSION_NUMBER) return 1;
  std::printf("parley.h compiles and links as C++ (library %s)\n", parley_version_string());
  return 0;
}
