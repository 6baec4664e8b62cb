// The map's search index: the public names, addresses and ids of buildings and units, stations,
// hospitals and water sources, folded to lower case, in one text arena that a query scans with
// memmem. A province's million buildings take some tens of MB and a query tens of milliseconds,
// where decoding every latest record took seconds.
//
// Loaded from the lake's latest records when the hub starts (queries meanwhile answer from what
// is loaded so far, marked incomplete), then kept current from fusion's live deltas: an entity
// whose latest record changed is read again; a retracted one leaves the index.
//
// Only the public view of a record is indexed (restricted fields redacted first), so a search
// never reveals a restricted value, whoever asks.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "api/entity_follower.h"
#include "api/layers.h"

namespace firehub::api {

class SearchIndex {
 public:
  // The domains whose places are searched, in the order results come.
  static const std::vector<std::string>& domains();

  explicit SearchIndex(const ApiContext& ctx);
  ~SearchIndex();
  SearchIndex(const SearchIndex&) = delete;
  SearchIndex& operator=(const SearchIndex&) = delete;

  // Loads the index (on the follower's thread) and follows the places' changes from then on.
  void start(EntityFollower& follower);

  struct Hit {
    std::string entity_key;
    std::string matched;  // "name", "address" or "entity_id"
  };
  // Entities whose name, address or id contains `folded` (lower case, no control characters),
  // at most `limit`. `complete` is false while the index is still loading or when more matched.
  std::vector<Hit> find(std::string_view folded, size_t limit, bool& complete) const;

  size_t bytes() const;
  size_t entries() const;

  // Replaces or adds one entity's text; an empty label, address and id removes it.
  void put(const std::string& entity_key, const std::string& label, const std::string& address,
           const std::string& entity_id);
  void erase(const std::string& entity_key);

 private:
  void load();
  void apply(const std::string& key, const firehub::v1::Record* latest);
  void dropLocked(std::string_view key);
  void compactLocked();

  // The set of entries holds offsets and hashes and compares them by the key stored in the arena.
  struct KeyHash {
    using is_transparent = void;
    const std::string* arena;
    size_t operator()(uint64_t offset) const;
    size_t operator()(std::string_view key) const;
  };
  struct KeyEq {
    using is_transparent = void;
    const std::string* arena;
    bool operator()(uint64_t a, uint64_t b) const;
    bool operator()(uint64_t a, std::string_view b) const;
    bool operator()(std::string_view a, uint64_t b) const { return (*this)(b, a); }
  };

  const ApiContext& ctx_;

  // Entry: label 0x1d address 0x1d entity_id 0x1e entity_key '\n'. A dropped entry's bytes are
  // overwritten with 0x1f (no query holds control characters, so none matches it).
  mutable std::shared_mutex data_mu_;
  std::string arena_;
  absl::flat_hash_set<uint64_t, KeyHash, KeyEq> at_{0, KeyHash{&arena_}, KeyEq{&arena_}};
  size_t dead_bytes_ = 0;
  std::atomic<bool> loaded_{false};
  EntityFollower* follower_ = nullptr;
};

}  // namespace firehub::api
