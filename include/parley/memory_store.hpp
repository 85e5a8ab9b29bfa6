// In-memory implementations of the storage interfaces: for tests, the
// deterministic simulation and examples. They keep the exact semantics of the
// durable stores (dense ids, atomic batches, dedup, epochs, expiry) and lose
// everything when destroyed. Not thread-safe.
#pragma once

#include <memory>

#include "parley/store.hpp"

namespace parley {

std::unique_ptr<MessageStore> make_memory_message_store();
std::unique_ptr<MembershipStore> make_memory_membership_store();
std::unique_ptr<SessionDirectory> make_memory_session_directory();

}  // namespace parley
