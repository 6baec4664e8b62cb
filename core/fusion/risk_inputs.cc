// The risk layer's inputs: records of every domain applied to the cells they reach, and
// the cells they make dirty.
#include "fusion/risk_layer.h"

#include "firehub/lake.h"

#include <s2/s2cap.h>
#include <s2/s2cell.h>
#include <s2/s2closest_point_query.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2loop.h>
#include <s2/s2metrics.h>
#include <s2/s2polygon.h>
#include <s2/s2region_coverer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>
#include "fusion/risk_parts.h"

namespace firehub::fusion {
namespace {

using firehub::v1::Record;
using firehub::v1::RiskCell;
using firehub::v1::RiskFactor;

S2Point pointOf(const firehub::v1::Point& p) {
  return S2LatLng::FromDegrees(p.lat(), p.lon()).Normalized().ToPoint();
}

std::optional<S2Point> placeOf(const Record& r) {
  auto p = lake::representativePoint(r.geometry());
  if (!p) return std::nullopt;
  return S2LatLng::FromDegrees(p->lat, p->lon).Normalized().ToPoint();
}

std::string labelOf(const Record& r, const std::string& name) {
  return name.empty() ? r.entity_id() : name + " (" + r.entity_id() + ")";
}

// The region of a CAP warning: its polygons and circles, covered by S2 cells.
S2CellUnion areaOf(const Record& r) {
  std::vector<S2CellId> cells;
  S2RegionCoverer::Options options;
  options.set_max_cells(64);
  S2RegionCoverer coverer(options);
  auto addRing = [&](const firehub::v1::LinearRing& ring) {
    std::vector<S2Point> vertices;
    for (int i = 0; i < ring.points_size(); ++i) {
      S2Point p = pointOf(ring.points(i));
      if (!vertices.empty() &&
          (vertices.back() == p || (i == ring.points_size() - 1 && vertices.front() == p)))
        continue;
      vertices.push_back(p);
    }
    if (vertices.size() < 3) return;
    S2Loop loop(vertices, S2Debug::DISABLE);
    std::vector<S2CellId> covering;
    if (loop.IsValid()) {
      loop.Normalize();
      coverer.GetCovering(loop, &covering);
    } else {  // self-intersecting: fall back to the ring's bounding rectangle
      S2LatLngRect rect = S2LatLngRect::Empty();
      for (const auto& v : vertices) rect.AddPoint(S2LatLng(v));
      coverer.GetCovering(rect, &covering);
    }
    cells.insert(cells.end(), covering.begin(), covering.end());
  };
  const auto& g = r.geometry();
  if (g.has_polygon() && g.polygon().rings_size() > 0) addRing(g.polygon().rings(0));
  if (g.has_multi_polygon()) {
    for (const auto& poly : g.multi_polygon().polygons()) {
      if (poly.rings_size() > 0) addRing(poly.rings(0));
    }
  }
  for (const auto& circle : r.weather_warning().circles()) {
    S2Cap cap(pointOf(circle.center()), S2Earth::MetersToAngle(circle.radius_km() * 1000));
    std::vector<S2CellId> covering;
    coverer.GetCovering(cap, &covering);
    cells.insert(cells.end(), covering.begin(), covering.end());
  }
  return S2CellUnion(std::move(cells));
}

bool sourcesName(const RiskCell& cell, int factor, const std::string& record_id) {
  if (cell.factors_size() <= factor) return false;
  for (const auto& s : cell.factors(factor).sources()) {
    if (s == record_id) return true;
  }
  return false;
}
}  // namespace

uint64_t RiskLayer::cellOf(const S2Point& p) const { return S2CellId(p).parent(level_).id(); }

template <typename T>
void RiskLayer::detach(uint64_t cell, std::vector<const T*> CellInputs::*member, const T* item) {
  auto it = inputs_.find(cell);
  if (it == inputs_.end()) return;
  auto& list = it->second.*member;
  list.erase(std::remove(list.begin(), list.end(), item), list.end());
  if (it->second.empty()) inputs_.erase(it);
}

void RiskLayer::dirtyNear(const S2Point& p, double radius_m, uint8_t searched) {
  if (bulk_) return;
  // Cells whose area comes within radius_m of p: every grid cell that may meet the cap, found by
  // a flood from p's cell through edge neighbours (a cap is connected; a few cells for the
  // radii used here, where a covering from the faces down costs a descent of every level).
  S2Cap cap(p, S2Earth::MetersToAngle(radius_m));
  std::vector<S2CellId> covering;
  S2RegionCoverer::GetSimpleCovering(cap, p, level_, &covering);
  for (const auto& id : covering) {
    if (inputs_.count(id.id()) || cells_.count(id.id())) dirtyCell(id.id(), searched);
  }
}

void RiskLayer::dirtyReach(const S2Point& p, double radius_m, const std::string& record_id,
                           int factor) {
  if (bulk_) return;
  S1ChordAngle limit = S2Earth::MetersToChordAngle(radius_m);
  for (const auto& [cell, in] : inputs_) {
    if (S1ChordAngle(S2CellId(cell).ToPoint(), p) <= limit) dirtyCell(cell, bit(factor));
  }
  // A place that arrives: a cell beyond its reach whose factor is saturated (nothing found, or
  // only far away) may still find it nearest, which changes the explanation if not the score.
  const bool arrives = record_id.empty() && (factor == kResponse || factor == kMedical);
  if (record_id.empty() && !arrives) return;
  for (const auto& [cell, published] : cells_) {
    bool affected =
        arrives ? published.factors_size() > factor && published.factors(factor).score() >= 1.0
                : sourcesName(published, factor, record_id);
    if (affected) dirtyCell(cell, bit(factor));
  }
}

void RiskLayer::dirtyArea(const S2CellUnion& area, uint8_t searched) {
  if (bulk_) return;
  for (const auto& [cell, in] : inputs_) {
    if (area.Intersects(S2CellId(cell))) dirtyCell(cell, searched);
  }
  for (const auto& [cell, published] : cells_) {
    if (area.Intersects(S2CellId(cell))) dirtyCell(cell, searched);
  }
}

void RiskLayer::schedule(int64_t at, const std::string& key) {
  if (at > 0) timers_.emplace(at, key);
}

void RiskLayer::apply(const std::string& key, const Record* r, int64_t now) {
  // The entity kind comes from the key (domain/entity_type/id), so a retraction (r == nullptr)
  // still reaches the right map.
  size_t a = key.find('/');
  size_t b = key.find('/', a + 1);
  if (a == std::string::npos || b == std::string::npos) return;
  std::string_view type(key.data() + a + 1, b - a - 1);
  if (r && !r->has_geometry() && type != "building_hazard") r = nullptr;  // unplaced: no cell
  if (type == "building")
    applyBuilding(key, r);
  else if (type == "building_hazard")
    applyHazard(key, r);
  else if (type == "fire_alarm_component" || type == "fire_alarm_system" ||
           type == "fire_alarm_device" || type == "fire_alarm")
    applyAlarm(key, r);
  else if (type == "water_source")
    applyWater(key, r);
  else if (type == "fire_station")
    applyStation(key, r);
  else if (type == "health_facility")
    applyHealth(key, r);
  else if (type == "police_incident")
    applyIncident(key, r);
  else if (type == "weather_warning")
    applyWarning(key, r);
  (void)now;
}

void RiskLayer::applyBuilding(const std::string& key, const Record* r) {
  auto it = buildings_.find(key);
  if (it != buildings_.end()) {
    detach(it->second.cell, &CellInputs::buildings, static_cast<const BuildingIn*>(&it->second));
    dirtyCell(it->second.cell);
    buildings_.erase(it);
  }
  if (!r || !r->has_building()) return;
  auto place = placeOf(*r);
  if (!place) return;
  BuildingIn& b = buildings_[key];
  const auto& body = r->building();
  b.key = key;
  b.record_id = r->id();
  b.label = labelOf(*r, body.name());
  b.point = *place;
  b.cell = cellOf(*place);
  b.occupancy = body.occupancy();
  b.key_unit = body.key_unit();
  b.black_list = body.credit_status() == firehub::v1::Building::CREDIT_STATUS_BLACK_LIST;
  attach(inputs_[b.cell].buildings, static_cast<const BuildingIn*>(&b));
  dirtyCell(b.cell);
}

void RiskLayer::applyHazard(const std::string& key, const Record* r) {
  auto it = hazards_.find(key);
  if (it != hazards_.end()) {
    auto owner = buildings_.find(it->second.building_key);
    if (owner != buildings_.end()) dirtyCell(owner->second.cell);
    auto& list = hazards_of_[it->second.building_key];
    list.erase(std::remove(list.begin(), list.end(), key), list.end());
    if (list.empty()) hazards_of_.erase(it->second.building_key);
    hazards_.erase(it);
  }
  if (!r || !r->has_building_hazard()) return;
  const auto& body = r->building_hazard();
  HazardIn h;
  h.record_id = r->id();
  h.building_key = "building/building/" + body.building_id();
  h.open = body.status() == firehub::v1::BuildingHazard::STATUS_OPEN;
  h.major = body.level() == firehub::v1::BuildingHazard::LEVEL_MAJOR;
  hazards_of_[h.building_key].push_back(key);
  auto owner = buildings_.find(h.building_key);
  if (owner != buildings_.end()) dirtyCell(owner->second.cell);
  hazards_.emplace(key, std::move(h));
}

void RiskLayer::applyAlarm(const std::string& key, const Record* r) {
  auto it = alarms_.find(key);
  if (it != alarms_.end()) {
    detach(it->second.cell, &CellInputs::alarms, static_cast<const AlarmIn*>(&it->second));
    dirtyCell(it->second.cell);
    alarms_.erase(it);
  }
  if (!r || !r->has_fire_alarm_event()) return;
  const auto& body = r->fire_alarm_event();
  bool fire = body.fire_alarm() && !body.resolved();
  bool fault = body.fault() && !body.resolved();
  if (!fire && !fault) return;  // a reset or normal state: nothing to count
  auto place = placeOf(*r);
  if (!place) return;
  AlarmIn& a = alarms_[key];
  a.record_id = r->id();
  a.label = body.description().empty() ? r->entity_id() : body.description();
  a.point = *place;
  a.cell = cellOf(*place);
  a.fire = fire;
  a.fault = fault;
  attach(inputs_[a.cell].alarms, static_cast<const AlarmIn*>(&a));
  dirtyCell(a.cell);
}

void RiskLayer::applyWater(const std::string& key, const Record* r) {
  double reach = config_.hydrant_radius_m;
  auto it = hydrants_.find(key);
  if (it != hydrants_.end()) {
    if (it->second.in_service) hydrant_index_.Remove(it->second.point, &it->second);
    dirtyNear(it->second.point, reach, bit(kWater));
    hydrants_.erase(it);
  }
  if (!r || !r->has_water_source()) return;
  const auto& body = r->water_source();
  auto place = placeOf(*r);
  if (!place) return;
  HydrantIn& h = hydrants_[key];
  h.record_id = r->id();
  h.label = labelOf(*r, body.name());
  h.point = *place;
  h.cell = cellOf(*place);
  h.in_service = body.status() == firehub::v1::WaterSource::STATUS_IN_SERVICE;
  if (body.has_pressure_mpa()) h.pressure_mpa = body.pressure_mpa();
  if (h.in_service) hydrant_index_.Add(h.point, &h);
  dirtyNear(h.point, reach, bit(kWater));
}

void RiskLayer::applyStation(const std::string& key, const Record* r) {
  double reach =
      config_.response_bad_s * (config_.response_speed_kmh / 3.6) / config_.response_detour;
  auto it = stations_.find(key);
  if (it != stations_.end()) {
    if (it->second.in_service) station_index_.Remove(it->second.point, &it->second);
    dirtyReach(it->second.point, reach, it->second.record_id, kResponse);
    stations_.erase(it);
  }
  if (!r || !r->has_fire_station()) return;
  const auto& body = r->fire_station();
  auto place = placeOf(*r);
  if (!place) return;
  StationIn& s = stations_[key];
  s.record_id = r->id();
  s.label = labelOf(*r, body.name());
  s.point = *place;
  s.cell = cellOf(*place);
  s.in_service = body.status() == firehub::v1::FireStation::STATUS_IN_SERVICE;
  if (s.in_service) station_index_.Add(s.point, &s);
  dirtyReach(s.point, reach, "", kResponse);
}

void RiskLayer::applyHealth(const std::string& key, const Record* r) {
  double reach = config_.medical_bad_km * 1000;
  auto it = hospitals_.find(key);
  if (it != hospitals_.end()) {
    if (it->second.has_capacity) hospital_index_.Remove(it->second.point, &it->second);
    dirtyReach(it->second.point, reach, it->second.record_id, kMedical);
    hospitals_.erase(it);
  }
  if (!r || !r->has_health_facility()) return;
  const auto& body = r->health_facility();
  if (body.kind() != firehub::v1::HealthFacility::KIND_HOSPITAL) return;
  auto place = placeOf(*r);
  if (!place) return;
  HospitalIn& h = hospitals_[key];
  h.record_id = r->id();
  h.label = labelOf(*r, body.name());
  h.point = *place;
  h.cell = cellOf(*place);
  bool open =
      body.operational_status() == firehub::v1::HealthFacility::OPERATIONAL_STATUS_OPEN ||
      body.operational_status() == firehub::v1::HealthFacility::OPERATIONAL_STATUS_UNSPECIFIED;
  h.has_capacity = open && (body.beds_emergency_available() > 0 || body.beds_burn_available() > 0);
  if (h.has_capacity) hospital_index_.Add(h.point, &h);
  dirtyReach(h.point, reach, "", kMedical);
}

void RiskLayer::applyIncident(const std::string& key, const Record* r) {
  auto it = incidents_.find(key);
  if (it != incidents_.end()) {
    detach(it->second.cell, &CellInputs::incidents, static_cast<const IncidentIn*>(&it->second));
    dirtyCell(it->second.cell);
    incidents_.erase(it);
  }
  if (!r || !r->has_police_incident()) return;
  const auto& body = r->police_incident();
  if (body.status() == firehub::v1::PoliceIncident::STATUS_CLOSED) return;
  auto place = placeOf(*r);
  if (!place) return;
  IncidentIn& i = incidents_[key];
  i.record_id = r->id();
  i.label = labelOf(*r, firehub::v1::PoliceIncident::Type_Name(body.type()));
  i.point = *place;
  i.cell = cellOf(*place);
  i.weight = incidentWeight(body.type());
  i.open = true;
  i.reported_at =
      body.has_reported_at() ? body.reported_at().seconds() : r->observed_at().seconds();
  attach(inputs_[i.cell].incidents, static_cast<const IncidentIn*>(&i));
  dirtyCell(i.cell);
  schedule(i.reported_at + static_cast<int64_t>(config_.incident_window_h * 3600), key);
}

void RiskLayer::applyWarning(const std::string& key, const Record* r) {
  auto it = warnings_.find(key);
  if (it != warnings_.end()) {
    dirtyArea(it->second.area, bit(kWeather));
    warnings_.erase(it);
  }
  if (!r || !r->has_weather_warning()) return;
  const auto& body = r->weather_warning();
  if (body.msg_type() == firehub::v1::WeatherWarning::MSG_TYPE_CANCEL) return;
  WarningIn w;
  w.record_id = r->id();
  w.label = body.event().empty() ? body.headline() : body.event();
  w.severity = body.severity();
  w.actual = body.status() == firehub::v1::WeatherWarning::STATUS_ACTUAL;
  w.onset = body.has_onset() ? body.onset().seconds() : 0;
  w.expires = body.has_expires() ? body.expires().seconds() : 0;
  w.area = areaOf(*r);
  if (w.area.empty()) return;
  dirtyArea(w.area, bit(kWeather));
  schedule(w.onset, key);
  schedule(w.expires, key);
  warnings_.emplace(key, std::move(w));
}

void RiskLayer::setFireWeather(const std::string& station_key, double lon, double lat, double fwi,
                               const std::string& danger, const std::string& record_id) {
  double reach = config_.weather_max_station_km * 1000;
  auto it = fire_weather_.find(station_key);
  if (it != fire_weather_.end()) {
    weather_index_.Remove(it->second.point, &it->second);
    dirtyReach(it->second.point, reach, it->second.record_id, kWeather);
    fire_weather_.erase(it);
  }
  FireWeatherIn& w = fire_weather_[station_key];
  w.record_id = record_id;
  w.label = station_key.substr(station_key.rfind('/') + 1);
  w.point = S2LatLng::FromDegrees(lat, lon).Normalized().ToPoint();
  w.cell = cellOf(w.point);
  w.fwi = fwi;
  w.danger = danger;
  weather_index_.Add(w.point, &w);
  dirtyReach(w.point, reach, "", kWeather);
}

void RiskLayer::advanceClock(int64_t now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    std::string key = timers_.begin()->second;
    timers_.erase(timers_.begin());
    if (auto w = warnings_.find(key); w != warnings_.end())
      dirtyArea(w->second.area, bit(kWeather));
    if (auto i = incidents_.find(key); i != incidents_.end()) dirtyCell(i->second.cell);
  }
}

}  // namespace firehub::fusion
