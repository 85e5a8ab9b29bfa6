// For test VFS shims over SQLite's default VFS: io methods that pass every
// call on to the real file, for a shim to override the few it cares about.
//
//   sqlite3_io_methods io = parley::testing::VfsForward<real_file>::methods();
//   io.xSync = my_sync;  // the rest still forward
//
// `Real` maps the shim's sqlite3_file to the default VFS's file it wraps.
#pragma once

#include <sqlite3.h>

namespace parley::testing {

template <sqlite3_file* (*Real)(sqlite3_file*)>
struct VfsForward {
  template <typename T, T Method>
  struct Call;
  template <typename R, typename... Args, R (*sqlite3_io_methods::*Method)(sqlite3_file*, Args...)>
  struct Call<R (*sqlite3_io_methods::*)(sqlite3_file*, Args...), Method> {
    static R call(sqlite3_file* f, Args... args) { return (Real(f)->pMethods->*Method)(Real(f), args...); }
  };

  // Version 3 io methods, every one forwarding.
  static sqlite3_io_methods methods() {
    sqlite3_io_methods io{};
    io.iVersion = 3;
#define PARLEY_VFS_FORWARD(name) \
  io.name = Call<decltype(&sqlite3_io_methods::name), &sqlite3_io_methods::name>::call
    PARLEY_VFS_FORWARD(xClose);
    PARLEY_VFS_FORWARD(xRead);
    PARLEY_VFS_FORWARD(xWrite);
    PARLEY_VFS_FORWARD(xTruncate);
    PARLEY_VFS_FORWARD(xSync);
    PARLEY_VFS_FORWARD(xFileSize);
    PARLEY_VFS_FORWARD(xLock);
    PARLEY_VFS_FORWARD(xUnlock);
    PARLEY_VFS_FORWARD(xCheckReservedLock);
    PARLEY_VFS_FORWARD(xFileControl);
    PARLEY_VFS_FORWARD(xSectorSize);
    PARLEY_VFS_FORWARD(xDeviceCharacteristics);
    PARLEY_VFS_FORWARD(xShmMap);
    PARLEY_VFS_FORWARD(xShmLock);
    PARLEY_VFS_FORWARD(xShmBarrier);
    PARLEY_VFS_FORWARD(xShmUnmap);
    PARLEY_VFS_FORWARD(xFetch);
    PARLEY_VFS_FORWARD(xUnfetch);
#undef PARLEY_VFS_FORWARD
    return io;
  }
};

}  // namespace parley::testing
