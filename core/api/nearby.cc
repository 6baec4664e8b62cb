// Incident focus: what lies around a place — in-service hydrants (with their pressure), the
// nearest in-service fire stations with the response model's travel time, hospitals with free
// emergency or burn beds, key units and open hazards — nearest first.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "api/layer_parts.h"
#include "api/layers.h"
#include "firehub/risk.h"

namespace firehub::api {
namespace {

struct Near {
  double m = 0;
  Poco::JSON::Object o;
};

// The box around a point that holds the circle of `radius_m`.
lake::BBox around(double lon, double lat, double radius_m) {
  const double dlat = radius_m / 111320.0;
  const double dlon = radius_m / (111320.0 * std::max(0.01, std::cos(lat * M_PI / 180)));
  lake::BBox b;
  b.min_lon = std::max(-180.0, lon - dlon), b.max_lon = std::min(180.0, lon + dlon);
  b.min_lat = std::max(-90.0, lat - dlat), b.max_lat = std::min(90.0, lat + dlat);
  return b;
}

}  // namespace

// Long: one walk per kind of place, a few lines each.
Reply nearby(const ApiContext& ctx, double lon, double lat, double radius_m) {
  if (!std::isfinite(lon) || !std::isfinite(lat) || lon < -180 || lon > 180 || lat < -90 ||
      lat > 90) {
    return error(400, "invalid_argument", "lon and lat must be finite degrees");
  }
  if (!std::isfinite(radius_m) || radius_m < 10 || radius_m > 20000) {
    return error(400, "invalid_argument", "radius_m must be between 10 and 20000");
  }
  const S2LatLng here = S2LatLng::FromDegrees(lat, lon);
  auto metres = [&](const firehub::v1::Record& r) -> std::optional<double> {
    auto at = markerPoint(r.geometry());
    if (!at) return std::nullopt;
    return S2Earth::ToMeters(here.GetDistance(S2LatLng::FromDegrees(at->second, at->first)));
  };
  auto base = [&](const firehub::v1::Record& r, double m) {
    Poco::JSON::Object o;
    o.set("id", r.entity_id());
    o.set("label", recordLabel(r));
    o.set("distance_m", std::round(m));
    auto at = markerPoint(r.geometry());
    Poco::JSON::Array point;
    point.add(at->first);
    point.add(at->second);
    o.set("point", point);
    return o;
  };
  std::vector<Near> hydrants, stations, hospitals, units, hazards;
  const fusion::RiskConfig config = ctx.fusion ? ctx.fusion->riskConfig() : fusion::RiskConfig();
  auto walk = [&](const std::string& domain, double radius,
                  const std::function<void(firehub::v1::Record&, double)>& fn) {
    return ctx.lake->forEachLatestInBBox(domain, around(lon, lat, radius),
                                         [&](firehub::v1::Record& r, std::string_view) {
                                           auto m = metres(r);
                                           if (m && *m <= radius) fn(r, *m);
                                           return true;
                                         });
  };
  Status s = walk("water", radius_m, [&](firehub::v1::Record& r, double m) {
    if (!r.has_water_source() ||
        r.water_source().status() != firehub::v1::WaterSource::STATUS_IN_SERVICE)
      return;
    auto o = base(r, m);
    if (r.water_source().has_pressure_mpa()) {
      o.set("pressure_mpa", r.water_source().pressure_mpa());
      o.set("low_pressure", r.water_source().pressure_mpa() < config.hydrant_min_pressure_mpa);
    }
    hydrants.push_back({m, o});
  });
  // Stations answer from farther away: the nearest within 20 km.
  if (s.isOk()) {
    s = walk("station", std::max(radius_m, 20000.0), [&](firehub::v1::Record& r, double m) {
      if (!r.has_fire_station() ||
          r.fire_station().status() != firehub::v1::FireStation::STATUS_IN_SERVICE)
        return;
      auto o = base(r, m);
      o.set("travel_s", std::round(fusion::travelSeconds(config, m)));
      stations.push_back({m, o});
    });
  }
  if (s.isOk()) {
    s = walk("health", std::max(radius_m, 20000.0), [&](firehub::v1::Record& r, double m) {
      if (!r.has_health_facility()) return;
      const auto& h = r.health_facility();
      if (h.beds_emergency_available() <= 0 && h.beds_burn_available() <= 0) return;
      auto o = base(r, m);
      o.set("beds_emergency", h.beds_emergency_available());
      o.set("beds_burn", h.beds_burn_available());
      hospitals.push_back({m, o});
    });
  }
  if (s.isOk()) {
    s = walk("building", radius_m, [&](firehub::v1::Record& r, double m) {
      if (r.has_building() && r.building().key_unit()) {
        auto o = base(r, m);
        o.set("occupancy", firehub::v1::Building::Occupancy_Name(r.building().occupancy()));
        units.push_back({m, o});
      } else if (r.has_building_hazard() &&
                 r.building_hazard().status() == firehub::v1::BuildingHazard::STATUS_OPEN) {
        auto o = base(r, m);
        o.set("building", r.building_hazard().building_id());
        o.set("type", r.building_hazard().type());
        o.set("major", r.building_hazard().level() == firehub::v1::BuildingHazard::LEVEL_MAJOR);
        hazards.push_back({m, o});
      }
    });
  }
  if (!s.isOk()) return errorReply(s);
  auto list = [](std::vector<Near>& v, size_t max) {
    std::sort(v.begin(), v.end(), [](const Near& a, const Near& b) { return a.m < b.m; });
    Poco::JSON::Array arr;
    for (size_t i = 0; i < v.size() && i < max; ++i) arr.add(v[i].o);
    return arr;
  };
  Poco::JSON::Object out;
  Poco::JSON::Array centre;
  centre.add(lon);
  centre.add(lat);
  out.set("point", centre);
  out.set("radius_m", radius_m);
  out.set("hydrants", list(hydrants, 50));
  out.set("stations", list(stations, 5));
  out.set("hospitals", list(hospitals, 5));
  out.set("key_units", list(units, 50));
  out.set("hazards", list(hazards, 50));
  std::ostringstream os;
  out.stringify(os);
  return {200, os.str()};
}

}  // namespace firehub::api
