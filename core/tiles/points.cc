// Point sets of the point layers, their clusters per tile, and the tiles' change versions.
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <algorithm>
#include <cmath>

#include "firehub/tiles.h"

namespace firehub::tiles {

bool PointSet::put(const std::string& key, PointItem item,
                   std::optional<std::pair<double, double>>* old) {
  if (!std::isfinite(item.lon) || !std::isfinite(item.lat)) return false;
  const uint64_t leaf = S2CellId(S2LatLng::FromDegrees(item.lat, item.lon)).id();
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = items_.find(key);
  if (it != items_.end()) {
    const PointItem& was = it->second.second;
    if (it->second.first == leaf && was.state == item.state && was.id == item.id &&
        was.label == item.label && was.lon == item.lon && was.lat == item.lat)
      return false;
    if (old) *old = std::make_pair(was.lon, was.lat);
    by_place_.erase({it->second.first, &*it});
    it->second = {leaf, std::move(item)};
  } else {
    it = items_.try_emplace(key, leaf, std::move(item)).first;
  }
  by_place_.insert({leaf, &*it});
  return true;
}

std::optional<std::pair<double, double>> PointSet::erase(const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) return std::nullopt;
  auto place = std::make_pair(it->second.second.lon, it->second.second.lat);
  by_place_.erase({it->second.first, &*it});
  items_.erase(it);
  return place;
}

void PointSet::forEachIn(const LonLatBox& box,
                         const std::function<bool(const PointItem&)>& fn) const {
  S2LatLngRect rect(S2LatLng::FromDegrees(std::max(-90.0, box.south), std::max(-180.0, box.west)),
                    S2LatLng::FromDegrees(std::min(90.0, box.north), std::min(180.0, box.east)));
  S2RegionCoverer::Options options;
  options.set_max_cells(16);
  S2RegionCoverer coverer(options);
  std::vector<S2CellId> covering;
  coverer.GetCovering(rect, &covering);
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (const S2CellId& cover : covering) {
    for (auto it = by_place_.lower_bound({cover.range_min().id(), nullptr});
         it != by_place_.end() && it->first <= cover.range_max().id(); ++it) {
      const PointItem& p = it->second->second.second;
      if (p.lon < box.west || p.lon > box.east || p.lat < box.south || p.lat > box.north) continue;
      if (!fn(p)) return;
    }
  }
}

size_t PointSet::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return items_.size();
}

std::vector<PointCluster> clusterPoints(const PointSet& set, const LonLatBox& box,
                                        const TileId& tile, uint32_t cells) {
  absl::flat_hash_map<uint64_t, size_t> at;  // grid square -> index in out
  std::vector<PointCluster> out;
  std::vector<std::pair<double, double>> sums;
  set.forEachIn(box, [&](const PointItem& p) {
    auto [x, y] = mercatorTileXY(tile.z, p.lon, p.lat);
    const int64_t gx = static_cast<int64_t>(std::floor((x - tile.x) * cells));
    const int64_t gy = static_cast<int64_t>(std::floor((y - tile.y) * cells));
    const uint64_t square =
        (static_cast<uint64_t>(gx + (1 << 20)) << 32) | static_cast<uint64_t>(gy + (1 << 20));
    auto [it, added] = at.try_emplace(square, out.size());
    if (added) {
      out.push_back({0, 0, 0, p.state, p});
      sums.emplace_back(0, 0);
    }
    PointCluster& c = out[it->second];
    ++c.count;
    c.worst = std::max(c.worst, p.state);
    sums[it->second].first += p.lon;
    sums[it->second].second += p.lat;
    return true;
  });
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].lon = sums[i].first / out[i].count;
    out[i].lat = sums[i].second / out[i].count;
  }
  return out;
}

void TileVersions::touch(const LonLatBox& box, double margin) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t v = next_++;
  for (int z = 0; z <= kMaxZoom; ++z) {
    const TileRange r = tilesTouching(z, box, margin);
    const uint64_t count = uint64_t{r.x1 - r.x0 + 1} * (r.y1 - r.y0 + 1);
    if (count > 4096) {  // a change across a large area: every tile changes once
      versions_.clear();
      base_ = v;
      return;
    }
    for (uint32_t x = r.x0; x <= r.x1; ++x) {
      for (uint32_t y = r.y0; y <= r.y1; ++y) versions_[TileId{z, x, y}.key()] = v;
    }
  }
  if (versions_.size() > max_tiles_) {
    versions_.clear();
    base_ = v;
  }
}

void TileVersions::touchAll() {
  std::lock_guard<std::mutex> lock(mu_);
  versions_.clear();
  base_ = next_++;
}

uint64_t TileVersions::version(const TileId& tile) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = versions_.find(tile.key());
  return it == versions_.end() ? base_ : std::max(base_, it->second);
}

}  // namespace firehub::tiles
