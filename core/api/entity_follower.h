// Keeps a view of the lake current for the map (the tiles' point sets, the search index): on its
// own thread it runs `load` once, then `apply` for every entity whose latest record fusion's live
// deltas name, in the order they came. Keys named while `load` runs wait and are applied after
// it, so an entity the load read in an older state ends current.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "firehub/fusion.h"

namespace firehub::api {

class EntityFollower {
 public:
  struct Hooks {
    std::function<bool(const std::string& domain)> wanted;  // which entities' changes to follow
    std::function<void()> load;
    std::function<void(const std::string& entity_key)> apply;
  };
  EntityFollower(fusion::FusionEngine* fusion, Hooks hooks);
  ~EntityFollower();
  EntityFollower(const EntityFollower&) = delete;
  EntityFollower& operator=(const EntityFollower&) = delete;

  void start();
  void stop();
  // True once stop() was called: a long load checks it to end early.
  bool stopping();

  // The domain of an entity key (lake::entityKey: domain/type/id).
  static std::string domainOf(const std::string& entity_key);

 private:
  void run();

  fusion::FusionEngine* fusion_;
  Hooks hooks_;
  int listener_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace firehub::api
