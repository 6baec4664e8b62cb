// `firehub bench fusion`: the risk layer at city-province scale. A synthetic region of ~100k
// S2 cells is loaded into a lake (1 M buildings, hydrants, stations, hospitals, incidents), then:
//  1. cold start: the fusion engine restores every entity from the lake and computes and stores
//     every cell (what a restart costs);
//  2. full fusion: every cell recomputed from the inputs in memory;
//  3. record-in -> delta-out latency: the hub runs on that lake with an SSE client on
//     /api/v1/layers/risk/stream while fire alarms are pushed over HTTP at a fixed rate; each
//     alarm's latency is from the start of its push to the event that carries its cell.
#include <Poco/InflatingStream.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/String.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <malloc.h>
#ifdef FIREHUB_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "bench_data.h"
#include "bench_report.h"
#include "bench.h"
#include "firehub/hub.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct FusionBenchOptions {
  size_t buildings = 1000000;
  size_t hydrants = 40000;
  double rate = 10000;  // alarms per second in the latency run
  double seconds = 10;  // length of the latency run
  std::string work_dir;
  std::string json;
  std::string bootstrap;  // an external broker (`firehub broker`); default: embedded in the hub
  bool keep = false;
  bool latency = true;  // the record-in -> delta-out run
  bool query = true;    // viewport latency and wrk against the running hub
  bool restart = true;  // the hub started again on the same data
  size_t viewport_cells = 5000;
};

// Resident memory after giving freed heap back to the system: what the process holds, not what
// an earlier phase of the benchmark freed and the allocator kept.
double rssMiB() {
#ifdef FIREHUB_JEMALLOC
  char purge[64];
  std::snprintf(purge, sizeof purge, "arena.%d.purge", MALLCTL_ARENAS_ALL);
  mallctl(purge, nullptr, nullptr, nullptr, 0);
#else
  malloc_trim(0);
#endif
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// The region: 1.0° x 0.8° around Shenyang, about 7,400 km^2, ~100k level-15 cells.
constexpr double kWest = 123.0, kSouth = 41.4, kWidth = 1.0, kHeight = 0.8;

Status loadRegion(lake::Lake& lake, const FusionBenchOptions& o,
                  std::vector<std::pair<double, double>>& places) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<lake::StoreItem> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::ok();
    auto r = lake.commit(batch, {});
    batch.clear();
    return r.status();
  };
  for (size_t i = 0; i < o.buildings; ++i) {
    double lon = kWest + u(rng) * kWidth, lat = kSouth + u(rng) * kHeight;
    places.emplace_back(lon, lat);
    auto it = benchItem("building", "building", "B" + std::to_string(i), lon, lat);
    auto* b = it.record().mutable_building();
    b->set_building_id("B" + std::to_string(i));
    b->set_occupancy(static_cast<firehub::v1::Building::Occupancy>(1 + rng() % 16));
    b->set_key_unit(u(rng) < 0.02);
    if (u(rng) < 0.01) b->set_credit_status(firehub::v1::Building::CREDIT_STATUS_BLACK_LIST);
    batch.push_back(std::move(it));
    if (batch.size() == 10000) FIREHUB_RETURN_IF_ERROR(flush());
  }
  for (size_t i = 0; i < o.hydrants; ++i) {
    auto it = benchItem("water", "water_source", "H" + std::to_string(i), kWest + u(rng) * kWidth,
                        kSouth + u(rng) * kHeight);
    auto* w = it.record().mutable_water_source();
    w->set_source_id("H" + std::to_string(i));
    w->set_kind(firehub::v1::WaterSource::KIND_HYDRANT);
    w->set_status(u(rng) < 0.05 ? firehub::v1::WaterSource::STATUS_OUT_OF_SERVICE
                                : firehub::v1::WaterSource::STATUS_IN_SERVICE);
    w->set_pressure_mpa(u(rng) < 0.05 ? 0.05 : 0.3);
    batch.push_back(std::move(it));
  }
  for (int i = 0; i < 150; ++i) {
    auto it = benchItem("station", "fire_station", "S" + std::to_string(i), kWest + u(rng) * kWidth,
                        kSouth + u(rng) * kHeight);
    it.record().mutable_fire_station()->set_station_id("S" + std::to_string(i));
    it.record().mutable_fire_station()->set_status(firehub::v1::FireStation::STATUS_IN_SERVICE);
    batch.push_back(std::move(it));
  }
  for (int i = 0; i < 40; ++i) {
    auto it = benchItem("health", "health_facility", "M" + std::to_string(i),
                        kWest + u(rng) * kWidth, kSouth + u(rng) * kHeight);
    auto* h = it.record().mutable_health_facility();
    h->set_facility_id("M" + std::to_string(i));
    h->set_kind(firehub::v1::HealthFacility::KIND_HOSPITAL);
    h->set_beds_emergency_available(static_cast<int>(rng() % 10));
    batch.push_back(std::move(it));
  }
  for (int i = 0; i < 500; ++i) {
    auto it = benchItem("police", "police_incident", "P" + std::to_string(i),
                        kWest + u(rng) * kWidth, kSouth + u(rng) * kHeight);
    auto* p = it.record().mutable_police_incident();
    p->set_incident_id("P" + std::to_string(i));
    p->set_type(static_cast<firehub::v1::PoliceIncident::Type>(1 + rng() % 8));
    p->set_status(firehub::v1::PoliceIncident::STATUS_OPEN);
    p->mutable_reported_at()->set_seconds(std::time(nullptr) - 600);
    batch.push_back(std::move(it));
  }
  return flush();
}

void latencyRun(const FusionBenchOptions& o, Hub& hub, uint16_t port, const std::string& admin_key,
                const std::vector<std::pair<double, double>>& places);
void queryRun(const FusionBenchOptions& o, Hub& hub, uint16_t port, const std::string& admin_key,
              const std::vector<std::pair<double, double>>& places);

// The risk cells a viewport of the layer returns (0 when it does not answer 200).
size_t viewportCells(uint16_t port, const std::string& admin_key, const std::string& bbox) {
  try {
    auto reply =
        httpRequest("http://127.0.0.1:" + std::to_string(port), "GET",
                    "/api/v1/layers/risk?bbox=" + bbox + "&limit=100000", "", "", admin_key);
    if (reply.status != 200) return 0;
    const size_t at = reply.body.rfind("\"numberReturned\":");
    return at == std::string::npos ? 0 : std::strtoull(reply.body.c_str() + at + 17, nullptr, 10);
  } catch (const std::exception&) {
    return 0;
  }
}

// 4. The same hub started again on its data (a restart after a crash, or a failover onto a
// stopped node): seconds until the API answers, until /readyz says ready, until a viewport of the
// risk layer returns the cells it returned before the stop, and until fusion has caught up.
void restartRun(HubConfig config, const std::string& json, const std::string& admin_key,
                const std::string& view, size_t view_cells) {
  std::fprintf(stderr, "bench: restart on the same data...\n");
  config.init = false;
  const auto t0 = Clock::now();
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  auto started = Hub::start(config);
  if (!started.isOk()) {
    std::cerr << "bench: restart: " << started.status().toString() << "\n";
    return;
  }
  auto& hub = *started.value();
  const double api_s = since();
  const uint16_t port = hub.httpPort();
  double ready_s = -1, layer_s = -1, caught_up_s = -1;
  while (since() < 120 && (ready_s < 0 || layer_s < 0 || caught_up_s < 0)) {
    if (ready_s < 0) {
      try {
        if (httpRequest("http://127.0.0.1:" + std::to_string(port), "GET", "/readyz", "", "")
                .status == 200)
          ready_s = since();
      } catch (const std::exception&) {
      }
    }
    if (layer_s < 0 && view_cells > 0 && viewportCells(port, admin_key, view) >= view_cells)
      layer_s = since();
    if (caught_up_s < 0 && hub.fusion()->caughtUp()) caught_up_s = since();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("%-46s %12.2f\n", "restart: API answering (s)", api_s);
  std::printf("%-46s %12.2f\n", "restart: /readyz ready (s)", ready_s);
  std::printf("%-46s %12.2f   (%zu cells in the view)\n", "restart: the layer served again (s)",
              layer_s, view_cells);
  std::printf("%-46s %12.2f\n", "restart: fusion caught up (s)", caught_up_s);
  std::fflush(stdout);
  mergeBenchJson(json, {{"fusion.restart_api_s", api_s},
                        {"fusion.restart_ready_s", ready_s},
                        {"fusion.restart_layer_served_s", layer_s},
                        {"fusion.restart_caught_up_s", caught_up_s}});
  hub.stop();
}

int benchFusion(const FusionBenchOptions& o) {
  namespace fs = std::filesystem;
  fs::path dir = o.work_dir.empty() ? fs::temp_directory_path() /
                                          ("firehub-bench-fusion-" + std::to_string(getpid()))
                                    : fs::path(o.work_dir);
  fs::remove_all(dir);
  fs::create_directories(dir / "hub");
  double rss0 = rssMiB();
  std::vector<std::pair<double, double>> places;
  size_t cells = 0;
  double load_s = 0, cold_s = 0, full_s = 0, rss_fused = 0;
  {
    lake::LakeOptions lo;
    lo.path = (dir / "hub" / "lake").string();
    lo.sync = false;
    lo.area_indexes =
        api::pointLayerIndexes();  // as the hub opens it (else the next start rebuilds them)
    auto lake = lake::Lake::open(lo);
    if (!lake.isOk()) {
      std::cerr << "bench: " << lake.status().toString() << "\n";
      return 1;
    }
    std::fprintf(stderr, "bench: loading %zu buildings and %zu hydrants into the lake...\n",
                 o.buildings, o.hydrants);
    auto t = Clock::now();
    Status s = loadRegion(**lake, o, places);
    load_s = std::chrono::duration<double>(Clock::now() - t).count();
    if (!s.isOk()) {
      std::cerr << "bench: " << s.toString() << "\n";
      return 1;
    }
    std::fprintf(stderr, "bench: cold start of the fusion engine...\n");
    double rss_before = rssMiB();
    fusion::FusionOptions fo;
    fo.batch = 20000;
    fusion::FusionEngine engine(**lake, fo);
    t = Clock::now();
    s = engine.catchUp();
    cold_s = std::chrono::duration<double>(Clock::now() - t).count();
    if (!s.isOk()) {
      std::cerr << "bench: " << s.toString() << "\n";
      return 1;
    }
    cells = engine.riskCellCount();
    rss_fused = rssMiB() - rss_before;
    std::fprintf(stderr, "bench: full fusion...\n");
    t = Clock::now();
    auto all = engine.recomputeAll();
    full_s = std::chrono::duration<double>(Clock::now() - t).count();
    if (!all.isOk()) return 1;
    auto levels = engine.levelCounts();
    std::printf(
        "\nfirehub bench fusion: %zu buildings, %zu hydrants, 150 stations, 40 hospitals, 500 "
        "incidents\n",
        o.buildings, o.hydrants);
    std::printf("%-46s %12s\n", "figure", "value");
    std::printf("%-46s %12.2f\n", "load into the lake (s, not fusion)", load_s);
    std::printf("%-46s %12zu\n", "risk cells (level 15)", cells);
    std::printf("%-46s %12.2f\n", "cold start: restore + compute + store all (s)", cold_s);
    std::printf("%-46s %12.3f\n", "full fusion: recompute every cell (s)", full_s);
    std::printf("%-46s %12.0f\n", "full fusion: cells/s", cells / full_s);
    std::printf("%-46s %12.0f\n", "fusion state RSS (MiB)", rss_fused);
    std::string mix;
    for (const auto& [name, n] : levels) mix += name + "=" + std::to_string(n) + " ";
    std::printf("%-46s %s\n", "levels", mix.c_str());
    mergeBenchJson(o.json, {{"fusion.buildings", static_cast<uint64_t>(o.buildings)},
                            {"fusion.cells", static_cast<uint64_t>(cells)},
                            {"fusion.cold_start_s", cold_s},
                            {"fusion.full_s", full_s},
                            {"fusion.cells_per_s", cells / full_s},
                            {"memory.fusion_state_rss_mib", rss_fused}});
  }
  std::fflush(stdout);

  // 3. Latency through the running hub with the map's stream attached.
  HubConfig config;
  config.init = true;  // a fresh data dir
  config.data_dir = (dir / "hub").string();
  config.http_listen = "127.0.0.1:0";
  config.lake_sync = true;
  config.kafka_bootstrap = o.bootstrap;
  std::fprintf(stderr, "bench: starting the hub on the region...\n");
  auto started = Hub::start(config);
  if (!started.isOk()) {
    std::cerr << "bench: " << started.status().toString() << "\n";
    return 1;
  }
  auto& hub = *started.value();
  registry::FeedSpec spec;
  spec.id = "alarms";
  spec.agency = "fire-iot";
  spec.connector = "firehub.connector.alarm";
  if (auto feed = hub.feeds().create(spec); !feed.isOk()) {
    std::cerr << "bench: " << feed.status().toString() << "\n";
    return 1;
  }
  for (int i = 0; i < 1200 && !hub.fusion()->caughtUp(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The cold start left every cell in the outbox for Kafka; the runs below measure the hub once
  // that backlog is delivered, not while it is.
  auto drain_start = Clock::now();
  const uint64_t backlog = hub.lake().outboxDepth();
  for (int i = 0; i < 3000 && hub.lake().outboxDepth() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double drain_s = std::chrono::duration<double>(Clock::now() - drain_start).count();
  std::printf("%-46s %12.2f   (%llu entries)\n", "backlog of the cold start onto Kafka (s)",
              drain_s, static_cast<unsigned long long>(backlog));
  mergeBenchJson(o.json, {{"fusion.cold_start_backlog_entries", backlog},
                          {"fusion.cold_start_backlog_drain_s", drain_s}});
  uint16_t port = hub.httpPort();
  std::string admin_key = hub.adminKey();
  if (o.latency) latencyRun(o, hub, port, admin_key, places);
  if (o.query) queryRun(o, hub, port, admin_key, places);
  double rss_hub = rssMiB() - rss0;
  std::printf("%-46s %12.0f   (broker %s)\n", "process RSS with the hub running (MiB)", rss_hub,
              o.bootstrap.empty() ? "embedded in the process" : "in its own process");
  // Where it is: the hub's bounded caches and buffers, as /metrics tells an operator.
  BenchFigures held;
  try {
    auto metrics = httpRequest("http://127.0.0.1:" + std::to_string(port), "GET", "/metrics", "",
                               "", admin_key);
    std::istringstream lines(metrics.body);
    std::string line;
    const std::string prefix = "firehub_memory_bytes{part=\"";
    while (std::getline(lines, line)) {
      if (line.rfind(prefix, 0) != 0) continue;
      const size_t end = line.find('"', prefix.size());
      if (end == std::string::npos) continue;
      const std::string part = line.substr(prefix.size(), end - prefix.size());
      const double mib = std::stod(line.substr(line.rfind(' ') + 1)) / (1 << 20);
      std::printf("  of which %-37s %12.1f\n", (part + " (MiB)").c_str(), mib);
      held.emplace_back("memory.held_mib." + part, mib);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench: /metrics: %s\n", e.what());
  }
  mergeBenchJson(o.json, held);
  mergeBenchJson(o.json,
                 {{"memory.hub_rss_mib_1m_buildings", rss_hub},
                  {"memory.broker", o.bootstrap.empty() ? "embedded" : "firehub broker process"}});
  // A viewport of the region (a tenth of its width) to look at after the restart below.
  std::string view;
  {
    double min_lon = 180, max_lon = -180, min_lat = 90, max_lat = -90;
    for (const auto& [lon, lat] : places) {
      min_lon = std::min(min_lon, lon), max_lon = std::max(max_lon, lon);
      min_lat = std::min(min_lat, lat), max_lat = std::max(max_lat, lat);
    }
    char text[128];
    const double cx = (min_lon + max_lon) / 2, cy = (min_lat + max_lat) / 2,
                 w = (max_lon - min_lon) / 20, h = (max_lat - min_lat) / 20;
    std::snprintf(text, sizeof text, "%.5f,%.5f,%.5f,%.5f", cx - w, cy - h, cx + w, cy + h);
    view = text;
  }
  const size_t view_cells = viewportCells(port, admin_key, view);
  hub.stop();
  if (o.restart) restartRun(config, o.json, admin_key, view, view_cells);
  if (!o.keep) fs::remove_all(dir);
  return 0;
}

void latencyRun(const FusionBenchOptions& o, Hub& hub, uint16_t port, const std::string& admin_key,
                const std::vector<std::pair<double, double>>& places) {
  std::atomic<size_t> deltas{0};
  std::mutex mu;
  // When each cell was first set burning, and how long after it each CAP Alert was stored and
  // handed to subscribers (from the earliest such push among the Alert's cells).
  std::map<std::string, Clock::time_point> first_forced;
  std::vector<double> alert_lag_ms;
  int listener = hub.fusion()->addListener([&](const fusion::FusionDelta& delta) {
    ++deltas;
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& w : delta.warnings) {
      if (w.msg_type() != "Alert") continue;
      std::optional<Clock::time_point> earliest;
      for (const auto& cell : w.cells()) {
        auto it = first_forced.find(cell);
        if (it != first_forced.end() && (!earliest || it->second < *earliest))
          earliest = it->second;
      }
      if (earliest)
        alert_lag_ms.push_back(std::chrono::duration<double, std::milli>(now - *earliest).count());
    }
  });
  // An alarm is visible on the map when it flips its cell's forced state (the first fire in the
  // cell, or the last one reset). Per cell: push start times of such alarms, with the state each
  // should show. An event showing that state resolves it; an earlier alarm expecting the other
  // state was undone within the same fusion step and is counted as superseded.
  struct Expected {
    Clock::time_point at;
    bool forced;
  };
  std::map<std::string, std::vector<Expected>> pending;
  size_t superseded = 0;
  // The first second is a burst of first fires (each an immediate CAP alert for its area);
  // latencies of alarms pushed after it are also reported apart.
  std::vector<double> steady_ms;
  Clock::time_point steady_from = Clock::time_point::max();
  std::vector<double> latencies_ms;
  std::vector<std::pair<Clock::time_point, double>> timed_ms;  // push start, latency
  std::atomic<bool> stop{false};
  std::atomic<size_t> events{0};
  std::thread reader([&] {
    try {
      Poco::Net::HTTPClientSession session("127.0.0.1", port);
      session.setTimeout(Poco::Timespan(1, 0));
      Poco::Net::HTTPRequest request("GET", "/api/v1/layers/risk/stream",
                                     Poco::Net::HTTPMessage::HTTP_1_1);
      session.sendRequest(request);
      Poco::Net::HTTPResponse response;
      std::istream& in = session.receiveResponse(response);
      std::string line;
      const std::string marker = R"({"type":"Feature","id":")";
      while (!stop) {
        if (!std::getline(in, line)) {
          if (in.eof()) break;
          in.clear();
          continue;
        }
        if (line.rfind("data: ", 0) != 0) continue;
        auto now = Clock::now();
        ++events;
        std::lock_guard<std::mutex> lock(mu);
        for (size_t p = line.find(marker); p != std::string::npos; p = line.find(marker, p + 1)) {
          size_t start = p + marker.size();
          std::string token = line.substr(start, line.find('"', start) - start);
          auto it = pending.find(token);
          if (it == pending.end()) continue;
          size_t f = line.find("\"forced\":", start);
          if (f == std::string::npos) continue;
          bool forced = line.compare(f + 9, 4, "true") == 0;
          auto& list = it->second;
          size_t last = list.size();
          for (size_t i = 0; i < list.size(); ++i) {
            if (list[i].forced == forced) last = i;
          }
          if (last == list.size()) continue;
          // The run of alarms expecting this state that ends at `last` is what the event shows;
          // anything before the last opposite flip was undone before it could be seen.
          size_t run = last + 1;
          while (run > 0 && list[run - 1].forced == forced) --run;
          for (size_t i = 0; i <= last; ++i) {
            if (i >= run) {
              double ms = std::chrono::duration<double, std::milli>(now - list[i].at).count();
              latencies_ms.push_back(ms);
              timed_ms.emplace_back(list[i].at, ms);
              if (list[i].at >= steady_from) steady_ms.push_back(ms);
            } else {
              ++superseded;
            }
          }
          list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(last + 1));
          if (list.empty()) pending.erase(it);
        }
      }
    } catch (const Poco::Exception& e) {
      std::cerr << "bench: stream: " << e.displayText() << "\n";
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  std::fprintf(stderr, "bench: pushing fire alarms at %.0f/s for %.0f s...\n", o.rate, o.seconds);
  std::mt19937_64 rng(7);
  std::map<size_t, bool> burning;  // component -> fire state
  std::map<std::string, int> burning_in_cell;
  size_t invisible = 0;  // alarms that do not flip their cell's forced state
  const size_t per_push = std::max<size_t>(1, static_cast<size_t>(o.rate / 100));
  const auto interval = std::chrono::duration<double>(per_push / o.rate);
  size_t sent = 0, accepted = 0;
  std::vector<double> push_ms;  // each push until acknowledged (committed with its WAL synced)
  auto begin = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    steady_from = begin + std::chrono::seconds(1);
  }
  auto next = begin;
  char line[512];
  while (std::chrono::duration<double>(Clock::now() - begin).count() < o.seconds) {
    std::string body;
    std::vector<std::pair<std::string, bool>> flips;  // cell -> forced state it should show
    // Each push one second after the last in event time, so a component's later state is
    // also its newer one (the lake keeps the newest observation as the entity's state).
    char when[32];
    std::time_t event_time =
        1795312800 + static_cast<std::time_t>(sent / per_push);  // 2026-11-22T10:00Z
    std::tm tm{};
    gmtime_r(&event_time, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (size_t i = 0; i < per_push; ++i) {
      size_t c = rng() % 50000;
      auto [lon, lat] = places[c * 17 % places.size()];
      bool fire = !burning[c];
      burning[c] = fire;
      std::snprintf(
          line, sizeof line,
          R"({"event_id":"E%zu","device_address":"%012zx","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":%zu,"state_flags":%d,"description":"bench","time":"%s","lon":%.6f,"lat":%.6f})"
          "\n",
          sent, 0x210000000000 + c, c, fire ? 3 : 1, when, lon, lat);
      body += line;
      std::string token = S2CellId(S2LatLng::FromDegrees(lat, lon)).parent(15).ToToken();
      int& count = burning_in_cell[token];
      bool before = count > 0;
      count += fire ? 1 : -1;
      if ((count > 0) != before) {
        flips.push_back({token, count > 0});
      } else {
        ++invisible;
      }
      ++sent;
    }
    auto t = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [tok, forced] : flips) {
        pending[tok].push_back({t, forced});
        if (forced) first_forced.emplace(tok, t);
      }
    }
    auto reply =
        httpRequest("http://127.0.0.1:" + std::to_string(port), "POST",
                    "/api/v1/feeds/alarms/records", "application/x-ndjson", body, admin_key);
    push_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    if (reply.status == 202) {
      size_t at = reply.body.find("\"accepted\":");
      if (at != std::string::npos)
        accepted += std::strtoull(reply.body.c_str() + at + 11, nullptr, 10);
    }
    next += std::chrono::duration_cast<Clock::duration>(interval);
    std::this_thread::sleep_until(next);
  }
  double pushed_s = std::chrono::duration<double>(Clock::now() - begin).count();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  reader.join();
  size_t unmatched = 0;
  for (const auto& [token, list] : pending) unmatched += list.size();
  std::vector<double> lat = latencies_ms;
  std::printf(
      "\nrecord-in -> delta-out (HTTP push -> fusion -> SSE), %zu alarms in %.1f s (%.0f/s), %zu "
      "accepted\n",
      sent, pushed_s, sent / pushed_s, accepted);
  std::printf("%-46s %12zu\n", "alarms matched to a cell delta", lat.size());
  std::printf("%-46s %12zu\n", "alarms not flipping their cell (not visible)", invisible);
  std::printf("%-46s %12zu\n", "alarms undone within one fusion step", superseded);
  std::printf("%-46s %12zu\n", "alarms never seen on the stream", unmatched);
  std::printf("%-46s %12zu\n", "SSE events", events.load());
  std::printf("%-46s %12zu\n", "fusion deltas", deltas.load());
  std::vector<double> alert_lag;
  {
    std::lock_guard<std::mutex> lock(mu);
    alert_lag = alert_lag_ms;
  }
  // Where in the run the slow ones lie: p99 of the alarms pushed in each second.
  std::vector<std::vector<double>> by_second(static_cast<size_t>(o.seconds) + 1);
  for (const auto& [at, ms] : timed_ms) {
    auto second =
        static_cast<size_t>(std::max(0.0, std::chrono::duration<double>(at - begin).count()));
    by_second[std::min(second, by_second.size() - 1)].push_back(ms);
  }
  std::string seconds_p99;
  for (auto& v : by_second) {
    if (v.empty()) continue;
    char one[32];
    std::snprintf(one, sizeof one, "%s%.0f", seconds_p99.empty() ? "" : " ", percentile(v, 0.99));
    seconds_p99 += one;
  }
  std::printf("%-46s %s\n", "latency p99 by second of the run (ms)", seconds_p99.c_str());
  std::printf("%-46s %12.1f\n", "latency p50 (ms)", percentile(lat, 0.50));
  std::printf("%-46s %12.1f\n", "latency p99 (ms)", percentile(lat, 0.99));
  std::printf("%-46s %12.1f\n", "latency p99.9 (ms)", percentile(lat, 0.999));
  std::vector<double> steady = steady_ms;
  std::printf("%-46s %12.1f\n", "latency p50 after the first second (ms)",
              percentile(steady, 0.50));
  std::printf("%-46s %12.1f\n", "latency p99 after the first second (ms)",
              percentile(steady, 0.99));
  std::printf("%-46s %12.1f\n", "push acknowledged (durable) p50 (ms)", percentile(push_ms, 0.50));
  std::printf("%-46s %12.1f\n", "push acknowledged (durable) p99 (ms)", percentile(push_ms, 0.99));
  std::printf("%-46s %12zu\n", "CAP Alerts stored (first fire in an area)", alert_lag.size());
  std::printf("%-46s %12.1f\n", "CAP Alert after its first fire p50 (ms)",
              percentile(alert_lag, 0.50));
  std::printf("%-46s %12.1f\n", "CAP Alert after its first fire p99 (ms)",
              percentile(alert_lag, 0.99));
  mergeBenchJson(o.json, {{"fusion.latency_rate_per_s", sent / pushed_s},
                          {"fusion.latency_p50_ms", percentile(lat, 0.50)},
                          {"fusion.latency_p99_ms", percentile(lat, 0.99)},
                          {"fusion.latency_p999_ms", percentile(lat, 0.999)},
                          {"fusion.latency_after_first_s_p50_ms", percentile(steady, 0.50)},
                          {"fusion.latency_after_first_s_p99_ms", percentile(steady, 0.99)},
                          {"fusion.push_ack_p50_ms", percentile(push_ms, 0.50)},
                          {"fusion.push_ack_p99_ms", percentile(push_ms, 0.99)},
                          {"fusion.alerts", static_cast<double>(alert_lag.size())},
                          {"fusion.alert_lag_p50_ms", percentile(alert_lag, 0.50)},
                          {"fusion.alert_lag_p99_ms", percentile(alert_lag, 0.99)}});
  hub.fusion()->removeListener(listener);
}

// Requests/s of `wrk` against a URL (2 threads, 16 connections, 5 s), asking for gzip as browsers
// do when `gzip`; 0 when wrk is missing.
double wrkRequestsPerSecond(const std::string& url, const std::string& admin_key,
                            bool gzip = false) {
  std::string command = "wrk -t2 -c16 -d5s -H 'Authorization: Bearer " + admin_key + "' " +
                        (gzip ? "-H 'Accept-Encoding: gzip' " : "") + "'" + url + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return 0;
  char line[512];
  double rps = 0;
  while (std::fgets(line, sizeof line, pipe)) {
    if (std::strncmp(line, "Requests/sec:", 13) == 0) rps = std::strtod(line + 13, nullptr);
  }
  int rc = pclose(pipe);
  return rc == 0 ? rps : 0;
}

// The map's queries against the running hub: a viewport of about `viewport_cells` cells
// rendered fresh (panned to a new place each time), the same viewport from the cache, and wrk's
// requests/s on the cached layer beside a trivial endpoint of the same server.
void queryRun(const FusionBenchOptions& o, Hub& hub, uint16_t port, const std::string& admin_key,
              const std::vector<std::pair<double, double>>& places) {
  double min_lon = 180, max_lon = -180, min_lat = 90, max_lat = -90;
  for (const auto& [lon, lat] : places) {
    min_lon = std::min(min_lon, lon), max_lon = std::max(max_lon, lon);
    min_lat = std::min(min_lat, lat), max_lat = std::max(max_lat, lat);
  }
  const size_t cells = std::max<size_t>(1, hub.fusion()->riskCellCount());
  const double side = std::min(1.0, std::sqrt(static_cast<double>(o.viewport_cells) / cells));
  const double w = (max_lon - min_lon) * side, h = (max_lat - min_lat) * side;
  auto bboxAt = [&](double fx, double fy, double scale) {
    char text[128];
    double x = min_lon + (max_lon - min_lon - w * scale) * fx,
           y = min_lat + (max_lat - min_lat - h * scale) * fy;
    std::snprintf(text, sizeof text, "%.5f,%.5f,%.5f,%.5f", x, y, x + w * scale, y + h * scale);
    return std::string(text);
  };
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setTimeout(Poco::Timespan(30, 0));
  size_t returned_sum = 0;
  // One request, timed until the body is read; with gzip the body is also inflated in the
  // interval, as the browser must before it can use it.
  auto timed = [&](const std::string& path, std::vector<double>& ms, bool gzip = false) {
    auto t = Clock::now();
    Poco::Net::HTTPRequest request("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Authorization", "Bearer " + admin_key);
    if (gzip) request.set("Accept-Encoding", "gzip");
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    // Read as a browser does: in blocks, into a buffer of the announced length.
    std::string body;
    if (response.hasContentLength())
      body.reserve(static_cast<size_t>(response.getContentLength64()));
    char block[65536];
    while (in.read(block, sizeof block) || in.gcount() > 0)
      body.append(block, static_cast<size_t>(in.gcount()));
    if (gzip && response.get("Content-Encoding", "") == "gzip") {
      std::istringstream compressed(body);
      Poco::InflatingInputStream inflate(compressed, Poco::InflatingStreamBuf::STREAM_GZIP);
      std::string plain;
      plain.reserve(body.size() * 12);
      while (inflate.read(block, sizeof block) || inflate.gcount() > 0) {
        plain.append(block, static_cast<size_t>(inflate.gcount()));
      }
      body.swap(plain);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    size_t at = body.rfind("\"numberReturned\":");
    if (at != std::string::npos) returned_sum += std::strtoull(body.c_str() + at + 17, nullptr, 10);
    return body.size();
  };
  // The same request read as a browser reads it: straight from the socket in large reads (Poco's
  // client stream above reads 4 KiB at a time, a client cost of its own in the figures).
  Poco::Net::StreamSocket raw;  // connected when its series starts
  std::vector<char> block(1 << 20);
  auto timedLargeReads = [&](const std::string& path, std::vector<double>& ms) {
    auto t = Clock::now();
    const std::string request = "GET " + path +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                                admin_key + "\r\n\r\n";
    raw.sendBytes(request.data(), static_cast<int>(request.size()));
    std::string data;
    size_t need = std::string::npos;
    while (data.size() < need) {
      int n = raw.receiveBytes(block.data(), static_cast<int>(block.size()));
      if (n <= 0) throw std::runtime_error("bench: the hub closed the connection");
      data.append(block.data(), static_cast<size_t>(n));
      size_t head = data.find("\r\n\r\n");
      if (need == std::string::npos && head != std::string::npos) {
        std::string headers = Poco::toLower(data.substr(0, head));
        size_t at = headers.find("content-length:");
        if (at == std::string::npos)
          throw std::runtime_error("bench: no Content-Length in the layer response");
        need = head + 4 + std::strtoull(headers.c_str() + at + 15, nullptr, 10);
      }
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  };
  std::fprintf(stderr, "bench: viewport queries...\n");
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.1, 0.9);
  std::vector<double> fresh, cached;
  size_t bytes = 0;
  const int rounds = 100;
  for (int i = 0; i < rounds; ++i)
    bytes += timed("/api/v1/layers/risk?bbox=" + bboxAt(u(rng), u(rng), 1.0), fresh);
  const size_t mean_cells = returned_sum / rounds;
  const std::string fixed = "/api/v1/layers/risk?bbox=" + bboxAt(0.5, 0.5, 1.0);
  for (int i = 0; i < rounds; ++i) timed(fixed, cached);
  // The same as the map asks (gzip): other places, so each is rendered and compressed fresh.
  std::vector<double> fresh_gz, cached_gz;
  const size_t returned_plain = returned_sum;
  for (int i = 0; i < rounds; ++i)
    timed("/api/v1/layers/risk?bbox=" + bboxAt(u(rng), u(rng), 1.0), fresh_gz, true);
  const std::string fixed_gz = "/api/v1/layers/risk?bbox=" + bboxAt(0.4, 0.6, 1.0);
  for (int i = 0; i < rounds; ++i) timed(fixed_gz, cached_gz, true);
  const bool gzip_parsed = returned_sum > returned_plain;  // the inflated bodies held features
  // The viewport as the one-map asks it: only the properties it draws (`properties=`), gzip.
  const std::string lean = "&properties=cell,level,colour";
  std::vector<double> fresh_map, cached_map, fresh_map_gz, cached_map_gz;
  size_t map_bytes = 0;
  for (int i = 0; i < rounds; ++i) {
    map_bytes += timed("/api/v1/layers/risk?bbox=" + bboxAt(u(rng), u(rng), 1.0) + lean, fresh_map);
  }
  std::vector<double> fresh_map_large;
  raw.connect(Poco::Net::SocketAddress("127.0.0.1", port));
  raw.setNoDelay(true);
  raw.setReceiveTimeout(Poco::Timespan(30, 0));
  for (int i = 0; i < rounds; ++i) {
    timedLargeReads("/api/v1/layers/risk?bbox=" + bboxAt(u(rng), u(rng), 1.0) + lean,
                    fresh_map_large);
  }
  const std::string fixed_map = "/api/v1/layers/risk?bbox=" + bboxAt(0.6, 0.4, 1.0) + lean;
  for (int i = 0; i < rounds; ++i) timed(fixed_map, cached_map);
  for (int i = 0; i < rounds; ++i)
    timed("/api/v1/layers/risk?bbox=" + bboxAt(u(rng), u(rng), 1.0) + lean, fresh_map_gz, true);
  const std::string fixed_map_gz = "/api/v1/layers/risk?bbox=" + bboxAt(0.4, 0.4, 1.0) + lean;
  for (int i = 0; i < rounds; ++i) timed(fixed_map_gz, cached_map_gz, true);
  const std::string street = "/api/v1/layers/risk?bbox=" + bboxAt(0.5, 0.5, 0.15);
  std::vector<double> ignored;
  timed(street, ignored);
  // The lake's side at province scale: a point layer (key units, 2 % of the buildings) over the
  // whole region and in map views, OGC pages of buildings in map views, single buildings.
  std::fprintf(stderr, "bench: point layer and OGC reads...\n");
  std::vector<double> units_region, units_view, ogc_page, ogc_item;
  for (int i = 0; i < 5; ++i) timed("/api/v1/layers/key_units?limit=20000", units_region);
  for (int i = 0; i < rounds / 5; ++i) {
    timed("/api/v1/layers/key_units?limit=20000&bbox=" + bboxAt(u(rng), u(rng), 1.0), units_view);
    timed("/ogc/collections/entities-building/items?limit=1000&bbox=" + bboxAt(u(rng), u(rng), 1.0),
          ogc_page);
  }
  std::uniform_int_distribution<size_t> building(0, std::max<size_t>(1, o.buildings) - 1);
  for (int i = 0; i < rounds; ++i) {
    timed("/ogc/collections/entities-building/items/building:B" + std::to_string(building(rng)),
          ogc_item);
  }

  std::string base = "http://127.0.0.1:" + std::to_string(port);
  std::fprintf(stderr, "bench: wrk on /healthz and the cached layer...\n");
  double trivial = wrkRequestsPerSecond(base + "/healthz", admin_key);
  double layer = wrkRequestsPerSecond(base + fixed, admin_key);
  double small = wrkRequestsPerSecond(base + street, admin_key);
  double layer_gz = wrkRequestsPerSecond(base + fixed, admin_key, true);
  double small_gz = wrkRequestsPerSecond(base + street, admin_key, true);
  // The compressed size of the viewport, as a browser gets it.
  size_t gzip_bytes = 0;
  {
    Poco::Net::HTTPRequest request("GET", fixed, Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Authorization", "Bearer " + admin_key);
    request.set("Accept-Encoding", "gzip");
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    char block[65536];
    while (in.read(block, sizeof block) || in.gcount() > 0)
      gzip_bytes += static_cast<size_t>(in.gcount());
  }
  std::printf("\nquery: risk layer viewports over HTTP (%zu cells in the layer)\n", cells);
  std::printf("%-46s %12zu\n", "viewport cells (mean of fresh renders)", mean_cells);
  std::printf("%-46s %12.1f\n", "viewport response (KiB)", bytes / 1024.0 / rounds);
  std::printf("%-46s %12.1f\n", "map's viewport response (KiB; cell,level,colour)",
              map_bytes / 1024.0 / rounds);
  // Each series: its label, its JSON name, its latencies.
  struct Series {
    const char* label;
    const char* key;
    std::vector<double>& ms;
  };
  Series series[] = {
      {"fresh viewport", "viewport", fresh},
      {"cached viewport", "cached_viewport", cached},
      {"fresh viewport, gzip + inflate,", "viewport_gzip", fresh_gz},
      {"cached viewport, gzip + inflate,", "cached_viewport_gzip", cached_gz},
      {"map's viewport fresh", "map_viewport", fresh_map},
      {"map's viewport fresh, large reads,", "map_viewport_large_reads", fresh_map_large},
      {"map's viewport cached", "map_cached_viewport", cached_map},
      {"map's viewport fresh, gzip + inflate,", "map_viewport_gzip", fresh_map_gz},
      {"map's viewport cached, gzip + inflate,", "map_cached_viewport_gzip", cached_map_gz},
      {"key units, whole region (20,000),", "key_units_region", units_region},
      {"key units in a map view,", "key_units_view", units_view},
      {"OGC 1,000 buildings in a map view,", "ogc_buildings_page", ogc_page},
      {"OGC one building,", "ogc_building_item", ogc_item}};
  BenchFigures figures;
  for (auto& one : series) {
    for (double q : {0.5, 0.99}) {
      std::printf("%-46s %12.2f\n",
                  (std::string(one.label) + (q == 0.5 ? " p50 (ms)" : " p99 (ms)")).c_str(),
                  percentile(one.ms, q));
      figures.emplace_back(std::string("query.") + one.key + (q == 0.5 ? "_p50_ms" : "_p99_ms"),
                           percentile(one.ms, q));
    }
  }
  if (!gzip_parsed) std::printf("(the gzip responses held no features: check Content-Encoding)\n");
  if (trivial > 0) {
    std::printf("%-46s %12.0f\n", "wrk /healthz (req/s)", trivial);
    std::printf("%-46s %12.0f   %.2f\n", "wrk cached viewport (req/s, ratio)", layer,
                layer / trivial);
    std::printf("%-46s %12.0f   %.2f\n", "wrk cached street view (req/s, ratio)", small,
                small / trivial);
    std::printf("%-46s %12.1f\n", "viewport response with gzip (KiB)", gzip_bytes / 1024.0);
    std::printf("%-46s %12.0f   %.2f\n", "wrk cached viewport, gzip (req/s, ratio)", layer_gz,
                layer_gz / trivial);
    std::printf("%-46s %12.0f   %.2f\n", "wrk cached street view, gzip (req/s, ratio)", small_gz,
                small_gz / trivial);
  } else {
    std::printf("wrk is not installed (ops/install-deps.sh bench installs it); no req/s figures\n");
  }
  figures.insert(
      figures.end(),
      {{"query.layer_cells", static_cast<uint64_t>(cells)},
       {"query.viewport_cells", static_cast<uint64_t>(mean_cells)},
       {"query.viewport_kib", bytes / 1024.0 / rounds},
       {"query.map_viewport_kib", map_bytes / 1024.0 / rounds},
       {"query.wrk_trivial_req_per_s", trivial},
       {"query.wrk_cached_viewport_req_per_s", layer},
       {"query.wrk_cached_street_req_per_s", small},
       {"query.ratio_cached_viewport_to_trivial", trivial > 0 ? layer / trivial : 0.0},
       {"query.ratio_cached_street_to_trivial", trivial > 0 ? small / trivial : 0.0},
       {"query.viewport_gzip_kib", gzip_bytes / 1024.0},
       {"query.wrk_cached_viewport_gzip_req_per_s", layer_gz},
       {"query.wrk_cached_street_gzip_req_per_s", small_gz},
       {"query.ratio_cached_viewport_gzip_to_trivial", trivial > 0 ? layer_gz / trivial : 0.0},
       {"query.ratio_cached_street_gzip_to_trivial", trivial > 0 ? small_gz / trivial : 0.0}});
  mergeBenchJson(o.json, figures);
}

// The options every run on the synthetic region takes.
void addRegionOptions(CLI::App* app, FusionBenchOptions& o) {
  app->add_option("--buildings", o.buildings, "Buildings in the region")
      ->check(CLI::Range(size_t{1000}, size_t{5000000}));
  app->add_option("--work-dir", o.work_dir, "Scratch directory (default: a temp dir)");
  app->add_option("--json", o.json, "Merge the figures into this JSON report");
  app->add_option("--bootstrap", o.bootstrap,
                  "Kafka bootstrap servers (e.g. a `firehub broker`); default: embedded");
}

}  // namespace

void addFusionBench(CLI::App& bench) {
  static FusionBenchOptions o;
  auto* fusion = bench.add_subcommand(
      "fusion", "Risk layer: cold start, full fusion, record-in -> delta-out latency");
  addRegionOptions(fusion, o);
  fusion->add_option("--hydrants", o.hydrants, "Hydrants in the region")
      ->check(CLI::Range(size_t{10}, size_t{1000000}));
  fusion->add_option("--rate", o.rate, "Fire alarms per second in the latency run")
      ->check(CLI::Range(100.0, 100000.0));
  fusion->add_option("--seconds", o.seconds, "Length of the latency run")
      ->check(CLI::Range(1.0, 600.0));
  fusion->add_flag("--keep", o.keep, "Keep the scratch directory");
  fusion->add_flag(
      "--no-latency", [](int64_t) { o.latency = false; }, "Leave out the alarm latency run");
  fusion->add_flag(
      "--no-query", [](int64_t) { o.query = false; }, "Leave out the viewport and wrk run");
  fusion->callback([] { std::exit(benchFusion(o)); });

  static FusionBenchOptions q;
  auto* query = bench.add_subcommand(
      "query", "Risk layer viewports: fresh and cached render latency, wrk req/s");
  addRegionOptions(query, q);
  query->add_option("--viewport-cells", q.viewport_cells, "Cells in the viewport")
      ->check(CLI::Range(size_t{10}, size_t{100000}));
  query->callback([] {
    q.latency = false;
    q.restart = false;
    std::exit(benchFusion(q));
  });

  static FusionBenchOptions m;
  auto* memory =
      bench.add_subcommand("memory", "Resident memory of the hub with the region fused and live");
  addRegionOptions(memory, m);
  memory->callback([] {
    m.latency = false;
    m.query = false;
    m.restart = false;
    std::exit(benchFusion(m));
  });
}

}  // namespace firehub::cli
