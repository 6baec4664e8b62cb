#include <cinttypes>
#include <cstdio>
#include <map>

#include "firehub/fusion.h"
#include "firehub/log.h"

namespace firehub::fusion {
namespace {

constexpr const char* kCheckpointKey = "checkpoint/fusion";
constexpr const char* kStationPrefix = "fwi/";

std::string encode(const StationFireWeather& s) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%.17g %.17g %.17g %.17g %.17g %ld %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %" PRId64,
                s.lon, s.lat, s.state.ffmc, s.state.dmc, s.state.dc, s.last_day, s.prec_since_noon,
                s.today.ffmc, s.today.dmc, s.today.dc, s.today.isi, s.today.bui, s.today.fwi,
                s.today.dsr, s.computed_at);
  return buf;
}

bool decode(const std::string& text, StationFireWeather& s) {
  return std::sscanf(text.c_str(),
                     "%lf %lf %lf %lf %lf %ld %lf %lf %lf %lf %lf %lf %lf %lf %" SCNd64, &s.lon,
                     &s.lat, &s.state.ffmc, &s.state.dmc, &s.state.dc, &s.last_day,
                     &s.prec_since_noon, &s.today.ffmc, &s.today.dmc, &s.today.dc, &s.today.isi,
                     &s.today.bui, &s.today.fwi, &s.today.dsr, &s.computed_at) == 15;
}

}  // namespace

const char* dangerClass(double fwi) {
  if (fwi < 5) return "low";
  if (fwi < 10) return "moderate";
  if (fwi < 20) return "high";
  if (fwi < 30) return "very_high";
  return "extreme";
}

FusionEngine::FusionEngine(lake::Lake& lake, FusionOptions options)
    : lake_(lake), options_(options) {
  auto stored = lake_.getMeta(kCheckpointKey);
  if (stored.isOk() && stored.value()) checkpoint_ = std::stoull(*stored.value());
}

FusionEngine::~FusionEngine() { stop(); }

Status FusionEngine::step(bool& did_work) {
  std::lock_guard<std::mutex> lock(step_mu_);
  did_work = false;
  std::vector<std::pair<uint64_t, std::string>> log;
  FIREHUB_RETURN_IF_ERROR(lake_.readLog(checkpoint_ + 1, options_.batch, log));
  if (log.empty()) return Status::ok();
  std::map<std::string, StationFireWeather> touched;
  for (const auto& [seq, id] : log) {
    auto record = lake_.getRecord(id);
    if (!record.isOk()) return record.status();
    if (!record.value() || !record.value()->has_weather_observation()) continue;
    const auto& r = *record.value();
    if (!r.geometry().has_point()) continue;
    std::string key = lake::entityKey(r);
    auto it = touched.find(key);
    if (it == touched.end()) {
      StationFireWeather s;
      s.station = key;
      auto stored = lake_.getMeta(kStationPrefix + key);
      if (!stored.isOk()) return stored.status();
      if (stored.value()) decode(*stored.value(), s);
      it = touched.emplace(key, s).first;
    }
    StationFireWeather& s = it->second;
    const auto& w = r.weather_observation();
    s.lon = r.geometry().point().lon();
    s.lat = r.geometry().point().lat();
    // Local day and hour of the observation.
    std::time_t local = r.observed_at().seconds() + options_.local_offset_minutes * 60;
    std::tm tm{};
    gmtime_r(&local, &tm);
    long day = (tm.tm_year + 1900L) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    if (day < s.last_day) continue;  // a late observation of a day already computed
    s.prec_since_noon += w.precipitation_mm();
    if (tm.tm_hour >= 12 && day > s.last_day) {
      FwiWeather noon{w.temperature_c(), w.relative_humidity_pct(), w.wind_speed_kmh(), s.prec_since_noon};
      s.today = advanceDay(s.state, noon, s.lat, tm.tm_mon + 1);
      s.last_day = day;
      s.prec_since_noon = 0;
      s.computed_at = r.observed_at().seconds();
    }
  }
  std::vector<std::pair<std::string, std::string>> writes;
  for (const auto& [key, s] : touched) writes.emplace_back(kStationPrefix + key, encode(s));
  uint64_t next = log.back().first;
  writes.emplace_back(kCheckpointKey, std::to_string(next));
  FIREHUB_RETURN_IF_ERROR(lake_.putMetaBatch(writes));  // state and checkpoint together
  checkpoint_ = next;
  did_work = true;
  return Status::ok();
}

Status FusionEngine::catchUp() {
  bool did_work = true;
  while (did_work) FIREHUB_RETURN_IF_ERROR(step(did_work));
  return Status::ok();
}

Result<std::vector<StationFireWeather>> FusionEngine::stations() const {
  std::vector<StationFireWeather> out;
  Status s = lake_.scanMeta(kStationPrefix, [&](const std::string& key, const std::string& value) {
    StationFireWeather st;
    st.station = key.substr(std::string(kStationPrefix).size());
    if (decode(value, st) && st.last_day > 0) out.push_back(st);
  });
  if (!s.isOk()) return s;
  return out;
}

Status FusionEngine::start() {
  stop_ = false;
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void FusionEngine::notify() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    pending_ = true;
  }
  wake_.notify_one();
}

void FusionEngine::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  notify();
  thread_.join();
}

void FusionEngine::run() {
  while (!stop_) {
    bool did_work = false;
    Status s = step(did_work);
    if (!s.isOk()) FIREHUB_LOG(kError, "fusion", s.toString());
    if (did_work && s.isOk()) continue;
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(s.isOk() ? 500 : 2000),
                   [this] { return pending_ || stop_.load(); });
    pending_ = false;
  }
}

}  // namespace firehub::fusion
