// The tiles module: tile addresses, the MVT encoder read back field by field with protozero's
// reader, the cell pyramid kept current cell by cell against one loaded whole, point sets and
// their clusters, and per-tile versions.
#include <gtest/gtest.h>
#include <protozero/pbf_reader.hpp>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <random>
#include <set>

#include "firehub/tiles.h"

namespace firehub::tiles {
namespace {

TEST(Tiles, AddressesAreCheckedAndBoundsRoundTrip) {
  EXPECT_FALSE(parseTile("17", "0", "0").isOk());
  EXPECT_FALSE(parseTile("3", "8", "0").isOk());
  EXPECT_FALSE(parseTile("3", "0", "-1").isOk());
  EXPECT_FALSE(parseTile("3", "0", "1.5").isOk());
  EXPECT_FALSE(parseTile("", "0", "0").isOk());
  auto t = parseTile("11", "1726", "761");
  ASSERT_TRUE(t.isOk());
  const LonLatBox b = tileBounds(t.value());
  EXPECT_LT(b.west, 123.43);
  EXPECT_GT(b.east, 123.43);
  auto [x, y] = mercatorTileXY(11, b.west, b.north);
  EXPECT_NEAR(x, 1726, 1e-9);
  EXPECT_NEAR(y, 761, 1e-9);
  const TileRange r = tilesTouching(11, b, 0);
  EXPECT_EQ(r.x0, 1726u);
  EXPECT_EQ(r.y1, 762u) << "a box's south edge on the next tile's north edge touches it";
}

struct Decoded {
  std::string name;
  uint32_t version = 0, extent = 0;
  std::vector<std::string> keys;
  struct Feature {
    uint32_t type = 0;
    std::vector<uint32_t> tags, geometry;
  };
  std::vector<Feature> features;
};

Decoded decode(const std::string& tile) {
  Decoded d;
  protozero::pbf_reader t(tile);
  EXPECT_TRUE(t.next(3));
  protozero::pbf_reader layer = t.get_message();
  while (layer.next()) {
    switch (layer.tag()) {
      case 15:
        d.version = layer.get_uint32();
        break;
      case 1:
        d.name = layer.get_string();
        break;
      case 3:
        d.keys.push_back(layer.get_string());
        break;
      case 5:
        d.extent = layer.get_uint32();
        break;
      case 2: {
        Decoded::Feature f;
        protozero::pbf_reader feature = layer.get_message();
        while (feature.next()) {
          if (feature.tag() == 3) {
            f.type = static_cast<uint32_t>(feature.get_enum());
          } else if (feature.tag() == 2) {
            auto r = feature.get_packed_uint32();
            f.tags.assign(r.begin(), r.end());
          } else if (feature.tag() == 4) {
            auto r = feature.get_packed_uint32();
            f.geometry.assign(r.begin(), r.end());
          } else {
            feature.skip();
          }
        }
        d.features.push_back(std::move(f));
        break;
      }
      default:
        layer.skip();
    }
  }
  return d;
}

TEST(Tiles, MvtLayerSharesKeysWindsRingsAndLeavesOutWhatIsElsewhere) {
  const TileId tile{11, 1726, 761};
  const LonLatBox b = tileBounds(tile);
  const double cx = (b.west + b.east) / 2, cy = (b.south + b.north) / 2;
  const double d = (b.east - b.west) / 8;
  MvtLayer layer("risk", tile);
  // Counter-clockwise in lon/lat (north up) is counter-clockwise on screen: it must be reversed.
  MvtLayer::Ring ring = {{cx - d, cy - d}, {cx + d, cy - d}, {cx + d, cy + d}, {cx - d, cy + d}};
  EXPECT_TRUE(layer.addPolygon({ring}, {{"level", std::string("I")}, {"score", int64_t{80}}}));
  EXPECT_TRUE(layer.addPoint(cx, cy, {{"level", std::string("I")}}));
  EXPECT_FALSE(layer.addPoint(b.east + (b.east - b.west), cy, {}))
      << "a tile's width east of it: outside the buffer";
  EXPECT_FALSE(layer.addPolygon({{{cx, cy}, {cx, cy}, {cx, cy}}}, {})) << "collapsed";
  EXPECT_FALSE(layer.addPoint(std::nan(""), cy, {}));
  std::string bytes;
  layer.appendTo(bytes);
  const Decoded got = decode(bytes);
  EXPECT_EQ(got.name, "risk");
  EXPECT_EQ(got.version, 2u);
  EXPECT_EQ(got.extent, 4096u);
  EXPECT_EQ(got.keys, (std::vector<std::string>{"level", "score"})) << "keys shared";
  ASSERT_EQ(got.features.size(), 2u);
  const auto& polygon = got.features[0];
  EXPECT_EQ(polygon.type, 3u);
  EXPECT_EQ(polygon.tags, (std::vector<uint32_t>{0, 0, 1, 1}));
  EXPECT_EQ(got.features[1].tags, (std::vector<uint32_t>{0, 0})) << "the value \"I\" shared";
  // MoveTo(1), 2 params, LineTo(3), 6 params, ClosePath(1).
  ASSERT_EQ(polygon.geometry.size(), 11u);
  EXPECT_EQ(polygon.geometry[0], (1u | (1u << 3)));
  EXPECT_EQ(polygon.geometry[3], (2u | (3u << 3)));
  EXPECT_EQ(polygon.geometry[10], (7u | (1u << 3)));
  std::vector<std::pair<int64_t, int64_t>> pts;
  int64_t x = 0, y = 0;
  auto unzig = [](uint32_t v) {
    return static_cast<int64_t>(static_cast<int32_t>((v >> 1) ^ (0u - (v & 1))));
  };
  x += unzig(polygon.geometry[1]), y += unzig(polygon.geometry[2]);
  pts.emplace_back(x, y);
  for (int i = 0; i < 3; ++i) {
    x += unzig(polygon.geometry[4 + 2 * i]), y += unzig(polygon.geometry[5 + 2 * i]);
    pts.emplace_back(x, y);
  }
  int64_t area2 = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    const auto& a = pts[i];
    const auto& c = pts[(i + 1) % pts.size()];
    area2 += a.first * c.second - c.first * a.second;
  }
  EXPECT_GT(area2, 0) << "an exterior ring has a positive area in tile coordinates";
  for (const auto& [px, py] : pts) {
    EXPECT_GT(px, 1500);
    EXPECT_LT(px, 2600);
    EXPECT_GT(py, 1300);  // a lon-degree span is longer in y at 42°N
    EXPECT_LT(py, 2800);
  }
  MvtLayer empty("none", tile);
  std::string nothing;
  empty.appendTo(nothing);
  EXPECT_TRUE(nothing.empty());
}

TEST(Tiles, PyramidKeptCellByCellEqualsOneLoadedWhole) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> lon(122.0, 125.0), lat(40.0, 43.0);
  std::uniform_int_distribution<int> rank(1, 4), band(0, 3);
  std::vector<std::pair<uint64_t, CellState>> cells;
  std::set<uint64_t> seen;
  for (int i = 0; i < 3000; ++i) {
    CellState s{static_cast<uint8_t>(rank(rng)), static_cast<float>(rank(rng) * 20),
                static_cast<uint8_t>(band(rng)), static_cast<uint8_t>(band(rng) % 3)};
    const uint64_t id = S2CellId(S2LatLng::FromDegrees(lat(rng), lon(rng))).parent(15).id();
    if (seen.insert(id).second) cells.emplace_back(id, s);
  }
  CellPyramid live(15, 4), loaded(15, 4);
  for (const auto& [id, s] : cells) live.set(id, s);
  // Half of them change and a third leave.
  for (size_t i = 0; i < cells.size(); i += 2) {
    cells[i].second.rank = 1;
    cells[i].second.score = 99;
    live.set(cells[i].first, cells[i].second);
  }
  std::vector<std::pair<uint64_t, CellState>> kept;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i % 3 == 0) {
      live.erase(cells[i].first);
    } else {
      kept.push_back(cells[i]);
    }
  }
  loaded.beginLoad();
  for (const auto& [id, s] : kept) loaded.set(id, s);
  loaded.endLoad();
  EXPECT_EQ(live.cells(), loaded.cells());
  for (int level = 4; level <= 15; ++level) {
    std::vector<std::pair<uint64_t, CellSummary>> a, b;
    live.forEachIn(level, LonLatBox{}, [&](uint64_t id, const CellSummary& s) {
      a.emplace_back(id, s);
      return true;
    });
    loaded.forEachIn(level, LonLatBox{}, [&](uint64_t id, const CellSummary& s) {
      b.emplace_back(id, s);
      return true;
    });
    ASSERT_EQ(a.size(), b.size()) << "level " << level;
    uint32_t total = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_EQ(a[i].second.cells, b[i].second.cells);
      EXPECT_EQ(a[i].second.by_rank, b[i].second.by_rank);
      EXPECT_EQ(a[i].second.max_score, b[i].second.max_score);
      EXPECT_EQ(a[i].second.worst_response, b[i].second.worst_response);
      total += a[i].second.cells;
    }
    EXPECT_EQ(total, kept.size()) << "every grid cell counted once at level " << level;
  }
}

TEST(Tiles, PointsMoveClusterAndMarkOnlyTheirTiles) {
  PointSet set;
  std::optional<std::pair<double, double>> old;
  EXPECT_TRUE(set.put("water/water_source/H1", {123.40, 41.80, 0, "H1", "一号"}, &old));
  EXPECT_FALSE(old);
  EXPECT_FALSE(set.put("water/water_source/H1", {123.40, 41.80, 0, "H1", "一号"}, &old))
      << "unchanged";
  EXPECT_TRUE(set.put("water/water_source/H2", {123.4001, 41.8001, 2, "H2", ""}, nullptr));
  EXPECT_TRUE(set.put("water/water_source/H3", {124.5, 42.5, 1, "H3", ""}, nullptr));
  EXPECT_TRUE(set.put("water/water_source/H1", {123.41, 41.81, 1, "H1", "一号"}, &old));
  ASSERT_TRUE(old);
  EXPECT_DOUBLE_EQ(old->first, 123.40);
  size_t near = 0;
  set.forEachIn({123.3, 41.7, 123.5, 41.9}, [&](const PointItem&) { return ++near, true; });
  EXPECT_EQ(near, 2u);
  const TileId province{6, 53, 23};
  auto clusters = clusterPoints(set, LonLatBox{}, province, 32);
  uint32_t total = 0;
  uint8_t worst = 0;
  for (const auto& c : clusters) total += c.count, worst = std::max(worst, c.worst);
  EXPECT_EQ(total, 3u);
  EXPECT_EQ(worst, 2);
  EXPECT_LT(clusters.size(), 3u) << "H1 and H2 share a square at zoom 6";
  EXPECT_TRUE(set.erase("water/water_source/H2"));
  EXPECT_FALSE(set.erase("water/water_source/H2"));
  EXPECT_EQ(set.size(), 2u);

  TileVersions versions;
  const TileId here{14, 13806, 6124}, there{14, 13900, 6000};
  const uint64_t here0 = versions.version(here), there0 = versions.version(there);
  const LonLatBox b = tileBounds(here);
  const double lon = (b.west + b.east) / 2, lat = (b.south + b.north) / 2;
  versions.touch({lon, lat, lon, lat}, 1.0 / 16);
  EXPECT_NE(versions.version(here), here0);
  EXPECT_EQ(versions.version(there), there0);
  EXPECT_NE(versions.version({0, 0, 0}), here0) << "the world tile holds it too";
  versions.touchAll();
  EXPECT_NE(versions.version(there), there0);
}

}  // namespace
}  // namespace firehub::tiles
