#include <chrono>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include <absl/container/flat_hash_map.h>

#include "firehub/fusion.h"
#include "firehub/log.h"
#include "fusion/risk_layer.h"
#include "fusion/warnings.h"

#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

namespace firehub::fusion {
namespace {

constexpr const char* kCheckpointKey = "checkpoint/fusion";
constexpr const char* kStationPrefix = "fwi/";
constexpr const char* kRiskPrefix = "risk/";
constexpr const char* kRiskLayerName = "risk";  // its versions: at/risk/...
constexpr const char* kWarningPrefix = "warnings/";
constexpr const char* kFwiStartPrefix = "fwistart/";
constexpr const char* kStationKeyPrefix = "weather/weather_station/";

std::string encodeStart(const FwiStart& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.17g %.17g %.17g %ld %d %" PRId64 " ", s.codes.ffmc, s.codes.dmc,
                s.codes.dc, s.from_day, s.applied ? 1 : 0, s.set_at);
  return buf + s.set_by;
}

bool decodeStart(const std::string& text, FwiStart& s) {
  int applied = 0, used = 0;
  if (std::sscanf(text.c_str(), "%lg %lg %lg %ld %d %" SCNd64 " %n", &s.codes.ffmc, &s.codes.dmc,
                  &s.codes.dc, &s.from_day, &applied, &s.set_at, &used) < 6)
    return false;
  s.applied = applied != 0;
  s.set_by = text.substr(static_cast<size_t>(used));
  return true;
}

std::string encode(const StationFireWeather& s) {
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "%.17g %.17g %.17g %.17g %.17g %ld %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %" PRId64,
      s.lon, s.lat, s.state.ffmc, s.state.dmc, s.state.dc, s.last_day, s.prec_since_noon,
      s.today.ffmc, s.today.dmc, s.today.dc, s.today.isi, s.today.bui, s.today.fwi, s.today.dsr,
      s.computed_at);
  return std::string(buf) + " " + s.record_id;
}

bool decode(const std::string& text, StationFireWeather& s) {
  int used = 0;
  if (std::sscanf(text.c_str(),
                  "%lf %lf %lf %lf %lf %ld %lf %lf %lf %lf %lf %lf %lf %lf %" SCNd64 "%n", &s.lon,
                  &s.lat, &s.state.ffmc, &s.state.dmc, &s.state.dc, &s.last_day, &s.prec_since_noon,
                  &s.today.ffmc, &s.today.dmc, &s.today.dc, &s.today.isi, &s.today.bui,
                  &s.today.fwi, &s.today.dsr, &s.computed_at, &used) != 15) {
    return false;
  }
  s.record_id = used < static_cast<int>(text.size()) ? text.substr(used + 1) : std::string();
  return true;
}

int64_t systemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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
    : lake_(lake), options_(std::move(options)) {
  auto stored = lake_.getMeta(kCheckpointKey);
  if (stored.isOk() && stored.value()) checkpoint_ = std::stoull(*stored.value());
  risk_ = std::make_unique<RiskLayer>(options_.risk, options_.cell_level, options_.threads);
  drafter_ = std::make_unique<WarningDrafter>(options_.risk, options_.cell_level,
                                              options_.local_offset_minutes);
  // Retention keeps the log entries fusion has not applied yet.
  lake_.holdLog("fusion", [this] { return checkpoint_.load() + 1; });
}

FusionEngine::~FusionEngine() {
  stop();
  lake_.holdLog("fusion", nullptr);
}

int64_t FusionEngine::now() const { return options_.now ? options_.now() : systemNow(); }

// Two phases, so a restart serves the map first and exactness follows. First what was last
// published (the cells and the warnings' drafting state, a read of the layers): from then on the
// map is served as it was when the hub stopped. Then, outside the lock, a layer of its own
// rebuilds the inputs from the latest state of every entity (most of a restart's time); under the
// lock it takes the published cells over (the same cells with the same stamps) and replaces the
// first, so the first step publishes only what really changed while the hub was down.
Status FusionEngine::restore() {
  auto published =
      std::make_unique<RiskLayer>(options_.risk, options_.cell_level, options_.threads);
  FIREHUB_RETURN_IF_ERROR(
      lake_.scanLayers(kRiskPrefix, [&](const std::string&, const std::string& v) {
        firehub::v1::LayerEntry e;
        if (e.ParseFromString(v) && e.has_risk_cell()) published->restore(e.risk_cell());
      }));
  std::vector<firehub::v1::WarningDraft> drafts;
  FIREHUB_RETURN_IF_ERROR(
      lake_.scanLayers(kWarningPrefix, [&](const std::string&, const std::string& v) {
        firehub::v1::LayerEntry e;
        // Issued messages are the operators', not an area's drafting state.
        if (e.ParseFromString(v) && e.has_warning() && e.warning().draft().empty())
          drafts.push_back(std::move(*e.mutable_warning()));
      }));
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    risk_.swap(published);  // the layer it replaces goes after the lock
    for (const auto& draft : drafts) drafter_->restore(draft);
    ++layer_version_;
  }
  published.reset();
  FusionDelta reload;
  reload.reload = true;
  notifyListeners(reload, true);
  FIREHUB_LOG(kInfo, "fusion",
              "serving " << riskCellCount() << " published cells; restoring inputs");

  auto rebuilt = std::make_unique<RiskLayer>(options_.risk, options_.cell_level, options_.threads);
  rebuilt->beginBulk();
  int64_t t = now();
  size_t entities = 0;
  // Read before the scans: every record up to this sequence is in what they see, so the log
  // needs replaying for the risk layer only after it.
  restored_through_ = lake_.lastSequence();
  for (const char* domain :
       {"building", "alarm", "water", "station", "health", "police", "weather"}) {
    FIREHUB_RETURN_IF_ERROR(lake_.scanLatest(domain, [&](const firehub::v1::Record& r) {
      rebuilt->apply(lake::entityKey(r), &r, t);
      ++entities;
    }));
  }
  FIREHUB_RETURN_IF_ERROR(
      lake_.scanMeta(kStationPrefix, [&](const std::string& key, const std::string& value) {
        StationFireWeather st;
        if (!decode(value, st) || st.last_day == 0) return;
        rebuilt->setFireWeather(key.substr(std::strlen(kStationPrefix)), st.lon, st.lat,
                                st.today.fwi, dangerClass(st.today.fwi), st.record_id);
      }));
  rebuilt->advanceClock(t);
  {
    // The published cells move over (never two copies of them), and every cell is computed
    // again on the first step.
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    rebuilt->takePublished(*risk_);
    rebuilt->markAllDirty();
    risk_.swap(rebuilt);
  }
  rebuilt.reset();
  FIREHUB_LOG(kInfo, "fusion",
              "restored " << entities << " entities, " << riskCellCount()
                          << " published cells, checkpoint " << checkpoint_.load());
  restored_ = true;
  return Status::ok();
}

// Long: one fusion step under one lock: read the log, apply, recompute, draft, write, in that
// order.
Status FusionEngine::step(bool& did_work) {
  std::lock_guard<std::mutex> lock(step_mu_);
  did_work = false;
  if (!restored_) FIREHUB_RETURN_IF_ERROR(restore());
  if (unwritten_) {
    FIREHUB_RETURN_IF_ERROR(lake_.commitDerived(unwritten_->batch));
    checkpoint_ = unwritten_->checkpoint;
    auto delta = std::move(unwritten_->delta);
    unwritten_.reset();
    FIREHUB_LOG(kInfo, "fusion", "wrote the step that failed to commit; layers up to date again");
    if (delta) notifyListeners(*delta, false);
  }
  std::vector<std::pair<uint64_t, std::string>> log;
  FIREHUB_RETURN_IF_ERROR(lake_.readLog(checkpoint_ + 1, options_.batch, log));
  // Caught up once a step found no new log entries and left no cell dirty and no warning area
  // waiting (the first step after a restore recomputes every cell).
  auto mark_caught_up = [&] {
    if (log.empty() && risk_->dirtyCount() == 0 && drafter_->backlog() == 0) caught_up_ = true;
  };
  int64_t t = now();

  std::unique_lock<std::shared_mutex> state(state_mu_);
  std::map<std::string, StationFireWeather> touched;
  std::map<std::string, std::optional<FwiStart>> starts;  // of the touched stations
  std::set<std::string> entities;                         // entity keys to re-read from `latest`
  // Of each of those, the last of its records this step read: its latest, most often.
  absl::flat_hash_map<std::string, std::shared_ptr<const firehub::v1::Record>> read;
  for (const auto& [seq, id] : log) {
    auto record = lake_.getRecord(id);
    if (!record.isOk()) return record.status();
    if (!record.value()) continue;
    auto held = std::make_shared<const firehub::v1::Record>(std::move(*record.value()));
    const auto& r = *held;
    if (seq > restored_through_) {
      std::string key = lake::entityKey(r);
      entities.insert(key);
      read.insert_or_assign(std::move(key), std::move(held));
    }
    if (!r.has_weather_observation() || !r.geometry().has_point()) continue;
    std::string key = lake::entityKey(r);
    auto it = touched.find(key);
    if (it == touched.end()) {
      StationFireWeather s;
      s.station = key;
      auto stored = lake_.getMeta(kStationPrefix + key);
      if (!stored.isOk()) return stored.status();
      if (stored.value()) decode(*stored.value(), s);
      it = touched.emplace(key, s).first;
      auto start = lake_.getMeta(kFwiStartPrefix + key);
      if (!start.isOk()) return start.status();
      FwiStart given;
      if (start.value() && decodeStart(*start.value(), given) && !given.applied)
        starts[key] = given;
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
      auto start = starts.find(key);
      if (start != starts.end() && start->second && day >= start->second->from_day) {
        s.state = start->second->codes;  // the season starts from the operator's codes
        start->second->applied = true;
      } else if (s.last_day > 0 && daysBetween(s.last_day, day) - 1 > kFfmcRestartAfterDays) {
        s.state.ffmc = FwiState().ffmc;  // days without weather: fine fuels start afresh
      }
      FwiWeather noon{w.temperature_c(), w.relative_humidity_pct(), w.wind_speed_kmh(),
                      s.prec_since_noon};
      s.today = advanceDay(s.state, noon, s.lat, tm.tm_mon + 1);
      s.last_day = day;
      s.prec_since_noon = 0;
      s.computed_at = r.observed_at().seconds();
      s.record_id = r.id();
    }
  }
  // The risk layer follows each entity's latest state (a late record never rolls it back).
  std::vector<std::shared_ptr<const firehub::v1::Record>> applied;
  applied.reserve(entities.size());
  for (const auto& key : entities) {
    auto id = lake_.latestId(key);
    if (!id.isOk()) return id.status();
    std::shared_ptr<const firehub::v1::Record> latest;
    if (id.value()) {
      auto it = read.find(key);
      if (it != read.end() && it->second->id() == *id.value()) {
        latest = it->second;
      } else {
        auto record = lake_.getRecord(*id.value());
        if (!record.isOk()) return record.status();
        if (record.value())
          latest = std::make_shared<const firehub::v1::Record>(std::move(*record.value()));
      }
    }
    if (latest && latest->op() == firehub::v1::OP_RETRACT) latest.reset();
    risk_->apply(key, latest.get(), t);
    applied.push_back(std::move(latest));
  }
  read.clear();
  std::vector<std::pair<std::string, std::string>> meta;
  for (const auto& [key, start] : starts) {
    if (start && start->applied) meta.emplace_back(kFwiStartPrefix + key, encodeStart(*start));
  }
  for (const auto& [key, s] : touched) {
    meta.emplace_back(kStationPrefix + key, encode(s));
    if (s.last_day > 0) {
      risk_->setFireWeather(key, s.lon, s.lat, s.today.fwi, dangerClass(s.today.fwi), s.record_id);
    }
  }
  risk_->advanceClock(t);
  if (log.empty() && risk_->dirtyCount() == 0 && !drafter_->hasDue(t) && drafter_->backlog() == 0) {
    mark_caught_up();
    return Status::ok();
  }
  auto changes = risk_->recompute(t);
  if (!changes.empty()) ++layer_version_;

  lake::DerivedBatch batch;
  FusionDelta delta;
  delta.sequence = delta_sequence_ + 1;
  std::vector<uint64_t> changed;
  changed.reserve(changes.size());
  for (auto& c : changes) {
    changed.push_back(c.cell);
    std::string token = S2CellId(c.cell).ToToken();
    std::string layer_key = kRiskPrefix + token;
    if (c.now) {
      firehub::v1::LayerEntry e;
      e.set_allocated_risk_cell(&*c.now);  // lent for serialising, not copied
      batch.layer_puts.emplace_back(layer_key, e.SerializeAsString());
      (void)e.release_risk_cell();
      // The layer's history: the cell from this step on (the map at a moment reads it back).
      batch.versions.push_back(
          {kRiskLayerName, c.cell, t * 1000000, batch.layer_puts.back().second});
      if (c.sources_only) continue;  // stored, not announced
      if (!c.previous_level.empty()) delta.previous[token] = c.previous_level;
      delta.cells.push_back(std::move(*c.now));
    } else {
      batch.layer_deletes.push_back(layer_key);
      batch.versions.push_back({kRiskLayerName, c.cell, t * 1000000, std::string()});
      delta.removed.push_back(token);
    }
    batch.deliveries.push_back({kRiskTopic, token, layer_key, ""});
  }
  // The map sees the cells now; drafting the warnings (CAP documents) can take a while.
  delta.entities.assign(entities.begin(), entities.end());
  delta.entity_records = std::move(applied);
  if (!delta.cells.empty() || !delta.removed.empty() || !delta.entities.empty())
    notifyListeners(delta, true);
  delta.entities.clear();
  delta.entity_records.clear();

  // Drafts for the areas of changed cells, and of pending areas whose hold ran out (the rest
  // wait unchanged); at most warnings.max_per_step of them, the other areas in the next steps.
  auto drafts = drafter_->update(changed, risk_->cells(), t);
  const bool drafts_waiting = drafter_->backlog() > 0;
  for (const auto& d : drafts) {
    std::string layer_key = kWarningPrefix + d.identifier();
    firehub::v1::LayerEntry e;
    *e.mutable_warning() = d;
    batch.layer_puts.emplace_back(layer_key, e.SerializeAsString());
    batch.deliveries.push_back({kWarningsTopic, d.area(), layer_key, ""});
  }
  if (!drafts.empty()) {
    FusionDelta warnings;
    warnings.sequence = delta.sequence;
    warnings.warnings = std::move(drafts);
    notifyListeners(warnings, true);
    delta.warnings = std::move(warnings.warnings);
  }
  batch.meta = std::move(meta);
  uint64_t next = log.empty() ? checkpoint_.load() : log.back().first;
  if (!log.empty()) batch.meta.emplace_back(kCheckpointKey, std::to_string(next));
  state.unlock();

  const bool changed_any =
      !delta.cells.empty() || !delta.removed.empty() || !delta.warnings.empty();
  if (changed_any) delta_sequence_ = delta.sequence;
  // State, layers, outbox and checkpoint together.
  if (Status written = lake_.commitDerived(batch); !written.isOk()) {
    unwritten_ = Unwritten{std::move(batch), next, std::nullopt};
    if (changed_any) unwritten_->delta = std::move(delta);
    return written;
  }
  checkpoint_ = next;
  did_work = !log.empty() || drafts_waiting;
  mark_caught_up();
  if (changed_any) notifyListeners(delta, false);
  return Status::ok();
}

Result<size_t> FusionEngine::recomputeAll() {
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    risk_->markAllDirty();
  }
  size_t dirty = 0;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    dirty = risk_->dirtyCount();
  }
  bool did_work = false;
  FIREHUB_RETURN_IF_ERROR(step(did_work));
  return dirty;
}

Status FusionEngine::catchUp() {
  bool did_work = true;
  while (did_work) FIREHUB_RETURN_IF_ERROR(step(did_work));
  return Status::ok();
}

Status FusionEngine::setFwiStart(const std::string& station_id, const FwiStart& start) {
  if (std::string why = checkFwiState(start.codes); !why.empty())
    return Status::invalidArgument("start codes: " + why);
  if (station_id.empty() || station_id.size() > 200)
    return Status::invalidArgument("a station id of 1..200 bytes");
  FwiStart stored = start;
  stored.applied = false;
  std::lock_guard<std::mutex> lock(step_mu_);  // between steps: the next one sees it whole
  return lake_.putMeta(kFwiStartPrefix + std::string(kStationKeyPrefix) + station_id,
                       encodeStart(stored));
}

Result<std::optional<FwiStart>> FusionEngine::fwiStart(const std::string& station_id) const {
  auto stored = lake_.getMeta(kFwiStartPrefix + std::string(kStationKeyPrefix) + station_id);
  if (!stored.isOk()) return stored.status();
  FwiStart s;
  if (!stored.value() || !decodeStart(*stored.value(), s)) return std::optional<FwiStart>();
  return std::optional<FwiStart>(s);
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

std::optional<firehub::v1::RiskCell> FusionEngine::riskCell(const std::string& token) const {
  S2CellId id = S2CellId::FromToken(token);
  if (!id.is_valid()) return std::nullopt;
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  auto it = risk_->cells().find(id.id());
  if (it == risk_->cells().end()) return std::nullopt;
  return it->second;
}

void FusionEngine::forEachRiskCell(const lake::BBox& bbox, size_t offset, size_t limit,
                                   const RiskCellVisitor& fn, size_t* matched) const {
  // Cells that intersect the box: a covering of the box no finer than the grid, then the grid
  // cells under each covering cell (a range of the S2-ordered map). The cells are taken in
  // blocks of their ancestor two levels up (16 grid cells, one range of the map): a block whose
  // bounds lie inside the box is in whole, one whose bounds miss the box is skipped whole, and
  // only the cells of blocks on the box's edge are tested exactly (the exact test computes a
  // cell's bounds with trigonometry: a third of a fresh render when done for every cell).
  S2LatLngRect rect(S2LatLng::FromDegrees(bbox.min_lat, bbox.min_lon),
                    S2LatLng::FromDegrees(bbox.max_lat, bbox.max_lon));
  S2RegionCoverer::Options options;
  options.set_max_cells(16);
  options.set_max_level(options_.cell_level);
  S2RegionCoverer coverer(options);
  std::vector<S2CellId> covering;
  coverer.GetCovering(rect, &covering);
  const int block_level = std::max(0, options_.cell_level - 2);
  size_t count = 0, handed = 0;
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  const auto& cells = risk_->cells();
  for (const S2CellId& cover : covering) {
    auto it = cells.lower_bound(cover.range_min().id());
    while (it != cells.end() && it->first <= cover.range_max().id()) {
      const S2CellId id(it->first);
      const S2CellId block = id.level() > block_level ? id.parent(block_level) : id;
      // The bounds are conservative (never smaller than the block): inside them is inside.
      const S2LatLngRect bound = S2Cell(block).GetRectBound();
      if (!rect.Intersects(bound)) {  // nothing of the block meets the box
        it = cells.upper_bound(block.range_max().id());
        continue;
      }
      const bool whole = rect.Contains(bound);
      const uint64_t last = std::min(block.range_max().id(), cover.range_max().id());
      for (; it != cells.end() && it->first <= last; ++it) {
        if (!whole && !rect.Intersects(S2Cell(S2CellId(it->first)))) continue;
        if (count >= offset && handed < limit) {
          fn(it->second, it->first, risk_->stampOf(it->first));
          ++handed;
        }
        ++count;
      }
    }
  }
  if (matched) *matched = count;
}

size_t FusionEngine::riskCellCount() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return risk_->cells().size();
}

std::map<std::string, size_t> FusionEngine::levelCounts() const {
  std::map<std::string, size_t> out;
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  for (const auto& level : options_.risk.levels) out[level.name] = 0;
  for (const auto& [id, cell] : risk_->cells()) ++out[cell.level()];
  return out;
}

std::vector<firehub::v1::WarningDraft> FusionEngine::activeWarnings() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return drafter_->active();
}

Result<firehub::v1::WarningDraft> FusionEngine::issueWarning(const std::string& draft_identifier,
                                                             const std::string& issuer) {
  firehub::v1::LayerEntry stored;
  auto draft = lake_.getLayer(kWarningPrefix + draft_identifier);
  if (!draft.isOk()) return draft.status();
  if (!draft.value() || !stored.ParseFromString(*draft.value()) || !stored.has_warning() ||
      !stored.warning().draft().empty()) {
    return Status::notFound("no warning draft '" + draft_identifier + "'");
  }
  const std::string issued_key = kWarningPrefix + draft_identifier + "-A";
  auto already = lake_.getLayer(issued_key);
  if (!already.isOk()) return already.status();
  if (already.value())
    return Status::alreadyExists("draft " + draft_identifier + " was issued before as " +
                                 draft_identifier + "-A");
  firehub::v1::WarningDraft issued;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    issued = drafter_->issue(stored.warning(), issuer, now(), risk_->cells());
  }
  lake::DerivedBatch batch;
  firehub::v1::LayerEntry e;
  *e.mutable_warning() = issued;
  batch.layer_puts.emplace_back(issued_key, e.SerializeAsString());
  batch.deliveries.push_back({kWarningsTopic, issued.area(), issued_key, ""});
  FIREHUB_RETURN_IF_ERROR(lake_.commitDerived(batch));
  FIREHUB_LOG(kInfo, "fusion",
              "warning " << draft_identifier << " issued as " << issued.identifier() << " by key "
                         << issuer);
  return issued;
}

Result<std::vector<firehub::v1::WarningDraft>> FusionEngine::warningHistory() const {
  std::vector<firehub::v1::WarningDraft> out;
  Status s = lake_.scanLayers(kWarningPrefix, [&](const std::string&, const std::string& v) {
    firehub::v1::LayerEntry e;
    if (e.ParseFromString(v) && e.has_warning()) out.push_back(e.warning());
  });
  if (!s.isOk()) return s;
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.sent().seconds() < b.sent().seconds();
  });
  return out;
}

int FusionEngine::addListener(Listener listener, bool live) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  int id = next_listener_++;
  listeners_[id] = {live, std::move(listener)};
  return id;
}

void FusionEngine::notifyListeners(const FusionDelta& delta, bool live) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  for (const auto& [id, entry] : listeners_) {
    if (entry.first == live) entry.second(delta);
  }
}

void FusionEngine::removeListener(int id) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  listeners_.erase(id);
}

Status FusionEngine::start() {
  stop_ = false;
  thread_ = std::thread([this] {
    log::nameThread("fh-fusion");
    run();
  });
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
    // Sleep until new records arrive, or at most a second: warnings start and expire and
    // incidents leave the window by the clock alone.
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(s.isOk() ? 1000 : 2000),
                   [this] { return pending_ || stop_.load(); });
    pending_ = false;
  }
}

}  // namespace firehub::fusion
