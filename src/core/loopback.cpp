#include "parley/loopback.hpp"

#include <map>

#include <fmt/format.h>

#include "core/event_queue.hpp"

namespace parley {

class LoopbackCluster::Impl {
 public:
  struct Host;
  struct Client {
    size_t node = 0;
    EventFn on_event;
  };

  Impl(NodeStores stores, int64_t latency, int64_t start)
      : stores_(stores), latency_(latency), clock_(start) {}

  struct Host final : NodeHost {
    Impl* impl = nullptr;
    size_t index = 0;
    std::unique_ptr<Node> node;
    uint64_t timer_token = 0;
    bool flush_scheduled = false;

    void send_to_session(SessionId s, const std::vector<Frame>& frames) override {
      impl->queue_.at(impl->clock_.now_ms() + impl->latency_, [impl = impl, index = index, s, frames] {
        auto it = impl->clients_.find(s);
        if (it == impl->clients_.end()) return;
        size_t bytes = 0;
        for (const Frame& f : frames) {
          bytes += f->size();
          Result<ServerEvent> ev = impl->codec_->decode_event(f->data(), f->size());
          if (ev && it->second.on_event) it->second.on_event(s, *ev);
        }
        impl->host(index).node->on_session_drained(s, bytes);
        impl->schedule_flush(index);
      });
    }
    void close_session(SessionId s, const Status&) override { impl->clients_.erase(s); }
    void send_to_node(const std::string& node_id, uint64_t call_id, const Frame& batch) override {
      impl->queue_.at(
          impl->clock_.now_ms() + impl->latency_, [impl = impl, from = index, node_id, call_id, batch] {
            const size_t to = impl->index_of(node_id);
            const bool ok = to < impl->hosts_.size() &&
                            impl->host(to).node->on_peer_batch(batch->data(), batch->size()).is_ok();
            if (ok) impl->schedule_flush(to);
            impl->queue_.at(impl->clock_.now_ms() + impl->latency_, [impl, from, node_id, call_id, ok] {
              impl->host(from).node->on_peer_result(node_id, call_id, ok);
              impl->schedule_flush(from);
            });
          });
    }
    void set_timer(int64_t at) override {
      const uint64_t token = ++timer_token;
      impl->queue_.at(at, [this, token] {
        if (token == timer_token) node->on_timer();
      });
    }
  };

  Host& host(size_t i) { return *hosts_[i]; }
  size_t index_of(const std::string& id) const {
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i]->node->id() == id) return i;
    }
    return SIZE_MAX;
  }
  // Inputs of one instant are committed together, as one loop turn would.
  void schedule_flush(size_t i) {
    Host& h = host(i);
    if (h.flush_scheduled) return;
    h.flush_scheduled = true;
    queue_.at(clock_.now_ms(), [this, i] {
      host(i).flush_scheduled = false;
      host(i).node->flush();
    });
  }

  NodeStores stores_;
  int64_t latency_;
  ManualClock clock_;
  detail::EventQueue queue_;
  std::shared_ptr<const ClientCodec> codec_ = make_msgpack_codec();
  std::vector<std::unique_ptr<Host>> hosts_;
  std::map<SessionId, Client> clients_;
  SessionId next_session_ = 1;
};

LoopbackCluster::LoopbackCluster(NodeStores stores, int64_t latency_ms, int64_t start_ms)
    : impl_(std::make_unique<Impl>(stores, latency_ms, start_ms)) {}
LoopbackCluster::~LoopbackCluster() = default;

Result<size_t> LoopbackCluster::add_node(NodeOptions options, Notifier* notifier) {
  auto h = std::make_unique<Impl::Host>();
  h->impl = impl_.get();
  h->index = impl_->hosts_.size();
  h->node =
      std::make_unique<Node>(std::move(options), impl_->stores_, *h, impl_->clock_, notifier, impl_->codec_);
  if (Status s = h->node->start(); !s) return s;
  impl_->hosts_.push_back(std::move(h));
  return impl_->hosts_.size() - 1;
}

Node& LoopbackCluster::node(size_t index) {
  return *impl_->host(index).node;
}
size_t LoopbackCluster::node_count() const {
  return impl_->hosts_.size();
}

Result<SessionId> LoopbackCluster::connect(size_t node_index, const std::string& user_id, EventFn on_event) {
  if (node_index >= impl_->hosts_.size())
    return error(Code::kNotFound, fmt::format("no node {}", node_index));
  const SessionId id = impl_->next_session_++;
  if (Status s = node(node_index).open_session(id, user_id); !s) return s;
  impl_->clients_[id] = Impl::Client{node_index, std::move(on_event)};
  impl_->schedule_flush(node_index);
  return id;
}

void LoopbackCluster::disconnect(SessionId session) {
  auto it = impl_->clients_.find(session);
  if (it == impl_->clients_.end()) return;
  const size_t n = it->second.node;
  impl_->clients_.erase(it);
  node(n).close_session(session, Status::ok());
  impl_->schedule_flush(n);
}

void LoopbackCluster::request(SessionId session, const ClientRequest& request) {
  auto it = impl_->clients_.find(session);
  if (it == impl_->clients_.end()) return;
  const size_t n = it->second.node;
  impl_->queue_.at(impl_->clock_.now_ms() + impl_->latency_, [this, n, session, request] {
    if (!impl_->clients_.count(session)) return;
    node(n).on_client_request(session, request);
    impl_->schedule_flush(n);
  });
}

void LoopbackCluster::run_for(int64_t ms) {
  const int64_t until = impl_->clock_.now_ms() + ms;
  while (impl_->queue_.run_next(impl_->clock_, until)) {
  }
  impl_->clock_.set(until);
}

int64_t LoopbackCluster::now_ms() const {
  return impl_->clock_.now_ms();
}

}  // namespace parley
