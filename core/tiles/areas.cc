#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "firehub/tiles.h"

namespace firehub::tiles {
namespace {

bool inRing(const Ring& ring, double lon, double lat) {
  bool in = false;
  for (size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++) {
    const auto& [xi, yi] = ring[i];
    const auto& [xj, yj] = ring[j];
    if ((yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

struct Bad {
  std::string why;
};

Ring readRing(const Poco::JSON::Array::Ptr& a, LonLatBox& box) {
  if (!a) throw Bad{"a ring is not an array of [lon, lat]"};
  Ring r;
  for (size_t k = 0; k < a->size(); ++k) {
    auto p = a->getArray(static_cast<unsigned>(k));
    if (!p || p->size() < 2) throw Bad{"a position is not [lon, lat]"};
    const double lon = p->getElement<double>(0), lat = p->getElement<double>(1);
    if (!std::isfinite(lon) || !std::isfinite(lat) || std::fabs(lon) > 180 || std::fabs(lat) > 90)
      throw Bad{"a position is not a lon/lat in degrees"};
    r.emplace_back(lon, lat);
    box.west = std::min(box.west, lon), box.east = std::max(box.east, lon);
    box.south = std::min(box.south, lat), box.north = std::max(box.north, lat);
  }
  if (r.size() < 3) throw Bad{"a ring has fewer than 3 positions"};
  return r;
}

std::vector<Ring> readPolygon(const Poco::JSON::Array::Ptr& a, LonLatBox& box) {
  if (!a || a->size() == 0) throw Bad{"a polygon has no rings"};
  std::vector<Ring> rings;
  for (size_t k = 0; k < a->size(); ++k)
    rings.push_back(readRing(a->getArray(static_cast<unsigned>(k)), box));
  return rings;
}

void readFeature(const Poco::JSON::Object::Ptr& f, std::vector<Area>& out) {
  Area area;
  Poco::JSON::Object::Ptr g = f;
  if (f->optValue<std::string>("type", "") == "Feature") {
    auto props = f->getObject("properties");
    area.name = props ? props->optValue<std::string>("name", "") : "";
    area.id = f->has("id") ? f->get("id").convert<std::string>() : area.name;
    for (const char* key : {"adcode", "code"}) {
      if (props && area.code.empty() && props->has(key) && !props->isNull(key)) {
        auto v = props->get(key);
        if (v.isString() || v.isInteger()) area.code = v.convert<std::string>();
      }
    }
    g = f->getObject("geometry");
  }
  if (!g) return;
  const std::string type = g->optValue<std::string>("type", "");
  auto coords = g->getArray("coordinates");
  if (type == "Polygon") {
    area.polygons.push_back(readPolygon(coords, area.box));
  } else if (type == "MultiPolygon") {
    if (!coords) throw Bad{"a MultiPolygon has no coordinates"};
    for (size_t k = 0; k < coords->size(); ++k)
      area.polygons.push_back(readPolygon(coords->getArray(static_cast<unsigned>(k)), area.box));
  }
  if (!area.polygons.empty()) out.push_back(std::move(area));
}

}  // namespace

bool Area::contains(double lon, double lat) const {
  if (lon < box.west || lon > box.east || lat < box.south || lat > box.north) return false;
  for (const auto& polygon : polygons) {
    if (polygon.empty() || !inRing(polygon[0], lon, lat)) continue;
    bool in_hole = false;
    for (size_t h = 1; h < polygon.size(); ++h) in_hole |= inRing(polygon[h], lon, lat);
    if (!in_hole) return true;
  }
  return false;
}

Result<std::vector<Area>> readAreas(const std::string& file, const std::string& setting) {
  std::ifstream in(file);
  if (!in) return Status::notFound(setting + ": cannot read " + file);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<Area> out;
  try {
    Poco::JSON::Parser parser;
    auto root = parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
    if (auto features = root->getArray("features")) {
      for (size_t i = 0; i < features->size(); ++i) {
        if (auto f = features->getObject(static_cast<unsigned>(i))) readFeature(f, out);
      }
    } else {
      readFeature(root, out);
    }
  } catch (const Bad& e) {
    return Status::failedPrecondition(setting + ": " + file + ": " + e.why);
  } catch (const Poco::Exception& e) {
    return Status::failedPrecondition(setting + ": " + file +
                                      " is not GeoJSON: " + e.displayText());
  }
  if (out.empty())
    return Status::failedPrecondition(setting + ": " + file + " holds no Polygon or MultiPolygon");
  return out;
}

}  // namespace firehub::tiles
