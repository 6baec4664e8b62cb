// Vector tiles: Web Mercator tile arithmetic (WebMercatorQuad), a Mapbox Vector Tile 2.1 encoder
// (on protozero), the zoom pyramid of the risk grid kept current cell by cell, point sets that
// cluster per tile, and per-tile change versions (what an ETag of a tile is made from).
// @remark CellPyramid, PointSet and TileVersions are thread-safe; MvtLayer is not (one per tile).
#pragma once

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/node_hash_map.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "firehub/status.h"

namespace firehub::tiles {

// Tiles are served up to this zoom; a client draws deeper zooms from these (overzoom).
inline constexpr int kMaxZoom = 16;
// Web Mercator's latitude limit, degrees.
inline constexpr double kMaxLat = 85.0511287798066;

struct TileId {
  int z = 0;
  uint32_t x = 0, y = 0;
  uint64_t key() const {
    return (static_cast<uint64_t>(z) << 58) | (static_cast<uint64_t>(x) << 29) | y;
  }
  std::string path() const;  // "z/x/y"
};

struct LonLatBox {
  double west = -180, south = -90, east = 180, north = 90;
  bool intersects(const LonLatBox& o) const {
    return west <= o.east && o.west <= east && south <= o.north && o.south <= north;
  }
};

// Parses the three parts of a tile address (decimal, no sign); invalid_argument naming the part
// that is not a number, or a zoom past kMaxZoom, or x or y past the zoom's 2^z - 1.
Result<TileId> parseTile(std::string_view z, std::string_view x, std::string_view y);
LonLatBox tileBounds(const TileId& tile);
// Fractional Web Mercator tile coordinates of lon/lat at zoom z (latitude clamped to kMaxLat).
std::pair<double, double> mercatorTileXY(int z, double lon, double lat);

// Tiles of zoom z whose area, grown by `margin` of a tile on every side, touches `box`.
struct TileRange {
  int z = 0;
  uint32_t x0 = 0, x1 = 0, y0 = 0, y1 = 0;
};
TileRange tilesTouching(int z, const LonLatBox& box, double margin);

// One layer of a Mapbox Vector Tile (spec 2.1): features given in lon/lat are projected into the
// tile's grid (`extent` units a side), features wholly outside the tile and its buffer left out,
// keys and values shared through the layer's tables, polygon rings wound as the spec says
// (exterior clockwise in tile coordinates, holes counter-clockwise).
class MvtLayer {
 public:
  using Value = std::variant<std::string, double, int64_t, bool>;
  using Properties = std::vector<std::pair<std::string_view, Value>>;
  using Ring = std::vector<std::pair<double, double>>;  // lon, lat

  MvtLayer(std::string name, const TileId& tile, uint32_t extent = 4096, uint32_t buffer = 256);
  // False when the feature was left out (outside the tile and buffer, or degenerate once on the
  // grid). `id` 0: none.
  bool addPoint(double lon, double lat, const Properties& properties, uint64_t id = 0);
  bool addPolygon(const std::vector<Ring>& rings, const Properties& properties, uint64_t id = 0);
  size_t features() const { return features_; }
  // Appends the layer as a Tile.layers field (nothing when it has no feature).
  void appendTo(std::string& tile) const;

 private:
  std::pair<int64_t, int64_t> project(double lon, double lat) const;
  void addFeature(int type, const std::vector<uint32_t>& geometry, const Properties& properties,
                  uint64_t id);
  uint32_t keyIndex(std::string_view key);
  uint32_t valueIndex(const Value& value);

  std::string name_;
  TileId tile_;
  uint32_t extent_;
  int64_t buffer_;
  double scale_;  // 2^z
  size_t features_ = 0;
  std::string feature_bytes_;  // the encoded Layer.features fields
  std::vector<std::string> keys_;
  std::unordered_map<std::string, uint32_t> key_index_;
  std::vector<std::string> values_;  // each an encoded Value message
  std::unordered_map<std::string, uint32_t> value_index_;
};

// --- The risk grid's zoom pyramid ---

// What a map draws of one grid cell: its warning level's rank (1 = highest), its score, and the
// bands of the response and water coverage layers (0 = best).
struct CellState {
  uint8_t rank = 0;
  float score = 0;
  uint8_t response_band = 0;
  uint8_t water_band = 0;
};

// A cell of any level summarised over the grid cells under it: how many, how many per level
// rank (rank r at by_rank[r - 1]; ranks past kRanks count in the last), the highest score and
// the worst bands.
struct CellSummary {
  static constexpr int kRanks = 8;
  uint32_t cells = 0;
  std::array<uint32_t, kRanks> by_rank{};
  float max_score = 0;
  uint8_t worst_response = 0;
  uint8_t worst_water = 0;
  // The highest level present (lowest rank number); 0 when none.
  int topRank() const;
  void add(const CellSummary& o);
  static CellSummary of(const CellState& s);
};

// The grid cells (S2 cells of `leaf_level`) and, for every coarser level down to `min_level`,
// the summary of each cell that has grid cells under it, kept current as grid cells change (a
// change walks up its ancestors, each summarised again from its four children).
class CellPyramid {
 public:
  CellPyramid(int leaf_level, int min_level);
  int leafLevel() const { return leaf_level_; }
  int minLevel() const { return min_level_; }
  // Sets a grid cell (a cell of another level is ignored); returns false when nothing changed.
  bool set(uint64_t cell, const CellState& state);
  bool erase(uint64_t cell);
  // Many cells at once (a start): between beginLoad() (which empties the pyramid) and endLoad()
  // set() and erase() change only the grid cells; endLoad() summarises every level once.
  void beginLoad();
  void endLoad();
  // Cells of `level` (min_level..leaf_level) that intersect `box`, in S2 order, with their
  // summaries (a grid cell's is its own), until fn returns false.
  void forEachIn(int level, const LonLatBox& box,
                 const std::function<bool(uint64_t, const CellSummary&)>& fn) const;
  size_t cells() const;

 private:
  void resummarise(uint64_t leaf);
  int leaf_level_, min_level_;
  bool loading_ = false;
  mutable std::shared_mutex mu_;
  // levels_[level - min_level_]: S2 cell id -> summary; the leaf level holds the grid cells.
  std::vector<absl::btree_map<uint64_t, CellSummary>> levels_;
};

// --- Point sets ---

struct PointItem {
  double lon = 0, lat = 0;
  uint8_t state = 0;  // index into the layer's legend; a higher one is worse
  std::string id;     // entity id
  std::string label;  // name, or empty
};

// The points of one layer by entity key, with a spatial index for a tile's area.
class PointSet {
 public:
  // Sets or moves a point; `old` gets its former place when it had one. False when unchanged.
  bool put(const std::string& key, PointItem item, std::optional<std::pair<double, double>>* old);
  // Removes a point; its place when it was there.
  std::optional<std::pair<double, double>> erase(const std::string& key);
  // Points in `box`, until fn returns false.
  void forEachIn(const LonLatBox& box, const std::function<bool(const PointItem&)>& fn) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  using Items = absl::node_hash_map<std::string, std::pair<uint64_t, PointItem>>;
  Items items_;  // key -> (S2 leaf, item); nodes stay where they are
  absl::btree_set<std::pair<uint64_t, const Items::value_type*>> by_place_;  // (S2 leaf, node)
};

// The points of `set` in `box` grouped on a grid of `cells` x `cells` squares a side of `tile`
// (the grid goes on past the tile's edge): one group per occupied square, with its mean place,
// how many, the worst state, and the first point seen.
struct PointCluster {
  double lon = 0, lat = 0;
  uint32_t count = 0;
  uint8_t worst = 0;
  PointItem first;
};
std::vector<PointCluster> clusterPoints(const PointSet& set, const LonLatBox& box,
                                        const TileId& tile, uint32_t cells);

// --- Change versions ---

// A version per tile (zooms 0..kMaxZoom) that moves only when something in the tile (or its
// buffer) changes; tiles never touched share the base version. Past `max_tiles` remembered the
// map is cleared and the base moves (every tile changes once).
class TileVersions {
 public:
  explicit TileVersions(size_t max_tiles = 2'000'000) : max_tiles_(max_tiles) {}
  // Marks the tiles of every zoom whose area (with `margin` of a tile around it) touches box.
  void touch(const LonLatBox& box, double margin);
  // Every tile changes (a reload of the layer).
  void touchAll();
  uint64_t version(const TileId& tile) const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<uint64_t, uint64_t> versions_;
  uint64_t base_ = 1;
  uint64_t next_ = 2;
  size_t max_tiles_;
};

// Areas from GeoJSON (map.outlines' districts, upstream.area): Polygons and MultiPolygons of
// a FeatureCollection, a Feature or a bare geometry, each with its id and "name" property.
using Ring = std::vector<std::pair<double, double>>;  // lon, lat
struct Area {
  std::string id, name;
  std::string code;  // the "adcode" or "code" property (an administrative-division code), if any
  std::vector<std::vector<Ring>> polygons;  // each: outer ring, then holes
  LonLatBox box{180, 90, -180, -90};
  // Whether lon/lat lies inside (planar lon/lat, even-odd: holes are outside).
  bool contains(double lon, double lat) const;
};
// FailedPrecondition naming `setting` when the file is not GeoJSON with at least one polygon, or
// a coordinate is not a finite lon/lat; NotFound when it cannot be read.
Result<std::vector<Area>> readAreas(const std::string& file, const std::string& setting);

}  // namespace firehub::tiles
