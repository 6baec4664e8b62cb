// Positions from Chinese web maps: GCJ-02 (the national obfuscated datum every licensed map
// uses) and BD-09 (Baidu's, a further shift of GCJ-02), converted to WGS 84 on ingest. The
// forward GCJ-02 formula is the published one (Krasovsky ellipsoid parameters, applied inside
// China's bounding box only); its inverse is found by fixed-point iteration to 1e-9 degrees
// (about 0.1 mm). CGCS2000 agrees with WGS 84 to a few centimetres and is taken as it is.
#include <cmath>

#include "firehub/pipeline.h"

namespace firehub::pipeline {
namespace {

using lake::LonLat;

constexpr double kPi = 3.14159265358979323846;
constexpr double kA = 6378245.0;                // Krasovsky 1940 semi-major axis
constexpr double kEe = 0.00669342162296594323;  // its first eccentricity squared
constexpr double kXPi = kPi * 3000.0 / 180.0;

bool outsideChina(double lon, double lat) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

double shiftLat(double x, double y) {
  double r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * std::sqrt(std::fabs(x));
  r += (20.0 * std::sin(6.0 * x * kPi) + 20.0 * std::sin(2.0 * x * kPi)) * 2.0 / 3.0;
  r += (20.0 * std::sin(y * kPi) + 40.0 * std::sin(y / 3.0 * kPi)) * 2.0 / 3.0;
  r += (160.0 * std::sin(y / 12.0 * kPi) + 320.0 * std::sin(y * kPi / 30.0)) * 2.0 / 3.0;
  return r;
}

double shiftLon(double x, double y) {
  double r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * std::sqrt(std::fabs(x));
  r += (20.0 * std::sin(6.0 * x * kPi) + 20.0 * std::sin(2.0 * x * kPi)) * 2.0 / 3.0;
  r += (20.0 * std::sin(x * kPi) + 40.0 * std::sin(x / 3.0 * kPi)) * 2.0 / 3.0;
  r += (150.0 * std::sin(x / 12.0 * kPi) + 300.0 * std::sin(x / 30.0 * kPi)) * 2.0 / 3.0;
  return r;
}

LonLat wgs84ToGcj02(LonLat p) {
  if (outsideChina(p.lon, p.lat)) return p;
  double d_lat = shiftLat(p.lon - 105.0, p.lat - 35.0);
  double d_lon = shiftLon(p.lon - 105.0, p.lat - 35.0);
  const double rad = p.lat / 180.0 * kPi;
  double magic = std::sin(rad);
  magic = 1 - kEe * magic * magic;
  const double sqrt_magic = std::sqrt(magic);
  d_lat = (d_lat * 180.0) / ((kA * (1 - kEe)) / (magic * sqrt_magic) * kPi);
  d_lon = (d_lon * 180.0) / (kA / sqrt_magic * std::cos(rad) * kPi);
  return {p.lon + d_lon, p.lat + d_lat};
}

// Where `forward` lands on `target`: fixed-point iteration from `start` until a step moves less
// than `tolerance` degrees.
template <class Forward>
LonLat invert(const Forward& forward, LonLat target, LonLat start, double tolerance) {
  LonLat x = start;
  for (int i = 0; i < 30; ++i) {
    const LonLat f = forward(x);
    const double e_lon = f.lon - target.lon, e_lat = f.lat - target.lat;
    x.lon -= e_lon;
    x.lat -= e_lat;
    if (std::fabs(e_lon) < tolerance && std::fabs(e_lat) < tolerance) break;
  }
  return x;
}

LonLat gcj02ToWgs84(LonLat g) {
  if (outsideChina(g.lon, g.lat)) return g;
  return invert(wgs84ToGcj02, g, g, 1e-9);
}

LonLat gcj02ToBd09(LonLat g) {
  const double z = std::sqrt(g.lon * g.lon + g.lat * g.lat) + 0.00002 * std::sin(g.lat * kXPi);
  const double theta = std::atan2(g.lat, g.lon) + 0.000003 * std::cos(g.lon * kXPi);
  return {z * std::cos(theta) + 0.0065, z * std::sin(theta) + 0.006};
}

// The published inverse is approximate (a few centimetres); refined by iteration on the forward
// formula so that a round trip comes back to where it started.
LonLat bd09ToGcj02(LonLat b) {
  const double x = b.lon - 0.0065, y = b.lat - 0.006;
  const double z = std::sqrt(x * x + y * y) - 0.00002 * std::sin(y * kXPi);
  const double theta = std::atan2(y, x) - 0.000003 * std::cos(x * kXPi);
  return invert(gcj02ToBd09, b, {z * std::cos(theta), z * std::sin(theta)}, 1e-10);
}

void convertPoint(firehub::v1::Point& p, Crs from) {
  if (!std::isfinite(p.lon()) || !std::isfinite(p.lat())) return;  // refused by the checks
  const LonLat w = toWgs84({p.lon(), p.lat()}, from);
  p.set_lon(w.lon);
  p.set_lat(w.lat);
}

}  // namespace

std::optional<Crs> parseCrs(const std::string& name) {
  if (name == "wgs84") return Crs::kWgs84;
  if (name == "cgcs2000") return Crs::kCgcs2000;
  if (name == "gcj02") return Crs::kGcj02;
  if (name == "bd09") return Crs::kBd09;
  return std::nullopt;
}

const char* crsName(Crs crs) {
  switch (crs) {
    case Crs::kWgs84:
      return "wgs84";
    case Crs::kCgcs2000:
      return "cgcs2000";
    case Crs::kGcj02:
      return "gcj02";
    case Crs::kBd09:
      return "bd09";
  }
  return "wgs84";
}

LonLat toWgs84(LonLat p, Crs from) {
  switch (from) {
    case Crs::kGcj02:
      return gcj02ToWgs84(p);
    case Crs::kBd09:
      return gcj02ToWgs84(bd09ToGcj02(p));
    default:
      return p;
  }
}

LonLat fromWgs84(LonLat p, Crs to) {
  switch (to) {
    case Crs::kGcj02:
      return wgs84ToGcj02(p);
    case Crs::kBd09:
      return gcj02ToBd09(wgs84ToGcj02(p));
    default:
      return p;
  }
}

void recordToWgs84(firehub::v1::Record& r, Crs from) {
  if (from == Crs::kWgs84 || !r.has_geometry()) return;
  auto* prov = r.mutable_provenance();
  prov->set_original_crs(crsName(from));
  auto* g = r.mutable_geometry();
  // The original position: the point, or a polygon's first vertex.
  bool first = true;
  auto convert = [&](firehub::v1::Point& p) {
    if (first) *prov->mutable_original_position() = p;
    first = false;
    if (from != Crs::kCgcs2000) convertPoint(p, from);  // CGCS2000: WGS 84 within centimetres
  };
  auto rings = [&](firehub::v1::Polygon& poly) {
    for (auto& rg : *poly.mutable_rings())
      for (auto& p : *rg.mutable_points()) convert(p);
  };
  if (g->has_point()) convert(*g->mutable_point());
  if (g->has_polygon()) rings(*g->mutable_polygon());
  if (g->has_multi_polygon()) {
    for (auto& poly : *g->mutable_multi_polygon()->mutable_polygons()) rings(poly);
  }
}

}  // namespace firehub::pipeline
