// The geo index: bounding-box walks and counts over entities and area indexes.
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

std::optional<LonLat> representativePoint(const firehub::v1::Geometry& g) {
  if (g.has_point()) return LonLat{g.point().lon(), g.point().lat()};
  const firehub::v1::Polygon* poly = nullptr;
  if (g.has_polygon())
    poly = &g.polygon();
  else if (g.has_multi_polygon() && g.multi_polygon().polygons_size() > 0)
    poly = &g.multi_polygon().polygons(0);
  if (!poly || poly->rings_size() == 0 || poly->rings(0).points_size() == 0) return std::nullopt;
  LonLat sum;
  const auto& ring = poly->rings(0);
  for (const auto& p : ring.points()) {
    sum.lon += p.lon();
    sum.lat += p.lat();
  }
  return LonLat{sum.lon / ring.points_size(), sum.lat / ring.points_size()};
}

std::optional<BBox> boundsOf(const firehub::v1::Geometry& g) {
  BBox box{180, 90, -180, -90};
  auto take = [&box](const firehub::v1::Point& p) {
    box.min_lon = std::min(box.min_lon, p.lon());
    box.max_lon = std::max(box.max_lon, p.lon());
    box.min_lat = std::min(box.min_lat, p.lat());
    box.max_lat = std::max(box.max_lat, p.lat());
  };
  auto take_polygon = [&take](const firehub::v1::Polygon& poly) {
    for (const auto& ring : poly.rings()) {
      for (const auto& p : ring.points()) take(p);
    }
  };
  if (g.has_point()) take(g.point());
  if (g.has_polygon()) take_polygon(g.polygon());
  for (const auto& poly : g.multi_polygon().polygons()) take_polygon(poly);
  if (box.min_lon > box.max_lon) return std::nullopt;  // no points
  return box;
}

std::string entityKey(const firehub::v1::Record& r) {
  return r.domain() + "/" + r.entity_type() + "/" + r.entity_id();
}

std::string entityKeyOf(const firehub::v1::EntityRef& ref) {
  return ref.domain() + "/" + ref.entity_type() + "/" + ref.entity_id();
}

Result<std::vector<firehub::v1::Record>> Lake::latestInBBox(const std::string& domain,
                                                            const BBox& bbox, size_t limit) const {
  std::vector<firehub::v1::Record> out;
  if (limit == 0) return out;
  FIREHUB_RETURN_IF_ERROR(
      forEachLatestInBBox(domain, bbox, [&](firehub::v1::Record& r, std::string_view) {
        out.push_back(std::move(r));
        return out.size() < limit;
      }));
  return out;
}

Status Lake::forEachLatestInBBox(
    const std::string& domain, const BBox& bbox,
    const std::function<bool(firehub::v1::Record&, std::string_view)>& fn,
    std::string_view after) const {
  return walkArea(domain, bbox, fn, after);
}

const std::string* Lake::indexPrefix(const std::string& index) const {
  for (size_t i = 0; i < options_.area_indexes.size(); ++i) {
    if (options_.area_indexes[i].name == index) return &index_prefixes_[i];
  }
  return nullptr;
}

bool Lake::hasAreaIndex(const std::string& index) const { return indexPrefix(index) != nullptr; }

Status Lake::forEachIndexedInBBox(
    const std::string& index, const BBox& bbox,
    const std::function<bool(firehub::v1::Record&, std::string_view)>& fn,
    std::string_view after) const {
  const std::string* prefix = indexPrefix(index);
  if (!prefix) return Status::notFound("the lake has no area index '" + index + "'");
  return walkArea(*prefix, bbox, fn, after);
}

Status Lake::scanAreaKeys(
    const std::string& key_prefix, const BBox& bbox, std::string_view after,
    const std::function<bool(std::string_view position, uint64_t leaf)>& fn) const {
  S2LatLngRect rect(S2LatLng::FromDegrees(bbox.min_lat, bbox.min_lon),
                    S2LatLng::FromDegrees(bbox.max_lat, bbox.max_lon));
  S2RegionCoverer::Options opts;
  opts.set_max_cells(16);
  S2RegionCoverer coverer(opts);
  std::vector<S2CellId> covering;
  coverer.GetCovering(rect, &covering);
  std::string prefix = key_prefix;
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), geo_));
  const std::string resume = after.empty() ? std::string() : prefix + std::string(after);
  for (const S2CellId& cell : covering) {
    std::string lo = prefix;
    codec::appendBigEndian64(lo, cell.range_min().id());
    uint64_t hi = cell.range_max().id();
    // The covering's cells are in S2 order and do not overlap: the walk is in key order, and
    // resumes at the first key past `after`.
    if (!resume.empty() && resume >= lo) lo = resume;
    for (it->Seek(lo); it->Valid(); it->Next()) {
      auto k = it->key();
      if (!resume.empty() && k.compare(rocksdb::Slice(resume)) <= 0) continue;
      if (k.size() < prefix.size() + 8 || k.compare(rocksdb::Slice(prefix)) < 0 ||
          std::memcmp(k.data(), prefix.data(), prefix.size()) != 0) {
        break;
      }
      uint64_t leaf = codec::readBigEndian64(k.data() + prefix.size());
      if (leaf > hi) break;
      if (!fn(std::string_view(k.data() + prefix.size(), k.size() - prefix.size()), leaf))
        return Status::ok();
    }
    if (!it->status().ok()) return fromRocks(it->status(), "scan geo index");
  }
  return Status::ok();
}

Result<AreaCount> Lake::countArea(const std::string& key_prefix, const BBox& bbox,
                                  std::string_view after, size_t max) const {
  AreaCount count;
  Status scanned =
      scanAreaKeys(key_prefix, bbox, after, [&](std::string_view position, uint64_t leaf) {
        const S2LatLng at = S2CellId(leaf).ToLatLng();
        if (!bbox.contains(at.lng().degrees(), at.lat().degrees())) return true;
        if (count.count == max) {
          count.complete = false;
          return false;
        }
        ++count.count;
        count.last_position.assign(position.data(), position.size());
        return true;
      });
  if (!scanned.isOk()) return scanned;
  return count;
}

Result<AreaCount> Lake::countLatestInBBox(const std::string& domain, const BBox& bbox,
                                          std::string_view after, size_t max) const {
  return countArea(domain, bbox, after, max);
}

Result<AreaCount> Lake::countIndexedInBBox(const std::string& index, const BBox& bbox,
                                           std::string_view after, size_t max) const {
  const std::string* prefix = indexPrefix(index);
  if (!prefix) return Status::notFound("the lake has no area index '" + index + "'");
  return countArea(*prefix, bbox, after, max);
}

Status Lake::walkArea(const std::string& key_prefix, const BBox& bbox,
                      const std::function<bool(firehub::v1::Record&, std::string_view)>& fn,
                      std::string_view after) const {
  // The entities are looked up in chunks: one MultiGet of their latest pointers, one of the
  // records the recent-record cache does not hold (sorted keys share index and block work).
  constexpr size_t kChunk = 256;
  // Geo keys without the domain prefix: 8 bytes of leaf cell, then the entity key.
  std::vector<std::string> positions;
  positions.reserve(kChunk);
  bool stopped = false;
  auto visitChunk = [&]() -> Status {
    const size_t n = positions.size();
    if (n == 0) return Status::ok();
    std::vector<rocksdb::Slice> keys;
    keys.reserve(n);
    for (const auto& p : positions) keys.emplace_back(p.data() + 8, p.size() - 8);
    std::vector<rocksdb::PinnableSlice> pointers(n);
    std::vector<rocksdb::Status> found(n);
    db_->MultiGet(rocksdb::ReadOptions(), latest_, n, keys.data(), pointers.data(), found.data());
    std::vector<std::string> ids(n), bytes(n);
    std::vector<char> have(n, 0);
    std::vector<size_t> missing;
    for (size_t i = 0; i < n; ++i) {
      if (!found[i].ok()) {
        if (!found[i].IsNotFound()) return fromRocks(found[i], "read latest");
        continue;
      }
      codec::LatestPointer ptr;
      if (!codec::decodeLatest(pointers[i].ToStringView(), ptr)) continue;
      ids[i] = std::move(ptr.record_id);
      if (recent(ids[i], bytes[i]))
        have[i] = 1;
      else
        missing.push_back(i);
    }
    if (!missing.empty()) {
      std::vector<rocksdb::Slice> record_keys;
      record_keys.reserve(missing.size());
      for (size_t i : missing) record_keys.emplace_back(ids[i]);
      std::vector<rocksdb::PinnableSlice> records(missing.size());
      std::vector<rocksdb::Status> read(missing.size());
      db_->MultiGet(rocksdb::ReadOptions(), records_, missing.size(), record_keys.data(),
                    records.data(), read.data());
      for (size_t k = 0; k < missing.size(); ++k) {
        if (read[k].IsNotFound()) continue;
        FIREHUB_RETURN_IF_ERROR(fromRocks(read[k], "read record"));
        bytes[missing[k]].assign(records[k].data(), records[k].size());
        have[missing[k]] = 1;
      }
    }
    firehub::v1::Record r;
    for (size_t i = 0; i < n && !stopped; ++i) {
      if (!have[i]) continue;
      if (!r.ParseFromString(bytes[i]))
        return Status::dataLoss("record " + ids[i] + " does not parse");
      if (r.op() == firehub::v1::OP_RETRACT) continue;  // withdrawn
      auto where = anchor(r.geometry());
      if (!where || !bbox.contains(where->lng().degrees(), where->lat().degrees())) continue;
      if (!fn(r, positions[i])) stopped = true;
    }
    positions.clear();
    return Status::ok();
  };

  Status chunked;
  Status scanned = scanAreaKeys(key_prefix, bbox, after, [&](std::string_view position, uint64_t) {
    positions.emplace_back(position);
    if (positions.size() < kChunk) return true;
    chunked = visitChunk();
    return chunked.isOk() && !stopped;
  });
  FIREHUB_RETURN_IF_ERROR(scanned);
  FIREHUB_RETURN_IF_ERROR(chunked);
  return stopped ? Status::ok() : visitChunk();
}

}  // namespace firehub::lake
