#include "handle.hpp"

#include <unordered_map>

namespace parley::capi {
namespace {

// The C header restates what the C++ headers and CMake define; these keep
// them equal.
static_assert(PARLEY_VERSION_MAJOR == PARLEY_BUILD_VERSION_MAJOR &&
                  PARLEY_VERSION_MINOR == PARLEY_BUILD_VERSION_MINOR &&
                  PARLEY_VERSION_PATCH == PARLEY_BUILD_VERSION_PATCH,
              "parley.h's PARLEY_VERSION_* must match project(VERSION) in CMakeLists.txt");
constexpr bool same(int c, Code code) {
  return c == static_cast<int>(code);
}
static_assert(same(PARLEY_OK, Code::kOk) && same(PARLEY_ERR_INVALID_ARGUMENT, Code::kInvalidArgument) &&
                  same(PARLEY_ERR_NOT_FOUND, Code::kNotFound) &&
                  same(PARLEY_ERR_PERMISSION_DENIED, Code::kPermissionDenied) &&
                  same(PARLEY_ERR_ALREADY_EXISTS, Code::kAlreadyExists) &&
                  same(PARLEY_ERR_TOO_LARGE, Code::kTooLarge) &&
                  same(PARLEY_ERR_UNAVAILABLE, Code::kUnavailable) &&
                  same(PARLEY_ERR_TIMEOUT, Code::kTimeout) &&
                  same(PARLEY_ERR_EPOCH_MISMATCH, Code::kEpochMismatch) &&
                  same(PARLEY_ERR_BACKPRESSURE, Code::kBackpressure) &&
                  same(PARLEY_ERR_CORRUPTION, Code::kCorruption) &&
                  same(PARLEY_ERR_INTERNAL, Code::kInternal) &&
                  same(PARLEY_ERR_UNAUTHENTICATED, Code::kUnauthenticated) &&
                  same(PARLEY_ERR_CLOSED, Code::kClosed) && same(PARLEY_ERR_HISTORY_TRIMMED, Code::kTrimmed) &&
                  same(PARLEY_ERR_LIMIT_EXCEEDED, Code::kLimitExceeded) && same(PARLEY_ERR_DELETED, Code::kDeleted),
              "parley.h's error codes must equal parley::Code");

// Live handles by address. Allocated once and never freed: a call made while
// the process exits (from a thread still running) must find it intact.
struct Table {
  std::mutex mutex;
  std::unordered_map<const void*, Handle*> live;
};

Table& table() {
  static Table* t = new Table;
  return *t;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNodeOptions: return "parley_node_options";
    case Kind::kNode: return "parley_node";
    case Kind::kStore: return "parley_store";
    case Kind::kServerOptions: return "parley_server_options";
    case Kind::kServer: return "parley_server";
  }
  return "handle";
}

}  // namespace

std::mutex& table_mutex() {
  return table().mutex;
}

Status lookup_locked(const void* p, Kind kind) {
  if (p == nullptr) return error(Code::kInvalidArgument, std::string("the ") + kind_name(kind) + " is NULL");
  auto it = table().live.find(p);
  if (it == table().live.end()) {
    return error(Code::kClosed,
                 std::string("the ") + kind_name(kind) + " was released (or never created by this library)");
  }
  if (it->second->kind != kind) {
    return error(Code::kInvalidArgument, std::string("a ") + kind_name(it->second->kind) +
                                             " was passed where a " + kind_name(kind) + " was expected");
  }
  return Status::ok();
}

Handle* find_locked(const void* p) {
  auto it = table().live.find(p);
  return it == table().live.end() ? nullptr : it->second;
}

void register_address(const void* address, Handle* handle) {
  std::lock_guard<std::mutex> lock(table().mutex);
  table().live.emplace(address, handle);
}

void unregister_address(const void* address) {
  std::lock_guard<std::mutex> lock(table().mutex);
  table().live.erase(address);
}

std::string& thread_errmsg() {
  thread_local std::string message;
  return message;
}

int finish(const char* fn, Handle* handle, const Status& st) {
  if (st.is_ok()) {
    if (handle != nullptr) handle->errmsg.clear();
    return PARLEY_OK;
  }
  std::string& out = handle != nullptr ? handle->errmsg : thread_errmsg();
  out = fn;
  out += ": ";
  out += st.to_string();
  return static_cast<int>(st.code());
}

Status current_exception_status() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return error(Code::kInternal, "out of memory");
  } catch (const std::exception& e) {
    return error(Code::kInternal, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return error(Code::kInternal, "unexpected exception");
  }
}

Status null_argument(const char* name) {
  return error(Code::kInvalidArgument, std::string("argument '") + name + "' is NULL");
}

Status check_id(const char* id, const char* what, const Limits& limits) {
  if (id == nullptr) return null_argument(what);
  return validate_id(id, what, limits);
}

}  // namespace parley::capi

// ---- functions on every handle ----------------------------------------------

extern "C" {

PARLEY_EXPORT int parley_version(void) {
  return PARLEY_VERSION_NUMBER;
}

PARLEY_EXPORT const char* parley_version_string(void) {
  return PARLEY_VERSION_STRING;
}

PARLEY_EXPORT const char* parley_strerror(int code) {
  return parley::code_name(static_cast<parley::Code>(code));
}

PARLEY_EXPORT const char* parley_errmsg(const void* handle) {
  if (handle != nullptr) {
    std::lock_guard<std::mutex> lock(parley::capi::table_mutex());
    if (const parley::capi::Handle* h = parley::capi::find_locked(handle)) return h->errmsg.c_str();
  }
  return parley::capi::thread_errmsg().c_str();
}

}  // extern "C"
