// Risk, response and water cells as GeoJSON features, with the properties a map asks for.
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

Reply parentRiskFeatures(const ApiContext& ctx, const lake::BBox& bbox, size_t limit, size_t offset,
                         uint32_t properties) {
  if (!ctx.upstream || !ctx.upstream->bringsDown("risk")) {
    return errorReply(Status::notFound(
        "layer 'parent_risk': no risk layer comes down from a parent hub (upstream.layers)"));
  }
  std::string out = R"({"type":"FeatureCollection","layer":"parent_risk","features":[)";
  size_t matched = 0, returned = 0;
  ctx.upstream->parentRisk().forEachIn(bbox, [&](const firehub::v1::RiskCell& c) {
    if (matched++ < offset || returned >= limit) return true;
    if (returned++) out += ',';
    appendRiskCellFeature(out, c, nullptr, properties);
    return true;
  });
  out += R"(],"numberMatched":)" + std::to_string(matched) + R"(,"numberReturned":)" +
         std::to_string(returned);
  if (returned > 0 && offset + returned < matched) {
    out += R"(,"next":")" + encodeCursor("layers/parent_risk", sortableNumber(offset + returned)) +
           '"';
  }
  const int64_t read = ctx.upstream->parentRisk().readMs();
  out += R"(,"origin":)";
  appendQuoted(out, ctx.upstream->status().url);
  if (read) out += R"(,"read_at":")" + isoMillis(read) + '"';
  out += '}';
  return {200, out, "application/geo+json"};
}

}  // namespace firehub::api
