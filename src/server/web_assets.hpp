// The web client (web/index.html), compiled into the binary by
// embed_file.cmake so parley-server runs from anywhere.
#pragma once

#include <string_view>

namespace parley::server {
std::string_view web_index_html();
}  // namespace parley::server
