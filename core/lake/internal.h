// The lake's own pieces shared by its source files (not part of the public lake.h): column
// family and meta key names, RocksDB status mapping, the geo key layout, and the caches' types.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/write_batch.h>
#include <s2/s2latlng.h>

#include <cstdarg>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firehub/lake.h"
#include "firehub/log.h"
#include "lake/codec.h"

namespace firehub::lake {

inline constexpr const char* kRecords = "records";
inline constexpr const char* kLatest = "latest";
inline constexpr const char* kGeo = "geo";
inline constexpr const char* kLog = "log";
inline constexpr const char* kOutbox = "outbox";
inline constexpr const char* kDlq = "dlq";
inline constexpr const char* kMeta = "meta";
inline constexpr const char* kLayers = "layers";
inline constexpr const char* kHistory = "history";
// meta key set once the history index covered every record (by lakes whose commits wrote it)
inline constexpr const char* kHistoryIndexKey = "lake/history_index";
// key in the history family: every log entry below this sequence (BE) is in the index
inline constexpr const char* kHistoryMarkKey = "indexed_below";
// meta key of the mark below which the log's record deliveries are done (sequence, BE)
inline constexpr const char* kLogSentKey = "lake/log_delivered_below";
// The area indexes the lake was last opened with: name=domain@version; ...
inline constexpr const char* kAreaIndexesKey = "lake/area_indexes";

inline void putLogMark(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* meta,
                       uint64_t below) {
  std::string mark;
  codec::appendBigEndian64(mark, below);
  batch.Put(meta, kLogSentKey, mark);
}

inline Status fromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return Status::ok();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kNoSpace) {
    return Status::resourceExhausted(message);
  }
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return Status::unavailable(message);
  }
  if (s.IsCorruption()) return Status::dataLoss(message);
  return Status::internal(message);
}

inline std::optional<S2LatLng> anchor(const firehub::v1::Geometry& g) {
  auto p = representativePoint(g);
  if (!p) return std::nullopt;
  return S2LatLng::FromDegrees(p->lat, p->lon);
}

inline int64_t micros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

// The two history index entries of a stored record (lake.h has the layout), key and value:
// its entity's version, and its place in the domain's time (with the entity key, for retention).
inline void addHistoryEntries(const firehub::v1::Record& r, int64_t observed, uint64_t seq,
                              std::string_view entity,
                              std::vector<std::pair<std::string, std::string>>& out) {
  std::string at;
  codec::appendBigEndian64(at, seq);
  out.emplace_back(
      codec::entityHistoryKey(r.domain(), r.entity_id(), r.entity_type(), observed, r.id()), at);
  out.emplace_back(codec::domainTimeKey(r.domain(), observed, r.id()), at + std::string(entity));
}

inline std::string geoKey(std::string_view domain, uint64_t leaf, std::string_view entity) {
  std::string k(domain);
  k.push_back('\0');
  codec::appendBigEndian64(k, leaf);
  k += entity;
  return k;
}

// Entity key -> its latest pointer.
struct Lake::LatestCache : absl::flat_hash_map<std::string, codec::LatestPointer> {};

// The kept pointers in two generations of up to half the cap each: a commit's pointers go into
// the young one; a full young generation becomes the old one and the old one is dropped whole.
// Entities written within the last half-cap to whole-cap writes are found, with no per-entry
// eviction and no recency list. An entity in both has its newer pointer in the young one, which
// is looked at first.
struct Lake::LatestGenerations {
  LatestCache young, old;
  const codec::LatestPointer* find(const std::string& entity) const {
    if (auto it = young.find(entity); it != young.end()) return &it->second;
    if (auto it = old.find(entity); it != old.end()) return &it->second;
    return nullptr;
  }
};

// Recently committed records as stored, in commit order (oldest first) with their charged size,
// and by id (the key views the entry's own id; a deque keeps its elements in place).
struct Lake::RecordCache {
  struct Held {
    Remembered record;
    size_t bytes;  // charged: both strings' buffers, the entry and the map slot
  };
  absl::flat_hash_map<std::string_view, const Held*> by_id;
  std::deque<Held> order;
  size_t bytes = 0;

  void drop(const Held& h) {
    // Retention may have taken the id out already (and a later push may have put it back).
    if (auto it = by_id.find(std::string_view(h.record.id)); it != by_id.end() && it->second == &h)
      by_id.erase(it);
    bytes -= h.bytes;
  }
  void dropFront() {
    drop(order.front());
    order.pop_front();
  }
  void dropBack() {
    drop(order.back());
    order.pop_back();
  }
};

// The history index's writer thread and what commits handed it (history_writer.cc).
struct Lake::HistoryWriter {
  struct Handed {
    uint64_t end;  // the commit's next sequence: the mark once it is written
    std::vector<std::pair<std::string, std::string>> entries;
  };
  mutable std::mutex mu;
  std::condition_variable work;          // something handed over, or stop
  mutable std::condition_variable done;  // `below` moved
  std::deque<Handed> queue;
  size_t queued_entries = 0;
  bool from_log = false;  // commits were not handed over (too many waiting, a failed write)
  uint64_t target = 0;    // the end of the last commit
  std::atomic<uint64_t> below{0};
  bool stop = false;
  std::thread thread;
};

}  // namespace firehub::lake
