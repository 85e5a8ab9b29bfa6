// parley_store: the three stores a node runs on (messages, membership,
// session directory), memory or SQLite, shared by the store handle and every
// node created on it (a node keeps them alive after parley_store_close).
#pragma once

#include <memory>

#include "handle.hpp"
#include "parley/node.hpp"
#include "parley/sqlite_store.hpp"
#include "parley/store.hpp"

namespace parley::capi {

struct Stores {
  std::unique_ptr<MessageStore> own_messages;
  std::unique_ptr<MembershipStore> own_membership;
  std::unique_ptr<SessionDirectory> own_directory;
  std::unique_ptr<SqliteStore> sqlite;
  MessageStore* messages = nullptr;
  MembershipStore* membership = nullptr;
  SessionDirectory* directory = nullptr;

  NodeStores node_stores() const { return NodeStores{*messages, *membership, *directory}; }
};

}  // namespace parley::capi

struct parley_store final : parley::capi::Handle {
  static constexpr parley::capi::Kind kKind = parley::capi::Kind::kStore;
  explicit parley_store(std::shared_ptr<parley::capi::Stores> s) : Handle(kKind), stores(std::move(s)) {}
  std::shared_ptr<parley::capi::Stores> stores;
};
