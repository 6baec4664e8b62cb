// The HTTP API (Poco): health, metrics, feeds, push, records, entities, plugins, Kafka info.
// Errors are JSON {"error": <code>, "detail": <reason>} with the matching 4xx/5xx status.
// @remark The server runs its own thread pool; everything in ApiContext must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <mutex>
#include <string>

#include "firehub/auth.h"
#include "firehub/bus.h"
#include "firehub/fusion.h"
#include "firehub/cluster.h"
#include "firehub/lake.h"
#include "firehub/metrics.h"
#include "firehub/net.h"
#include "firehub/pipeline.h"
#include "firehub/plugin.h"
#include "firehub/registry.h"
#include "firehub/status.h"
#include "firehub/subscriptions.h"
#include "firehub/tiers.h"
#include "firehub/transport.h"

namespace Poco {
class ThreadPool;
}

namespace firehub::api {

struct ApiOptions {
  // Address to listen on; port 0 picks a free port. Default: 127.0.0.1:8080.
  std::string listen = "127.0.0.1:8080";
  // Largest request body accepted, bytes. Default: 16 MiB.
  size_t max_body_bytes = 16u << 20;
  // HTTPS: PEM certificate (chain) and private key (http.tls.cert, http.tls.key). Both empty:
  // plain HTTP. Default: empty.
  std::string tls_cert;
  std::string tls_key;
  // Files of the one-map, served at /. Empty: no static files. Default: empty.
  std::string static_dir;
  // GeoJSON of the region's outlines (district boundaries), served at /api/v1/outlines.
  // Default: empty (404).
  std::string outlines_file;
  // Rendered cell-layer responses kept, cells' features kept as rendered, cells' polygons kept,
  // and spare render buffers kept, MiB (LayerCache). Defaults: 32, 64, 16 and 16.
  size_t layer_cache_mb = 32;
  size_t feature_cache_mb = 64;
  size_t polygon_cache_mb = 16;
  size_t spare_buffer_mb = 16;
  // Encoded vector tiles kept (compressed), MiB (api.tile_cache_mb). Default: 24.
  size_t tile_cache_mb = 24;
  // Worker threads (http.threads), the API's own pool; each open connection holds one while a
  // request is read or answered, each event stream for its whole life. Default: 256.
  int threads = 256;
  // Connections one client address may hold open at once (http.max_connections_per_client); past
  // it a connection gets a 503 and is closed. 0: no cap. Default: 64.
  size_t max_connections_per_client = 64;
  // Seconds a client may take for each read or write of a request (http.timeout_s), and an idle
  // keep-alive connection stays open (http.keep_alive_s). Defaults: 10, 5.
  int timeout_s = 10;
  int keep_alive_s = 5;
  // Over plain HTTP (idle and slow connections hold no thread there): seconds from a request's
  // first byte to the end of its head (http.header_timeout_s), and connections open at once over
  // every client (http.max_connections). Defaults: 10, 20000.
  int header_timeout_s = 10;
  size_t max_connections = 20000;
  // The one-map's basemap: an XYZ raster tile URL template ({z}/{x}/{y}) or a MapLibre style's URL
  // (a vector basemap; an intranet map service, its key in the URL) and its attribution
  // (map.basemap, map.basemap_attribution); the view it opens at, "lon,lat,zoom"
  // (map.initial_view). Defaults: none (no basemap; the data's extent).
  std::string basemap;
  std::string basemap_attribution;
  std::string initial_view;
  // How long a sign-in session lasts, hours (auth.session_hours). Default: 12.
  int session_hours = 12;
  // Pushes one feed may have in the hub at once, and one agency over all its feeds
  // (http.pushes_per_feed, http.pushes_per_agency): past them a push gets a 503 with
  // Retry-After at once instead of holding a thread, so one agency's flood leaves threads for
  // the others and for /healthz. Defaults: 4, 16.
  size_t pushes_per_feed = 4;
  size_t pushes_per_agency = 16;
  // Reverse proxies whose X-Forwarded-For names the client (http.trusted_proxies, CIDRs). A
  // request from anywhere else that carries forwarding headers is someone else's, forwarded: it
  // never counts as the anonymous loopback reader. Default: none.
  std::vector<net::Network> trusted_proxies;
};

// Backups of the running hub's lake (backups.cc): one at a time, in a folder under
// backup.root, on a thread of its own; its progress is read while it runs.
class BackupJobs {
 public:
  // `rate_limit_mb`: MiB a second the copy takes at most (backup.rate_limit_mb; 0: no limit).
  BackupJobs(lake::Lake& lake, std::string root, uint64_t rate_limit_mb = 0)
      : lake_(lake), root_(std::move(root)), rate_limit_mb_(rate_limit_mb) {}
  ~BackupJobs();
  bool enabled() const { return !root_.empty(); }
  // Starts a backup into <backup.root>/<name>; Conflict while one runs, InvalidArgument for a
  // name that is not one folder name.
  Status start(const std::string& name);
  // {"running", "to", "bytes", "started_at", "finished_at", "error", "backup": {...}}
  std::string stateJson() const;

 private:
  lake::Lake& lake_;
  const std::string root_;
  const uint64_t rate_limit_mb_;
  mutable std::mutex mu_;
  bool running_ = false;
  std::string to_, error_;
  uint64_t bytes_ = 0;
  int64_t started_ms_ = 0, finished_ms_ = 0;
  std::optional<lake::BackupInfo> done_;
  std::thread thread_;
};

// The lake's upkeep (upkeep.cc): retention on a thread of its own every interval, the lake's
// size by column family and the disk budget in /metrics and GET /api/v1/lake.
struct UpkeepOptions {
  lake::Retention rules;           // lake.retention.<domain>, .dead_letters, .layers
  int64_t audit_retention_s = 0;   // lake.retention.audit; 0: keep
  int interval_s = 3600;           // lake.retention.interval_s
  uint64_t disk_budget_bytes = 0;  // lake.disk_budget; 0: none (the disk's own free space only)
};
class LakeUpkeep {
 public:
  LakeUpkeep(lake::Lake& lake, auth::AuditLog* audit, Metrics& metrics, UpkeepOptions options);
  ~LakeUpkeep();
  void start();
  // One retention pass as of `now_micros` (what the thread runs; tests give their own clock).
  Result<lake::RetentionResult> runOnce(int64_t now_micros);
  // {"bytes": {family: n}, "total_bytes", "disk_budget_bytes", "disk_free_bytes",
  // "history_index_behind", "warnings": [...], "retention": {rules, last run and what it
  // removed}}; sets the gauges.
  std::string stateJson();
  // The lake's size by column family, the disk's free bytes and the warnings (near the budget,
  // the disk nearly full); sets the gauges.
  struct Measured {
    std::vector<std::pair<std::string, uint64_t>> families;
    uint64_t total = 0, disk_free = 0;
    uint64_t history_behind = 0;  // log sequences the history index has not reached yet
    std::vector<std::string> warnings;
  };
  Measured measure();

 private:
  lake::Lake& lake_;
  auth::AuditLog* audit_;
  UpkeepOptions options_;
  prometheus::Family<prometheus::Gauge>& bytes_;
  prometheus::Gauge& budget_;
  prometheus::Gauge& free_;
  prometheus::Gauge& history_behind_;
  prometheus::Family<prometheus::Counter>& removed_;
  std::mutex mu_;  // one pass at a time; guards the fields below
  int64_t last_run_ms_ = 0;
  std::string last_error_;
  lake::RetentionResult last_;
  uint64_t last_audit_ = 0;
  std::mutex wait_mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

struct ApiContext {
  lake::Lake* lake = nullptr;
  pipeline::Pipeline* pipeline = nullptr;
  registry::FeedRegistry* feeds = nullptr;
  plugin::ConnectorRegistry* connectors = nullptr;
  bus::Publisher* publisher = nullptr;         // may be null (no Kafka)
  cluster::Replica* replica = nullptr;         // cluster mode only
  const cluster::DutyGroup* duties = nullptr;  // cluster mode only
  std::string cluster_id, cluster_node;
  double cluster_max_lag_s = 30;  // /readyz is 503 while the replica is further behind
  // ingest.ack = replicated: a push is answered 202 once Kafka confirmed its records (every
  // outbox entry up to its commit delivered), 503 after ack_timeout_ms.
  bool ack_replicated = false;
  int ack_timeout_ms = 5000;
  fusion::FusionEngine* fusion = nullptr;  // may be null
  Metrics* metrics = nullptr;
  std::string kafka_bootstrap;
  bool kafka_embedded = false;
  std::string plugins_dir;
  // Scans plugins_dir for new connector libraries and activates feeds waiting for them.
  std::function<std::vector<plugin::PluginInfo>()> rescan_plugins;
  // API keys and the audit log; null keys = authentication off (every request acts as admin).
  auth::KeyStore* keys = nullptr;
  auth::AuditLog* audit = nullptr;
  // People who sign in with a name and password (the one-map's sign-in page).
  auth::UserStore* users = nullptr;
  subs::SubscriptionManager* subscriptions = nullptr;  // may be null
  // Readers from loopback without a key act as this role (auth.anonymous_loopback); empty: none.
  std::string anonymous_loopback = "viewer";
  // Records of the lake looked at past a full page to count an area's matches (numberMatched);
  // past this many the answer says "more" instead of a total (api.area_count_budget).
  size_t area_count_budget = 10000;
  // Stored state that did not load (feeds, keys, subscriptions, listeners): /readyz answers 503
  // naming each, and /metrics counts them.
  std::function<std::vector<std::string>()> load_failures;
  // Tiers: this hub's name and level (tier.name, tier.level), the child hubs it takes forwarded
  // records from (tier.children: the agencies of their keys), and its own link upward (null:
  // none).
  std::string tier_name, tier_level = "city";
  std::vector<std::string> tier_children;
  tiers::Upstream* upstream = nullptr;
  // The consumer of a Kafka source feed, if it is one (single hubs).
  std::function<std::optional<transport::KafkaSourceState>(const std::string& feed_id)>
      kafka_source;
  // What the hub may connect to for a request (outbound.allow, outbound.ca_file): a poll feed's
  // URL and an MQTT feed's broker are checked against it when they are registered.
  net::OutboundPolicy outbound;
  // The same for HTTP poll and MQTT source feeds.
  std::function<std::optional<transport::PollSourceState>(const std::string& feed_id)> poll_source;
  std::function<std::optional<transport::MqttSourceState>(const std::string& feed_id)> mqtt_source;
  // Backups (null or disabled when backup.root is not set).
  std::shared_ptr<BackupJobs> backups;
  // Retention and the lake's size (may be null).
  LakeUpkeep* upkeep = nullptr;
  // The TCP port a feed listens on, if any.
  std::function<std::optional<uint16_t>(const std::string& feed_id)> listen_port;
};

class DeltaStream;
class LayerCache;
class TileService;
class SearchIndex;
class EntityFollower;
class EventFront;
class StreamHub;
class LimitedHttpServer;
class PushShares;
class AuditGate;

// The lake's area indexes of the point layers (/api/v1/layers/<point layer>, the one-map, OGC):
// one per layer, holding the entities the layer draws, so an area read walks only them. The hub
// opens the lake with them; without them the layers walk their whole domain.
std::vector<lake::AreaIndex> pointLayerIndexes();

class ApiServer {
 public:
  ApiServer(ApiContext context, ApiOptions options);
  ~ApiServer();
  Status start();
  void stop();
  // The bound port (useful with port 0).
  uint16_t port() const { return port_; }
  std::string host() const { return host_; }
  // "http" or "https".
  const std::string& scheme() const { return scheme_; }

 private:
  ApiContext context_;
  ApiOptions options_;
  std::unique_ptr<DeltaStream> stream_;
  std::unique_ptr<LayerCache> layer_cache_;
  std::unique_ptr<TileService> tiles_;
  std::unique_ptr<SearchIndex> search_index_;
  std::unique_ptr<EntityFollower> follower_;  // keeps the tiles' points and the search current
  std::unique_ptr<PushShares> push_shares_;
  std::unique_ptr<AuditGate> audit_gate_;
  int listener_ = 0;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<LimitedHttpServer> server_;  // HTTPS
  std::unique_ptr<EventFront> front_;          // plain HTTP
  std::unique_ptr<StreamHub> streams_;
  std::string host_;
  std::string scheme_ = "http";
  uint16_t port_ = 0;
};

// HTTP status for a Status code.
int httpStatus(const Status& status);

}  // namespace firehub::api
