// The outbox: pending Kafka deliveries of the log and of derived data, read and removed on
// delivery reports.
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

void Lake::widenOutbox(uint64_t low, uint64_t high) {
  std::lock_guard<std::mutex> lock(marks_mu_);
  outbox_floor_ = std::min(outbox_floor_, low);
  outbox_top_ = std::max(outbox_top_, high);
}

Status Lake::readLogDeliveries(uint64_t from, size_t max, std::vector<OutboxEntry>& out) const {
  uint64_t sent_below, top;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    sent_below = log_sent_below_;
    top = log_delivery_top_;
  }
  from = std::max(from, sent_below);
  if (from >= top) return Status::ok();
  std::string start;
  codec::appendBigEndian64(start, from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_));
  // The entry before `from` may have deliveries at or after it.
  it->SeekForPrev(start);
  if (!it->Valid()) it->Seek(start);
  codec::LogEntry entry;
  for (; it->Valid() && out.size() < max; it->Next()) {
    const uint64_t seq = codec::readBigEndian64(it->key().data());
    if (seq >= top) break;
    if (!codec::decodeLog(it->value().ToStringView(), entry)) {
      return Status::dataLoss("log entry " + std::to_string(seq) + " does not decode");
    }
    for (size_t i = 0; i < entry.topic_count && out.size() < max; ++i) {
      if (seq + i < from) continue;
      OutboxEntry e;
      e.sequence = seq + i;
      e.topic.assign(entry.topics[i]);
      e.key.assign(entry.key);
      e.record_id.assign(entry.record_id);
      out.push_back(std::move(e));
    }
  }
  return fromRocks(it->status(), "scan log");
}

Status Lake::readOutbox(uint64_t from, size_t max, std::vector<OutboxEntry>& out) const {
  // Two ordered sources: the outbox family and the log's record deliveries, merged by sequence.
  std::vector<OutboxEntry> family, records;
  bool family_may_hold;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    family_may_hold = outbox_floor_ <= outbox_top_ && from <= outbox_top_;
  }
  if (family_may_hold) {
    std::string start;
    codec::appendBigEndian64(start, from);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
    for (it->Seek(start); it->Valid() && family.size() < max; it->Next()) {
      OutboxEntry e;
      e.sequence = codec::readBigEndian64(it->key().data());
      if (!codec::decodeOutbox(it->value().ToStringView(), e.topic, e.key, e.record_id)) {
        return Status::dataLoss("outbox entry " + std::to_string(e.sequence) + " does not decode");
      }
      family.push_back(std::move(e));
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan outbox"));
  }
  FIREHUB_RETURN_IF_ERROR(readLogDeliveries(from, max, records));
  const size_t first = out.size();
  size_t f = 0, r = 0;
  while (out.size() - first < max && (f < family.size() || r < records.size())) {
    if (r == records.size() || (f < family.size() && family[f].sequence < records[r].sequence)) {
      out.push_back(std::move(family[f++]));
    } else {
      // A delivery moving from the log to the family is read from both while it moves: once.
      if (f < family.size() && family[f].sequence == records[r].sequence) ++f;
      out.push_back(std::move(records[r++]));
    }
  }
  // The cache holds records in commit order, so by ascending last sequence: the record of an
  // entry is the first held one whose last sequence is not below the entry's. One search, then
  // a walk along both. An entry of another kind (a layer, a dead letter, a record delivered again
  // for a subscription) finds a record of another id and reads its own way.
  std::lock_guard<std::mutex> lock(cache_mu_);
  const auto& order = cache_->order;
  if (out.size() == first || order.empty()) return Status::ok();
  auto at = std::lower_bound(
      order.begin(), order.end(), out[first].sequence,
      [](const RecordCache::Held& h, uint64_t s) { return h.record.last_sequence < s; });
  for (size_t i = first; i < out.size(); ++i) {
    auto& e = out[i];
    while (at != order.end() && at->record.last_sequence < e.sequence) ++at;
    if (at == order.end()) break;
    if (at->record.id != e.record_id) continue;
    e.record_bytes.assign(at->record.bytes);
    e.cached = true;
  }
  return Status::ok();
}

std::optional<uint64_t> Lake::firstOutboxSequence() const {
  std::optional<uint64_t> first;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
  it->SeekToFirst();
  if (it->Valid()) first = codec::readBigEndian64(it->key().data());
  std::vector<OutboxEntry> record;
  if (readLogDeliveries(0, 1, record).isOk() && !record.empty()) {
    first = std::min(first.value_or(UINT64_MAX), record.front().sequence);
  }
  return first;
}

// Point and range tombstones for the given outbox family keys (sorted, unique): a run of
// consecutive sequences is one range tombstone instead of a tombstone per entry.
void Lake::deleteFamilyEntries(rocksdb::WriteBatch& batch, const std::vector<uint64_t>& sorted) {
  std::string key, end;
  constexpr size_t kRangeFrom = 8;  // shorter runs: one tombstone per entry
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i + 1;
    while (j < sorted.size() && sorted[j] == sorted[j - 1] + 1) ++j;
    if (j - i >= kRangeFrom) {
      key.clear();
      codec::appendBigEndian64(key, sorted[i]);
      end.clear();
      codec::appendBigEndian64(end, sorted[j - 1] + 1);
      batch.DeleteRange(outbox_, key, end);
      i = j;
    }
    for (; i < j; ++i) {
      key.clear();
      codec::appendBigEndian64(key, sorted[i]);
      batch.Delete(outbox_, key);
    }
  }
}

Status Lake::deleteOutbox(const std::vector<uint64_t>& sequences) {
  if (sequences.empty()) return Status::ok();
  std::vector<uint64_t> sorted(sequences);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  uint64_t sent_below;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    sent_below = log_sent_below_;
  }
  rocksdb::WriteBatch batch;
  std::vector<uint64_t> family;    // the given sequences that are outbox family keys
  std::vector<uint64_t> log_hits;  // and those that are record deliveries of the log
  family.reserve(sorted.size());
  // Record deliveries of the log among them: the mark moves past the highest, and the log's
  // deliveries below it that were not delivered move to the family under their own sequence.
  uint64_t moved_low = UINT64_MAX, moved_high = 0, new_mark = sent_below;
  if (sorted.back() >= sent_below) {
    std::vector<OutboxEntry> pending;
    for (uint64_t from = sent_below; from <= sorted.back();) {
      pending.clear();
      FIREHUB_RETURN_IF_ERROR(readLogDeliveries(from, 10000, pending));
      if (pending.empty()) break;
      for (const auto& e : pending) {
        if (e.sequence > sorted.back()) break;
        new_mark = e.sequence + 1;
        if (std::binary_search(sorted.begin(), sorted.end(), e.sequence)) {
          log_hits.push_back(e.sequence);
          continue;
        }
        std::string key;
        codec::appendBigEndian64(key, e.sequence);
        batch.Put(outbox_, key, codec::encodeOutbox(e.topic, e.key, e.record_id));
        moved_low = std::min(moved_low, e.sequence);
        moved_high = std::max(moved_high, e.sequence);
      }
      from = pending.back().sequence + 1;
    }
  }
  std::set_difference(sorted.begin(), sorted.end(), log_hits.begin(), log_hits.end(),
                      std::back_inserter(family));
  deleteFamilyEntries(batch, family);
  if (new_mark != sent_below) {
    putLogMark(batch, meta_, new_mark);
  }
  if (moved_low <= moved_high) widenOutbox(moved_low, moved_high);  // before they are visible
  // Not synced: if a crash loses these deletes the entries are delivered again (at least once).
  FIREHUB_RETURN_IF_ERROR(write(batch, false, "delete outbox"));
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    log_sent_below_ = std::max(log_sent_below_, new_mark);
  }
  outbox_depth_ -= std::min<uint64_t>(outbox_depth_.load(), sorted.size());
  return Status::ok();
}

Status Lake::deleteOutboxBelow(uint64_t from, uint64_t below, uint64_t entries) {
  if (below <= from) return Status::ok();
  rocksdb::WriteBatch batch;
  bool family_range;
  uint64_t sent_below;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    family_range = from <= outbox_top_ && below > outbox_floor_;
    sent_below = log_sent_below_;
  }
  if (family_range) {  // no tombstone where the family holds nothing
    std::string key, end;
    codec::appendBigEndian64(key, from);
    codec::appendBigEndian64(end, below);
    batch.DeleteRange(outbox_, key, end);
  }
  if (below > sent_below) {
    putLogMark(batch, meta_, below);
  }
  if (batch.Count() > 0) {
    // Not synced, as deleteOutbox.
    FIREHUB_RETURN_IF_ERROR(write(batch, false, "delete outbox"));
  }
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    log_sent_below_ = std::max(log_sent_below_, below);
    // Everything of the family below `below` is gone when the range started at or below its floor.
    if (family_range && from <= outbox_floor_) outbox_floor_ = std::max(outbox_floor_, below);
  }
  outbox_depth_ -= std::min<uint64_t>(outbox_depth_.load(), entries);
  return Status::ok();
}

}  // namespace firehub::lake
