// `firehub demo`: the hub plus a believable weather-station network around Shenyang pushing
// observations over HTTP through the real weather connector, every few seconds.
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <random>
#include <thread>

#include "cli.h"
#include "firehub/log.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

constexpr double kCenterLon = 123.43;
constexpr double kCenterLat = 41.80;

struct Station {
  std::string id;
  double lon, lat;
  double temp_bias;
};

std::vector<Station> makeStations(int n) {
  std::mt19937 rng(20261122);
  std::normal_distribution<double> spread(0, 0.18);
  std::normal_distribution<double> bias(0, 1.2);
  std::vector<Station> out;
  for (int i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "A%04d", 7101 + i);
    out.push_back({id, kCenterLon + spread(rng) * 1.3, kCenterLat + spread(rng), bias(rng)});
  }
  return out;
}

std::string observationsCsv(const std::vector<Station>& stations, std::mt19937& rng) {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
  // Diurnal cycle in local time (UTC+8): warmest around 14:00.
  double hour = std::fmod(utc.tm_hour + 8 + utc.tm_min / 60.0, 24.0);
  double diurnal = std::cos((hour - 14.0) / 24.0 * 2 * M_PI);
  std::normal_distribution<double> noise(0, 0.6);
  std::uniform_real_distribution<double> u(0, 1);
  std::string csv = "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";
  char line[256];
  for (const auto& s : stations) {
    double temp = 6.0 + 6.0 * diurnal + s.temp_bias + noise(rng);
    double rh = std::clamp(55.0 - 20.0 * diurnal + noise(rng) * 5, 8.0, 100.0);
    double wind = std::max(0.0, 14.0 + 8.0 * u(rng) + noise(rng) * 3);
    double dir = std::fmod(300 + 40 * u(rng), 360);
    double precip = u(rng) < 0.05 ? std::round(u(rng) * 20) / 10 : 0.0;
    std::snprintf(line, sizeof line, "%s,%.5f,%.5f,%s,%.1f,%.0f,%.1f,%.0f,%.1f\n", s.id.c_str(),
                  s.lon, s.lat, when, temp, rh, wind, dir, precip);
    csv += line;
  }
  return csv;
}

}  // namespace

int runDemo(const ServeOptions& options, int station_count, int interval_s) {
  ServeOptions o = options;
  if (o.data_dir.empty() && o.config_file.empty()) o.data_dir = "var/demo";
  auto config = resolveConfig(o);
  if (!config.isOk()) {
    std::cerr << "firehub demo: " << config.status().message() << "\n";
    return 2;
  }
  blockStopSignals();
  auto started = Hub::start(config.value());
  if (!started.isOk()) {
    std::cerr << "firehub demo: cannot start: " << started.status().toString() << "\n";
    return 1;
  }
  auto& hub = *started.value();
  std::string base = "http://" + hub.httpAddress();

  const std::string feed_json =
      R"({"id":"wx-shenyang","agency":"liaoning-meteorology","connector":"firehub.connector.weather",)"
      R"("description":"Automatic weather stations, Shenyang","cadence_s":)" +
      std::to_string(interval_s) + R"(,"config":{"utc_offset":"+08:00"}})";
  try {
    auto reply = httpRequest(base, "POST", "/api/v1/feeds", "application/json", feed_json);
    if (reply.status != 201 && reply.status != 200) {
      FIREHUB_LOG(kError, "demo", "cannot register the demo feed: HTTP " << reply.status << " "
                                                                         << reply.body);
    }
  } catch (const Poco::Exception& e) {
    FIREHUB_LOG(kError, "demo", "cannot register the demo feed: " << e.displayText());
  }
  FIREHUB_LOG(kInfo, "demo", "demo running: " << station_count << " weather stations every "
                                              << interval_s << " s; open " << base
                                              << "/api/v1/entities?domain=weather");

  std::atomic<bool> stop{false};
  std::thread pusher([&] {
    auto stations = makeStations(station_count);
    std::mt19937 rng(std::random_device{}());
    while (!stop) {
      try {
        auto reply = httpRequest(base, "POST", "/api/v1/feeds/wx-shenyang/records", "text/csv",
                                 observationsCsv(stations, rng));
        FIREHUB_LOG(kDebug, "demo", "push: HTTP " << reply.status << " " << reply.body);
      } catch (const Poco::Exception& e) {
        FIREHUB_LOG(kWarning, "demo", "push failed: " << e.displayText());
      }
      for (int i = 0; i < interval_s * 10 && !stop; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  int sig = waitForStopSignal();
  FIREHUB_LOG(kInfo, "demo", "signal " << sig << ": shutting down");
  stop = true;
  pusher.join();
  hub.stop();
  return 0;
}

}  // namespace firehub::cli
