// `firehub backup` (of a running hub, through its API, with progress), `firehub backup verify`
// and `firehub backup list` (offline, on the backup folder) and `firehub restore` (offline, into
// a new data dir).
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli.h"
#include "cli_client.h"
#include "firehub/lake.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

std::string mib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// Starts the backup, then prints its progress until it ends. The exit code.
int backupRunning(const HubTarget& t, const std::string& to) {
  Poco::JSON::Object body;
  body.set("to", to);
  std::ostringstream os;
  body.stringify(os);
  HubTarget quiet = t;
  quiet.json = true;
  std::ostringstream started;
  {
    auto* old = std::cout.rdbuf(started.rdbuf());  // the 202's state is read back below
    const int rc = call(quiet, "POST", "/api/v1/backups", os.str());
    std::cout.rdbuf(old);
    if (rc != 0) return rc;
  }
  std::string key;
  std::ifstream(t.keyFile()) >> key;
  std::cerr << "firehub backup: backing the lake up to <backup.root>/" << to << "\n";
  for (int i = 0; i < 24 * 3600; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    HttpReply reply;
    try {
      reply = httpRequest(t.hubUrl(), "GET", "/api/v1/backups", "", "", key);
    } catch (const Poco::Exception& e) {
      std::cerr << "firehub backup: the hub stopped answering: " << e.displayText() << "\n";
      return 1;
    }
    Poco::JSON::Object::Ptr s;
    try {
      s = Poco::JSON::Parser().parse(reply.body).extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception&) {
      std::cerr << "firehub backup: answer " << reply.status << ": " << reply.body << "\n";
      return 1;
    }
    if (s->optValue<bool>("running", false)) {
      std::cerr << "  " << mib(s->optValue<uint64_t>("bytes", 0)) << " copied\n";
      continue;
    }
    if (s->has("error")) {
      std::cerr << "firehub backup: failed: " << s->getValue<std::string>("error") << "\n";
      return 1;
    }
    if (t.json) {
      std::cout << reply.body << "\n";
    } else if (auto b = s->getObject("backup")) {
      std::cout << "backup " << b->getValue<uint32_t>("id") << " in <backup.root>/" << to << ": "
                << b->getValue<uint64_t>("files") << " files, "
                << mib(b->getValue<uint64_t>("bytes")) << "\n";
    }
    return 0;
  }
  return 1;
}

}  // namespace

void addBackupCommands(CLI::App& app) {
  static HubTarget target;
  static std::string to, dir, data_dir;
  static uint32_t id = 0;
  auto* backup = app.add_subcommand(
      "backup", "Back up a running hub's lake (admin; under its backup.root), verify, list");
  addHubOptions(backup, target);
  backup->add_option("--to", to,
                     "Folder under the hub's backup.root (incremental when it holds "
                     "earlier backups)");
  backup->callback([backup] {
    if (!backup->get_subcommands().empty()) return;
    if (to.empty()) {
      std::cerr << "firehub backup: --to NAME is required\n";
      std::exit(2);
    }
    std::exit(backupRunning(target, to));
  });
  auto* verify = backup->add_subcommand(
      "verify", "Check every file of a backup against its size and checksum (offline)");
  verify->add_option("dir", dir, "The backup folder")->required();
  verify->add_option("--id", id, "Which backup (default: the newest)");
  verify->callback([] {
    Status s = lake::verifyBackup(dir, id);
    if (!s.isOk()) {
      std::cerr << "firehub backup verify: " << s.toString() << "\n";
      std::exit(1);
    }
    std::cout << "intact\n";
    std::exit(0);
  });
  auto* list = backup->add_subcommand("list", "The backups in a folder (offline)");
  list->add_option("dir", dir, "The backup folder")->required();
  list->callback([] {
    auto all = lake::listBackups(dir);
    if (!all.isOk()) {
      std::cerr << "firehub backup list: " << all.status().toString() << "\n";
      std::exit(1);
    }
    for (const auto& b : all.value())
      std::cout << b.id << "  " << b.timestamp << "  " << b.files << " files  " << mib(b.bytes)
                << "\n";
    std::exit(0);
  });
  auto* restore = app.add_subcommand(
      "restore", "Restore a backup as the lake of a new data dir (offline; checked first)");
  restore->add_option("--from", dir, "The backup folder")->required();
  restore->add_option("--data-dir", data_dir, "The new hub's data dir (must hold no lake)")
      ->required();
  restore->add_option("--id", id, "Which backup (default: the newest)");
  restore->callback([] {
    Status s = lake::restoreBackup(dir, data_dir + "/lake", id);
    if (!s.isOk()) {
      std::cerr << "firehub restore: " << s.toString() << "\n";
      std::exit(1);
    }
    std::cout << "restored into " << data_dir << "/lake; start it with firehub serve --data-dir "
              << data_dir << " (the keys are the backed-up hub's)\n";
    std::exit(0);
  });
}

}  // namespace firehub::cli
