// The cluster routes: this node's place in its cluster, and a snapshot of its lake for a node
// that rebuilds from it.
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Zip/Compress.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "firehub/log.h"
#include "paging.h"
#include "router.h"

namespace firehub::api {

void Router::cluster(HTTPServerResponse& resp) {
  Poco::JSON::Object obj;
  obj.set("cluster_id", ctx_.cluster_id);
  obj.set("node", ctx_.cluster_node);
  obj.set("mode", ctx_.replica ? "cluster" : "single");
  obj.set("ingest_ack", ctx_.ack_replicated ? "replicated" : "local");
  if (ctx_.replica) {
    const auto st = ctx_.replica->state();
    Poco::JSON::Object r;
    r.set("running", st.running);
    r.set("assigned", st.assigned);
    r.set("applied", st.applied);
    r.set("duplicates", st.duplicates);
    r.set("refused", st.refused);
    r.set("lag_records", st.lag_records);
    r.set("lag_seconds", std::round(st.lag_seconds * 1000) / 1000);
    if (st.last_applied_ms > 0) r.set("last_applied_at", isoMillis(st.last_applied_ms));
    if (!st.last_error.empty()) r.set("last_error", st.last_error);
    if (!st.gap.empty()) r.set("gap", st.gap);
    Poco::JSON::Array parts;
    for (const auto& p : st.partitions) {
      Poco::JSON::Object o;
      o.set("topic", p.topic);
      o.set("partition", p.partition);
      o.set("next_offset", p.next_offset);
      if (p.high_watermark >= 0) o.set("high_watermark", p.high_watermark);
      o.set("lag", p.lag());
      parts.add(o);
    }
    r.set("partitions", parts);
    obj.set("replica", r);
    // Every node's last heartbeat (shared every 5 s, and at once when its duties change): the
    // cluster as this node sees it; a duty's holder is the node whose claim is the latest.
    std::map<std::string, std::pair<std::string, uint64_t>> holders;  // duty -> node, epoch
    Poco::JSON::Array nodes;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    Status scanned = ctx_.lake->scanMeta("nodes/", [&](const std::string&, const std::string& v) {
      try {
        Poco::JSON::Parser parser;
        auto beat = parser.parse(v).extract<Poco::JSON::Object::Ptr>();
        Poco::JSON::Object n;
        const int64_t at = beat->optValue<int64_t>("at_ms", 0);
        n.set("node", beat->optValue<std::string>("node", ""));
        n.set("http", beat->optValue<std::string>("http", ""));
        n.set("applied", beat->optValue<uint64_t>("applied", 0));
        n.set("lag_records", beat->optValue<int64_t>("lag_records", 0));
        n.set("lag_seconds", beat->optValue<double>("lag_seconds", 0));
        n.set("gap", beat->optValue<bool>("gap", false));
        Poco::JSON::Array held;
        if (auto duties = beat->getObject("duties")) {
          for (const auto& name : duties->getNames()) {
            held.add(name);
            const uint64_t epoch = duties->getObject(name)->optValue<uint64_t>("epoch", 0);
            auto& best = holders[name];
            if (epoch > best.second) best = {n.getValue<std::string>("node"), epoch};
          }
        }
        n.set("duties", held);
        n.set("heartbeat_at", isoMillis(at));
        n.set("heartbeat_age_s", std::round((now - at) / 100.0) / 10);
        nodes.add(n);
      } catch (const Poco::Exception&) {  // a heartbeat of another version: left out
      }
    });
    if (!scanned.isOk()) return sendError(resp, scanned);
    obj.set("nodes", nodes);
    if (ctx_.duties) {  // this node's own view is the freshest for itself
      for (const auto& d : ctx_.duties->state()) {
        if (d.current) holders[cluster::dutyName(d.duty)] = {ctx_.cluster_node, d.epoch};
      }
    }
    Poco::JSON::Array duties;
    for (int i = 0; i < cluster::kDutyCount; ++i) {
      const char* name = cluster::dutyName(static_cast<cluster::Duty>(i));
      Poco::JSON::Object d;
      d.set("duty", name);
      auto it = holders.find(name);
      if (it != holders.end()) {
        d.set("node", it->second.first);
        d.set("epoch", it->second.second);
      } else {
        d.set("node", Poco::Dynamic::Var());
      }
      duties.add(d);
    }
    obj.set("duties", duties);
  }
  send(resp, 200, toJson(obj));
}

// A consistent copy of this node's lake (a RocksDB checkpoint: hard links where it can) as one
// zip, for `firehub cluster rebuild` on a node whose lake is gone or has a gap. The copy is
// removed once sent.
void Router::clusterSnapshot(HTTPServerResponse& resp) {
  if (!ctx_.replica)
    return sendError(resp, Status::failedPrecondition("a snapshot is for cluster mode"));
  const auto stamp = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const std::filesystem::path dir = std::filesystem::path(ctx_.lake->path()).parent_path() /
                                    "snapshots" / ("lake-" + std::to_string(stamp));
  std::error_code ec;
  std::filesystem::create_directories(dir.parent_path(), ec);
  Status made = ctx_.lake->checkpoint(dir.string());
  if (!made.isOk()) return sendError(resp, made);
  struct Remove {
    std::filesystem::path dir;
    ~Remove() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } remove{dir};
  resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
  resp.setContentType("application/zip");
  resp.set("Content-Disposition", "attachment; filename=\"" + ctx_.cluster_node + "-lake.zip\"");
  resp.setChunkedTransferEncoding(true);
  try {
    std::ostream& out = resp.send();
    Poco::Zip::Compress zip(out, /*seekable=*/false);
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      // Table files are compressed already: stored as they are.
      const bool table = entry.path().extension() == ".sst";
      zip.addFile(Poco::Path(entry.path().string()), Poco::Path(entry.path().filename().string()),
                  table ? Poco::Zip::ZipCommon::CM_STORE : Poco::Zip::ZipCommon::CM_DEFLATE,
                  Poco::Zip::ZipCommon::CL_NORMAL);
    }
    zip.close();
    FIREHUB_LOG(kInfo, "cluster", "lake snapshot sent to " << who_.key_id);
  } catch (const Poco::Exception& e) {  // the reader went away: nothing more to send
    FIREHUB_LOG(kWarning, "cluster", "lake snapshot not sent whole: " << e.displayText());
  }
}

}  // namespace firehub::api
