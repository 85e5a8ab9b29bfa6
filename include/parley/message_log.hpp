// MessageLog: a node's in-memory tail of each group's history, over the
// MessageStore.
//
// It keeps the newest tail_per_group messages of every group the node
// follows, each with its client frame encoded once, so live fan-out, resumes
// of recent history and pulls in pull mode are served without a store read.
// Anything older (or not cached) is read from the store. Entries are appended
// strictly in order; a message that does not follow the cached tail restarts
// the tail at that message.
//
// Not thread-safe; the store must outlive the log.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/message.hpp"
#include "parley/protocol.hpp"
#include "parley/store.hpp"

namespace parley {

class MessageLog {
 public:
  struct Entry {
    MessagePtr message;
    Frame frame;  // the encoded MessageEv; may be null until someone needs it
  };
  struct Stats {
    uint64_t cache_reads = 0;
    uint64_t store_reads = 0;
  };

  MessageLog(MessageStore& store, size_t tail_per_group) : store_(store), tail_per_group_(tail_per_group) {}

  // Adds the next message of its group (msg_id == cached head + 1, or the
  // tail restarts there).
  void append(Entry entry);
  // Up to `limit` entries with msg_id > after, from the cache when it covers
  // `after + 1`, else from the store (those come back with a null frame).
  Status read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Entry>* out);
  // The cache's part of read(): true when the cache answers for `after + 1`
  // (the entries it holds, possibly none when `after` is at or past the
  // cached head); false when the range must come from the store.
  bool read_cached(const std::string& group_id, uint64_t after, size_t limit, std::vector<Entry>* out);
  // Whether read_cached would answer for `after + 1`.
  bool covers(const std::string& group_id, uint64_t after) const;
  // Newest cached msg_id of the group, 0 if none.
  uint64_t cached_head(const std::string& group_id) const;
  void forget(const std::string& group_id) { tails_.erase(group_id); }
  // A delete of message `target`: the cached message and its cached edits
  // become tombstones (erase_contents), their frames encoded again when asked.
  void erase(const std::string& group_id, uint64_t target);
  const Stats& stats() const { return stats_; }

 private:
  MessageStore& store_;
  size_t tail_per_group_;
  std::unordered_map<std::string, std::deque<Entry>> tails_;
  Stats stats_;
};

}  // namespace parley
