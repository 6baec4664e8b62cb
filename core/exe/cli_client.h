// How the CLI's subcommands reach a running hub: which hub and key (options and environment),
// one request, and its answer as a table (default) or JSON (--json).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace firehub::cli {

// The data dir every subcommand defaults to (serve, demo and the clients alike).
inline constexpr const char* kDefaultDataDir = "var/firehub";

struct HubTarget {
  std::string data_dir = kDefaultDataDir;  // --data-dir, FIREHUB_DATA_DIR
  std::string hub;       // --hub, FIREHUB_HUB; default: the address <data_dir>/http.address holds
  std::string key_file;  // --key-file, FIREHUB_KEY_FILE; default: <data_dir>/admin.key
  bool json = false;     // --json: the hub's JSON as it came, for scripts

  // The hub's URL; empty when neither --hub nor the data dir names one.
  std::string hubUrl() const;
  std::string keyFile() const { return key_file.empty() ? data_dir + "/admin.key" : key_file; }
};

// --data-dir, --hub, --key-file (also --admin-key-file) and --json, with their environment
// variables.
void addHubOptions(CLI::App* cmd, HubTarget& target);

// A column of a table: its header and the member it shows (a dotted path into each item).
struct Column {
  std::string header;
  std::string path;
};
// How to print an answer: the rows of its array `list` (a dotted path; every page, following
// `next`) in `columns`; with no list, the object's members one per line.
struct Shape {
  std::string list;
  std::vector<Column> columns;
  size_t max_rows = 0;  // 0: every page
  // Members printed one per line before the table ("name  value"; empty ones left out).
  std::vector<Column> summary;
};

// Sends one request to the hub and prints its answer. Errors name the hub and the key file.
// Returns the exit code: 0 for 2xx, 1 for an error answer or no answer, 2 for no hub or key.
int call(const HubTarget& target, const std::string& method, const std::string& path,
         const std::string& body, const Shape& shape = {});

// `text` percent-encoded as one path segment or query value ('/', '?', '#', '&', '=', '+', ':',
// ';', '@', '%', spaces and bytes outside ASCII encoded).
std::string uriComponent(const std::string& text);

// Whether a hub answers /healthz at the target's address.
bool hubAnswers(const HubTarget& target);

}  // namespace firehub::cli
