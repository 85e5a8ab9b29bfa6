// Internal helpers shared by the core's .cpp files.
#pragma once

#include "parley/status.hpp"

// Returns the Status of `expr` from the enclosing function if it is an error.
#define PARLEY_TRY(expr)                              \
  do {                                                \
    if (::parley::Status s_ = (expr); !s_) return s_; \
  } while (0)
