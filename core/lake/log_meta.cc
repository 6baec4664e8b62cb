// The ordered log that consumers tail, the latest entities of a domain, and meta entries.
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

Status Lake::readLog(uint64_t from, size_t max,
                     std::vector<std::pair<uint64_t, std::string>>& out) const {
  std::string start;
  codec::appendBigEndian64(start, from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  codec::LogEntry entry;
  for (it->Seek(start); it->Valid() && out.size() < max; it->Next()) {
    const uint64_t seq = codec::readBigEndian64(it->key().data());
    if (!codec::decodeLog(it->value().ToStringView(), entry)) {
      return Status::dataLoss("log entry " + std::to_string(seq) + " does not decode");
    }
    out.emplace_back(seq, std::string(entry.record_id));
  }
  return fromRocks(it->status(), "scan log");
}

uint64_t Lake::lastSequence() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  return next_sequence_ - 1;
}

Status Lake::scanLatest(const std::string& domain,
                        const std::function<void(const firehub::v1::Record&)>& fn) const {
  std::string prefix = domain.empty() ? std::string() : domain + "/";
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), latest_));
  codec::LatestPointer ptr;
  // The records are read a thousand at a time (one MultiGet shares the lookups' block and
  // filter work: a start reads every entity's latest record).
  constexpr size_t kChunk = 1024;
  std::vector<std::string> ids;
  ids.reserve(kChunk);
  std::vector<std::optional<std::string>> bytes;
  firehub::v1::Record r;
  auto hand = [&]() -> Status {
    FIREHUB_RETURN_IF_ERROR(readRecordsBytes(ids, bytes));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!bytes[i]) continue;
      if (!r.ParseFromString(*bytes[i]))
        return Status::dataLoss("record " + ids[i] + " does not parse");
      if (r.op() != firehub::v1::OP_RETRACT) fn(r);
    }
    ids.clear();
    return Status::ok();
  };
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!codec::decodeLatest(it->value().ToStringView(), ptr)) {
      return Status::dataLoss("latest of " + it->key().ToString() + " does not decode");
    }
    ids.push_back(std::move(ptr.record_id));
    if (ids.size() == kChunk) FIREHUB_RETURN_IF_ERROR(hand());
  }
  FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan latest"));
  return hand();
}

Status Lake::putMeta(const std::string& key, const std::string& value) {
  rocksdb::WriteBatch batch;
  batch.Put(meta_, key, value);
  FIREHUB_RETURN_IF_ERROR(write(batch, options_.sync, "write meta"));
  if (meta_listener_) meta_listener_(key, &value);
  return Status::ok();
}

Status Lake::putMetaBatch(const std::vector<std::pair<std::string, std::string>>& entries,
                          const std::vector<std::string>& deletes) {
  rocksdb::WriteBatch batch;
  for (const auto& k : deletes) batch.Delete(meta_, k);
  for (const auto& [k, v] : entries) batch.Put(meta_, k, v);
  FIREHUB_RETURN_IF_ERROR(write(batch, options_.sync, "write meta batch"));
  if (meta_listener_) {
    for (const auto& k : deletes) meta_listener_(k, nullptr);
    for (const auto& [k, v] : entries) meta_listener_(k, &v);
  }
  return Status::ok();
}

Status Lake::deleteMeta(const std::string& key) {
  rocksdb::WriteBatch batch;
  batch.Delete(meta_, key);
  FIREHUB_RETURN_IF_ERROR(write(batch, options_.sync, "delete meta"));
  if (meta_listener_) meta_listener_(key, nullptr);
  return Status::ok();
}

Status Lake::applyReplicatedMeta(const std::string& key, const std::string* value) {
  rocksdb::WriteBatch batch;
  if (value)
    batch.Put(meta_, key, *value);
  else
    batch.Delete(meta_, key);
  return write(batch, options_.sync, "write replicated meta");
}

Result<std::optional<std::string>> Lake::getMeta(const std::string& key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), meta_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read meta"));
  return std::optional<std::string>(std::move(value));
}

Status Lake::scanMeta(const std::string& prefix,
                      const std::function<void(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    fn(it->key().ToString(), it->value().ToString());
  }
  return fromRocks(it->status(), "scan meta");
}

Status Lake::scanMetaFrom(
    const std::string& from, const std::string& prefix,
    const std::function<bool(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(std::max(from, prefix)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!fn(it->key().ToString(), it->value().ToString())) break;
  }
  return fromRocks(it->status(), "scan meta");
}

std::string positionKey(const std::string& topic, int partition, int64_t offset) {
  char tail[48];
  std::snprintf(tail, sizeof tail, "/%d/%020lld", partition, static_cast<long long>(offset));
  return kPositionPrefix + topic + tail;
}

}  // namespace firehub::lake
