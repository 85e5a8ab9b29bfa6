/* The C API test, compiled as C11: every function of parley/parley.h.
 * Two nodes embedded in one process on a shared memory store, joined by a
 * loopback transport written here, on virtual time; sessions, history,
 * errors, posting from another thread, destroying with work pending, a
 * SQLite store, and the in-process server answering /healthz on port 0.
 * Prints "ok N - name" per test; exits non-zero at the first failure. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "parley/parley.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* rc must be `code`; on a mismatch print what the library said. */
#define CHECK_RC(call, code, handle)                                                                   \
  do {                                                                                                 \
    int rc_ = (call);                                                                                  \
    if (rc_ != (code)) {                                                                               \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d: %s\n", __FILE__, __LINE__, #call, rc_, \
              parley_strerror(rc_), (code), parley_errmsg(handle));                                    \
      exit(1);                                                                                         \
    }                                                                                                  \
  } while (0)
#define OK(call, handle) CHECK_RC(call, PARLEY_OK, handle)

static int tests_run = 0;
static void pass(const char* name) {
  printf("ok %d - %s\n", ++tests_run, name);
  fflush(stdout);
}

static int contains(const char* haystack, const char* needle) {
  return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* ---- user data that counts how often it is freed ---------------------------- */

static atomic_int frees;
typedef struct Tag {
  int id;
} Tag;
static void* tag(int id) {
  Tag* t = malloc(sizeof *t);
  CHECK(t != NULL);
  t->id = id;
  return t;
}
static void free_tag(void* p) {
  atomic_fetch_add(&frees, 1);
  free(p);
}

/* ---- the loopback world: clients, nodes, a network, virtual time ----------- */

#define MAX_NODES 2
#define MAX_SESSIONS 8
#define MAX_PENDING 256

typedef struct Text {
  char* data;
  size_t size;
} Text;
static void text_append(Text* t, const void* data, size_t size) {
  t->data = realloc(t->data, t->size + size + 2);
  CHECK(t->data != NULL);
  memcpy(t->data + t->size, data, size);
  t->size += size;
  t->data[t->size++] = '\n';
  t->data[t->size] = '\0';
}
static void text_clear(Text* t) {
  free(t->data);
  t->data = NULL;
  t->size = 0;
}

typedef struct Pending {
  int is_result; /* 0: a batch for `to`; 1: the result of `from`'s call to `to` */
  int from, to;
  uint64_t call_id;
  int ok;
  void* data;
  size_t size;
} Pending;

typedef struct World World;
typedef struct Endpoint {
  World* world;
  int index;
} Endpoint;

struct World {
  parley_store* store;
  parley_node* nodes[MAX_NODES];
  const char* ids[MAX_NODES];
  Endpoint endpoints[MAX_NODES];
  int64_t now;
  int64_t timer_at[MAX_NODES];
  Text frames[MAX_SESSIONS]; /* what each session's client received */
  uint64_t undrained[MAX_SESSIONS];
  int node_of[MAX_SESSIONS];
  Text closed;   /* "session code message" lines of sessions the node closed */
  Text notified; /* "user group msg_id sender preview reason mentioned=N" lines */
  Pending pending[MAX_PENDING];
  size_t npending;
  int reentry_rc; /* what a call into the node from its own callback returned */
};

static int64_t world_clock(void* user_data) {
  return ((World*)user_data)->now;
}

static void on_deliver(void* user_data, uint64_t session, const parley_bytes* frames, size_t count) {
  Endpoint* e = user_data;
  World* w = e->world;
  CHECK(session < MAX_SESSIONS);
  for (size_t i = 0; i < count; ++i) {
    text_append(&w->frames[session], frames[i].data, frames[i].size);
    w->undrained[session] += frames[i].size;
  }
  /* The rule: a callback must not call into its own node. */
  if (w->reentry_rc == -1) w->reentry_rc = parley_node_flush(w->nodes[e->index]);
}

static void on_close_session(void* user_data, uint64_t session, int code, const char* message) {
  World* w = ((Endpoint*)user_data)->world;
  char line[256];
  snprintf(line, sizeof line, "%llu %d %s", (unsigned long long)session, code, message);
  text_append(&w->closed, line, strlen(line));
}

static int index_of(World* w, const char* node_id) {
  for (int i = 0; i < MAX_NODES; ++i) {
    if (w->ids[i] != NULL && strcmp(w->ids[i], node_id) == 0) return i;
  }
  return -1;
}

static void enqueue(World* w, Pending p) {
  CHECK(w->npending < MAX_PENDING);
  w->pending[w->npending++] = p;
}

/* A batch leaves: copy it (the bytes are valid only during this call) and
 * deliver it later, from the loop. */
static void on_send_batch(void* user_data, const char* node_id, uint64_t call_id, const void* data,
                          size_t size) {
  Endpoint* e = user_data;
  Pending p = {0, e->index, index_of(e->world, node_id), call_id, 0, malloc(size), size};
  CHECK(p.to >= 0 && p.data != NULL);
  memcpy(p.data, data, size);
  enqueue(e->world, p);
}

static void on_notify(void* user_data, const parley_notification* n) {
  World* w = ((Endpoint*)user_data)->world;
  char line[512];
  CHECK(strlen(n->preview) == n->preview_size);
  snprintf(line, sizeof line, "%s %s %llu %s %s %s mentioned=%d\n", n->user_id, n->group_id,
           (unsigned long long)n->msg_id, n->sender_id, n->preview, n->reason, n->mentioned);
  text_append(&w->notified, line, strlen(line));
}

static void on_timer(void* user_data, int64_t at_ms) {
  Endpoint* e = user_data;
  e->world->timer_at[e->index] = at_ms;
}

/* Runs the network until nothing is in flight: each delivery is one turn of
 * the receiving node (event, then flush). Drain reports go in too. */
static void pump(World* w) {
  for (int guard = 0; guard < 1000; ++guard) {
    for (int s = 0; s < MAX_SESSIONS; ++s) {
      if (w->undrained[s] == 0) continue;
      parley_node* n = w->nodes[w->node_of[s]];
      OK(parley_node_session_drained(n, (uint64_t)s, w->undrained[s]), n);
      w->undrained[s] = 0;
    }
    for (int i = 0; i < MAX_NODES; ++i) {
      if (w->nodes[i] != NULL) OK(parley_node_flush(w->nodes[i]), w->nodes[i]);
    }
    if (w->npending == 0) return;
    Pending p = w->pending[0];
    memmove(w->pending, w->pending + 1, (w->npending - 1) * sizeof(Pending));
    w->npending--;
    if (p.is_result) {
      OK(parley_node_peer_result(w->nodes[p.from], w->ids[p.to], p.call_id, p.ok), w->nodes[p.from]);
      continue;
    }
    int rc = parley_node_peer_batch(w->nodes[p.to], p.data, p.size);
    free(p.data);
    enqueue(w, (Pending){1, p.from, p.to, p.call_id, rc == PARLEY_OK, NULL, 0});
  }
  CHECK(!"the network never went quiet");
}

/* Moves virtual time on, firing the timers that fall due. */
static void advance(World* w, int64_t ms) {
  const int64_t until = w->now + ms;
  while (w->now < until) {
    w->now += 10;
    for (int i = 0; i < MAX_NODES; ++i) {
      if (w->nodes[i] != NULL && w->timer_at[i] <= w->now)
        OK(parley_node_timer_fired(w->nodes[i]), w->nodes[i]);
    }
    pump(w);
  }
}

static parley_node* add_node(World* w, int index, const char* id) {
  parley_node_options* o = NULL;
  OK(parley_node_options_create(&o), NULL);
  OK(parley_node_options_set_node_id(o, id), o);
  OK(parley_node_options_set_codec(o, PARLEY_CODEC_JSON), o);
  OK(parley_node_options_set_seed(o, (uint64_t)index + 1), o);
  OK(parley_node_options_set_forward(o, PARLEY_FORWARD_ADAPTIVE, 0), o);
  OK(parley_node_options_set_limits(o, 0, 4096, 0, 0), o);
  OK(parley_node_options_set_session_queue_bytes(o, 1 << 20), o);
  OK(parley_node_options_set_pull_policy(o, 100, 20.0, 5.0), o);
  parley_node* n = NULL;
  OK(parley_node_create(o, w->store, &n), NULL);
  OK(parley_node_options_destroy(o), NULL); /* options are copied at create */
  w->nodes[index] = n;
  w->ids[index] = id;
  w->endpoints[index] = (Endpoint){w, index};
  w->timer_at[index] = INT64_MAX;
  Endpoint* e = &w->endpoints[index];
  OK(parley_node_set_clock(n, world_clock, w, NULL), n);
  OK(parley_node_set_deliver(n, on_deliver, e, NULL), n);
  OK(parley_node_set_close_session(n, on_close_session, e, NULL), n);
  OK(parley_node_set_send_batch(n, on_send_batch, e, NULL), n);
  OK(parley_node_set_notify(n, on_notify, e, NULL), n);
  OK(parley_node_set_timer(n, on_timer, e, NULL), n);
  OK(parley_node_start(n), n);
  CHECK(w->timer_at[index] != INT64_MAX); /* start armed the timer */
  return n;
}

static void open_session(World* w, int node, uint64_t session, const char* user) {
  OK(parley_node_session_open(w->nodes[node], session, user), w->nodes[node]);
  w->node_of[session] = node;
}

static void request(World* w, uint64_t session, const char* json) {
  parley_node* n = w->nodes[w->node_of[session]];
  OK(parley_node_client_request(n, session, json, strlen(json)), n);
}

static void world_free(World* w) {
  for (int i = 0; i < MAX_NODES; ++i) OK(parley_node_destroy(w->nodes[i]), NULL);
  for (size_t i = 0; i < w->npending; ++i) free(w->pending[i].data);
  for (int s = 0; s < MAX_SESSIONS; ++s) text_clear(&w->frames[s]);
  text_clear(&w->closed);
  text_clear(&w->notified);
  OK(parley_store_close(w->store), NULL);
}

/* ---- 1. version, codes, messages -------------------------------------------- */

static void test_version_and_codes(void) {
  CHECK(parley_version() == PARLEY_VERSION_NUMBER);
  CHECK(strcmp(parley_version_string(), PARLEY_VERSION_STRING) == 0);
  CHECK(PARLEY_VERSION_NUMBER ==
        PARLEY_VERSION_MAJOR * 10000 + PARLEY_VERSION_MINOR * 100 + PARLEY_VERSION_PATCH);
  CHECK(strcmp(parley_strerror(PARLEY_OK), "ok") == 0);
  CHECK(strcmp(parley_strerror(PARLEY_ERR_NOT_FOUND), "not_found") == 0);
  CHECK(strcmp(parley_strerror(PARLEY_ERR_PERMISSION_DENIED), "permission_denied") == 0);
  CHECK(strcmp(parley_strerror(PARLEY_ERR_CLOSED), "closed") == 0);
  CHECK(strcmp(parley_strerror(PARLEY_ERR_HISTORY_TRIMMED), "history_trimmed") == 0);
  CHECK(strcmp(parley_strerror(PARLEY_ERR_LIMIT_EXCEEDED), "limit_exceeded") == 0);
  CHECK(strcmp(parley_strerror(9999), "unknown") == 0);
  CHECK(strcmp(parley_strerror(-1), "unknown") == 0);
  CHECK(parley_errmsg(NULL) != NULL);
  pass("version macros match the library; codes have their stable names");
}

/* ---- 2. options, NULL and released handles ----------------------------------- */

static void test_options_and_handles(void) {
  parley_node_options* o = NULL;
  CHECK_RC(parley_node_options_create(NULL), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  CHECK(contains(parley_errmsg(NULL), "'out' is NULL"));
  OK(parley_node_options_create(&o), NULL);
  CHECK_RC(parley_node_options_set_codec(o, 7), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK(contains(parley_errmsg(o), "parley_node_options_set_codec: invalid_argument: unknown codec 7"));
  CHECK_RC(parley_node_options_set_node_id(o, ""), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_node_options_set_node_id(o, NULL), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_node_options_set_forward(o, 5, 0), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_node_options_set_forward(o, PARLEY_FORWARD_FIXED, -1), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_node_options_set_session_queue_bytes(o, 0), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_node_options_set_pull_policy(o, 10, 1.0, 2.0), PARLEY_ERR_INVALID_ARGUMENT, o);
  OK(parley_node_options_set_forward(o, PARLEY_FORWARD_FIXED, 20), o);
  CHECK(strcmp(parley_errmsg(o), "") == 0); /* a success clears the message */

  /* A handle of another type is refused, not misread. */
  CHECK_RC(parley_store_close((parley_store*)o), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  CHECK(contains(parley_errmsg(NULL), "a parley_node_options was passed where a parley_store was expected"));

  OK(parley_node_options_destroy(o), NULL);
  CHECK_RC(parley_node_options_set_seed(o, 3), PARLEY_ERR_CLOSED, o);
  CHECK(contains(parley_errmsg(o),
                 "parley_node_options_set_seed: closed: the parley_node_options was released"));
  CHECK_RC(parley_node_options_destroy(o), PARLEY_ERR_CLOSED, NULL);
  OK(parley_node_options_destroy(NULL), NULL);
  OK(parley_store_close(NULL), NULL);
  OK(parley_node_destroy(NULL), NULL);
  OK(parley_server_options_destroy(NULL), NULL);
  OK(parley_server_destroy(NULL), NULL);
  parley_messages_free(NULL);
  CHECK_RC(parley_node_flush(NULL), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  CHECK(contains(parley_errmsg(NULL), "the parley_node is NULL"));
  pass("options are checked; NULL, released and mistyped handles give clear errors");
}

/* ---- 3. admin helpers -------------------------------------------------------- */

static void test_store_admin(void) {
  parley_store* s = NULL;
  OK(parley_store_open_memory(&s), NULL);
  OK(parley_store_create_group(s, "general", "alice"), s);
  CHECK_RC(parley_store_create_group(s, "general", "bob"), PARLEY_ERR_ALREADY_EXISTS, s);
  CHECK(contains(parley_errmsg(s), "already exists"));
  CHECK_RC(parley_store_create_group(s, "", "bob"), PARLEY_ERR_INVALID_ARGUMENT, s);
  CHECK_RC(parley_store_create_group(s, "g", NULL), PARLEY_ERR_INVALID_ARGUMENT, s);
  char long_id[300];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  CHECK_RC(parley_store_create_group(s, long_id, "bob"), PARLEY_ERR_TOO_LARGE, s);
  CHECK_RC(parley_store_join(s, "nope", "bob"), PARLEY_ERR_NOT_FOUND, s);
  CHECK(contains(parley_errmsg(s), "group 'nope' does not exist"));
  OK(parley_store_join(s, "general", "bob"), s);
  OK(parley_store_join(s, "general", "bob"), s);   /* already a member: fine */
  OK(parley_store_join(s, "general", "alice"), s); /* the owner stays owner */
  OK(parley_store_leave(s, "general", "bob"), s);
  CHECK_RC(parley_store_leave(s, "general", "bob"), PARLEY_ERR_NOT_FOUND, s);

  parley_message* m = (parley_message*)1;
  size_t n = 99;
  OK(parley_store_history(s, "general", NULL, 0, 100, &m, &n), s);
  CHECK(m == NULL && n == 0);
  CHECK_RC(parley_store_history(s, "nope", NULL, 0, 100, &m, &n), PARLEY_ERR_NOT_FOUND, s);
  CHECK_RC(parley_store_history(s, "general", "bob", 0, 100, &m, &n), PARLEY_ERR_PERMISSION_DENIED, s);
  CHECK(contains(parley_errmsg(s), "bob is not a member of 'general'"));
  CHECK_RC(parley_store_history(s, "general", NULL, 0, 0, &m, &n), PARLEY_ERR_INVALID_ARGUMENT, s);
  CHECK_RC(parley_store_history(s, "general", NULL, 0, 1001, &m, &n), PARLEY_ERR_INVALID_ARGUMENT, s);
  CHECK_RC(parley_store_history(s, "general", NULL, 0, 10, NULL, &n), PARLEY_ERR_INVALID_ARGUMENT, s);
  OK(parley_store_close(s), NULL);
  CHECK_RC(parley_store_join(s, "general", "carol"), PARLEY_ERR_CLOSED, s);
  pass("admin helpers: create, join, leave, history and their errors");
}

static void test_group_settings(void) {
  parley_store* s = NULL;
  OK(parley_store_open_memory(&s), NULL);
  parley_group_info club = {NULL, PARLEY_GROUP_PRIVATE, "The Club", "members only", 3, 0};
  OK(parley_store_create_group_with(s, "club", "erin", &club), s);
  OK(parley_store_create_group_with(s, "club-open", "erin", NULL), s);
  parley_group_info* info = NULL;
  OK(parley_store_group_info(s, "club", &info), s);
  CHECK(info != NULL && strcmp(info->group_id, "club") == 0 && info->kind == PARLEY_GROUP_PRIVATE);
  CHECK(strcmp(info->title, "The Club") == 0 && strcmp(info->topic, "members only") == 0);
  CHECK(info->member_limit == 3 && info->members == 1);
  parley_group_infos_free(info);
  CHECK_RC(parley_store_group_info(s, "nope", &info), PARLEY_ERR_NOT_FOUND, s);
  CHECK(info == NULL);

  /* Asking follows the rules; the host's join needs no invite but keeps the limit. */
  CHECK_RC(parley_store_ask_to_join(s, "club", "frank"), PARLEY_ERR_PERMISSION_DENIED, s);
  CHECK(contains(parley_errmsg(s), "private"));
  OK(parley_store_invite(s, "club", "frank"), s);
  OK(parley_store_ask_to_join(s, "club", "frank"), s);
  OK(parley_store_join(s, "club", "gus"), s);
  CHECK_RC(parley_store_join(s, "club", "hal"), PARLEY_ERR_LIMIT_EXCEEDED, s);
  OK(parley_store_ask_to_join(s, "club-open", "hal"), s);
  CHECK_RC(parley_store_invite(s, "nope", "hal"), PARLEY_ERR_NOT_FOUND, s);

  /* Settings are replaced whole and checked; bad ones change nothing. */
  parley_group_info open = {NULL, PARLEY_GROUP_PUBLIC, NULL, "now open", 0, 0};
  OK(parley_store_set_group_settings(s, "club", &open), s);
  parley_group_info bad = {NULL, 7, NULL, NULL, 0, 0};
  CHECK_RC(parley_store_set_group_settings(s, "club", &bad), PARLEY_ERR_INVALID_ARGUMENT, s);
  char long_title[300];
  memset(long_title, 't', sizeof long_title - 1);
  long_title[sizeof long_title - 1] = '\0';
  bad.kind = PARLEY_GROUP_PUBLIC;
  bad.title = long_title;
  CHECK_RC(parley_store_set_group_settings(s, "club", &bad), PARLEY_ERR_TOO_LARGE, s);
  CHECK_RC(parley_store_set_group_settings(s, "club", NULL), PARLEY_ERR_INVALID_ARGUMENT, s);
  CHECK_RC(parley_store_set_group_settings(s, "nope", &open), PARLEY_ERR_NOT_FOUND, s);

  /* Discovery: public groups by prefix, a page at a time. */
  parley_group_info* page = NULL;
  size_t count = 0;
  OK(parley_store_public_groups(s, "club", NULL, 1, &page, &count), s);
  CHECK(count == 1 && strcmp(page[0].group_id, "club") == 0 && strcmp(page[0].topic, "now open") == 0);
  CHECK(page[0].members == 3 && strcmp(page[0].title, "") == 0);
  parley_group_infos_free(page);
  OK(parley_store_public_groups(s, "club", "club", 10, &page, &count), s);
  CHECK(count == 1 && strcmp(page[0].group_id, "club-open") == 0 && page[0].members == 2);
  parley_group_infos_free(page);
  OK(parley_store_public_groups(s, "zzz", NULL, 10, &page, &count), s);
  CHECK(count == 0 && page == NULL);
  CHECK_RC(parley_store_public_groups(s, NULL, NULL, 0, &page, &count), PARLEY_ERR_INVALID_ARGUMENT, s);
  parley_group_infos_free(NULL);
  OK(parley_store_close(s), NULL);
  pass("group kinds and settings: private groups, invites, member limits and discovery");
}

/* ---- 4. two embedded nodes ----------------------------------------------------- */

static void test_two_nodes(void) {
  World* w = calloc(1, sizeof *w);
  CHECK(w != NULL);
  w->now = 1000000;
  OK(parley_store_open_memory(&w->store), NULL);
  OK(parley_store_create_group(w->store, "general", "alice"), w->store);
  OK(parley_store_join(w->store, "general", "bob"), w->store);
  OK(parley_store_join(w->store, "general", "carol"), w->store); /* never connects: notified */
  OK(parley_store_create_group(w->store, "ops", "alice"), w->store);
  parley_node* n1 = add_node(w, 0, "node-1");
  parley_node* n2 = add_node(w, 1, "node-2");

  open_session(w, 0, 1, "alice");
  open_session(w, 1, 2, "bob");
  CHECK_RC(parley_node_session_open(n1, 1, "alice"), PARLEY_ERR_ALREADY_EXISTS, n1);
  CHECK_RC(parley_node_session_open(n1, 3, ""), PARLEY_ERR_INVALID_ARGUMENT, n1);
  size_t count = 0;
  OK(parley_node_session_count(n1, &count), n1);
  CHECK(count == 1);
  request(w, 1, "{\"t\":\"resume\",\"rid\":1,\"g\":\"general\",\"after\":0,\"epoch\":0}");
  request(w, 2, "{\"t\":\"resume\",\"rid\":1,\"g\":\"general\",\"after\":0,\"epoch\":0}");
  pump(w);
  CHECK(contains(w->frames[1].data, "\"t\":\"resumed\""));
  CHECK(contains(w->frames[2].data, "\"t\":\"resumed\""));

  /* alice (node-1) -> bob (node-2), through the loopback network */
  w->reentry_rc = -1;
  request(w, 1, "{\"t\":\"send\",\"rid\":2,\"g\":\"general\",\"cid\":\"a1\",\"c\":\"hello bob\"}");
  pump(w);
  CHECK(w->reentry_rc == PARLEY_ERR_INVALID_ARGUMENT);
  CHECK(contains(w->frames[1].data, "\"t\":\"ack\",\"rid\":2,\"g\":\"general\",\"cid\":\"a1\",\"id\":1"));
  CHECK(contains(w->frames[2].data, "\"t\":\"msg\",\"g\":\"general\",\"id\":1"));
  CHECK(contains(w->frames[2].data, "hello bob"));
  CHECK(contains(w->notified.data, "carol general 1 alice hello bob offline"));

  /* bob answers; the resend of the same cid is a duplicate, not a second message */
  request(w, 2, "{\"t\":\"send\",\"rid\":3,\"g\":\"general\",\"cid\":\"b1\",\"c\":\"hi alice\"}");
  request(w, 2, "{\"t\":\"send\",\"rid\":4,\"g\":\"general\",\"cid\":\"b1\",\"c\":\"hi alice\"}");
  pump(w);
  CHECK(contains(w->frames[1].data, "hi alice"));
  CHECK(contains(w->frames[2].data, "\"rid\":4,\"g\":\"general\",\"cid\":\"b1\",\"id\":2"));
  CHECK(contains(w->frames[2].data, "\"dup\":true"));

  /* errors reach the client as error events; the call itself worked */
  request(w, 2, "{\"t\":\"send\",\"rid\":5,\"g\":\"ops\",\"cid\":\"b2\",\"c\":\"let me in\"}");
  request(w, 2, "{\"t\":\"send\",\"rid\":6,\"g\":\"nope\",\"cid\":\"b3\",\"c\":\"anyone?\"}");
  request(w, 2, "this is not json");
  pump(w);
  CHECK(contains(w->frames[2].data, "\"rid\":5,\"code\":3,\"name\":\"permission_denied\""));
  CHECK(contains(w->frames[2].data, "\"rid\":6,\"code\":2,\"name\":\"not_found\""));
  CHECK(contains(w->frames[2].data, "\"rid\":0,\"code\":1,\"name\":\"invalid_argument\""));
  CHECK(!contains(w->frames[1].data, "let me in"));
  CHECK_RC(parley_node_client_request(n2, 77, "{}", 2), PARLEY_ERR_NOT_FOUND, n2);
  CHECK(contains(parley_errmsg(n2), "no open session 77"));
  CHECK_RC(parley_node_client_request(n2, 2, NULL, 5), PARLEY_ERR_INVALID_ARGUMENT, n2);
  CHECK_RC(parley_node_peer_batch(n2, "garbage", 7), PARLEY_ERR_INVALID_ARGUMENT, n2);
  /* a well-formed batch whose contents are not UTF-8: [1, "n9", [[0, "general", 1, 0, 5,
   * "alice", bin "\xff", "", 1]]] (text on every codec: docs/decisions.md 37) */
  static const char not_utf8[] =
      "\x93\x01\xa2n9\x91\x99\x00\xa7general\x01\x00\x05\xa5"
      "alice\xc4\x01\xff\xa0\x01";
  CHECK_RC(parley_node_peer_batch(n2, not_utf8, sizeof not_utf8 - 1), PARLEY_ERR_INVALID_ARGUMENT, n2);
  CHECK(contains(parley_errmsg(n2), "contents is not UTF-8"));
  /* an id over the limit is too large, as from a client: [1, 129 x "n", []] */
  char long_from[3 + 2 + 129 + 1] = "\x93\x01\xd9\x81";
  memset(long_from + 4, 'n', 129);
  long_from[4 + 129] = '\x90';
  CHECK_RC(parley_node_peer_batch(n2, long_from, sizeof long_from - 1), PARLEY_ERR_TOO_LARGE, n2);
  CHECK(contains(parley_errmsg(n2), "from is 129 bytes; the limit is 128"));
  CHECK_RC(parley_node_peer_result(n2, NULL, 1, 1), PARLEY_ERR_INVALID_ARGUMENT, n2);

  /* history: as administrator, as a member, as a stranger */
  parley_message* m = NULL;
  size_t n = 0;
  OK(parley_store_history(w->store, "general", NULL, 0, 100, &m, &n), w->store);
  CHECK(n == 2);
  CHECK(m[0].msg_id == 1 && m[0].prev_msg_id == 0 && m[0].epoch == 1);
  CHECK(strcmp(m[0].group_id, "general") == 0 && strcmp(m[0].user_id, "alice") == 0);
  CHECK(strcmp(m[0].client_msg_id, "a1") == 0 && m[0].timestamp_ms == 1000000);
  CHECK(m[0].contents_size == 9 && memcmp(m[0].contents, "hello bob", 9) == 0);
  CHECK(strcmp((const char*)m[1].contents, "hi alice") == 0 && m[1].msg_id == 2);
  parley_messages_free(m);
  OK(parley_store_history(w->store, "general", "carol", 1, 100, &m, &n), w->store);
  CHECK(n == 1 && m[0].msg_id == 2);
  parley_messages_free(m);
  CHECK_RC(parley_store_history(w->store, "general", "mallory", 0, 100, &m, &n), PARLEY_ERR_PERMISSION_DENIED,
           w->store);

  /* read states: alice has bob's message unread, carol both; a read moves forward only */
  parley_read_state* rs = (parley_read_state*)1;
  OK(parley_store_read_states(w->store, "alice", &rs, &n), w->store);
  CHECK(n == 2); /* general and ops, sorted */
  CHECK(strcmp(rs[0].group_id, "general") == 0 && rs[0].epoch == 1 && rs[0].head == 2);
  CHECK(rs[0].msg_id == 0 && rs[0].unread == 1 && rs[0].mentions == 0);
  CHECK(strcmp(rs[1].group_id, "ops") == 0 && rs[1].unread == 0);
  parley_read_states_free(rs);
  parley_read_state one;
  OK(parley_store_mark_read(w->store, "general", "carol", 1, 99, &one), w->store);
  CHECK(strcmp(one.group_id, "general") == 0 && one.msg_id == 2 && one.head == 2 && one.unread == 0);
  OK(parley_store_mark_read(w->store, "general", "carol", 1, 1, &one), w->store);
  CHECK(one.msg_id == 2);
  CHECK_RC(parley_store_mark_read(w->store, "general", "carol", 5, 1, &one), PARLEY_ERR_EPOCH_MISMATCH, w->store);
  CHECK_RC(parley_store_mark_read(w->store, "general", "mallory", 1, 1, &one), PARLEY_ERR_NOT_FOUND, w->store);
  CHECK_RC(parley_store_mark_read(w->store, "general", "carol", 0, 1, &one), PARLEY_ERR_INVALID_ARGUMENT, w->store);
  OK(parley_store_read_states(w->store, "nobody", &rs, &n), w->store);
  CHECK(rs == NULL && n == 0);

  /* notification levels: carol (offline) wants mentions only */
  int level = -1;
  OK(parley_store_notify_level(w->store, "general", "carol", &level), w->store);
  CHECK(level == PARLEY_NOTIFY_ALL);
  OK(parley_store_set_notify_level(w->store, "general", "carol", PARLEY_NOTIFY_MENTIONS), w->store);
  OK(parley_store_notify_level(w->store, "general", "carol", &level), w->store);
  CHECK(level == PARLEY_NOTIFY_MENTIONS);
  CHECK_RC(parley_store_set_notify_level(w->store, "general", "carol", 7), PARLEY_ERR_INVALID_ARGUMENT, w->store);
  CHECK_RC(parley_store_set_notify_level(w->store, "general", "mallory", PARLEY_NOTIFY_NONE), PARLEY_ERR_NOT_FOUND,
           w->store);
  CHECK_RC(parley_store_notify_level(w->store, "general", "mallory", &level), PARLEY_ERR_NOT_FOUND, w->store);
  CHECK_RC(parley_store_notify_level(w->store, "general", "carol", NULL), PARLEY_ERR_INVALID_ARGUMENT, w->store);
  text_clear(&w->notified);
  request(w, 1, "{\"t\":\"send\",\"rid\":5,\"g\":\"general\",\"cid\":\"a5\",\"c\":\"no ping\"}");
  request(w, 1,
          "{\"t\":\"send\",\"rid\":6,\"g\":\"general\",\"cid\":\"a6\",\"c\":\"ping carol\",\"mn\":[\"carol\"]}");
  pump(w);
  CHECK(contains(w->frames[1].data, "\"t\":\"ack\",\"rid\":6"));
  CHECK(!contains(w->notified.data, "no ping"));
  CHECK(contains(w->notified.data, "carol general 4 alice ping carol offline mentioned=1"));

  /* a membership change recorded in the log: pushed like a message, id 5 */
  OK(parley_node_record_membership(n2, "general", PARLEY_ENTRY_JOIN, "dave", NULL), n2);
  OK(parley_node_flush(n2), n2);
  pump(w);
  CHECK(contains(w->frames[1].data, "\"id\":5,\"prev\":4"));
  CHECK(contains(w->frames[1].data, "\"u\":\"dave\",\"c\":\"\",\"cid\":\"\",\"ep\":1,\"k\":\"join\""));
  CHECK_RC(parley_node_record_membership(n2, "general", 0, "dave", NULL), PARLEY_ERR_INVALID_ARGUMENT, n2);
  CHECK_RC(parley_node_record_membership(n2, "general", PARLEY_ENTRY_REMOVED, "alice", NULL),
           PARLEY_ERR_INVALID_ARGUMENT, n2);
  CHECK_RC(parley_node_record_membership(n2, NULL, PARLEY_ENTRY_JOIN, "dave", NULL), PARLEY_ERR_INVALID_ARGUMENT, n2);

  /* bob leaves: his session stops receiving the group at once */
  OK(parley_store_leave(w->store, "general", "bob"), w->store);
  OK(parley_node_member_removed(n2, "general", "bob"), n2);
  CHECK_RC(parley_node_member_removed(n2, NULL, "bob"), PARLEY_ERR_INVALID_ARGUMENT, n2);
  request(w, 1, "{\"t\":\"send\",\"rid\":7,\"g\":\"general\",\"cid\":\"a2\",\"c\":\"bye bob\"}");
  pump(w);
  CHECK(contains(w->frames[1].data, "\"rid\":7"));
  CHECK(!contains(w->frames[2].data, "bye bob"));

  /* time passes: timers fire (head sync, directory refresh) without harm */
  advance(w, 3000);

  /* closing: unknown sessions and double closes are fine; codes are checked */
  CHECK_RC(parley_node_session_close(n2, 2, 99, "?"), PARLEY_ERR_INVALID_ARGUMENT, n2);
  OK(parley_node_session_close(n2, 2, PARLEY_ERR_UNAVAILABLE, "connection reset"), n2);
  OK(parley_node_session_close(n2, 2, PARLEY_OK, NULL), n2);
  OK(parley_node_session_close(n1, 1, PARLEY_OK, NULL), n1);
  OK(parley_node_session_count(n1, &count), n1);
  CHECK(count == 0);
  pump(w);

  /* destroy with batches still in flight */
  open_session(w, 1, 4, "bob");
  OK(parley_store_join(w->store, "general", "bob"), w->store);
  open_session(w, 0, 5, "alice");
  request(w, 5, "{\"t\":\"send\",\"rid\":8,\"g\":\"general\",\"cid\":\"a3\",\"c\":\"last\"}");
  OK(parley_node_flush(n1), n1);
  world_free(w);
  free(w);
  pass("two embedded nodes: sessions, forwarding, dedup, errors, history, read states, leave, timers");
}

/* ---- 4b. entries with every field, plain and folded ---------------------------------- */

static void test_entries(void) {
  World* w = calloc(1, sizeof *w);
  CHECK(w != NULL);
  w->now = 1000000;
  OK(parley_store_open_memory(&w->store), NULL);
  OK(parley_store_create_group(w->store, "general", "alice"), w->store);
  OK(parley_store_join(w->store, "general", "bob"), w->store);
  add_node(w, 0, "node-1");
  open_session(w, 0, 1, "alice");
  open_session(w, 0, 2, "bob");
  request(w, 2, "{\"t\":\"resume\",\"rid\":1,\"g\":\"general\",\"after\":0,\"epoch\":0}");
  pump(w);
  request(w, 1, "{\"t\":\"send\",\"rid\":2,\"g\":\"general\",\"cid\":\"a1\",\"c\":\"hello bob\"}");
  pump(w);
  request(w, 2, "{\"t\":\"send\",\"rid\":3,\"g\":\"general\",\"cid\":\"b1\",\"c\":\"hi alice\"}");
  pump(w);
  /* bob edits his message (3); alice reacts to it (4) and answers it mentioning him (5) */
  request(w, 2, "{\"t\":\"edit\",\"rid\":7,\"g\":\"general\",\"cid\":\"b4\",\"to\":2,\"c\":\"hi, alice\"}");
  pump(w);
  request(w, 1, "{\"t\":\"react\",\"rid\":8,\"g\":\"general\",\"cid\":\"a2\",\"to\":2,\"c\":\"+1\"}");
  request(w, 1,
          "{\"t\":\"send\",\"rid\":9,\"g\":\"general\",\"cid\":\"a3\",\"c\":\"@bob yes\",\"re\":2,"
          "\"mn\":[\"bob\"],\"meta\":{\"x\":1}}");
  pump(w);
  parley_entry_page* page = NULL;
  OK(parley_store_entries(w->store, "general", "bob", 0, 100, 0, &page), w->store);
  CHECK(page->count == 5 && page->head == 5 && page->to == 5 && page->epoch == 1);
  CHECK(page->entries[2].kind == PARLEY_ENTRY_EDIT && page->entries[2].target == 2);
  CHECK(strcmp((const char*)page->entries[2].message.contents, "hi, alice") == 0);
  CHECK(page->entries[3].kind == PARLEY_ENTRY_REACTION && !page->entries[3].removed);
  const parley_entry* answer = &page->entries[4];
  CHECK(answer->kind == PARLEY_ENTRY_MESSAGE && answer->reply_to == 2 && answer->mention_count == 1);
  CHECK(strcmp(answer->mentions[0], "bob") == 0 && strcmp(answer->meta, "{\"x\":1}") == 0);
  CHECK(answer->edited == 0 && answer->reaction_count == 0 && answer->reactions == NULL);
  parley_entry_page_free(page);
  OK(parley_store_entries(w->store, "general", "bob", 0, 100, 1, &page), w->store);
  CHECK(page->count == 3 && page->head == 5 && page->to == 5); /* 1, 2 and the answer */
  const parley_entry* hi = &page->entries[1];
  CHECK(hi->message.msg_id == 2 && hi->edited == 3 && hi->replies == 1);
  CHECK(strcmp((const char*)hi->message.contents, "hi, alice") == 0 && hi->message.contents_size == 9);
  CHECK(hi->reaction_count == 1 && strcmp(hi->reactions[0].key, "+1") == 0);
  CHECK(hi->reactions[0].count == 1 && hi->reactions[0].mine == 0); /* alice's, not bob's */
  parley_entry_page_free(page);
  OK(parley_store_entries(w->store, "general", "alice", 1, 2, 1, &page), w->store);
  CHECK(page->count == 1 && page->to == 3 && page->entries[0].reactions[0].mine == 1);
  parley_entry_page_free(page);
  OK(parley_store_entries(w->store, "general", NULL, 5, 10, 0, &page), w->store);
  CHECK(page->count == 0 && page->entries == NULL && page->to == 5);
  parley_entry_page_free(page);
  parley_entry_page_free(NULL);
  /* a notice from the app: pushed like a message, stored once per cid */
  OK(parley_node_record_system(w->nodes[0], "general", "game", "s1", "round 2", "{\"round\":2}"), w->nodes[0]);
  OK(parley_node_record_system(w->nodes[0], "general", "game", "s1", "round 2", "{\"round\":2}"), w->nodes[0]);
  OK(parley_node_flush(w->nodes[0]), w->nodes[0]);
  pump(w);
  CHECK(contains(w->frames[2].data, "\"u\":\"game\",\"c\":\"round 2\",\"cid\":\"s1\",\"ep\":1,\"k\":\"system\""));
  OK(parley_store_entries(w->store, "general", NULL, 5, 10, 0, &page), w->store);
  CHECK(page->count == 1 && page->entries[0].kind == PARLEY_ENTRY_SYSTEM && page->head == 6);
  CHECK(strcmp(page->entries[0].meta, "{\"round\":2}") == 0);
  parley_entry_page_free(page);
  CHECK_RC(parley_node_record_system(w->nodes[0], "general", "game", NULL, "", NULL), PARLEY_ERR_INVALID_ARGUMENT,
           w->nodes[0]);
  CHECK_RC(parley_store_entries(w->store, "general", "mallory", 0, 10, 1, &page), PARLEY_ERR_PERMISSION_DENIED,
           w->store);
  CHECK_RC(parley_store_entries(w->store, "general", NULL, 0, 0, 1, &page), PARLEY_ERR_INVALID_ARGUMENT, w->store);
  CHECK_RC(parley_store_entries(w->store, "general", NULL, 0, 10, 1, NULL), PARLEY_ERR_INVALID_ARGUMENT, w->store);

  world_free(w);
  free(w);
  pass("entries: kinds, targets, replies, mentions, meta; folded with edits, reactions and replies");
}

/* ---- 5. lifecycle rules ----------------------------------------------------------- */

static void ignore_frames(void* user_data, uint64_t session, const parley_bytes* frames, size_t count) {
  (void)user_data, (void)session, (void)frames, (void)count;
}
static void ignore_timer(void* user_data, int64_t at_ms) {
  (void)user_data, (void)at_ms;
}
static void ignore_notification(void* user_data, const parley_notification* notification) {
  (void)user_data, (void)notification;
}

static int rejected_destroy = -1;
static size_t nested_ran = 99;
static void posted_destroy(parley_node* node, void* user_data) {
  (void)user_data;
  rejected_destroy = parley_node_destroy(node);
  OK(parley_node_run_posted(node, &nested_ran), node);
}

static void test_lifecycle(void) {
  parley_store* s = NULL;
  parley_node* n = NULL;
  OK(parley_store_open_memory(&s), NULL);
  OK(parley_node_create(NULL, s, &n), NULL); /* default options */
  OK(parley_store_close(s), NULL);           /* the node keeps the store alive */
  CHECK_RC(parley_node_session_open(n, 1, "alice"), PARLEY_ERR_INVALID_ARGUMENT, n);
  CHECK(contains(parley_errmsg(n), "not started"));
  CHECK_RC(parley_node_flush(n), PARLEY_ERR_INVALID_ARGUMENT, n);
  CHECK_RC(parley_node_create(NULL, s, &n), PARLEY_ERR_CLOSED, NULL);
  CHECK_RC(parley_node_create(NULL, NULL, &n), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  OK(parley_node_start(n), n);
  CHECK_RC(parley_node_start(n), PARLEY_ERR_INVALID_ARGUMENT, n);
  OK(parley_node_session_open(n, 1, "alice"), n);

  /* callbacks replaced or removed free their user data at once, and the
   * ones still set are freed by destroy */
  atomic_store(&frees, 0);
  OK(parley_node_set_deliver(n, ignore_frames, tag(1), free_tag), n);
  OK(parley_node_set_deliver(n, ignore_frames, tag(2), free_tag), n);
  CHECK(atomic_load(&frees) == 1);
  OK(parley_node_set_deliver(n, NULL, NULL, NULL), n);
  CHECK(atomic_load(&frees) == 2);
  OK(parley_node_set_timer(n, ignore_timer, tag(3), free_tag), n);
  OK(parley_node_set_notify(n, ignore_notification, tag(4), free_tag), n);

  /* a posted function may call its node, but not destroy it */
  OK(parley_node_post(n, posted_destroy, tag(5), free_tag), NULL);
  OK(parley_node_flush(n), n); /* flush runs what was posted */
  CHECK(rejected_destroy == PARLEY_ERR_INVALID_ARGUMENT);
  CHECK(nested_ran == 0);
  CHECK(atomic_load(&frees) == 3);
  OK(parley_node_destroy(n), NULL);
  CHECK(atomic_load(&frees) == 5);
  CHECK_RC(parley_node_timer_fired(n), PARLEY_ERR_CLOSED, n);
  CHECK(contains(parley_errmsg(n), "parley_node_timer_fired: closed: the parley_node was released"));
  CHECK_RC(parley_node_destroy(n), PARLEY_ERR_CLOSED, n);
  pass(
      "lifecycle: start once, events only after start, callbacks freed when replaced, no destroy from a "
      "post");
}

/* ---- 6. posting from other threads ---------------------------------------------- */

static atomic_int ran_count;
static atomic_int wakeups;
static void posted_count(parley_node* node, void* user_data) {
  (void)node;
  (void)user_data;
  atomic_fetch_add(&ran_count, 1);
}
static void on_wakeup(void* user_data) {
  (void)user_data;
  atomic_fetch_add(&wakeups, 1);
}

typedef struct Poster {
  parley_node* node;
  int posts;    /* how many to post; -1: until refused */
  int accepted; /* posts the node took */
  int refused_rc;
} Poster;

static void* poster_main(void* arg) {
  Poster* p = arg;
  for (int i = 0; p->posts < 0 || i < p->posts; ++i) {
    void* t = tag(i);
    int rc = parley_node_post(p->node, posted_count, t, free_tag);
    if (rc != PARLEY_OK) {
      free(t); /* a failed post takes nothing */
      p->refused_rc = rc;
      break;
    }
    p->accepted++;
  }
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void test_posting(void) {
  parley_store* s = NULL;
  parley_node* n = NULL;
  OK(parley_store_open_memory(&s), NULL);
  OK(parley_node_create(NULL, s, &n), NULL);
  OK(parley_store_close(s), NULL);
  OK(parley_node_set_wakeup(n, on_wakeup, tag(0), free_tag), n);
  CHECK_RC(parley_node_post(n, NULL, NULL, NULL), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  CHECK(contains(parley_errmsg(NULL), "parley_node_post: invalid_argument: argument 'fn' is NULL"));

  atomic_store(&frees, 0);
  atomic_store(&ran_count, 0);
  Poster posters[2] = {{n, 200, 0, 0}, {n, 200, 0, 0}};
  pthread_t threads[2];
  for (int i = 0; i < 2; ++i) CHECK(pthread_create(&threads[i], NULL, poster_main, &posters[i]) == 0);
  for (int i = 0; i < 2; ++i) CHECK(pthread_join(threads[i], NULL) == 0);
  CHECK(posters[0].accepted == 200 && posters[1].accepted == 200);
  CHECK(atomic_load(&wakeups) == 400);
  size_t ran = 0;
  OK(parley_node_run_posted(n, &ran), n);
  CHECK(ran == 400 && atomic_load(&ran_count) == 400 && atomic_load(&frees) == 400);
  OK(parley_node_run_posted(n, &ran), n);
  CHECK(ran == 0);

  /* destroy with posts pending: dropped and freed, never run */
  atomic_store(&frees, 0);
  atomic_store(&ran_count, 0);
  for (int i = 0; i < 3; ++i) OK(parley_node_post(n, posted_count, tag(i), free_tag), NULL);
  OK(parley_node_destroy(n), NULL);
  CHECK(atomic_load(&ran_count) == 0);
  CHECK(atomic_load(&frees) == 4); /* the three posts and the wakeup's user data */
  CHECK_RC(parley_node_post(n, posted_count, NULL, NULL), PARLEY_ERR_CLOSED, NULL);
  CHECK_RC(parley_node_run_posted(n, NULL), PARLEY_ERR_CLOSED, n);

  /* destroy racing a thread that keeps posting: every accepted post is freed
   * exactly once; the refused ones are the poster's to free */
  atomic_store(&frees, 0);
  OK(parley_store_open_memory(&s), NULL);
  OK(parley_node_create(NULL, s, &n), NULL);
  OK(parley_store_close(s), NULL);
  Poster racer = {n, -1, 0, 0};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, poster_main, &racer) == 0);
  sleep_ms(5);
  OK(parley_node_run_posted(n, NULL), n);
  OK(parley_node_destroy(n), NULL);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(racer.refused_rc == PARLEY_ERR_CLOSED);
  CHECK(atomic_load(&frees) == racer.accepted);
  pass("posting: from two threads with wakeups, dropped and freed at destroy, racing a destroy");
}

/* ---- 7. SQLite ------------------------------------------------------------------ */

static void test_sqlite(void) {
  char dir[] = "/tmp/parley-capi-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/chat.db", dir);
  parley_store* s = NULL;
  CHECK_RC(parley_store_open_sqlite(path, 0x80, &s), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  CHECK(parley_store_open_sqlite("/nonexistent/dir/chat.db", 0, &s) == PARLEY_ERR_UNAVAILABLE && s == NULL);
  CHECK(contains(parley_errmsg(NULL), "parley_store_open_sqlite: ") &&
        contains(parley_errmsg(NULL), "chat.db"));
  OK(parley_store_open_sqlite(path, PARLEY_SQLITE_SYNC_NORMAL, &s), NULL);
  OK(parley_store_create_group(s, "general", "alice"), s);

  parley_node* n = NULL;
  parley_node_options* o = NULL;
  OK(parley_node_options_create(&o), NULL);
  OK(parley_node_options_set_codec(o, PARLEY_CODEC_JSON), o);
  OK(parley_node_create(o, s, &n), NULL);
  OK(parley_node_options_destroy(o), NULL);
  OK(parley_store_close(s), NULL);
  OK(parley_node_start(n), n);
  OK(parley_node_session_open(n, 1, "alice"), n);
  const char* send = "{\"t\":\"send\",\"g\":\"general\",\"cid\":\"x\",\"c\":\"kept\"}";
  OK(parley_node_client_request(n, 1, send, strlen(send)), n);
  OK(parley_node_flush(n), n);
  OK(parley_node_destroy(n), NULL);

  OK(parley_store_open_sqlite(path, 0, &s), NULL);
  CHECK_RC(parley_store_create_group(s, "general", "bob"), PARLEY_ERR_ALREADY_EXISTS, s);
  parley_message* m = NULL;
  size_t count = 0;
  OK(parley_store_history(s, "general", "alice", 0, 10, &m, &count), s);
  CHECK(count == 1 && strcmp((const char*)m[0].contents, "kept") == 0);
  parley_messages_free(m);
  OK(parley_store_close(s), NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  pass("SQLite: a node on a file store; what it committed is there after reopening");
}

/* ---- 8. the in-process server --------------------------------------------------- */

static void http_get(uint16_t port, const char* path, char* out, size_t out_size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr*)&addr, sizeof addr) == 0);
  char req[256];
  int len =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  CHECK(write(fd, req, (size_t)len) == len);
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, out + got, out_size - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    if (got == out_size - 1) break;
  }
  out[got] = '\0';
  close(fd);
}

static void test_server(void) {
  parley_server_options* o = NULL;
  parley_server* srv = NULL;
  OK(parley_server_options_create(&o), NULL);
  CHECK_RC(parley_server_options_set(o, "--listen", "x"), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_server_options_set(o, "help", NULL), PARLEY_ERR_INVALID_ARGUMENT, o);
  CHECK_RC(parley_server_options_set(o, NULL, "x"), PARLEY_ERR_INVALID_ARGUMENT, o);
  OK(parley_server_options_set(o, "listen", "127.0.0.1:0"), o);
  OK(parley_server_options_set(o, "store", "memory"), o);
  OK(parley_server_options_set(o, "dev", NULL), o);
  OK(parley_server_options_set(o, "secret", "capi-test-secret-0123456789abcdef"), o);
  OK(parley_server_options_set(o, "node-id", "capi-1"), o);
  OK(parley_server_options_set(o, "log-level", "warn"), o);
  int rc = parley_server_start(o, &srv);
  if (rc == PARLEY_ERR_UNAVAILABLE && contains(parley_errmsg(NULL), "built without parley-server")) {
    OK(parley_server_options_destroy(o), NULL);
    pass("# SKIP in-process server: built without parley-server");
    return;
  }
  CHECK_RC(rc, PARLEY_OK, NULL);
  uint16_t port = 0;
  OK(parley_server_port(srv, &port), srv);
  CHECK(port != 0);
  CHECK_RC(parley_server_port(srv, NULL), PARLEY_ERR_INVALID_ARGUMENT, srv);
  char answer[4096];
  http_get(port, "/healthz", answer, sizeof answer);
  CHECK(strncmp(answer, "HTTP/1.1 200", 12) == 0);
  OK(parley_server_stop(srv), srv);
  OK(parley_server_stop(srv), srv); /* idempotent */
  OK(parley_server_port(srv, &port), srv);
  OK(parley_server_destroy(srv), NULL);
  CHECK_RC(parley_server_stop(srv), PARLEY_ERR_CLOSED, srv);

  /* refused options; and destroy without stop stops */
  OK(parley_server_options_set(o, "store", "bogus"), o);
  CHECK_RC(parley_server_start(o, &srv), PARLEY_ERR_INVALID_ARGUMENT, NULL);
  OK(parley_server_options_set(o, "store", "memory"), o); /* a later value wins */
  OK(parley_server_start(o, &srv), NULL);
  OK(parley_server_destroy(srv), NULL);
  OK(parley_server_options_destroy(o), NULL);
  pass("in-process server: port 0, /healthz answers 200, stop joins and is idempotent");
}

/* --threads 4 on SQLite: four shards on one port; /metrics adds up every
 * shard's figures (gathered from each shard's thread); stop joins them all. */
static void test_sharded_server(void) {
  char dir[] = "/tmp/parley-capi-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char db[256], secret_file[256];
  snprintf(db, sizeof db, "%s/chat.db", dir);
  snprintf(secret_file, sizeof secret_file, "%s/secret", dir);
  parley_server_options* o = NULL;
  parley_server* srv = NULL;
  OK(parley_server_options_create(&o), NULL);
  OK(parley_server_options_set(o, "listen", "127.0.0.1:0"), o);
  OK(parley_server_options_set(o, "db", db), o);
  OK(parley_server_options_set(o, "data-dir", dir), o);
  OK(parley_server_options_set(o, "threads", "4"), o);
  OK(parley_server_options_set(o, "dev", NULL), o);
  OK(parley_server_options_set(o, "node-id", "capi-s"), o);
  OK(parley_server_options_set(o, "log-level", "warn"), o);
  int rc = parley_server_start(o, &srv);
  if (rc == PARLEY_ERR_UNAVAILABLE && contains(parley_errmsg(NULL), "built without parley-server")) {
    OK(parley_server_options_destroy(o), NULL);
    pass("# SKIP sharded server: built without parley-server");
    return;
  }
  CHECK_RC(rc, PARLEY_OK, NULL);
  uint16_t port = 0;
  OK(parley_server_port(srv, &port), srv);
  char answer[65536];
  for (int i = 0; i < 8; i++) { /* the kernel spreads connections over the shards */
    http_get(port, "/metrics", answer, sizeof answer);
    CHECK(strncmp(answer, "HTTP/1.1 200", 12) == 0);
    CHECK(contains(answer, "\nparley_connections 0\n"));
  }
  /* 8 answers so far, counted by whichever shard answered: the sum is 8
   * before this one is counted. */
  CHECK(contains(answer, "parley_http_responses_total{code=\"200\"} 7\n"));
  OK(parley_server_stop(srv), srv);
  OK(parley_server_destroy(srv), NULL);
  OK(parley_server_options_destroy(o), NULL);
  unlink(db);
  char side[300];
  snprintf(side, sizeof side, "%s-wal", db);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db);
  unlink(side);
  unlink(secret_file);
  rmdir(dir);
  pass("sharded server: 4 shards on one port, /metrics adds up every shard, stop joins them");
}

int main(void) {
  test_version_and_codes();
  test_options_and_handles();
  test_store_admin();
  test_group_settings();
  test_two_nodes();
  test_entries();
  test_lifecycle();
  test_posting();
  test_sqlite();
  test_server();
  test_sharded_server();
  printf("all %d C API tests passed\n", tests_run);
  return 0;
}
