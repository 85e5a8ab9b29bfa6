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
  Napi::Value create_group_with(const Napi::CallbackInfo& info);
  Napi::Value group_info(const Napi::CallbackInfo& info);
  Napi::Value set_group_settings(const Napi::CallbackInfo& info);
  Napi::Value invite(const Napi::CallbackInfo& info);
  Napi::Value ask_to_join(const Napi::CallbackInfo& info);
  Napi::Value public_groups(const Napi::CallbackInfo& info);
  Napi::Value member_call(const Napi::CallbackInfo& info, int (*fn)(parley_store*, const char*, const char*));
  bool settings_args(const Napi::CallbackInfo& info, size_t first, parley_group_info* out, std::string* title,
                     std::string* topic);

  parley_store* store_ = nullptr;
};

}  // namespace parley::addon
