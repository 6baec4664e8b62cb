// The commit of a push: dedupe, latest pointers (owned by the entity's agency), geo and area
// index moves, log, outbox and dead letters in one batch.
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

Result<std::string> Lake::ownerIfOther(const std::string& current_id,
                                       const firehub::v1::Record& r) const {
  // Record ids start with their feed's id: the same feed is the same agency, without a read.
  const std::string_view feed = std::string_view(current_id).substr(0, current_id.find(':'));
  if (feed == r.feed_id()) return std::string();
  firehub::v1::Record current;
  auto found = readRecord(current_id, current);
  if (!found.isOk()) return found.status();
  if (!found.value() || current.agency().empty() || current.agency() == r.agency())
    return std::string();
  return current.agency();
}

firehub::v1::DeadLetter Lake::foreignWrite(const firehub::v1::Record& r, const std::string& owner) {
  firehub::v1::DeadLetter dl;
  dl.set_feed_id(r.feed_id());
  dl.set_agency(r.agency());
  dl.set_connector_id(r.provenance().connector_id());
  dl.set_connector_version(r.provenance().connector_version());
  dl.set_stage("validate");
  dl.set_restricted(bodyHasRestrictedFields(r));
  dl.set_reason(r.domain() + " entity " + r.entity_type() + "/" + r.entity_id() +
                " belongs to agency '" + owner + "'; agency '" + r.agency() +
                "' may not change it");
  dl.set_source_offset(r.provenance().source_offset());
  *dl.mutable_at() = r.received_at();
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(r, &json);
  dl.set_raw(json);
  dl.set_content_type("application/json");
  return dl;
}

// Long: one WriteBatch built in order (dedupe, ownership, latest pointers, geo and index moves,
// log, outbox, dead letters, meta) over state every step shares; the steps are marked inside.
Result<CommitResult> Lake::commit(const std::vector<StoreItem>& items,
                                  const std::vector<firehub::v1::DeadLetter>& dead_letters,
                                  const MetaFor& meta_for,
                                  const std::vector<uint64_t>& resolved_dead_letters, bool sync) {
  std::lock_guard<std::mutex> lock(commit_mu_);
  // The batch's buffer is reused by the next commit, unless this one made it large (a rare huge
  // push does not keep its memory).
  struct KeepSmall {
    std::unique_ptr<rocksdb::WriteBatch>& batch;
    ~KeepSmall() {
      if (batch->GetDataSize() > (size_t{16} << 20))
        batch = std::make_unique<rocksdb::WriteBatch>();
    }
  } keep_small{commit_batch_};
  rocksdb::WriteBatch& batch = *commit_batch_;
  batch.Clear();
  CommitResult result;
  uint64_t seq = next_sequence_;
  absl::flat_hash_set<std::string_view> ids_in_batch;
  ids_in_batch.reserve(items.size());
  // The newest pointer of each entity of this batch, and the cell its stored pointer had before
  // the batch (0: none): one latest and at most one geo move per entity, however many of its
  // records the batch holds.
  LatestCache latest_in_batch;
  struct Before {
    uint64_t leaf = 0;
    std::string_view domain;  // of the batch's record (geo keys start with the domain)
    uint32_t indexed = 0;     // the area indexes that held the entity
  };
  absl::flat_hash_map<std::string, Before> leaf_before;
  std::string value;
  std::string key;
  size_t outbox_added = 0;
  uint64_t log_deliveries_end = 0;   // after the last delivery of this commit's log entries
  std::vector<size_t> stored_items;  // indexes of the items written (not duplicates)
  std::vector<char> refused_items(items.size(), 0);  // another agency's entity: not written
  std::vector<firehub::v1::DeadLetter> refused_letters;
  std::vector<uint64_t> last_sequences;  // of each stored item: its last outbox sequence
  std::vector<std::pair<std::string, std::string>> history;  // history index key, value
  history.reserve(2 * items.size());

  // Dedupe: the same source record (same stable id) is stored once. Ids new to this batch are
  // looked up in RocksDB together (one MultiGet shares the filter and block work of a batch).
  std::vector<size_t> candidates;
  candidates.reserve(items.size());
  for (size_t index = 0; index < items.size(); ++index) {
    const auto& r = items[index].record();
    if (r.id().empty() || r.entity_id().empty() || r.domain().empty()) {
      return Status::invalidArgument("record without id, entity or domain");
    }
    if (items[index].topics.size() > codec::kMaxLogTopics) {
      return Status::invalidArgument("record " + r.id() + " is for more than " +
                                     std::to_string(codec::kMaxLogTopics) + " topics");
    }
    if (ids_in_batch.insert(r.id()).second)
      candidates.push_back(index);
    else
      ++result.duplicates;
  }
  // The ids are sorted once: the MultiGet takes them in key order (sorting them itself cost it ~6 %
  // of a commit's instructions), and the records go into the batch in the same order below.
  std::vector<size_t> by_id = candidates;
  std::sort(by_id.begin(), by_id.end(),
            [&](size_t a, size_t b) { return items[a].record().id() < items[b].record().id(); });
  std::vector<rocksdb::Slice> keys;
  keys.reserve(by_id.size());
  std::vector<uint32_t> slot(items.size());  // an item's place in by_id
  for (size_t k = 0; k < by_id.size(); ++k) {
    keys.emplace_back(items[by_id[k]].record().id());
    slot[by_id[k]] = static_cast<uint32_t>(k);
  }
  std::vector<rocksdb::PinnableSlice> found(by_id.size());
  std::vector<rocksdb::Status> stored(by_id.size());  // ok: stored before
  db_->MultiGet(rocksdb::ReadOptions(), records_, by_id.size(), keys.data(), found.data(),
                stored.data(),
                /*sorted_input=*/true);

  for (size_t c = 0; c < candidates.size(); ++c) {
    const size_t index = candidates[c];
    const auto& item = items[index];
    const auto& r = item.record();
    const rocksdb::Status& before = stored[slot[index]];
    if (before.ok()) {
      ++result.duplicates;
      continue;
    }
    if (!before.IsNotFound()) return fromRocks(before, "read record");

    // Latest pointer: only a newer observation moves it.
    std::string entity = item.entity_key.empty() ? entityKey(r) : item.entity_key;
    codec::LatestPointer current;
    bool have_current = false;
    auto in = latest_in_batch.find(entity);
    if (in != latest_in_batch.end()) {
      current = in->second;
      have_current = true;
    } else if (const codec::LatestPointer* known = latest_cache_->find(entity)) {
      current = *known;
      have_current = true;
    } else {
      std::string stored;
      auto ls = db_->Get(rocksdb::ReadOptions(), latest_, entity, &stored);
      if (ls.ok()) {
        have_current = codec::decodeLatest(stored, current);
      } else if (!ls.IsNotFound()) {
        return fromRocks(ls, "read latest");
      }
    }
    // An entity belongs to the agency that wrote it first: another agency's record for it is
    // not stored (a dead letter says whose it is), so no agency can move another's state.
    if (have_current) {
      auto owner = ownerIfOther(current.record_id, r);
      if (!owner.isOk()) return owner.status();
      if (!owner->empty()) {
        refused_items[index] = 1;
        refused_letters.push_back(foreignWrite(r, *owner));
        continue;
      }
    }
    stored_items.push_back(index);
    int64_t observed = micros(r.observed_at());
    // The history index's entries (for its writer, after the write).
    addHistoryEntries(r, observed, seq, entity, history);
    if (!have_current || observed >= current.observed_micros) {
      codec::LatestPointer next;
      next.observed_micros = observed;
      next.record_id = r.id();
      next.indexed = indexedBy(r);
      if (r.op() == firehub::v1::OP_RETRACT) {
        next.leaf_cell = 0;  // a withdrawn entity leaves the geo index (area walks and counts)
      } else if (item.leaf_cell != 0) {
        next.leaf_cell = item.leaf_cell;
      } else {
        auto where = anchor(r.geometry());
        next.leaf_cell = where ? S2CellId(*where).id() : 0;
      }
      if (in != latest_in_batch.end()) {
        in->second = std::move(next);
      } else {
        auto placed = latest_in_batch.emplace(std::move(entity), std::move(next)).first;
        leaf_before.emplace(placed->first,
                            have_current ? Before{current.leaf_cell, r.domain(), current.indexed}
                                         : Before{0, r.domain(), 0});
      }
    }

    // The log entry carries the record's deliveries: one sequence number per topic, from the
    // entry's own on.
    key.clear();
    codec::appendBigEndian64(key, seq);
    value.clear();
    codec::appendLog(value, item.topics, r.entity_id(), r.id());
    batch.Put(log_, key, value);
    outbox_added += item.topics.size();
    seq += std::max<size_t>(item.topics.size(), 1);
    if (!item.topics.empty()) log_deliveries_end = seq;
    last_sequences.push_back(seq - 1);
    ++result.stored;
  }

  // Records and latest pointers go into the batch in key order: RocksDB inserts a sorted run into
  // its memtables near the previous insert instead of searching each key from the top.
  // The serialised records also go to the recent-record cache after the write.
  const bool cache = options_.record_cache_mb > 0;
  std::vector<std::string> serialised(cache ? items.size() : 0);
  for (size_t k = 0; k < by_id.size(); ++k) {
    if (!stored[k].IsNotFound()) continue;  // stored before (any other status returned above)
    const size_t index = by_id[k];
    if (refused_items[index]) continue;
    const auto& r = items[index].record();
    std::string& bytes = cache ? serialised[index] : value;
    bytes.clear();
    r.SerializeToString(&bytes);
    batch.Put(records_, r.id(), bytes);
  }
  std::vector<const LatestCache::value_type*> pointers;
  pointers.reserve(latest_in_batch.size());
  for (const auto& entry : latest_in_batch) pointers.push_back(&entry);
  std::sort(pointers.begin(), pointers.end(), [](auto* a, auto* b) { return a->first < b->first; });
  // Geo entries are keyed by place, not by entity: they are gathered and go in in key order too
  // (each key is one entity's at one place, so no two changes of the batch share a key).
  std::vector<std::pair<std::string, bool>> geo_changes;  // key, put (else delete)
  for (const auto* entry : pointers) {
    const auto& [entity, next] = *entry;
    batch.Put(latest_, entity, codec::encodeLatest(next));
    // The geo entry follows the entity's cell; one that stays in its cell (a station reporting
    // again) keeps its entry.
    const Before& before = leaf_before[entity];
    const bool moved = before.leaf != next.leaf_cell;
    if (moved) {
      if (before.leaf != 0)
        geo_changes.emplace_back(geoKey(before.domain, before.leaf, entity), false);
      if (next.leaf_cell != 0)
        geo_changes.emplace_back(geoKey(before.domain, next.leaf_cell, entity), true);
    }
    // So do its area index entries, and they come and go with what the indexes hold.
    if (!moved && before.indexed == next.indexed) continue;
    for (size_t i = 0; i < index_prefixes_.size(); ++i) {
      const uint32_t bit = uint32_t{1} << i;
      const bool was = (before.indexed & bit) && before.leaf != 0,
                 is = (next.indexed & bit) && next.leaf_cell != 0;
      if (was && (moved || !is))
        geo_changes.emplace_back(geoKey(index_prefixes_[i], before.leaf, entity), false);
      if (is && (moved || !was))
        geo_changes.emplace_back(geoKey(index_prefixes_[i], next.leaf_cell, entity), true);
    }
  }
  std::sort(geo_changes.begin(), geo_changes.end());
  for (const auto& [geo_key, put] : geo_changes) {
    if (put)
      batch.Put(geo_, geo_key, "");
    else
      batch.Delete(geo_, geo_key);
  }

  std::vector<const firehub::v1::DeadLetter*> letters;
  letters.reserve(dead_letters.size() + refused_letters.size());
  for (const auto& dl : dead_letters) letters.push_back(&dl);
  for (const auto& dl : refused_letters) letters.push_back(&dl);
  if (!letters.empty()) widenOutbox(seq, seq + 2 * letters.size() - 1);
  for (const auto* letter : letters) {
    const auto& dl = *letter;
    const uint64_t dl_seq = seq++;
    key.clear();
    codec::appendBigEndian64(key, dl_seq);
    value.clear();
    dl.SerializeToString(&value);
    batch.Put(dlq_, key, value);
    ++result.dead_lettered;
    key.clear();
    codec::appendBigEndian64(key, seq++);
    batch.Put(outbox_, key,
              codec::encodeOutbox(kDeadLetterTopic, dl.feed_id(),
                                  kDeadLetterRefPrefix + std::to_string(dl_seq)));
    ++outbox_added;
  }
  result.foreign = refused_letters.size();
  size_t resolved = 0;
  for (uint64_t s : resolved_dead_letters) {
    key.clear();
    codec::appendBigEndian64(key, s);
    std::string existing;
    if (db_->Get(rocksdb::ReadOptions(), dlq_, key, &existing).ok()) ++resolved;
    batch.Delete(dlq_, key);
  }

  if (meta_for) {
    std::vector<std::pair<std::string, std::string>> meta;
    meta_for(result, meta);
    for (const auto& [k, v] : meta) batch.Put(meta_, k, v);
  }

  if (batch.Count() == 0) return result;
  // Where the log's deliveries end, known before they are visible. A commit that adds none while
  // every earlier one is delivered moves the mark past its records (a bulk load without topics
  // would otherwise lie between the mark and the next delivery, read over at every look).
  uint64_t mark_after = 0;
  {
    std::lock_guard<std::mutex> lock(marks_mu_);
    if (log_deliveries_end > 0) {
      log_delivery_top_ = std::max(log_delivery_top_, log_deliveries_end);
    } else if (!stored_items.empty() && log_sent_below_ >= log_delivery_top_ &&
               log_sent_below_ < seq) {
      mark_after = seq;
    }
  }
  if (mark_after > 0) {
    putLogMark(batch, meta_, mark_after);
  }
  // The new entries are counted before the write: once written, the publisher may send them and
  // take them off again before this thread runs on, and its decrement must find them counted.
  outbox_depth_ += outbox_added;
  if (Status written = write(batch, options_.sync && sync, "commit batch"); !written.isOk()) {
    outbox_depth_ -= outbox_added;
    return written;
  }
  next_sequence_ = seq;
  result.last_sequence = seq - 1;
  queueHistory(seq, std::move(history));  // the index is written by its own thread
  if (mark_after > 0) {
    std::lock_guard<std::mutex> lock(marks_mu_);
    log_sent_below_ = std::max(log_sent_below_, mark_after);
  }
  rememberLatest(std::move(latest_in_batch));
  dlq_count_ += result.dead_lettered;
  dlq_count_ -= std::min<uint64_t>(dlq_count_.load(), resolved);
  if (cache && !stored_items.empty()) {
    std::vector<Remembered> committed;
    committed.reserve(stored_items.size());
    for (size_t i = 0; i < stored_items.size(); ++i) {
      const size_t index = stored_items[i];
      committed.push_back(
          {items[index].record().id(), std::move(serialised[index]), last_sequences[i]});
    }
    remember(committed);
  }
  return result;
}

}  // namespace firehub::lake
