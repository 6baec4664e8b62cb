// Statistics and ranking per district (the map.outlines polygons): risk cells by level, open
// fire alarms and faults, hydrants and the share in service, the share of the district's area
// within five minutes of an in-service fire station, fire-IoT devices and those heard from in the
// last 24 hours: the figures the provincial plans set targets for.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "api/layer_parts.h"
#include "api/layers.h"
#include "firehub/risk.h"
#include "firehub/tiles.h"

namespace firehub::api {
namespace {

struct District {
  std::string id, name;
  tiles::Area area;
  lake::BBox box;
  std::map<std::string, int64_t> cells;  // level name -> count
  int64_t alarms = 0, faults = 0, hydrants = 0, hydrants_in_service = 0, devices = 0,
          devices_online = 0;
  double area_km2 = 0, within_5_min_km2 = 0;
};

bool contains(const District& d, double lon, double lat) { return d.area.contains(lon, lat); }

Result<std::vector<District>> readDistricts(const std::string& file) {
  auto areas = tiles::readAreas(file, "map.outlines");
  if (!areas.isOk()) return areas.status();
  std::vector<District> out;
  for (auto& a : areas.value()) {
    District d;
    d.id = a.id;
    d.name = a.name;
    d.box = {a.box.west, a.box.south, a.box.east, a.box.north};
    d.area = std::move(a);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

// Long: one pass per source (cells, alarms, hydrants, devices, stations), each a few lines.
Reply districtStats(const ApiContext& ctx, const std::string& outlines_file) {
  if (outlines_file.empty()) {
    return errorReply(Status::notFound("no outlines configured (map.outlines)"));
  }
  auto read = readDistricts(outlines_file);
  if (!read.isOk()) return errorReply(read.status());
  auto districts = std::move(read).value();
  const int64_t now = ctx.fusion ? ctx.fusion->now() : 0;
  for (auto& d : districts) {
    if (ctx.fusion) {
      ctx.fusion->forEachRiskCell(d.box, 0, SIZE_MAX,
                                  [&](const firehub::v1::RiskCell& c, uint64_t, uint64_t) {
                                    if (contains(d, c.center().lon(), c.center().lat()))
                                      ++d.cells[c.level()];
                                  });
    }
  }
  auto walk = [&](const std::string& domain, const std::function<void(firehub::v1::Record&)>& fn) {
    return ctx.lake->forEachLatestInBBox(domain, {}, [&](firehub::v1::Record& r, std::string_view) {
      fn(r);
      return true;
    });
  };
  std::vector<std::pair<double, double>> stations;
  auto place = [&](const firehub::v1::Record& r, const std::function<void(District&)>& fn) {
    auto at = markerPoint(r.geometry());
    if (!at) return;
    for (auto& d : districts) {
      if (contains(d, at->first, at->second)) fn(d);
    }
  };
  // Devices (the fire-IoT registry's transmission devices) are online when any of their events
  // arrived in the last 24 hours.
  std::set<std::string> heard;
  std::vector<firehub::v1::Record> devices;
  Status s = walk("alarm", [&](firehub::v1::Record& r) {
    if (r.has_alarm_device()) {
      devices.push_back(r);
      return;
    }
    if (!r.has_fire_alarm_event()) return;
    const auto& a = r.fire_alarm_event();
    if (now - r.observed_at().seconds() <= 24 * 3600) heard.insert(a.device_address());
    if (a.resolved() || (!a.fire_alarm() && !a.fault())) return;
    place(r, [&](District& d) {
      d.alarms += a.fire_alarm();
      d.faults += !a.fire_alarm() && a.fault();
    });
  });
  for (const auto& r : devices) {
    place(r, [&](District& d) {
      ++d.devices;
      d.devices_online += heard.count(r.alarm_device().device_address()) > 0;
    });
  }
  if (s.isOk()) {
    s = walk("water", [&](firehub::v1::Record& r) {
      if (!r.has_water_source()) return;
      place(r, [&](District& d) {
        ++d.hydrants;
        d.hydrants_in_service +=
            r.water_source().status() == firehub::v1::WaterSource::STATUS_IN_SERVICE;
      });
    });
  }
  if (s.isOk()) {
    s = walk("station", [&](firehub::v1::Record& r) {
      if (!r.has_fire_station() ||
          r.fire_station().status() != firehub::v1::FireStation::STATUS_IN_SERVICE)
        return;
      if (auto at = markerPoint(r.geometry())) stations.push_back(*at);
    });
  }
  if (!s.isOk()) return errorReply(s);
  // The district's area in cells of about 1.2 km² (level 13), each counted within five minutes
  // when its centre is within the response model's five minutes of an in-service station.
  const fusion::RiskConfig config = ctx.fusion ? ctx.fusion->riskConfig() : fusion::RiskConfig();
  for (auto& d : districts) {
    S2RegionCoverer::Options options;
    options.set_fixed_level(13);
    options.set_max_cells(200000);
    S2RegionCoverer coverer(options);
    std::vector<S2CellId> covering;
    coverer.GetCovering(S2LatLngRect(S2LatLng::FromDegrees(d.box.min_lat, d.box.min_lon),
                                     S2LatLng::FromDegrees(d.box.max_lat, d.box.max_lon)),
                        &covering);
    for (const S2CellId& id : covering) {
      const S2LatLng c = id.ToLatLng();
      if (!contains(d, c.lng().degrees(), c.lat().degrees())) continue;
      const double km2 = S2Cell(id).ExactArea() * 6371.0088 * 6371.0088;
      d.area_km2 += km2;
      for (const auto& [lon, lat] : stations) {
        const double m = S2Earth::ToMeters(c.GetDistance(S2LatLng::FromDegrees(lat, lon)));
        if (fusion::travelSeconds(config, m) <= 300) {
          d.within_5_min_km2 += km2;
          break;
        }
      }
    }
  }
  // Ranked by the cells at the two highest levels, then open alarms.
  auto top = [&](const District& d) {
    int64_t n = 0;
    for (size_t i = 0; i < config.levels.size() && i < 2; ++i) {
      auto it = d.cells.find(config.levels[i].name);
      if (it != d.cells.end()) n += it->second;
    }
    return n;
  };
  std::vector<size_t> order(districts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto ta = top(districts[a]), tb = top(districts[b]);
    return ta != tb ? ta > tb : districts[a].alarms > districts[b].alarms;
  });
  Poco::JSON::Array list;
  for (size_t rank = 0; rank < order.size(); ++rank) {
    const District& d = districts[order[rank]];
    Poco::JSON::Object o;
    o.set("id", d.id);
    o.set("name", d.name);
    o.set("rank", static_cast<int>(rank + 1));
    Poco::JSON::Object cells;
    for (const auto& l : config.levels) {
      auto it = d.cells.find(l.name);
      cells.set(l.name, it == d.cells.end() ? int64_t{0} : it->second);
    }
    o.set("cells_by_level", cells);
    o.set("open_fire_alarms", d.alarms);
    o.set("open_faults", d.faults);
    o.set("hydrants", d.hydrants);
    o.set("hydrants_in_service", d.hydrants_in_service);
    o.set("hydrant_intact_rate",
          d.hydrants ? static_cast<double>(d.hydrants_in_service) / static_cast<double>(d.hydrants)
                     : 0.0);
    o.set("area_km2", std::round(d.area_km2 * 10) / 10);
    o.set("area_within_5_min_share", d.area_km2 > 0 ? d.within_5_min_km2 / d.area_km2 : 0.0);
    o.set("iot_devices", d.devices);
    o.set("iot_devices_online", d.devices_online);
    list.add(o);
  }
  Poco::JSON::Object out;
  out.set("districts", list);
  out.set("generated_at", isoTime(now));
  std::ostringstream os;
  out.stringify(os);
  return {200, os.str()};
}

}  // namespace firehub::api
