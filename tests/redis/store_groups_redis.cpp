// The group settings, joins and discovery cases of the store conformance
// suite (tests/unit), run on the Redis store: on one redis-server and on a
// three-master Redis Cluster.
#define PARLEY_CONFORMANCE_REDIS 1
#include "unit/store_groups_test.cpp"  // NOLINT(bugprone-suspicious-include)
