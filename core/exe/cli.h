// Sub-commands of the firehub executable. Each returns the process exit code.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "demo_city.h"
#include "firehub/hub.h"

namespace firehub::cli {

struct ServeOptions {
  std::string config_file;
  std::string data_dir;
  std::string http;
  std::string plugins_dir;
  bool init = false;             // create a new lake when the data dir has none
  std::vector<std::string> set;  // key=value settings on top of the config file
};

// Loads the config file (if any) and applies command-line overrides.
Result<HubConfig> resolveConfig(const ServeOptions& options);
// Blocks SIGINT/SIGTERM in every thread; call before starting any thread.
void blockStopSignals();
// Waits for SIGINT/SIGTERM; returns the signal number.
int waitForStopSignal();

void addIngestCommand(CLI::App& app);
void addFwiCommand(CLI::App& app);
void addKeysCommand(CLI::App& app);
void addAuditCommand(CLI::App& app);
void addFeedsCommand(CLI::App& app);
void addGrantsCommand(CLI::App& app);
void addDlqCommand(CLI::App& app);
void addBrokerCommand(CLI::App& app);
void addClusterCommand(CLI::App& app);
// `firehub backup` (with verify, list) and `firehub restore`.
void addBackupCommands(CLI::App& app);
void addExportCommand(CLI::App& app);
// `firehub plugins new NAME` (registered under the plugins command).
void addNewPluginCommand(CLI::App& plugins);
// Runs the hub with the demo city until a stop signal.
int runDemo(const ServeOptions& options, const DemoCityOptions& city);

}  // namespace firehub::cli
