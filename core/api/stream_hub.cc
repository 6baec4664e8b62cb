// Event streams of risk deltas, every client written from one thread.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include "api/front.h"
#include "firehub/log.h"

namespace firehub::api {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kKeepAliveMs = 15000;
constexpr int64_t kKeyCheckMs = 2000;

}  // namespace

StreamHub::StreamHub(const ApiContext& ctx, DeltaStream& stream) : ctx_(ctx), stream_(stream) {}

StreamHub::~StreamHub() { stop(); }

void StreamHub::start() {
  thread_ = std::thread([this] {
    log::nameThread("fh-streams");
    loop();
  });
}

void StreamHub::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : joining_) ::close(c.fd);
  joining_.clear();
}

void StreamHub::add(int fd, std::string last_event_id, std::string key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  joining_.push_back({fd, std::move(last_event_id), std::move(key_id), {}, nowMs()});
  ++count_;
}

bool StreamHub::flush(Client& c) {
  while (!c.pending.empty()) {
    const ssize_t n = ::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.pending.erase(0, static_cast<size_t>(n));
    c.last_write_ms = nowMs();
  }
  return true;
}

// Long: one turn per wake-up: joiners in, the events past each group of clients at one place
// (nearly always all of them), writes, keep-alives, revoked keys and gone clients out.
void StreamHub::loop() {
  std::vector<Client> clients;
  int64_t last_key_check = nowMs();
  while (!stopping_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : joining_) clients.push_back(std::move(c));
      joining_.clear();
    }
    if (clients.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    // Clients at one place in the stream share one read of the events past it; the largest group
    // waits for them (briefly when some client still has bytes to take).
    std::map<std::string, std::vector<size_t>> groups;
    bool backlog = false;
    for (size_t i = 0; i < clients.size(); ++i) {
      groups[clients[i].last].push_back(i);
      backlog |= !clients[i].pending.empty();
    }
    auto largest = groups.begin();
    for (auto it = groups.begin(); it != groups.end(); ++it) {
      if (it->second.size() > largest->second.size()) largest = it;
    }
    bool open = true;
    for (auto it = groups.begin(); it != groups.end() && open; ++it) {
      std::string last = it->first, events;
      bool reset = false;
      const int wait_ms = it == largest ? (backlog || groups.size() > 1 ? 20 : 500) : 0;
      open = stream_.next(last, events, reset, wait_ms);
      if (reset) {
        events = "id: " + last + "\nevent: reset\ndata: {\"reload\":\"/api/v1/layers/risk\"}\n\n";
      }
      for (size_t i : it->second) {
        clients[i].last = last;
        clients[i].pending += events;
      }
    }
    if (!open) break;  // the hub is stopping
    const int64_t now = nowMs();
    const bool check_keys = now - last_key_check >= kKeyCheckMs;
    if (check_keys) last_key_check = now;
    for (size_t i = 0; i < clients.size();) {
      Client& c = clients[i];
      if (c.pending.empty() && now - c.last_write_ms >= kKeepAliveMs)
        c.pending = ": keep-alive\n\n";
      bool keep = flush(c) && c.pending.size() <= kMaxBacklog;
      if (keep && check_keys && !c.key_id.empty() && ctx_.keys)
        keep = ctx_.keys->principal(c.key_id).isOk();  // revoked: the stream ends
      if (keep) {
        ++i;
        continue;
      }
      ::close(c.fd);
      --count_;
      c = std::move(clients.back());
      clients.pop_back();
    }
  }
  for (auto& c : clients) ::close(c.fd);
  count_ -= clients.size();
}

}  // namespace firehub::api
