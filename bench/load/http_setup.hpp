// The setup phase of a load run over the server's HTTP API (blocking, with
// cpp-httplib): log every client in (POST /v1/login), create each group with
// its first member (POST /v1/groups) and join the others
// (POST /v1/groups/{g}/join). Runs on the calling thread plus `threads - 1`
// helpers; one connection per request (websocketpp, which serves the HTTP API
// of parley-server, closes the connection after each answer).
#pragma once

#include <string>

#include "load_plan.hpp"

namespace parley::load {

// Fills plan.clients[*].token. Returns false with a readable `error` at the
// first request that fails (the HTTP status and body are in it).
bool run_http_setup(LoadPlan& plan, const std::string& password, int threads, std::string& error);

}  // namespace parley::load
