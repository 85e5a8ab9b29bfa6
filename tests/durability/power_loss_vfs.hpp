// PowerLossVfs: a SQLite VFS for tests that forgets what was not synced.
//
// It wraps the default VFS and passes every call but xSync on, so the files on
// disk are always what SQLite wrote. Beside them it models a disk with a
// volatile write cache, for every main database, WAL and rollback journal it
// opens: the file's durable image (what the last xSync made durable) and the
// writes and truncates made since, in order. xSync moves those into the
// durable image and calls no fsync: the model is the disk.
//
// A test cuts the power (power_off, or power_off_after a number of calls),
// closes every connection, and calls reboot(). Every write, truncate, sync or
// delete after the cut fails with SQLITE_IOERR and changes nothing, as on a
// machine that is off. reboot() rewrites each file on disk as its durable image
// plus a random subset of its unsynced operations, applied in order; a write
// that is neither kept nor dropped is torn (each of its 512-byte-aligned pieces
// kept or not). Bytes outside a write never change, as the default VFS
// promises SQLite (SQLITE_IOCAP_POWERSAFE_OVERWRITE).
//
// Files and directories: a file created and never synced may vanish at a
// power loss (reboot removes it or keeps it, at random). Its first xSync makes
// its directory entry durable: the default VFS fsyncs the directory at the
// first sync of a new journal or WAL, which also covers the database file
// beside it. A delete is durable at once; SQLite deletes only the journal of
// the switch to WAL (the WAL's first sync fsyncs the directory right after)
// and the WAL at a clean close (after a checkpoint synced the database). The
// -shm file is not modelled: SQLite rebuilds it from the WAL, and reboot
// deletes it or leaves it stale, at random. After reboot the files on disk
// are the durable images, and the power is on again.
//
// Thread rules: one thread. install() registers the VFS once per process,
// under kName, not as the default; open a store through it with
// SqliteOptions::vfs = PowerLossVfs::kName.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "parley/clock.hpp"

namespace parley::durability {

// What the VFS did, summed over its life.
struct PowerLossStats {
  uint64_t syncs = 0;         // xSync calls that made writes durable
  uint64_t power_losses = 0;  // reboot() calls
  uint64_t writes_kept = 0;   // unsynced writes a power loss kept whole
  uint64_t writes_torn = 0;   // ... kept in part
  uint64_t writes_dropped = 0;
  uint64_t truncates_kept = 0;
  uint64_t truncates_dropped = 0;
  uint64_t files_vanished = 0;  // never-synced files a power loss removed
  // Power losses that found unsynced writes to a main database file. In WAL
  // mode only a checkpoint writes there, so these cut a checkpoint short.
  uint64_t losses_in_checkpoint = 0;
};

class PowerLossVfs {
 public:
  static constexpr const char* kName = "parley-powerloss";
  // Registers the VFS on the first call; returns the one instance.
  static PowerLossVfs& install();

  PowerLossVfs(const PowerLossVfs&) = delete;
  PowerLossVfs& operator=(const PowerLossVfs&) = delete;

  // The power goes off at the `calls`-th write, truncate, sync or delete of a
  // modelled file from now, or with `syncs_only` at the `calls`-th sync (that
  // call already fails). 0 disarms.
  void power_off_after(uint64_t calls, bool syncs_only = false) {
    countdown_ = calls;
    count_syncs_only_ = syncs_only;
  }
  void power_off() { powered_ = false; }
  bool power_is_on() const { return powered_; }

  // REQUIRES: no modelled file is open (every connection through the VFS is
  // closed). Applies the power loss to the files on disk as described above,
  // each unsynced write kept whole with probability `keep`, and turns the
  // power on. Returns "" or what went wrong (an I/O error, a file still open).
  std::string reboot(Random& random, double keep);

  // REQUIRES: no modelled file is open. Forgets every file and zeroes the
  // stats and the error (a test that is done with its files).
  void reset();

  const PowerLossStats& stats() const { return stats_; }
  // The first misuse the VFS saw (a modelled file deleted while open); "" if none.
  const std::string& error() const { return error_; }

 private:
  friend struct PowerLossCalls;  // the SQLite callbacks (power_loss_vfs.cpp)

  enum class Kind { kMainDb, kWal, kJournal };
  // A write (bytes at offset) or a truncate (to offset), not yet synced.
  struct Op {
    bool truncate = false;
    uint64_t offset = 0;
    std::string bytes;
  };
  struct ModelledFile {
    Kind kind = Kind::kMainDb;
    std::string durable;         // the bytes a power loss cannot take away
    bool durable_entry = false;  // the directory entry survives a power loss
    std::vector<Op> unsynced;    // since the last xSync, in order
    int open_handles = 0;
  };

  PowerLossVfs() = default;

  // Counts one write, truncate, sync or delete; false once the power is off.
  bool tick(bool is_sync = false);
  // Keeps the first misuse for error().
  void note(const std::string& error);
  // Rewrites `path` as its durable image plus a random subset of `file`'s
  // unsynced operations.
  std::string lose_unsynced(const std::string& path, ModelledFile* file, Random& random, double keep);

  std::map<std::string, ModelledFile> files_;  // by full path, as SQLite names them
  bool powered_ = true;
  uint64_t countdown_ = 0;
  bool count_syncs_only_ = false;
  PowerLossStats stats_;
  std::string error_;
};

}  // namespace parley::durability
