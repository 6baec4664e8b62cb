// Retention: old history, dead letters and layer versions removed in batches, never an entity's
// latest record nor what a pending delivery or a log reader still needs; the lake's size.
#include <absl/container/flat_hash_set.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstring>

#include "firehub/lake.h"
#include "firehub/log.h"
#include "lake/codec.h"
#include "lake/internal.h"

namespace firehub::lake {
namespace {

constexpr size_t kBatchKeys = 2000;
// Past this many entries in the outbox column family, record retention waits (their record
// ids are gathered in memory to be kept).
constexpr size_t kMaxReferenced = 1000000;

bool startsWith(const rocksdb::Slice& key, const std::string& prefix) {
  return key.size() >= prefix.size() && std::memcmp(key.data(), prefix.data(), prefix.size()) == 0;
}

}  // namespace

void Lake::holdLog(const std::string& reader, std::function<uint64_t()> first_needed) {
  std::lock_guard<std::mutex> lock(holds_mu_);
  std::erase_if(log_holds_, [&](const auto& hold) { return hold.first == reader; });
  if (first_needed) log_holds_.emplace_back(reader, std::move(first_needed));
}

uint64_t Lake::firstNeededSequence() {
  uint64_t floor = 0;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    floor = log_sent_below_;
    if (outbox_floor_ <= outbox_top_) floor = std::min(floor, outbox_floor_);
  }
  // Nothing the history index has not reached yet (retention walks the index).
  floor = std::min(floor, historyIndexedBelow());
  std::lock_guard<std::mutex> lock(holds_mu_);
  for (const auto& [name, fn] : log_holds_) floor = std::min(floor, fn());
  return floor;
}

std::vector<std::pair<std::string, uint64_t>> Lake::sizeByFamily() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto* h : handles_) {
    uint64_t files = 0, memtables = 0;
    db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &files);
    db_->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &memtables);
    out.emplace_back(h->GetName(), files + memtables);
  }
  return out;
}

// Long: three walks (a domain's records in time, dead letters, layer versions), each in batches
// written under the commit lock so no commit lands between a check and its delete.
Result<RetentionResult> Lake::expire(const Retention& rules, int64_t now_micros) {
  RetentionResult result;
  // The index first reaches the commits made so far (else their records are kept this pass; a
  // slow index only delays retention, so its error is not retention's).
  waitHistoryIndexed().ignoreError();
  // What the outbox column family points at (records sent to subscriptions, dead letters). Read
  // once, then only the entries added since (their sequences are higher) under each batch's
  // lock: an entry delivered meanwhile stays in the set, which only keeps a record longer.
  absl::flat_hash_set<std::string> referenced;
  std::string scanned_past;  // the outbox key the set has read up to (BE sequence)
  auto gatherReferenced = [&]() -> Result<bool> {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), outbox_));
    std::string topic, key, id;
    if (scanned_past.empty()) {
      it->SeekToFirst();
    } else {
      it->Seek(scanned_past);
      if (it->Valid() && it->key() == rocksdb::Slice(scanned_past)) it->Next();
    }
    for (; it->Valid(); it->Next()) {
      if (referenced.size() >= kMaxReferenced) return false;
      if (codec::decodeOutbox(it->value().ToStringView(), topic, key, id)) referenced.insert(id);
      scanned_past.assign(it->key().data(), it->key().size());
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan outbox"));
    return true;
  };

  for (const auto& [domain, window] : rules.domains) {
    if (window <= 0) continue;
    const int64_t cutoff = now_micros - window;
    const std::string prefix = codec::domainTimePrefix(domain);
    std::string after;
    for (bool more = true; more;) {
      std::lock_guard<std::mutex> lock(commit_mu_);
      auto gathered = gatherReferenced();
      FIREHUB_RETURN_IF_ERROR(gathered.status());
      if (!gathered.value()) {
        FIREHUB_LOG(kWarning, "lake",
                    "retention of " << domain << " waits: more than " << kMaxReferenced
                                    << " deliveries are pending");
        break;
      }
      const uint64_t floor = firstNeededSequence();
      rocksdb::WriteBatch batch;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), history_));
      it->Seek(prefix + after);
      if (!after.empty() && it->Valid() && it->key() == rocksdb::Slice(prefix + after)) it->Next();
      size_t removed = 0;
      more = false;
      std::string key;
      for (; it->Valid() && startsWith(it->key(), prefix); it->Next()) {
        std::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
        if (rest.size() < 8 || it->value().size() < 8) continue;
        const int64_t observed = codec::unbiasedMicros(codec::readBigEndian64(rest.data()));
        if (observed >= cutoff) break;
        if (removed >= kBatchKeys) {
          more = true;
          break;
        }
        after.assign(rest);
        const uint64_t seq = codec::readBigEndian64(it->value().data());
        const std::string entity(it->value().data() + 8, it->value().size() - 8);
        const std::string id(rest.substr(8));
        if (seq >= floor || referenced.contains(id)) {
          ++result.kept_needed;
          continue;
        }
        std::string latest_id;
        if (const codec::LatestPointer* known = latest_cache_->find(entity)) {
          latest_id = known->record_id;
        } else {
          auto stored = latestId(entity);
          FIREHUB_RETURN_IF_ERROR(stored.status());
          if (stored.value()) latest_id = *stored.value();
        }
        if (latest_id == id) {
          ++result.kept_latest;
          continue;
        }
        // The entity key is domain/type/id (types hold no '/').
        const size_t type_end = entity.find('/', domain.size() + 1);
        if (type_end == std::string::npos) continue;
        const std::string type = entity.substr(domain.size() + 1, type_end - domain.size() - 1);
        const std::string entity_id = entity.substr(type_end + 1);
        batch.Delete(records_, id);
        batch.Delete(history_, it->key());
        batch.Delete(history_, codec::entityHistoryKey(domain, entity_id, type, observed, id));
        key.clear();
        codec::appendBigEndian64(key, seq);
        batch.Delete(log_, key);
        ++removed;
        {
          std::lock_guard<std::mutex> cached(cache_mu_);
          cache_->by_id.erase(std::string_view(id));
        }
      }
      FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan the time index"));
      if (removed > 0) {
        FIREHUB_RETURN_IF_ERROR(write(batch, false, "remove expired records"));
        result.records += removed;
      }
    }
  }

  if (rules.dead_letters_micros > 0) {
    const int64_t cutoff = now_micros - rules.dead_letters_micros;
    for (bool more = true; more;) {
      std::lock_guard<std::mutex> lock(commit_mu_);
      auto gathered = gatherReferenced();
      FIREHUB_RETURN_IF_ERROR(gathered.status());
      if (!gathered.value()) break;
      rocksdb::WriteBatch batch;
      size_t removed = 0;
      more = false;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dlq_));
      firehub::v1::DeadLetter letter;
      // Dead letters are in the order they came: the walk stops at the first within the window.
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        if (it->key().size() != 8 ||
            !letter.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
          continue;
        if (micros(letter.at()) >= cutoff) break;
        const uint64_t seq = codec::readBigEndian64(it->key().data());
        if (referenced.contains(kDeadLetterRefPrefix + std::to_string(seq))) continue;
        if (removed >= kBatchKeys) {
          more = true;
          break;
        }
        batch.Delete(dlq_, it->key());
        ++removed;
      }
      FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan dead letters"));
      if (removed > 0) {
        FIREHUB_RETURN_IF_ERROR(write(batch, false, "remove expired dead letters"));
        dlq_count_ -= std::min<uint64_t>(dlq_count_.load(), removed);
        result.dead_letters += removed;
      }
    }
  }

  if (rules.layer_versions_micros > 0) {
    // Each cell's versions newest first: those older than the one in force at the cutoff go.
    const uint64_t cutoff_inverted = ~codec::biasedMicros(now_micros - rules.layer_versions_micros);
    const std::string prefix = "at/";
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), layers_));
    rocksdb::WriteBatch batch;
    std::string cell_of_kept;  // the key up to the cell, of the version in force at the cutoff
    for (it->Seek(prefix); it->Valid() && startsWith(it->key(), prefix); it->Next()) {
      const rocksdb::Slice k = it->key();
      if (k.size() < prefix.size() + 16) continue;
      const std::string_view cell(k.data(), k.size() - 8);
      const uint64_t inverted = codec::readBigEndian64(k.data() + k.size() - 8);
      if (inverted <= cutoff_inverted) continue;  // at or after the cutoff: kept
      if (cell_of_kept != cell) {
        cell_of_kept.assign(cell);  // the newest before the cutoff: in force then, kept
        continue;
      }
      batch.Delete(layers_, k);
      if (++result.layer_versions % kBatchKeys == 0) {
        FIREHUB_RETURN_IF_ERROR(write(batch, false, "remove expired layer versions"));
        batch.Clear();
      }
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan layer versions"));
    if (batch.Count() > 0)
      FIREHUB_RETURN_IF_ERROR(write(batch, false, "remove expired layer versions"));
  }
  return result;
}

}  // namespace firehub::lake
