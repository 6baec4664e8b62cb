// `firehub bench map`: the one-map at province scale. A synthetic province (about 148,000 km²,
// 1.9 M possible level-15 cells of which about 10 % hold buildings; 1 M buildings with
// footprints, 50,000 hydrants, 20,000 fire-IoT devices, stations and hospitals) is loaded into a
// lake and fused; the hub then serves it and the figures are:
//  1. tile time, cold (first read of a tile) and warm (read again), p50 and p95, over the tiles
//     of full-screen views (1920 x 1080, 512-pixel tiles) at zooms 6 to 16 across the province,
//     for the layers the map shows at start (risk, stations, fire alarms, buildings);
//  2. bytes per full-screen view (compressed, as a browser gets them) at each zoom, at start and
//     with every tiled point layer switched on;
//  3. in headless Chromium (bench/map_browser.mjs): first paint of the province, the longest
//     task while panning, and delta-to-screen (push of a fire alarm to the frame that shows its
//     cell red) at 100 changed cells a second.
#include <Poco/InflatingStream.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <thread>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "bench_data.h"
#include "bench_report.h"
#include "firehub/api.h"
#include "firehub/hub.h"
#include "firehub/lake.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct MapBenchOptions {
  size_t buildings = 1000000;
  double occupied = 0.10;  // share of the province's level-15 cells holding buildings
  size_t hydrants = 50000;
  size_t devices = 20000;
  int views = 6;  // full-screen views per zoom
  std::string work_dir;
  std::string json;
  std::string bootstrap;
  std::string source_dir = ".";
  bool browser = true;
  bool keep = false;
};

// The province: 4.9° x 3.3° around 41.3° N, about 150,000 km² (Liaoning's size).
constexpr double kWest = 120.0, kSouth = 39.6, kWidth = 4.9, kHeight = 3.3;

// Buildings in random occupied cells (a footprint of about 20 m x 20 m each), hydrants near
// them, devices in buildings. `alarm_targets` gets, for a spread of buildings, the building id
// and the token of its grid cell (what the browser run sets burning).
Status loadProvince(lake::Lake& lake, const MapBenchOptions& o, size_t& cells_occupied,
                    std::vector<std::pair<std::string, std::string>>& alarm_targets) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  // The occupied cells: distinct level-15 cells at random places in the province.
  const double possible = 1.9e6;
  const size_t want = static_cast<size_t>(possible * o.occupied);
  std::vector<S2CellId> occupied;
  std::set<uint64_t> seen;
  while (occupied.size() < want && seen.size() < want * 2) {
    S2CellId id =
        S2CellId(S2LatLng::FromDegrees(kSouth + u(rng) * kHeight, kWest + u(rng) * kWidth))
            .parent(15);
    if (seen.insert(id.id()).second) occupied.push_back(id);
  }
  cells_occupied = occupied.size();
  std::vector<lake::StoreItem> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::ok();
    auto r = lake.commit(batch, {});
    batch.clear();
    return r.status();
  };
  std::set<uint64_t> targeted;
  for (size_t i = 0; i < o.buildings; ++i) {
    const S2CellId cell = occupied[rng() % occupied.size()];
    const S2LatLng c = cell.ToLatLng();
    const double lon = c.lng().degrees() + (u(rng) - 0.5) * 0.002;
    const double lat = c.lat().degrees() + (u(rng) - 0.5) * 0.0015;
    const std::string id = "B" + std::to_string(i);
    auto it = benchItem("building", "building", id, lon, lat);
    auto* b = it.record().mutable_building();
    b->set_building_id(id);
    b->set_name("楼" + std::to_string(i));
    b->set_occupancy(static_cast<firehub::v1::Building::Occupancy>(1 + rng() % 16));
    b->set_key_unit(u(rng) < 0.02);
    auto* ring = it.record().mutable_geometry()->mutable_polygon()->add_rings();
    const double dx = 0.00012, dy = 0.00009;
    for (auto [x, y] : {std::pair{-dx, -dy}, {dx, -dy}, {dx, dy}, {-dx, dy}, {-dx, -dy}}) {
      auto* p = ring->add_points();
      p->set_lon(lon + x);
      p->set_lat(lat + y);
    }
    // The building's grid cell, by its place as fusion takes it (the footprint's middle).
    const uint64_t grid = S2CellId(S2LatLng::FromDegrees(lat, lon)).parent(15).id();
    if (alarm_targets.size() < 5000 && targeted.insert(grid).second)
      alarm_targets.emplace_back(id, S2CellId(grid).ToToken());
    batch.push_back(std::move(it));
    if (batch.size() == 10000) FIREHUB_RETURN_IF_ERROR(flush());
  }
  for (size_t i = 0; i < o.hydrants; ++i) {
    const S2LatLng c = occupied[rng() % occupied.size()].ToLatLng();
    auto it = benchItem("water", "water_source", "H" + std::to_string(i),
                        c.lng().degrees() + (u(rng) - 0.5) * 0.003,
                        c.lat().degrees() + (u(rng) - 0.5) * 0.002);
    auto* w = it.record().mutable_water_source();
    w->set_source_id("H" + std::to_string(i));
    w->set_kind(firehub::v1::WaterSource::KIND_HYDRANT);
    w->set_status(u(rng) < 0.05 ? firehub::v1::WaterSource::STATUS_OUT_OF_SERVICE
                                : firehub::v1::WaterSource::STATUS_IN_SERVICE);
    w->set_pressure_mpa(u(rng) < 0.05 ? 0.05 : 0.3);
    batch.push_back(std::move(it));
    if (batch.size() == 10000) FIREHUB_RETURN_IF_ERROR(flush());
  }
  for (int i = 0; i < 400; ++i) {
    auto it = benchItem("station", "fire_station", "S" + std::to_string(i), kWest + u(rng) * kWidth,
                        kSouth + u(rng) * kHeight);
    it.record().mutable_fire_station()->set_station_id("S" + std::to_string(i));
    it.record().mutable_fire_station()->set_status(firehub::v1::FireStation::STATUS_IN_SERVICE);
    batch.push_back(std::move(it));
  }
  for (int i = 0; i < 200; ++i) {
    auto it = benchItem("health", "health_facility", "M" + std::to_string(i),
                        kWest + u(rng) * kWidth, kSouth + u(rng) * kHeight);
    auto* h = it.record().mutable_health_facility();
    h->set_facility_id("M" + std::to_string(i));
    h->set_kind(firehub::v1::HealthFacility::KIND_HOSPITAL);
    h->set_beds_emergency_available(static_cast<int>(rng() % 10));
    batch.push_back(std::move(it));
  }
  // Fire-IoT devices: each device's latest event; 5 % of them an unresolved fault.
  for (size_t i = 0; i < o.devices; ++i) {
    const S2LatLng c = occupied[rng() % occupied.size()].ToLatLng();
    char address[16];
    std::snprintf(address, sizeof address, "%012zx", 0x100000 + i);
    auto it = benchItem("alarm", "fire_alarm_event", address, c.lng().degrees(), c.lat().degrees());
    auto* a = it.record().mutable_fire_alarm_event();
    a->set_device_address(address);
    a->set_info_type(firehub::v1::FireAlarmEvent::INFO_TYPE_COMPONENT_STATE);
    const bool fault = u(rng) < 0.05;
    a->set_fault(fault);
    a->set_resolved(!fault);
    batch.push_back(std::move(it));
    if (batch.size() == 10000) FIREHUB_RETURN_IF_ERROR(flush());
  }
  return flush();
}

struct TileRead {
  double ms = 0;
  size_t bytes = 0;  // as sent (gzip-compressed)
};

// One tile over a kept-alive session, asking for gzip as browsers do; timed until the body is
// read.
TileRead readTile(Poco::Net::HTTPClientSession& session, const std::string& path) {
  Poco::Net::HTTPRequest request("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
  request.set("Accept-Encoding", "gzip");
  request.setKeepAlive(true);
  const auto t = Clock::now();
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  std::string body;
  Poco::StreamCopier::copyToString(in, body);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  if (response.getStatus() != 200) {
    throw std::runtime_error(path + ": HTTP " + std::to_string(response.getStatus()) + " " + body);
  }
  return {ms, body.size()};
}

// Tiles of a 1920 x 1080 view of 512-pixel tiles centred on lon/lat at zoom z.
std::vector<std::string> viewTiles(int z, double lon, double lat) {
  const double n = std::ldexp(1.0, z);
  const double x = (lon + 180) / 360 * n;
  const double y = (1 - std::asinh(std::tan(lat * M_PI / 180)) / M_PI) / 2 * n;
  std::vector<std::string> out;
  for (int64_t tx = static_cast<int64_t>(std::floor(x - 1920.0 / 512 / 2));
       tx <= static_cast<int64_t>(std::floor(x + 1920.0 / 512 / 2)); ++tx) {
    for (int64_t ty = static_cast<int64_t>(std::floor(y - 1080.0 / 512 / 2));
         ty <= static_cast<int64_t>(std::floor(y + 1080.0 / 512 / 2)); ++ty) {
      if (tx < 0 || ty < 0 || tx >= n || ty >= n) continue;
      out.push_back(std::to_string(z) + "/" + std::to_string(tx) + "/" + std::to_string(ty));
    }
  }
  return out;
}

// A connection from `source` (a loopback address) to the hub; -1 when it fails.
int connectFrom(const std::string& source, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  to.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The wall of screens: `streams` open risk event streams and `idle` connections that say
// nothing (50 from each loopback address, within the per-address cap), then /healthz timed.
BenchFigures connectionsRun(uint16_t port, int streams, int idle) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  std::vector<int> fds;
  int opened_streams = 0;
  const std::string request = "GET /api/v1/layers/risk/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (int i = 0; i < streams; ++i) {
    const int fd = connectFrom("127.0.2." + std::to_string(1 + i / 50), port);
    if (fd < 0) break;
    fds.push_back(fd);
    opened_streams += ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                      static_cast<ssize_t>(request.size());
  }
  int opened_idle = 0;
  for (int i = 0; i < idle; ++i) {
    const int fd = connectFrom(
        "127.0.3" + std::to_string(i / 5000) + "." + std::to_string(1 + (i / 50) % 100), port);
    if (fd < 0) break;
    fds.push_back(fd);
    ++opened_idle;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<double> ms;
  for (int i = 0; i < 100; ++i) {
    const auto t = Clock::now();
    try {
      httpRequest("http://127.0.0.1:" + std::to_string(port), "GET", "/healthz", "", "");
    } catch (const Poco::Exception&) {
      ms.push_back(1e9);
      continue;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  for (int fd : fds) ::close(fd);
  std::printf("%-52s %12d\n", "event streams held", opened_streams);
  std::printf("%-52s %12d\n", "idle connections held", opened_idle);
  std::printf("%-52s %12.2f\n", "/healthz p50 with them open (ms)", percentile(ms, 0.5));
  std::printf("%-52s %12.2f   (target < 100)\n", "/healthz p99 with them open (ms)",
              percentile(ms, 0.99));
  return {{"map.streams_held", static_cast<int64_t>(opened_streams)},
          {"map.idle_connections_held", static_cast<int64_t>(opened_idle)},
          {"map.healthz_p50_ms_with_connections", percentile(ms, 0.5)},
          {"map.healthz_p99_ms_with_connections", percentile(ms, 0.99)}};
}

// Long: one run, phase after phase, each printing its figures.
int benchMap(const MapBenchOptions& o) {
  namespace fs = std::filesystem;
  const fs::path dir = o.work_dir.empty() ? fs::temp_directory_path() /
                                                ("firehub-bench-map-" + std::to_string(getpid()))
                                          : fs::path(o.work_dir);
  fs::remove_all(dir);
  fs::create_directories(dir / "hub");
  size_t occupied = 0;
  std::vector<std::pair<std::string, std::string>> targets;
  {
    lake::LakeOptions lo;
    lo.path = (dir / "hub" / "lake").string();
    lo.sync = false;
    lo.area_indexes = api::pointLayerIndexes();
    auto lake = lake::Lake::open(lo);
    if (!lake.isOk()) {
      std::cerr << "bench: " << lake.status().toString() << "\n";
      return 1;
    }
    std::fprintf(stderr, "bench: loading the province (%zu buildings) into the lake...\n",
                 o.buildings);
    if (Status s = loadProvince(**lake, o, occupied, targets); !s.isOk()) {
      std::cerr << "bench: " << s.toString() << "\n";
      return 1;
    }
  }
  HubConfig config;
  config.init = true;
  config.data_dir = (dir / "hub").string();
  config.http_listen = "127.0.0.1:0";
  config.kafka_bootstrap = o.bootstrap;
  config.http_limits.keep_alive_s = 120;  // the wall of screens below stays connected
  std::fprintf(stderr, "bench: starting the hub and fusing the province...\n");
  auto started = Hub::start(config);
  if (!started.isOk()) {
    std::cerr << "bench: " << started.status().toString() << "\n";
    return 1;
  }
  auto& hub = *started.value();
  const auto fuse_start = Clock::now();
  for (int i = 0; i < 6000 && !hub.fusion()->caughtUp(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double fuse_s = std::chrono::duration<double>(Clock::now() - fuse_start).count();
  const size_t cells = hub.fusion()->riskCellCount();
  const uint16_t port = hub.httpPort();
  std::printf(
      "\nfirehub bench map: %zu buildings in %zu of 1.9 M possible level-15 cells, %zu "
      "hydrants, %zu fire-IoT devices\n",
      o.buildings, occupied, o.hydrants, o.devices);
  std::printf("%-52s %12s\n", "figure", "value");
  std::printf("%-52s %12zu\n", "risk cells", cells);
  std::printf("%-52s %12.1f\n", "hub start to fused (s)", fuse_s);
  // The point layers load beside fusion; wait until the hub says its tiles draw them.
  for (int i = 0; i < 600; ++i) {
    auto r = httpRequest("http://127.0.0.1:" + std::to_string(port), "GET",
                         "/tiles/hydrants/6/52/23.mvt", "", "", hub.adminKey());
    if (!r.body.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // 1 and 2: tiles of full-screen views across the province.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  const std::vector<std::string> start_layers = {"risk", "stations", "alarms", "buildings"};
  const std::vector<std::string> all_layers = {"risk",     "stations",  "alarms",    "buildings",
                                               "hydrants", "key_units", "hospitals", "incidents"};
  std::vector<double> cold_ms, warm_ms;
  BenchFigures figures = {{"map.buildings", static_cast<uint64_t>(o.buildings)},
                          {"map.cells_occupied", static_cast<uint64_t>(occupied)},
                          {"map.risk_cells", static_cast<uint64_t>(cells)},
                          {"map.fuse_s", fuse_s}};
  double worst_view_kb = 0, worst_all_kb = 0;
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setKeepAlive(true);
  std::printf("%-52s %12s %12s\n", "zoom: bytes per full-screen view (KB, gzip)", "at start",
              "all layers");
  try {
    for (int z : {6, 8, 10, 12, 14, 15, 16}) {
      std::vector<double> view_kb, all_kb;
      for (int v = 0; v < o.views; ++v) {
        const double lon = kWest + (0.2 + 0.6 * u(rng)) * kWidth;
        const double lat = kSouth + (0.2 + 0.6 * u(rng)) * kHeight;
        const auto tiles = viewTiles(z, lon, lat);
        double start_bytes = 0, all_bytes = 0;
        for (const auto& layer : all_layers) {
          const bool at_start =
              std::find(start_layers.begin(), start_layers.end(), layer) != start_layers.end();
          for (const auto& t : tiles) {
            const std::string path = "/tiles/" + layer + "/" + t + ".mvt";
            TileRead first = readTile(session, path);
            TileRead again = readTile(session, path);
            cold_ms.push_back(first.ms);
            warm_ms.push_back(again.ms);
            all_bytes += static_cast<double>(first.bytes);
            if (at_start) start_bytes += static_cast<double>(first.bytes);
          }
        }
        view_kb.push_back(start_bytes / 1024);
        all_kb.push_back(all_bytes / 1024);
      }
      const double max_view = *std::max_element(view_kb.begin(), view_kb.end());
      const double max_all = *std::max_element(all_kb.begin(), all_kb.end());
      std::printf("  z%-50d %12.1f %12.1f\n", z, max_view, max_all);
      worst_view_kb = std::max(worst_view_kb, max_view);
      worst_all_kb = std::max(worst_all_kb, max_all);
      figures.emplace_back("map.view_kb_z" + std::to_string(z), max_view);
      figures.emplace_back("map.view_all_layers_kb_z" + std::to_string(z), max_all);
    }
  } catch (const std::exception& e) {
    std::cerr << "bench: " << e.what() << "\n";
    return 1;
  }
  std::printf("%-52s %12.1f   (target <= 300)\n", "largest view at start (KB)", worst_view_kb);
  std::printf("%-52s %12.1f\n", "largest view, every tiled layer on (KB)", worst_all_kb);
  std::printf("%-52s %12zu\n", "tiles read", cold_ms.size());
  std::printf("%-52s %12.2f\n", "tile cold p50 (ms)", percentile(cold_ms, 0.5));
  std::printf("%-52s %12.2f   (target <= 50)\n", "tile cold p95 (ms)", percentile(cold_ms, 0.95));
  std::printf("%-52s %12.2f\n", "tile cold max (ms)", percentile(cold_ms, 1.0));
  std::printf("%-52s %12.2f\n", "tile warm p50 (ms)", percentile(warm_ms, 0.5));
  std::printf("%-52s %12.2f   (target <= 5)\n", "tile warm p95 (ms)", percentile(warm_ms, 0.95));
  figures.insert(figures.end(), {{"map.tiles_read", static_cast<uint64_t>(cold_ms.size())},
                                 {"map.tile_cold_p50_ms", percentile(cold_ms, 0.5)},
                                 {"map.tile_cold_p95_ms", percentile(cold_ms, 0.95)},
                                 {"map.tile_warm_p50_ms", percentile(warm_ms, 0.5)},
                                 {"map.tile_warm_p95_ms", percentile(warm_ms, 0.95)},
                                 {"map.view_kb_max", worst_view_kb},
                                 {"map.view_all_layers_kb_max", worst_all_kb}});
  std::fflush(stdout);

  // Connections held (the hub and this client share the process's open-files limit).
  {
    auto held = connectionsRun(port, 1000, 8000);
    figures.insert(figures.end(), held.begin(), held.end());
  }
  std::fflush(stdout);

  // 3. The browser: first paint, long tasks while panning, delta-to-screen.
  if (o.browser) {
    registry::FeedSpec spec;
    spec.id = "alarms";
    spec.agency = "fire-iot";
    spec.connector = "firehub.connector.alarm";
    if (auto feed = hub.feeds().create(spec); !feed.isOk()) {
      std::cerr << "bench: " << feed.status().toString() << "\n";
      return 1;
    }
    {
      std::ofstream out(dir / "targets.json");
      out << "[";
      for (size_t i = 0; i < targets.size(); ++i)
        out << (i ? "," : "") << "[\"" << targets[i].first << "\",\"" << targets[i].second << "\"]";
      out << "]";
    }
    const std::string cmd =
        "node " + (fs::path(o.source_dir) / "bench" / "map_browser.mjs").string() +
        " http://127.0.0.1:" + std::to_string(port) + " " + (dir / "targets.json").string() + " " +
        (dir / "browser.json").string() + " " + o.source_dir + " " + (dir / "admin.key").string();
    { std::ofstream(dir / "admin.key") << hub.adminKey(); }
    std::fprintf(stderr, "bench: the map in headless Chromium...\n");
    if (std::system(cmd.c_str()) != 0) {
      std::cerr << "bench: the browser run failed (" << cmd << ")\n";
    } else {
      std::ifstream in(dir / "browser.json");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        Poco::JSON::Parser parser;
        auto obj = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
        for (const auto& [key, value] : *obj) {
          std::printf("%-52s %12.1f\n", key.c_str(), value.convert<double>());
          figures.emplace_back("map." + key, value.convert<double>());
        }
      } catch (const Poco::Exception& e) {
        std::cerr << "bench: browser figures: " << e.displayText() << "\n";
      }
    }
  }
  mergeBenchJson(o.json, figures);
  hub.stop();
  if (!o.keep) fs::remove_all(dir);
  return 0;
}

}  // namespace

void addMapBench(CLI::App& bench) {
  static MapBenchOptions o;
  auto* map = bench.add_subcommand(
      "map", "The one-map at province scale: tile times, bytes per view, the map in a browser");
  map->add_option("--buildings", o.buildings, "Buildings in the province")
      ->check(CLI::Range(size_t{1000}, size_t{5000000}));
  map->add_option("--occupied", o.occupied, "Share of the level-15 cells holding buildings")
      ->check(CLI::Range(0.001, 1.0));
  map->add_option("--views", o.views, "Full-screen views per zoom")->check(CLI::Range(1, 100));
  map->add_option("--work-dir", o.work_dir, "Scratch directory (default: a temp dir)");
  map->add_option("--json", o.json, "Merge the figures into this JSON report");
  map->add_option("--bootstrap", o.bootstrap,
                  "Kafka bootstrap servers (e.g. a `firehub broker`); default: embedded");
  map->add_option("--source-dir", o.source_dir,
                  "The source tree (bench/map_browser.mjs and the one-map's packages)");
  map->add_flag(
      "--no-browser", [](int64_t) { o.browser = false; }, "Leave out the browser run");
  map->add_flag("--keep", o.keep, "Keep the scratch directory");
  map->callback([] { std::exit(benchMap(o)); });
}

}  // namespace firehub::cli
