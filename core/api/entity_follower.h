// Keeps views of the lake current for the map (the tiles' point sets, the search index): on its
// own thread it runs each view's `load` (side by side), then, for every entity whose latest
// record fusion's live deltas name, hands that record (as the delta carried it, else read from
// the lake) to each view that follows the entity's domain, in the order the deltas came (an
// entity named several times while the thread was busy is applied once, at its newest). Keys named
// while the loads run wait and are applied after them, so an entity a load read in an older state
// ends current.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "firehub/fusion.h"
#include "firehub/lake.h"

namespace firehub::api {

class EntityFollower {
 public:
  struct Hooks {
    std::function<bool(const std::string& domain)> wanted;  // which entities' changes to follow
    std::function<void()> load;
    // The entity's latest record; null when it has none or it was retracted.
    std::function<void(const std::string& entity_key, const firehub::v1::Record* latest)> apply;
  };
  EntityFollower(const lake::Lake* lake, fusion::FusionEngine* fusion);
  ~EntityFollower();
  EntityFollower(const EntityFollower&) = delete;
  EntityFollower& operator=(const EntityFollower&) = delete;

  // Before start().
  void add(Hooks hooks);
  void start();
  void stop();
  // True once stop() was called: a long load checks it to end early.
  bool stopping();

  // The domain of an entity key (lake::entityKey: domain/type/id).
  static std::string domainOf(const std::string& entity_key);

 private:
  void run();
  bool wanted(const std::string& domain) const;

  const lake::Lake* lake_;
  fusion::FusionEngine* fusion_;
  std::vector<Hooks> views_;
  int listener_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  // An entity named by a delta, with its latest record when the delta carried it.
  struct Named {
    std::string key;
    std::shared_ptr<const firehub::v1::Record> record;
    bool carried = false;  // false: read it from the lake
  };
  std::deque<Named> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace firehub::api
