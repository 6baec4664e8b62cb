#include "api/entity_follower.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "firehub/log.h"

namespace firehub::api {

EntityFollower::EntityFollower(const lake::Lake* lake, fusion::FusionEngine* fusion)
    : lake_(lake), fusion_(fusion) {}

EntityFollower::~EntityFollower() { stop(); }

std::string EntityFollower::domainOf(const std::string& entity_key) {
  return entity_key.substr(0, entity_key.find('/'));
}

void EntityFollower::add(Hooks hooks) { views_.push_back(std::move(hooks)); }

bool EntityFollower::wanted(const std::string& domain) const {
  return std::any_of(views_.begin(), views_.end(),
                     [&](const Hooks& v) { return v.wanted(domain); });
}

void EntityFollower::start() {
  if (!lake_ || views_.empty()) return;
  if (fusion_) {
    listener_ = fusion_->addListener(
        [this](const fusion::FusionDelta& delta) {
          if (delta.entities.empty()) return;
          {
            std::lock_guard<std::mutex> lock(mu_);
            const bool carried = delta.entity_records.size() == delta.entities.size();
            for (size_t i = 0; i < delta.entities.size(); ++i) {
              const auto& key = delta.entities[i];
              if (!wanted(domainOf(key))) continue;
              queue_.push_back({key, carried ? delta.entity_records[i] : nullptr, carried});
            }
          }
          cv_.notify_one();
        },
        /*live=*/true);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void EntityFollower::stop() {
  if (listener_ && fusion_) fusion_->removeListener(listener_);
  listener_ = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool EntityFollower::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void EntityFollower::run() {
  log::nameThread("fh-entities");
  {
    std::vector<std::thread> loads;
    for (size_t i = 1; i < views_.size(); ++i) loads.emplace_back([this, i] { views_[i].load(); });
    views_[0].load();
    for (auto& t : loads) t.join();
  }
  std::unique_lock<std::mutex> lock(mu_);
  absl::flat_hash_map<std::string, size_t> last;  // key -> its last place in the batch
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(200),
                 [this] { return stopping_ || !queue_.empty(); });
    std::deque<Named> named;
    named.swap(queue_);
    lock.unlock();
    last.clear();
    for (size_t i = 0; i < named.size(); ++i) last[named[i].key] = i;
    for (size_t i = 0; i < named.size(); ++i) {
      const std::string& key = named[i].key;
      if (last[key] != i) continue;  // named again later in this batch: applied there
      std::optional<firehub::v1::Record> read;
      const firehub::v1::Record* r = named[i].record.get();
      if (!named[i].carried) {
        auto latest = lake_->latest(key);
        if (!latest.isOk()) {
          FIREHUB_LOG(kWarning, "api",
                      "map views: reading " << key << ": " << latest.status().message());
          continue;
        }
        read = std::move(latest.value());
        r = read && read->op() != firehub::v1::OP_RETRACT ? &*read : nullptr;
      }
      const std::string domain = domainOf(key);
      for (const auto& v : views_) {
        if (v.wanted(domain)) v.apply(key, r);
      }
    }
    lock.lock();
  }
}

}  // namespace firehub::api
