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

namespace firehub::api {
namespace {

using firehub::v1::Record;

void appendQuoted(std::string& out, std::string_view s) { bus::appendJsonString(out, s); }

std::string quote(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  appendQuoted(out, s);
  return out;
}

// Fixed-point with `precision` decimals, as printf's %.*f.
void appendNum(std::string& out, double v, int precision = 2) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  if (ec == std::errc()) {
    out.append(buf, end);
  } else {
    int n = std::snprintf(buf, sizeof buf, "%.*f", precision, v);
    out.append(buf, static_cast<size_t>(std::max(0, std::min<int>(n, sizeof buf - 1))));
  }
}

std::string num(double v, int precision = 2) {
  std::string out;
  appendNum(out, v, precision);
  return out;
}

Reply error(int status, const std::string& code, const std::string& detail) {
  return {status, R"({"error":)" + quote(code) + R"(,"detail":)" + quote(detail) + "}"};
}

}  // namespace

Reply errorReply(const Status& s) {
  return error(httpStatus(s), statusCodeName(s.code()), s.message());
}

namespace {

void appendCellPolygon(std::string& out, uint64_t id) {
  S2Cell cell{S2CellId(id)};
  out += R"({"type":"Polygon","coordinates":[[)";
  for (int i = 0; i <= 4; ++i) {  // S2 vertices run counter-clockwise, as RFC 7946 asks
    S2LatLng ll(cell.GetVertex(i % 4));
    if (i) out += ',';
    out += '[';
    appendNum(out, ll.lng().degrees(), 7);
    out += ',';
    appendNum(out, ll.lat().degrees(), 7);
    out += ']';
  }
  out += "]]}";
}

std::string cellPolygon(uint64_t id) {
  std::string out;
  appendCellPolygon(out, id);
  return out;
}

struct Band {
  const char* key;
  const char* label;
  const char* label_zh;
  const char* colour;
};

const Band kResponseBands[] = {
    {"le_300", "≤ 5 min", "5分钟内", "#1a9641"},
    {"le_600", "5–10 min", "5–10分钟", "#a6d96a"},
    {"le_900", "10–15 min", "10–15分钟", "#fdae61"},
    {"gt_900", "> 15 min or no station", "超过15分钟或无站点", "#d7191c"}};
const Band kWaterBands[] = {
    {"covered", "hydrant in reach", "消火栓覆盖", "#2b83ba"},
    {"low_pressure", "only low-pressure hydrants", "仅低压消火栓", "#fdae61"},
    {"uncovered", "no hydrant in reach", "无消火栓覆盖", "#d7191c"}};

const Band& responseBand(double s) {
  if (s < 0) return kResponseBands[3];
  if (s <= 300) return kResponseBands[0];
  if (s <= 600) return kResponseBands[1];
  if (s <= 900) return kResponseBands[2];
  return kResponseBands[3];
}

const Band& waterBand(const firehub::v1::RiskCell& c) {
  double score = c.factors_size() > 3 ? c.factors(3).score() : 1.0;
  if (score <= 0) return kWaterBands[0];
  if (score < 1) return kWaterBands[1];
  return kWaterBands[2];
}

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
                             const std::string& description, const Poco::JSON::Array& legend) {
  Poco::JSON::Object o;
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

std::string isoTime(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return google::protobuf::util::TimeUtil::ToString(t);
}

std::string warningJson(const firehub::v1::WarningDraft& d) {
  Poco::JSON::Object o;
  o.set("identifier", d.identifier());
  o.set("area", d.area());
  o.set("msg_type", d.msg_type());
  o.set("severity", d.severity());
  o.set("level", d.level());
  o.set("sent", isoTime(d.sent().seconds()));
  o.set("max_score", d.max_score());
  o.set("status", d.status().empty() ? "Draft" : d.status());
  if (!d.draft().empty()) {
    o.set("draft", d.draft());
    o.set("issued_by", d.issued_by());
  }
  Poco::JSON::Array cells;
  for (const auto& c : d.cells()) cells.add(c);
  o.set("cells", cells);
  Poco::JSON::Array refs;
  for (const auto& r : d.references()) refs.add(r);
  o.set("references", refs);
  o.set("cap", "/api/v1/warnings/" + d.identifier());
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

}  // namespace

Result<lake::BBox> parseBBox(const std::string& text) {
  double v[4];
  char tail;
  // NaN passes every range comparison (each is false), so finiteness is checked first: no value
  // from a request may reach S2's checks.
  if (std::sscanf(text.c_str(), "%lf,%lf,%lf,%lf%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4 ||
      !std::isfinite(v[0]) || !std::isfinite(v[1]) || !std::isfinite(v[2]) ||
      !std::isfinite(v[3]) || v[0] < -180 || v[2] > 180 || v[1] < -90 || v[3] > 90 || v[0] > v[2] ||
      v[1] > v[3]) {
    return Status::invalidArgument(
        "bbox must be minlon,minlat,maxlon,maxlat within [-180,180]x[-90,90] with min <= max");
  }
  return lake::BBox{v[0], v[1], v[2], v[3]};
}

std::optional<std::pair<double, double>> markerPoint(const firehub::v1::Geometry& g) {
  if (g.has_point()) return std::pair{g.point().lon(), g.point().lat()};
  const firehub::v1::Polygon* polygon = nullptr;
  if (g.has_polygon())
    polygon = &g.polygon();
  else if (g.has_multi_polygon() && g.multi_polygon().polygons_size() > 0)
    polygon = &g.multi_polygon().polygons(0);
  if (!polygon || polygon->rings_size() == 0 || polygon->rings(0).points_size() == 0)
    return std::nullopt;
  // The mean of the outer ring's vertices (its closing repeat left out): inside a footprint of a
  // building's size and shape, which is what point layers draw.
  const auto& ring = polygon->rings(0);
  int n = ring.points_size();
  if (n > 1 && ring.points(0).lon() == ring.points(n - 1).lon() &&
      ring.points(0).lat() == ring.points(n - 1).lat())
    --n;
  double lon = 0, lat = 0;
  for (int i = 0; i < n; ++i) {
    lon += ring.points(i).lon();
    lat += ring.points(i).lat();
  }
  return std::pair{lon / n, lat / n};
}

std::string geometryJson(const firehub::v1::Geometry& g) {
  std::ostringstream os;
  os.precision(9);
  auto ring = [&](const firehub::v1::LinearRing& r) {
    os << '[';
    for (int i = 0; i < r.points_size(); ++i) {
      if (i) os << ',';
      os << '[' << r.points(i).lon() << ',' << r.points(i).lat() << ']';
    }
    os << ']';
  };
  auto polygon = [&](const firehub::v1::Polygon& p) {
    os << '[';
    for (int i = 0; i < p.rings_size(); ++i) {
      if (i) os << ',';
      ring(p.rings(i));
    }
    os << ']';
  };
  if (g.has_point()) {
    os << R"({"type":"Point","coordinates":[)" << g.point().lon() << ',' << g.point().lat() << "]}";
  } else if (g.has_polygon()) {
    os << R"({"type":"Polygon","coordinates":)";
    polygon(g.polygon());
    os << '}';
  } else if (g.has_multi_polygon()) {
    os << R"({"type":"MultiPolygon","coordinates":[)";
    for (int i = 0; i < g.multi_polygon().polygons_size(); ++i) {
      if (i) os << ',';
      polygon(g.multi_polygon().polygons(i));
    }
    os << "]}";
  } else {
    os << "null";
  }
  return os.str();
}

namespace {

// The properties of a cell feature, in the order they are written; bit i of a property mask
// selects kCellProperties[i].
enum CellProperty : uint32_t {
  kCell,
  kScore,
  kLevel,
  kLevelRank,
  kColour,
  kForced,
  kTopFactors,
  kBuildings,
  kResponseS,
  kResponseBand,
  kResponseColour,
  kNearestStation,
  kHydrantsInReach,
  kWater,
  kWaterColour,
  kComputedAt,
  kCellPropertyCount
};
const char* const kCellProperties[kCellPropertyCount] = {"cell",
                                                         "score",
                                                         "level",
                                                         "level_rank",
                                                         "colour",
                                                         "forced",
                                                         "top_factors",
                                                         "buildings",
                                                         "response_s",
                                                         "response_band",
                                                         "response_colour",
                                                         "nearest_station",
                                                         "hydrants_in_reach",
                                                         "water",
                                                         "water_colour",
                                                         "computed_at"};
static_assert(kAllCellProperties == (1u << kCellPropertyCount) - 1,
              "kAllCellProperties names every property");

}  // namespace

Result<uint32_t> parseCellProperties(const std::string& list) {
  uint32_t mask = 0;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string name = list.substr(start, end - start);
    size_t i = 0;
    while (i < kCellPropertyCount && name != kCellProperties[i]) ++i;
    if (i == kCellPropertyCount) {
      std::string known;
      for (const char* k : kCellProperties) {
        if (!known.empty()) known += ',';
        known += k;
      }
      return Status::invalidArgument("properties: no property '" + name +
                                     "' on cell layers (known: " + known + ")");
    }
    mask |= 1u << i;
    start = end + 1;
  }
  return mask;
}

void appendRiskCellFeature(std::string& out, const firehub::v1::RiskCell& c,
                           const std::string* previous_level, uint32_t properties,
                           std::string_view geometry) {
  out += R"({"type":"Feature","id":)";
  appendQuoted(out, c.cell());
  out += R"(,"geometry":)";
  if (geometry.empty())
    appendCellPolygon(out, S2CellId::FromToken(c.cell()).id());
  else
    out += geometry;
  out += R"(,"properties":{)";
  bool first = true;
  // Starts member `p` (its name and colon) when the mask selects it.
  auto member = [&](CellProperty p) {
    if (!(properties & (1u << p))) return false;
    if (!first) out += ',';
    first = false;
    out += '"';
    out += kCellProperties[p];
    out += "\":";
    return true;
  };
  if (member(kCell)) appendQuoted(out, c.cell());
  if (member(kScore)) appendNum(out, c.score());
  if (member(kLevel)) appendQuoted(out, c.level());
  if (member(kLevelRank)) out += std::to_string(c.level_rank());
  if (member(kColour)) appendQuoted(out, c.colour());
  if (member(kForced)) out += c.forced() ? "true" : "false";
  if (member(kTopFactors)) {
    const firehub::v1::RiskFactor* top[3] = {nullptr, nullptr, nullptr};  // largest contributions
    for (const auto& f : c.factors()) {
      if (f.contribution() <= 0) continue;
      for (int k = 0; k < 3; ++k) {
        if (!top[k] || f.contribution() > top[k]->contribution()) {
          for (int m = 2; m > k; --m) top[m] = top[m - 1];
          top[k] = &f;
          break;
        }
      }
    }
    out += '[';
    for (int k = 0; k < 3 && top[k]; ++k) {
      if (k) out += ',';
      out += R"({"name":)";
      appendQuoted(out, top[k]->name());
      out += R"(,"contribution":)";
      appendNum(out, top[k]->contribution());
      out += '}';
    }
    out += ']';
  }
  if (member(kBuildings)) out += std::to_string(c.buildings());
  if (member(kResponseS)) appendNum(out, c.response_s(), 0);
  if (properties & ((1u << kResponseBand) | (1u << kResponseColour))) {
    const auto& band = responseBand(c.response_s());
    if (member(kResponseBand)) appendQuoted(out, band.key);
    if (member(kResponseColour)) appendQuoted(out, band.colour);
  }
  if (member(kNearestStation)) appendQuoted(out, c.nearest_station());
  if (member(kHydrantsInReach)) out += std::to_string(c.hydrants_in_reach());
  if (properties & ((1u << kWater) | (1u << kWaterColour))) {
    const auto& water = waterBand(c);
    if (member(kWater)) appendQuoted(out, water.key);
    if (member(kWaterColour)) appendQuoted(out, water.colour);
  }
  if (member(kComputedAt)) {
    google::protobuf::Timestamp at;
    at.set_seconds(c.computed_at().seconds());
    bus::appendJsonTimestamp(out, at);
  }
  if (previous_level) {
    out += first ? R"("previous_level":)" : R"(,"previous_level":)";
    appendQuoted(out, *previous_level);
  }
  out += "}}";
}

std::string riskCellFeature(const firehub::v1::RiskCell& c) {
  std::string out;
  out.reserve(720);
  appendRiskCellFeature(out, c, nullptr);
  return out;
}

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
  layers.add(
      layerInfo("risk", "Fire risk", "火灾风险", "cells",
                "Composite risk of each S2 cell (0-100) from building, alarm, weather, water, "
                "response, medical and public-safety factors, with its warning level.",
                risk_legend));
  layers.add(layerInfo("response", "Response time", "响应时间", "cells",
                       "Estimated travel time from the nearest in-service station; the 5-minute "
                       "circle is the first band.",
                       legendJson({std::begin(kResponseBands), std::end(kResponseBands)})));
  layers.add(layerInfo("water_coverage", "Hydrant coverage", "消火栓覆盖", "cells",
                       "Cells with an in-service hydrant within the protection radius.",
                       legendJson({std::begin(kWaterBands), std::end(kWaterBands)})));
  for (const auto& l : pointLayers()) {
    layers.add(
        layerInfo(l.name, l.title, l.title_zh, "points", l.description, legendJson(l.legend)));
  }
  layers.add(layerInfo("weather_stations", "Fire weather", "森林火险气象", "points",
                       "Weather stations with today's Fire Weather Index and danger class.",
                       legendJson({{"low", "low", "低", "#1a9641"},
                                   {"moderate", "moderate", "中", "#a6d96a"},
                                   {"high", "high", "高", "#fecc5c"},
                                   {"very_high", "very high", "很高", "#fd8d3c"},
                                   {"extreme", "extreme", "极高", "#d7191c"}})));
  layers.add(
      layerInfo("warnings", "Warning areas", "预警区域", "areas",
                "Active CAP 1.2 warnings received from the weather service and drafted by "
                "firehub.",
                legendJson({{"received", "weather service warning", "气象预警", "#8856a7"},
                            {"drafted", "firehub warning draft", "消防风险预警", "#e31a1c"}})));
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
  std::string label = r.entity_id();
  if (r.has_building() && !r.building().name().empty()) label = r.building().name();
  if (r.has_fire_station() && !r.fire_station().name().empty()) label = r.fire_station().name();
  if (r.has_health_facility() && !r.health_facility().name().empty())
    label = r.health_facility().name();
  if (r.has_water_source() && !r.water_source().name().empty()) label = r.water_source().name();
  auto at = markerPoint(r.geometry());
  return R"({"type":"Feature","id":)" + quote(r.entity_id()) + R"(,"geometry":)" +
         (at ? R"({"type":"Point","coordinates":[)" + num(at->first, 7) + "," + num(at->second, 7) +
                   "]}"
             : std::string("null")) +
         R"(,"properties":{"layer":)" + quote(name) + R"(,"state":)" + quote(state.value_or("")) +
         R"(,"label":)" + quote(label) + R"(,"record":)" + bus::recordToJson(r) + "}}";
}

}  // namespace

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
    out += '}';
    Reply reply{200, out, "application/geo+json"};
    if (cache) cache->returnBuffer(std::move(out));
    return reply;
  }
  auto page = layerPage(ctx, name, bbox, limit, offset, restricted);
  if (!page.isOk()) return errorReply(page.status());
  return {200, collection(name, page.value()), "application/geo+json"};
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
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(*cell, &json, options);
  return {200, json};
}

Reply warningList(const ApiContext& ctx, bool history) {
  if (!ctx.fusion) return error(503, "unavailable", "fusion is not running");
  std::vector<firehub::v1::WarningDraft> drafts;
  if (history) {
    auto all = ctx.fusion->warningHistory();
    if (!all.isOk()) return error(500, "internal", all.status().message());
    drafts = std::move(all).value();
  } else {
    drafts = ctx.fusion->activeWarnings();
  }
  std::string out = R"({"warnings":[)";
  for (size_t i = 0; i < drafts.size(); ++i) {
    if (i) out += ',';
    out += warningJson(drafts[i]);
  }
  return {200, out + "]}"};
}

Reply warningDocument(const ApiContext& ctx, const std::string& identifier) {
  auto stored = ctx.lake->getLayer("warnings/" + identifier);
  if (!stored.isOk()) return error(500, "internal", stored.status().message());
  firehub::v1::LayerEntry e;
  if (!stored.value() || !e.ParseFromString(*stored.value()) || !e.has_warning()) {
    return error(404, "not_found", "no warning '" + identifier + "'");
  }
  return {200, e.warning().cap_xml(), "application/cap+xml; charset=utf-8"};
}

bool acceptsGzip(const std::string& accept_encoding) {
  // Codings separated by commas, each optionally ";q=<weight>".
  size_t start = 0;
  while (start <= accept_encoding.size()) {
    size_t end = accept_encoding.find(',', start);
    if (end == std::string::npos) end = accept_encoding.size();
    std::string coding = accept_encoding.substr(start, end - start);
    std::string weight;
    if (size_t semi = coding.find(';'); semi != std::string::npos) {
      weight = coding.substr(semi + 1);
      coding.resize(semi);
    }
    Poco::trimInPlace(coding);
    Poco::toLowerInPlace(coding);
    if (coding == "gzip") {
      Poco::trimInPlace(weight);
      if (weight.rfind("q=", 0) != 0) return true;
      return std::strtod(weight.c_str() + 2, nullptr) > 0;
    }
    start = end + 1;
  }
  return false;
}

std::string gzipped(const std::string& body) {
  std::ostringstream out;
  {
    // The fastest level: a layer view is compressed on the request that first asks for it.
    Poco::DeflatingOutputStream deflate(out, Poco::DeflatingStreamBuf::STREAM_GZIP, 1);
    deflate.write(body.data(), static_cast<std::streamsize>(body.size()));
    deflate.close();
  }
  return std::move(out).str();
}

std::shared_ptr<const std::string> LayerCache::get(const std::string& key, uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.version != version) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.body;
}

void LayerCache::put(const std::string& key, uint64_t version,
                     std::shared_ptr<const std::string> body) {
  if (!body || body->size() > max_bytes_ / 4) return;  // one response may not crowd out the rest
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.body->size();
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  lru_.push_front(key);
  bytes_ += body->size();
  entries_.emplace(key, Entry{version, std::move(body), lru_.begin()});
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto oldest = entries_.find(lru_.back());
    bytes_ -= oldest->second.body->size();
    entries_.erase(oldest);
    lru_.pop_back();
  }
}

LayerCache::Held LayerCache::held() {
  Held h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    h.responses = bytes_;
  }
  {
    std::lock_guard<std::mutex> lock(features_mu_);
    h.features = feature_bytes_;
  }
  {
    std::lock_guard<std::mutex> lock(polygons_mu_);
    h.polygons = polygon_bytes_;
  }
  std::lock_guard<std::mutex> lock(spare_mu_);
  h.spare = spare_bytes_;
  return h;
}

std::string LayerCache::borrowBuffer() {
  std::lock_guard<std::mutex> lock(spare_mu_);
  if (spare_.empty()) return {};
  std::string buffer = std::move(spare_.back());
  spare_.pop_back();
  spare_bytes_ -= buffer.capacity();
  buffer.clear();
  return buffer;
}

void LayerCache::returnBuffer(std::string buffer) {
  std::lock_guard<std::mutex> lock(spare_mu_);
  if (spare_.size() >= kSpareBuffers || spare_bytes_ + buffer.capacity() > max_spare_bytes_) return;
  spare_bytes_ += buffer.capacity();
  spare_.push_back(std::move(buffer));
}

std::string_view LayerCache::polygonOf(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(polygons_mu_);
    auto it = polygons_.find(id);
    // The view stays valid: polygons are never erased, and rehashing keeps the nodes.
    if (it != polygons_.end()) return it->second;
  }
  std::string polygon = cellPolygon(id);
  std::lock_guard<std::mutex> lock(polygons_mu_);
  if (polygon_bytes_ + polygon.size() > max_polygon_bytes_) return {};  // rendered by the caller
  auto [it, added] = polygons_.emplace(id, std::move(polygon));
  if (added) polygon_bytes_ += it->second.size();
  return it->second;
}

void LayerCache::appendCellFeature(std::string& out, const firehub::v1::RiskCell& cell, uint64_t id,
                                   uint64_t stamp, uint32_t properties) {
  const bool whole = properties == kAllCellProperties;
  if (whole && stamp != 0) {
    std::lock_guard<std::mutex> lock(features_mu_);
    auto it = features_.find(id);
    if (it != features_.end() && it->second.stamp == stamp) {
      out += it->second.text;
      return;
    }
  }
  const size_t start = out.size();
  appendRiskCellFeature(out, cell, nullptr, properties, polygonOf(id));
  if (!whole || stamp == 0) return;  // only whole features are kept (selections are cheap to write)
  std::string text = out.substr(start);
  std::lock_guard<std::mutex> lock(features_mu_);
  if (feature_bytes_ + text.size() > max_feature_bytes_) {
    features_.clear();
    feature_bytes_ = 0;
  }
  auto& kept = features_[id];
  feature_bytes_ += text.size();
  feature_bytes_ -= kept.text.size();
  kept.stamp = stamp;
  kept.text = std::move(text);
}

DeltaStream::DeltaStream(size_t keep) : keep_(keep) {
  epoch_ = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
}

void DeltaStream::publish(const fusion::FusionDelta& delta) {
  std::string text = R"({"features":[)";
  text.reserve(delta.cells.size() * 720 + 64);
  for (size_t i = 0; i < delta.cells.size(); ++i) {
    if (i) text += ',';
    auto prev = delta.previous.find(delta.cells[i].cell());  // the level before, in properties
    appendRiskCellFeature(text, delta.cells[i],
                          prev != delta.previous.end() ? &prev->second : nullptr);
  }
  text += R"(],"removed":[)";
  for (size_t i = 0; i < delta.removed.size(); ++i) {
    if (i) text += ',';
    text += quote(delta.removed[i]);
  }
  text += R"(],"warnings":[)";
  for (size_t i = 0; i < delta.warnings.size(); ++i) {
    if (i) text += ',';
    text += warningJson(delta.warnings[i]);
  }
  text += "]}";
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_ += text.size();
    events_.push_back({next_++, std::move(text)});
    // At most `keep_` events and `kKeepBytes` of them (a full recompute can make one event of
    // every cell); the newest always stays. A client behind the oldest kept event gets `reset`.
    constexpr size_t kKeepBytes = 64u << 20;
    while (events_.size() > keep_ || (bytes_ > kKeepBytes && events_.size() > 1)) {
      bytes_ -= events_.front().text.size();
      events_.pop_front();
    }
  }
  cv_.notify_all();
}

void DeltaStream::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::string DeltaStream::currentId() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_ + "-" + std::to_string(next_ - 1);
}

bool DeltaStream::next(std::string& last_event_id, std::string& out, bool& reset, int wait_ms) {
  out.clear();
  reset = false;
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t after = next_ - 1;
  size_t dash = last_event_id.find('-');
  if (!last_event_id.empty()) {
    if (dash == std::string::npos || last_event_id.substr(0, dash) != epoch_) {
      reset = true;  // another run of the hub: the client reloads the layer
    } else {
      after = std::strtoull(last_event_id.c_str() + dash + 1, nullptr, 10);
      if (after + 1 < (events_.empty() ? next_ : events_.front().n))
        reset = true;  // too far behind
      if (after > next_ - 1) reset = true;
    }
  }
  if (reset) {
    last_event_id = epoch_ + "-" + std::to_string(next_ - 1);
    return !closed_;
  }
  cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
               [&] { return closed_ || next_ - 1 > after; });
  if (closed_) return false;
  for (const auto& e : events_) {
    if (e.n <= after) continue;
    out += "id: " + epoch_ + "-" + std::to_string(e.n) + "\nevent: delta\ndata: " + e.text + "\n\n";
    after = e.n;
  }
  last_event_id = epoch_ + "-" + std::to_string(after);
  return true;
}

}  // namespace firehub::api
