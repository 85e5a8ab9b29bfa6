# Writes OUTPUT, a C++ file defining parley::server::web_index_html() with the
# bytes of INPUT. Run at build time: cmake -DINPUT=... -DOUTPUT=... -P embed_file.cmake
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT}; do not edit.\n#include \"web_assets.hpp\"\n"
  "namespace parley::server {\nnamespace {\nconst char kIndex[] = {${bytes} '\\0'};\n}\n"
  "std::string_view web_index_html() { return std::string_view(kIndex, ${size}); }\n}\n")
