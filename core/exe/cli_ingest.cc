// `firehub ingest`: pushes a file into a feed, through a running hub (HTTP) or straight into a
// data dir (when no hub runs on it; Kafka publishing then happens at the next `serve`).
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "firehub/transport.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

struct IngestOptions {
  std::string feed;
  std::string file;
  std::string hub;
  std::string key_file;
  std::string data_dir;
  std::string config_file;
  std::string plugins_dir;
  std::string content_type;
  size_t chunk_bytes = 4u << 20;
};

void progress(size_t done, size_t total, uint64_t accepted, uint64_t rejected, uint64_t dups,
              double seconds) {
  std::fprintf(
      stderr,
      "\ringest: %.1f / %.1f MB (%3.0f%%)  accepted %llu  rejected %llu  duplicates %llu  %.1f s",
      done / 1e6, total / 1e6, total ? 100.0 * done / total : 100.0,
      static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected),
      static_cast<unsigned long long>(dups), seconds);
  std::fflush(stderr);
}

// Long: the two ways of ingesting a file (through a hub, into a stopped one) side by side.
int runIngest(const IngestOptions& o) {
  std::ifstream in(o.file, std::ios::binary);
  if (!in) {
    std::cerr << "firehub ingest: cannot read " << o.file << "\n";
    return 2;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string data = buffer.str();
  std::string type = o.content_type.empty() ? transport::contentTypeOfFile(o.file) : o.content_type;
  if (type.empty()) {
    std::cerr << "firehub ingest: cannot tell the format of " << o.file
              << "; pass --content-type text/csv|application/json|application/x-ndjson\n";
    return 2;
  }

  std::unique_ptr<Hub> hub;
  if (o.hub.empty()) {
    ServeOptions so{o.config_file, o.data_dir, "", o.plugins_dir};
    auto config = resolveConfig(so);
    if (!config.isOk()) {
      std::cerr << "firehub ingest: " << config.status().message() << "\n";
      return 2;
    }
    config->publish = false;
    config->serve_http = false;
    auto started = Hub::start(config.value());
    if (!started.isOk()) {
      std::cerr << "firehub ingest: " << started.status().toString()
                << "\n(is a hub running on this data dir? then use --hub http://HOST:PORT)\n";
      return 1;
    }
    hub = std::move(started).value();
  }

  std::string key;  // for --hub: the pushing agency's (or an operator's) API key
  if (!o.key_file.empty()) {
    std::ifstream in(o.key_file);
    std::getline(in, key);
    if (key.empty()) {
      std::cerr << "firehub ingest: no API key in " << o.key_file << "\n";
      return 2;
    }
  } else if (const char* env = std::getenv("FIREHUB_API_KEY")) {
    key = env;
  }
  uint64_t accepted = 0, rejected = 0, dups = 0;
  size_t done = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (const auto& piece : transport::splitBody(data, type, o.chunk_bytes)) {
    if (hub) {
      pipeline::IngestRequest req;
      req.feed_id = o.feed;
      req.body = piece;
      req.content_type = type;
      req.transport = "file";
      auto summary = hub->pipeline().ingest(req);
      if (!summary.isOk()) {
        std::cerr << "\nfirehub ingest: " << summary.status().toString() << "\n";
        return 1;
      }
      accepted += summary->accepted;
      rejected += summary->rejected;
      dups += summary->duplicates;
    } else {
      try {
        auto reply =
            httpRequest(o.hub, "POST", "/api/v1/feeds/" + o.feed + "/records", type, piece, key);
        if (reply.status != 202) {
          std::cerr << "\nfirehub ingest: HTTP " << reply.status << ": " << reply.body << "\n";
          return 1;
        }
        Poco::JSON::Parser parser;
        auto obj = parser.parse(reply.body).extract<Poco::JSON::Object::Ptr>();
        accepted += obj->getValue<uint64_t>("accepted");
        rejected += obj->getValue<uint64_t>("rejected");
        dups += obj->getValue<uint64_t>("duplicates");
      } catch (const Poco::Exception& e) {
        std::cerr << "\nfirehub ingest: " << o.hub << ": " << e.displayText() << "\n";
        return 1;
      }
    }
    done += piece.size();
    progress(std::min(done, data.size()), data.size(), accepted, rejected, dups, elapsed());
  }
  std::fprintf(stderr, "\n");
  std::printf("{\"accepted\": %llu, \"rejected\": %llu, \"duplicates\": %llu}\n",
              static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected),
              static_cast<unsigned long long>(dups));
  if (hub) hub->stop();
  return 0;
}

}  // namespace

void addIngestCommand(CLI::App& app) {
  static IngestOptions o;
  auto* cmd =
      app.add_subcommand("ingest", "Push a file into a feed (via a running hub or a data dir)");
  cmd->add_option("--feed", o.feed, "Feed id")->required();
  cmd->add_option("--file", o.file, "File to ingest (.csv, .json, .ndjson)")
      ->required()
      ->check(CLI::ExistingFile);
  auto* hub = cmd->add_option("--hub", o.hub, "URL of a running hub, e.g. http://127.0.0.1:8080");
  cmd->add_option("--data-dir", o.data_dir, "Data dir to write directly (no hub may run on it)")
      ->excludes(hub);
  cmd->add_option("--config", o.config_file, "Properties file (with --data-dir)")->excludes(hub);
  cmd->add_option("--plugins-dir", o.plugins_dir, "Plugin directory (with --data-dir)")
      ->excludes(hub);
  cmd->add_option("--key-file", o.key_file,
                  "File holding the API key for --hub (default: $FIREHUB_API_KEY)")
      ->needs(hub);
  cmd->add_option("--content-type", o.content_type,
                  "Override the format guessed from the extension");
  cmd->add_option("--chunk-bytes", o.chunk_bytes, "Bytes per push")
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20));
  cmd->callback([] {
    if (o.hub.empty() && o.data_dir.empty() && o.config_file.empty()) {
      std::cerr << "firehub ingest: pass --hub URL or --data-dir DIR\n";
      std::exit(2);
    }
    std::exit(runIngest(o));
  });
}

}  // namespace firehub::cli
