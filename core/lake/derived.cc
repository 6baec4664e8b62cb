// Derived data (fusion's layers, checkpoints and their deliveries) in one batch.
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

Status Lake::commitDerived(const DerivedBatch& derived) {
  std::lock_guard<std::mutex> lock(commit_mu_);  // outbox sequences come from the one counter
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : derived.layer_puts) batch.Put(layers_, k, v);
  for (const auto& k : derived.layer_deletes) batch.Delete(layers_, k);
  for (const auto& v : derived.versions)
    batch.Put(layers_, codec::layerVersionKey(v.layer, v.cell, v.at_micros), v.entry);
  uint64_t seq = next_sequence_;
  std::string key;
  if (!derived.deliveries.empty()) widenOutbox(seq, seq + derived.deliveries.size() - 1);
  for (const auto& d : derived.deliveries) {
    key.clear();
    codec::appendBigEndian64(key, seq++);
    batch.Put(
        outbox_, key,
        codec::encodeOutbox(d.topic, d.key,
                            d.record_id.empty() ? kLayerRefPrefix + d.layer_key : d.record_id));
  }
  for (const auto& [k, v] : derived.meta) batch.Put(meta_, k, v);
  if (batch.Count() == 0) return Status::ok();
  // Not fsynced: the batch is in the WAL once written (a process crash keeps it), and an
  // operating-system crash that loses it loses the checkpoint in it too, so fusion recomputes
  // the same from the log (which ingest syncs). A later synced write syncs it as well.
  outbox_depth_ += derived.deliveries.size();  // before the write, as in commit()
  if (Status written = write(batch, false, "commit derived batch"); !written.isOk()) {
    outbox_depth_ -= derived.deliveries.size();
    return written;
  }
  next_sequence_ = seq;
  return Status::ok();
}

Result<std::optional<std::string>> Lake::getLayer(const std::string& key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), layers_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read layer"));
  return std::optional<std::string>(std::move(value));
}

Status Lake::scanLayers(
    const std::string& prefix,
    const std::function<void(const std::string&, const std::string&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), layers_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    fn(it->key().ToString(), it->value().ToString());
  }
  return fromRocks(it->status(), "scan layers");
}

}  // namespace firehub::lake
