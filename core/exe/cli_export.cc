// `firehub export`: a domain's (or a feed's, or one entity's) records in a time range from a
// running hub, page by page (GET /api/v1/records or .../history), into one file as NDJSON, CSV,
// GeoJSON or JSON, with progress on stderr.
#include <fstream>
#include <iostream>

#include "cli.h"
#include "cli_client.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

struct ExportArgs {
  std::string domain, feed, entity, type, from, to, format = "ndjson", out;
  int page = 5000;
};

// The items of a JSON or GeoJSON page: the text between its array's brackets (the hub writes the
// array first and the counts after it).
std::string itemsOf(const std::string& body, const std::string& array) {
  const std::string open = "\"" + array + "\":[";
  const size_t start = body.find(open);
  const size_t end = body.rfind("],\"numberReturned\"");
  if (start == std::string::npos || end == std::string::npos || end < start + open.size())
    return "";
  return body.substr(start + open.size(), end - start - open.size());
}

int runExport(const HubTarget& t, const ExportArgs& a) {
  const std::string base = t.hubUrl();
  if (base.empty()) {
    std::cerr << "firehub export: no hub (--hub URL, or a --data-dir with http.address)\n";
    return 2;
  }
  std::string key;
  std::ifstream(t.keyFile()) >> key;
  std::string path = a.entity.empty() ? "/api/v1/records"
                                      : "/api/v1/entities/" + uriComponent(a.domain) + "/" +
                                            uriComponent(a.entity) + "/history";
  auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    path += (path.find('?') == std::string::npos ? "?" : "&") + std::string(name) + "=" +
            uriComponent(value);
  };
  if (a.entity.empty()) add("domain", a.domain);
  add("feed", a.feed);
  add("type", a.type);
  add("from", a.from);
  add("to", a.to);
  add("format", a.format);
  add("limit", std::to_string(a.page));
  std::ofstream file;
  if (!a.out.empty()) {
    file.open(a.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "firehub export: cannot write " << a.out << "\n";
      return 2;
    }
  }
  std::ostream& out = a.out.empty() ? std::cout : file;
  const bool wrapped = a.format == "json" || a.format == "geojson";
  const std::string array = a.format == "json" ? "records" : "features";
  if (a.format == "geojson") out << R"({"type":"FeatureCollection","features":[)";
  if (a.format == "json") out << R"({"records":[)";
  std::string cursor;
  uint64_t pages = 0, bytes = 0;
  bool first_items = true;
  while (true) {
    HttpReply reply;
    try {
      reply =
          httpRequest(base, "GET", path + (cursor.empty() ? "" : "&cursor=" + cursor), "", "", key);
    } catch (const Poco::Exception& e) {
      std::cerr << "firehub export: " << base << " did not answer: " << e.displayText() << "\n";
      return 1;
    }
    if (reply.status != 200) {
      std::cerr << "firehub export: HTTP " << reply.status << ": " << reply.body << "\n";
      return 1;
    }
    ++pages;
    if (wrapped) {
      std::string items = itemsOf(reply.body, array);
      if (!items.empty()) {
        out << (first_items ? "" : ",") << items;
        first_items = false;
      }
    } else if (a.format == "csv" && pages > 1) {
      out << reply.body.substr(reply.body.find('\n') + 1);  // the header once
    } else {
      out << reply.body;
    }
    bytes += reply.body.size();
    std::cerr << "firehub export: page " << pages << ", " << (bytes >> 10) << " KiB\n";
    if (reply.next_cursor.empty()) break;
    cursor = reply.next_cursor;
  }
  if (wrapped) out << "]}\n";
  out.flush();
  if (!out) {
    std::cerr << "firehub export: writing failed\n";
    return 1;
  }
  std::cerr << "firehub export: done, " << pages << " pages\n";
  return 0;
}

}  // namespace

void addExportCommand(CLI::App& app) {
  static HubTarget target;
  static ExportArgs args;
  auto* cmd = app.add_subcommand(
      "export", "Records of a domain, feed or entity in a time range, from a running hub");
  addHubOptions(cmd, target);
  cmd->add_option("--domain", args.domain, "The domain (weather, alarm, building, ...)")
      ->required();
  cmd->add_option("--feed", args.feed, "Only this feed's records");
  cmd->add_option("--entity", args.entity, "Only this entity's versions (its id)");
  cmd->add_option("--type", args.type, "The entity's type, when its id is used by several");
  cmd->add_option("--from", args.from, "From this time on (RFC 3339, inclusive)");
  cmd->add_option("--to", args.to, "Before this time (RFC 3339, exclusive)");
  cmd->add_option("--format", args.format, "ndjson (default), csv, geojson or json")
      ->check(CLI::IsMember({"ndjson", "csv", "geojson", "json"}));
  cmd->add_option("--out", args.out, "The file to write (default: standard output)");
  cmd->add_option("--page", args.page, "Records per request (1..10000)")
      ->check(CLI::Range(1, 10000));
  cmd->callback([] { std::exit(runExport(target, args)); });
}

}  // namespace firehub::cli
