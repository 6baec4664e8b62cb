// The layer endpoints: the list of layers with their legends, each layer as GeoJSON for a bbox,
// a risk cell's explanation, CAP warning drafts, and the live stream of risk deltas.
// Private to the api module.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <unordered_map>
#include <mutex>
#include <optional>
#include <utility>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "firehub/api.h"
#include "firehub/fusion.h"
#include "firehub/lake.h"

#include "api/paging.h"

namespace firehub::api {

struct Reply {
  int status = 200;
  std::string body;
  std::string type = "application/json";
};

// A page of GeoJSON features (each a serialised Feature) and how many matched in all. Areas of
// the lake are counted past the page for a bounded number of records (ctx.area_count_budget):
// where records lie beyond, `matched` is how many were counted and `counted_all` false (the
// answer then says "more" and gives no total it does not know).
struct FeaturePage {
  std::vector<std::string> features;
  size_t matched = 0;
  bool counted_all = true;
  // Of a walk of the lake (latestPage): where its last feature lies, to resume past it.
  std::string last_position;
};
// A page of the latest records of `domain` in `bbox` (or of area index `index`'s entities, when
// given): those `matches` accepts (all when null), from `offset` (counted from `after`, a
// last_position of an earlier page, when given), at most `limit`, each written by `feature`.
// Past a full page an unfiltered walk (an area index's is one) is counted on from the geo keys
// alone (up to ctx.area_count_budget entities, no record read), a filtered one record by record.
struct Area {
  std::string domain;
  std::string index;  // empty: the whole domain
};
Result<FeaturePage> latestPage(const ApiContext& ctx, const Area& area, const lake::BBox& bbox,
                               size_t limit, size_t offset,
                               const std::function<bool(const firehub::v1::Record&)>& matches,
                               const std::function<std::string(firehub::v1::Record&)>& feature,
                               std::string_view after = {});

Reply errorReply(const Status& status);

// Parses minlon,minlat,maxlon,maxlat.
Result<lake::BBox> parseBBox(const std::string& text);

Reply layerList(const ApiContext& ctx);
// The properties of the cell layers' features, as a mask (parseCellProperties); all of them.
constexpr uint32_t kAllCellProperties = (1u << 16) - 1;
// A comma-separated list of cell feature property names (`?properties=`) as a mask; an unknown
// name is invalid_argument naming the known ones.
Result<uint32_t> parseCellProperties(const std::string& list);

// GET /api/v1/layers/{name}?bbox=&limit=&offset=&properties=
// `restricted`: the reader may see restricted fields (else they are removed).
// `cache`: where the cell layers take their cells' rendered features from (none: rendered).
// `properties`: the members of the cell layers' feature properties (the other layers have all).
class LayerCache;
Reply layerFeatures(const ApiContext& ctx, const std::string& name, const lake::BBox& bbox,
                    size_t limit, size_t offset, bool restricted = false,
                    LayerCache* cache = nullptr, uint32_t properties = kAllCellProperties);
Result<FeaturePage> layerPage(const ApiContext& ctx, const std::string& name,
                              const lake::BBox& bbox, size_t limit, size_t offset,
                              bool restricted = false);
// The latest record of an entity, or none when it is unknown or its latest record withdraws it.
Result<std::optional<firehub::v1::Record>> liveEntity(const ApiContext& ctx,
                                                      const std::string& domain,
                                                      const std::string& entity_type,
                                                      const std::string& entity_id);
// One feature of a layer by its id (a cell's token, a point's entity id), as layerPage() writes
// it; none when the layer does not hold it. Cells and typed point layers are looked up directly.
Result<std::optional<std::string>> layerFeature(const ApiContext& ctx, const std::string& name,
                                                const std::string& id, bool restricted = false);
// The name (or entity id) a map labels a record with.
std::string recordLabel(const firehub::v1::Record& r);
// The point layers (name, domain, legend keys in order) and what one draws of a record: its
// place, the index of its state in the legend and its label; none when the layer does not draw
// the record (another domain, not on the layer, no place).
struct PointLayerRef {
  std::string name, domain;
  std::vector<std::string> states;
};
std::vector<PointLayerRef> pointLayerRefs();
struct PointDraw {
  double lon = 0, lat = 0;
  uint8_t state = 0;
  std::string label;
};
std::optional<PointDraw> pointDraw(const std::string& layer, const firehub::v1::Record& r);
// Whether `name` is one of the layers of risk cells (risk, response, water_coverage).
bool isCellLayer(const std::string& name);
// Whether an Accept-Encoding header value accepts gzip (a "gzip" coding without q=0).
bool acceptsGzip(const std::string& accept_encoding);
// `body` compressed as a gzip stream (RFC 1952).
std::string gzipped(const std::string& body);
// Names of the layers layerPage() serves, and the domains served as entity collections.
const std::vector<std::string>& layerNames();
const std::vector<std::string>& entityDomains();
// OGC API - Features under /ogc (path without the "ogc" part); base_url = "http://host:port".
Reply ogcRequest(const ApiContext& ctx, const std::vector<std::string>& path,
                 const std::map<std::string, std::string>& query, const std::string& base_url,
                 bool restricted = false);

Reply riskCellExplanation(const ApiContext& ctx, const std::string& token);
// GET /api/v1/alerts: unresolved alarms, open incidents, active CAP warnings (received and
// drafted), newest first, at most `limit`, each with its acknowledgement.
Reply alertList(const ApiContext& ctx, size_t limit);
// GET /api/v1/stats/districts: statistics and ranking per district of map.outlines.
Reply districtStats(const ApiContext& ctx, const std::string& outlines_file);
// GET /api/v1/search?q=: a record by id, or buildings, units, hydrants, stations and hospitals
// by name, address or id (from `index`), at most `limit`, each with its place.
class SearchIndex;
Reply search(const ApiContext& ctx, const SearchIndex& index, const std::string& query,
             size_t limit, bool restricted);
// GET /api/v1/nearby?lon=&lat=&radius_m=: in-service hydrants, key units and open hazards within
// the radius; the nearest in-service stations (with travel time) and hospitals with free beds
// within 20 km.
Reply nearby(const ApiContext& ctx, double lon, double lat, double radius_m);
Reply warningList(const ApiContext& ctx, bool history, const PageParams& page);
Reply warningDocument(const ApiContext& ctx, const std::string& identifier);

// Where a point layer draws a record (lon, lat): its point, or for a footprint the mean of the
// outer ring's vertices (the first polygon of a multi-polygon); none without a geometry.
std::optional<std::pair<double, double>> markerPoint(const firehub::v1::Geometry& geometry);
// GeoJSON geometry (RFC 7946, lon/lat) of a record's geometry; "null" when it has none.
// `to`: the coordinates converted from WGS 84 to a Chinese web map's datum (gcj02, bd09).
std::string geometryJson(const firehub::v1::Geometry& geometry,
                         pipeline::Crs to = pipeline::Crs::kWgs84);

// GeoJSON Feature of a risk cell (polygon of the S2 cell, properties for the map).
std::string riskCellFeature(const firehub::v1::RiskCell& cell);
// The same, appended to `out`, with the properties the mask selects; with `previous_level`,
// also that as a property.
// `geometry`: the cell's polygon as GeoJSON when the caller has it (else computed).
void appendRiskCellFeature(std::string& out, const firehub::v1::RiskCell& cell,
                           const std::string* previous_level,
                           uint32_t properties = kAllCellProperties,
                           std::string_view geometry = {});

// GET /api/v1/layers/parent_risk: the parent hub's risk cells as this hub last read them
// (upstream.layers), the cell layers' features; 404 when no layer comes down.
Reply parentRiskFeatures(const ApiContext& ctx, const lake::BBox& bbox, size_t limit, size_t offset,
                         uint32_t properties);

// What a LayerCache may hold, bytes (ApiOptions' layer, feature, polygon and spare buffer caps).
struct LayerCacheLimits {
  size_t responses = 32u << 20;
  size_t features = 64u << 20;
  size_t polygons = 16u << 20;
  size_t spare = 16u << 20;
};

// Rendered responses of the cell layers (risk, response, water coverage), valid while the
// fusion engine's layer version stays the same: a map that pans back, or many clients on the
// same view, get the bytes without rendering the cells again. Bounded by `Limits::responses`;
// the least recently used response goes first.
// Below the responses, each cell's feature is kept as rendered for its stamp, so a view of
// cells shown before (a pan, a zoom out) copies them instead of rendering; bounded by
// `Limits::features` (past it the kept features are dropped and rendered again as asked).

class LayerCache {
 public:
  using Limits = LayerCacheLimits;
  explicit LayerCache(const Limits& limits = Limits())
      : max_feature_bytes_(limits.features),
        max_polygon_bytes_(limits.polygons),
        max_spare_bytes_(limits.spare),
        max_bytes_(limits.responses) {}
  std::shared_ptr<const std::string> get(const std::string& key, uint64_t version);
  void put(const std::string& key, uint64_t version, std::shared_ptr<const std::string> body);
  // Appends the cell's feature (as appendRiskCellFeature without a previous level) to `out`.
  // `id`: the S2 cell id; `stamp`: FusionEngine::forEachRiskCell's (0: not kept). Whole
  // features are kept per stamp; every render takes the cell's polygon from the kept ones (a
  // cell's polygon never changes; up to Limits::polygons of them).
  void appendCellFeature(std::string& out, const firehub::v1::RiskCell& cell, uint64_t id,
                         uint64_t stamp, uint32_t properties = kAllCellProperties);
  // A cleared buffer to render a response into, and back when done. A view is megabytes; a
  // string grown anew each time costs more in page faults and copies than the rendering. At
  // most kSpareBuffers are kept, together up to Limits::spare (a buffer that does not fit, such
  // as a whole layer's, is freed).
  std::string borrowBuffer();
  void returnBuffer(std::string buffer);
  static constexpr size_t kSpareBuffers = 4;
  // Bytes held now: rendered responses, kept features, kept polygons, spare buffers.
  struct Held {
    size_t responses = 0, features = 0, polygons = 0, spare = 0;
  };
  Held held();

 private:
  struct Feature {
    uint64_t stamp;
    std::string text;
  };
  std::mutex spare_mu_;
  std::vector<std::string> spare_;
  // The cell's GeoJSON polygon, kept from its first render; empty past the polygons' cap.
  std::string_view polygonOf(uint64_t id);
  std::mutex polygons_mu_;
  std::unordered_map<uint64_t, std::string> polygons_;  // S2 cell id -> its GeoJSON polygon
  size_t polygon_bytes_ = 0;
  std::mutex features_mu_;
  std::unordered_map<uint64_t, Feature> features_;  // S2 cell id -> its feature
  size_t feature_bytes_ = 0;
  size_t max_feature_bytes_;
  size_t max_polygon_bytes_;
  size_t max_spare_bytes_;
  size_t spare_bytes_ = 0;  // capacity of the kept spare buffers

  struct Entry {
    uint64_t version;
    std::shared_ptr<const std::string> body;
    std::list<std::string>::iterator lru;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recently used first
  size_t bytes_ = 0;
  size_t max_bytes_;
};

// Fusion deltas as server-sent events. Keeps the newest events so a client that reconnects with
// Last-Event-ID gets what it missed, or a `reset` event when they are gone (or the hub restarted).
class DeltaStream {
 public:
  explicit DeltaStream(size_t keep = 512);
  void publish(const fusion::FusionDelta& delta);
  void close();
  // Events after `last_event_id` ("<epoch>-<n>"), waiting up to `wait_ms` for one. Returns
  // false once closed. `reset` is set when the client must reload the layer.
  bool next(std::string& last_event_id, std::string& out, bool& reset, int wait_ms);
  size_t clients() const { return clients_; }
  void addClient() { ++clients_; }
  void removeClient() { --clients_; }
  std::string currentId() const;
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  struct Event {
    uint64_t n;
    std::string text;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  size_t bytes_ = 0;  // text of the kept events
  size_t keep_;
  uint64_t next_ = 1;
  std::string epoch_;
  bool closed_ = false;
  std::atomic<size_t> clients_{0};
};

}  // namespace firehub::api
