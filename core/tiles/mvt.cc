// The Mapbox Vector Tile 2.1 encoder: one Tile.Layer message written with protozero.
#include <protozero/pbf_writer.hpp>
#include <protozero/varint.hpp>

#include <algorithm>
#include <cmath>

#include "firehub/tiles.h"

namespace firehub::tiles {
namespace {

// Field numbers of vector_tile.proto (MVT 2.1).
enum : protozero::pbf_tag_type {
  kTileLayers = 3,
  kLayerVersion = 15,
  kLayerName = 1,
  kLayerFeatures = 2,
  kLayerKeys = 3,
  kLayerValues = 4,
  kLayerExtent = 5,
  kFeatureId = 1,
  kFeatureTags = 2,
  kFeatureType = 3,
  kFeatureGeometry = 4,
  kValueString = 1,
  kValueDouble = 3,
  kValueSint = 6,
  kValueBool = 7,
};
enum GeomType : int { kPoint = 1, kPolygon = 3 };
enum Command : uint32_t { kMoveTo = 1, kLineTo = 2, kClosePath = 7 };

uint32_t command(Command id, uint32_t count) { return (id & 0x7) | (count << 3); }
uint32_t zigzag(int64_t v) { return protozero::encode_zigzag32(static_cast<int32_t>(v)); }

}  // namespace

MvtLayer::MvtLayer(std::string name, const TileId& tile, uint32_t extent, uint32_t buffer)
    : name_(std::move(name)),
      tile_(tile),
      extent_(extent),
      buffer_(buffer),
      scale_(std::ldexp(1.0, tile.z)) {}

std::pair<int64_t, int64_t> MvtLayer::project(double lon, double lat) const {
  auto [x, y] = mercatorTileXY(tile_.z, lon, lat);
  return {std::llround((x - tile_.x) * extent_), std::llround((y - tile_.y) * extent_)};
}

bool MvtLayer::addPoint(double lon, double lat, const Properties& properties, uint64_t id) {
  if (!std::isfinite(lon) || !std::isfinite(lat)) return false;
  auto [x, y] = project(lon, lat);
  const int64_t lo = -buffer_, hi = static_cast<int64_t>(extent_) + buffer_;
  if (x < lo || x > hi || y < lo || y > hi) return false;
  addFeature(kPoint, {command(kMoveTo, 1), zigzag(x), zigzag(y)}, properties, id);
  return true;
}

bool MvtLayer::addPolygon(const std::vector<Ring>& rings, const Properties& properties,
                          uint64_t id) {
  std::vector<uint32_t> geometry;
  int64_t cx = 0, cy = 0;  // the cursor runs on across rings
  int64_t min_x = INT64_MAX, min_y = INT64_MAX, max_x = INT64_MIN, max_y = INT64_MIN;
  std::vector<std::pair<int64_t, int64_t>> pts;
  for (size_t r = 0; r < rings.size(); ++r) {
    pts.clear();
    for (const auto& [lon, lat] : rings[r]) {
      if (!std::isfinite(lon) || !std::isfinite(lat)) return false;
      auto p = project(lon, lat);
      if (pts.empty() || pts.back() != p) pts.push_back(p);
    }
    while (pts.size() > 1 && pts.front() == pts.back()) pts.pop_back();
    int64_t area2 = 0;  // twice the signed area (surveyor's formula, y down)
    for (size_t i = 0; i < pts.size(); ++i) {
      const auto& a = pts[i];
      const auto& b = pts[(i + 1) % pts.size()];
      area2 += a.first * b.second - b.first * a.second;
    }
    if (pts.size() < 3 || area2 == 0) {
      if (r == 0) return false;  // the exterior collapsed on the grid: nothing to draw
      continue;
    }
    // Exterior rings have a positive area, holes a negative one.
    if ((r == 0) != (area2 > 0)) std::reverse(pts.begin(), pts.end());
    for (const auto& [x, y] : pts) {
      min_x = std::min(min_x, x), max_x = std::max(max_x, x);
      min_y = std::min(min_y, y), max_y = std::max(max_y, y);
    }
    geometry.push_back(command(kMoveTo, 1));
    geometry.push_back(zigzag(pts[0].first - cx));
    geometry.push_back(zigzag(pts[0].second - cy));
    cx = pts[0].first, cy = pts[0].second;
    geometry.push_back(command(kLineTo, static_cast<uint32_t>(pts.size() - 1)));
    for (size_t i = 1; i < pts.size(); ++i) {
      geometry.push_back(zigzag(pts[i].first - cx));
      geometry.push_back(zigzag(pts[i].second - cy));
      cx = pts[i].first, cy = pts[i].second;
    }
    geometry.push_back(command(kClosePath, 1));
  }
  if (geometry.empty()) return false;
  const int64_t lo = -buffer_, hi = static_cast<int64_t>(extent_) + buffer_;
  if (max_x < lo || min_x > hi || max_y < lo || min_y > hi) return false;
  addFeature(kPolygon, geometry, properties, id);
  return true;
}

void MvtLayer::addFeature(int type, const std::vector<uint32_t>& geometry,
                          const Properties& properties, uint64_t id) {
  std::vector<uint32_t> tags;
  tags.reserve(properties.size() * 2);
  for (const auto& [key, value] : properties) {
    tags.push_back(keyIndex(key));
    tags.push_back(valueIndex(value));
  }
  std::string feature;
  protozero::pbf_writer f(feature);
  if (id) f.add_uint64(kFeatureId, id);
  if (!tags.empty()) f.add_packed_uint32(kFeatureTags, tags.begin(), tags.end());
  f.add_enum(kFeatureType, type);
  f.add_packed_uint32(kFeatureGeometry, geometry.begin(), geometry.end());
  protozero::pbf_writer(feature_bytes_).add_message(kLayerFeatures, feature);
  ++features_;
}

uint32_t MvtLayer::keyIndex(std::string_view key) {
  auto [it, added] = key_index_.try_emplace(std::string(key), static_cast<uint32_t>(keys_.size()));
  if (added) keys_.emplace_back(key);
  return it->second;
}

uint32_t MvtLayer::valueIndex(const Value& value) {
  std::string encoded;
  protozero::pbf_writer v(encoded);
  if (const auto* s = std::get_if<std::string>(&value)) {
    v.add_string(kValueString, *s);
  } else if (const auto* d = std::get_if<double>(&value)) {
    v.add_double(kValueDouble, std::isfinite(*d) ? *d : 0.0);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    v.add_sint64(kValueSint, *i);
  } else {
    v.add_bool(kValueBool, std::get<bool>(value));
  }
  auto [it, added] = value_index_.try_emplace(encoded, static_cast<uint32_t>(values_.size()));
  if (added) values_.push_back(std::move(encoded));
  return it->second;
}

void MvtLayer::appendTo(std::string& tile) const {
  if (features_ == 0) return;
  std::string layer;
  protozero::pbf_writer l(layer);
  l.add_uint32(kLayerVersion, 2);
  l.add_string(kLayerName, name_);
  layer += feature_bytes_;
  for (const auto& k : keys_) l.add_string(kLayerKeys, k);
  for (const auto& v : values_) l.add_message(kLayerValues, v);
  l.add_uint32(kLayerExtent, extent_);
  protozero::pbf_writer(tile).add_message(kTileLayers, layer);
}

}  // namespace firehub::tiles
