// Fuzz target: the msgpack client codec (make_msgpack_codec), the C API's
// default. One input = one binary frame. See client_codec_fuzz.hpp for the
// properties checked.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "client_codec_fuzz.hpp"
#include "parley/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<parley::ClientCodec> codec = parley::make_msgpack_codec();
  parley::fuzz::fuzz_client_codec(*codec, data, size);
  return 0;
}
