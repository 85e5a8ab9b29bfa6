// PowerLossVfs (power_loss_vfs.hpp): the SQLite callbacks and the reboot.
#include "power_loss_vfs.hpp"

#include "support/sqlite_vfs_forward.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

namespace parley::durability {
namespace {

constexpr uint64_t kTornPiece = 512;  // a torn write keeps or loses pieces this big
constexpr double kTornShare = 0.25;   // of the writes a power loss does not keep whole
constexpr uint64_t kToEnd = std::numeric_limits<uint64_t>::max();

sqlite3_vfs* default_vfs() {
  static sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
  return vfs;
}

std::string os_error(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes `n` bytes at `offset` into `image`, growing it with zeros if needed.
void put(const char* data, uint64_t n, uint64_t offset, std::string* image) {
  if (image->size() < offset + n) image->resize(offset + n, '\0');
  std::memcpy(image->data() + offset, data, n);
}

bool pwrite_all(int fd, const char* data, uint64_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t done = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) return false;
    data += done;
    n -= static_cast<uint64_t>(done);
    offset += static_cast<uint64_t>(done);
  }
  return true;
}

// Makes the file at `path` equal to `image`, writing only the byte ranges
// [first, second) that may differ.
std::string rewrite(const std::string& path, const std::string& image,
                    const std::vector<std::pair<uint64_t, uint64_t>>& touched) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return os_error("open", path);
  std::string failure;
  if (::ftruncate(fd, static_cast<off_t>(image.size())) != 0) failure = os_error("ftruncate", path);
  for (const auto& range : touched) {
    const uint64_t end = std::min<uint64_t>(range.second, image.size());
    if (!failure.empty() || range.first >= end) continue;
    if (!pwrite_all(fd, image.data() + range.first, end - range.first, range.first)) {
      failure = os_error("pwrite", path);
    }
  }
  ::close(fd);
  return failure;
}

}  // namespace

// The SQLite side of PowerLossVfs: an open file, the VFS and I/O callbacks.
struct PowerLossCalls {
  using Modelled = PowerLossVfs::ModelledFile;
  using Op = PowerLossVfs::Op;
  using Kind = PowerLossVfs::Kind;

  // An open file: the default VFS's file follows it in memory.
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
    Modelled* modelled;  // null: a temporary file, passed straight through
  };

  static PowerLossVfs* vfs;  // the one instance, set by install()

  static File* file_of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* real(sqlite3_file* f) { return file_of(f)->real; }

  static std::optional<Kind> kind_of(int flags) {
    if (flags & SQLITE_OPEN_MAIN_DB) return Kind::kMainDb;
    if (flags & SQLITE_OPEN_WAL) return Kind::kWal;
    if (flags & SQLITE_OPEN_MAIN_JOURNAL) return Kind::kJournal;
    return std::nullopt;
  }

  static Modelled* model(const std::string& path, Kind kind, bool existed) {
    auto [it, inserted] = vfs->files_.try_emplace(path);
    Modelled& file = it->second;
    if (inserted) {
      // A file the VFS has not seen: what is on disk now counts as durable.
      file.kind = kind;
      file.durable_entry = existed;
      if (existed) file.durable = read_file(path);
    }
    ++file.open_handles;
    return &file;
  }

  static int open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    File* file = file_of(f);
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    file->modelled = nullptr;
    const std::optional<Kind> kind = name != nullptr ? kind_of(flags) : std::nullopt;
    const bool existed = kind && ::access(name, F_OK) == 0;
    if (kind && !existed && !vfs->powered_) {  // no new files while the power is off
      f->pMethods = nullptr;
      return SQLITE_CANTOPEN;
    }
    const int rc = default_vfs()->xOpen(default_vfs(), name, file->real, flags, out_flags);
    f->pMethods = file->real->pMethods != nullptr ? methods() : nullptr;
    if (rc == SQLITE_OK && kind) file->modelled = model(name, *kind, existed);
    return rc;
  }

  static int remove(sqlite3_vfs*, const char* name, int sync_dir) {
    const auto it = vfs->files_.find(name);
    if (it == vfs->files_.end()) return default_vfs()->xDelete(default_vfs(), name, sync_dir);
    if (!vfs->tick()) return SQLITE_IOERR_DELETE;
    const int rc = default_vfs()->xDelete(default_vfs(), name, sync_dir);
    if (it->second.open_handles > 0) {
      vfs->note(std::string("SQLite deleted ") + name + " while it was open");
    } else if (rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT) {
      vfs->files_.erase(it);
    }
    return rc;
  }

  static int close(sqlite3_file* f) {
    if (file_of(f)->modelled != nullptr) --file_of(f)->modelled->open_handles;
    return real(f)->pMethods->xClose(real(f));
  }

  static int write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
    Modelled* modelled = file_of(f)->modelled;
    if (modelled == nullptr) return real(f)->pMethods->xWrite(real(f), data, amount, offset);
    if (!vfs->tick()) return SQLITE_IOERR_WRITE;
    const int rc = real(f)->pMethods->xWrite(real(f), data, amount, offset);
    if (rc != SQLITE_OK) {
      vfs->note("a write failed on disk: the model no longer matches the file");
      return rc;
    }
    Op op;
    op.offset = static_cast<uint64_t>(offset);
    op.bytes.assign(static_cast<const char*>(data), static_cast<size_t>(amount));
    modelled->unsynced.push_back(std::move(op));
    return rc;
  }

  static int truncate(sqlite3_file* f, sqlite3_int64 size) {
    Modelled* modelled = file_of(f)->modelled;
    if (modelled == nullptr) return real(f)->pMethods->xTruncate(real(f), size);
    if (!vfs->tick()) return SQLITE_IOERR_TRUNCATE;
    const int rc = real(f)->pMethods->xTruncate(real(f), size);
    if (rc != SQLITE_OK) {
      vfs->note("a truncate failed on disk: the model no longer matches the file");
      return rc;
    }
    Op op;
    op.truncate = true;
    op.offset = static_cast<uint64_t>(size);
    modelled->unsynced.push_back(std::move(op));
    return rc;
  }

  // The model is the disk: a sync makes the unsynced operations durable and
  // calls no fsync.
  static int sync(sqlite3_file* f, int flags) {
    Modelled* modelled = file_of(f)->modelled;
    if (modelled == nullptr) return real(f)->pMethods->xSync(real(f), flags);
    if (!vfs->tick(true)) return SQLITE_IOERR_FSYNC;
    for (const Op& op : modelled->unsynced) apply(op, &modelled->durable);
    modelled->unsynced.clear();
    modelled->durable_entry = true;
    ++vfs->stats_.syncs;
    return SQLITE_OK;
  }

  static void apply(const Op& op, std::string* image) {
    if (op.truncate) {
      image->resize(op.offset, '\0');
    } else {
      put(op.bytes.data(), op.bytes.size(), op.offset, image);
    }
  }

  static const sqlite3_io_methods* methods();
};

PowerLossVfs* PowerLossCalls::vfs = nullptr;

namespace {

sqlite3_file* real_file(sqlite3_file* f) {
  return PowerLossCalls::real(f);
}

}  // namespace

const sqlite3_io_methods* PowerLossCalls::methods() {
  static const sqlite3_io_methods io_methods = [] {
    sqlite3_io_methods io = parley::testing::VfsForward<real_file>::methods();
    io.xClose = close;
    io.xWrite = write;
    io.xTruncate = truncate;
    io.xSync = sync;
    return io;
  }();
  return &io_methods;
}

PowerLossVfs& PowerLossVfs::install() {
  static PowerLossVfs instance;
  static const int rc = [] {
    PowerLossCalls::vfs = &instance;
    static sqlite3_vfs vfs = *default_vfs();
    vfs.zName = kName;
    vfs.szOsFile = static_cast<int>(sizeof(PowerLossCalls::File)) + default_vfs()->szOsFile;
    vfs.xOpen = PowerLossCalls::open;
    vfs.xDelete = PowerLossCalls::remove;
    return sqlite3_vfs_register(&vfs, 0);
  }();
  if (rc != SQLITE_OK) instance.note("sqlite3_vfs_register failed");
  return instance;
}

void PowerLossVfs::reset() {
  files_.clear();
  powered_ = true;
  countdown_ = 0;
  stats_ = {};
  error_.clear();
}

void PowerLossVfs::note(const std::string& error) {
  if (error_.empty()) error_ = error;
}

bool PowerLossVfs::tick(bool is_sync) {
  const bool counts = is_sync || !count_syncs_only_;
  if (powered_ && counts && countdown_ > 0 && --countdown_ == 0) powered_ = false;
  return powered_;
}

std::string PowerLossVfs::reboot(Random& random, double keep) {
  for (const auto& entry : files_) {
    if (entry.second.open_handles > 0) return entry.first + " is still open at the power loss";
  }
  ++stats_.power_losses;
  bool in_checkpoint = false;
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& path = it->first;
    ModelledFile& file = it->second;
    for (const Op& op : file.unsynced) in_checkpoint |= file.kind == Kind::kMainDb && !op.truncate;
    if (!file.durable_entry && random.chance(0.5)) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return os_error("unlink", path);
      ++stats_.files_vanished;
      it = files_.erase(it);
      continue;
    }
    if (std::string e = lose_unsynced(path, &file, random, keep); !e.empty()) return e;
    // The -shm is not durable at all: gone, or left as it was (stale).
    const std::string shm = path + "-shm";
    if (file.kind == Kind::kMainDb && random.chance(0.5) && ::unlink(shm.c_str()) != 0 && errno != ENOENT) {
      return os_error("unlink", shm);
    }
    ++it;
  }
  if (in_checkpoint) ++stats_.losses_in_checkpoint;
  powered_ = true;
  countdown_ = 0;
  return "";
}

std::string PowerLossVfs::lose_unsynced(const std::string& path, ModelledFile* file, Random& random,
                                        double keep) {
  file->durable_entry = true;  // it survived; whatever it holds now is on disk
  if (file->unsynced.empty()) return "";
  // The file on disk is the durable image with every unsynced operation
  // applied; check that nothing wrote it behind the VFS's back.
  uint64_t expected_size = file->durable.size();
  for (const Op& op : file->unsynced) {
    expected_size = op.truncate ? op.offset : std::max<uint64_t>(expected_size, op.offset + op.bytes.size());
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return os_error("stat", path);
  if (static_cast<uint64_t>(st.st_size) != expected_size) {
    return path + " is " + std::to_string(st.st_size) + " bytes, the model says " +
           std::to_string(expected_size) + ": something wrote it behind the VFS";
  }

  std::vector<std::pair<uint64_t, uint64_t>> touched = {{expected_size, kToEnd}};
  for (const Op& op : file->unsynced) {
    if (op.truncate) {
      touched.emplace_back(op.offset, kToEnd);
      const bool kept = random.unit() < keep;
      ++(kept ? stats_.truncates_kept : stats_.truncates_dropped);
      if (kept) PowerLossCalls::apply(op, &file->durable);
      continue;
    }
    touched.emplace_back(op.offset, op.offset + op.bytes.size());
    if (random.unit() < keep) {
      ++stats_.writes_kept;
      PowerLossCalls::apply(op, &file->durable);
    } else if (random.chance(kTornShare)) {
      ++stats_.writes_torn;
      const uint64_t end = op.offset + op.bytes.size();
      for (uint64_t at = op.offset; at < end;) {
        const uint64_t next = std::min(end, (at / kTornPiece + 1) * kTornPiece);
        if (random.chance(0.5)) put(op.bytes.data() + (at - op.offset), next - at, at, &file->durable);
        at = next;
      }
    } else {
      ++stats_.writes_dropped;
    }
  }
  file->unsynced.clear();
  return rewrite(path, file->durable, touched);
}

}  // namespace parley::durability
