// ServerWrap: parley-server running in-process on its own thread
// (parley_server_*). index.js's Server is the public face.
//
// Starting and stopping block (opening stores and listening; a clean
// shutdown takes up to a few seconds), so both run on a thread of the libuv
// pool (Napi::AsyncWorker) and settle a Promise on the JavaScript thread.
// The server calls no JavaScript: it has no callbacks. A running server is
// never garbage-collected (the ServerWrap holds a strong reference to its
// own object until close()), and one still running when its environment is
// torn down (process exit, a worker ending) is stopped by an environment
// cleanup hook, which joins its threads before the environment's finalizers
// run: the server's threads never outlive the addon's code.
#pragma once

#include <napi.h>

#include "common.hpp"

namespace parley::addon {

class ServerWrap : public Napi::ObjectWrap<ServerWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  // Made only by start_server: new ServerWrap(External<parley_server*>, port),
  // the External pointing at the starter's slot, which the constructor
  // empties once it owns the handle (so exactly one of them stops it).
  explicit ServerWrap(const Napi::CallbackInfo& info);
  ~ServerWrap() override;
  ServerWrap(const ServerWrap&) = delete;
  ServerWrap& operator=(const ServerWrap&) = delete;

 private:
  static void cleanup(void* self);
  // Gives the handle up (null if none): removes the cleanup hook and returns
  // the handle, which is the caller's now.
  parley_server* forget();

  Napi::Value port(const Napi::CallbackInfo& info);
  Napi::Value closed(const Napi::CallbackInfo& info);
  // close() -> Promise: stops the server and releases it.
  Napi::Value close(const Napi::CallbackInfo& info);

  parley_server* server_ = nullptr;  // null once closed or stopped by the cleanup hook
  napi_env env_ = nullptr;
  uint16_t port_ = 0;
  bool pinned_ = false;  // the strong reference to our object is held (running, not closed)
};

// startServer([[name, value | null], ...]) -> Promise<ServerWrap>: the
// options are parley-server's command-line flags without the dashes.
Napi::Value start_server(const Napi::CallbackInfo& info);

}  // namespace parley::addon
