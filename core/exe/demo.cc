// `firehub demo`: the hub plus the demo city (demo_city.h) feeding it through the real
// connectors.
#include <atomic>
#include <iostream>
#include <thread>

#include "cli.h"
#include "cli_client.h"
#include "demo_city.h"
#include "firehub/log.h"

namespace firehub::cli {

int runDemo(const ServeOptions& options, const DemoCityOptions& city_options) {
  ServeOptions o = options;
  if (o.data_dir.empty() && o.config_file.empty()) o.data_dir = kDefaultDataDir;
  o.init = true;  // the demo makes its own data dir on first start
  auto config = resolveConfig(o);
  if (!config.isOk()) {
    std::cerr << "firehub demo: " << config.status().message() << "\n";
    return 2;
  }
  blockStopSignals();
  HubConfig demo_config = config.value();
  demo_config.risk.warning_status = "Exercise";  // the demo city's warnings are an exercise
  if (demo_config.outlines_file.empty()) {       // the demo city's schematic districts
    demo_config.outlines_file =
        (demo_config.static_dir.empty() ? defaultStaticDir() : demo_config.static_dir) +
        "/districts.geojson";
  }
  auto started = Hub::start(demo_config);
  if (!started.isOk()) {
    std::cerr << "firehub demo: cannot start: " << started.status().toString() << "\n";
    return 1;
  }
  auto& hub = *started.value();
  std::string base = "http://" + hub.httpAddress();
  // The demo's agencies push with the admin key the hub wrote on first start.
  DemoCity city(base, city_options, hub.adminKey());
  std::atomic<bool> stop{false};
  std::thread live([&] {
    if (!city.seed()) {
      FIREHUB_LOG(kError, "demo", "seeding the demo city failed; the hub keeps serving");
      return;
    }
    FIREHUB_LOG(kInfo, "demo",
                "demo city live on " << base << " (feeds: " << base << "/api/v1/feeds)");
    city.runLive(stop);
  });
  int sig = waitForStopSignal();
  FIREHUB_LOG(kInfo, "demo", "signal " << sig << ": shutting down");
  stop = true;
  live.join();
  hub.stop();
  return 0;
}

}  // namespace firehub::cli
