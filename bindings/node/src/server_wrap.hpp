// ServerWrap: parley-server running in-process on its own thread
// (parley_server_*). index.js's Server is the public face.
//
// Starting and stopping block (opening stores and listening; a clean
// shutdown takes up to a few seconds), so both run on a thread of the libuv
// pool (Napi::AsyncWorker) and settle a Promise on the JavaScript thread.
// The server calls no JavaScript: it has no callbacks. A server still
// running when its environment is torn down (process exit, a worker ending)
// is stopped by an environment cleanup hook, so its thread never outlives
// the addon.
#pragma once

#include <napi.h>

#include "common.hpp"

namespace parley::addon {

class ServerWrap : public Napi::ObjectWrap<ServerWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  // Made only by start_server: new ServerWrap(External<parley_server>, port).
  explicit ServerWrap(const Napi::CallbackInfo& info);
  ~ServerWrap() override;
  ServerWrap(const ServerWrap&) = delete;
  ServerWrap& operator=(const ServerWrap&) = delete;

 private:
  static void cleanup(void* self);
  void forget();  // removes the cleanup hook; the handle is someone else's now

  Napi::Value port(const Napi::CallbackInfo& info);
  Napi::Value closed(const Napi::CallbackInfo& info);
  // close() -> Promise: stops the server and releases it.
  Napi::Value close(const Napi::CallbackInfo& info);

  parley_server* server_ = nullptr;
  napi_env env_ = nullptr;
  uint16_t port_ = 0;
};

// startServer([[name, value | null], ...]) -> Promise<ServerWrap>: the
// options are parley-server's command-line flags without the dashes.
Napi::Value start_server(const Napi::CallbackInfo& info);

}  // namespace parley::addon
