// History: an entity's versions and a domain's records in time (the history column family), the
// layers' versions (the map at a moment). The index is written by history_writer.cc.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <cstring>

#include "firehub/lake.h"
#include "firehub/log.h"
#include "lake/codec.h"
#include "lake/internal.h"

namespace firehub::lake {
namespace {

bool startsWith(const rocksdb::Slice& key, const std::string& prefix) {
  return key.size() >= prefix.size() && std::memcmp(key.data(), prefix.data(), prefix.size()) == 0;
}

// Past every key that starts with `prefix` followed by a time and an id.
std::string pastTimes(const std::string& prefix) { return prefix + std::string(9, '\xff'); }

std::string timeBound(const std::string& prefix, int64_t micros) {
  std::string k = prefix;
  codec::appendBigEndian64(k, codec::biasedMicros(micros));
  return k;
}

}  // namespace

Status Lake::entityHistory(const std::string& domain, const std::string& entity_type,
                           const std::string& entity_id, int64_t from, int64_t to,
                           std::string_view after, const TimedFn& fn) const {
  FIREHUB_RETURN_IF_ERROR(waitHistoryIndexed());
  const std::string base = codec::entityHistoryPrefix(domain, entity_id);
  std::string prefix = base;
  if (!entity_type.empty()) codec::appendLengthPrefixed(prefix, entity_type);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), history_));
  const std::string resume = after.empty() ? std::string() : base + std::string(after);
  if (!resume.empty()) {
    it->Seek(resume);
    if (it->Valid() && it->key() == rocksdb::Slice(resume)) it->Next();
  } else {
    it->Seek(entity_type.empty() ? base : timeBound(prefix, from));
  }
  firehub::v1::Record record;
  while (it->Valid() && startsWith(it->key(), prefix)) {
    std::string_view rest(it->key().data() + base.size(), it->key().size() - base.size());
    std::string_view type;
    std::string_view keyed = rest;
    if (!codec::readLengthPrefixedView(keyed, type) || keyed.size() < 8 || it->value().size() < 8) {
      return Status::dataLoss("history key of " + domain + "/" + entity_id + " does not decode");
    }
    const std::string type_prefix = base + std::string(rest.substr(0, 2 + type.size()));
    const int64_t observed = codec::unbiasedMicros(codec::readBigEndian64(keyed.data()));
    if (observed < from) {
      it->Seek(timeBound(type_prefix, from));
      continue;
    }
    if (observed >= to) {
      it->Seek(pastTimes(type_prefix));
      continue;
    }
    TimedRecord found;
    found.position = rest;
    found.observed_micros = observed;
    found.sequence = codec::readBigEndian64(it->value().data());
    found.record_id = keyed.substr(8);
    auto read = readRecord(std::string(found.record_id), record);
    FIREHUB_RETURN_IF_ERROR(read.status());
    if (read.value() && !fn(found, record)) return Status::ok();
    it->Next();
  }
  return fromRocks(it->status(), "read an entity's history");
}

Status Lake::recordsInTime(const std::string& domain, const std::string& feed, int64_t from,
                           int64_t to, std::string_view after, const TimedFn& fn) const {
  FIREHUB_RETURN_IF_ERROR(waitHistoryIndexed());
  const std::string prefix = codec::domainTimePrefix(domain);
  const std::string feed_prefix = feed.empty() ? std::string() : feed + ":";
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), history_));
  const std::string resume = after.empty() ? std::string() : prefix + std::string(after);
  const std::string start = timeBound(prefix, from);
  if (!resume.empty() && resume > start) {
    it->Seek(resume);
    if (it->Valid() && it->key() == rocksdb::Slice(resume)) it->Next();
  } else {
    it->Seek(start);
  }
  firehub::v1::Record record;
  for (; it->Valid() && startsWith(it->key(), prefix); it->Next()) {
    std::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (rest.size() < 8 || it->value().size() < 8)
      return Status::dataLoss("time index key of " + domain + " does not decode");
    const int64_t observed = codec::unbiasedMicros(codec::readBigEndian64(rest.data()));
    if (observed >= to) break;
    TimedRecord found;
    found.position = rest;
    found.observed_micros = observed;
    found.sequence = codec::readBigEndian64(it->value().data());
    found.record_id = rest.substr(8);
    if (!feed_prefix.empty() && found.record_id.substr(0, feed_prefix.size()) != feed_prefix)
      continue;
    auto read = readRecord(std::string(found.record_id), record);
    FIREHUB_RETURN_IF_ERROR(read.status());
    if (read.value() && !fn(found, record)) return Status::ok();
  }
  return fromRocks(it->status(), "read a domain's records in time");
}

Result<std::optional<std::string>> Lake::layerCellAt(const std::string& layer, uint64_t cell,
                                                     int64_t at_micros) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), layers_));
  const std::string key = codec::layerVersionKey(layer, cell, at_micros);
  it->Seek(key);
  FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "read a layer's history"));
  // The first key at or past it is the cell's newest version at or before the time, if it is
  // still the same cell.
  const size_t cell_end = key.size() - 8;
  if (!it->Valid() || it->key().size() != key.size() ||
      std::memcmp(it->key().data(), key.data(), cell_end) != 0 || it->value().empty()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->value().ToString());
}

Status Lake::layerAt(const std::string& layer, int level, const BBox& bbox, int64_t at_micros,
                     const std::function<bool(uint64_t, const std::string&)>& fn) const {
  if (level < 0 || level > S2CellId::kMaxLevel) return Status::invalidArgument("bad cell level");
  S2LatLngRect rect(S2LatLng::FromDegrees(bbox.min_lat, bbox.min_lon),
                    S2LatLng::FromDegrees(bbox.max_lat, bbox.max_lon));
  S2RegionCoverer::Options opts;
  opts.set_max_cells(16);
  opts.set_max_level(level);
  S2RegionCoverer coverer(opts);
  std::vector<S2CellId> covering;
  coverer.GetCovering(rect, &covering);
  const std::string prefix = codec::layerVersionPrefix(layer);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), layers_));
  std::string key;
  for (const S2CellId& area : covering) {
    const uint64_t hi = area.range_max().id();
    uint64_t next = area.range_min().id();
    while (true) {
      key = prefix;
      codec::appendBigEndian64(key, next);
      it->Seek(key);
      if (!it->Valid() || it->key().size() != prefix.size() + 16 || !startsWith(it->key(), prefix))
        break;
      const uint64_t cell = codec::readBigEndian64(it->key().data() + prefix.size());
      if (cell > hi) break;
      // The cell's newest version at or before the time.
      key.resize(prefix.size());
      codec::appendBigEndian64(key, cell);
      codec::appendBigEndian64(key, ~codec::biasedMicros(at_micros));
      it->Seek(key);
      if (it->Valid() && it->key().size() == key.size() &&
          std::memcmp(it->key().data(), key.data(), key.size() - 8) == 0 && !it->value().empty()) {
        // Cells that meet the box, as the live layer gives them.
        if (rect.Intersects(S2Cell(S2CellId(cell))) && !fn(cell, it->value().ToString())) {
          return Status::ok();
        }
      }
      if (cell == UINT64_MAX) break;
      next = cell + 1;
    }
    FIREHUB_RETURN_IF_ERROR(fromRocks(it->status(), "read a layer's history"));
  }
  return Status::ok();
}

}  // namespace firehub::lake
