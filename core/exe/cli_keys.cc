// `firehub keys create|list|revoke` (through the running hub, with the admin key),
// `firehub feeds list|show|register|pause|resume|delete` (with any key allowed to) and
// `firehub dlq list|show|replay|discard` (operators, or an agency for its feeds) and
// `firehub audit verify` (offline on a data dir, or through the running hub).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "firehub/hub.h"
#include "cli_client.h"

namespace firehub::cli {
namespace {

struct KeyOptions {
  std::string role;
  std::string agency;
  std::string note;
  bool restricted = false;
  std::vector<std::string> domains;
  std::string id;
};

const Shape kKeys{"keys",
                  {{"ID", "id"},
                   {"ROLE", "role"},
                   {"AGENCY", "agency"},
                   {"DOMAINS", "domains"},
                   {"RESTRICTED", "restricted"},
                   {"REVOKED", "revoked"},
                   {"CREATED", "created_at"},
                   {"NOTE", "note"}}};
const Shape kFeeds{"feeds",
                   {{"ID", "id"},
                    {"AGENCY", "agency"},
                    {"CONNECTOR", "connector"},
                    {"STATE", "state"},
                    {"STALE", "stale"},
                    {"ACCEPTED", "counts.accepted"},
                    {"REJECTED", "counts.rejected"},
                    {"LAST RECORD", "last_record_at"}}};
const Shape kDeadLetters{
    "dead_letters",
    {{"ID", "id"}, {"FEED", "feed_id"}, {"STAGE", "stage"}, {"AT", "at"}, {"REASON", "reason"}}};
const Shape kGrants{"grants", {{"KEY", "key_id"}, {"TOPIC", "topic"}}};
const Shape kReplay{"results",
                    {{"ID", "id"},
                     {"FEED", "feed_id"},
                     {"RESOLVED", "resolved"},
                     {"ACCEPTED", "accepted"},
                     {"REASON", "reason"}}};

}  // namespace

void addKeysCommand(CLI::App& app) {
  static HubTarget admin;
  static KeyOptions k;
  auto* keys = app.add_subcommand("keys", "Create, list and revoke API keys (admin)");
  keys->require_subcommand(1);
  auto* create =
      keys->add_subcommand("create", "Create a key; it is printed once, only its hash is kept");
  create->add_option("--role", k.role, "admin, operator, agency, subscriber or viewer")->required();
  create->add_option("--agency", k.agency, "The agency an agency key acts for");
  create->add_option("--note", k.note, "What the key is for");
  create->add_flag("--restricted", k.restricted, "May see fields classified restricted");
  create->add_option("--domains", k.domains, "Domains an agency key may write, e.g. water,weather")
      ->delimiter(',');
  addHubOptions(create, admin);
  create->callback([] {
    Poco::JSON::Object o;
    o.set("role", k.role);
    if (!k.agency.empty()) o.set("agency", k.agency);
    if (!k.domains.empty()) {
      Poco::JSON::Array domains;
      for (const auto& d : k.domains) domains.add(d);
      o.set("domains", domains);
    }
    if (!k.note.empty()) o.set("note", k.note);
    o.set("restricted", k.restricted);
    std::ostringstream body;
    o.stringify(body);
    std::exit(call(admin, "POST", "/api/v1/keys", body.str()));
  });
  auto* domains = keys->add_subcommand("domains", "Set the domains an agency key may write");
  domains->add_option("id", k.id, "Key id (the 12 hex digits after fh_)")->required();
  domains->add_option("domains", k.domains,
                      "Domains, e.g. water weather (none: the key may write nothing)");
  addHubOptions(domains, admin);
  domains->callback([] {
    Poco::JSON::Object o;
    Poco::JSON::Array list;
    for (const auto& d : k.domains) list.add(d);
    o.set("domains", list);
    std::ostringstream body;
    o.stringify(body);
    std::exit(call(admin, "PATCH", "/api/v1/keys/" + k.id, body.str()));
  });
  auto* list = keys->add_subcommand("list", "List keys (ids, roles, agencies; never the keys)");
  addHubOptions(list, admin);
  list->callback([] { std::exit(call(admin, "GET", "/api/v1/keys", "", kKeys)); });
  auto* revoke = keys->add_subcommand("revoke", "Revoke a key by id");
  revoke->add_option("id", k.id, "Key id (the 12 hex digits after fh_)")->required();
  addHubOptions(revoke, admin);
  revoke->callback([] { std::exit(call(admin, "DELETE", "/api/v1/keys/" + k.id, "")); });
}

void addFeedsCommand(CLI::App& app) {
  static HubTarget admin;
  static std::string id, file;
  auto* feeds =
      app.add_subcommand("feeds", "The feed registry: list, show, register, pause, resume, delete");
  feeds->require_subcommand(1);
  auto keyed = [](CLI::App* cmd) { addHubOptions(cmd, admin); };
  auto* list =
      feeds->add_subcommand("list", "Every feed with its state, counts, cadence and staleness");
  keyed(list);
  list->callback([] { std::exit(call(admin, "GET", "/api/v1/feeds", "", kFeeds)); });
  auto* show = feeds->add_subcommand("show", "One feed's status");
  show->add_option("id", id, "Feed id")->required();
  keyed(show);
  show->callback([] { std::exit(call(admin, "GET", "/api/v1/feeds/" + id, "")); });
  auto* reg = feeds->add_subcommand(
      "register", "Register a feed from a JSON file (id, agency, connector, config, cadence_s)");
  reg->add_option("--file", file, "Feed definition (JSON)")->required()->check(CLI::ExistingFile);
  keyed(reg);
  reg->callback([] {
    std::ifstream in(file);
    std::stringstream body;
    body << in.rdbuf();
    std::exit(call(admin, "POST", "/api/v1/feeds", body.str()));
  });
  for (const char* action : {"pause", "resume", "delete"}) {
    auto* cmd = feeds->add_subcommand(
        action, std::string(action) == "delete"  ? "Delete a feed (its records stay in the lake)"
                : std::string(action) == "pause" ? "Pause a feed (pushes get 409)"
                                                 : "Resume a paused feed");
    cmd->add_option("id", id, "Feed id")->required();
    keyed(cmd);
    std::string a = action;
    cmd->callback([a] {
      if (a == "delete") std::exit(call(admin, "DELETE", "/api/v1/feeds/" + id, ""));
      std::exit(call(admin, "POST", "/api/v1/feeds/" + id + "/" + a, "{}"));
    });
  }
}

void addDlqCommand(CLI::App& app) {
  static HubTarget admin;
  static std::string feed;
  static std::vector<uint64_t> ids;
  static size_t limit = 0;
  auto* dlq = app.add_subcommand(
      "dlq", "Dead letters: list, show, replay through the current connector, discard");
  dlq->require_subcommand(1);
  auto keyed = [](CLI::App* cmd) { addHubOptions(cmd, admin); };
  auto* list = dlq->add_subcommand("list", "Dead letters, oldest first (raw bytes cut at 4 KiB)");
  list->add_option("--feed", feed, "Only this feed's");
  list->add_option("--limit", limit, "At most this many (default: all, page by page)")
      ->check(CLI::Range(1, 1000));
  keyed(list);
  list->callback([] {
    std::string path = "/api/v1/dlq?limit=" + std::to_string(limit ? limit : 1000);
    if (!feed.empty()) path += "&feed=" + feed;
    Shape shape = kDeadLetters;
    shape.max_rows = limit;
    std::exit(call(admin, "GET", path, "", shape));
  });
  auto* show = dlq->add_subcommand("show", "One dead letter with all its raw bytes");
  show->add_option("id", ids, "Dead letter id")->required()->expected(1);
  keyed(show);
  show->callback(
      [] { std::exit(call(admin, "GET", "/api/v1/dlq/" + std::to_string(ids.at(0)), "")); });
  auto* replay = dlq->add_subcommand(
      "replay",
      "Send dead letters through their feed's current connector again; those that now pass are "
      "stored and removed");
  replay->add_option("--feed", feed, "Every dead letter of this feed");
  replay->add_option("ids", ids, "Dead letter ids");
  keyed(replay);
  replay->callback([] {
    if (feed.empty() == ids.empty()) {
      std::cerr << "firehub dlq replay: give either --feed F or dead letter ids\n";
      std::exit(2);
    }
    std::string body;
    if (!feed.empty()) {
      body = R"({"feed":")" + feed + R"("})";
    } else {
      body = R"({"ids":[)";
      for (size_t i = 0; i < ids.size(); ++i) body += (i ? "," : "") + std::to_string(ids[i]);
      body += "]}";
    }
    std::exit(call(admin, "POST", "/api/v1/dlq/replay", body, kReplay));
  });
  auto* discard = dlq->add_subcommand("discard", "Remove a dead letter for good");
  discard->add_option("id", ids, "Dead letter id")->required()->expected(1);
  keyed(discard);
  discard->callback(
      [] { std::exit(call(admin, "DELETE", "/api/v1/dlq/" + std::to_string(ids.at(0)), "")); });
}

void addGrantsCommand(CLI::App& app) {
  static HubTarget admin;
  static std::string key_id, topic;
  auto* grants =
      app.add_subcommand("grants", "Which keys may subscribe to which topics (admin, operator)");
  grants->require_subcommand(1);
  auto* add = grants->add_subcommand("add", "Grant a key a topic");
  add->add_option("key_id", key_id, "Key id (the 12 hex digits after fh_)")->required();
  add->add_option("topic", topic, "Topic, e.g. firehub.v1.water")->required();
  addHubOptions(add, admin);
  add->callback([] {
    std::exit(call(admin, "POST", "/api/v1/grants",
                   R"({"key_id":")" + key_id + R"(","topic":")" + topic + R"("})"));
  });
  auto* list = grants->add_subcommand("list", "Every grant");
  addHubOptions(list, admin);
  list->callback([] { std::exit(call(admin, "GET", "/api/v1/grants", "", kGrants)); });
  auto* remove = grants->add_subcommand("remove", "Take a grant back");
  remove->add_option("key_id", key_id, "Key id")->required();
  remove->add_option("topic", topic, "Topic")->required();
  addHubOptions(remove, admin);
  remove->callback(
      [] { std::exit(call(admin, "DELETE", "/api/v1/grants/" + key_id + "/" + topic, "")); });
}

void addAuditCommand(CLI::App& app) {
  static HubTarget admin;
  static bool offline = false;
  auto* audit = app.add_subcommand("audit", "The hash-chained audit log");
  audit->require_subcommand(1);
  auto* verify =
      audit->add_subcommand("verify", "Check every link of the chain; name the first broken one");
  addHubOptions(verify, admin);
  verify->add_flag("--offline", offline,
                   "Open the data dir's lake directly (no hub may run on it)");
  verify->callback([] {
    // Through the running hub when one answers for the data dir (or --hub names one); else the
    // data dir's lake directly, as --offline does.
    if (!offline && (!admin.hub.empty() || hubAnswers(admin))) {
      std::exit(call(admin, "GET", "/api/v1/audit/verify", ""));
    }
    if (!offline) {
      std::cerr << "firehub audit verify: no hub answers for " << admin.data_dir
                << "; reading its lake directly\n";
    }
    lake::LakeOptions lo;
    lo.create_if_missing = false;
    lo.path = admin.data_dir + "/lake";
    lo.area_indexes =
        api::pointLayerIndexes();  // as the hub opens it (else the next start rebuilds them)
    auto lake = lake::Lake::open(lo);
    if (!lake.isOk()) {
      std::cerr << "firehub audit verify: " << lake.status().toString() << "\n";
      std::exit(2);
    }
    auth::AuditLog log(**lake);
    auto broken = log.verify();
    if (!broken.isOk()) {
      std::cerr << "firehub audit verify: " << broken.status().toString() << "\n";
      std::exit(2);
    }
    if (broken.value()) {
      std::cout << "broken: " << *broken.value() << "\n";
      std::exit(1);
    }
    std::cout << "intact\n";
    std::exit(0);
  });
}

void addClusterCommand(CLI::App& app) {
  static HubTarget admin;
  auto* cluster = app.add_subcommand("cluster", "A cluster node's replica (cluster mode)");
  cluster->require_subcommand(1);
  auto* status = cluster->add_subcommand(
      "status", "The node's cluster, acknowledgement and replica, and every node's lag and duties");
  addHubOptions(status, admin);
  status->callback([] {
    // This node's summary, then every node of the cluster as its heartbeat says (partitions:
    // --json).
    Shape shape{"nodes",
                {{"NODE", "node"},
                 {"HTTP", "http"},
                 {"APPLIED", "applied"},
                 {"LAG", "lag_records"},
                 {"LAG S", "lag_seconds"},
                 {"GAP", "gap"},
                 {"DUTIES", "duties"},
                 {"HEARTBEAT AGE S", "heartbeat_age_s"}}};
    shape.summary = {{"cluster", "cluster_id"},
                     {"node", "node"},
                     {"mode", "mode"},
                     {"ingest.ack", "ingest_ack"},
                     {"applied", "replica.applied"},
                     {"lag (records)", "replica.lag_records"},
                     {"lag (seconds)", "replica.lag_seconds"},
                     {"gap", "replica.gap"},
                     {"last error", "replica.last_error"}};
    std::exit(call(admin, "GET", "/api/v1/cluster", "", shape));
  });
  // A stopped node's lake made anew from a running peer (a lost disk, or a gap: offsets that
  // fell behind the topics' retention).
  static HubTarget node;
  static std::string peer;
  auto* rebuild = cluster->add_subcommand(
      "rebuild", "Make this (stopped) node's lake anew from a running peer's snapshot");
  rebuild->add_option("--from", peer, "The peer's HTTP address (http://host:port)")->required();
  addHubOptions(rebuild, node);
  rebuild->callback([] {
    std::string key;
    {
      std::ifstream in(node.keyFile());
      std::getline(in, key);
    }
    if (key.empty()) {
      std::cerr << "firehub cluster rebuild: no key in " << node.keyFile()
                << " (--key-file: an admin key the peer knows)\n";
      std::exit(2);
    }
    auto report = rebuildLakeFromPeer(peer, key, node.data_dir);
    if (!report.isOk()) {
      std::cerr << "firehub cluster rebuild: " << report.status().message() << "\n";
      std::exit(1);
    }
    std::cout << "lake of " << node.data_dir << " rebuilt from " << peer << ": " << report->files
              << " files, " << report->bytes << " bytes; " << report->dropped_deliveries
              << " pending deliveries of the peer dropped\n";
    if (!report->replaced.empty())
      std::cout << "the lake it replaced is kept at " << report->replaced << "\n";
    std::cout << "start the node: its replica goes on from the offsets the peer had applied\n";
    std::exit(0);
  });
}

}  // namespace firehub::cli
