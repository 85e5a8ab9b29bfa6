// The module: parley_node.node, a Node-API addon over the C API
// (include/parley/parley.h). index.js is its only intended user; it calls
// setErrorClass() first so that failures throw its ParleyError.
#include <napi.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "common.hpp"
#include "node_wrap.hpp"
#include "server_wrap.hpp"
#include "store_wrap.hpp"

namespace parley::addon {

std::atomic<int64_t> g_live_objects{0};

AddonData& addon_data(Napi::Env env) {
  return *env.GetInstanceData<AddonData>();
}

void throw_error(Napi::Env env, int code, const std::string& message) {
  if (env.IsExceptionPending()) return;
  napi_value error = make_error(env, code, message);  // or what its constructor threw: that propagates
  if (error != nullptr) napi_throw(env, error);
}

napi_value take_exception(napi_env env) {
  bool pending = false;
  napi_value exception = nullptr;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending ||
      napi_get_and_clear_last_exception(env, &exception) != napi_ok)
    return nullptr;
  return can_call_js(env) ? exception : nullptr;
}

napi_value call_function(napi_env env, napi_value recv, napi_value fn, size_t argc, const napi_value* argv) {
  napi_value result = nullptr;
  if (napi_call_function(env, recv, fn, argc, argv, &result) == napi_ok) return result;
  if (napi_value exception = take_exception(env)) napi_throw(env, exception);
  return nullptr;
}

napi_value make_error(napi_env env, int code, const std::string& message) {
  AddonData& data = addon_data(env);
  napi_value args[2] = {nullptr, nullptr};
  if (napi_create_int32(env, code, &args[0]) != napi_ok ||
      napi_create_string_utf8(env, message.data(), message.size(), &args[1]) != napi_ok)
    return nullptr;
  napi_value error = nullptr;
  if (data.error_class.IsEmpty()) {
    const std::string text = std::string(parley_strerror(code)) + ": " + message;
    napi_value msg = nullptr;
    if (napi_create_string_utf8(env, text.data(), text.size(), &msg) != napi_ok ||
        napi_create_error(env, nullptr, msg, &error) != napi_ok)
      return nullptr;
    return error;
  }
  if (napi_new_instance(env, data.error_class.Value(), 2, args, &error) == napi_ok) return error;
  return take_exception(env);
}

void throw_type_error(Napi::Env env, const std::string& message) {
  if (env.IsExceptionPending()) return;
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

bool check(Napi::Env env, int rc, const void* handle) {
  if (rc == PARLEY_OK) return true;
  throw_error(env, rc, parley_errmsg(handle));
  return false;
}

bool get_string(Napi::Env env, const Napi::Value& v, const char* what, std::string* out) {
  if (!v.IsString()) {
    throw_type_error(env, std::string(what) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {  // C would cut the string there
    throw_error(env, PARLEY_ERR_INVALID_ARGUMENT, std::string(what) + " must not contain a NUL character");
    return false;
  }
  return true;
}

bool get_u64(Napi::Env env, const Napi::Value& v, const char* what, uint64_t* out) {
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t value = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (lossless) {
      *out = value;
      return true;
    }
  } else if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= 9007199254740991.0 && std::floor(d) == d) {
      *out = static_cast<uint64_t>(d);
      return true;
    }
  }
  throw_type_error(env,
                   std::string(what) + " must be a non-negative integer (a Number below 2^53 or a BigInt)");
  return false;
}

bool get_i64(Napi::Env env, const Napi::Value& v, const char* what, int64_t* out) {
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (std::fabs(d) <= 9007199254740991.0 && std::floor(d) == d) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  throw_type_error(env, std::string(what) + " must be an integer");
  return false;
}

bool get_double(Napi::Env env, const Napi::Value& v, const char* what, double* out) {
  if (!v.IsNumber()) {
    throw_type_error(env, std::string(what) + " must be a number");
    return false;
  }
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

bool get_bytes(Napi::Env env, const Napi::Value& v, const char* what, const void** data, size_t* size) {
  // The C API directly: node-addon-api 5's TypedArray holds an out-of-range
  // enum value until its type is known (undefined behaviour under UBSan).
  void* bytes = nullptr;
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0;
    napi_value buffer = nullptr;
    size_t offset = 0;
    if (napi_get_typedarray_info(env, v, &type, &length, &bytes, &buffer, &offset) != napi_ok) return false;
    size_t element = 1;
    switch (type) {
      case napi_int16_array:
      case napi_uint16_array: element = 2; break;
      case napi_int32_array:
      case napi_uint32_array:
      case napi_float32_array: element = 4; break;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array: element = 8; break;
      default: break;
    }
    *data = bytes;
    *size = length * element;
    return true;
  }
  if (v.IsDataView()) {
    size_t length = 0;
    if (napi_get_dataview_info(env, v, &length, &bytes, nullptr, nullptr) != napi_ok) return false;
    *data = bytes;
    *size = length;
    return true;
  }
  if (v.IsArrayBuffer()) {
    size_t length = 0;
    if (napi_get_arraybuffer_info(env, v, &bytes, &length) != napi_ok) return false;
    *data = bytes;
    *size = length;
    return true;
  }
  throw_type_error(env, std::string(what) + " must be a Buffer, a typed array or an ArrayBuffer");
  return false;
}

bool can_call_js(napi_env env) {
  napi_value probe = nullptr;
  napi_value value = nullptr;
  return napi_create_object(env, &probe) == napi_ok && napi_get_boolean(env, true, &value) == napi_ok &&
         napi_set_named_property(env, probe, "probe", value) == napi_ok;
}

Napi::Value from_u64(Napi::Env env, uint64_t value) {
  if (value <= 9007199254740991ULL) return Napi::Number::New(env, static_cast<double>(value));
  return Napi::BigInt::New(env, value);
}

namespace {

Napi::Value set_error_class(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    throw_type_error(env, "setErrorClass(ParleyError)");
    return env.Undefined();
  }
  addon_data(env).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value strerror(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t code = 0;
  if (!get_i64(env, info[0], "code", &code)) return env.Undefined();
  return Napi::String::New(env, parley_strerror(static_cast<int>(code)));
}

Napi::Value live_objects(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_live_objects.load()));
}

// testing.sleep(ms): blocks the calling thread, so that a test can terminate
// a worker while its JavaScript is inside a native call (which then returns
// into JavaScript that keeps running until V8 acts on the termination).
Napi::Value sleep_ms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t ms = 0;
  if (get_i64(env, info[0], "ms", &ms) && ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return env.Undefined();
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  Napi::Function node = NodeWrap::define(env);
  Napi::Function store = StoreWrap::define(env);
  Napi::Function server = ServerWrap::define(env);
  data->node_class = Napi::Persistent(node);
  data->store_class = Napi::Persistent(store);
  data->server_class = Napi::Persistent(server);

  exports.Set("NativeNode", node);
  exports.Set("NativeStore", store);
  exports.Set("NativeServer", server);
  exports.Set("startServer", Napi::Function::New(env, start_server, "startServer"));
  exports.Set("setErrorClass", Napi::Function::New(env, set_error_class, "setErrorClass"));
  exports.Set("strerror", Napi::Function::New(env, strerror, "strerror"));
  exports.Set("version", Napi::String::New(env, parley_version_string()));
  exports.Set("versionNumber", Napi::Number::New(env, parley_version()));
  exports.Set("headerVersionNumber", Napi::Number::New(env, PARLEY_VERSION_NUMBER));

  Napi::Object testing = Napi::Object::New(env);
  testing.Set("postFromThread", Napi::Function::New(env, post_from_thread, "postFromThread"));
  testing.Set("threadPosts", Napi::Function::New(env, thread_posts, "threadPosts"));
  testing.Set("liveObjects", Napi::Function::New(env, live_objects, "liveObjects"));
  testing.Set("sleep", Napi::Function::New(env, sleep_ms, "sleep"));
  exports.Set("testing", testing);
  return exports;
}

}  // namespace parley::addon

namespace {
Napi::Object init_module(Napi::Env env, Napi::Object exports) {
  return parley::addon::init(env, exports);
}
}  // namespace

NODE_API_MODULE(parley_node, init_module)
