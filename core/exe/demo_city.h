// The demo city around Shenyang: synthetic but believable agency data, pushed through the real
// connectors (HTTP push and GB/T 26875 over TCP) exactly as agencies would.
#pragma once

#include <atomic>
#include <random>
#include <string>
#include <vector>

namespace firehub::cli {

struct DemoCityOptions {
  int buildings = 20000;
  int water_sources = 2000;
  int alarm_devices = 300;
  int weather_stations = 30;
  int weather_interval_s = 5;
};

class DemoCity {
 public:
  // `api_key`: a key that may register and push every demo feed (the hub's admin key).
  DemoCity(std::string base_url, DemoCityOptions options, std::string api_key = "");
  // Registers the demo feeds and pushes the registers (buildings, hazards, water sources,
  // stations, hospitals, devices, incidents). Returns false when the hub refused something.
  bool seed();
  // Runs the live feeds until `stop`: weather rounds, pressure readings, police incidents, and a
  // device simulator sending GB/T 26875 frames over TCP.
  void runLive(const std::atomic<bool>& stop);

 private:
  bool registerFeed(const std::string& json);
  bool push(const std::string& feed, const std::string& type, const std::string& body);
  std::string weatherCsv();
  void pushIncident(int n);
  void simulateDevices(const std::atomic<bool>& stop);

  std::string base_;
  std::string key_;
  DemoCityOptions options_;
  std::mt19937 rng_;
  struct Place {
    std::string id;
    double lon, lat;
    bool key_unit;
  };
  std::vector<Place> buildings_;
  std::vector<Place> weather_stations_;
  std::vector<std::string> hydrants_;
  std::vector<std::string> devices_;
  int alarm_port_ = 0;
};

}  // namespace firehub::cli
