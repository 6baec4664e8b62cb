// `firehub bench lifecycle`: the life of the data on a large lake, through a running hub's API.
//  1. A lake of --records weather records (--stations stations reporting every 10 minutes) and
//     the risk layer's past: --cells level-15 cells over a city, each with --versions hourly
//     versions; loaded directly into the lake, then the hub starts on it.
//  2. History: an entity's versions over one day among all the records, p50/p99 ms of
//     GET /api/v1/entities/weather/{id}/history (target p99 <= 20 ms).
//  3. The map at a moment: GET /api/v1/layers/risk?at=T&bbox=<a city view>, p50/p99 ms
//     (target p99 <= 200 ms).
//  4. Backup under load: pushes of 10 weather lines every 20 ms (synced commits) for 15 s, then
//     the same while POST /api/v1/backups copies the lake: the backup's MB/s, push p99 idle and
//     during it, and their ratio (target <= 2).
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "bench.h"
#include "bench_data.h"
#include "bench_report.h"
#include "firehub/hub.h"
#include "firehub/lake.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct LifecycleOptions {
  size_t records = 10000000;
  size_t stations = 10000;
  size_t cells = 113000;
  int versions = 24;
  int queries = 1000;
  uint64_t backup_rate_mb = 16;  // backup.rate_limit_mb (its default)
  std::string json;
};

constexpr int64_t kStart = 1795300000;  // the first observation (2026-11-22)
constexpr double kWest = 123.0, kSouth = 41.5;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

Status loadLake(const std::string& lake_dir, const LifecycleOptions& o) {
  lake::LakeOptions lo;
  lo.path = lake_dir;
  lo.sync = false;
  auto opened = lake::Lake::open(lo);
  if (!opened.isOk()) return opened.status();
  auto& lake = *opened.value();
  const auto start = Clock::now();
  std::vector<lake::StoreItem> batch;
  const size_t per_station = o.records / o.stations;
  for (size_t k = 0; k < per_station; ++k) {
    for (size_t s = 0; s < o.stations; ++s) {
      const std::string id = "S" + std::to_string(s);
      auto it =
          benchItem("weather", "weather_station", id, kWest + static_cast<double>(s % 100) * 0.012,
                    kSouth + static_cast<double>(s / 100) * 0.01);
      auto& r = it.record();
      r.set_id("wx:" + id + "@" + std::to_string(k));
      r.set_feed_id("wx");
      r.set_agency("met");
      r.mutable_observed_at()->set_seconds(kStart + static_cast<int64_t>(k) * 600);
      auto* w = r.mutable_weather_observation();
      w->set_station_id(id);
      w->set_temperature_c(static_cast<double>(k % 30));
      w->set_relative_humidity_pct(40);
      w->set_wind_speed_kmh(12);
      batch.push_back(std::move(it));
    }
    if (batch.size() >= 20000 || k + 1 == per_station) {
      auto committed = lake.commit(batch, {}, nullptr, {}, false);
      if (!committed.isOk()) return committed.status();
      batch.clear();
    }
    if (k % 100 == 0) std::fprintf(stderr, "bench: %zu records\n", (k + 1) * o.stations);
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "bench: %zu records in %.0f s; the layer's past...\n",
               per_station * o.stations, load_s);
  // The risk layer's past: a dense grid of level-15 cells, a version an hour each.
  std::set<uint64_t> cells;
  const int side = static_cast<int>(std::sqrt(static_cast<double>(o.cells))) + 1;
  for (int i = 0; i < side && cells.size() < o.cells; ++i) {
    for (int j = 0; j < side && cells.size() < o.cells; ++j) {
      cells.insert(
          S2CellId(S2LatLng::FromDegrees(kSouth + i * 0.0028, kWest + j * 0.0036)).parent(15).id());
    }
  }
  lake::DerivedBatch derived;
  static const char* kLevels[] = {"IV", "III", "II", "I"};
  static const char* kColours[] = {"#2c7bb6", "#ffd700", "#fd8d3c", "#d7191c"};
  for (uint64_t cell : cells) {
    for (int v = 0; v < o.versions; ++v) {
      firehub::v1::LayerEntry e;
      auto* c = e.mutable_risk_cell();
      c->set_cell(S2CellId(cell).ToToken());
      c->set_cell_level(15);
      const int level = static_cast<int>(((cell >> 20) + static_cast<uint64_t>(v)) % 4);
      c->set_score(20 + 20 * level);
      c->set_level(kLevels[level]);
      c->set_level_rank(4 - level);
      c->set_colour(kColours[level]);
      c->mutable_computed_at()->set_seconds(kStart + v * 3600);
      const S2LatLng centre = S2CellId(cell).ToLatLng();
      c->mutable_center()->set_lon(centre.lng().degrees());
      c->mutable_center()->set_lat(centre.lat().degrees());
      auto* f = c->add_factors();
      f->set_name("building");
      f->set_score(0.5);
      f->set_weight(0.3);
      f->set_contribution(15);
      f->add_sources("bld:B" + std::to_string(cell % 100000));
      derived.versions.push_back(
          {"risk", cell, (kStart + v * 3600) * int64_t{1000000}, e.SerializeAsString()});
    }
    if (derived.versions.size() >= 20000) {
      FIREHUB_RETURN_IF_ERROR(lake.commitDerived(derived));
      derived.versions.clear();
    }
  }
  FIREHUB_RETURN_IF_ERROR(lake.commitDerived(derived));
  std::fprintf(stderr, "bench: %zu cells x %d versions\n", cells.size(), o.versions);
  return Status::ok();
}

std::string iso(int64_t seconds) {
  std::time_t t = seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Long: four phases in order, each printed and merged into the report as it ends.
int benchLifecycle(const LifecycleOptions& o) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("firehub-bench-lifecycle-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "hub");
  std::fprintf(stderr, "bench: loading %zu records...\n", o.records);
  if (Status s = loadLake((dir / "hub" / "lake").string(), o); !s.isOk()) {
    std::cerr << "bench: " << s.toString() << "\n";
    return 1;
  }
  HubConfig c;
  c.init = true;
  c.data_dir = (dir / "hub").string();
  c.http_listen = "127.0.0.1:0";
  c.backup_root = (dir / "backups").string();
  c.backup_rate_limit_mb = o.backup_rate_mb;
  fs::create_directories(c.backup_root);
  auto hub = Hub::start(c);
  if (!hub.isOk()) {
    std::cerr << "bench: " << hub.status().toString() << "\n";
    return 1;
  }
  const std::string base = "http://127.0.0.1:" + std::to_string(hub.value()->httpPort());
  const std::string key = hub.value()->adminKey();
  auto get = [&](const std::string& path) { return httpRequest(base, "GET", path, "", "", key); };

  // 2. History of one entity among all the records: a day's versions (144, a page of 100).
  std::mt19937_64 rng(7);
  const int64_t days = static_cast<int64_t>(o.records / o.stations) * 600 / 86400;
  std::vector<double> history_ms;
  size_t history_returned = 0;
  for (int q = 0; q < o.queries; ++q) {
    const size_t s = rng() % o.stations;
    const int64_t day = days > 1 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(days)) : 0;
    const std::string path = "/api/v1/entities/weather/S" + std::to_string(s) +
                             "/history?from=" + iso(kStart + day * 86400) +
                             "&to=" + iso(kStart + (day + 1) * 86400);
    const auto t0 = Clock::now();
    auto r = get(path);
    history_ms.push_back(ms(Clock::now() - t0));
    if (r.status != 200) {
      std::cerr << "bench: " << path << ": " << r.status << " " << r.body.substr(0, 200) << "\n";
      return 1;
    }
    if (q == 0) history_returned = r.body.size();
  }
  std::printf("\nfirehub bench lifecycle: %zu records, %zu cells x %d versions\n", o.records,
              o.cells, o.versions);
  std::printf("%-52s %12s\n", "figure", "value");
  std::printf("%-52s %12.2f\n", "history of one entity, a day: p50 (ms)",
              percentile(history_ms, 0.5));
  std::printf("%-52s %12.2f   (target <= 20)\n", "history of one entity, a day: p99 (ms)",
              percentile(history_ms, 0.99));

  // 3. The layer at a moment for a city view (0.3 x 0.2 degrees) at a random hour.
  std::vector<double> at_ms;
  double cells_per_view = 0;
  for (int q = 0; q < o.queries / 5; ++q) {
    // Inside the cells' grid (loadLake: `side` cells a side, 0.0036 x 0.0028 degrees apart).
    const double side = std::sqrt(static_cast<double>(o.cells)) + 1;
    const double span_lon = std::max(0.0, side * 0.0036 - 0.3),
                 span_lat = std::max(0.0, side * 0.0028 - 0.2);
    const double lon = kWest + span_lon * static_cast<double>(rng() % 1000) / 1000;
    const double lat = kSouth + span_lat * static_cast<double>(rng() % 1000) / 1000;
    char bbox[96];
    std::snprintf(bbox, sizeof bbox, "%.4f,%.4f,%.4f,%.4f", lon, lat, lon + 0.3, lat + 0.2);
    const int64_t at =
        kStart + static_cast<int64_t>(rng() % static_cast<uint64_t>(o.versions)) * 3600 + 1800;
    const auto t0 = Clock::now();
    auto r = get("/api/v1/layers/risk?at=" + iso(at) + "&bbox=" + bbox + "&limit=100000");
    at_ms.push_back(ms(Clock::now() - t0));
    if (r.status != 200) {
      std::cerr << "bench: at=: " << r.status << " " << r.body.substr(0, 200) << "\n";
      return 1;
    }
    if (q == 0) {
      Poco::JSON::Parser parser;
      cells_per_view = parser.parse(r.body).extract<Poco::JSON::Object::Ptr>()->getValue<double>(
          "numberReturned");
    }
  }
  std::printf("%-52s %12.0f\n", "cells in a city view at=T", cells_per_view);
  std::printf("%-52s %12.1f\n", "layer at=T, a city view: p50 (ms)", percentile(at_ms, 0.5));
  std::printf("%-52s %12.1f   (target <= 200)\n", "layer at=T, a city view: p99 (ms)",
              percentile(at_ms, 0.99));
  std::fflush(stdout);

  // 4. Pushes with and without a backup running.
  httpRequest(base, "POST", "/api/v1/feeds", "application/json",
              R"({"id":"wx-live","agency":"met","connector":"firehub.connector.weather"})", key);
  std::atomic<int> phase{0};  // 0 idle, 1 backup, 2 stop
  std::atomic<Clock::time_point> backup_started{Clock::now()};
  std::vector<double> idle_ms, during_ms;
  size_t refused = 0;
  std::thread pusher([&] {
    size_t n = 0;
    auto next = Clock::now();
    while (phase.load() != 2) {
      std::string csv = "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";
      for (int k = 0; k < 10; ++k, ++n) {
        char line[160];
        std::snprintf(line, sizeof line, "L%zu,%.4f,%.4f,%s,12,40,10,90,0\n", n % 500,
                      kWest + static_cast<double>(n % 500) * 0.002, kSouth + 0.5,
                      iso(kStart + 86400 * 30 + static_cast<int64_t>(n)).c_str());
        csv += line;
      }
      const int in = phase.load();
      const auto t0 = Clock::now();
      auto r = httpRequest(base, "POST", "/api/v1/feeds/wx-live/records", "text/csv", csv, key);
      const double took = ms(Clock::now() - t0);
      (in == 0 ? idle_ms : during_ms).push_back(took);
      if (in == 1 && took > 20)  // where in the backup the slow ones fall
        std::fprintf(stderr, "bench: a push took %.0f ms, %.1f s into the backup\n", took,
                     std::chrono::duration<double>(t0 - backup_started.load()).count());
      if (r.status != 202) ++refused;
      next += std::chrono::milliseconds(20);
      std::this_thread::sleep_until(next);
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(15));
  const auto backup_start = Clock::now();
  backup_started = backup_start;
  phase = 1;
  auto started =
      httpRequest(base, "POST", "/api/v1/backups", "application/json", R"({"to":"bench"})", key);
  uint64_t backup_bytes = 0;
  std::string backup_error;
  if (started.status != 202) backup_error = started.body;
  for (int i = 0; backup_error.empty() && i < 36000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Poco::JSON::Parser parser;
    auto s = parser.parse(get("/api/v1/backups").body).extract<Poco::JSON::Object::Ptr>();
    if (s->optValue<bool>("running", false)) continue;
    if (s->has("error")) backup_error = s->getValue<std::string>("error");
    backup_bytes = s->optValue<uint64_t>("bytes", 0);
    break;
  }
  const double backup_s = std::chrono::duration<double>(Clock::now() - backup_start).count();
  phase = 2;
  pusher.join();
  if (!backup_error.empty()) {
    std::cerr << "bench: the backup failed: " << backup_error << "\n";
    return 1;
  }
  const double mb_s = static_cast<double>(backup_bytes) / (1 << 20) / backup_s;
  const double idle_p99 = percentile(idle_ms, 0.99), during_p99 = percentile(during_ms, 0.99);
  std::printf("%-52s %12.0f\n", "backup size (MiB)", static_cast<double>(backup_bytes) / (1 << 20));
  std::printf("%-52s %12.1f\n", "backup time (s)", backup_s);
  std::printf("%-52s %12.1f   (backup.rate_limit_mb %llu)\n", "backup rate (MiB/s)", mb_s,
              static_cast<unsigned long long>(o.backup_rate_mb));
  std::printf("%-52s %12.1f\n", "push p99 idle (ms, 10 lines, synced)", idle_p99);
  std::printf("%-52s %12.1f\n", "push p99 during the backup (ms)", during_p99);
  std::printf("%-52s %12.2f   (target <= 2)\n", "push p99 during / idle", during_p99 / idle_p99);
  std::printf("%-52s %12zu\n", "pushes during the backup", during_ms.size());
  std::printf("%-52s %12zu\n", "pushes refused", refused);
  mergeBenchJson(o.json,
                 {{"lifecycle.records", static_cast<uint64_t>(o.records)},
                  {"lifecycle.history_p50_ms", percentile(history_ms, 0.5)},
                  {"lifecycle.history_p99_ms", percentile(history_ms, 0.99)},
                  {"lifecycle.history_answer_bytes", static_cast<uint64_t>(history_returned)},
                  {"lifecycle.at_cells_per_view", cells_per_view},
                  {"lifecycle.at_p50_ms", percentile(at_ms, 0.5)},
                  {"lifecycle.at_p99_ms", percentile(at_ms, 0.99)},
                  {"lifecycle.backup_mib", static_cast<double>(backup_bytes) / (1 << 20)},
                  {"lifecycle.backup_s", backup_s},
                  {"lifecycle.backup_mib_per_s", mb_s},
                  {"lifecycle.backup_rate_limit_mb", o.backup_rate_mb},
                  {"lifecycle.push_p99_idle_ms", idle_p99},
                  {"lifecycle.push_p99_backup_ms", during_p99},
                  {"lifecycle.push_p99_ratio", during_p99 / idle_p99},
                  {"lifecycle.pushes_refused", static_cast<uint64_t>(refused)}});
  hub.value()->stop();
  fs::remove_all(dir);
  return 0;
}

}  // namespace

void addLifecycleBench(CLI::App& bench) {
  static LifecycleOptions o;
  auto* cmd = bench.add_subcommand(
      "lifecycle", "A large lake: history p99, the layer at a moment, a backup under pushes");
  cmd->add_option("--records", o.records, "Weather records in the lake")
      ->check(CLI::Range(size_t{10000}, size_t{100000000}));
  cmd->add_option("--stations", o.stations, "Stations they come from")
      ->check(CLI::Range(size_t{10}, size_t{1000000}));
  cmd->add_option("--cells", o.cells, "Risk cells with a past")
      ->check(CLI::Range(size_t{100}, size_t{2000000}));
  cmd->add_option("--versions", o.versions, "Hourly versions of each cell")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--queries", o.queries, "History queries (a fifth as many at= queries)")
      ->check(CLI::Range(10, 100000));
  cmd->add_option("--backup-rate-mb", o.backup_rate_mb,
                  "backup.rate_limit_mb of the hub (0: as fast as the disk goes)");
  cmd->add_option("--json", o.json, "Merge the figures into this JSON report");
  cmd->callback([] { std::exit(benchLifecycle(o)); });
}

}  // namespace firehub::cli
