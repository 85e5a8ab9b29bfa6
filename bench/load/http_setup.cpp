#include "http_setup.hpp"

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <algorithm>
#include <atomic>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace parley::load {
namespace {

// A JSON object of string fields, escaped.
std::string json_object(std::initializer_list<std::pair<const char*, const std::string&>> fields) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  for (const auto& [key, value] : fields) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
  return out.GetString();
}

// One keep-alive connection to the server.
class Api {
 public:
  explicit Api(const std::string& url) : cli_(url) {
    cli_.set_keep_alive(false);  // a websocketpp server closes after each answer
    cli_.set_connection_timeout(10);
    cli_.set_read_timeout(30);
    cli_.set_write_timeout(30);
  }

  // POSTs `body`; true on a 2xx answer, else false with `error` set. A
  // request that got no answer (the server may close a kept-alive connection
  // at any time) is retried on a new connection, twice; a 409 on a retry
  // means the first try did its work.
  bool post(const std::string& path, const std::string& token, const std::string& body, std::string& answer,
            std::string& error) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto res = cli_.Post(path.c_str(), headers, body, "application/json");
    int attempt = 0;
    while (!res && ++attempt < 3) {
      cli_.stop();
      res = cli_.Post(path.c_str(), headers, body, "application/json");
    }
    if (!res) {
      error = "POST " + path + ": " + httplib::to_string(res.error());
      return false;
    }
    if (res->status == 409 && attempt > 0) return true;
    if (res->status < 200 || res->status > 299) {
      error = "POST " + path + ": HTTP " + std::to_string(res->status) + " " + res->body;
      return false;
    }
    answer = std::move(res->body);
    return true;
  }

 private:
  httplib::Client cli_;
};

bool login(Api& api, ClientPlan& client, const std::string& password, std::string& error) {
  std::string answer;
  if (!api.post("/v1/login", "", json_object({{"user", client.user}, {"password", password}}), answer, error))
    return false;
  rapidjson::Document doc;
  doc.Parse(answer.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("token") || !doc["token"].IsString()) {
    error = "POST /v1/login: no token in " + answer;
    return false;
  }
  client.token = doc["token"].GetString();
  return true;
}

// Runs `step(api, i)` for i in [0, count) on `threads` threads; stops at the
// first failure and returns its error.
bool parallel_for(const std::string& url, int threads, size_t count,
                  const std::function<bool(Api&, size_t, std::string&)>& step, std::string& error) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  auto worker = [&] {
    Api api(url);
    std::string err;
    for (size_t i = next++; i < count && !failed; i = next++) {
      if (step(api, i, err)) continue;
      std::lock_guard<std::mutex> lock(error_mu);
      if (!failed.exchange(true)) error = err;
    }
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back(worker);
  worker();
  for (auto& h : helpers) h.join();
  return !failed;
}

}  // namespace

bool run_http_setup(LoadPlan& plan, const std::string& password, int threads, std::string& error) {
  const std::string& url = plan.http_url;
  auto& clients = plan.clients;
  if (!parallel_for(
          url, threads, clients.size(),
          [&](Api& api, size_t i, std::string& err) { return login(api, clients[i], password, err); }, error))
    return false;

  // The creator of group g is its first member, client g (clients are dealt
  // round-robin); everyone else joins.
  if (!parallel_for(
          url, threads, plan.groups.size(),
          [&](Api& api, size_t g, std::string& err) {
            std::string answer;
            return api.post("/v1/groups", clients[g].token, json_object({{"group", plan.groups[g]}}), answer,
                            err);
          },
          error))
    return false;
  return parallel_for(
      url, threads, clients.size() - std::min(clients.size(), plan.groups.size()),
      [&](Api& api, size_t k, std::string& err) {
        const ClientPlan& c = clients[k + plan.groups.size()];
        std::string answer;
        return api.post("/v1/groups/" + plan.groups[c.group] + "/join", c.token, "", answer, err);
      },
      error);
}

}  // namespace parley::load
