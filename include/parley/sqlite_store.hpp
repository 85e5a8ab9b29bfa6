// SQLite implementations of the storage interfaces: the embedded default.
//
// One database file holds messages, groups, members and the session
// directory, in WAL mode. Several processes (several nodes on one machine) may
// open the same file: every append runs in one BEGIN IMMEDIATE transaction
// that reads and advances the group head, so two writers never assign the same
// msg_id. An append batch is one transaction and one fsync (group commit).
//
// Durability: with Sync::kFull (the default) a successful append survives a
// power loss. Sync::kNormal skips the fsync at commit in WAL mode: a process
// crash still loses nothing, a power loss may lose the last commits.
//
// Thread rules: one SqliteStore is used from one thread at a time. Open one
// per thread (or per node) to share a file.
#pragma once

#include <memory>
#include <string>

#include "parley/status.hpp"
#include "parley/store.hpp"

namespace parley {

struct SqliteOptions {
  enum class Sync { kFull, kNormal };
  Sync sync = Sync::kFull;
  int busy_timeout_ms = 5000;  // how long a writer waits for another's lock
  // Optional SQLite VFS name (tests use it to inject faults); empty: default.
  std::string vfs;
};

class SqliteStore;

// Opens (creating if needed, migrating if older) the database at `path`.
// The returned object implements all three interfaces.
Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const std::string& path,
                                                       const SqliteOptions& options = {});

class SqliteStore : public MessageStore,
                    public MembershipStore,
                    public SessionDirectory,
                    public PresenceStore {
 public:
  static constexpr int kSchemaVersion = 8;
  ~SqliteStore() override = default;
  // The schema version of the open file.
  virtual int schema_version() const = 0;
  // PRAGMA integrity_check == "ok".
  virtual Status integrity_check() = 0;
};

}  // namespace parley
