// Records and latest state read back, and the caches of recent records and latest pointers.
#include "firehub/lake.h"
#include <google/protobuf/util/json_util.h>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iterator>
#include <set>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "lake/codec.h"
#include "lake/internal.h"

namespace firehub::lake {

void Lake::rememberLatest(LatestCache&& written) {
  if (options_.latest_cache_entries == 0) return;
  auto& kept = *latest_cache_;
  const size_t half = std::max<size_t>(1, options_.latest_cache_entries / 2);
  // The written entries move over whole (key and record id). Each is taken at the iterator
  // walking the table once: taking begin() again after each one scanned the emptied front of the
  // table every time, quadratic in a commit's entities.
  for (auto it = written.begin(); it != written.end();) {
    if (kept.young.size() >= half) {
      kept.old = std::move(kept.young);  // the old generation's entries are freed here
      kept.young = LatestCache();
      kept.young.reserve(half);
    }
    auto node = written.extract(it++);
    kept.young.insert_or_assign(std::move(node.key()), std::move(node.mapped()));
  }
  latest_cache_size_ = kept.young.size() + kept.old.size();
}

void Lake::remember(std::vector<Remembered>& records) {
  const size_t limit = options_.record_cache_mb << 20;
  const bool keep_unsent = publisher_known_.load();
  const uint64_t sent_below = published_below_.load();
  std::lock_guard<std::mutex> lock(cache_mu_);
  for (auto& r : records) {
    const size_t charge = r.id.capacity() + r.bytes.capacity() + sizeof(RecordCache::Held) + 32;
    auto& held = cache_->order.emplace_back(RecordCache::Held{std::move(r), charge});
    // An id is stored once, so it is not in the cache yet.
    cache_->by_id.emplace(std::string_view(held.record.id), &held);
    cache_->bytes += charge;
  }
  while (cache_->bytes > limit && !cache_->order.empty() &&
         (!keep_unsent || cache_->order.front().record.last_sequence < sent_below)) {
    cache_->dropFront();
  }
  if (cache_->bytes <= limit) return;
  // Only unsent records are left: this push stays out; the publisher reads it from RocksDB when
  // it gets there. (Those of its records the publisher already sent may have left from the front.)
  for (size_t mine = std::min(records.size(), cache_->order.size()); mine > 0; --mine)
    cache_->dropBack();
}

void Lake::notePublished(uint64_t sequence) {
  published_below_.store(sequence);
  publisher_known_.store(true);
}

bool Lake::recent(const std::string& id, std::string& out) const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_->by_id.find(std::string_view(id));
  if (it == cache_->by_id.end()) return false;
  out.assign(it->second->record.bytes);
  return true;
}

bool Lake::inRecordCache(const std::string& id) const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  return cache_->by_id.contains(std::string_view(id));
}

Result<bool> Lake::readRecordBytes(const std::string& id, std::string& out) const {
  if (recent(id, out)) return true;
  rocksdb::PinnableSlice value;
  auto s = db_->Get(rocksdb::ReadOptions(), records_, id, &value);
  if (s.IsNotFound()) return false;
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read record"));
  out.assign(value.data(), value.size());
  return true;
}

Status Lake::readRecordsBytes(const std::vector<std::string>& ids,
                              std::vector<std::optional<std::string>>& out) const {
  out.assign(ids.size(), std::nullopt);
  std::vector<size_t> missing;
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (recent(ids[i], bytes)) {
      out[i] = std::move(bytes);
      bytes = std::string();
    } else {
      missing.push_back(i);
    }
  }
  if (missing.empty()) return Status::ok();
  std::vector<rocksdb::Slice> keys;
  keys.reserve(missing.size());
  for (size_t i : missing) keys.emplace_back(ids[i]);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> read(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), records_, keys.size(), keys.data(), values.data(),
                read.data());
  for (size_t k = 0; k < keys.size(); ++k) {
    if (read[k].IsNotFound()) continue;
    FIREHUB_RETURN_IF_ERROR(fromRocks(read[k], "read record"));
    out[missing[k]].emplace(values[k].data(), values[k].size());
  }
  return Status::ok();
}

Result<bool> Lake::readRecord(const std::string& id, firehub::v1::Record& into) const {
  thread_local std::string bytes;
  auto found = readRecordBytes(id, bytes);
  if (!found.isOk() || !found.value()) return found;
  if (!into.ParseFromString(bytes)) return Status::dataLoss("record " + id + " does not parse");
  return true;
}

Result<std::optional<firehub::v1::Record>> Lake::getRecord(const std::string& id) const {
  firehub::v1::Record r;
  auto found = readRecord(id, r);
  FIREHUB_RETURN_IF_ERROR(found.status());
  if (!found.value()) return std::optional<firehub::v1::Record>();
  return std::optional<firehub::v1::Record>(std::move(r));
}

Result<std::optional<std::string>> Lake::latestId(const std::string& entity_key) const {
  std::string stored;
  auto s = db_->Get(rocksdb::ReadOptions(), latest_, entity_key, &stored);
  if (s.IsNotFound()) return std::optional<std::string>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read latest"));
  codec::LatestPointer ptr;
  if (!codec::decodeLatest(stored, ptr))
    return Status::dataLoss("latest of " + entity_key + " does not decode");
  return std::optional<std::string>(std::move(ptr.record_id));
}

Result<std::optional<firehub::v1::Record>> Lake::latest(const std::string& entity_key) const {
  auto id = latestId(entity_key);
  FIREHUB_RETURN_IF_ERROR(id.status());
  if (!id.value()) return std::optional<firehub::v1::Record>();
  return getRecord(*id.value());
}

}  // namespace firehub::lake
