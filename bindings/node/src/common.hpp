// What the addon's classes share: the per-environment data (the
// constructors and the JavaScript ParleyError class), turning a C API result
// into a thrown ParleyError, and argument conversions.
//
// The addon is built without C++ exceptions in node-addon-api
// (NAPI_DISABLE_CPP_EXCEPTIONS): a failure leaves a pending JavaScript
// exception and the function returns at once. Nothing may throw across the
// C API's callbacks, so this is also what keeps them exception-free.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "parley/parley.h"

namespace parley::addon {

// Per environment (main thread or worker): set once by the module's init.
struct AddonData {
  Napi::FunctionReference error_class;  // index.js's ParleyError(code, message)
  Napi::FunctionReference node_class;
  Napi::FunctionReference store_class;
  Napi::FunctionReference server_class;
};

AddonData& addon_data(Napi::Env env);

// Throws ParleyError(code, message) unless an exception is already pending.
void throw_error(Napi::Env env, int code, const std::string& message);
// Throws a TypeError unless an exception is already pending.
void throw_type_error(Napi::Env env, const std::string& message);

// rc is the result of a C API call on `handle` (NULL: a call whose message is
// kept per thread). On failure throws ParleyError(rc, parley_errmsg(handle))
// and returns false.
bool check(Napi::Env env, int rc, const void* handle);

// Argument conversions; on a wrong type they throw a TypeError naming `what`
// and return false. A string with a NUL character (which C would cut)
// throws ParleyError invalid_argument.
bool get_string(Napi::Env env, const Napi::Value& v, const char* what, std::string* out);
// A non-negative integer Number (at most 2^53 - 1) or a BigInt that fits 64 bits.
bool get_u64(Napi::Env env, const Napi::Value& v, const char* what, uint64_t* out);
bool get_i64(Napi::Env env, const Napi::Value& v, const char* what, int64_t* out);
bool get_double(Napi::Env env, const Napi::Value& v, const char* what, double* out);
// A Buffer, any typed array or DataView, or an ArrayBuffer: its bytes (valid
// while `v` is alive and not detached).
bool get_bytes(Napi::Env env, const Napi::Value& v, const char* what, const void** data, size_t* size);

// A Number when exact (below 2^53), else a BigInt.
Napi::Value from_u64(Napi::Env env, uint64_t value);

// Whether JavaScript can run in `env` now: false while a worker is being
// terminated or the environment torn down. Checked with the raw C API
// before work that completes asynchronously touches JavaScript, because
// node-addon-api's wrappers abort the process when a call fails then.
bool can_call_js(napi_env env);

// Native objects the library owns on our behalf (callback and post user
// data): counted so that the tests can check that every one is freed.
extern std::atomic<int64_t> g_live_objects;

}  // namespace parley::addon
