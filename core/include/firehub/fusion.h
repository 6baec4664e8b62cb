// Fusion: turns the lake's ordered log into derived state.
//  - Fire weather of every weather station: the FWI System advanced once per local day from the
//    station's first observation at or after noon, with the precipitation since the last one.
//  - The risk layer: every S2 cell (fusion.cell.level) with a building, an unresolved alarm or an
//    open incident, scored by the factors of risk.h, with its explanation. Only the cells a
//    record can affect are recomputed; changed cells go to the lake's layers family and, through
//    the outbox, to firehub.v1.layer.risk (key = cell token; a tombstone when a cell leaves).
//  - CAP 1.2 warning drafts for areas whose cells reach warnings.level (firehub.v1.warnings).
// State, derived data and the log checkpoint are written in one batch, so a restart continues
// exactly where it stopped.
// @remark FusionEngine owns one thread; the Lake must outlive it. Queries are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "firehub/fwi.h"
#include "firehub/lake.h"
#include "firehub/risk.h"
#include "firehub/status.h"
#include "firehub/v1/layer.pb.h"

namespace firehub::fusion {

struct FusionOptions {
  // Offset of the local day for the noon observation, minutes east of UTC. Default: +480 (UTC+8).
  int local_offset_minutes = 480;
  // Log entries read per step. Default: 2000.
  size_t batch = 2000;
  // S2 level of the grid (fusion.cell.level). Default: 15.
  int cell_level = 15;
  // Threads a recompute of many cells (a restore, a full fusion) may use (fusion.threads).
  // Default: the machine's cores, at most 8.
  size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  // The risk model. Default: RiskConfig's defaults.
  RiskConfig risk;
  // Unix seconds now; tests set a fixed clock. Default: the system clock.
  std::function<int64_t()> now;
};

// What one fusion step changed, handed to listeners: to the others once it is durable, whole;
// to live ones as soon as it is computed, in two parts (the cells, then the warnings drafted
// from them).
struct FusionDelta {
  uint64_t sequence = 0;                     // the step's number among steps that changed something
  std::vector<firehub::v1::RiskCell> cells;  // new or changed cells
  std::vector<std::string> removed;          // tokens of cells that left the layer
  std::map<std::string, std::string> previous;  // token -> level before (changed cells only)
  std::vector<firehub::v1::WarningDraft> warnings;
  // Keys of the entities whose latest record the step applied (live listeners only, with the
  // cells; a step that changed no cell still tells them): what the map's point layers follow.
  std::vector<std::string> entities;
  // Each of those entities' latest record as the step applied it, in the same order (null: it
  // has none, or it was retracted), so that a listener need not read it again.
  std::vector<std::shared_ptr<const firehub::v1::Record>> entity_records;
  // The layer was loaded whole (the engine restored its state at start, without a delta per
  // cell): a live listener that keeps a copy of the cells reads them again. Told outside the
  // engine's lock, on its thread, so such a listener may call forEachRiskCell().
  bool reload = false;
};

inline constexpr const char* kRiskTopic = "firehub.v1.layer.risk";
inline constexpr const char* kWarningsTopic = "firehub.v1.warnings";

// One station's fire weather.
struct StationFireWeather {
  std::string station;  // entity key, weather/weather_station/<id>
  double lon = 0, lat = 0;
  FwiState state;              // moisture codes after the last computed day
  long last_day = 0;           // local date (YYYYMMDD) of the last computed day; 0 = none yet
  double prec_since_noon = 0;  // precipitation since the last noon observation, mm
  FwiIndices today;            // indices of the last computed day
  int64_t computed_at = 0;     // unix seconds of the observation that computed them
  std::string record_id;       // that observation's record id
};

// A station's start codes for a season, set by an operator: the first day computed on or after
// `from_day` starts from `codes` instead of carrying the codes of the season before.
struct FwiStart {
  FwiState codes;
  long from_day = 0;     // local date, YYYYMMDD
  bool applied = false;  // the day it started from them is computed
  int64_t set_at = 0;    // unix seconds
  std::string set_by;    // key id of the operator
};

// Danger class of an FWI value: low < 5, moderate < 10, high < 20, very high < 30, else extreme.
const char* dangerClass(double fwi);

class RiskLayer;
class WarningDrafter;

class FusionEngine {
 public:
  FusionEngine(lake::Lake& lake, FusionOptions options = {});
  ~FusionEngine();
  Status start();
  void stop();
  void notify();
  // Applies everything in the log now (tests, offline use).
  Status catchUp();
  // Recomputes every cell from the current inputs (after a configuration change, or to measure
  // a full fusion); changes are stored and published like any other. Returns the cells computed.
  Result<size_t> recomputeAll();

  // Every station with at least one computed day.
  Result<std::vector<StationFireWeather>> stations() const;
  // A station's season start codes (`station_id`: the weather station's entity id). Replaces any
  // set before; InvalidArgument for codes out of range.
  Status setFwiStart(const std::string& station_id, const FwiStart& start);
  Result<std::optional<FwiStart>> fwiStart(const std::string& station_id) const;
  uint64_t checkpoint() const { return checkpoint_.load(); }
  // True once the engine has restored its state and found the log fully applied.
  bool caughtUp() const { return caught_up_.load(); }

  // The risk cell named by an S2 token, if it is in the layer.
  std::optional<firehub::v1::RiskCell> riskCell(const std::string& token) const;
  // Risk cells that intersect bbox, in S2 order, from `offset`, at most `limit`; `fn` sees each
  // with its S2 cell id and stamp (a number that changes whenever the cell does, unique across
  // cells) while the layer is locked for reading. `matched` gets the count before paging.
  using RiskCellVisitor =
      std::function<void(const firehub::v1::RiskCell&, uint64_t id, uint64_t stamp)>;
  void forEachRiskCell(const lake::BBox& bbox, size_t offset, size_t limit,
                       const RiskCellVisitor& fn, size_t* matched = nullptr) const;
  size_t riskCellCount() const;
  // Changes whenever a risk cell changes (or the layer was restored): responses rendered from
  // the cells at one version stay valid until it moves.
  uint64_t layerVersion() const { return layer_version_.load(); }
  // Count of cells per level name.
  std::map<std::string, size_t> levelCounts() const;
  // Newest draft of every area still warning.
  std::vector<firehub::v1::WarningDraft> activeWarnings() const;
  // Every stored draft (Alert, Update and Cancel), oldest first.
  Result<std::vector<firehub::v1::WarningDraft>> warningHistory() const;
  // Issues a machine draft as an Actual CAP message ("<draft>-A", referencing the draft), stored
  // and published on firehub.v1.warnings like the drafts. `issuer`: the operator's key id.
  // NotFound for an unknown draft; AlreadyExists when it was issued before.
  Result<firehub::v1::WarningDraft> issueWarning(const std::string& draft_identifier,
                                                 const std::string& issuer);
  const RiskConfig& riskConfig() const { return options_.risk; }
  int cellLevel() const { return options_.cell_level; }
  int64_t now() const;

  // Called (on the fusion thread) for each step that changed something: once the step is
  // durable (its layers and outbox entries are in the lake), or, for a `live` listener such as
  // the map's stream, as soon as the change is computed and readable through riskCell() and
  // forEachRiskCell(): the cells before the warnings are drafted, the warnings before the lake
  // write (which may wait behind other writers). A live listener must not call back into the
  // engine. A step that fails to commit is recomputed from the log, so live listeners never
  // see a state that is not reached again.
  using Listener = std::function<void(const FusionDelta&)>;
  int addListener(Listener listener, bool live = false);
  void removeListener(int id);

 private:
  Status restore();
  void notifyListeners(const FusionDelta& delta, bool live);
  Status step(bool& did_work);
  void run();

  lake::Lake& lake_;
  FusionOptions options_;
  mutable std::shared_mutex state_mu_;  // the risk layer and drafter
  std::unique_ptr<RiskLayer> risk_;
  std::unique_ptr<WarningDrafter> drafter_;
  bool restored_ = false;
  std::atomic<bool> caught_up_{false};
  std::atomic<uint64_t> layer_version_{0};
  uint64_t restored_through_ = 0;  // log entries up to here are in the restored state
  uint64_t delta_sequence_ = 0;
  // A step whose lake write failed: its batch and delta, written by the next step before
  // anything else (the cells in memory already moved; recomputing would find nothing to write).
  struct Unwritten {
    lake::DerivedBatch batch;
    uint64_t checkpoint = 0;
    std::optional<FusionDelta> delta;
  };
  std::optional<Unwritten> unwritten_;
  std::mutex listeners_mu_;
  std::map<int, std::pair<bool, Listener>> listeners_;  // id -> (live, listener)
  int next_listener_ = 1;
  std::atomic<uint64_t> checkpoint_{0};
  std::mutex step_mu_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool pending_ = false;
};

}  // namespace firehub::fusion
