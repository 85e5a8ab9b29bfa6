// StoreWrap: a parley_store (memory or SQLite) and the admin helpers
// (create a group, join, leave, history). index.js's Store is the public
// face. Like a node, a store is used from the JavaScript thread only; its
// calls are synchronous (SQLite on the calling thread, as the C API does).
#pragma once

#include <napi.h>

#include "common.hpp"

namespace parley::addon {

class StoreWrap : public Napi::ObjectWrap<StoreWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  // new StoreWrap()              : a memory store
  // new StoreWrap(path, flags)   : a SQLite store
  explicit StoreWrap(const Napi::CallbackInfo& info);
  ~StoreWrap() override;
  StoreWrap(const StoreWrap&) = delete;
  StoreWrap& operator=(const StoreWrap&) = delete;

  // The StoreWrap inside `v`, or null after throwing a TypeError.
  static StoreWrap* unwrap(Napi::Env env, const Napi::Value& v);
  // Null once closed.
  parley_store* handle() const { return store_; }

 private:
  bool open(Napi::Env env);
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value closed(const Napi::CallbackInfo& info);
  Napi::Value create_group(const Napi::CallbackInfo& info);
  Napi::Value join(const Napi::CallbackInfo& info);
  Napi::Value leave(const Napi::CallbackInfo& info);
  Napi::Value history(const Napi::CallbackInfo& info);
  Napi::Value entries(const Napi::CallbackInfo& info);
  Napi::Value read_states(const Napi::CallbackInfo& info);
  Napi::Value mark_read(const Napi::CallbackInfo& info);
  Napi::Value set_notify_level(const Napi::CallbackInfo& info);
  Napi::Value notify_level(const Napi::CallbackInfo& info);

  parley_store* store_ = nullptr;
};

}  // namespace parley::addon
