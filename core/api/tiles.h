// The layers as Mapbox Vector Tiles: what each layer draws at each zoom, kept current as fusion
// moves cells and records change, encoded once per change of a tile and kept compressed within
// the tile cache's budget. Private to the api module.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/entity_follower.h"
#include "api/layers.h"
#include "firehub/api.h"
#include "firehub/tiles.h"

namespace firehub::api {

// Generalisation: a tile of zoom z draws the risk grid's cells of S2 level z + kCellZoomOffset
// (a cell then covers about 16 of a 512-pixel tile's pixels: a full screen holds some 8,000 at
// most, within the bytes a view may take), or the grid cells themselves from the zoom where that
// level reaches the grid's. Points are clustered below kClusterZoom on a grid of kClusterCells
// squares a tile side (32 pixels each: a cluster's circle grows to about that size, and a full
// screen of hydrant clusters stays within a view's bytes); buildings are drawn from kBuildingZoom.
inline constexpr int kCellZoomOffset = 3;
inline constexpr int kClusterZoom = 14;
inline constexpr uint32_t kClusterCells = 16;
inline constexpr int kBuildingZoom = 15;

class TileService {
 public:
  TileService(const ApiContext& ctx, size_t cache_bytes);
  ~TileService();
  TileService(const TileService&) = delete;
  TileService& operator=(const TileService&) = delete;

  // Loads the cell pyramid from fusion and the point sets from the lake (on the follower's
  // thread) and follows fusion's live deltas from then on.
  void start(EntityFollower& follower);
  void stop();

  // The layers served as tiles, in drawing order (cells, buildings, points).
  static const std::vector<std::string>& layerNames();
  static bool serves(const std::string& layer);
  // The tile layer of an OGC API collection ("" when it has no tiles): a layer's own, and the
  // buildings for the building entities.
  static std::string ofCollection(const std::string& collection);

  struct Tile {
    std::shared_ptr<const std::string> body;  // the MVT, gzip-compressed when `gzip`
    bool gzip = false;
    std::string etag;
  };
  // The tile's ETag without rendering it (a revalidation answers 304 from it).
  std::string etag(const std::string& layer, const tiles::TileId& tile) const;
  Result<Tile> tile(const std::string& layer, const tiles::TileId& tile, bool gzip);
  // A risk tile as the layer was at `at_micros` (its stored versions; not cached): grid cells at
  // the grid's zooms, summaries of them (the highest level, counts by level) below.
  Result<std::string> riskTileAt(const tiles::TileId& tile, int64_t at_micros) const;
  // TileJSON 3.0.0 of a layer; `base` is "scheme://host".
  Reply tileJson(const std::string& layer, const std::string& base) const;
  // The hub's data extent (the risk grid's cells); none while the grid is empty.
  std::optional<tiles::LonLatBox> extent() const;
  // Whether the point sets are loaded (tiles of points before that are empty).
  bool ready() const { return points_ready_.load(); }
  LayerCache::Held held() { return cache_.held(); }

 private:
  void onDelta(const fusion::FusionDelta& delta);
  void loadCells();
  void loadPoints();
  void applyEntity(const std::string& key, const firehub::v1::Record* latest);
  uint64_t versionOf(const std::string& layer, const tiles::TileId& tile) const;
  std::string render(const std::string& layer, const tiles::TileId& tile) const;
  void renderCells(const std::string& layer, const tiles::TileId& tile, std::string& out) const;
  void renderPoints(const std::string& layer, const tiles::TileId& tile, std::string& out) const;
  void renderBuildings(const tiles::TileId& tile, std::string& out) const;
  void renderParentRisk(const tiles::TileId& tile, std::string& out) const;

  const ApiContext& ctx_;
  LayerCache cache_;
  std::string boot_;  // part of every ETag: versions start again when the hub does
  std::unique_ptr<tiles::CellPyramid> pyramid_;
  tiles::TileVersions cell_versions_;
  std::vector<PointLayerRef> point_layers_;
  std::unordered_map<std::string, std::unique_ptr<tiles::PointSet>> points_;
  std::unordered_map<std::string, std::unique_ptr<tiles::TileVersions>> point_versions_;
  std::atomic<uint64_t> buildings_generation_{1};
  std::atomic<bool> points_ready_{false};
  int listener_ = 0;

  std::mutex load_mu_;
  EntityFollower* follower_ = nullptr;  // the point sets and building tiles
};

}  // namespace firehub::api
