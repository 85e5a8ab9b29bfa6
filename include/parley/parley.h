/* parley.h: the C API of Parley, an embeddable group-chat engine.
 *
 * Three things can be done through it: embed a node (the engine of one chat
 * server) in a host that owns its own sockets and loop; run the bundled chat
 * server (parley-server: WebSocket + HTTP) in-process on a thread of its own;
 * and administer a store (create groups, join, leave, read history).
 * Python (ctypes) and Node (Node-API) bindings are thin layers over this file.
 *
 * Conventions
 *
 * 1. Handles. parley_node, parley_store, parley_server and the two options
 *    types are opaque handles, made by a create/open/start function and
 *    released by the matching destroy/close function. Releasing NULL is a
 *    no-op that returns PARLEY_OK. Releasing a handle twice, or calling any
 *    function on a released handle, returns PARLEY_ERR_CLOSED: the library
 *    keeps a table of live handles and never reads a released one. What
 *    stays undefined: once released, a handle's address may be reused by a
 *    later create, after which the stale pointer reaches the new object.
 *    Forget a handle when you release it.
 *
 * 2. Errors. Every function returns an int: PARLEY_OK (0) or one of the
 *    PARLEY_ERR_* codes below, except the few documented to return something
 *    else (parley_version, parley_version_string, parley_strerror,
 *    parley_errmsg, parley_messages_free). The codes are the values of
 *    parley::Code (include/parley/status.hpp): stable, appended to, never
 *    renumbered. parley_strerror(code) names a code. parley_errmsg(handle)
 *    is the message of the most recent call on that handle ("" after a
 *    success). A call that fails without a live handle to keep its message
 *    (a create, a NULL or released handle, parley_node_post) keeps it per
 *    thread: read it with parley_errmsg(NULL). A failed call changes nothing
 *    and sets no output parameter.
 *
 * 3. Ownership. Strings and buffers passed in are copied or used only during
 *    the call; the caller keeps them. Options handles are copied at create,
 *    so they may be destroyed right after. What the library hands out is
 *    owned by the library unless a function says otherwise; the one owned
 *    result, a history array, is freed with parley_messages_free. Every
 *    callback is registered with a `void* user_data` and an optional
 *    parley_free_fn: from a successful registration the library owns
 *    user_data and calls free_fn(user_data) exactly once, when the callback
 *    is replaced or the node is destroyed (for a posted function: after it
 *    ran, or when it is dropped). A registration that fails takes nothing.
 *    free_fn runs on the thread that replaces the callback, destroys the
 *    node, or runs (or drops) the posted function.
 *
 * 4. Lifetimes. Strings, structs and byte buffers passed to a callback are
 *    valid only during that call; copy what you keep. Strings returned by
 *    parley_errmsg are valid until the next call on the same handle (NULL:
 *    on the same thread). A store stays alive while a node uses it, even
 *    after parley_store_close.
 *
 * 5. Threads. A node, and the store it runs on, are used from one thread at
 *    a time: the node's thread, normally the host's loop. Every callback of
 *    a node runs on that thread, inside the parley_node_* call that caused
 *    it, except the wakeup callback (see 6). A callback must not call back
 *    into its own node (such a call fails with PARLEY_ERR_INVALID_ARGUMENT
 *    and does nothing); queue the work and return, or use parley_node_post.
 *    The one function safe from any thread is parley_node_post. A server
 *    runs on a thread of its own; its handle is used from one thread at a
 *    time. Options and store handles follow the same one-thread-at-a-time
 *    rule; different handles may be used from different threads.
 *
 * 6. Posting. parley_node_post(node, fn, ...) queues fn and returns; the
 *    node's thread runs queued functions, in order, at its next
 *    parley_node_run_posted or parley_node_flush. A posted function may
 *    call any function of its node except parley_node_destroy. To learn
 *    that something was posted, register a wakeup callback: it runs on the
 *    posting thread, inside parley_node_post, so it must be thread-safe,
 *    must not block and must not call the library (signal your loop and
 *    return). Destroying a node drops what was posted and not yet run,
 *    calling the free functions; a post racing with the destroy fails with
 *    PARLEY_ERR_CLOSED and takes nothing.
 *
 * 7. Types. Fixed-width integers; payloads as (const void*, size_t); ids as
 *    NUL-terminated UTF-8; no struct passed by value; no enum types (the
 *    constants are macros). parley_notification, which the library
 *    allocates and passes by pointer, may gain fields at its end in a later
 *    minor version. parley_message comes in arrays indexed by its size, so
 *    its layout changes only with the major version.
 *
 * Version: the PARLEY_VERSION_* macros describe this header; parley_version()
 * returns the library's PARLEY_VERSION_NUMBER. Compare them to detect a
 * header/library mismatch.
 */
#ifndef PARLEY_PARLEY_H_
#define PARLEY_PARLEY_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#else
#define PARLEY_EXPORT
#endif

/* Identical to include/parley/version.hpp (a build check keeps them equal). */
#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0
#define PARLEY_VERSION_STRING "0.1.0"
#define PARLEY_VERSION_NUMBER \
  (PARLEY_VERSION_MAJOR * 10000 + PARLEY_VERSION_MINOR * 100 + PARLEY_VERSION_PATCH)

/* ---- error codes (== parley::Code; never renumbered) ---------------------- */

#define PARLEY_OK 0
#define PARLEY_ERR_INVALID_ARGUMENT 1  /* malformed or out-of-limits input; misuse */
#define PARLEY_ERR_NOT_FOUND 2         /* unknown group, session or item */
#define PARLEY_ERR_PERMISSION_DENIED 3 /* not a member / not allowed */
#define PARLEY_ERR_ALREADY_EXISTS 4    /* create of something that exists */
#define PARLEY_ERR_TOO_LARGE 5         /* payload or id over its limit */
#define PARLEY_ERR_UNAVAILABLE 6       /* store, peer or server unreachable; retry later */
#define PARLEY_ERR_TIMEOUT 7           /* a bounded wait ran out */
#define PARLEY_ERR_EPOCH_MISMATCH 8    /* the group's history was reset; resync */
#define PARLEY_ERR_BACKPRESSURE 9      /* a bounded queue is full */
#define PARLEY_ERR_CORRUPTION 10       /* stored data failed a check */
#define PARLEY_ERR_INTERNAL 11         /* a bug or out of memory; the message says where */
#define PARLEY_ERR_UNAUTHENTICATED 12  /* missing, bad or expired credentials */
#define PARLEY_ERR_CLOSED 13           /* the handle was released */
#define PARLEY_ERR_HISTORY_TRIMMED 14  /* the history asked for was removed by retention */
#define PARLEY_ERR_LIMIT_EXCEEDED 15   /* a per-user limit (send rate, connections, groups) */
#define PARLEY_ERR_DELETED 16          /* the message named was deleted */

/* The library's PARLEY_VERSION_NUMBER (not an error code). */
PARLEY_EXPORT int parley_version(void);
/* The library's PARLEY_VERSION_STRING. Static; never NULL. */
PARLEY_EXPORT const char* parley_version_string(void);
/* The stable short name of a code, e.g. "not_found" (the names the chat
 * protocol uses). "unknown" for a value that is no code. Static; never NULL. */
PARLEY_EXPORT const char* parley_strerror(int code);
/* The message of the most recent call on `handle` (any parley handle), ""
 * after a success. For NULL or a released handle: the message of the most
 * recent call on this thread that failed without a live handle. Never NULL;
 * valid until the next call on the same handle (or thread). */
PARLEY_EXPORT const char* parley_errmsg(const void* handle);

/* ---- types ---------------------------------------------------------------- */

typedef struct parley_node_options parley_node_options;
typedef struct parley_node parley_node;
typedef struct parley_store parley_store;
typedef struct parley_server_options parley_server_options;
typedef struct parley_server parley_server;

/* One frame: bytes of the node's client codec. */
typedef struct parley_bytes {
  const void* data;
  size_t size;
} parley_bytes;

/* A best-effort offline notification: `user_id` missed message `msg_id` of
 * `group_id` from `sender_id`. `preview` is the first bytes of the contents
 * (never a cut UTF-8 character), NUL-terminated, `preview_size` bytes
 * without the NUL. `reason` is "offline" or why the user's session failed.
 * `mentioned` is 1 when the message mentions the user, else 0. Only members
 * whose notification level lets it through are notified
 * (parley_store_set_notify_level). */
typedef struct parley_notification {
  const char* user_id;
  const char* group_id;
  uint64_t epoch;
  uint64_t msg_id;
  const char* sender_id;
  const char* preview;
  size_t preview_size;
  const char* reason;
  int mentioned;
} parley_notification;

/* One stored message. `contents` is UTF-8 text (nodes take nothing else:
 * docs/decisions.md 37), followed by a NUL not counted in `contents_size`,
 * so it can be printed as it is. */
typedef struct parley_message {
  const char* group_id;
  uint64_t msg_id; /* 1, 2, 3 ... per group and epoch */
  uint64_t prev_msg_id;
  int64_t timestamp_ms; /* server clock at append, Unix ms */
  const char* user_id;  /* the sender */
  const void* contents;
  size_t contents_size;
  const char* client_msg_id; /* "" when the sender gave none */
  uint64_t epoch;
} parley_message;

/* What a log entry is (docs/protocol.md 2.1: every change to a group is an
 * entry with its own id). */
#define PARLEY_ENTRY_MESSAGE 0  /* a message */
#define PARLEY_ENTRY_EDIT 1     /* new contents for message `target`, by its author */
#define PARLEY_ENTRY_DELETE 2   /* erases message `target` */
#define PARLEY_ENTRY_REACTION 3 /* adds (or, `removed`, takes back) reaction `contents` on `target` */
#define PARLEY_ENTRY_JOIN 4     /* user_id joined */
#define PARLEY_ENTRY_LEAVE 5    /* user_id left */
#define PARLEY_ENTRY_REMOVED 6  /* user_id removed member `contents` */
#define PARLEY_ENTRY_SYSTEM 7   /* a notice from the app (parley_node_record_system) */

/* One reaction key on a message of a folded read, and how many gave it. */
typedef struct parley_reaction {
  const char* key;
  uint64_t count;
  int mine; /* the reader is one of them */
} parley_reaction;

/* A log entry with all of its fields, as parley_store_entries reads it. */
typedef struct parley_entry {
  parley_message message; /* contents: for a folded message, its latest */
  int kind;               /* PARLEY_ENTRY_* */
  uint64_t target;        /* edit, delete, reaction: the message it changes (else 0) */
  uint64_t reply_to;      /* a message: the message it answers (0: none) */
  const char* const* mentions; /* a message: the user ids it mentions */
  size_t mention_count;
  const char* meta;       /* a message: the app's JSON object as text ("" for none) */
  int deleted;            /* a tombstone: erased by a delete */
  int removed;            /* a reaction taken back */
  /* Folded reads only (else 0): */
  uint64_t edited;        /* the latest edit's id, whose contents `message` shows */
  uint64_t replies;       /* messages answering this one, not deleted */
  const parley_reaction* reactions; /* the reactions in force, sorted by key */
  size_t reaction_count;
} parley_entry;

/* A page of a group's log from parley_store_entries. Allocated by the
 * library (may gain fields at its end in a later minor version). */
typedef struct parley_entry_page {
  uint64_t epoch; /* 0: no such history yet */
  uint64_t head;  /* the group's newest id; a folded page is folded as of it */
  uint64_t to;    /* the page covers ids (after, to]: read on from `to` while to < head */
  parley_entry* entries;
  size_t count;
} parley_entry_page;

/* Frees user_data handed to the library with a callback. */
typedef void (*parley_free_fn)(void* user_data);

/* ---- node options ---------------------------------------------------------- */

/* Client codecs: what parley_node_client_request reads and deliver writes. */
#define PARLEY_CODEC_MSGPACK 0 /* binary frames; docs/protocol-core.md */
#define PARLEY_CODEC_JSON 1    /* JSON text frames; docs/protocol.md section 2 */

/* Forwarding between nodes (see docs/decisions.md). */
#define PARLEY_FORWARD_ADAPTIVE 0 /* send when the link is idle, batch while busy */
#define PARLEY_FORWARD_FIXED 1    /* batch every period, random phase and jitter */

/* Makes options with the defaults: node id "node-1", msgpack codec,
 * adaptive forwarding, the limits of parley::Limits. Release with
 * parley_node_options_destroy. */
PARLEY_EXPORT int parley_node_options_create(parley_node_options** out);
PARLEY_EXPORT int parley_node_options_destroy(parley_node_options* options);
/* This node's id in the cluster: the name peers use in send_batch. */
PARLEY_EXPORT int parley_node_options_set_node_id(parley_node_options* options, const char* node_id);
/* PARLEY_CODEC_MSGPACK or PARLEY_CODEC_JSON. */
PARLEY_EXPORT int parley_node_options_set_codec(parley_node_options* options, int codec);
/* PARLEY_FORWARD_*; period_ms is the fixed mode's period (0: keep, 50 by default). */
PARLEY_EXPORT int parley_node_options_set_forward(parley_node_options* options, int mode, int64_t period_ms);
/* Input limits; 0 keeps a value. Defaults: ids 128 bytes, contents 64 KiB,
 * 4096 messages per peer batch, 1000 messages per read. */
PARLEY_EXPORT int parley_node_options_set_limits(parley_node_options* options, uint64_t max_id_bytes,
                                                 uint64_t max_contents_bytes, uint64_t max_batch_messages,
                                                 uint64_t max_read_limit);
/* Unwritten bytes a session may have before it is told it fell behind and
 * closed (default 1 MiB). Writes count as done when reported with
 * parley_node_session_drained. */
PARLEY_EXPORT int parley_node_options_set_session_queue_bytes(parley_node_options* options, uint64_t bytes);
/* Groups with at least min_members members switch to pull mode above
 * enter_rate messages/s and back below exit_rate (defaults 100, 20, 5). */
PARLEY_EXPORT int parley_node_options_set_pull_policy(parley_node_options* options, uint64_t min_members,
                                                      double enter_rate, double exit_rate);
/* Seed of the node's random phases and jitter (default 1). */
PARLEY_EXPORT int parley_node_options_set_seed(parley_node_options* options, uint64_t seed);

/* ---- stores ---------------------------------------------------------------- */

/* In-memory stores (messages, membership, session directory): for tests and
 * single-process hosts; everything is lost when the last user releases it. */
PARLEY_EXPORT int parley_store_open_memory(parley_store** out);

/* Flags of parley_store_open_sqlite. */
#define PARLEY_SQLITE_SYNC_NORMAL 1 /* no fsync per commit: a power loss may lose the last commits */

/* Opens (creating or migrating) the SQLite database at `path`. Several
 * processes may open one file. By default every commit is fsynced. Fails
 * with the store's code, and a message naming the file, if it cannot be
 * opened. */
PARLEY_EXPORT int parley_store_open_sqlite(const char* path, uint32_t flags, parley_store** out);
/* Releases the handle. Nodes created on the store keep it open until they
 * are destroyed. */
PARLEY_EXPORT int parley_store_close(parley_store* store);

/* Admin helpers. Like a node, they run on the calling thread: call them on
 * the thread of the nodes using the store (or from a posted function). */

/* Creates `group_id` with `owner_id` as its owner and first member.
 * PARLEY_ERR_ALREADY_EXISTS if it exists. */
PARLEY_EXPORT int parley_store_create_group(parley_store* store, const char* group_id, const char* owner_id);
/* Makes `user_id` a member of `group_id` as the host (no invite needed,
 * even to a private group); a member already is left as is (an owner stays
 * owner). PARLEY_ERR_NOT_FOUND if there is no such group,
 * PARLEY_ERR_LIMIT_EXCEEDED if it has member_limit members. */
PARLEY_EXPORT int parley_store_join(parley_store* store, const char* group_id, const char* user_id);

/* Group kinds and settings (docs/protocol.md 3, "Groups"; decision 56). */
#define PARLEY_GROUP_PUBLIC 0  /* anyone joins by asking */
#define PARLEY_GROUP_PRIVATE 1 /* joining needs an invite, or the host's join */

/* A group's settings and member count. As an argument only kind, title,
 * topic and member_limit are read (NULL title or topic: ""). */
typedef struct parley_group_info {
  const char* group_id;
  int kind;              /* PARLEY_GROUP_PUBLIC or PARLEY_GROUP_PRIVATE */
  const char* title;     /* at most 200 bytes, UTF-8 without control characters */
  const char* topic;     /* at most 1000 bytes, likewise */
  uint32_t member_limit; /* 0: none; at most 1000000 */
  uint64_t members;      /* how many members it has */
} parley_group_info;

/* Creates `group_id` as parley_store_create_group does, with `settings`
 * (NULL: public, untitled, unlimited). PARLEY_ERR_INVALID_ARGUMENT or
 * PARLEY_ERR_TOO_LARGE for bad settings. */
PARLEY_EXPORT int parley_store_create_group_with(parley_store* store, const char* group_id, const char* owner_id,
                                                 const parley_group_info* settings);
/* The group's settings and member count: *out is one parley_group_info owned
 * by the caller, freed with parley_group_infos_free. PARLEY_ERR_NOT_FOUND
 * if there is no such group. */
PARLEY_EXPORT int parley_store_group_info(parley_store* store, const char* group_id, parley_group_info** out);
/* Replaces the group's settings (kind, title, topic, member_limit of
 * `settings`). A limit below the members there are keeps them and refuses
 * joins. The store records no log entry: a host records the change with
 * parley_node_record_system (parley-server's is by the one who changed it,
 * with meta {"event":"settings",...}). */
PARLEY_EXPORT int parley_store_set_group_settings(parley_store* store, const char* group_id,
                                                  const parley_group_info* settings);
/* Lets `user_id` join the (private) group by asking, once: the invite is
 * spent by the join. A member is left as is. PARLEY_ERR_NOT_FOUND if there
 * is no such group. */
PARLEY_EXPORT int parley_store_invite(parley_store* store, const char* group_id, const char* user_id);
/* `user_id` asks to join `group_id`, by the group's rules, checked in one
 * step with the join: PARLEY_ERR_PERMISSION_DENIED for a private group
 * without an invite, PARLEY_ERR_LIMIT_EXCEEDED at its member limit,
 * PARLEY_ERR_NOT_FOUND for no such group. A member already is left as is. */
PARLEY_EXPORT int parley_store_ask_to_join(parley_store* store, const char* group_id, const char* user_id);
/* Discovery: the public groups whose id starts with `prefix` (NULL or "":
 * any) and sorts after `after` (NULL or "": from the first), in id order,
 * at most `limit` (1..1000). On success *out is an array of *count infos
 * owned by the caller, freed with parley_group_infos_free (NULL when
 * *count is 0); the next page starts after the last one's group_id. */
PARLEY_EXPORT int parley_store_public_groups(parley_store* store, const char* prefix, const char* after,
                                             uint32_t limit, parley_group_info** out, size_t* count);
/* Frees what parley_store_group_info or parley_store_public_groups
 * returned. NULL is a no-op. */
PARLEY_EXPORT void parley_group_infos_free(parley_group_info* infos);
/* Removes `user_id` from `group_id`. PARLEY_ERR_NOT_FOUND if not a member.
 * Live sessions stop receiving the group at their next resume; call
 * parley_node_member_removed on each node to cut them off at once (a node
 * trusts a membership it read for up to 10 s, so one not told still accepts
 * the removed member's sends until then). */
PARLEY_EXPORT int parley_store_leave(parley_store* store, const char* group_id, const char* user_id);
/* Reads up to `limit` (1..1000) messages of `group_id` with msg_id > after,
 * oldest first. With `as_user` non-NULL only a member may read
 * (PARLEY_ERR_PERMISSION_DENIED otherwise); NULL reads as an administrator.
 * PARLEY_ERR_NOT_FOUND for an unknown group. On success *out is an array of
 * *count messages owned by the caller, to be freed with parley_messages_free
 * (NULL when *count is 0). */
PARLEY_EXPORT int parley_store_history(parley_store* store, const char* group_id, const char* as_user,
                                       uint64_t after, uint32_t limit, parley_message** out, size_t* count);
/* Frees an array returned by parley_store_history. NULL is a no-op. */
PARLEY_EXPORT void parley_messages_free(parley_message* messages);
/* Reads the entries of `group_id` with ids in (after, after + limit]
 * (limit 1..1000) with every field: kinds, targets, replies, mentions,
 * meta, tombstones. With `fold` non-zero the page is folded
 * (docs/protocol.md 2.1, "Folded history"): only messages and membership
 * entries are listed, each message with its latest contents and the
 * fields `edited`, `replies` and `reactions` (`mine` for `as_user`'s own)
 * as of the page's head. `as_user` as in parley_store_history. On success
 * *out is a page owned by the caller, to be freed with
 * parley_entry_page_free. */
PARLEY_EXPORT int parley_store_entries(parley_store* store, const char* group_id, const char* as_user, uint64_t after,
                                       uint32_t limit, int fold, parley_entry_page** out);
/* Frees a page returned by parley_store_entries. NULL is a no-op. */
PARLEY_EXPORT void parley_entry_page_free(parley_entry_page* page);

/* A user's read state in one group (docs/protocol.md 2.1): read up to
 * msg_id of epoch (0: nothing read, or a position of an older epoch);
 * `unread` messages after it from others and not deleted, `mentions` of
 * them naming the user; counted up to `head`. */
typedef struct parley_read_state {
  const char* group_id;
  uint64_t epoch;
  uint64_t msg_id;
  uint64_t head;
  uint64_t unread;
  uint64_t mentions;
} parley_read_state;

/* The read state of `user_id` in each of its groups, sorted by group id
 * (what a badge list shows). On success *out is an array of *count states
 * owned by the caller, to be freed with parley_read_states_free (NULL when
 * *count is 0). */
PARLEY_EXPORT int parley_store_read_states(parley_store* store, const char* user_id, parley_read_state** out,
                                           size_t* count);
/* Moves the read position of `user_id` in `group_id` forward to msg_id of
 * epoch (never back: a report behind it changes nothing; an id past the
 * head counts as the head) and writes the state in force afterwards to *out
 * (its group_id is the argument's pointer). PARLEY_ERR_EPOCH_MISMATCH if
 * `epoch` is not the group's, PARLEY_ERR_NOT_FOUND if the user is not a
 * member. The user's live sessions are not told: a client reports its reads
 * with the "read" request, which tells the user's other sessions. */
PARLEY_EXPORT int parley_store_mark_read(parley_store* store, const char* group_id, const char* user_id,
                                         uint64_t epoch, uint64_t msg_id, parley_read_state* out);
/* Frees an array returned by parley_store_read_states. NULL is a no-op. */
PARLEY_EXPORT void parley_read_states_free(parley_read_state* states);

/* Notification levels (docs/protocol.md 2.1): which offline notifications a
 * member gets for a group. */
#define PARLEY_NOTIFY_ALL 0      /* every message from others (the default) */
#define PARLEY_NOTIFY_MENTIONS 1 /* only messages that mention the member */
#define PARLEY_NOTIFY_NONE 2     /* none */

/* Sets the notification level of `user_id` in `group_id` (one of the
 * PARLEY_NOTIFY_* values, else PARLEY_ERR_INVALID_ARGUMENT). Stored with
 * the membership: kept across a role change, forgotten on leaving.
 * PARLEY_ERR_NOT_FOUND if the user is not a member. The user's live
 * sessions are not told (a client sets it with the "notify" request, which
 * tells its other sessions). */
PARLEY_EXPORT int parley_store_set_notify_level(parley_store* store, const char* group_id, const char* user_id,
                                                int level);
/* Writes the notification level of `user_id` in `group_id` to *level.
 * PARLEY_ERR_NOT_FOUND if the user is not a member. */
PARLEY_EXPORT int parley_store_notify_level(parley_store* store, const char* group_id, const char* user_id,
                                            int* level);

/* ---- embedding a node --------------------------------------------------------
 *
 * The node does no I/O and starts no threads. The host feeds it events
 * (sessions opening and closing, client frames, peer batches and results,
 * timers) and it acts through the callbacks below. A typical turn of the
 * host's loop: feed what arrived, then parley_node_flush, which runs posted
 * functions, commits every queued send in one store transaction (group
 * commit), fans out, and calls deliver once per session with its frames.
 *
 * Lifecycle: parley_node_create, register callbacks, parley_node_start,
 * feed events, parley_node_destroy. Callbacks may be replaced at any time
 * except from inside a callback of the same node.
 */

/* Writes `count` frames to client session `session`, in order (as one write
 * if the transport can). Report written bytes with parley_node_session_drained:
 * that is the backpressure signal. */
typedef void (*parley_deliver_fn)(void* user_data, uint64_t session, const parley_bytes* frames,
                                  size_t count);
/* The node gave up on a session (it fell behind: code PARLEY_ERR_BACKPRESSURE)
 * and has already forgotten it: close the connection. */
typedef void (*parley_close_session_fn)(void* user_data, uint64_t session, int code, const char* message);
/* Sends a batch to peer node `node_id`. Later, from the node's thread and not
 * from inside this callback, report the outcome with parley_node_peer_result
 * (a missing report counts as a failure after a timeout). The receiving
 * node gets the bytes through parley_node_peer_batch. */
typedef void (*parley_send_batch_fn)(void* user_data, const char* node_id, uint64_t call_id, const void* data,
                                     size_t size);
/* A member missed a message (no live session, or its session failed). Best
 * effort: the message is in history either way. */
typedef void (*parley_notify_fn)(void* user_data, const parley_notification* notification);
/* Call parley_node_timer_fired at or soon after `at_ms` (on the node's
 * clock). Replaces the previous request. */
typedef void (*parley_timer_fn)(void* user_data, int64_t at_ms);
/* The node's clock in milliseconds (default: Unix time). For hosts with
 * virtual time, such as tests. */
typedef int64_t (*parley_clock_fn)(void* user_data);
/* Something was posted: get the node's thread to call parley_node_run_posted.
 * Runs on the posting thread (see convention 6). */
typedef void (*parley_wakeup_fn)(void* user_data);
/* A function posted with parley_node_post, run on the node's thread. */
typedef void (*parley_post_fn)(parley_node* node, void* user_data);

/* Creates a node on `store` (options NULL: the defaults). The node keeps the
 * store alive. Several nodes may share one store on one thread. */
PARLEY_EXPORT int parley_node_create(const parley_node_options* options, parley_store* store,
                                     parley_node** out);
/* Destroys a node: frees every callback's user_data, drops what was posted
 * and not run (freeing it), without closing sessions or flushing (call
 * parley_node_flush first to end the turn). Not from a callback or a posted
 * function of this node (PARLEY_ERR_INVALID_ARGUMENT). */
PARLEY_EXPORT int parley_node_destroy(parley_node* node);

/* Callback registration; fn NULL removes the callback. Without deliver,
 * frames are dropped; without send_batch, peer calls time out; without
 * timer, call parley_node_timer_fired regularly (every 50 ms or so). */
PARLEY_EXPORT int parley_node_set_deliver(parley_node* node, parley_deliver_fn fn, void* user_data,
                                          parley_free_fn free_user_data);
PARLEY_EXPORT int parley_node_set_close_session(parley_node* node, parley_close_session_fn fn,
                                                void* user_data, parley_free_fn free_user_data);
PARLEY_EXPORT int parley_node_set_send_batch(parley_node* node, parley_send_batch_fn fn, void* user_data,
                                             parley_free_fn free_user_data);
PARLEY_EXPORT int parley_node_set_notify(parley_node* node, parley_notify_fn fn, void* user_data,
                                         parley_free_fn free_user_data);
PARLEY_EXPORT int parley_node_set_timer(parley_node* node, parley_timer_fn fn, void* user_data,
                                        parley_free_fn free_user_data);
/* Set before parley_node_start, as the node reads its clock from then on. */
PARLEY_EXPORT int parley_node_set_clock(parley_node* node, parley_clock_fn fn, void* user_data,
                                        parley_free_fn free_user_data);
PARLEY_EXPORT int parley_node_set_wakeup(parley_node* node, parley_wakeup_fn fn, void* user_data,
                                         parley_free_fn free_user_data);

/* Starts the node (arms its timer; forgets sessions a previous incarnation
 * with the same node id left in the store). Once, after the callbacks are
 * registered and before any event; events before it fail with
 * PARLEY_ERR_INVALID_ARGUMENT. */
PARLEY_EXPORT int parley_node_start(parley_node* node);

/* A client authenticated as `user_id` connected; `session` is any id unique
 * on this node, chosen by the host, not 0 (reserved: PARLEY_ERR_INVALID_ARGUMENT).
 * PARLEY_ERR_ALREADY_EXISTS if in use. */
PARLEY_EXPORT int parley_node_session_open(parley_node* node, uint64_t session, const char* user_id);
/* The session's connection ended: `code` PARLEY_OK for a clean close, else
 * the error that ended it (its undelivered messages are then notified, and
 * `reason` is reported to the user's next session). `reason` may be NULL.
 * An unknown session is ignored: the node may have closed it already (see
 * parley_close_session_fn). `code` must be a PARLEY_* code. */
PARLEY_EXPORT int parley_node_session_close(parley_node* node, uint64_t session, int code,
                                            const char* reason);
/* One frame from the session's client, in the node's codec. A bad frame is
 * answered to the client with an error event and returns PARLEY_OK (the
 * transport worked); PARLEY_ERR_NOT_FOUND for an unknown session. */
PARLEY_EXPORT int parley_node_client_request(parley_node* node, uint64_t session, const void* data,
                                             size_t size);
/* The host wrote `bytes` of what deliver handed it for the session (an
 * unknown session is ignored). */
PARLEY_EXPORT int parley_node_session_drained(parley_node* node, uint64_t session, uint64_t bytes);
/* A batch from a peer node (the bytes its send_batch callback sent).
 * PARLEY_ERR_INVALID_ARGUMENT for a malformed batch (text that is not UTF-8
 * included), PARLEY_ERR_TOO_LARGE for one with an id or contents over this
 * node's limits; either way nothing of it is applied: report the call as
 * failed to the sender. */
PARLEY_EXPORT int parley_node_peer_batch(parley_node* node, const void* data, size_t size);
/* The outcome of this node's send_batch call `call_id` to `node_id`:
 * ok non-zero if the peer accepted the batch. */
PARLEY_EXPORT int parley_node_peer_result(parley_node* node, const char* node_id, uint64_t call_id, int ok);
/* The time asked for by the timer callback has come (early or extra calls
 * are harmless). Flushes by itself. */
PARLEY_EXPORT int parley_node_timer_fired(parley_node* node);
/* Ends a turn: runs posted functions, then commits queued sends, fans out,
 * delivers, re-arms the timer. */
PARLEY_EXPORT int parley_node_flush(parley_node* node);
/* `user_id` left `group_id` (see parley_store_leave): its sessions on this
 * node stop receiving the group at once. */
PARLEY_EXPORT int parley_node_member_removed(parley_node* node, const char* group_id, const char* user_id);

/* Membership entry kinds: PARLEY_ENTRY_JOIN, _LEAVE, _REMOVED (above). */
/* Records a membership change, made in the store (parley_store_join /
 * parley_store_leave), as an entry of the group's log: it gets the next
 * id, is committed with the node's next flush (answered to nobody) and is
 * pushed to the members' sessions in order; every node that delivers a
 * leave or removal also does parley_node_member_removed for it. `subject`
 * is the removed member for PARLEY_ENTRY_REMOVED, else NULL.
 * PARLEY_ERR_INVALID_ARGUMENT for another kind or a bad id. */
PARLEY_EXPORT int parley_node_record_membership(parley_node* node, const char* group_id, int kind,
                                                const char* user_id, const char* subject);
/* Records a notice from the app itself (a match result, a rule change) as a
 * PARLEY_ENTRY_SYSTEM entry of the group's log, committed with the node's
 * next flush (answered to nobody) and pushed to the members' sessions in
 * order like a message; it counts as unread for nobody and notifies nobody.
 * `author` names the app's voice (any id; not a member), `text` is its
 * contents, `meta_json` an optional JSON object (NULL or "" for none), and a
 * non-empty `client_msg_id` (NULL for none) makes a resend a duplicate,
 * stored once. PARLEY_ERR_INVALID_ARGUMENT or PARLEY_ERR_TOO_LARGE for bad
 * input. */
PARLEY_EXPORT int parley_node_record_system(parley_node* node, const char* group_id, const char* author,
                                            const char* client_msg_id, const char* text, const char* meta_json);
/* The number of open sessions. */
PARLEY_EXPORT int parley_node_session_count(parley_node* node, size_t* out);

/* Queues fn(node, user_data) to run on the node's thread (convention 6).
 * Safe from any thread, and from callbacks. Failures (a NULL fn, a released
 * node) take nothing and leave their message in parley_errmsg(NULL). */
PARLEY_EXPORT int parley_node_post(parley_node* node, parley_post_fn fn, void* user_data,
                                   parley_free_fn free_user_data);
/* Runs what was posted so far, in order; *ran (if not NULL) gets how many.
 * Called from a posted function it runs nothing (the outer call goes on). */
PARLEY_EXPORT int parley_node_run_posted(parley_node* node, size_t* ran);

/* ---- the bundled server, in-process ------------------------------------------
 *
 * parley-server (WebSocket chat, HTTP web service, web client; see
 * docs/server.md and docs/protocol.md) on a thread of its own, so a host
 * program - or Python or Node - can run a full server. It installs no signal
 * handlers. */

/* Makes server options with parley-server's defaults. */
PARLEY_EXPORT int parley_server_options_create(parley_server_options** out);
PARLEY_EXPORT int parley_server_options_destroy(parley_server_options* options);
/* Sets one parley-server option by its command-line name without dashes,
 * e.g. ("listen", "127.0.0.1:0"), ("store", "memory"), ("data-dir", "./d"),
 * ("dev", NULL) for development login, ("secret", "..."), ("node-id",
 * "node-1"), ("log-level", "warn"); `parley-server --help` and
 * docs/server.md list them all. value NULL: a flag without value. Setting
 * an option again replaces its value, except peer, which accumulates (one
 * per peer node). Only the name's form is checked here
 * (PARLEY_ERR_INVALID_ARGUMENT); parley_server_start checks the options
 * together, as the command line would be. */
PARLEY_EXPORT int parley_server_options_set(parley_server_options* options, const char* name,
                                            const char* value);

/* Opens the stores, listens, and serves on a new thread (options NULL: the
 * defaults). Returns when the server listens (port 0: parley_server_port
 * says which). PARLEY_ERR_INVALID_ARGUMENT if the options are refused,
 * PARLEY_ERR_UNAVAILABLE if the server could not start (for both, the
 * server prints why on stderr). The listening line is printed on stdout, as
 * parley-server does. */
PARLEY_EXPORT int parley_server_start(const parley_server_options* options, parley_server** out);
/* The bound HTTP/WebSocket port. */
PARLEY_EXPORT int parley_server_port(parley_server* server, uint16_t* out);
/* Shuts the server down cleanly (commits, closes sessions; at most a few
 * seconds) and joins its thread. A second call does nothing and returns
 * PARLEY_OK. */
PARLEY_EXPORT int parley_server_stop(parley_server* server);
/* Stops the server if running and releases the handle. */
PARLEY_EXPORT int parley_server_destroy(parley_server* server);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PARLEY_PARLEY_H_ */
