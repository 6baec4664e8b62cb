// The layers as vector tiles: the cell layers from the risk grid's pyramid, the point layers
// from point sets kept beside the lake (clustered below street zoom), buildings from the lake at
// street zoom; each tile encoded once per change and kept compressed.
#include "api/tiles.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>

#include <chrono>
#include <map>
#include <cmath>
#include <sstream>

#include "api/layer_parts.h"
#include "firehub/log.h"
#include "firehub/tiers.h"

namespace firehub::api {
namespace {

using tiles::LonLatBox;
using tiles::MvtLayer;
using tiles::TileId;

// Features reach this far past a tile's edge (a sixteenth of it): what is drawn across an edge
// meets, and a cell or point's change marks the tiles whose buffer it lies in.
constexpr uint32_t kExtent = 4096;
constexpr uint32_t kBuffer = kExtent / 16;
constexpr double kMargin = 1.0 / 16;
// At most this many buildings in one street-zoom tile.
constexpr size_t kMaxBuildings = 20000;

const std::vector<std::string>& cellLayers() {
  static const std::vector<std::string> names = {"risk", "response", "water_coverage"};
  return names;
}

LonLatBox grown(const LonLatBox& b, double margin) {
  const double dx = (b.east - b.west) * margin, dy = (b.north - b.south) * margin;
  return {b.west - dx, b.south - dy, b.east + dx, b.north + dy};
}

LonLatBox cellBox(uint64_t id) {
  const S2LatLngRect r = S2Cell(S2CellId(id)).GetRectBound();
  return {r.lng_lo().degrees(), r.lat_lo().degrees(), r.lng_hi().degrees(), r.lat_hi().degrees()};
}

tiles::CellState stateOf(const firehub::v1::RiskCell& c) {
  tiles::CellState s;
  s.rank = static_cast<uint8_t>(std::clamp(c.level_rank(), 0, 255));
  s.score = std::isfinite(c.score()) ? static_cast<float>(c.score()) : 0.0f;
  s.response_band = static_cast<uint8_t>(&responseBand(c.response_s()) - kResponseBands);
  s.water_band = static_cast<uint8_t>(&waterBand(c) - kWaterBands);
  return s;
}

MvtLayer::Ring cellRing(uint64_t id) {
  const S2Cell cell{S2CellId(id)};
  MvtLayer::Ring ring;
  for (int k = 0; k < 4; ++k) {
    const S2LatLng v(cell.GetVertex(k));
    ring.emplace_back(v.lng().degrees(), v.lat().degrees());
  }
  return ring;
}

// The risk layer's properties of a tile's cell: its level and colour (the highest under it),
// its score and, for a summary, how many grid cells it holds by level.
void riskProperties(const tiles::CellSummary& s, bool leaf,
                    const std::vector<fusion::WarningLevel>& levels, MvtLayer::Properties& props) {
  const int rank = s.topRank();
  if (rank >= 1 && static_cast<size_t>(rank) <= levels.size()) {
    props.emplace_back("level", levels[static_cast<size_t>(rank - 1)].name);
    props.emplace_back("colour", levels[static_cast<size_t>(rank - 1)].colour);
  }
  props.emplace_back("score", static_cast<int64_t>(std::lround(s.max_score)));
  if (leaf) return;
  props.emplace_back("cells", static_cast<int64_t>(s.cells));
  for (size_t r = 0; r < levels.size() && r < tiles::CellSummary::kRanks; ++r) {
    if (s.by_rank[r]) props.emplace_back(("count_" + levels[r].name), int64_t{s.by_rank[r]});
  }
}

lake::BBox lakeBox(const LonLatBox& b) {
  lake::BBox out;
  out.min_lon = std::max(-180.0, b.west);
  out.min_lat = std::max(-90.0, b.south);
  out.max_lon = std::min(180.0, b.east);
  out.max_lat = std::min(90.0, b.north);
  return out;
}

}  // namespace

TileService::TileService(const ApiContext& ctx, size_t cache_bytes)
    : ctx_(ctx), cache_(LayerCache::Limits{cache_bytes, 0, 0, 0}) {
  boot_ = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  for (auto& ref : pointLayerRefs()) {
    points_[ref.name] = std::make_unique<tiles::PointSet>();
    point_versions_[ref.name] = std::make_unique<tiles::TileVersions>();
    point_layers_.push_back(std::move(ref));
  }
}

TileService::~TileService() { stop(); }

const std::vector<std::string>& TileService::layerNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = cellLayers();
    n.push_back(tiers::kParentRiskLayer);
    n.push_back("buildings");
    for (const auto& ref : pointLayerRefs()) n.push_back(ref.name);
    return n;
  }();
  return names;
}

bool TileService::serves(const std::string& layer) {
  const auto& n = layerNames();
  return std::find(n.begin(), n.end(), layer) != n.end();
}

std::string TileService::ofCollection(const std::string& collection) {
  if (collection == "entities-building") return "buildings";
  return serves(collection) && collection != "buildings" ? collection : "";
}

void TileService::start(EntityFollower& follower) {
  if (ctx_.fusion) {
    const int leaf = ctx_.fusion->cellLevel();
    pyramid_ = std::make_unique<tiles::CellPyramid>(leaf, std::min(leaf, kCellZoomOffset));
    listener_ =
        ctx_.fusion->addListener([this](const fusion::FusionDelta& d) { onDelta(d); }, true);
    loadCells();
  }
  follower_ = &follower;
  follower.add({[this](const std::string& domain) {
                  bool wanted = domain == "building";
                  for (const auto& ref : point_layers_) wanted = wanted || ref.domain == domain;
                  return wanted;
                },
                [this] { loadPoints(); },
                [this](const std::string& key, const firehub::v1::Record* latest) {
                  applyEntity(key, latest);
                }});
}

void TileService::stop() {
  if (listener_ && ctx_.fusion) ctx_.fusion->removeListener(listener_);
  listener_ = 0;
}

void TileService::loadCells() {
  std::lock_guard<std::mutex> loading(load_mu_);  // the start's load and a restore's, one at a time
  // Deltas from here on change the grid cells; the load takes every cell as fusion has it now
  // (under fusion's lock, so no delta falls between), and the pyramid's levels are summarised
  // once at its end.
  pyramid_->beginLoad();
  ctx_.fusion->forEachRiskCell(lake::BBox{}, 0, SIZE_MAX,
                               [this](const firehub::v1::RiskCell& c, uint64_t id, uint64_t) {
                                 pyramid_->set(id, stateOf(c));
                               });
  pyramid_->endLoad();
  cell_versions_.touchAll();
}

void TileService::onDelta(const fusion::FusionDelta& delta) {
  if (delta.reload) return loadCells();
  for (const auto& c : delta.cells) {
    const uint64_t id = S2CellId::FromToken(c.cell()).id();
    if (pyramid_->set(id, stateOf(c))) cell_versions_.touch(cellBox(id), kMargin);
  }
  for (const auto& token : delta.removed) {
    const uint64_t id = S2CellId::FromToken(token).id();
    if (pyramid_->erase(id)) cell_versions_.touch(cellBox(id), kMargin);
  }
}

void TileService::loadPoints() {
  size_t loaded = 0;
  for (const auto& ref : point_layers_) {
    auto& set = *points_[ref.name];
    auto visit = [&](firehub::v1::Record& r, std::string_view) {
      if (auto draw = pointDraw(ref.name, r)) {
        set.put(lake::entityKey(r),
                {draw->lon, draw->lat, draw->state, r.entity_id(), std::move(draw->label)},
                nullptr);
        ++loaded;
      }
      return !follower_->stopping();
    };
    Status s = ctx_.lake->hasAreaIndex(ref.name)
                   ? ctx_.lake->forEachIndexedInBBox(ref.name, lake::BBox{}, visit)
                   : ctx_.lake->forEachLatestInBBox(ref.domain, lake::BBox{}, visit);
    if (!s.isOk()) FIREHUB_LOG(kWarning, "api", "tiles of " << ref.name << ": " << s.message());
    point_versions_[ref.name]->touchAll();
  }
  points_ready_ = true;
  FIREHUB_LOG(kInfo, "api",
              "tiles: " << loaded << " points of " << point_layers_.size() << " layers loaded");
}

void TileService::applyEntity(const std::string& key, const firehub::v1::Record* r) {
  const std::string domain = EntityFollower::domainOf(key);
  if (domain == "building") ++buildings_generation_;
  for (const auto& ref : point_layers_) {
    if (ref.domain != domain) continue;
    auto& versions = *point_versions_[ref.name];
    auto point = [&](double lon, double lat) { versions.touch({lon, lat, lon, lat}, kMargin); };
    auto draw = r ? pointDraw(ref.name, *r) : std::nullopt;
    if (draw) {
      std::optional<std::pair<double, double>> old;
      if (points_[ref.name]->put(
              key, {draw->lon, draw->lat, draw->state, r->entity_id(), std::move(draw->label)},
              &old)) {
        point(draw->lon, draw->lat);
        if (old) point(old->first, old->second);
      }
    } else if (auto old = points_[ref.name]->erase(key)) {
      point(old->first, old->second);
    }
  }
}

uint64_t TileService::versionOf(const std::string& layer, const TileId& tile) const {
  if (layer == "buildings") return tile.z < kBuildingZoom ? 0 : buildings_generation_.load();
  if (layer == tiers::kParentRiskLayer)
    return ctx_.upstream ? ctx_.upstream->parentRisk().version() : 0;
  auto it = point_versions_.find(layer);
  if (it != point_versions_.end()) return it->second->version(tile);
  return cell_versions_.version(tile);
}

std::string TileService::etag(const std::string& layer, const TileId& tile) const {
  return "\"" + boot_ + "." + std::to_string(versionOf(layer, tile)) + "\"";
}

Result<TileService::Tile> TileService::tile(const std::string& layer, const TileId& tile,
                                            bool gzip) {
  if (!serves(layer)) return Status::notFound("no tiles of layer '" + layer + "'");
  if (std::find(cellLayers().begin(), cellLayers().end(), layer) != cellLayers().end() &&
      !pyramid_) {
    return Status::unavailable("fusion is not running: no cell layers");
  }
  const uint64_t version = versionOf(layer, tile);
  Tile out;
  out.etag = "\"" + boot_ + "." + std::to_string(version) + "\"";
  const std::string key = layer + "/" + tile.path() + (gzip ? "|gz" : "");
  out.body = cache_.get(key, version);
  if (!out.body) {
    std::string raw = render(layer, tile);
    out.body =
        std::make_shared<const std::string>(gzip && !raw.empty() ? gzipped(raw) : std::move(raw));
    // Points not loaded yet draw nothing: not kept, so the next read draws them.
    if (points_ready_ || !point_versions_.count(layer)) cache_.put(key, version, out.body);
  }
  out.gzip = gzip && !out.body->empty();
  return out;
}

std::string TileService::render(const std::string& layer, const TileId& tile) const {
  std::string out;
  if (layer == "buildings") {
    renderBuildings(tile, out);
  } else if (layer == tiers::kParentRiskLayer) {
    renderParentRisk(tile, out);
  } else if (points_.count(layer)) {
    renderPoints(layer, tile, out);
  } else {
    renderCells(layer, tile, out);
  }
  return out;
}

// The parent's risk cells (as this hub last read them), each with its own level and colour.
void TileService::renderParentRisk(const TileId& tile, std::string& out) const {
  if (!ctx_.upstream) return;
  MvtLayer mvt(tiers::kParentRiskLayer, tile, kExtent, kBuffer);
  MvtLayer::Properties props;
  // Cells are found by their centre: the box grows by 0.1 degree, more than a grid cell's reach
  // from its centre at the levels risk grids use (10 and finer).
  LonLatBox box = grown(tiles::tileBounds(tile), kMargin);
  box = {box.west - 0.1, box.south - 0.1, box.east + 0.1, box.north + 0.1};
  ctx_.upstream->parentRisk().forEachIn(lakeBox(box), [&](const firehub::v1::RiskCell& c) {
    const S2CellId id = S2CellId::FromToken(c.cell());
    if (!id.is_valid()) return true;
    props.clear();
    props.emplace_back("cell", c.cell());
    props.emplace_back("level", c.level());
    props.emplace_back("colour", c.colour());
    props.emplace_back("score", static_cast<int64_t>(std::lround(c.score())));
    mvt.addPolygon({cellRing(id.id())}, props);
    return true;
  });
  mvt.appendTo(out);
}

// Long: the properties of each of the three cell layers, a few lines each.
void TileService::renderCells(const std::string& layer, const TileId& tile,
                              std::string& out) const {
  const int level =
      std::clamp(tile.z + kCellZoomOffset, pyramid_->minLevel(), pyramid_->leafLevel());
  const bool leaves = level == pyramid_->leafLevel();
  const auto& levels = ctx_.fusion->riskConfig().levels;
  MvtLayer mvt(layer, tile, kExtent, kBuffer);
  MvtLayer::Properties props;
  const LonLatBox box = grown(tiles::tileBounds(tile), kMargin);
  pyramid_->forEachIn(level, box, [&](uint64_t id, const tiles::CellSummary& s) {
    props.clear();
    // A grid cell is named by its token (what a delta restyles it by); a summary needs no name.
    if (leaves) props.emplace_back("cell", S2CellId(id).ToToken());
    if (layer == "risk") {
      riskProperties(s, leaves, levels, props);
    } else if (layer == "response") {
      const Band& b = kResponseBands[std::min<int>(s.worst_response, 3)];
      props.emplace_back("response_band", std::string(b.key));
      props.emplace_back("response_colour", std::string(b.colour));
      if (!leaves) props.emplace_back("cells", static_cast<int64_t>(s.cells));
    } else {
      const Band& b = kWaterBands[std::min<int>(s.worst_water, 2)];
      props.emplace_back("water", std::string(b.key));
      props.emplace_back("water_colour", std::string(b.colour));
      if (!leaves) props.emplace_back("cells", static_cast<int64_t>(s.cells));
    }
    mvt.addPolygon({cellRing(id)}, props);
    return true;
  });
  mvt.appendTo(out);
}

Result<std::string> TileService::riskTileAt(const TileId& tile, int64_t at_micros) const {
  if (!ctx_.fusion) return Status::unavailable("fusion is not running");
  const int grid = ctx_.fusion->cellLevel();
  const int level = std::clamp(tile.z + kCellZoomOffset, std::min(grid, 5), grid);
  // The cells of then summarised as the live pyramid summarises the cells of now.
  std::map<uint64_t, tiles::CellSummary> drawn;
  firehub::v1::LayerEntry e;
  Status walked =
      ctx_.lake->layerAt("risk", grid, lakeBox(grown(tiles::tileBounds(tile), kMargin)), at_micros,
                         [&](uint64_t cell, const std::string& entry) {
                           if (!e.ParseFromString(entry) || !e.has_risk_cell()) return true;
                           drawn[level == grid ? cell : S2CellId(cell).parent(level).id()].add(
                               tiles::CellSummary::of(stateOf(e.risk_cell())));
                           return true;
                         });
  if (!walked.isOk()) return walked;
  MvtLayer mvt("risk", tile, kExtent, kBuffer);
  MvtLayer::Properties props;
  for (const auto& [id, s] : drawn) {
    props.clear();
    if (level == grid) props.emplace_back("cell", S2CellId(id).ToToken());
    riskProperties(s, level == grid, ctx_.fusion->riskConfig().levels, props);
    mvt.addPolygon({cellRing(id)}, props);
  }
  std::string out;
  mvt.appendTo(out);
  return out;
}

void TileService::renderPoints(const std::string& layer, const TileId& tile,
                               std::string& out) const {
  const auto& set = *points_.at(layer);
  const PointLayerRef* ref = nullptr;
  for (const auto& r : point_layers_) {
    if (r.name == layer) ref = &r;
  }
  auto stateKey = [&](uint8_t state) {
    return state < ref->states.size() ? ref->states[state] : std::string();
  };
  MvtLayer mvt(layer, tile, kExtent, kBuffer);
  const LonLatBox box = grown(tiles::tileBounds(tile), kMargin);
  if (tile.z < kClusterZoom) {
    for (const auto& c : tiles::clusterPoints(set, box, tile, kClusterCells)) {
      MvtLayer::Properties props = {{"state", stateKey(c.worst)},
                                    {"count", static_cast<int64_t>(c.count)}};
      if (c.count == 1) {
        props.emplace_back("id", c.first.id);
        props.emplace_back("label", c.first.label);
      }
      mvt.addPoint(c.lon, c.lat, props);
    }
  } else {
    set.forEachIn(box, [&](const tiles::PointItem& p) {
      mvt.addPoint(
          p.lon, p.lat,
          {{"state", stateKey(p.state)}, {"count", int64_t{1}}, {"id", p.id}, {"label", p.label}});
      return true;
    });
  }
  mvt.appendTo(out);
}

void TileService::renderBuildings(const TileId& tile, std::string& out) const {
  if (tile.z < kBuildingZoom) return;
  MvtLayer mvt("buildings", tile, kExtent, kBuffer);
  size_t drawn = 0;
  const LonLatBox box = grown(tiles::tileBounds(tile), kMargin);
  Status s = ctx_.lake->forEachLatestInBBox(
      "building", lakeBox(box), [&](firehub::v1::Record& r, std::string_view) {
        if (!r.has_building()) return true;
        const auto& b = r.building();
        MvtLayer::Properties props = {
            {"id", r.entity_id()},
            {"label", recordLabel(r)},
            {"key_unit", b.key_unit()},
            {"occupancy", firehub::v1::Building::Occupancy_Name(b.occupancy())}};
        auto ring = [](const firehub::v1::Polygon& polygon) {
          std::vector<MvtLayer::Ring> rings;
          for (const auto& ring : polygon.rings()) {
            MvtLayer::Ring out;
            for (const auto& p : ring.points()) out.emplace_back(p.lon(), p.lat());
            rings.push_back(std::move(out));
          }
          return rings;
        };
        const auto& g = r.geometry();
        if (g.has_polygon()) {
          mvt.addPolygon(ring(g.polygon()), props);
        } else if (g.has_multi_polygon()) {
          for (const auto& polygon : g.multi_polygon().polygons())
            mvt.addPolygon(ring(polygon), props);
        } else if (g.has_point()) {
          mvt.addPoint(g.point().lon(), g.point().lat(), props);
        }
        return ++drawn < kMaxBuildings;
      });
  if (!s.isOk())
    FIREHUB_LOG(kWarning, "api", "buildings tile " << tile.path() << ": " << s.message());
  mvt.appendTo(out);
}

std::optional<LonLatBox> TileService::extent() const {
  if (!pyramid_) return std::nullopt;
  std::optional<LonLatBox> out;
  // Cells of about 10 km (level 10): bounds a few kilometres wider than the data at most.
  const int level = std::clamp(10, pyramid_->minLevel(), pyramid_->leafLevel());
  pyramid_->forEachIn(level, LonLatBox{}, [&](uint64_t id, const auto&) {
    const LonLatBox b = cellBox(id);
    if (!out) {
      out = b;
    } else {
      out->west = std::min(out->west, b.west), out->south = std::min(out->south, b.south);
      out->east = std::max(out->east, b.east), out->north = std::max(out->north, b.north);
    }
    return true;
  });
  return out;
}

Reply TileService::tileJson(const std::string& layer, const std::string& base) const {
  if (!serves(layer)) return error(404, "not_found", "no tiles of layer '" + layer + "'");
  Poco::JSON::Object o;
  o.set("tilejson", "3.0.0");
  o.set("name", layer);
  o.set("scheme", "xyz");
  Poco::JSON::Array urls;
  urls.add(base + "/tiles/" + layer + "/{z}/{x}/{y}.mvt");
  o.set("tiles", urls);
  const int minzoom = layer == "buildings" ? kBuildingZoom : 0;
  o.set("minzoom", minzoom);
  o.set("maxzoom", tiles::kMaxZoom);
  const LonLatBox b = extent().value_or(LonLatBox{-180, -tiles::kMaxLat, 180, tiles::kMaxLat});
  Poco::JSON::Array bounds;
  for (double v : {b.west, b.south, b.east, b.north}) bounds.add(v);
  o.set("bounds", bounds);
  Poco::JSON::Array center;
  center.add((b.west + b.east) / 2);
  center.add((b.south + b.north) / 2);
  center.add(std::max(minzoom, 8));
  o.set("center", center);
  Poco::JSON::Object fields;
  if (layer == "risk") {
    for (const char* f : {"cell", "level", "colour"}) fields.set(f, "String");
    fields.set("score", "Number");
    fields.set("cells", "Number");
  } else if (layer == "response") {
    for (const char* f : {"cell", "response_band", "response_colour"}) fields.set(f, "String");
    fields.set("cells", "Number");
  } else if (layer == "water_coverage") {
    for (const char* f : {"cell", "water", "water_colour"}) fields.set(f, "String");
    fields.set("cells", "Number");
  } else if (layer == "buildings") {
    for (const char* f : {"id", "label", "occupancy"}) fields.set(f, "String");
    fields.set("key_unit", "Boolean");
  } else {
    for (const char* f : {"state", "id", "label"}) fields.set(f, "String");
    fields.set("count", "Number");
  }
  Poco::JSON::Object vector_layer;
  vector_layer.set("id", layer);
  vector_layer.set("fields", fields);
  vector_layer.set("minzoom", minzoom);
  vector_layer.set("maxzoom", tiles::kMaxZoom);
  Poco::JSON::Array vector_layers;
  vector_layers.add(vector_layer);
  o.set("vector_layers", vector_layers);
  o.set("attribution", "firehub");
  // From this zoom a cell layer's tiles draw the grid cells themselves (below it, summaries).
  if (pyramid_ && std::find(cellLayers().begin(), cellLayers().end(), layer) != cellLayers().end())
    o.set("grid_zoom", std::max(0, pyramid_->leafLevel() - kCellZoomOffset));
  std::ostringstream os;
  o.stringify(os);
  return {200, os.str()};
}

}  // namespace firehub::api
