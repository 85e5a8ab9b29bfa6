// What every C API handle shares: a kind, its last error message, a table of
// live handles, and the wrapper that turns a C++ body into an extern "C" call
// (catches everything, records the message, returns the code).
//
// The table is why a call on a released handle gives PARLEY_ERR_CLOSED
// instead of a use-after-free: a handle is looked up by address before it is
// touched. The table is guarded by a mutex, so the lookup is also what makes
// parley_node_post safe against a concurrent destroy.
#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "parley/message.hpp"
#include "parley/parley.h"
#include "parley/status.hpp"

namespace parley::capi {

enum class Kind : int { kNodeOptions, kNode, kStore, kServerOptions, kServer };

struct Handle {
  explicit Handle(Kind k) : kind(k) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  virtual ~Handle() = default;

  const Kind kind;
  std::string errmsg;  // of the most recent call; "" after a success
};

// Adds a handle to the table of live handles (at create) / removes it. The
// table is keyed by the address the C caller holds (H*, which need not be
// the address of its Handle base).
void register_address(const void* address, Handle* handle);
void unregister_address(const void* address);
template <typename H>
void register_handle(H* h) {
  register_address(h, h);
}

// Runs fn() with the table locked if `p` is a live handle of kind `kind`;
// otherwise returns why not (invalid_argument for NULL or another kind,
// closed for an address that is no live handle). While fn runs no handle
// can be released.
template <typename F>
Status with_live(const void* p, Kind kind, F&& fn);

// Registers a new handle and hands it to the caller.
template <typename H>
Status publish(std::unique_ptr<H> h, H** out) {
  register_handle(h.get());
  *out = h.release();
  return Status::ok();
}

// The per-thread message of calls that failed without a live handle.
std::string& thread_errmsg();

// Records `st` as the outcome of C function `fn` (on `handle` if it is live,
// else per thread) and returns its code.
int finish(const char* fn, Handle* handle, const Status& st);

// The Status of the exception being handled. Call only from a catch block.
Status current_exception_status();

Status null_argument(const char* name);
// An id argument: not NULL, and valid by parley::validate_id.
Status check_id(const char* id, const char* what, const Limits& limits);

// Runs body(live) -> Status, catching everything, and records the outcome
// on `live` (the handle body found live, or null: per thread).
template <typename F>
int guarded(const char* fn, F&& body) noexcept {
  Handle* live = nullptr;
  Status st;
  try {
    st = body(live);
  } catch (...) {
    st = current_exception_status();
  }
  return finish(fn, live, st);
}

// Wraps an extern "C" body operating on a live handle of type H (which has
// `static constexpr Kind kKind`): checks the handle, runs body(H&) -> Status,
// records the outcome. Nothing escapes.
template <typename H, typename F>
int call(const char* fn, H* h, F&& body) noexcept {
  return guarded(fn, [&](Handle*& live) -> Status {
    if (Status st = with_live(h, H::kKind, [] {}); !st) return st;
    live = h;
    return body(*h);
  });
}

// The same for functions without a handle (creates): body() -> Status.
template <typename F>
int call_free(const char* fn, F&& body) noexcept {
  return guarded(fn, [&](Handle*&) -> Status { return body(); });
}

// Makes a default-constructed handle of type H.
template <typename H>
int create(const char* fn, H** out) noexcept {
  return call_free(fn, [&]() -> Status {
    if (out == nullptr) return null_argument("out");
    return publish(std::make_unique<H>(), out);
  });
}

// Releases a handle: NULL is a no-op; a released handle gives closed. `check`
// (H&) -> Status may refuse (then nothing happens); afterwards the handle is
// unregistered and deleted.
template <typename H, typename F>
int release(const char* fn, H* h, F&& check) noexcept {
  if (h == nullptr) return PARLEY_OK;
  return guarded(fn, [&](Handle*& live) -> Status {
    if (Status st = with_live(h, H::kKind, [] {}); !st) return st;
    live = h;
    if (Status st = check(*h); !st) return st;
    live = nullptr;
    unregister_address(h);
    delete h;
    return Status::ok();
  });
}
template <typename H>
int release(const char* fn, H* h) noexcept {
  return release(fn, h, [](H&) { return Status::ok(); });
}

// A C callback with its user data; frees the user data when replaced or
// destroyed (exactly once).
template <typename Fn>
struct Callback {
  Callback() = default;
  Callback(Fn f, void* ud, parley_free_fn free_ud) : fn(f), user_data(ud), free_fn(free_ud) {}
  Callback(Callback&& other) noexcept { take(other); }
  Callback& operator=(Callback&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;
  ~Callback() { reset(); }

  explicit operator bool() const { return fn != nullptr; }
  void reset() {
    if (free_fn != nullptr) free_fn(user_data);
    fn = nullptr;
    user_data = nullptr;
    free_fn = nullptr;
  }

  Fn fn = nullptr;
  void* user_data = nullptr;
  parley_free_fn free_fn = nullptr;

 private:
  void take(Callback& other) {
    fn = std::exchange(other.fn, nullptr);
    user_data = std::exchange(other.user_data, nullptr);
    free_fn = std::exchange(other.free_fn, nullptr);
  }
};

// ---- implementation of the template ----

std::mutex& table_mutex();
// Under table_mutex(): the status of `p` as a handle of `kind`.
Status lookup_locked(const void* p, Kind kind);
// Under table_mutex(): the live handle at `p` of any kind, or null.
Handle* find_locked(const void* p);

template <typename F>
Status with_live(const void* p, Kind kind, F&& fn) {
  std::lock_guard<std::mutex> lock(table_mutex());
  Status st = lookup_locked(p, kind);
  if (st) fn();
  return st;
}

}  // namespace parley::capi
