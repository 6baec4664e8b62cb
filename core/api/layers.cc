#include "api/layer_parts.h"
#include "api/layers.h"

#include <Poco/DeflatingStream.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/String.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>

#include <algorithm>
#include <cmath>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string_view>

#include "firehub/bus.h"
#include "firehub/classification.h"
#include "firehub/tiers.h"

namespace firehub::api {
namespace {

using firehub::v1::Record;
}  // namespace

Reply errorReply(const Status& s) {
  return error(httpStatus(s), statusCodeName(s.code()), s.message());
}
namespace {

// A point layer: which records of a domain it shows and how each is labelled.
struct PointLayer {
  const char* name;
  const char* title;
  const char* title_zh;
  const char* domain;
  const char* entity_type;  // empty: every type of the domain
  const char* description;
  std::vector<Band> legend;
  // The state shown on the map, or nullopt to leave the record out.
  std::function<std::optional<std::string>(const Record&)> state;
};

// Long: a table (one entry per point layer), not logic.
const std::vector<PointLayer>& pointLayers() {
  static const std::vector<PointLayer> layers = {
      {"hydrants",
       "Hydrants and water sources",
       "消防水源",
       "water",
       "water_source",
       "Hydrants, pools and intakes by service state; low pressure below the configured minimum.",
       {{"in_service", "in service", "在用", "#2b83ba"},
        {"low_pressure", "low pressure", "压力不足", "#fdae61"},
        {"out_of_service", "out of service", "停用", "#d7191c"}},
       [](const Record& r) -> std::optional<std::string> {
         const auto& w = r.water_source();
         if (w.status() != firehub::v1::WaterSource::STATUS_IN_SERVICE) return "out_of_service";
         if (w.has_pressure_mpa() && w.pressure_mpa() < 0.10) return "low_pressure";
         return "in_service";
       }},
      {"stations",
       "Fire stations",
       "消防站",
       "station",
       "fire_station",
       "Fire stations by service state.",
       {{"in_service", "in service", "执勤", "#b2182b"},
        {"out_of_service", "out of service", "停勤", "#969696"}},
       [](const Record& r) -> std::optional<std::string> {
         return r.fire_station().status() == firehub::v1::FireStation::STATUS_IN_SERVICE
                    ? "in_service"
                    : "out_of_service";
       }},
      {"hospitals",
       "Hospitals and care homes",
       "医院与养老机构",
       "health",
       "health_facility",
       "Hospitals (free emergency and burn beds) and elderly care homes.",
       {{"free_beds", "free beds", "有空床", "#1a9641"},
        {"full", "no free beds", "无空床", "#d7191c"},
        {"care_home", "care home", "养老机构", "#7b3294"}},
       [](const Record& r) -> std::optional<std::string> {
         const auto& h = r.health_facility();
         if (h.kind() == firehub::v1::HealthFacility::KIND_ELDERLY_CARE) return "care_home";
         if (h.kind() != firehub::v1::HealthFacility::KIND_HOSPITAL) return std::nullopt;
         return h.beds_emergency_available() > 0 || h.beds_burn_available() > 0 ? "free_beds"
                                                                                : "full";
       }},
      {"alarms",
       "Live fire alarms",
       "实时火警",
       "alarm",
       "",
       "Unresolved fire alarms and faults from remote monitoring.",
       {{"fire", "fire alarm", "火警", "#ff0000"}, {"fault", "fault", "故障", "#ff9900"}},
       [](const Record& r) -> std::optional<std::string> {
         if (!r.has_fire_alarm_event()) return std::nullopt;
         const auto& a = r.fire_alarm_event();
         if (a.resolved()) return std::nullopt;
         if (a.fire_alarm()) return "fire";
         if (a.fault()) return "fault";
         return std::nullopt;
       }},
      {"incidents",
       "Police incidents",
       "警情",
       "police",
       "police_incident",
       "Open police incidents.",
       {{"open", "open", "未结", "#7b3294"}},
       [](const Record& r) -> std::optional<std::string> {
         if (r.police_incident().status() == firehub::v1::PoliceIncident::STATUS_CLOSED)
           return std::nullopt;
         return "open";
       }},
      {"key_units",
       "Key fire-safety units",
       "消防安全重点单位",
       "building",
       "building",
       "Buildings registered as key units; black-listed ones marked.",
       {{"key_unit", "key unit", "重点单位", "#542788"},
        {"black_list", "black list", "黑名单", "#000000"}},
       [](const Record& r) -> std::optional<std::string> {
         const auto& b = r.building();
         if (b.credit_status() == firehub::v1::Building::CREDIT_STATUS_BLACK_LIST)
           return "black_list";
         if (!b.key_unit()) return std::nullopt;
         return "key_unit";
       }},
  };
  return layers;
}

// Bump when a layer's state function changes which records it draws: the lake then rebuilds the
// layers' area indexes when the hub starts.
constexpr int kPointLayersVersion = 1;

// Whether the record is drawn on the point layer.
bool onLayer(const PointLayer& layer, const firehub::v1::Record& r) {
  return (!*layer.entity_type || r.entity_type() == layer.entity_type) &&
         layer.state(r).has_value();
}

const PointLayer* findPointLayer(const std::string& name) {
  for (const auto& l : pointLayers()) {
    if (name == l.name) return &l;
  }
  return nullptr;
}

Poco::JSON::Array legendJson(const std::vector<Band>& bands) {
  Poco::JSON::Array arr;
  for (const auto& b : bands) {
    Poco::JSON::Object o;
    o.set("key", b.key);
    o.set("label", b.label);
    o.set("label_zh", b.label_zh);
    o.set("colour", b.colour);
    arr.add(o);
  }
  return arr;
}

Poco::JSON::Object layerInfo(const std::string& name, const std::string& title,
                             const std::string& title_zh, const std::string& geometry,
                             const std::string& description, const Poco::JSON::Array& legend,
                             const std::vector<std::string>& domains) {
  Poco::JSON::Object o;
  Poco::JSON::Array from;  // the domains its data comes from (a map tells their age)
  for (const auto& d : domains) from.add(d);
  o.set("domains", from);
  o.set("name", name);
  o.set("title", title);
  o.set("title_zh", title_zh);
  o.set("geometry", geometry);
  o.set("description", description);
  o.set("href", "/api/v1/layers/" + name);
  o.set("legend", legend);
  return o;
}

std::string collection(const std::string& layer, const FeaturePage& page) {
  size_t total = 128;
  for (const auto& f : page.features) total += f.size() + 1;
  std::string out;
  out.reserve(total);
  out += R"({"type":"FeatureCollection","layer":)";
  appendQuoted(out, layer);
  // A total only when it is known; else "more": there are features past this page.
  if (page.counted_all)
    out += R"(,"numberMatched":)" + std::to_string(page.matched);
  else
    out += R"(,"more":true)";
  out += R"(,"numberReturned":)" + std::to_string(page.features.size()) + R"(,"features":[)";
  const auto& features = page.features;
  for (size_t i = 0; i < features.size(); ++i) {
    if (i) out += ',';
    out += features[i];
  }
  out += "]}";
  return out;
}
}  // namespace

const std::vector<std::string>& layerNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = {"risk", "response", "water_coverage"};
    for (const auto& l : pointLayers()) n.push_back(l.name);
    n.push_back("weather_stations");
    n.push_back("warnings");
    return n;
  }();
  return names;
}

Reply layerList(const ApiContext& ctx) {
  Poco::JSON::Array layers;
  Poco::JSON::Array risk_legend;
  if (ctx.fusion) {
    for (const auto& l : ctx.fusion->riskConfig().levels) {
      Poco::JSON::Object o;
      o.set("key", l.name);
      o.set("label", "Level " + l.name + " (" + l.name_en + ")");
      o.set("label_zh", l.name_zh + "（" + l.name + "级）");
      o.set("colour", l.colour);
      o.set("min_score", l.min_score);
      risk_legend.add(o);
    }
  }
  layers.add(layerInfo(
      "risk", "Fire risk", "火灾风险", "cells",
      "Composite risk of each S2 cell (0-100) from building, alarm, weather, water, "
      "response, medical and public-safety factors, with its warning level.",
      risk_legend, {"building", "alarm", "weather", "water", "station", "health", "police"}));
  if (ctx.upstream && ctx.upstream->bringsDown("risk")) {
    layers.add(layerInfo(tiers::kParentRiskLayer, "Risk decided above", "上级风险研判", "cells",
                         "The parent hub's risk cells in this hub's area as last read from it "
                         "(kept while the link is cut), coloured by the parent's levels.",
                         risk_legend, {}));
  }
  layers.add(layerInfo("response", "Response time", "响应时间", "cells",
                       "Estimated travel time from the nearest in-service station; the 5-minute "
                       "circle is the first band.",
                       legendJson({std::begin(kResponseBands), std::end(kResponseBands)}),
                       {"station"}));
  layers.add(layerInfo("water_coverage", "Hydrant coverage", "消火栓覆盖", "cells",
                       "Cells with an in-service hydrant within the protection radius.",
                       legendJson({std::begin(kWaterBands), std::end(kWaterBands)}), {"water"}));
  for (const auto& l : pointLayers()) {
    layers.add(layerInfo(l.name, l.title, l.title_zh, "points", l.description, legendJson(l.legend),
                         {l.domain}));
  }
  layers.add(layerInfo("weather_stations", "Fire weather", "森林火险气象", "points",
                       "Weather stations with today's Fire Weather Index and danger class.",
                       legendJson({{"low", "low", "低", "#1a9641"},
                                   {"moderate", "moderate", "中", "#a6d96a"},
                                   {"high", "high", "高", "#fecc5c"},
                                   {"very_high", "very high", "很高", "#fd8d3c"},
                                   {"extreme", "extreme", "极高", "#d7191c"}}),
                       {"weather"}));
  layers.add(
      layerInfo("warnings", "Warning areas", "预警区域", "areas",
                "Active CAP 1.2 warnings received from the weather service and drafted by "
                "firehub.",
                legendJson({{"received", "weather service warning", "气象预警", "#8856a7"},
                            {"drafted", "firehub warning draft", "消防风险预警", "#e31a1c"}}),
                {"weather"}));
  Poco::JSON::Object obj;
  obj.set("layers", layers);
  std::ostringstream os;
  obj.stringify(os);
  return {200, os.str()};
}

bool isCellLayer(const std::string& name) {
  return name == "risk" || name == "response" || name == "water_coverage";
}
namespace {

// The point layer's feature of a record the layer draws (restricted fields removed unless
// `restricted`).
std::string pointFeature(const std::string& name, const PointLayer& layer, firehub::v1::Record& r,
                         bool restricted) {
  auto state = layer.state(r);
  if (!restricted) redactRestricted(r);  // the public view unless the reader has the grant
  const std::string label = recordLabel(r);
  auto at = markerPoint(r.geometry());
  return R"({"type":"Feature","id":)" + quote(r.entity_id()) + R"(,"geometry":)" +
         (at ? R"({"type":"Point","coordinates":[)" + num(at->first, 7) + "," + num(at->second, 7) +
                   "]}"
             : std::string("null")) +
         R"(,"properties":{"layer":)" + quote(name) + R"(,"state":)" + quote(state.value_or("")) +
         R"(,"label":)" + quote(label) + R"(,"record":)" + bus::recordToJson(r, !restricted) + "}}";
}
}  // namespace

std::string recordLabel(const Record& r) {
  if (r.has_building() && !r.building().name().empty()) return r.building().name();
  if (r.has_fire_station() && !r.fire_station().name().empty()) return r.fire_station().name();
  if (r.has_health_facility() && !r.health_facility().name().empty())
    return r.health_facility().name();
  if (r.has_water_source() && !r.water_source().name().empty()) return r.water_source().name();
  return r.entity_id();
}

std::vector<PointLayerRef> pointLayerRefs() {
  std::vector<PointLayerRef> out;
  for (const auto& layer : pointLayers()) {
    PointLayerRef ref{layer.name, layer.domain, {}};
    for (const auto& b : layer.legend) ref.states.push_back(b.key);
    out.push_back(std::move(ref));
  }
  return out;
}

std::optional<PointDraw> pointDraw(const std::string& name, const Record& r) {
  const PointLayer* layer = findPointLayer(name);
  if (!layer || r.domain() != layer->domain || !onLayer(*layer, r)) return std::nullopt;
  auto at = markerPoint(r.geometry());
  if (!at) return std::nullopt;
  const std::string state = layer->state(r).value_or("");
  uint8_t index = 0;
  for (size_t i = 0; i < layer->legend.size(); ++i) {
    if (state == layer->legend[i].key) index = static_cast<uint8_t>(i);
  }
  return PointDraw{at->first, at->second, index, recordLabel(r)};
}

std::vector<lake::AreaIndex> pointLayerIndexes() {
  std::vector<lake::AreaIndex> out;
  for (const auto& layer : pointLayers()) {
    out.push_back({layer.name, layer.domain,
                   [&layer](const Record& r) { return onLayer(layer, r); }, kPointLayersVersion});
  }
  return out;
}

Result<FeaturePage> latestPage(const ApiContext& ctx, const Area& area, const lake::BBox& bbox,
                               size_t limit, size_t offset,
                               const std::function<bool(const firehub::v1::Record&)>& matches,
                               const std::function<std::string(firehub::v1::Record&)>& feature,
                               std::string_view after) {
  FeaturePage page;
  // Every entity of an unfiltered walk matches (an area index's walk is unfiltered: the index holds
  // what matches): past a full page its geo keys alone count the rest, without reading a record.
  const bool keys_count = limit > 0 && !matches;
  auto countKeys = [&](std::string_view from, size_t max) {
    return area.index.empty() ? ctx.lake->countLatestInBBox(area.domain, bbox, from, max)
                              : ctx.lake->countIndexedInBBox(area.index, bbox, from, max);
  };
  // Such a walk also skips `offset` entities by their keys, and reads records from there on.
  std::string start(after);
  if (keys_count && offset > 0) {
    auto skipped = countKeys(after, offset);
    if (!skipped.isOk()) return skipped.status();
    page.matched = skipped->count;
    if (skipped->count < offset) return page;  // the area ends before the offset
    start = std::move(skipped->last_position);
  }
  bool stopped_full = false;
  size_t looked_past = 0;  // records looked at after the page was full
  auto visit = [&](firehub::v1::Record& r, std::string_view position) {
    const bool full = page.features.size() >= limit;
    if (full && keys_count) {
      stopped_full = true;
      return false;
    }
    if (full && ++looked_past > ctx.area_count_budget) {
      page.counted_all = false;
      return false;
    }
    if (matches && !matches(r)) return true;
    if (page.matched++ < offset || full) return true;
    page.features.push_back(feature(r));
    page.last_position.assign(position.data(), position.size());
    return true;
  };
  Status scanned = area.index.empty()
                       ? ctx.lake->forEachLatestInBBox(area.domain, bbox, visit, start)
                       : ctx.lake->forEachIndexedInBBox(area.index, bbox, visit, start);
  if (!scanned.isOk()) return scanned;
  if (stopped_full) {
    auto rest = countKeys(page.last_position, ctx.area_count_budget);
    if (!rest.isOk()) return rest.status();
    page.matched += rest->count;
    page.counted_all = rest->complete;
  }
  return page;
}

// Long: one branch per kind of layer (cells, points, warnings, fire weather), each a few lines.
Result<FeaturePage> layerPage(const ApiContext& ctx, const std::string& name,
                              const lake::BBox& bbox, size_t limit, size_t offset,
                              bool restricted) {
  if (isCellLayer(name)) {
    if (!ctx.fusion) return Status::unavailable("fusion is not running");
    size_t matched = 0;
    std::vector<std::string> features;
    ctx.fusion->forEachRiskCell(
        bbox, offset, limit,
        [&](const firehub::v1::RiskCell& c, uint64_t, uint64_t) {
          features.push_back(riskCellFeature(c));
        },
        &matched);
    return FeaturePage{std::move(features), matched, true, {}};
  }
  if (const PointLayer* layer = findPointLayer(name)) {
    // The lake's index of the layer when it keeps one (the hub's does) holds only the entities the
    // layer draws; without it the domain's walk is filtered.
    const bool indexed = ctx.lake->hasAreaIndex(layer->name);
    std::function<bool(const firehub::v1::Record&)> draws;
    if (!indexed) draws = [&](const firehub::v1::Record& r) { return onLayer(*layer, r); };
    return latestPage(
        ctx, {layer->domain, indexed ? layer->name : ""}, bbox, limit, offset, draws,
        [&](firehub::v1::Record& r) { return pointFeature(name, *layer, r, restricted); });
  }
  if (name == "weather_stations" || name == "fwi") {
    if (!ctx.fusion) return Status::unavailable("fusion is not running");
    auto stations = ctx.fusion->stations();
    if (!stations.isOk()) return stations.status();
    std::vector<std::string> features;
    size_t matched = 0;
    for (const auto& s : stations.value()) {
      if (!bbox.contains(s.lon, s.lat)) continue;
      if (matched++ < offset || features.size() >= limit) continue;
      std::string id = s.station.substr(s.station.rfind('/') + 1);
      char day[48];
      std::snprintf(day, sizeof day, "%04ld-%02ld-%02ld", s.last_day / 10000,
                    s.last_day / 100 % 100, s.last_day % 100);
      features.push_back(R"({"type":"Feature","id":)" + quote(id) +
                         R"(,"geometry":{"type":"Point","coordinates":[)" + num(s.lon, 6) + "," +
                         num(s.lat, 6) + R"(]},"properties":{"station":)" + quote(id) +
                         R"(,"day":")" + day + R"(","computed_at":)" +
                         quote(isoTime(s.computed_at)) + R"(,"ffmc":)" + num(s.today.ffmc) +
                         R"(,"dmc":)" + num(s.today.dmc) + R"(,"dc":)" + num(s.today.dc) +
                         R"(,"isi":)" + num(s.today.isi) + R"(,"bui":)" + num(s.today.bui) +
                         R"(,"fwi":)" + num(s.today.fwi) + R"(,"dsr":)" + num(s.today.dsr, 3) +
                         R"(,"danger_class":)" + quote(fusion::dangerClass(s.today.fwi)) + "}}");
    }
    return FeaturePage{std::move(features), matched, true, {}};
  }
  if (name == "warnings") {
    std::vector<std::string> features;
    size_t matched = 0;
    // Received: active CAP alerts of the weather service whose area's bounds meet the box (as
    // most map servers match a bbox; an area is large and its place in the geo index is only its
    // centre, so the whole domain is walked and each area tested).
    int64_t now = ctx.fusion ? ctx.fusion->now() : 0;
    Status scanned = ctx.lake->forEachLatestInBBox(
        "weather", lake::BBox{}, [&](firehub::v1::Record& r, std::string_view) {
          if (!r.has_weather_warning() || !r.has_geometry() || r.geometry().has_point())
            return true;
          const auto& w = r.weather_warning();
          if (w.has_expires() && w.expires().seconds() <= now) return true;
          if (auto bounds = lake::boundsOf(r.geometry()); !bounds || !bounds->intersects(bbox))
            return true;
          if (matched++ < offset || features.size() >= limit) return true;
          std::string geometry = geometryJson(r.geometry());
          features.push_back(
              R"({"type":"Feature","id":)" + quote(r.entity_id()) + R"(,"geometry":)" + geometry +
              R"(,"properties":{"kind":"received","event":)" + quote(w.event()) +
              R"(,"severity":)" +
              quote(firehub::v1::WeatherWarning::Severity_Name(w.severity()).substr(9)) +
              R"(,"headline":)" + quote(w.headline()) + R"(,"sender":)" + quote(w.sender()) +
              R"(,"record_id":)" + quote(r.id()) + "}}");
          return true;
        });
    if (!scanned.isOk()) return scanned;
    // Drafted: firehub's own active warnings, as the cells they cover, when a cell meets the box.
    if (ctx.fusion) {
      const S2LatLngRect box(S2LatLng::FromDegrees(bbox.min_lat, bbox.min_lon),
                             S2LatLng::FromDegrees(bbox.max_lat, bbox.max_lon));
      for (const auto& d : ctx.fusion->activeWarnings()) {
        bool meets = false;
        for (int i = 0; i < d.cells_size() && !meets; ++i) {
          meets = box.Intersects(S2Cell(S2CellId::FromToken(d.cells(i))));
        }
        if (!meets) continue;
        if (matched++ < offset || features.size() >= limit) continue;
        std::string geometry = R"({"type":"MultiPolygon","coordinates":[)";
        for (int i = 0; i < d.cells_size(); ++i) {
          std::string poly = cellPolygon(S2CellId::FromToken(d.cells(i)).id());
          // {"type":"Polygon","coordinates":[[...]]} -> [[...]]
          size_t start = poly.find("[[");
          if (i) geometry += ',';
          geometry += poly.substr(start, poly.size() - start - 1);
        }
        geometry += "]}";
        features.push_back(
            R"({"type":"Feature","id":)" + quote(d.identifier()) + R"(,"geometry":)" + geometry +
            R"(,"properties":{"kind":"drafted","level":)" + quote(d.level()) + R"(,"severity":)" +
            quote(d.severity()) + R"(,"msg_type":)" + quote(d.msg_type()) + R"(,"area":)" +
            quote(d.area()) + R"(,"cells":)" + std::to_string(d.cells_size()) + R"(,"cap":)" +
            quote("/api/v1/warnings/" + d.identifier()) + "}}");
      }
    }
    return FeaturePage{std::move(features), matched, true, {}};
  }
  return Status::notFound("no layer '" + name + "'; GET /api/v1/layers lists them");
}

Result<std::optional<firehub::v1::Record>> liveEntity(const ApiContext& ctx,
                                                      const std::string& domain,
                                                      const std::string& entity_type,
                                                      const std::string& entity_id) {
  firehub::v1::EntityRef ref;
  ref.set_domain(domain);
  ref.set_entity_type(entity_type);
  ref.set_entity_id(entity_id);
  auto latest = ctx.lake->latest(lake::entityKeyOf(ref));
  if (latest.isOk() && latest.value() && latest.value()->op() == firehub::v1::OP_RETRACT) {
    return std::optional<firehub::v1::Record>();
  }
  return latest;
}

Result<std::optional<std::string>> layerFeature(const ApiContext& ctx, const std::string& name,
                                                const std::string& id, bool restricted) {
  using Found = std::optional<std::string>;
  if (isCellLayer(name)) {  // a cell by its token
    if (!ctx.fusion) return Status::unavailable("fusion is not running");
    auto cell = ctx.fusion->riskCell(id);
    return cell ? Found(riskCellFeature(*cell)) : Found();
  }
  const PointLayer* layer = findPointLayer(name);
  if (layer && *layer->entity_type) {  // the entity's latest record, when the layer draws it
    auto latest = liveEntity(ctx, layer->domain, layer->entity_type, id);
    if (!latest.isOk()) return latest.status();
    auto& r = latest.value();
    if (!r || !onLayer(*layer, *r)) return Found();
    return Found(pointFeature(name, *layer, *r, restricted));
  }
  // The smaller layers (stations' fire weather, warnings, layers of every type of a domain):
  // rendered and searched.
  auto all = layerPage(ctx, name, lake::BBox{}, 1000000, 0, restricted);
  if (!all.isOk()) return all.status();
  const std::string prefix = R"({"type":"Feature","id":)" + quote(id) + ",";
  for (auto& f : all->features) {
    if (f.compare(0, prefix.size(), prefix) == 0) return Found(std::move(f));
  }
  return Found();
}

Reply layerFeatures(const ApiContext& ctx, const std::string& name, const lake::BBox& bbox,
                    size_t limit, size_t offset, bool restricted, LayerCache* cache,
                    uint32_t properties) {
  if (ctx.fusion && isCellLayer(name)) {
    // The cell layers are written straight into the body (thousands of features per view); the
    // counts follow the features, which JSON's unordered members allow. The body grows in a
    // buffer the cache lends, then leaves as one string of its size.
    std::string out = cache ? cache->borrowBuffer() : std::string();
    out += R"({"type":"FeatureCollection","layer":)";
    appendQuoted(out, name);
    out += R"(,"features":[)";
    size_t matched = 0, returned = 0;
    ctx.fusion->forEachRiskCell(
        bbox, offset, limit,
        [&](const firehub::v1::RiskCell& c, uint64_t id, uint64_t stamp) {
          if (returned++) out += ',';
          if (cache)
            cache->appendCellFeature(out, c, id, stamp, properties);
          else
            appendRiskCellFeature(out, c, nullptr, properties);
        },
        &matched);
    out += R"(],"numberMatched":)";
    out += std::to_string(matched);
    out += R"(,"numberReturned":)";
    out += std::to_string(returned);
    if (returned > 0 && offset + returned < matched) {
      out +=
          R"(,"next":")" + encodeCursor("layers/" + name, sortableNumber(offset + returned)) + '"';
    }
    out += '}';
    Reply reply{200, out, "application/geo+json"};
    if (cache) cache->returnBuffer(std::move(out));
    return reply;
  }
  auto page = layerPage(ctx, name, bbox, limit, offset, restricted);
  if (!page.isOk()) return errorReply(page.status());
  std::string out = collection(name, page.value());
  const size_t returned = page->features.size();
  if (returned > 0 && (!page->counted_all || offset + returned < page->matched)) {
    out.pop_back();
    out +=
        R"(,"next":")" + encodeCursor("layers/" + name, sortableNumber(offset + returned)) + "\"}";
  }
  return {200, out, "application/geo+json"};
}

Reply riskCellExplanation(const ApiContext& ctx, const std::string& token) {
  if (!ctx.fusion) return error(503, "unavailable", "fusion is not running");
  S2CellId id = S2CellId::FromToken(token);
  if (!id.is_valid())
    return error(400, "invalid_argument", "'" + token + "' is not an S2 cell token");
  if (id.level() != ctx.fusion->cellLevel()) {
    return error(400, "invalid_argument",
                 "cell " + token + " is level " + std::to_string(id.level()) +
                     "; the grid is level " + std::to_string(ctx.fusion->cellLevel()));
  }
  auto cell = ctx.fusion->riskCell(token);
  if (!cell) {
    return error(404, "not_found",
                 "cell " + token + " is not in the risk layer (nothing at risk there)");
  }
  // The protobuf JSON mapping, numbers to 7 decimal places at most (as records are written).
  return {200, bus::messageToJson(*cell)};
}

}  // namespace firehub::api
