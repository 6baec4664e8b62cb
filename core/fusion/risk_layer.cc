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

namespace firehub::fusion {
namespace {

using firehub::v1::Record;
using firehub::v1::RiskCell;
using firehub::v1::RiskFactor;

constexpr size_t kMaxSources = 8;  // record ids listed per factor

enum FactorIndex { kBuilding, kAlarm, kWeather, kWater, kResponse, kMedical, kPublicSafety };
constexpr uint8_t bit(int factor) { return static_cast<uint8_t>(1u << factor); }
// The factors found by searching around a cell; the others come from the cell's own inputs.
constexpr uint8_t kSearched = bit(kWeather) | bit(kWater) | bit(kResponse) | bit(kMedical);

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

std::string format(const char* fmt, double a, double b = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, fmt, a, b);
  return buf;
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

void addSource(RiskFactor& f, const std::string& id) {
  if (static_cast<size_t>(f.sources_size()) < kMaxSources) f.add_sources(id);
}

bool sourcesName(const RiskCell& cell, int factor, const std::string& record_id) {
  if (cell.factors_size() <= factor) return false;
  for (const auto& s : cell.factors(factor).sources()) {
    if (s == record_id) return true;
  }
  return false;
}

// Whether two computations of a cell say the same, apart from when they were computed
// (`computed_at`), and with `visible`, apart from the record ids behind the factors. Field by
// field, without copies; risk_scenario_test checks that every field of the messages is covered.
bool sameFactor(const firehub::v1::RiskFactor& a, const firehub::v1::RiskFactor& b, bool visible) {
  if (a.name() != b.name() || a.score() != b.score() || a.weight() != b.weight() ||
      a.contribution() != b.contribution() || a.note() != b.note()) {
    return false;
  }
  if (visible) return true;
  if (a.sources_size() != b.sources_size()) return false;
  for (int i = 0; i < a.sources_size(); ++i) {
    if (a.sources(i) != b.sources(i)) return false;
  }
  return true;
}

bool sameCell(const RiskCell& a, const RiskCell& b, bool visible = false) {
  if (a.cell() != b.cell() || a.cell_level() != b.cell_level() || a.score() != b.score() ||
      a.level() != b.level() || a.level_rank() != b.level_rank() || a.colour() != b.colour() ||
      a.forced() != b.forced() || a.has_center() != b.has_center() ||
      a.center().lon() != b.center().lon() || a.center().lat() != b.center().lat() ||
      a.response_s() != b.response_s() || a.nearest_station() != b.nearest_station() ||
      a.hydrants_in_reach() != b.hydrants_in_reach() || a.buildings() != b.buildings() ||
      a.factors_size() != b.factors_size()) {
    return false;
  }
  for (int i = 0; i < a.factors_size(); ++i) {
    if (!sameFactor(a.factors(i), b.factors(i), visible)) return false;
  }
  return true;
}

}  // namespace

RiskLayer::RiskLayer(RiskConfig config, int cell_level, size_t threads)
    : config_(std::move(config)), level_(cell_level), threads_(std::max<size_t>(1, threads)) {}

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
  // Cells whose area comes within radius_m of p: a covering of the cap at the grid level, grown
  // by one cell so that cells touching the cap's rim are included.
  S2Cap cap(p, S2Earth::MetersToAngle(radius_m));
  S2RegionCoverer::Options options;
  options.set_fixed_level(level_);
  options.set_max_cells(1 << 20);
  S2RegionCoverer coverer(options);
  std::vector<S2CellId> covering;
  coverer.GetCovering(cap, &covering);
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

void RiskLayer::restore(const RiskCell& cell) {
  S2CellId id = S2CellId::FromToken(cell.cell());
  if (!id.is_valid()) return;
  cells_[id.id()] = cell;
  stamps_[id.id()] = ++last_stamp_;
}

void RiskLayer::markAllDirty() {
  bulk_ = false;
  for (const auto& [cell, in] : inputs_) dirty_[cell] = kSearched;
  for (const auto& [cell, published] : cells_) dirty_[cell] = kSearched;
}

std::vector<CellChange> RiskLayer::recompute(int64_t now) {
  std::vector<std::pair<uint64_t, uint8_t>> order(dirty_.begin(), dirty_.end());
  dirty_.clear();
  std::sort(order.begin(), order.end());

  // Compute every dirty cell first (read-only: inputs, indexes and the cells as they were), on
  // several threads when there are many, then apply the changes in S2 order on this thread.
  struct Computed {
    std::optional<RiskCell> next;  // unset when the cell left the layer or did not change
    bool same = false;             // nothing differs from the published cell
    bool sources_only = false;     // only the record ids behind its factors differ
  };
  std::vector<Computed> computed(order.size());
  auto work = [&](size_t begin, size_t end) {
    Searchers search(*this);  // per thread: a query keeps its covering of the index between cells
    RiskCell scratch;         // per thread: an unchanged cell (most of them) allocates nothing
    for (size_t i = begin; i < end; ++i) {
      auto it = cells_.find(order[i].first);
      const RiskCell* published = it == cells_.end() ? nullptr : &it->second;
      Computed& c = computed[i];
      if (!compute(order[i].first, now, order[i].second, published, search, scratch)) continue;
      if (published) {
        c.same = sameCell(*published, scratch);
        c.sources_only = !c.same && sameCell(*published, scratch, true);
      }
      if (!c.same) {  // handed over whole; the next cell starts a fresh message
        c.next.emplace();
        c.next->Swap(&scratch);
      }
    }
  };
  const size_t threads = order.size() >= kParallelCells ? std::max<size_t>(1, threads_) : 1;
  if (threads > 1) {
    std::vector<std::thread> pool;
    const size_t per = (order.size() + threads - 1) / threads;
    for (size_t t = 1; t < threads; ++t) {
      pool.emplace_back(work, std::min(order.size(), t * per),
                        std::min(order.size(), (t + 1) * per));
    }
    work(0, std::min(order.size(), per));
    for (auto& th : pool) th.join();
  } else {
    work(0, order.size());
  }

  std::vector<CellChange> changes;
  for (size_t i = 0; i < order.size(); ++i) {
    const uint64_t cell = order[i].first;
    Computed& c = computed[i];
    auto it = cells_.find(cell);
    if (c.same) continue;
    if (!c.next) {
      if (it == cells_.end()) continue;
      changes.push_back({cell, std::nullopt, it->second.level()});
      cells_.erase(it);
      stamps_.erase(cell);
      continue;
    }
    std::string previous = it == cells_.end() ? std::string() : it->second.level();
    if (it != cells_.end())
      it->second = *c.next;
    else
      cells_.emplace(cell, *c.next);
    stamps_[cell] = ++last_stamp_;
    changes.push_back({cell, std::move(c.next), std::move(previous), c.sources_only});
  }
  return changes;
}

RiskLayer::Searchers::Searchers(const RiskLayer& layer)
    : weather(&layer.weather_index_),
      hydrants(&layer.hydrant_index_),
      station(&layer.station_index_),
      hospital(&layer.hospital_index_) {
  weather.mutable_options()->set_max_distance(
      S2Earth::MetersToChordAngle(layer.config_.weather_max_station_km * 1000));
  const double diagonal_m = S2Earth::RadiansToMeters(S2::kMaxDiag.GetValue(layer.level_));
  hydrants.mutable_options()->set_max_distance(
      S2Earth::MetersToChordAngle(layer.config_.hydrant_radius_m + diagonal_m));
}

bool RiskLayer::compute(uint64_t id, int64_t now, uint8_t searched, const RiskCell* previous,
                        Searchers& search, RiskCell& out) const {
  auto in = inputs_.find(id);
  if (in == inputs_.end()) return false;
  const CellInputs& inputs = in->second;
  int64_t window = static_cast<int64_t>(config_.incident_window_h * 3600);
  std::vector<const IncidentIn*> incidents;
  for (const auto* i : inputs.incidents) {
    if (i->open && now - i->reported_at <= window) incidents.push_back(i);
  }
  if (inputs.buildings.empty() && inputs.alarms.empty() && incidents.empty()) return false;

  S2CellId cell_id(id);
  S2Cell cell(cell_id);
  S2Point center = cell_id.ToPoint();
  out.Clear();
  out.set_cell(cell_id.ToToken());
  out.set_cell_level(level_);
  S2LatLng ll(center);
  out.mutable_center()->set_lon(ll.lng().degrees());
  out.mutable_center()->set_lat(ll.lat().degrees());
  out.mutable_computed_at()->set_seconds(now);
  out.set_buildings(static_cast<int>(inputs.buildings.size()));
  // The factors are built in place, in the order of factorNames().
  auto& f = *out.mutable_factors();
  f.Reserve(static_cast<int>(factorNames().size()));
  for (size_t i = 0; i < factorNames().size(); ++i) {
    RiskFactor* factor = out.add_factors();
    factor->set_name(factorNames()[i]);
    factor->set_weight(config_.weight(factorNames()[i]));
  }

  // building: the most hazardous building, raised by its open hazards and the black list.
  {
    auto& fb = f[kBuilding];
    double best = -1;
    const BuildingIn* top = nullptr;
    std::vector<const HazardIn*> top_hazards;
    for (const auto* b : inputs.buildings) {
      int general = 0, major = 0;
      std::vector<const HazardIn*> open;
      if (auto hz = hazards_of_.find(b->key); hz != hazards_of_.end()) {
        for (const auto& hk : hz->second) {
          auto h = hazards_.find(hk);
          if (h == hazards_.end() || !h->second.open) continue;
          (h->second.major ? major : general) += 1;
          open.push_back(&h->second);
        }
      }
      double s = buildingScore(b->occupancy, b->key_unit, b->black_list, general, major);
      if (s > best) {
        best = s;
        top = b;
        top_hazards = std::move(open);
      }
    }
    if (top) {
      fb.set_score(best);
      addSource(fb, top->record_id);
      for (const auto* h : top_hazards) addSource(fb, h->record_id);
      std::string note =
          top->label + ": " + firehub::v1::Building::Occupancy_Name(top->occupancy).substr(10);
      if (top->key_unit) note += ", key unit";
      if (top->black_list) note += ", black list";
      if (!top_hazards.empty())
        note += ", " + std::to_string(top_hazards.size()) + " open hazard(s)";
      if (inputs.buildings.size() > 1) {
        note += "; " + std::to_string(inputs.buildings.size()) + " buildings in the cell";
      }
      fb.set_note(note);
    } else {
      fb.set_note("no registered building");
    }
  }

  // alarm: an unresolved fire alarm forces the top level; faults add up to 0.5.
  int fires = 0, faults = 0;
  {
    auto& fa = f[kAlarm];
    for (const auto* a : inputs.alarms) {
      if (a->fire)
        ++fires;
      else if (a->fault)
        ++faults;
    }
    for (const auto* a : inputs.alarms) {
      if (a->fire) addSource(fa, a->record_id);
    }
    for (const auto* a : inputs.alarms) {
      if (!a->fire) addSource(fa, a->record_id);
    }
    fa.set_score(alarmScore(fires, faults));
    if (fires)
      fa.set_note(std::to_string(fires) +
                  " unresolved fire alarm(s): " + inputs.alarms.front()->label);
    else if (faults)
      fa.set_note(std::to_string(faults) + " unresolved fault(s)");
    else
      fa.set_note("no unresolved alarm");
  }

  // A searched factor whose surroundings did not change is kept from the cell's last state.
  const bool can_keep = previous && previous->factors_size() == f.size();
  auto keep = [&](int factor) {
    if (!can_keep || (searched & bit(factor))) return false;
    f[factor] = previous->factors(factor);
    f[factor].set_weight(config_.weight(factorNames()[factor]));
    return true;
  };

  // weather: fire weather of the nearest station, raised by active CAP warnings on the cell.
  if (!keep(kWeather)) {
    auto& fw = f[kWeather];
    auto& query = search.weather;
    S2ClosestPointQuery<const FireWeatherIn*>::PointTarget target(center);
    auto nearest = query.FindClosestPoint(&target);
    double score = 0;
    std::string note;
    if (!nearest.is_empty()) {
      const FireWeatherIn* w = nearest.data();
      score = fwiScore(w->fwi);
      addSource(fw, w->record_id);
      note = "FWI " + format("%.1f", w->fwi) + " (" + w->danger + ") at station " + w->label +
             format(", %.1f km", S2Earth::ToMeters(nearest.distance()) / 1000);
    } else {
      note = "no fire weather station within " + format("%.0f km", config_.weather_max_station_km);
    }
    for (const auto& [key, w] : warnings_) {
      if (!w.activeAt(now) || !w.area.Intersects(cell_id)) continue;
      double raised = capSeverityScore(w.severity);
      addSource(fw, w.record_id);
      note += "; CAP warning " + w.label + " (" +
              firehub::v1::WeatherWarning::Severity_Name(w.severity).substr(9) + ")";
      score = std::max(score, raised);
    }
    fw.set_score(score);
    fw.set_note(note);
  }

  // water: in-service hydrants within the protection radius of the cell.
  if (keep(kWater)) {
    out.set_hydrants_in_reach(previous->hydrants_in_reach());
  } else {
    auto& fh = f[kWater];
    // Candidates near the cell's centre (radius plus the cell's diagonal: a superset), then the
    // exact distance to the cell; far cheaper than a query with the cell as its target.
    auto& query = search.hydrants;
    S2ClosestPointQuery<const HydrantIn*>::PointTarget target(center);
    const S1ChordAngle radius_angle = S2Earth::MetersToChordAngle(config_.hydrant_radius_m);
    std::vector<std::pair<S1ChordAngle, const HydrantIn*>> near;
    for (const auto& result : query.FindClosestPoints(&target)) {
      S1ChordAngle d = cell.GetDistance(result.point());
      if (d < radius_angle) near.emplace_back(d, result.data());
    }
    std::sort(near.begin(), near.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && a.second->record_id < b.second->record_id);
    });
    if (near.size() > 64) near.resize(64);
    int full = 0, low = 0;
    for (const auto& [distance, h] : near) {
      bool weak = h->pressure_mpa && *h->pressure_mpa < config_.hydrant_min_pressure_mpa;
      (weak ? low : full) += 1;
      addSource(fh, h->record_id);
    }
    fh.set_score(waterScore(full, low));
    out.set_hydrants_in_reach(full + low);
    std::string radius = format("%.0f m", config_.hydrant_radius_m);
    if (full)
      fh.set_note(std::to_string(full) + " in-service hydrant(s) within " + radius);
    else if (low)
      fh.set_note(std::to_string(low) + " hydrant(s) within " + radius + " below " +
                  format("%.2f MPa", config_.hydrant_min_pressure_mpa));
    else
      fh.set_note("no in-service hydrant within " + radius);
  }

  // response: estimated travel time from the nearest in-service station.
  if (keep(kResponse)) {
    out.set_nearest_station(previous->nearest_station());
    out.set_response_s(previous->response_s());
  } else {
    auto& fr = f[kResponse];
    auto& query = search.station;
    S2ClosestPointQuery<const StationIn*>::PointTarget target(center);
    auto nearest = query.FindClosestPoint(&target);
    std::optional<double> travel;
    if (!nearest.is_empty()) {
      const StationIn* s = nearest.data();
      double d = S2Earth::ToMeters(nearest.distance());
      travel = travelSeconds(config_, d);
      addSource(fr, s->record_id);
      out.set_nearest_station(s->label);
      fr.set_note("nearest in-service station " + s->label +
                  format(": %.1f km, about %.0f s", d / 1000, *travel));
    } else {
      fr.set_note("no in-service station");
    }
    out.set_response_s(travel ? *travel : -1);
    fr.set_score(responseScore(config_, travel));
  }

  // medical: distance to the nearest hospital with free emergency or burn beds.
  if (!keep(kMedical)) {
    auto& fm = f[kMedical];
    auto& query = search.hospital;
    S2ClosestPointQuery<const HospitalIn*>::PointTarget target(center);
    auto nearest = query.FindClosestPoint(&target);
    std::optional<double> km;
    if (!nearest.is_empty()) {
      km = S2Earth::ToMeters(nearest.distance()) / 1000;
      addSource(fm, nearest.data()->record_id);
      fm.set_note("nearest hospital with free beds " + nearest.data()->label +
                  format(": %.1f km", *km));
    } else {
      fm.set_note("no hospital with free emergency or burn beds");
    }
    fm.set_score(medicalScore(config_, km));
  }

  // public safety: open police incidents reported within the window.
  {
    auto& fp = f[kPublicSafety];
    std::vector<double> weights;
    for (const auto* i : incidents) {
      weights.push_back(i->weight);
      addSource(fp, i->record_id);
    }
    fp.set_score(publicSafetyScore(weights));
    fp.set_note(incidents.empty() ? "no open incident"
                                  : std::to_string(incidents.size()) + " open incident(s), e.g. " +
                                        incidents.front()->label);
  }

  double total = 0;
  for (auto& factor : f) {
    factor.set_contribution(100.0 * factor.weight() * factor.score());
    total += factor.contribution();
  }
  total = std::clamp(total, 0.0, 100.0);
  out.set_score(std::round(total * 100) / 100);
  bool forced = fires > 0;
  const WarningLevel& level = config_.levelFor(out.score(), forced);
  out.set_level(level.name);
  out.set_level_rank(config_.rankOf(level.name));
  out.set_colour(level.colour);
  out.set_forced(forced);
  return true;
}

}  // namespace firehub::fusion
