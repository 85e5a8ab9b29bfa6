// The store conformance suite of tests/unit, run on the Redis store: on one
// redis-server and on a three-master Redis Cluster (see that file).
#define PARLEY_CONFORMANCE_REDIS 1
#include "unit/store_conformance_test.cpp"  // NOLINT(bugprone-suspicious-include)
