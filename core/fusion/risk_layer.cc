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

constexpr size_t kMaxSources = 8;  // record ids listed per factor

// The factors found by searching around a cell; the others come from the cell's own inputs.
constexpr uint8_t kSearched = bit(kWeather) | bit(kWater) | bit(kResponse) | bit(kMedical);

std::string format(const char* fmt, double a, double b = 0) {
  char buf[96];
  std::snprintf(buf, sizeof buf, fmt, a, b);
  return buf;
}

void addSource(RiskFactor& f, const std::string& id) {
  if (static_cast<size_t>(f.sources_size()) < kMaxSources) f.add_sources(id);
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

// Long: every factor of a cell computed in turn from the same searched inputs (the hot path of
// fusion); split by factor, each helper would take the searchers and the cell.
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
