// What only the SQLite store promises: persistence, its schema and
// migrations, several connections and processes, rollback, error codes, the
// sync option and group commit. The contracts every store keeps are in
// store_conformance_test.cpp.
#include <fmt/format.h>

#include "unit/store_fixtures.hpp"

TEST_CASE("sqlite store: reopening keeps everything") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  {
    std::unique_ptr<SqliteStore> s = open_store(path);
    append_ok(*s, {request("g", "ann", "c1", "one", 7), request("g", "bob", "")});
    CHECK(value_of(s->reset_group("r")) == 1);
    require_ok(s->create_group("g", "ann"));
    require_ok(s->add("g", "bob", Role::kMember));
    require_ok(s->put("ann", "n1", 100));
  }
  std::unique_ptr<SqliteStore> s = open_store(path);
  const std::vector<Message> messages = read_all(*s, "g");
  REQUIRE(ids_of(messages) == one_to(2));
  check_stored_as_asked(messages[0], request("g", "ann", "c1", "one", 7));
  CHECK(head_of(*s, "g").epoch == 1);
  CHECK(head_of(*s, "r").epoch == 1);
  CHECK(append_ok(*s, {request("g", "ann", "c1")})[0].duplicate);
  CHECK(append_ok(*s, {request("g", "cy", "")})[0].message.msg_id == 3);
  CHECK(value_of(s->members("g")).size() == 2);
  CHECK(value_of(s->role_of("g", "ann")) == Role::kOwner);
  CHECK(nodes_of(*s, {"ann"}, 0) == Nodes{{"n1"}});
}

TEST_CASE("sqlite store: schema version 8, WAL, integrity ok") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  std::unique_ptr<SqliteStore> s = open_store(path);
  CHECK(s->schema_version() == 8);
  CHECK(SqliteStore::kSchemaVersion == 8);
  append_ok(*s, {request("g", "ann", "c1")});
  require_ok(s->integrity_check());
  RawDb raw(path);
  CHECK(raw.int_query("PRAGMA user_version") == 8);
  CHECK(raw.int_query("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'") == 1);
  CHECK(raw.int_query("SELECT head FROM groups_log WHERE group_id = 'g'") == 1);
}

TEST_CASE("sqlite store: a version 1 file is migrated to version 8 and keeps its entries and members") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  {
    std::unique_ptr<SqliteStore> s = open_store(path);
    require_ok(s->put("ann", "n1", 1000));
    append_ok(*s, {request("g", "ann", "c1", "kept")});
    require_ok(s->create_group("g", "ann"));
  }
  // What version 1 was: no presence column, no entry kinds, no read positions.
  RawDb(path).exec(
      "DROP INDEX messages_replies; DROP TABLE mentions; DROP INDEX messages_own; DROP INDEX messages_deleted; "
      "ALTER TABLE messages DROP COLUMN ord; ALTER TABLE messages DROP COLUMN own; "
      "ALTER TABLE groups_log DROP COLUMN msgs; "
      "ALTER TABLE sessions DROP COLUMN presence; DROP TABLE reactions; DROP INDEX messages_edits; "
      "ALTER TABLE messages DROP COLUMN kind; ALTER TABLE messages DROP COLUMN target; "
      "ALTER TABLE messages DROP COLUMN reply_to; ALTER TABLE messages DROP COLUMN mentions; "
      "ALTER TABLE messages DROP COLUMN meta; ALTER TABLE messages DROP COLUMN flags; "
      "ALTER TABLE members DROP COLUMN read_epoch; ALTER TABLE members DROP COLUMN read_id; "
      "ALTER TABLE members DROP COLUMN notify; DROP TABLE invites; ALTER TABLE groups DROP COLUMN kind; "
      "ALTER TABLE groups DROP COLUMN title; ALTER TABLE groups DROP COLUMN topic; "
      "ALTER TABLE groups DROP COLUMN member_limit; PRAGMA user_version = 1");
  std::unique_ptr<SqliteStore> s = open_store(path);
  CHECK(s->schema_version() == 8);
  CHECK(value_of(s->role_of("g", "ann")) == Role::kOwner);
  CHECK(value_of(s->read_position("g", "ann")).msg_id == 0);
  // A group from before kinds is public, untitled, unlimited: anyone joins, discovery lists it.
  CHECK(value_of(s->settings("g")) == GroupSettings{});
  CHECK_FALSE(value_of(s->join("g", "bob", Admission::kAsked)).has_value());
  std::vector<GroupListing> listed;
  require_ok(s->public_groups("", "", 10, &listed));
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].members == 2);
  CHECK(value_of(s->mark_read("g", "ann", {1, 1})).msg_id == 1);
  CHECK(nodes_of(*s, {"ann"}, 0) == Nodes{{"n1"}});
  std::vector<Message> kept;
  require_ok(s->read("g", 0, 10, &kept));
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].contents == "kept");
  CHECK(kept[0].entry.kind == EntryKind::kMessage);
  CHECK_FALSE(kept[0].deleted);
  std::vector<PresenceStatus> out;
  require_ok(s->presence({"ann"}, 0, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kOffline});
  require_ok(s->set_presence("ann", "n1", PresenceStatus::kAway));
  require_ok(s->presence({"ann"}, 0, &out));
  CHECK(out == std::vector<PresenceStatus>{PresenceStatus::kAway});
}

// The code of a failed open of `path` (kOk if it opened).
Code open_error(const std::string& path) {
  return open_sqlite_store(path).status().code();
}

TEST_CASE("sqlite store: files it cannot use are refused") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  SUBCASE("a newer schema version") {
    { RawDb(path).exec(fmt::format("PRAGMA user_version = {}", SqliteStore::kSchemaVersion + 1)); }
    CHECK(open_error(path) == Code::kInvalidArgument);
  }
  SUBCASE("not a database") {
    std::ofstream(path) << std::string(8192, 'x');
    CHECK(open_error(path) == Code::kCorruption);
  }
  SUBCASE("a directory in the way") {
    std::filesystem::create_directory(path);
    CHECK(open_error(path) == Code::kUnavailable);
  }
}

TEST_CASE("sqlite store: an append that fails midway is rolled back") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  std::unique_ptr<SqliteStore> s = open_store(path);
  append_ok(*s, {request("g", "ann", "c0")});
  RawDb raw(path);
  raw.exec(
      "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN CAST(NEW.contents AS TEXT) = 'boom' "
      "BEGIN SELECT RAISE(ABORT, 'boom refused'); END");

  std::vector<AppendOutcome> out;
  const Status st =
      s->append({request("g", "ann", "c1"), request("h", "bob", "c2"), request("g", "cy", "", "boom")}, &out);
  CHECK(st.code() == Code::kInternal);
  CHECK(st.message().find("boom refused") != std::string::npos);
  CHECK(out.empty());
  CHECK(head_of(*s, "g").head == 1);
  CHECK(head_of(*s, "h").epoch == 0);
  CHECK(raw.int_query("SELECT count(*) FROM messages") == 1);

  raw.exec("DROP TRIGGER boom");
  out = append_ok(*s, {request("g", "ann", "c1"), request("h", "bob", "c2")});
  CHECK_FALSE(out[0].duplicate);
  CHECK(out[0].message.msg_id == 2);
  CHECK(out[1].message.msg_id == 1);
  require_ok(s->integrity_check());
}

TEST_CASE("sqlite store: a held write lock is kUnavailable after the busy timeout") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  SqliteOptions options;
  options.busy_timeout_ms = 0;
  std::unique_ptr<SqliteStore> s = open_store(path, options);
  RawDb raw(path);
  raw.exec("BEGIN IMMEDIATE");
  std::vector<AppendOutcome> out;
  const Status st = s->append({request("g", "ann", "")}, &out);
  CHECK(st.code() == Code::kUnavailable);
  CHECK(st.message().find("locked") != std::string::npos);
  CHECK(s->reset_group("g").status().code() == Code::kUnavailable);
  CHECK(s->create_group("g", "ann").code() == Code::kUnavailable);
  raw.exec("COMMIT");
  CHECK(append_ok(*s, {request("g", "ann", "")})[0].message.msg_id == 1);
  CHECK(value_of(s->reset_group("g")) == 2);
}

TEST_CASE("sqlite store: two connections on one file never share an id") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  std::unique_ptr<SqliteStore> a = open_store(path);
  std::unique_ptr<SqliteStore> b = open_store(path);
  std::set<uint64_t> seen;
  for (int round = 0; round < 20; ++round) {
    SqliteStore& s = round % 2 == 0 ? *a : *b;
    std::vector<AppendRequest> batch;
    for (int i = 0; i <= round % 3; ++i) batch.push_back(request("g", "u", ""));
    for (const AppendOutcome& o : append_ok(s, batch)) CHECK(seen.insert(o.message.msg_id).second);
  }
  CHECK(ids_of(read_all(*a, "g")) == one_to(seen.size()));
  CHECK(head_of(*b, "g").head == seen.size());

  // A resend through the other connection is recognised.
  const Message original = append_ok(*a, {request("g", "ann", "k")})[0].message;
  const AppendOutcome resent = append_ok(*b, {request("g", "ann", "k")})[0];
  CHECK(resent.duplicate);
  check_same(resent.message, original);
}

namespace {

// Child process body: appends `count` messages to "g" in batches of 1..4,
// keys "<tag>-<i>". Exit status 0 on success.
int append_in_child(const std::string& path, const std::string& tag, int count) {
  SqliteOptions options;
  options.busy_timeout_ms = 30000;
  Result<std::unique_ptr<SqliteStore>> opened = open_sqlite_store(path, options);
  if (!opened) return 2;
  SqliteStore& s = **opened;
  int i = 0;
  while (i < count) {
    std::vector<AppendRequest> batch;
    for (int n = 0; n <= i % 4 && i < count; ++n, ++i) {
      batch.push_back(request("g", tag, tag + "-" + std::to_string(i)));
    }
    std::vector<AppendOutcome> out;
    if (!s.append(batch, &out).is_ok()) return 3;
  }
  return 0;
}

}  // namespace

TEST_CASE("sqlite store: two processes appending to one group get dense ids") {
  TempDir dir;
  const std::string path = dir.file("parley.db");
  open_store(path).reset();  // create the file before forking
  constexpr int kEach = 300;
  std::vector<pid_t> children;
  for (const char* tag : {"p1", "p2"}) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(append_in_child(path, tag, kEach));
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  std::unique_ptr<SqliteStore> s = open_store(path);
  const std::vector<Message> messages = read_all(*s, "g");
  CHECK(ids_of(messages) == one_to(uint64_t{2} * kEach));
  // Each writer's messages are all there, in the order it sent them.
  std::map<std::string, int> next;
  for (const Message& m : messages) {
    CHECK(m.client_msg_id == m.user_id + "-" + std::to_string(next[m.user_id]++));
  }
  CHECK(next == std::map<std::string, int>{{"p1", kEach}, {"p2", kEach}});
  require_ok(s->integrity_check());
}

// --- fsync: a VFS that counts syncs on the main database and WAL files ---

namespace {

struct SyncCount {
  int syncs = 0;
};

SyncCount& sync_count() {
  static SyncCount c;
  return c;
}

// A file of the counting VFS: the default VFS's file follows it in memory.
struct CountingFile {
  sqlite3_file base;
  sqlite3_file* real;
};

sqlite3_file* real_file(sqlite3_file* f) {
  return reinterpret_cast<CountingFile*>(f)->real;
}

int counting_sync(sqlite3_file* f, int flags) {
  ++sync_count().syncs;
  return real_file(f)->pMethods->xSync(real_file(f), flags);
}

const sqlite3_io_methods* counting_methods() {
  static const sqlite3_io_methods methods = [] {
    sqlite3_io_methods io = parley::testing::VfsForward<real_file>::methods();
    io.xSync = counting_sync;
    return io;
  }();
  return &methods;
}

sqlite3_vfs* default_vfs() {
  static sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
  return vfs;
}

int counting_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
  CountingFile* file = reinterpret_cast<CountingFile*>(f);
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  const int rc = default_vfs()->xOpen(default_vfs(), name, file->real, flags, out);
  file->base.pMethods = file->real->pMethods != nullptr ? counting_methods() : nullptr;
  return rc;
}

// The default VFS with every file's xSync counted in sync_count().
constexpr const char* kCountingVfs = "parley-counting";

void install_counting_vfs() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs v = *default_vfs();
    v.zName = kCountingVfs;
    v.szOsFile = static_cast<int>(sizeof(CountingFile)) + default_vfs()->szOsFile;
    v.xOpen = counting_open;
    return v;
  }();
  static const int rc = sqlite3_vfs_register(&vfs, 0);
  REQUIRE(rc == SQLITE_OK);
}

// Syncs done by one append of `batch_size` new messages.
int syncs_for_append(SqliteStore& s, size_t batch_size) {
  const std::vector<AppendRequest> batch(batch_size, request("g", "u", ""));
  const int before = sync_count().syncs;
  append_ok(s, batch);
  return sync_count().syncs - before;
}

}  // namespace

TEST_CASE("sqlite store: Sync::kFull syncs once per batch, kNormal does not sync commits") {
  install_counting_vfs();
  TempDir dir;
  SqliteOptions options;
  options.vfs = kCountingVfs;

  SUBCASE("full") {
    std::unique_ptr<SqliteStore> s = open_store(dir.file("full.db"), options);
    syncs_for_append(*s, 1);  // the first commit into a fresh WAL also syncs its header
    const int one = syncs_for_append(*s, 1);
    CHECK(one >= 1);
    CHECK(syncs_for_append(*s, 200) == one);  // group commit: not one per message
  }
  SUBCASE("normal") {
    options.sync = SqliteOptions::Sync::kNormal;
    std::unique_ptr<SqliteStore> s = open_store(dir.file("normal.db"), options);
    CHECK(syncs_for_append(*s, 1) == 0);
    CHECK(syncs_for_append(*s, 200) == 0);
  }
  SUBCASE("an unknown VFS is refused") {
    options.vfs = "no-such-vfs";
    CHECK_FALSE(open_sqlite_store(dir.file("x.db"), options).is_ok());
  }
}
