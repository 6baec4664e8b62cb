// The risk layer's working state: the inputs each factor needs (buildings, hazards, alarms,
// hydrants, stations, hospitals, incidents, CAP warnings, fire weather), indexed so that a
// changed input marks only the cells it can affect, and the computed cells. Private to fusion.
// @remark Not thread-safe; FusionEngine serialises access.
#pragma once

#include <s2/s2cell_id.h>
#include <s2/s2cell_union.h>
#include <s2/s2point.h>
#include <s2/s2closest_point_query.h>
#include <s2/s2point_index.h>

#include <absl/container/flat_hash_map.h>
#include <absl/container/node_hash_map.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "firehub/risk.h"
#include "firehub/v1/layer.pb.h"
#include "firehub/v1/record.pb.h"

namespace firehub::fusion {

struct Placed {
  std::string record_id;
  std::string label;  // name, or the entity id
  S2Point point;
  uint64_t cell = 0;  // grid cell of the point
};

struct BuildingIn : Placed {
  std::string key;  // entity key, for its hazards
  firehub::v1::Building::Occupancy occupancy = firehub::v1::Building::OCCUPANCY_UNSPECIFIED;
  bool key_unit = false;
  bool black_list = false;
};

struct HazardIn {
  std::string record_id;
  std::string building_key;
  bool open = false;
  bool major = false;
};

struct AlarmIn : Placed {
  bool fire = false;   // unresolved fire alarm
  bool fault = false;  // unresolved fault
};

struct HydrantIn : Placed {
  bool in_service = false;
  std::optional<double> pressure_mpa;
};

struct StationIn : Placed {
  bool in_service = false;
};

struct HospitalIn : Placed {
  bool has_capacity = false;  // open hospital with free emergency or burn beds
};

struct IncidentIn : Placed {
  double weight = 0;
  bool open = false;
  int64_t reported_at = 0;
};

struct WarningIn {
  std::string record_id;
  std::string label;
  firehub::v1::WeatherWarning::Severity severity =
      firehub::v1::WeatherWarning::SEVERITY_UNSPECIFIED;
  bool actual = false;
  int64_t onset = 0;    // 0 = from now
  int64_t expires = 0;  // 0 = until cancelled
  S2CellUnion area;
  bool activeAt(int64_t now) const {
    return actual && (onset == 0 || onset <= now) && (expires == 0 || now < expires);
  }
};

struct FireWeatherIn : Placed {
  double fwi = 0;
  std::string danger;
};

struct CellChange {
  uint64_t cell = 0;
  std::optional<firehub::v1::RiskCell> now;  // nullopt: the cell left the layer
  std::string previous_level;                // empty: the cell is new
  // Only the record ids behind the factors changed (a newer version of the same inputs): the
  // stored explanation is refreshed, but nothing a reader sees on the map moved.
  bool sources_only = false;
};

class RiskLayer {
 public:
  // `threads`: how many threads a recompute of many cells may use (1 = this thread only).
  RiskLayer(RiskConfig config, int cell_level, size_t threads = 1);

  // The entity's current state (its latest record), or nullopt when it is gone (retracted).
  // Records of kinds the risk model does not use are ignored.
  void apply(const std::string& entity_key, const firehub::v1::Record* latest, int64_t now);
  void setFireWeather(const std::string& station_key, double lon, double lat, double fwi,
                      const std::string& danger, const std::string& record_id);
  // Marks cells whose inputs changed with time (warnings starting or expiring, incidents leaving
  // the window) dirty.
  void advanceClock(int64_t now);
  // Cells as last published (restored from the lake at start); not reported as changes.
  void restore(const firehub::v1::RiskCell& cell);
  // The published cells of `other` (restored from the lake) with their stamps become this
  // layer's (moved: `other` is left without cells).
  void takePublished(RiskLayer& other) {
    cells_ = std::move(other.cells_);
    stamps_ = std::move(other.stamps_);
    last_stamp_ = other.last_stamp_;
    other.cells_.clear();
    other.stamps_.clear();
  }
  // Loading many inputs at once (a restore): no per-input marking until markAllDirty().
  void beginBulk() { bulk_ = true; }
  // Marks every cell with inputs or a published state dirty (and ends a bulk load).
  void markAllDirty();
  // Recomputes the dirty cells; returns those whose published state changed.
  std::vector<CellChange> recompute(int64_t now);

  const std::map<uint64_t, firehub::v1::RiskCell>& cells() const { return cells_; }
  // A number that changes whenever the cell's published state does (also when only its
  // sources or time do), unique across cells: renderings of a cell are valid while it stays.
  uint64_t stampOf(uint64_t cell) const {
    auto it = stamps_.find(cell);
    return it == stamps_.end() ? 0 : it->second;
  }
  const RiskConfig& config() const { return config_; }
  int cellLevel() const { return level_; }
  size_t dirtyCount() const { return dirty_.size(); }
  // Earliest time something changes by the clock alone; 0 = nothing scheduled.
  int64_t nextTimer() const { return timers_.empty() ? 0 : timers_.begin()->first; }

 private:
  struct CellInputs {
    std::vector<const BuildingIn*> buildings;
    std::vector<const AlarmIn*> alarms;
    std::vector<const IncidentIn*> incidents;
    bool empty() const { return buildings.empty() && alarms.empty() && incidents.empty(); }
  };

  uint64_t cellOf(const S2Point& p) const;
  // A dirty cell is recomputed. Its own inputs (buildings, hazards, alarms, incidents) are
  // always read again; the factors found by searching around the cell (fire weather, hydrants,
  // stations, hospitals: bits of `searched`) only when named, else kept from its last state.
  void dirtyCell(uint64_t cell, uint8_t searched = 0) {
    if (!bulk_) dirty_[cell] |= searched;
  }
  void dirtyNear(const S2Point& p, double radius_m, uint8_t searched);
  // Cells within `radius_m` of p or whose explanation names `record_id` under that factor.
  void dirtyReach(const S2Point& p, double radius_m, const std::string& record_id, int factor);
  void dirtyArea(const S2CellUnion& area, uint8_t searched);
  void schedule(int64_t at, const std::string& key);

  template <typename T>
  void attach(std::vector<const T*>& list, const T* item) {
    list.push_back(item);
  }
  template <typename T>
  void detach(uint64_t cell, std::vector<const T*> CellInputs::*member, const T* item);

  void applyBuilding(const std::string& key, const firehub::v1::Record* r);
  void applyHazard(const std::string& key, const firehub::v1::Record* r);
  void applyAlarm(const std::string& key, const firehub::v1::Record* r);
  void applyWater(const std::string& key, const firehub::v1::Record* r);
  void applyStation(const std::string& key, const firehub::v1::Record* r);
  void applyHealth(const std::string& key, const firehub::v1::Record* r);
  void applyIncident(const std::string& key, const firehub::v1::Record* r);
  void applyWarning(const std::string& key, const firehub::v1::Record* r);

  // The nearest-place searches of one thread over the current indexes; a query keeps its
  // covering of the index between cells, so one set serves a whole recompute.
  struct Searchers {
    explicit Searchers(const RiskLayer& layer);
    S2ClosestPointQuery<const FireWeatherIn*> weather;
    S2ClosestPointQuery<const HydrantIn*> hydrants;
    S2ClosestPointQuery<const StationIn*> station;
    S2ClosestPointQuery<const HospitalIn*> hospital;
  };
  // Computes the cell into `out` (cleared first; a message reused between cells keeps its
  // allocations); false when the cell has nothing at risk. Reads only (safe from several
  // threads at once while nothing is applied).
  bool compute(uint64_t cell, int64_t now, uint8_t searched, const firehub::v1::RiskCell* previous,
               Searchers& search, firehub::v1::RiskCell& out) const;
  static constexpr size_t kParallelCells = 4096;  // fewer dirty cells: one thread

  RiskConfig config_;
  int level_;
  size_t threads_;

  // The inputs stay where they are (node maps): the cells' inputs and the spatial indexes point
  // at them.
  absl::node_hash_map<std::string, BuildingIn> buildings_;
  absl::node_hash_map<std::string, HazardIn> hazards_;
  absl::flat_hash_map<std::string, std::vector<std::string>>
      hazards_of_;  // building key -> hazards
  absl::node_hash_map<std::string, AlarmIn> alarms_;
  absl::node_hash_map<std::string, HydrantIn> hydrants_;
  absl::node_hash_map<std::string, StationIn> stations_;
  absl::node_hash_map<std::string, HospitalIn> hospitals_;
  absl::node_hash_map<std::string, IncidentIn> incidents_;
  absl::node_hash_map<std::string, WarningIn> warnings_;
  absl::node_hash_map<std::string, FireWeatherIn> fire_weather_;

  // Spatial indexes of what is looked up by distance: in-service hydrants, in-service stations,
  // hospitals with free beds, stations with fire weather. Data = the entity.
  S2PointIndex<const HydrantIn*> hydrant_index_;
  S2PointIndex<const StationIn*> station_index_;
  S2PointIndex<const HospitalIn*> hospital_index_;
  S2PointIndex<const FireWeatherIn*> weather_index_;

  absl::flat_hash_map<uint64_t, CellInputs> inputs_;
  std::map<uint64_t, firehub::v1::RiskCell> cells_;  // published state, in S2 (Hilbert) order
  absl::flat_hash_map<uint64_t, uint64_t> stamps_;   // cell -> stamp of its published state
  uint64_t last_stamp_ = 0;
  absl::flat_hash_map<uint64_t, uint8_t> dirty_;  // cell -> searched factors to redo
  bool bulk_ = false;
  std::multimap<int64_t, std::string> timers_;  // time -> entity key to re-evaluate
};

}  // namespace firehub::fusion
