// Invariant checks shared by the fuzz targets. A broken invariant prints what
// broke and aborts: libFuzzer reports the input as a crash, and the corpus
// replay test fails. Thread rules: none (the targets are single-threaded).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>

#include "parley/status.hpp"

namespace parley::fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// An error as every decoder must report it: one of the codes `allowed` and a
// message saying what is wrong.
inline void check_error(const Status& st, std::initializer_list<Code> allowed, const char* where) {
  bool known = false;
  for (Code c : allowed) known = known || st.code() == c;
  if (!known) fail(std::string(where) + ": unexpected code " + st.to_string());
  if (st.message().empty()) fail(std::string(where) + ": error without a message");
}

// Runs fn(), failing if an exception escapes it: every decoder promises
// never to throw.
template <typename F>
auto no_throw(const char* where, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    fail(std::string(where) + " threw: " + e.what());
  } catch (...) {
    fail(std::string(where) + " threw a non-std exception");
  }
}

}  // namespace parley::fuzz
