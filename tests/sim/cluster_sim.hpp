// Deterministic cluster simulation: several Nodes, their clients and a lossy,
// reordering, partitionable network between them, all on virtual time in one
// process, driven by one seed.
//
// The checker asserts, for every client device and group:
//  - pushed messages arrive exactly in msg_id order (no hole, no duplicate);
//    pull answers are contiguous;
//  - what a device holds equals a prefix of the group's stored log;
//  - every acknowledged send is in the store, once, with the acknowledged id;
//  - no (user, client_msg_id) is stored twice;
//  - every device live in a group from a message's commit time until
//    `bound_ms` later received it by then (delivery-time bound);
//  - at the end, every connected device holds its groups' whole logs;
//  - edits, deletes and reactions: a device never takes text of a message
//    after taking its delete; every message a delete names, and its edits,
//    are tombstones in the store; and what a device that holds a group's
//    whole log shows once folded (fold.hpp) equals the store's folded log,
//    whatever text it received before a delete.
//  - with read_reports (--reads): every unread count a store gives equals a
//    brute-force count over its log (reads.hpp), every read state a device
//    is told is of its user's group and in range, and a stored read
//    position never moves back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parley/node.hpp"

namespace parley::sim {

struct SimConfig {
  uint64_t seed = 1;
  detail::Mutations mutations;
  // Empty: the memory stores. Otherwise a fresh SQLite file every node opens
  // its own connection to, as separate processes would.
  std::string sqlite_path;
  // End the run at the first violation (a mutant needs only one; a broken
  // node can keep a world busy for long after it).
  bool stop_at_first_violation = false;
  // Devices report reads and ask for unread counts; every count a store
  // gives is checked against a brute-force count, and stored read
  // positions never move back (off by default: it changes every seed's
  // course of events).
  bool read_reports = false;
};

struct SimResult {
  uint64_t seed = 0;
  std::vector<std::string> violations;  // empty: passed
  // What happened, for the summary line.
  int nodes = 0, users = 0, devices = 0, groups = 0, largest_group = 0;
  uint64_t messages = 0, deliveries = 0, crashes = 0, partitions = 0, reconnects = 0;
  uint64_t mode_switches = 0, pulls = 0, catch_ups = 0, dup_resends = 0, fell_behind = 0;
  uint64_t store_failures = 0, notifications = 0, presence_updates = 0, failure_reports = 0, resets = 0, epoch_changes = 0;
  uint64_t changes = 0, refused_changes = 0, deletes = 0;
  uint64_t read_reports = 0, read_states = 0, counts_checked = 0, refused_mentions = 0, folded_checked = 0;
  uint64_t removals = 0, append_jobs = 0, read_jobs = 0, lookup_jobs = 0, store_jobs = 0, completions_lost = 0;
  bool saw_pull_mode = false;
  std::string summary() const;
};

SimResult run_simulation(const SimConfig& config);

}  // namespace parley::sim
