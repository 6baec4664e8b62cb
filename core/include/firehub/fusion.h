// Fusion: turns the lake's ordered log into derived state. This first part keeps the fire
// weather of every weather station: the FWI System advanced once per local day from the station's
// first observation at or after noon, with the precipitation of the 24 hours before it.
// State and the log checkpoint live in the lake's meta and are written together, so a restart
// continues each station's sequence exactly where it stopped.
// @remark FusionEngine owns one thread; the Lake must outlive it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "firehub/fwi.h"
#include "firehub/lake.h"
#include "firehub/status.h"

namespace firehub::fusion {

struct FusionOptions {
  // Offset of the local day for the noon observation, minutes east of UTC. Default: +480 (UTC+8).
  int local_offset_minutes = 480;
  // Log entries read per step. Default: 2000.
  size_t batch = 2000;
};

// One station's fire weather.
struct StationFireWeather {
  std::string station;           // entity key, weather/weather_station/<id>
  double lon = 0, lat = 0;
  FwiState state;                // moisture codes after the last computed day
  long last_day = 0;             // local date (YYYYMMDD) of the last computed day; 0 = none yet
  double prec_since_noon = 0;    // precipitation since the last noon observation, mm
  FwiIndices today;              // indices of the last computed day
  int64_t computed_at = 0;       // unix seconds of the observation that computed them
};

// Danger class of an FWI value: low < 5, moderate < 10, high < 20, very high < 30, else extreme.
const char* dangerClass(double fwi);

class FusionEngine {
 public:
  FusionEngine(lake::Lake& lake, FusionOptions options = {});
  ~FusionEngine();
  Status start();
  void stop();
  void notify();
  // Applies everything in the log now (tests, offline use).
  Status catchUp();

  // Every station with at least one computed day.
  Result<std::vector<StationFireWeather>> stations() const;
  uint64_t checkpoint() const { return checkpoint_.load(); }

 private:
  Status step(bool& did_work);
  void run();

  lake::Lake& lake_;
  FusionOptions options_;
  std::atomic<uint64_t> checkpoint_{0};
  std::mutex step_mu_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool pending_ = false;
};

}  // namespace firehub::fusion
