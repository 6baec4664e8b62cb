// Area indexes: which index holds a record, and rebuilding them when the lake is opened with
// other indexes than last time.
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

uint32_t Lake::indexedBy(const firehub::v1::Record& r) const {
  if (r.op() == firehub::v1::OP_RETRACT) return 0;
  uint32_t bits = 0;
  for (size_t i = 0; i < options_.area_indexes.size(); ++i) {
    const auto& index = options_.area_indexes[i];
    if (index.domain == r.domain() && index.holds && index.holds(r)) bits |= uint32_t{1} << i;
  }
  return bits;
}

// Long: checking, comparing and rebuilding the indexes in one pass over the stored pointers.
Status Lake::prepareAreaIndexes() {
  const auto& indexes = options_.area_indexes;
  if (indexes.size() > 32) return Status::invalidArgument("a lake keeps at most 32 area indexes");
  std::string signature;
  std::set<std::string> domains;  // whose latest pointers may carry index bits
  for (const auto& index : indexes) {
    const bool named =
        !index.name.empty() && std::all_of(index.name.begin(), index.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
    if (!named || index.domain.empty()) {
      return Status::invalidArgument("area index '" + index.name +
                                     "' needs a name of letters, digits, '_' or '-' "
                                     "and a domain");
    }
    for (const auto& p : index_prefixes_) {
      if (p.compare(1, std::string::npos, index.name) == 0) {
        return Status::invalidArgument("two area indexes are named '" + index.name + "'");
      }
    }
    index_prefixes_.push_back("\x01" + index.name);
    if (!signature.empty()) signature += ';';
    signature += index.name + "=" + index.domain + "@" + std::to_string(index.version);
    domains.insert(index.domain);
  }
  std::string stored;
  auto gs = db_->Get(rocksdb::ReadOptions(), meta_, kAreaIndexesKey, &stored);
  if (!gs.ok() && !gs.IsNotFound()) return fromRocks(gs, "read meta");
  if (gs.ok() ? stored == signature : signature.empty()) return Status::ok();
  // A lake from before area indexes also kept a withdrawn entity in the geo index (area counts
  // from keys must not see it): its first build looks at every entity and takes those out.
  const bool first = gs.IsNotFound();
  // The domains of the indexes before: their pointers' bits are cleared or recomputed.
  for (size_t start = 0; start < stored.size();) {
    size_t end = stored.find(';', start);
    if (end == std::string::npos) end = stored.size();
    const std::string_view entry(stored.data() + start, end - start);
    const size_t eq = entry.find('='), at = entry.rfind('@');
    if (eq != std::string_view::npos && at != std::string_view::npos && at > eq) {
      domains.emplace(entry.substr(eq + 1, at - eq - 1));
    }
    start = end + 1;
  }
  FIREHUB_LOG(kInfo, "lake",
              "building the area indexes (" << (signature.empty() ? "none" : signature)
                                            << "; before: " << (stored.empty() ? "none" : stored)
                                            << ")");
  const auto t0 = std::chrono::steady_clock::now();
  rocksdb::WriteBatch batch;
  batch.DeleteRange(geo_, "\x01", "\x02");  // every area index entry; domains start with a letter
  FIREHUB_RETURN_IF_ERROR(write(batch, false, "clear the area indexes"));
  size_t entities = 0, entries = 0, withdrawn = 0;
  constexpr size_t kChunk = 1024;
  std::vector<std::string> keys, pointers;
  auto rebuildChunk = [&]() -> Status {
    std::vector<codec::LatestPointer> ptrs(keys.size());
    std::vector<rocksdb::Slice> ids;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!codec::decodeLatest(pointers[i], ptrs[i]))
        return Status::dataLoss("latest of " + keys[i] + " does not decode");
      ids.emplace_back(ptrs[i].record_id);
    }
    std::vector<rocksdb::PinnableSlice> records(ids.size());
    std::vector<rocksdb::Status> read(ids.size());
    db_->MultiGet(rocksdb::ReadOptions(), records_, ids.size(), ids.data(), records.data(),
                  read.data());
    batch.Clear();
    firehub::v1::Record r;
    for (size_t k = 0; k < ids.size(); ++k) {
      codec::LatestPointer& ptr = ptrs[k];
      uint32_t bits = 0;
      if (read[k].ok()) {
        if (!r.ParseFromArray(records[k].data(), static_cast<int>(records[k].size()))) {
          return Status::dataLoss("record " + ptr.record_id + " does not parse");
        }
        bits = indexedBy(r);
      } else if (!read[k].IsNotFound()) {
        return fromRocks(read[k], "read record");
      }
      bool changed = bits != ptr.indexed;
      if (read[k].ok() && r.op() == firehub::v1::OP_RETRACT && ptr.leaf_cell != 0) {
        batch.Delete(geo_, geoKey(r.domain(), ptr.leaf_cell, keys[k]));
        ptr.leaf_cell = 0;
        changed = true;
        ++withdrawn;
      }
      if (changed) {
        ptr.indexed = bits;
        batch.Put(latest_, keys[k], codec::encodeLatest(ptr));
      }
      for (size_t i = 0; i < index_prefixes_.size() && ptr.leaf_cell != 0; ++i) {
        if (!(bits & (uint32_t{1} << i))) continue;
        batch.Put(geo_, geoKey(index_prefixes_[i], ptr.leaf_cell, keys[k]), "");
        ++entries;
      }
    }
    entities += keys.size();
    keys.clear();
    pointers.clear();
    return batch.Count() == 0 ? Status::ok() : write(batch, false, "build the area indexes");
  };
  if (first) domains = {""};  // every entity (keys start with their domain)
  for (const auto& domain : domains) {
    const std::string prefix = domain.empty() ? std::string() : domain + "/";
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), latest_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      keys.push_back(it->key().ToString());
      pointers.push_back(it->value().ToString());
      if (keys.size() == kChunk) FIREHUB_RETURN_IF_ERROR(rebuildChunk());
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "scan latest"));
    FIREHUB_RETURN_IF_ERROR(rebuildChunk());
  }
  batch.Clear();
  if (signature.empty())
    batch.Delete(meta_, kAreaIndexesKey);
  else
    batch.Put(meta_, kAreaIndexesKey, signature);
  FIREHUB_RETURN_IF_ERROR(write(batch, true, "record the area indexes"));
  FIREHUB_LOG(kInfo, "lake",
              "area indexes built: "
                  << entities << " entities looked at, " << entries << " entries, " << withdrawn
                  << " withdrawn ones taken out of the geo index, in "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                  << " s");
  return Status::ok();
}

}  // namespace firehub::lake
