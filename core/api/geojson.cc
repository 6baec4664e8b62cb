// GeoJSON pieces: bounding boxes read from requests, geometries and cell polygons written.
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

namespace firehub::api {

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

std::string geometryJson(const firehub::v1::Geometry& g, pipeline::Crs to) {
  std::ostringstream os;
  os.precision(9);
  auto point = [&](const firehub::v1::Point& p) {
    lake::LonLat at{p.lon(), p.lat()};
    if (to != pipeline::Crs::kWgs84) at = pipeline::fromWgs84(at, to);
    os << '[' << at.lon << ',' << at.lat << ']';
  };
  auto ring = [&](const firehub::v1::LinearRing& r) {
    os << '[';
    for (int i = 0; i < r.points_size(); ++i) {
      if (i) os << ',';
      point(r.points(i));
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
    os << R"({"type":"Point","coordinates":)";
    point(g.point());
    os << '}';
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

}  // namespace firehub::api
