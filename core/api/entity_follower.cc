#include "api/entity_follower.h"

#include <chrono>

namespace firehub::api {

EntityFollower::EntityFollower(fusion::FusionEngine* fusion, Hooks hooks)
    : fusion_(fusion), hooks_(std::move(hooks)) {}

EntityFollower::~EntityFollower() { stop(); }

std::string EntityFollower::domainOf(const std::string& entity_key) {
  return entity_key.substr(0, entity_key.find('/'));
}

void EntityFollower::start() {
  if (fusion_) {
    listener_ = fusion_->addListener(
        [this](const fusion::FusionDelta& delta) {
          if (delta.entities.empty()) return;
          {
            std::lock_guard<std::mutex> lock(mu_);
            for (const auto& key : delta.entities) {
              if (hooks_.wanted(domainOf(key))) queue_.push_back(key);
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
  hooks_.load();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(200),
                 [this] { return stopping_ || !queue_.empty(); });
    std::deque<std::string> keys;
    keys.swap(queue_);
    lock.unlock();
    for (const auto& key : keys) hooks_.apply(key);
    lock.lock();
  }
}

}  // namespace firehub::api
