// firehub: command-line entry point. Wiring only; the work is in the modules.
#include <csignal>
#include <cstdio>
#include <iostream>

#include "bench.h"
#include "cli.h"
#include "version_info.h"
#include "cli_client.h"
#include "firehub/log.h"

#ifdef FIREHUB_JEMALLOC
// jemalloc's options, read when it starts (MALLOC_CONF in the environment still overrides them):
// a background thread gives freed pages back to the system after about two seconds. Without it a
// burst of allocations on several threads at once (a start: the map's caches loading while
// fusion rebuilds its inputs) stays resident, about a tenth of the hub's memory at 1 M buildings.
extern "C" {
const char* malloc_conf = "background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0";
}
#endif

namespace firehub::cli {

Result<HubConfig> resolveConfig(const ServeOptions& o) {
  HubConfig config;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const auto& kv : o.set) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::invalidArgument("--set takes key=value (e.g. --set http.threads=64), not '" +
                                     kv + "'");
    }
    overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!o.config_file.empty() || !overrides.empty()) {
    auto loaded = loadConfig(o.config_file, overrides);
    if (!loaded.isOk()) return loaded.status();
    config = loaded.value();
  }
  if (!o.data_dir.empty()) config.data_dir = o.data_dir;
  if (!o.http.empty()) config.http_listen = o.http;
  if (!o.plugins_dir.empty()) config.plugins_dir = o.plugins_dir;
  config.init = config.init || o.init;
  return config;
}

void blockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int waitForStopSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

namespace {

void addServeOptions(CLI::App* cmd, ServeOptions& o) {
  cmd->add_option("--config", o.config_file, "Properties file (e.g. ops/config/firehub.properties)")
      ->check(CLI::ExistingFile);
  cmd->add_option(
         "--data-dir", o.data_dir,
         "Data directory (overrides data.dir; default " + std::string(kDefaultDataDir) + ")")
      ->envname("FIREHUB_DATA_DIR");
  cmd->add_option("--http", o.http, "HTTP listen address HOST:PORT (overrides http.listen)");
  cmd->add_option("--plugins-dir", o.plugins_dir, "Plugin directory (overrides plugins.dir)");
  cmd->add_option("--set", o.set,
                  "A setting of the properties file, key=value (repeatable; after --config)");
  cmd->add_flag("--init", o.init,
                "Create a new, empty lake (and admin key) when the data dir has none; without it a "
                "missing lake is an error");
}

int serve(const ServeOptions& o) {
  auto config = resolveConfig(o);
  if (!config.isOk()) {
    std::cerr << "firehub: " << config.status().message() << "\n";
    return 2;
  }
  blockStopSignals();
  auto hub = Hub::start(config.value());
  if (!hub.isOk()) {
    std::cerr << "firehub: cannot start: " << hub.status().toString() << "\n";
    return 1;
  }
  FIREHUB_LOG(
      kInfo, "hub",
      "serving on http://" << (*hub)->httpAddress() << " (data dir " << config->data_dir << ")");
  int sig = waitForStopSignal();
  FIREHUB_LOG(kInfo, "hub", "signal " << sig << ": shutting down");
  (*hub)->stop();
  return 0;
}

int pluginsList(const std::string& dir_option) {
  std::string dir = dir_option.empty() ? defaultPluginsDir() : dir_option;
  if (log::level() == log::Level::kInfo) log::setLevel(log::Level::kError);  // the table says it
  plugin::ConnectorRegistry registry;
  auto found = registry.scanDirectory(dir);
  if (found.empty()) {
    std::cout << "no plugins in " << dir << "\n";
    return 0;
  }
  int refused = 0;
  for (const auto& p : found) {
    if (p.loaded) {
      std::printf("%-32s %-8s ABI %-4s %s\n", p.id.c_str(), p.version.c_str(), p.abi.c_str(),
                  p.file.c_str());
    } else {
      ++refused;
      std::printf("%-32s %-8s ABI %-4s %s\n", "(refused)", "-", p.abi.empty() ? "?" : p.abi.c_str(),
                  p.reason.c_str());
    }
  }
  return refused ? 3 : 0;
}

}  // namespace
}  // namespace firehub::cli

int main(int argc, char** argv) {
  using namespace firehub;
  if (const char* env = std::getenv("FIREHUB_LOG_LEVEL")) {
    log::Level l;
    if (log::parseLevel(env, l)) log::setLevel(l);
  }
  CLI::App app{"firehub: data exchange hub for fire and rescue services"};
  app.require_subcommand(1);
  app.set_version_flag(
      "--version", [] { return cli::versionText(); },
      "The version, git commit, build type and library versions");
  std::string log_level;
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.parse_complete_callback([&] {
    log::Level l;
    if (!log_level.empty() && log::parseLevel(log_level, l)) log::setLevel(l);
  });

  cli::ServeOptions serve_options;
  auto* serve = app.add_subcommand("serve", "Run the hub");
  cli::addServeOptions(serve, serve_options);
  serve->callback([&] { std::exit(cli::serve(serve_options)); });

  cli::ServeOptions demo_options;
  cli::DemoCityOptions city;
  auto* demo = app.add_subcommand(
      "demo", "Run the hub with the demo city around Shenyang (all agencies, live)");
  cli::addServeOptions(demo, demo_options);
  demo->add_option("--buildings", city.buildings, "Buildings")->check(CLI::Range(10, 1000000));
  demo->add_option("--water-sources", city.water_sources, "Water sources")
      ->check(CLI::Range(10, 100000));
  demo->add_option("--alarm-devices", city.alarm_devices, "GB/T 26875 devices")
      ->check(CLI::Range(1, 10000));
  demo->add_option("--stations", city.weather_stations, "Weather stations")
      ->check(CLI::Range(1, 2000));
  demo->add_option("--interval", city.weather_interval_s, "Seconds between weather rounds")
      ->check(CLI::Range(1, 3600));
  demo->callback([&] { std::exit(cli::runDemo(demo_options, city)); });

  auto* plugins = app.add_subcommand("plugins", "Inspect connector plugins");
  plugins->require_subcommand(1);
  std::string plugins_dir;
  auto* list = plugins->add_subcommand(
      "list", "List plugins: id, version, ABI, file (refused ones with the reason)");
  list->add_option("--dir", plugins_dir, "Plugin directory (default: the binary's ../plugins)");
  list->callback([&] { std::exit(cli::pluginsList(plugins_dir)); });
  cli::addNewPluginCommand(*plugins);

  cli::addIngestCommand(app);
  cli::addBenchCommand(app);
  cli::addFwiCommand(app);
  cli::addKeysCommand(app);
  cli::addAuditCommand(app);
  cli::addBackupCommands(app);
  cli::addExportCommand(app);
  cli::addFeedsCommand(app);
  cli::addGrantsCommand(app);
  cli::addDlqCommand(app);
  cli::addBrokerCommand(app);
  cli::addClusterCommand(app);

  CLI11_PARSE(app, argc, argv);
  return 0;
}
