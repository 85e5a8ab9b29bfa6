// Fuzz target: the JSON client codec (make_json_codec), the one parley-server
// speaks on /v1/ws. One input = one text frame. See client_codec_fuzz.hpp for
// the properties checked.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "client_codec_fuzz.hpp"
#include "parley/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<parley::ClientCodec> codec = parley::make_json_codec();
  parley::fuzz::fuzz_client_codec(*codec, data, size, &parley::json_max_frame_bytes);
  return 0;
}
