// `firehub plugins new NAME`: a new connector folder made from plugins/template/ — renamed
// class, C name and id, its own config schema title and README, the template's fixtures — and
// registered in connectors/CMakeLists.txt, so the next build compiles it and the conformance
// testkit checks it as it is.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "cli.h"

namespace firehub::cli {
namespace {

namespace fs = std::filesystem;

std::string readAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string camel(const std::string& name) {
  std::string out;
  bool up = true;
  for (char c : name) {
    if (c == '_') {
      up = true;
      continue;
    }
    out.push_back(up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c);
    up = false;
  }
  return out;
}

int newPlugin(const std::string& name, const std::string& source) {
  if (!std::regex_match(name, std::regex("[a-z][a-z0-9_]{1,30}")) || name == "template") {
    std::cerr
        << "firehub plugins new: NAME must match [a-z][a-z0-9_]{1,30} (e.g. forestry_bureau)\n";
    return 2;
  }
  fs::path root(source);
  fs::path from = root / "plugins" / "template";
  fs::path to = root / "connectors" / name;
  fs::path list = root / "connectors" / "CMakeLists.txt";
  if (!fs::exists(from / "template_connector.cc") || !fs::exists(list)) {
    std::cerr << "firehub plugins new: " << root
              << " is not a firehub source tree (use --source DIR)\n";
    return 2;
  }
  if (fs::exists(to)) {
    std::cerr << "firehub plugins new: " << to << " already exists\n";
    return 1;
  }
  std::error_code ec;
  fs::create_directories(to / "tests", ec);
  fs::copy(from / "tests", to / "tests", fs::copy_options::recursive, ec);
  if (ec) {
    std::cerr << "firehub plugins new: " << ec.message() << "\n";
    return 1;
  }
  auto rename = [&](std::string text) {
    text = replaceAll(text, "firehub.connector.template", "firehub.connector." + name);
    text = replaceAll(text, "TemplateConnector", camel(name) + "Connector");
    text = replaceAll(
        text, "\"Template connector: ", "\"" + camel(name) + " connector (from the template): ");
    text = replaceAll(text, "FIREHUB_DECLARE_CONNECTOR(template,",
                      "FIREHUB_DECLARE_CONNECTOR(" + name + ",");
    text = replaceAll(text, "template_connector.cc", name + "_connector.cc");
    text = replaceAll(text, "firehub_connector(template ", "firehub_connector(" + name + " ");
    return text;
  };
  std::ofstream(to / (name + "_connector.cc")) << rename(readAll(from / "template_connector.cc"));
  std::ofstream(to / "CMakeLists.txt") << rename(readAll(from / "CMakeLists.txt"));
  std::ofstream(to / "config.schema.json") << rename(readAll(from / "config.schema.json"));
  std::ofstream(to / "README.md")
      << "# " << camel(name) << " connector (`firehub.connector." << name << "`)\n\n"
      << "Made from the template: it reads NDJSON lines `{\"id\", \"lon\", \"lat\", \"time\", "
         "\"temp_c\"}`\n"
      << "and emits `WeatherObservation` records. Replace the mapping in `" << name
      << "_connector.cc` with\n"
      << "the agency's format, set the domain, declare every config key in `config.schema.json`, "
         "and\n"
      << "put the agency's own sample files in `tests/fixtures/` (`*.invalid.*` files must be "
         "rejected).\n";
  std::ofstream(list, std::ios::app) << "add_subdirectory(" << name << ")\n";
  std::cout
      << "created " << to.string() << " (firehub.connector." << name << ") and added it to "
      << list.string()
      << "\nbuild with ops/run.sh build; the conformance testkit runs over it in ops/run.sh test\n";
  return 0;
}

}  // namespace

void addNewPluginCommand(CLI::App& plugins) {
  static std::string name;
  static std::string source = ".";
  auto* cmd = plugins.add_subcommand(
      "new",
      "Create connectors/NAME from plugins/template (builds and passes the testkit as it is)");
  cmd->add_option("name", name, "Connector name, e.g. forestry_bureau")->required();
  cmd->add_option("--source", source, "The firehub source tree (default: the current directory)");
  cmd->callback([] { std::exit(newPlugin(name, source)); });
}

}  // namespace firehub::cli
