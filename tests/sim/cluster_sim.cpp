#include "cluster_sim.hpp"
#include "fold.hpp"
#include "reads.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "core/event_queue.hpp"
#include "parley/memory_store.hpp"
#include "parley/sqlite_store.hpp"

namespace parley::sim {

namespace {

constexpr int64_t kChaosMs = 14000;  // traffic and faults
constexpr int64_t kQuietMs = 6000;   // no faults, no traffic: everything must converge
constexpr int64_t kBoundMs = 2000;   // delivery-time bound for continuously live devices
constexpr int64_t kTurnMs = 1;       // a node's loop turn: inputs are flushed this much later

// ---- a message store that fails some appends and remembers commit times ----

// What the faulty stores of all nodes share.
struct StoreFaults {
  double fail_rate = 0;
  uint64_t failures = 0;
  bool check_counts = false;  // --reads: every unread count against the log (reads.hpp)
  uint64_t counts_checked = 0;
  std::vector<std::string> count_errors;
  std::map<std::tuple<std::string, uint64_t, uint64_t>, int64_t> commit_time;  // (group, epoch, id)
};

class FaultyStore final : public MessageStore {
 public:
  FaultyStore(MessageStore& inner, StoreFaults& faults, Random& random, const ManualClock& clock)
      : inner_(inner), faults_(faults), random_(random), clock_(clock) {}

  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override {
    if (faults_.fail_rate > 0 && random_.chance(faults_.fail_rate)) {
      ++faults_.failures;
      return error(Code::kUnavailable, "injected store failure");
    }
    Status s = inner_.append(requests, out);
    if (s) {
      for (const AppendOutcome& o : *out) {
        if (!o.duplicate) {
          faults_.commit_time[{o.message.group_id, o.message.epoch, o.message.msg_id}] = clock_.now_ms();
        }
      }
    }
    return s;
  }
  Status read(const std::string& g, uint64_t after, size_t limit, std::vector<Message>* out) override {
    return inner_.read(g, after, limit, out);
  }
  Status read_folded(const std::string& g, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override {
    return inner_.read_folded(g, after, limit, reader, out);
  }
  Status heads(const std::vector<std::string>& ids, std::vector<GroupHead>* out) override {
    return inner_.heads(ids, out);
  }
  Result<uint64_t> reset_group(const std::string& g) override { return inner_.reset_group(g); }
  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override {
    const size_t from = out->size();
    Status s = inner_.unread(queries, out);
    if (s && faults_.check_counts) {
      faults_.counts_checked += queries.size();
      check_unread_counts(inner_, queries, *out, from, &faults_.count_errors);
    }
    return s;
  }

 private:
  MessageStore& inner_;
  StoreFaults& faults_;
  Random& random_;
  const ManualClock& clock_;
};

// ---- the world ---------------------------------------------------------------

struct GroupView {
  uint64_t epoch = 0;                             // of the history held; 0 until the first message
  std::vector<std::vector<MessagePtr>> archived;  // histories of earlier epochs, dropped on EpochEv
  uint64_t cursor = 0;
  std::vector<MessagePtr> got;                    // got[i]->msg_id == i + 1
  std::vector<int64_t> got_at;                    // receive time of got[i]
  std::vector<std::pair<int64_t, int64_t>> live;  // [from, to) intervals of being live
  std::set<uint64_t> deleted;                     // ids whose delete this device took
  bool is_live = false;
  bool pull_mode = false;
  bool pull_in_flight = false;
  uint64_t known_head = 0;
  // The user was removed from the group: nothing committed after that
  // (epoch, head) may reach the device, nor be notified to its user.
  bool removed = false;
  uint64_t removed_epoch = 0, removed_head = 0;
};

struct PendingSend {
  std::string group;
  std::string cid;
  std::string contents;
  EntryFields entry{};  // an edit, delete or reaction (some sends are)
  uint64_t epoch = 0;   // a change: the epoch of the copy its target was picked from
};

struct Device {
  int user = 0;
  std::string name;
  int node = -1;          // node index while connected
  uint64_t node_gen = 0;  // generation of that node when connected
  SessionId sid = 0;
  bool connected = false;
  bool stall_exempt = false;  // stalled at some point: excluded from the time bound
  int64_t stall_until = 0;
  int64_t link_free_at = 0;  // FIFO on the node -> device link
  std::map<std::string, GroupView> groups;
  std::vector<PendingSend> unacked;
  std::map<std::string, std::pair<uint64_t, uint64_t>> acked;  // cid -> (epoch, msg_id)
  std::map<std::string, PendingSend> sent_sends;               // cid -> what was sent
  uint64_t next_rid = 1;
  uint64_t sent = 0;
  bool wants_presence = true;  // asks for presence events (some devices never do)
};

struct User {
  std::string id;
  std::vector<std::string> groups;  // every group it was ever a member of
  std::set<std::string> removed;    // the ones it was removed from
  std::vector<int> devices;
};

class World;

// Checks each notification when it is made: none for a message that one of
// the user's live sessions already holds.
struct CheckingNotifier final : Notifier {
  World* world = nullptr;
  void notify(const Notification& n) override;
};

struct SimNode : NodeHost, StoreExecutor {
  World* world = nullptr;
  int index = 0;
  uint64_t gen = 0;
  bool up = false;
  std::unique_ptr<Node> node;
  std::unique_ptr<SqliteStore> sqlite;  // this node's connection, when on SQLite
  std::unique_ptr<FaultyStore> messages;
  MembershipStore* membership = nullptr;  // the node's (its connection's, on SQLite)
  SessionDirectory* directory = nullptr;
  int64_t jobs_free_at = 0;  // store jobs run in order: when the previous one is done
  CheckingNotifier notifier;
  bool flush_scheduled = false;
  uint64_t timer_token = 0;
  int64_t store_free_at = 0;  // the executor appends in order: when the previous job is done

  void send_to_session(SessionId session, const std::vector<Frame>& frames) override;
  void close_session(SessionId session, const Status& reason) override;
  void send_to_node(const std::string& node_id, uint64_t call_id, const Frame& batch) override;
  void set_timer(int64_t at_ms) override;
  void append(AppendJob job) override;
  void read(ReadJob job) override;
  void lookup(LookupJob job) override;
  void run(StoreJob job) override;
};

class World {
 public:
  explicit World(const SimConfig& config)
      : config_(config), rng_(config.seed), codec_(make_msgpack_codec()) {}

  SimResult run() {
    if (Status s = open_admin_stores(); !s) {
      violation("opening the stores: " + s.to_string());
      return std::move(result_);
    }
    setup();
    while (sched_.run_next(clock_, kChaosMs + kQuietMs)) {
      if (config_.stop_at_first_violation && !result_.violations.empty()) break;
    }
    if (!config_.stop_at_first_violation || result_.violations.empty()) check_final();
    fill_result();
    return std::move(result_);
  }

  // ---- host callbacks ----

  void on_frames(SimNode& n, SessionId sid, const std::vector<Frame>& frames) {
    auto it = sid_owner_.find(sid);
    if (it == sid_owner_.end()) return;
    Device& d = devices_[it->second];
    int64_t t = std::max({clock_.now_ms() + rng_.range(1, 10), d.link_free_at, d.stall_until});
    d.link_free_at = t;
    const uint64_t gen = n.gen;
    const int di = it->second;
    sched_.at(t, [this, di, sid, gen, frames, ni = n.index] {
      Device& dev = devices_[di];
      if (!dev.connected || dev.sid != sid) return;
      size_t bytes = 0;
      for (const Frame& f : frames) {
        bytes += f->size();
        on_event(dev, *f);
        if (!dev.connected || dev.sid != sid) return;
      }
      SimNode& node = nd(ni);
      if (node.up && node.gen == gen) {
        node.node->on_session_drained(sid, bytes);
        schedule_flush(node);
      }
    });
  }

  void on_close(SimNode& n, SessionId sid) {
    auto it = sid_owner_.find(sid);
    if (it == sid_owner_.end()) return;
    const int di = it->second;
    ++result_.fell_behind;
    int64_t t = std::max(clock_.now_ms() + 1, devices_[di].link_free_at);
    (void)n;
    sched_.at(t, [this, di, sid] {
      Device& d = devices_[di];
      if (d.connected && d.sid == sid) disconnect(d, /*tell_node=*/false);
    });
  }

  void on_send_to_node(SimNode& from, const std::string& to_id, uint64_t call_id, const Frame& batch) {
    const int to = node_index(to_id);
    const uint64_t from_gen = from.gen;
    const int fi = from.index;
    auto fail_later = [this, fi, from_gen, to_id, call_id](int64_t delay) {
      sched_.at(clock_.now_ms() + delay, [this, fi, from_gen, to_id, call_id] {
        SimNode& f = nd(fi);
        if (!f.up || f.gen != from_gen) return;
        f.node->on_peer_result(to_id, call_id, false);
        schedule_flush(f);
      });
    };
    if (to < 0 || partitioned(fi, to) || rng_.chance(loss_)) {
      // Refused quickly, or lost and left to the forwarder's timeout.
      if (rng_.chance(0.5)) fail_later(rng_.range(1, 50));
      return;
    }
    const int64_t arrive = clock_.now_ms() + rng_.range(0, max_delay_);
    sched_.at(arrive, [this, fi, from_gen, to, to_id, call_id, batch, fail_later] {
      SimNode& t = nd(to);
      if (!t.up || partitioned(fi, to)) {
        fail_later(rng_.range(1, 20));
        return;
      }
      Status s = t.node->on_peer_batch(batch->data(), batch->size());
      if (!s) violation(fmt::format("node {} rejected a peer batch: {}", to_id, s.to_string()));
      schedule_flush(t);
      if (rng_.chance(loss_)) return;  // the answer is lost
      sched_.at(clock_.now_ms() + rng_.range(0, max_delay_ / 4), [this, fi, from_gen, to_id, call_id] {
        SimNode& f = nd(fi);
        if (!f.up || f.gen != from_gen) return;
        f.node->on_peer_result(to_id, call_id, true);
        schedule_flush(f);
      });
    });
  }

  // The node's store executor: each job is appended after a random latency,
  // in the order given, and its outcome handed back. A node that crashed
  // meanwhile never sees it; whether the append itself reached the store is
  // a coin toss (the write raced the crash).
  void on_append(SimNode& n, AppendJob job) {
    const int64_t at = std::max(clock_.now_ms() + rng_.range(0, store_latency_ms_), n.store_free_at);
    n.store_free_at = at;
    ++result_.append_jobs;
    const int ni = n.index;
    const uint64_t gen = n.gen;
    sched_.at(at, [this, ni, gen, job = std::move(job)]() mutable {
      SimNode& node = nd(ni);
      std::vector<AppendOutcome> outcomes;
      if (!node.up || node.gen != gen) {
        ++result_.completions_lost;
        if (rng_.chance(0.5)) {
          if (Status s = run_append(*admin_messages_, admin_membership_, job.requests, &outcomes); !s) {
            violation(s.to_string());
          }
        }
        return;
      }
      Status st = run_append(*node.messages, node.membership, job.requests, &outcomes);
      node.node->on_append_done(job.id, st, std::move(outcomes));
      schedule_flush(node);
    });
  }

  // Reads and lookups (a request waiting for a membership or a head) take
  // their own random latency, so they overtake appends and each other; the
  // store is read when the result comes back. A node that crashed or
  // restarted meanwhile never sees the result.
  void on_read(SimNode& n, ReadJob job) {
    ++result_.read_jobs;
    complete_later(n, [job = std::move(job)](SimNode& node) {
      node.node->on_read_done(job.id, run_read(*node.messages, job));
    });
  }

  void on_lookup(SimNode& n, LookupJob job) {
    ++result_.lookup_jobs;
    complete_later(n, [job = std::move(job)](SimNode& node) {
      node.node->on_lookup_done(job.id, run_lookup(*node.messages, *node.membership, job));
    });
  }

  // Store jobs (heads, routes, directory and presence writes) run in the
  // order given, each after its latency, like appends.
  void on_store_job(SimNode& n, StoreJob job) {
    ++result_.store_jobs;
    const int64_t at = std::max(clock_.now_ms() + rng_.range(0, store_latency_ms_), n.jobs_free_at);
    n.jobs_free_at = at;
    complete_later(n, at, [job = std::move(job)](SimNode& node) {
      node.node->on_store_done(job.id, run_store_job(JobStores{*node.messages, *node.membership, *node.directory}, job));
    });
  }

  void complete_later(SimNode& n, std::function<void(SimNode&)> complete) {
    complete_later(n, clock_.now_ms() + rng_.range(0, store_latency_ms_), std::move(complete));
  }

  void complete_later(SimNode& n, int64_t at, std::function<void(SimNode&)> complete) {
    const int ni = n.index;
    const uint64_t gen = n.gen;
    sched_.at(at,
              [this, ni, gen, complete = std::move(complete)] {
                SimNode& node = nd(ni);
                if (!node.up || node.gen != gen) {
                  ++result_.completions_lost;
                  return;
                }
                complete(node);
                schedule_flush(node);
              });
  }

  void on_set_timer(SimNode& n, int64_t at) {
    const uint64_t token = ++n.timer_token;
    const uint64_t gen = n.gen;
    const int ni = n.index;
    sched_.at(std::max(at, clock_.now_ms()), [this, ni, gen, token] {
      SimNode& node = nd(ni);
      if (!node.up || node.gen != gen || node.timer_token != token) return;
      node.node->on_timer();
    });
  }

 private:
  // ---- setup ---------------------------------------------------------------

  static SqliteOptions sqlite_options() {
    SqliteOptions o;
    o.sync = SqliteOptions::Sync::kNormal;  // power loss is not simulated here
    return o;
  }

  Status open_admin_stores() {
    if (config_.sqlite_path.empty()) {
      memory_messages_ = make_memory_message_store();
      memory_membership_ = make_memory_membership_store();
      memory_directory_ = make_memory_session_directory();
      admin_messages_ = memory_messages_.get();
      admin_membership_ = memory_membership_.get();
      admin_directory_ = memory_directory_.get();
      return Status::ok();
    }
    auto opened = open_sqlite_store(config_.sqlite_path, sqlite_options());
    if (!opened) return opened.status();
    admin_sqlite_ = std::move(*opened);
    admin_messages_ = admin_sqlite_.get();
    admin_membership_ = admin_sqlite_.get();
    admin_directory_ = admin_sqlite_.get();
    return Status::ok();
  }

  void setup() {
    const int n_nodes = static_cast<int>(rng_.range(3, 7));
    const int n_users = static_cast<int>(rng_.range(20, 200));
    loss_ = rng_.unit() * 0.2;
    max_delay_ = rng_.range(0, 300);
    faults_.fail_rate = rng_.chance(0.5) ? rng_.unit() * 0.05 : 0.0;
    faults_.check_counts = config_.read_reports;
    forward_mode_ = rng_.chance(0.5) ? BatchingForwarder::Mode::kFixed : BatchingForwarder::Mode::kAdaptive;
    // Most seeds run appends and range reads on an executor with 0-50 ms of
    // latency per job (the node's turn goes on meanwhile); the rest run them
    // inline.
    async_store_ = rng_.chance(0.75);
    if (async_store_) store_latency_ms_ = rng_.range(0, 50);
    // Now and then peer batches bounded by bytes: a busy link splits them.
    if (rng_.chance(0.3)) forward_max_bytes_ = static_cast<size_t>(rng_.range(300, 3000));
    // Now and then a user's devices prefer one node (several sessions there).
    same_node_ = rng_.chance(0.5) ? rng_.unit() * 0.6 : 0.0;

    for (int i = 0; i < n_users; ++i) {
      User u;
      u.id = fmt::format("u{}", i);
      users_.push_back(u);
    }
    // One large busy group (switches to pull) and several small ones.
    const int big = static_cast<int>(rng_.range(std::min(n_users, 40), n_users));
    make_group("big", pick_users(big), /*busy=*/true);
    const int n_small = static_cast<int>(rng_.range(3, 10));
    for (int g = 0; g < n_small; ++g) {
      const int size = static_cast<int>(rng_.range(2, std::min(n_users, 30)));
      make_group(fmt::format("g{}", g), pick_users(size), false);
    }

    for (int i = 0; i < n_nodes; ++i) {
      nodes_.push_back(std::make_unique<SimNode>());
      nd(i).world = this;
      nd(i).notifier.world = this;
      nd(i).index = i;
      start_node(i);
    }
    for (int u = 0; u < n_users; ++u) {
      const int n_dev = static_cast<int>(rng_.range(1, 3));
      for (int k = 0; k < n_dev; ++k) {
        Device d;
        d.user = u;
        d.name = fmt::format("{}/d{}", users_[u].id, k);
        d.wants_presence = rng_.chance(0.6);
        for (const std::string& g : users_[u].groups) d.groups[g];
        users_[u].devices.push_back(static_cast<int>(devices_.size()));
        devices_.push_back(std::move(d));
        const int di = static_cast<int>(devices_.size()) - 1;
        sched_.at(rng_.range(0, 500), [this, di] { connect(devices_[di]); });
      }
    }
    for (int di = 0; di < static_cast<int>(devices_.size()); ++di) schedule_next_send(di);
    schedule_faults();
  }

  std::vector<int> pick_users(int count) {
    std::vector<int> all(users_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    for (size_t i = 0; i < all.size(); ++i) std::swap(all[i], all[i + rng_.below(all.size() - i)]);
    all.resize(count);
    return all;
  }

  void make_group(const std::string& id, const std::vector<int>& members, bool busy) {
    Status s = admin_membership_->create_group(id, users_[members[0]].id);
    if (!s) violation("create_group: " + s.to_string());
    for (size_t i = 1; i < members.size(); ++i) {
      if (Status st = admin_membership_->add(id, users_[members[i]].id, Role::kMember); !st)
        violation(st.to_string());
    }
    for (int m : members) users_[m].groups.push_back(id);
    group_ids_.push_back(id);
    if (busy) busy_group_ = id;
    result_.largest_group = std::max<int>(result_.largest_group, static_cast<int>(members.size()));
  }

  NodeOptions node_options(int i) {
    NodeOptions o;
    o.node_id = fmt::format("n{}", i);
    o.seed = config_.seed * 131 + static_cast<uint64_t>(i) * 7 + nd(i).gen;
    o.forward.mode = forward_mode_;
    if (forward_max_bytes_ != 0) o.forward.max_bytes = forward_max_bytes_;
    o.policy.pull_min_members = 30;
    o.policy.pull_enter_rate = 6;
    o.policy.pull_exit_rate = 1.5;
    o.policy.window_ms = 3000;
    o.policy.min_dwell_ms = 2000;
    o.session_queue_bytes = 8 * 1024;
    o.catch_up_page = 64;
    o.tail_per_group = 200;
    o.mutations = config_.mutations;
    return o;
  }

  void start_node(int i) {
    SimNode& n = nd(i);
    ++n.gen;
    n.up = true;
    n.flush_scheduled = false;
    // Each node is its own process: on SQLite it opens its own connection to
    // the shared file (and reopens it after a crash).
    MessageStore* messages = admin_messages_;
    MembershipStore* membership = admin_membership_;
    SessionDirectory* directory = admin_directory_;
    if (!config_.sqlite_path.empty()) {
      auto opened = open_sqlite_store(config_.sqlite_path, sqlite_options());
      if (!opened) return violation("node opens sqlite: " + opened.status().to_string());
      n.sqlite = std::move(*opened);
      messages = n.sqlite.get();
      membership = n.sqlite.get();
      directory = n.sqlite.get();
    }
    n.messages = std::make_unique<FaultyStore>(*messages, faults_, rng_, clock_);
    n.membership = membership;
    n.directory = directory;
    n.jobs_free_at = 0;
    n.store_free_at = 0;
    NodeStores stores{*n.messages, *membership, *directory, nullptr, async_store_ ? &n : nullptr};
    n.node = std::make_unique<Node>(node_options(i), stores, n,
                                    clock_, &n.notifier, codec_);
    if (Status s = n.node->start(); !s) violation("start: " + s.to_string());
  }

  void crash_node(int i) {
    SimNode& n = nd(i);
    if (!n.up) return;
    ++result_.crashes;
    accumulate_stats(n);
    n.up = false;
    n.node.reset();
    n.messages.reset();
    n.sqlite.reset();
    for (Device& d : devices_) {
      if (d.connected && d.node == i) disconnect(d, /*tell_node=*/false);
    }
    sched_.at(clock_.now_ms() + rng_.range(300, 3000), [this, i] { start_node(i); });
  }

  void schedule_faults() {
    const int crashes = static_cast<int>(rng_.range(0, 3));
    for (int c = 0; c < crashes; ++c) {
      sched_.at(rng_.range(1000, kChaosMs - 3000),
                [this] { crash_node(static_cast<int>(rng_.below(nodes_.size()))); });
    }
    const int parts = static_cast<int>(rng_.range(0, 4));
    for (int p = 0; p < parts; ++p) schedule_partition(rng_.range(500, kChaosMs - 1000));
    // Often a partition right before the traffic stops: only head sync heals it.
    if (rng_.chance(0.6)) schedule_partition(kChaosMs - rng_.range(500, 2000));
    const int drops = static_cast<int>(rng_.range(5, 40));
    for (int k = 0; k < drops; ++k) {
      sched_.at(rng_.range(200, kChaosMs), [this] {
        Device& d = devices_[static_cast<size_t>(rng_.below(devices_.size()))];
        if (!d.connected) return;
        // Half clean closes, half errors (the node notifies and remembers the reason).
        Status reason = rng_.chance(0.5) ? Status::ok() : error(Code::kUnavailable, "connection reset");
        disconnect(d, /*tell_node=*/true, reason);
      });
    }
    // An operator restores a group from a backup: its history starts over.
    if (rng_.chance(0.35)) {
      sched_.at(rng_.range(2000, kChaosMs - 3000), [this] {
        const std::string& g = group_ids_[static_cast<size_t>(rng_.below(group_ids_.size()))];
        std::vector<GroupHead> heads;
        std::vector<Message> log;
        if (!admin_messages_->heads({g}, &heads) || !admin_messages_->read(g, 0, 1u << 30, &log)) {
          return violation("reading before a reset failed");
        }
        old_logs_[{g, heads[0].epoch}] = std::move(log);
        if (!admin_messages_->reset_group(g)) violation("reset_group failed");
        ++result_.resets;
      });
    }
    // A member is removed from a small group (the server tells every node).
    const int removals = rng_.chance(0.6) ? static_cast<int>(rng_.range(1, 3)) : 0;
    for (int k = 0; k < removals; ++k) {
      sched_.at(rng_.range(1000, kChaosMs - 3000), [this] { remove_member(); });
    }
    const int stalls = static_cast<int>(rng_.range(0, 3));
    for (int k = 0; k < stalls; ++k) {
      sched_.at(rng_.range(500, kChaosMs - 3000), [this] {
        Device& d = devices_[static_cast<size_t>(rng_.below(devices_.size()))];
        d.stall_exempt = true;
        d.stall_until = clock_.now_ms() + rng_.range(1000, 4000);
      });
    }
  }

  void remove_member() {
    std::vector<std::pair<int, std::string>> candidates;  // (user, group), small groups only
    for (size_t u = 0; u < users_.size(); ++u) {
      for (const std::string& g : users_[u].groups) {
        if (g != busy_group_ && !users_[u].removed.count(g)) candidates.push_back({static_cast<int>(u), g});
      }
    }
    if (candidates.empty()) return;
    const auto [u, g] = candidates[rng_.below(candidates.size())];
    User& user = users_[static_cast<size_t>(u)];
    if (Status s = admin_membership_->remove(g, user.id); !s) return violation("remove: " + s.to_string());
    std::vector<GroupHead> heads;
    if (Status s = admin_messages_->heads({g}, &heads); !s) return violation("heads: " + s.to_string());
    user.removed.insert(g);
    ++result_.removals;
    const int64_t now = clock_.now_ms();
    for (int di : user.devices) {
      GroupView& v = devices_[static_cast<size_t>(di)].groups[g];
      v.removed = true;
      v.removed_epoch = heads[0].epoch;
      v.removed_head = heads[0].head;
      set_live(v, false, now);
    }
    for (auto& n : nodes_) {
      if (!n->up) continue;
      n->node->member_removed(g, user.id);
      schedule_flush(*n);
    }
  }

  // Whether a message of a group the user was removed from came after the removal.
  static bool after_removal(const GroupView& v, uint64_t epoch, uint64_t msg_id) {
    return v.removed && (epoch > v.removed_epoch || (epoch == v.removed_epoch && msg_id > v.removed_head));
  }

  void schedule_partition(int64_t at) {
    sched_.at(at, [this] {
      ++result_.partitions;
      const int a = static_cast<int>(rng_.below(nodes_.size()));
      int b = rng_.chance(0.5) ? -1 : static_cast<int>(rng_.below(nodes_.size()));  // -1: isolate a
      cuts_.insert({a, b});
      const int64_t heal = std::min(clock_.now_ms() + rng_.range(500, 5000), kChaosMs);
      sched_.at(heal, [this, a, b] { cuts_.erase({a, b}); });
    });
  }

  bool partitioned(int a, int b) const {
    for (const auto& [x, y] : cuts_) {
      if (y < 0 && (x == a || x == b)) return true;
      if ((x == a && y == b) || (x == b && y == a)) return true;
    }
    return false;
  }

  int node_index(const std::string& id) const {
    const int i = id.size() > 1 && id[0] == 'n' ? std::atoi(id.c_str() + 1) : -1;
    return i >= 0 && i < static_cast<int>(nodes_.size()) ? i : -1;
  }

  void schedule_flush(SimNode& n) {
    if (n.flush_scheduled) return;
    n.flush_scheduled = true;
    const uint64_t gen = n.gen;
    const int ni = n.index;
    sched_.at(clock_.now_ms() + kTurnMs, [this, ni, gen] {
      SimNode& node = nd(ni);
      if (!node.up || node.gen != gen) return;
      node.flush_scheduled = false;
      node.node->flush();
    });
  }

  // ---- devices ---------------------------------------------------------------

  void connect(Device& d) {
    if (d.connected || clock_.now_ms() >= kChaosMs + kQuietMs - 1) return;
    std::vector<int> up;
    for (const auto& n : nodes_) {
      if (n->up) up.push_back(n->index);
    }
    if (up.empty()) {
      const int di = static_cast<int>(&d - devices_.data());
      sched_.at(clock_.now_ms() + 200, [this, di] { connect(devices_[di]); });
      return;
    }
    int pick = up[rng_.below(up.size())];
    if (same_node_ > 0 && rng_.chance(same_node_)) {
      for (int other : users_[d.user].devices) {
        const Device& o = devices_[static_cast<size_t>(other)];
        if (&o != &d && o.connected && nd(o.node).up) pick = o.node;
      }
    }
    SimNode& n = nd(pick);
    d.node = n.index;
    d.node_gen = n.gen;
    d.sid = next_sid_++;
    d.connected = true;
    d.link_free_at = 0;
    sid_owner_[d.sid] = static_cast<int>(&d - devices_.data());
    if (Status s = n.node->open_session(d.sid, users_[d.user].id); !s)
      violation("open_session: " + s.to_string());
    request(d, PresenceReq{d.next_rid++, PresenceStatus::kOnline, d.wants_presence});
    for (auto& [g, view] : d.groups) {
      if (view.removed) continue;
      view.pull_in_flight = false;
      request(d, ResumeReq{d.next_rid++, g, view.cursor, view.epoch});
    }
    // Resend whatever was never acknowledged (the ack may have been lost),
    // and now and then something that was (a client unsure of its ack).
    for (const PendingSend& p : d.unacked) request(d, send_req(d, p));
    if (!d.acked.empty() && rng_.chance(0.3)) {
      auto it = d.acked.begin();
      std::advance(it, rng_.below(d.acked.size()));
      ++result_.dup_resends;
      request(d, send_req(d, d.sent_sends[it->first]));
    }
  }

  void disconnect(Device& d, bool tell_node, const Status& reason = Status::ok()) {
    if (!d.connected) return;
    const int64_t now = clock_.now_ms();
    for (auto& [g, view] : d.groups) set_live(view, false, now);
    d.connected = false;
    sid_owner_.erase(d.sid);
    SimNode& n = nd(d.node);
    if (tell_node && n.up && n.gen == d.node_gen) {
      n.node->close_session(d.sid, reason);
      schedule_flush(n);
    }
    ++result_.reconnects;
    const int di = static_cast<int>(&d - devices_.data());
    sched_.at(now + rng_.range(50, 2000), [this, di] { connect(devices_[di]); });
  }

  void request(Device& d, const ClientRequest& req) {
    std::string bytes = codec_->encode_request(req);
    const int64_t t = clock_.now_ms() + rng_.range(1, 10);
    const SessionId sid = d.sid;
    const int ni = d.node;
    const uint64_t gen = d.node_gen;
    sched_.at(t, [this, sid, ni, gen, bytes = std::move(bytes)] {
      SimNode& n = nd(ni);
      if (!n.up || n.gen != gen || !sid_owner_.count(sid)) return;
      n.node->on_client_frame(sid, bytes.data(), bytes.size());
      schedule_flush(n);
    });
  }

  void schedule_next_send(int di) {
    Device& d = devices_[di];
    if (users_[d.user].groups.empty()) return;
    const bool in_big = d.groups.count(busy_group_) != 0;
    const int64_t mean = in_big ? 2500 : 5000;
    const int64_t t = clock_.now_ms() + rng_.range(mean / 4, mean * 2);
    if (t >= kChaosMs) return;
    sched_.at(t, [this, di] {
      send_one(devices_[di]);
      schedule_next_send(di);
    });
  }

  static SendReq send_req(Device& d, const PendingSend& p) {
    SendReq r{d.next_rid++, p.group, p.cid, p.contents};
    r.entry = p.entry;
    r.epoch = p.epoch;
    return r;
  }

  void send_one(Device& d) {
    const User& u = users_[d.user];
    std::string group = (d.groups.count(busy_group_) && rng_.chance(0.6)) ? busy_group_
                                                                          : u.groups[rng_.below(u.groups.size())];
    if (u.removed.count(group)) return;
    if (config_.read_reports && d.connected && rng_.chance(0.3)) return report_read(d);
    PendingSend p{group, fmt::format("{}#{}", d.name, ++d.sent),
                  fmt::format("hello {} from {}", d.sent, d.name)};
    if (rng_.chance(0.25)) {
      change_of(d, group, &p);
    } else if (rng_.chance(0.15)) {
      reply_in(d, group, &p);
    }
    if (config_.read_reports && p.entry.kind == EntryKind::kMessage && rng_.chance(0.3)) {
      // Mentions for the counts: of members mostly (its author too), now and
      // then of anyone (the append refuses a non-member).
      p.entry.mentions = {mention_in(group), mention_in(group)};
      if (p.entry.mentions[0] == p.entry.mentions[1]) p.entry.mentions.pop_back();
    }
    d.sent_sends[p.cid] = p;
    d.unacked.push_back(p);
    if (d.connected) request(d, send_req(d, p));
  }

  // A user to mention in `group`: one that was ever its member, or one in
  // twenty times anyone.
  const std::string& mention_in(const std::string& group) {
    for (int tries = 0; tries < 20 && !rng_.chance(0.05); ++tries) {
      const User& u = users_[rng_.below(users_.size())];
      if (std::find(u.groups.begin(), u.groups.end(), group) != u.groups.end()) return u.id;
    }
    return users_[rng_.below(users_.size())].id;
  }

  // Makes `p` an edit or delete of one of the user's messages the device
  // holds, or a reaction to any message it holds (the log's rules may still
  // refuse it: another device of the user got there first).
  void change_of(Device& d, const std::string& group, PendingSend* p) {
    auto it = d.groups.find(group);
    if (it == d.groups.end() || it->second.got.empty()) return;
    const Message& m = *it->second.got[rng_.below(it->second.got.size())];
    if (m.entry.kind != EntryKind::kMessage || m.deleted) return;
    p->entry.target = m.msg_id;
    p->epoch = it->second.epoch;
    if (m.user_id == users_[d.user].id && rng_.chance(0.6)) {
      if (rng_.chance(0.3)) {
        p->entry.kind = EntryKind::kDelete;
        p->contents.clear();
      } else {
        p->entry.kind = EntryKind::kEdit;
        p->contents = fmt::format("edit {} by {}", d.sent, d.name);
      }
      return;
    }
    p->entry.kind = EntryKind::kReaction;
    p->contents = rng_.chance(0.5) ? "+1" : "heart";
    p->entry.remove = rng_.chance(0.3);
  }

  // Makes `p` an answer to a message the device holds (deleted or not: both
  // are fine answers), for the folded pages' reply counts.
  void reply_in(Device& d, const std::string& group, PendingSend* p) {
    auto it = d.groups.find(group);
    if (it == d.groups.end() || it->second.got.empty()) return;
    const Message& m = *it->second.got[rng_.below(it->second.got.size())];
    if (m.entry.kind != EntryKind::kMessage) return;
    p->entry.reply_to = m.msg_id;
    p->epoch = it->second.epoch;
  }

  void set_live(GroupView& v, bool live, int64_t now) {
    if (live == v.is_live) return;
    v.is_live = live;
    if (live)
      v.live.push_back({now, INT64_MAX});
    else
      v.live.back().second = now;
  }

  // ---- what a device receives --------------------------------------------------

  void on_event(Device& d, const std::string& frame) {
    Result<ServerEvent> ev = codec_->decode_event(frame.data(), frame.size());
    if (!ev) return violation(fmt::format("{}: undecodable frame: {}", d.name, ev.status().to_string()));
    std::visit([&](const auto& e) { handle(d, e); }, *ev);
  }

  void take(Device& d, GroupView& v, const MessagePtr& m, bool pushed) {
    if (v.epoch == 0) v.epoch = m->epoch;
    if (m->epoch != v.epoch) {
      violation(fmt::format("{}: {}#{} of epoch {} while holding epoch {}, untold", d.name, m->group_id,
                            m->msg_id, m->epoch, v.epoch));
      return;
    }
    if (m->msg_id <= v.cursor) {
      if (pushed)
        violation(
            fmt::format("{}: duplicate push of {}#{} (holds {})", d.name, m->group_id, m->msg_id, v.cursor));
      return;
    }
    if (m->msg_id != v.cursor + 1) {
      violation(fmt::format("{}: hole in {}: got #{} after #{}", d.name, m->group_id, m->msg_id, v.cursor));
      return;
    }
    if (m->entry.kind == EntryKind::kDelete) v.deleted.insert(m->entry.target);
    const uint64_t names = m->entry.kind == EntryKind::kMessage ? m->msg_id : m->entry.target;
    if (m->entry.kind != EntryKind::kDelete && v.deleted.count(names) && !m->contents.empty() &&
        m->entry.kind != EntryKind::kReaction) {
      violation(fmt::format("{}: {}#{} carries text of #{}, taken after its delete", d.name, m->group_id, m->msg_id,
                            names));
    }
    v.cursor = m->msg_id;
    v.got.push_back(m);
    v.got_at.push_back(clock_.now_ms());
    ++result_.deliveries;
  }

  GroupView* view_of(Device& d, const std::string& g) {
    auto it = d.groups.find(g);
    if (it == d.groups.end()) {
      violation(fmt::format("{}: received something of {}, not its group", d.name, g));
      return nullptr;
    }
    return &it->second;
  }

  void handle(Device& d, const MessageEv& e) {
    GroupView* v = view_of(d, e.message->group_id);
    if (!v) return;
    if (after_removal(*v, e.message->epoch, e.message->msg_id)) {
      return violation(fmt::format("{}: removed from {} at #{}, was pushed #{}", d.name, e.message->group_id,
                                   v->removed_head, e.message->msg_id));
    }
    if (!v->removed) take(d, *v, e.message, true);
  }

  void handle(Device& d, const AckEv& e) {
    if ((config_.mutations.ack_before_commit || config_.mutations.ack_before_completion) && e.msg_id == 0) {
      ack_unknown_id_.insert(e.client_msg_id);
    } else {
      // Within one epoch a key means one message; a reset forgets the keys of
      // the history it erased, so a resend after it is a new message.
      auto [it, inserted] = d.acked.emplace(e.client_msg_id, std::make_pair(e.epoch, e.msg_id));
      if (!inserted && it->second.first == e.epoch && it->second.second != e.msg_id) {
        violation(fmt::format("{}: {} acknowledged as #{} and as #{}", d.name, e.client_msg_id,
                              it->second.second, e.msg_id));
      }
      it->second = {e.epoch, e.msg_id};
    }
    acked_cids_[e.client_msg_id] = {e.group_id, e.msg_id, e.epoch};
    auto& un = d.unacked;
    un.erase(
        std::remove_if(un.begin(), un.end(), [&](const PendingSend& p) { return p.cid == e.client_msg_id; }),
        un.end());
  }

  void handle(Device& d, const ResumedEv& e) {
    GroupView* v = view_of(d, e.group_id);
    if (!v || v->removed) return;
    if (v->epoch == 0) v->epoch = e.epoch;
    v->pull_mode = e.mode == DeliveryMode::kPull;
    v->known_head = e.head;
    set_live(*v, true, clock_.now_ms());
    if (v->pull_mode) {
      result_.saw_pull_mode = true;
      pull(d, e.group_id, *v);
    }
  }

  void handle(Device& d, const ModeEv& e) {
    GroupView* v = view_of(d, e.group_id);
    if (!v || v->removed) return;
    v->pull_mode = e.mode == DeliveryMode::kPull;
    v->known_head = std::max(v->known_head, e.head);
    if (v->pull_mode) {
      result_.saw_pull_mode = true;
      pull(d, e.group_id, *v);
    } else {
      request(d, ResumeReq{d.next_rid++, e.group_id, v->cursor, v->epoch});
    }
  }

  void handle(Device& d, const PullHintEv& e) {
    GroupView* v = view_of(d, e.group_id);
    if (!v || v->removed) return;
    v->known_head = std::max(v->known_head, e.head);
    pull(d, e.group_id, *v);
  }

  void handle(Device& d, const PullResultEv& e) {
    GroupView* v = view_of(d, e.group_id);
    if (!v || v->removed) return;
    ++result_.pulls;
    v->pull_in_flight = false;
    for (const MessagePtr& m : e.messages) take(d, *v, m, false);
    v->known_head = std::max(v->known_head, e.head);
    pull(d, e.group_id, *v);
  }

  void pull(Device& d, const std::string& g, GroupView& v) {
    if (!v.pull_mode || v.pull_in_flight || v.known_head <= v.cursor) return;
    v.pull_in_flight = true;
    request(d, PullReq{d.next_rid++, g, v.cursor, 100, v.epoch});
  }

  void handle(Device& d, const ErrorEv& e) {
    // Sends that failed stay in `unacked` and are retried at the next connect;
    // retry a few now too.
    if (e.code == Code::kUnavailable && !e.client_msg_id.empty() && d.connected) {
      for (const PendingSend& p : d.unacked) {
        if (p.cid == e.client_msg_id) {
          const int di = static_cast<int>(&d - devices_.data());
          const SessionId sid = d.sid;
          PendingSend copy = p;
          sched_.at(clock_.now_ms() + rng_.range(20, 200), [this, di, sid, copy] {
            Device& dev = devices_[di];
            if (dev.connected && dev.sid == sid)
              request(dev, send_req(dev, copy));
          });
          return;
        }
      }
      return;
    }
    if (e.code == Code::kUnavailable) return;
    if (e.code == Code::kDeleted || e.code == Code::kAlreadyExists || e.code == Code::kNotFound ||
        e.code == Code::kEpochMismatch) {
      // The log's rules refused a change (another device of the user deleted
      // the message or reacted first, or the group was reset after the
      // device picked its target): given up. Nothing else is refused so.
      // (A change sent twice, on a reconnect and a retry, is refused twice.)
      auto sent = d.sent_sends.find(e.client_msg_id);
      if (sent != d.sent_sends.end() && sent->second.entry.kind != EntryKind::kMessage) {
        ++result_.refused_changes;
        auto& un = d.unacked;
        un.erase(std::remove_if(un.begin(), un.end(),
                                [&](const PendingSend& p) { return p.cid == e.client_msg_id; }),
                 un.end());
        return;
      }
    }
    if (e.code == Code::kInvalidArgument) {
      // A message mentioning a non-member is refused (and given up); the
      // mentioned user must really not be a member now (removals are for good).
      auto sent = d.sent_sends.find(e.client_msg_id);
      if (sent != d.sent_sends.end() && !sent->second.entry.mentions.empty()) {
        bool outsider = false;
        for (const std::string& u : sent->second.entry.mentions) {
          Result<std::optional<Role>> role = admin_membership_->role_of(e.group_id, u);
          outsider = outsider || (role && !role->has_value());
        }
        if (!outsider) {
          return violation(fmt::format("{}: a message mentioning only members refused: {}", d.name, e.message));
        }
        ++result_.refused_mentions;
        auto& un = d.unacked;
        un.erase(std::remove_if(un.begin(), un.end(), [&](const PendingSend& p) { return p.cid == e.client_msg_id; }),
                 un.end());
        return;
      }
    }
    if (e.code == Code::kPermissionDenied && !e.group_id.empty()) {
      // Refused for a group the user was removed from: what it sent there is given up.
      if (GroupView* v = view_of(d, e.group_id); v && v->removed) {
        auto& un = d.unacked;
        un.erase(std::remove_if(un.begin(), un.end(), [&](const PendingSend& p) { return p.group == e.group_id; }),
                 un.end());
        return;
      }
    }
    if (e.code == Code::kEpochMismatch) {  // a pull that crossed an epoch change: EpochEv tells the rest
      if (GroupView* v = view_of(d, e.group_id)) v->pull_in_flight = false;
      return;
    }
    if (e.rid == 0 && e.group_id.empty() && e.code == Code::kBackpressure) {
      ++result_.failure_reports;  // why this user's previous session was cut off
      return;
    }
    violation(fmt::format("{}: unexpected error {} for {}", d.name, Status(e.code, e.message).to_string(),
                          e.group_id));
  }

  // The group's history was reset: keep the old copy aside (it is checked
  // against the history of its own epoch) and start over.
  void handle(Device& d, const EpochEv& e) {
    GroupView* v = view_of(d, e.group_id);
    if (!v || v->removed) return;
    ++result_.epoch_changes;
    if (e.epoch == v->epoch) return;  // told twice (a resume raced the first notice)
    if (e.epoch < v->epoch) {
      return violation(
          fmt::format("{}: told epoch {} of {} while holding {}", d.name, e.epoch, e.group_id, v->epoch));
    }
    if (!v->got.empty()) v->archived.push_back(std::move(v->got));
    v->got.clear();
    v->deleted.clear();
    v->got_at.clear();
    v->cursor = 0;
    v->epoch = e.epoch;
    v->pull_in_flight = false;
    request(d, ResumeReq{d.next_rid++, e.group_id, 0, e.epoch});
  }
  // Read states come only with --reads (asked for, or another device's read).
  void handle(Device& d, const ReadEv& e) {
    if (!config_.read_reports) {
      return violation(fmt::format("{}: read state of {} never asked for", d.name, e.state.group_id));
    }
    ++result_.read_states;
    check_read_state(d, e.state);
  }
  void handle(Device& d, const ReceiptEv& e) {  // devices here never ask for receipts
    violation(fmt::format("{}: read receipt of {} in {}, never asked for", d.name, e.user_id, e.group_id));
  }
  void handle(Device& d, const NotifyEv& e) {  // nor for notification levels
    violation(fmt::format("{}: notification level of {}, never asked for", d.name, e.group_id));
  }
  void handle(Device& d, const UnreadEv& e) {
    if (!config_.read_reports) return violation(fmt::format("{}: unread counts never asked for", d.name));
    for (const ReadState& s : e.groups) check_read_state(d, s);
  }
  void check_read_state(const Device& d, const ReadState& s) {
    const User& u = users_[static_cast<size_t>(d.user)];
    if (std::find(u.groups.begin(), u.groups.end(), s.group_id) == u.groups.end()) {
      return violation(fmt::format("{}: read state of '{}', not its group", d.name, s.group_id));
    }
    if (s.msg_id > s.head || s.unread > s.head - s.msg_id || s.mentions > s.unread) {
      violation(fmt::format("{}: read state of '{}' out of range: id {} head {} unread {} mentions {}", d.name,
                            s.group_id, s.msg_id, s.head, s.unread, s.mentions));
    }
    // The stored position never moves back (a removal forgets it).
    if (u.removed.count(s.group_id)) return;
    Result<ReadPosition> now = admin_membership_->read_position(s.group_id, u.id);
    if (!now) return;
    ReadPosition& last = positions_[{u.id, s.group_id}];
    if (last.later_than(*now)) {
      violation(fmt::format("{}'s read position in '{}' moved back from ({}, {}) to ({}, {})", u.id, s.group_id,
                            last.epoch, last.msg_id, now->epoch, now->msg_id));
    }
    last = *now;
  }

  // --reads: now and then a device reports how far it has read a group it
  // holds (up to its cursor, or a little behind it), or asks for its counts.
  void report_read(Device& d) {
    if (rng_.chance(0.2)) return request(d, UnreadReq{d.next_rid++, {}});
    std::vector<std::pair<std::string, const GroupView*>> held;
    for (const auto& [g, v] : d.groups) {
      if (!v.removed && v.epoch != 0 && v.cursor > 0) held.push_back({g, &v});
    }
    if (held.empty()) return;
    const auto& picked = held[rng_.below(held.size())];
    const GroupView& v = *picked.second;
    const uint64_t upto = v.cursor - std::min<uint64_t>(v.cursor - 1, rng_.below(3));
    ++result_.read_reports;
    request(d, ReadReq{d.next_rid++, picked.first, upto, v.epoch});
  }
  void handle(Device& d, const PresenceEv& e) {
    ++result_.presence_updates;
    if (!d.wants_presence) {
      return violation(fmt::format("{}: presence of {} in {}, never asked for", d.name, e.user_id, e.group_id));
    }
    if (e.user_id == users_[static_cast<size_t>(d.user)].id) {
      return violation(fmt::format("{}: told its own user's presence in {}", d.name, e.group_id));
    }
    if (!view_of(d, e.group_id)) return;
    const auto& groups = users_[static_cast<size_t>(user_index(e.user_id))].groups;
    if (std::find(groups.begin(), groups.end(), e.group_id) == groups.end()) {
      violation(fmt::format("{}: presence of {} in {}, which {} is not a member of", d.name, e.user_id,
                            e.group_id, e.user_id));
    }
  }

 public:
  void on_notification(const Notification& n) {
    ++result_.notifications;
    const int u = user_index(n.user_id);
    if (u < 0) return violation("notification for unknown user " + n.user_id);
    for (int di : users_[static_cast<size_t>(u)].devices) {
      const Device& d = devices_[static_cast<size_t>(di)];
      auto it = d.groups.find(n.group_id);
      if (it == d.groups.end())
        return violation(fmt::format("{} notified of {}, not its group", n.user_id, n.group_id));
      if (after_removal(it->second, n.epoch, n.msg_id)) {
        return violation(fmt::format("{} notified of {}#{}, removed from it at #{}", n.user_id, n.group_id,
                                     n.msg_id, it->second.removed_head));
      }
      if (d.connected && it->second.epoch == n.epoch && it->second.cursor >= n.msg_id) {
        violation(fmt::format("{} notified of {}#{} that live device {} holds", n.user_id, n.group_id,
                              n.msg_id, d.name));
      }
    }
  }

 private:
  int user_index(const std::string& id) const {
    return id.size() > 1 && id[0] == 'u' ? std::atoi(id.c_str() + 1) : -1;
  }
  void handle(Device&, const FellBehindEv&) {}

  // ---- checks ----------------------------------------------------------------

  void violation(std::string what) {
    if (result_.violations.size() < 20)
      result_.violations.push_back(fmt::format("t={} {}", clock_.now_ms(), what));
  }

  void check_final() {
    std::map<std::string, std::vector<Message>> logs;
    std::map<std::string, uint64_t> epochs;
    for (const std::string& g : group_ids_) {
      std::vector<Message>& log = logs[g];
      std::vector<GroupHead> heads;
      if (Status s = admin_messages_->heads({g}, &heads); !s) violation(s.to_string());
      epochs[g] = heads.empty() ? 0 : heads[0].epoch;
      if (Status s = admin_messages_->read(g, 0, 1u << 30, &log); !s) violation(s.to_string());
      std::set<std::pair<std::string, std::string>> seen;
      for (size_t i = 0; i < log.size(); ++i) {
        if (log[i].msg_id != i + 1) violation(fmt::format("store: {} has #{} at {}", g, log[i].msg_id, i));
        if (log[i].entry.kind != EntryKind::kMessage) ++result_.changes;
        if (log[i].entry.kind == EntryKind::kDelete) {
          ++result_.deletes;
          check_erased(g, log, log[i].entry.target);
        }
        if (!log[i].client_msg_id.empty() && !seen.insert({log[i].user_id, log[i].client_msg_id}).second) {
          violation(fmt::format("store: {} stored twice in {}", log[i].client_msg_id, g));
        }
      }
      result_.messages += log.size();
      check_store_folded(g, log);
    }
    // Every acknowledged send is stored with its id.
    for (const auto& [cid, where] : acked_cids_) {
      const auto& [group, id, epoch] = where;
      if (epoch != 0 && epoch < epochs[group]) continue;  // erased by a reset, on purpose
      const std::vector<Message>& log = logs[group];
      if (ack_unknown_id_.count(cid)) {
        bool found =
            std::any_of(log.begin(), log.end(), [&](const Message& m) { return m.client_msg_id == cid; });
        if (!found) violation(fmt::format("acknowledged {} is not in the store", cid));
        continue;
      }
      if (id == 0 || id > log.size() || log[id - 1].client_msg_id != cid) {
        violation(fmt::format("acknowledged {} as {}#{} but the store disagrees", cid, group, id));
      }
    }
    const int64_t end = clock_.now_ms();
    for (Device& d : devices_) {
      for (auto& [g, v] : d.groups) {
        const std::vector<Message>& log = logs[g];
        // Each history a device held is a prefix of the log of its own epoch.
        for (const auto& held : v.archived)
          check_prefix(d, g, held, log_of(g, held.front()->epoch, log, epochs[g]));
        if (!v.got.empty()) check_prefix(d, g, v.got, log_of(g, v.epoch, log, epochs[g]));
        if (d.connected && v.is_live && (v.epoch != epochs[g] && !log.empty())) {
          violation(fmt::format("{}: live in {} at the end in epoch {}, the group is in {}", d.name, g,
                                v.epoch, epochs[g]));
        }
        if (d.connected && v.is_live && !v.removed && v.got.size() != log.size()) {
          violation(fmt::format("{}: live in {} at the end but holds {} of {}", d.name, g, v.got.size(),
                                log.size()));
        } else if (d.connected && v.is_live && !v.removed && v.epoch == epochs[g]) {
          check_folded(d, g, v, log);
        }
        if (!d.stall_exempt) check_bound(d, g, v, log, end);
      }
    }
  }

  const std::vector<Message>& log_of(const std::string& g, uint64_t epoch,
                                     const std::vector<Message>& current, uint64_t current_epoch) {
    static const std::vector<Message> kNone;
    if (epoch == current_epoch) return current;
    auto it = old_logs_.find({g, epoch});
    return it == old_logs_.end() ? kNone : it->second;
  }

  // A delete of `target`: it and its edits are tombstones in the store.
  void check_erased(const std::string& g, const std::vector<Message>& log, uint64_t target) {
    for (const Message& m : log) {
      const bool named = m.msg_id == target || (m.entry.kind == EntryKind::kEdit && m.entry.target == target);
      if (named && (!m.deleted || !m.contents.empty())) {
        violation(fmt::format("store: {}#{} still holds text after #{} was deleted", g, m.msg_id, target));
      }
    }
  }

  // The store's folded pages (read_folded, 13 ids a page) show what folding
  // its log in order shows, for a reader who reacted or not.
  void check_store_folded(const std::string& g, const std::vector<Message>& log) {
    if (log.empty()) return;
    std::vector<const Message*> all;
    for (const Message& m : log) all.push_back(&m);
    const std::map<uint64_t, Folded> want = fold(all);
    const std::string& reader = log.front().user_id;
    uint64_t after = 0;
    for (int pages = 0; after < log.size() && pages < 100000; ++pages) {
      FoldedPage page;
      if (Status s = admin_messages_->read_folded(g, after, 13, reader, &page); !s) return violation(s.to_string());
      if (page.head != log.size() || page.to <= after) {
        return violation(fmt::format("store: {} folded page after {} has head {} and to {}", g, after, page.head,
                                     page.to));
      }
      for (size_t i = 0; i < page.messages.size(); ++i) {
        const Message& m = page.messages[i];
        const Fold& f = page.folds[i];
        if (m.entry.kind != EntryKind::kMessage) continue;
        const Folded& w = want.at(m.msg_id);
        bool same = m.contents == w.contents && m.deleted == w.deleted && f.edited == w.edited &&
                    f.replies == w.replies && f.reactions.size() == w.reactions.size();
        for (const ReactionCount& r : f.reactions) {
          auto it = w.reactions.find(r.key);
          same = same && it != w.reactions.end() && it->second.size() == r.count &&
                 it->second.count(reader) == (r.mine ? 1u : 0u);
        }
        if (!same) {
          violation(fmt::format("store: {}#{} folded as '{}' edited={} replies={} reactions={}, its log says '{}' "
                                "edited={} replies={} reactions={}", g, m.msg_id, m.contents, f.edited, f.replies,
                                f.reactions.size(), w.contents, w.edited, w.replies, w.reactions.size()));
        }
        ++result_.folded_checked;
      }
      after = page.to;
    }
  }

  // A device holding the whole log shows what the store's log shows.
  void check_folded(const Device& d, const std::string& g, const GroupView& v, const std::vector<Message>& log) {
    std::vector<const Message*> held, stored;
    for (const MessagePtr& m : v.got) held.push_back(m.get());
    for (const Message& m : log) stored.push_back(&m);
    const std::string diff = fold_difference(fold(held), fold(stored));
    if (!diff.empty()) violation(fmt::format("{}: {} folded differs from the store: {}", d.name, g, diff));
  }

  void check_prefix(const Device& d, const std::string& g, const std::vector<MessagePtr>& held,
                    const std::vector<Message>& log) {
    if (held.size() > log.size()) {
      return violation(fmt::format("{}: holds {} of {} (epoch {}), only {} stored", d.name, held.size(), g,
                                   held.front()->epoch, log.size()));
    }
    for (size_t i = 0; i < held.size(); ++i) {
      const Message& a = *held[i];
      const Message& b = log[i];
      // A device may hold the text of what was deleted after it got it.
      const bool same_text = b.deleted ? (a.deleted || a.entry.kind == b.entry.kind) : a.contents == b.contents;
      if (a.msg_id != b.msg_id || !same_text || a.user_id != b.user_id || a.epoch != b.epoch ||
          a.entry.kind != b.entry.kind || a.entry.target != b.entry.target || a.entry.remove != b.entry.remove ||
          (a.deleted && !b.deleted)) {
        return violation(
            fmt::format("{}: {}#{} (epoch {}) differs from the store", d.name, g, b.msg_id, a.epoch));
      }
    }
  }

  // Every message committed while the device was live, and that stayed live
  // for kBoundMs after, was received within kBoundMs.
  void check_bound(const Device& d, const std::string& g, const GroupView& v, const std::vector<Message>& log,
                   int64_t end) {
    for (const Message& m : log) {
      auto ct = faults_.commit_time.find({g, m.epoch, m.msg_id});
      if (ct == faults_.commit_time.end()) continue;
      const int64_t t = ct->second;
      if (t + kBoundMs > end) continue;
      bool covered = false;
      for (const auto& [from, to] : v.live) {
        if (from <= t && to >= t + kBoundMs) covered = true;
      }
      if (!covered) continue;
      const size_t i = m.msg_id - 1;
      if (i >= v.got.size() || v.got_at[i] > t + kBoundMs) {
        violation(fmt::format("{}: {}#{} committed at {} not received within {} ms (got {})", d.name, g,
                              m.msg_id, t, kBoundMs,
                              i < v.got.size() ? fmt::format("at {}", v.got_at[i]) : "never"));
        return;
      }
    }
  }

  void accumulate_stats(const SimNode& n) {
    if (!n.node) return;
    const NodeStats& s = n.node->stats();
    result_.mode_switches += s.mode_switches;
    result_.catch_ups += s.catch_ups;
  }

  void fill_result() {
    for (const auto& n : nodes_) accumulate_stats(*n);
    result_.seed = config_.seed;
    result_.nodes = static_cast<int>(nodes_.size());
    result_.users = static_cast<int>(users_.size());
    result_.devices = static_cast<int>(devices_.size());
    result_.groups = static_cast<int>(group_ids_.size());
    result_.store_failures = faults_.failures;
    result_.counts_checked = faults_.counts_checked;
    for (const std::string& e : faults_.count_errors) violation(e);
  }

  SimConfig config_;
  ManualClock clock_{0};
  Random rng_;
  detail::EventQueue sched_;
  // The stores setup and the checker use: the memory stores every node
  // shares, or a connection of their own to the SQLite file.
  std::unique_ptr<MessageStore> memory_messages_;
  std::unique_ptr<MembershipStore> memory_membership_;
  std::unique_ptr<SessionDirectory> memory_directory_;
  std::unique_ptr<SqliteStore> admin_sqlite_;
  MessageStore* admin_messages_ = nullptr;
  MembershipStore* admin_membership_ = nullptr;
  SessionDirectory* admin_directory_ = nullptr;
  StoreFaults faults_;
  std::map<std::pair<std::string, std::string>, ReadPosition> positions_;  // (user, group): last seen stored
  std::shared_ptr<const ClientCodec> codec_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  SimNode& nd(int i) { return *nodes_[static_cast<size_t>(i)]; }
  std::vector<User> users_;
  std::vector<Device> devices_;
  std::vector<std::string> group_ids_;
  std::string busy_group_;
  std::map<SessionId, int> sid_owner_;
  std::map<std::string, std::tuple<std::string, uint64_t, uint64_t>>
      acked_cids_;  // cid -> (group, id, epoch)
  std::map<std::pair<std::string, uint64_t>, std::vector<Message>>
      old_logs_;  // (group, epoch) before a reset
  std::set<std::string> ack_unknown_id_;
  std::set<std::pair<int, int>> cuts_;
  SessionId next_sid_ = 1;
  double loss_ = 0;
  int64_t max_delay_ = 0;
  BatchingForwarder::Mode forward_mode_ = BatchingForwarder::Mode::kAdaptive;
  bool async_store_ = false;      // appends and reads go through the node's StoreExecutor
  int64_t store_latency_ms_ = 0;  // the most one append or read job takes
  size_t forward_max_bytes_ = 0;  // 0: the default
  double same_node_ = 0;         // chance a device joins another device of its user on its node
  SimResult result_;
};

void CheckingNotifier::notify(const Notification& n) {
  world->on_notification(n);
}

void SimNode::send_to_session(SessionId session, const std::vector<Frame>& frames) {
  world->on_frames(*this, session, frames);
}
void SimNode::close_session(SessionId session, const Status&) {
  world->on_close(*this, session);
}
void SimNode::send_to_node(const std::string& node_id, uint64_t call_id, const Frame& batch) {
  world->on_send_to_node(*this, node_id, call_id, batch);
}
void SimNode::set_timer(int64_t at_ms) {
  world->on_set_timer(*this, at_ms);
}

void SimNode::append(AppendJob job) {
  world->on_append(*this, std::move(job));
}

void SimNode::read(ReadJob job) {
  world->on_read(*this, std::move(job));
}

void SimNode::lookup(LookupJob job) {
  world->on_lookup(*this, std::move(job));
}

void SimNode::run(StoreJob job) {
  world->on_store_job(*this, std::move(job));
}

}  // namespace

std::string SimResult::summary() const {
  return fmt::format(
      "seed {}: {} nodes, {} users, {} devices, {} groups (largest {}), {} messages, {} deliveries, {} "
      "crashes, "
      "{} partitions, {} reconnects, {} dup resends, {} store failures, {} catch-ups, {} mode switches{}, {} "
      "pulls, "
      "{} cut off ({} told on reconnect), {} resets ({} devices told), {} notifications, {} presence updates, "
      "{} removals, {} append jobs, {} read jobs, {} lookups, {} store jobs ({} completions lost to crashes), "
      "{} edits/deletes/reactions ({} deletes, {} refused by the log's rules), {} read reports ({} read "
      "states, {} counts checked, {} sends refused for mentioning a non-member), {} messages of folded pages "
      "checked -> {}",
      seed, nodes, users, devices, groups, largest_group, messages, deliveries, crashes, partitions,
      reconnects, dup_resends, store_failures, catch_ups, mode_switches, saw_pull_mode ? " (pull seen)" : "",
      pulls, fell_behind, failure_reports, resets, epoch_changes, notifications, presence_updates, removals, append_jobs,
      read_jobs, lookup_jobs, store_jobs, completions_lost, changes, deletes, refused_changes, read_reports,
      read_states, counts_checked, refused_mentions, folded_checked, violations.empty() ? "ok" : fmt::format("{} VIOLATIONS", violations.size()));
}

SimResult run_simulation(const SimConfig& config) {
  World world(config);
  return world.run();
}

}  // namespace parley::sim
