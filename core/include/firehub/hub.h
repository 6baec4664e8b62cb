// The hub: every module wired together in the one direction data flows
// (transport -> pipeline -> lake -> publisher / api). `firehub serve` and the end-to-end tests
// run exactly this.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "firehub/api.h"
#include "firehub/auth.h"
#include "firehub/bus.h"
#include "firehub/fusion.h"
#include "firehub/lake.h"
#include "firehub/metrics.h"
#include "firehub/net.h"
#include "firehub/pipeline.h"
#include "firehub/plugin.h"
#include "firehub/registry.h"
#include "firehub/cluster.h"
#include "firehub/status.h"
#include "firehub/subscriptions.h"
#include "firehub/transport.h"

namespace firehub {

struct HubConfig {
  // Where the lake and the hub's state files live (made mode 0700). Default: var/firehub.
  std::string data_dir = "var/firehub";
  // Create a new lake (and admin key) when data_dir has none (`serve --init`, the demo). Without
  // it a missing or unreadable lake is a start-up error: a lake moved away or damaged must never
  // be replaced silently by an empty one. Default: false.
  bool init = false;
  // The only directory file-drop folders may lie under (file_drop.root), set by operators; never
  // the data dir or inside it. Empty: no feed may have a file drop. Default: empty.
  std::string file_drop_root;
  // The folder backups are made under (backup.root): `firehub backup --to NAME` backs the
  // running hub's lake up to <backup.root>/NAME. Default: none (backups through the API off).
  std::string backup_root;
  // MiB a second a backup copies at most (backup.rate_limit_mb; 0: as fast as the disk goes), so
  // the synced commits of pushes meanwhile keep their latency. Default: 16.
  uint64_t backup_rate_limit_mb = 16;
  // Retention (lake.retention.<domain> and lake.retention.dead_letters / .layers / .audit, each a
  // duration such as 90d, 12h, 30m or 3600s): history older than the window is removed, never
  // an entity's latest state nor what a delivery or a log reader still needs; the audit log keeps
  // an anchor of what went. lake.retention.interval_s: how often it runs. Default: keep all, 3600.
  lake::Retention retention;
  int64_t audit_retention_s = 0;
  int retention_interval_s = 3600;
  // lake.disk_budget (bytes, or with MiB, GiB, TiB): the lake's size past 80 % of it warns (log,
  // GET /api/v1/lake, firehub_lake_bytes against firehub_lake_disk_budget_bytes). Default: none.
  uint64_t disk_budget_bytes = 0;
  // Special networks (loopback, private, link-local) webhooks may reach anyway
  // (outbound.allow, comma-separated CIDRs), and the CAs HTTPS receivers are checked against
  // (outbound.ca_file; empty: the system's). Default: none, empty.
  std::vector<net::Network> outbound_allow;
  std::string outbound_ca_file;
  // HTTP listen address. Default: 127.0.0.1:8080.
  std::string http_listen = "127.0.0.1:8080";
  // Kafka bootstrap servers; empty starts the embedded broker. Default: empty.
  std::string kafka_bootstrap;
  // librdkafka properties from kafka.* keys (other than bootstrap.servers). Default: none.
  std::map<std::string, std::string> kafka_properties;
  // Cluster mode (cluster.id, cluster.node): hubs with the same cluster id share the Kafka
  // cluster of kafka.bootstrap.servers (required then) and each keeps a replica of the whole
  // lake (firehub/cluster.h). Empty id: a single hub, as without it. Default: empty.
  std::string cluster_id;
  std::string cluster_node;
  // /readyz answers 503 while the replica is more than this many seconds behind
  // (cluster.max_lag_s). Default: 30.
  double cluster_max_lag_s = 30;
  // How long the group waits for a silent node before its singleton duties move to another
  // (cluster.session_timeout_ms; Kafka's group session timeout, within the brokers' limits).
  // Default: 6000.
  int cluster_session_timeout_ms = 6000;
  // When a push is answered 202 (ingest.ack): "local" once its records are durable in this hub's
  // lake; "replicated" once Kafka also confirmed them (a successful delivery report of every
  // record up to the push's), or 503 after ingest.ack_timeout_ms (what was stored still goes
  // out). Default: local; replicated in cluster mode.
  std::string ingest_ack;
  int ingest_ack_timeout_ms = 5000;
  // Mock brokers of the embedded broker. Default: 3.
  int embedded_brokers = 3;
  // Partitions of topics created on the embedded broker. Default: 6.
  int embedded_partitions = 6;
  // Directory scanned for connector plugins. Default: <binary dir>/../plugins.
  std::string plugins_dir;
  // Seconds between scans of plugins_dir for new connector libraries (plugins.scan_interval_s);
  // 0: only at start and on POST /api/v1/plugins/rescan. Default: 30.
  int plugin_scan_interval_s = 30;
  // How often file-drop directories are looked at (file_drop.poll_ms), milliseconds.
  int file_drop_poll_ms = 1000;
  // Directory of feed definitions applied at start (*.json). Default: none.
  std::string feeds_dir;
  // S2 level of the fusion grid. Default: 15.
  int cell_level = 15;
  // Threads for recomputing many cells at once (fusion.threads); 0 = the machine's cores.
  int fusion_threads = 0;
  // Risk model and warning drafts (risk.*, warnings.*). Default: RiskConfig's defaults.
  fusion::RiskConfig risk;
  // Local time of the fire weather day and of CAP times, minutes east of UTC
  // (fusion.utc_offset_minutes). Default: 480 (UTC+8).
  int local_offset_minutes = 480;
  // fsync the lake's WAL on each commit. Default: true.
  bool lake_sync = true;
  // Memory of the hub's caches and buffers together, MiB (memory.cache_mb): each takes its share
  // (see MemoryPlan) unless given a size of its own below. The lake's data, fusion's cells and
  // the connectors come on top. Default: 288.
  size_t cache_budget_mb = 288;
  // Sizes given explicitly; unset: the cache's share of cache_budget_mb.
  // Memtables of the lake, MiB (lake.write_buffer_mb, at least 8).
  std::optional<size_t> lake_write_buffer_mb;
  // Block cache of the lake's reads, MiB (lake.block_cache_mb).
  std::optional<size_t> lake_block_cache_mb;
  // Recently committed records kept in memory, MiB (lake.record_cache_mb; 0: off).
  std::optional<size_t> lake_record_cache_mb;
  // Latest pointers of recently written entities kept in memory (lake.latest_cache_entries).
  std::optional<size_t> lake_latest_cache_entries;
  // HTTPS certificate and key, PEM (http.tls.cert, http.tls.key). Default: empty (HTTP).
  std::string tls_cert;
  std::string tls_key;
  // The one-map's files (http.static_dir). Default: <binary dir>/../share/onemap.
  std::string static_dir;
  // Tiers (firehub/tiers.h): this hub's name and level (tier.name, tier.level: county, city or
  // province), the child hubs it takes forwarded records from (tier.children: the agencies of
  // the keys it issued to them), and its own link to its parent (upstream.url, upstream.key_file,
  // upstream.domains, upstream.area, upstream.restricted, upstream.batch). Defaults: no name,
  // city, no children, no parent.
  std::string tier_name;
  std::string tier_level = "city";
  std::vector<std::string> tier_children;
  std::string upstream_url;
  std::string upstream_key_file;
  std::vector<std::string> upstream_domains;
  std::string upstream_area;
  bool upstream_restricted = false;
  size_t upstream_batch = 2000;
  // How often the parent's warnings are read (upstream.down_interval_s). Default: 10.
  int upstream_down_interval_s = 10;
  // The longest wait between tries while the parent cannot be reached
  // (upstream.max_backoff_s). Default: 30.
  int upstream_max_backoff_s = 30;
  // Layers the parent sends down (upstream.layers: "risk", served as parent_risk). Default: none.
  std::vector<std::string> upstream_layers;
  // Region outlines GeoJSON for the map (map.outlines). Default: none (the map draws none; the
  // demo sets its schematic districts).
  std::string outlines_file;
  // Require API keys (auth.enabled). The first start writes an admin key to
  // <data.dir>/admin.key. Default: true.
  bool auth_enabled = true;
  // Role of readers from loopback without a key (auth.anonymous_loopback); "none" for no
  // anonymous access. Default: viewer.
  std::string anonymous_loopback = "viewer";
  // Records looked at past a full page of a point layer or collection to count the area's
  // matches; past it the answer says "more" instead of numberMatched (api.area_count_budget).
  // Default: 10000.
  size_t area_count_budget = 10000;
  // Rendered cell-layer responses kept for maps that ask again (api.layer_cache_mb), and cells'
  // features kept as rendered (api.feature_cache_mb), MiB; unset: their shares of
  // cache_budget_mb.
  std::optional<size_t> layer_cache_mb;
  std::optional<size_t> feature_cache_mb;
  // Encoded vector tiles kept for maps (api.tile_cache_mb), MiB; unset: its share.
  std::optional<size_t> tile_cache_mb;
  // Largest HTTP request body. Default: 16 MiB.
  size_t max_body_bytes = 16u << 20;
  // The HTTP server's threads, connection cap per client, time limits and push shares
  // (http.threads, http.max_connections_per_client, http.timeout_s, http.keep_alive_s,
  // http.pushes_per_feed, http.pushes_per_agency). Defaults: ApiOptions'.
  api::ApiOptions http_limits;
  // How long a push waits for the same feed's previous one before 503, and after which a
  // connector still decoding one body is reported blocked (pipeline.busy_timeout_ms). Default 10 s.
  int64_t busy_timeout_ms = 10000;
  // How long shutdown waits for the outbox to drain. Default: 10000 ms.
  int drain_timeout_ms = 10000;
  // Run Kafka publishing. Off for offline work on a data dir (`firehub ingest --data-dir`): the
  // outbox then waits for the next `firehub serve`. Default: true.
  bool publish = true;
  // Serve HTTP. Default: true.
  bool serve_http = true;
};

// What each cache and buffer of a hub may hold: the sizes given in the config, and for the rest
// their shares of its cache budget (memory.cache_mb): lake memtables 33 %, lake block cache 14 %,
// recent records 14 %, latest pointers 3 %, cell-layer responses 8 %, cell features 10 %, cell
// polygons 5 %, spare render buffers 5 %, vector tiles 8 %.
struct MemoryPlan {
  size_t lake_write_buffer_mb = 0;
  size_t lake_block_cache_mb = 0;
  size_t lake_record_cache_mb = 0;
  size_t lake_latest_cache_entries = 0;
  size_t layer_cache_mb = 0;
  size_t feature_cache_mb = 0;
  size_t polygon_cache_mb = 0;
  size_t spare_buffer_mb = 0;
  size_t tile_cache_mb = 0;
  // Each part's cap in bytes, named as firehub_memory_bytes names it.
  std::vector<std::pair<std::string, size_t>> parts() const;
  size_t totalBytes() const;
};
MemoryPlan memoryPlan(const HubConfig& config);

// Reads a properties file (Kafka-style keys: data.dir, http.listen, kafka.*, plugins.dir, ...;
// none when `file` is empty), then `overrides` (key, value) on top, as `serve --set` gives them.
// A key no setting reads is an error that names it.
Result<HubConfig> loadConfig(
    const std::string& file,
    const std::vector<std::pair<std::string, std::string>>& overrides = {});

class Hub {
 public:
  // Opens the lake, loads plugins (and `static_connectors`), starts Kafka (embedded or not), the
  // publisher and the HTTP server. Writes <data.dir>/kafka.bootstrap and <data.dir>/http.address.
  static Result<std::unique_ptr<Hub>> start(
      const HubConfig& config,
      const std::vector<const fh_connector_descriptor*>& static_connectors = {});
  ~Hub();
  // Stops accepting requests, drains the outbox (bounded), closes the lake.
  void stop();

  uint16_t httpPort() const { return api_ ? api_->port() : 0; }
  std::string httpAddress() const;
  const std::string& kafkaBootstrap() const { return bootstrap_; }
  // Cluster mode: this node's replica (null otherwise).
  const cluster::Replica* replica() const { return replica_.get(); }
  // Cluster mode: the singleton duties this node holds (null otherwise).
  const cluster::DutyGroup* duties() const { return duties_.get(); }
  bus::EmbeddedBroker* embeddedBroker() { return broker_.get(); }
  lake::Lake& lake() { return *lake_; }
  pipeline::Pipeline& pipeline() { return *pipeline_; }
  registry::FeedRegistry& feeds() { return *feeds_; }
  plugin::ConnectorRegistry& connectors() { return connectors_; }
  bus::Publisher* publisher() { return publisher_.get(); }
  transport::TcpListeners* tcp() { return tcp_.get(); }
  transport::FileDrops* fileDrops() { return drops_.get(); }
  fusion::FusionEngine* fusion() { return fusion_.get(); }
  auth::KeyStore& keys() { return *keys_; }
  auth::AuditLog& audit() { return *audit_; }
  subs::SubscriptionManager* subscriptions() { return subs_.get(); }
  // The admin key file (<data.dir>/admin.key).
  std::string adminKeyFile() const;
  // The admin key from that file; empty when auth is off or the file is missing.
  std::string adminKey() const;

 private:
  Hub() = default;
  Status startPublisher();
  Status startApi();
  Status startUpstream();
  HubConfig config_;
  MemoryPlan memory_;  // memoryPlan(config_)
  Metrics metrics_;
  plugin::ConnectorRegistry connectors_;
  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<registry::FeedRegistry> feeds_;
  std::unique_ptr<pipeline::Pipeline> pipeline_;
  std::unique_ptr<transport::TcpListeners> tcp_;
  std::unique_ptr<transport::FileDrops> drops_;
  std::unique_ptr<transport::KafkaSources> kafka_sources_;
  std::unique_ptr<transport::HttpPolls> polls_;
  std::unique_ptr<transport::MqttSources> mqtt_sources_;
  std::unique_ptr<bus::EmbeddedBroker> broker_;
  std::unique_ptr<bus::Publisher> publisher_;
  std::unique_ptr<cluster::Replica> replica_;
  std::unique_ptr<cluster::ConfigPublisher> config_publisher_;
  std::unique_ptr<cluster::DutyGroup> duties_;
  cluster::ReplicaOptions replicaOptions() const;
  std::unique_ptr<fusion::FusionEngine> fusion_;
  std::unique_ptr<auth::KeyStore> keys_;
  std::unique_ptr<auth::UserStore> users_;
  std::unique_ptr<auth::AuditLog> audit_;
  std::unique_ptr<subs::SubscriptionManager> subs_;
  std::unique_ptr<tiers::Upstream> upstream_;
  std::vector<plugin::PluginInfo> rescanPlugins();
  std::thread plugin_scanner_;
  std::mutex scanner_mu_;
  std::condition_variable scanner_cv_;
  bool scanner_stop_ = false;
  std::unique_ptr<api::LakeUpkeep> upkeep_;
  std::unique_ptr<api::ApiServer> api_;
  std::string bootstrap_;
  bool stopped_ = false;
  std::vector<std::string> load_failures_;  // stored state that did not load (keys), for /readyz
};

// Directory of the running executable's plugins: <dir of /proc/self/exe>/../plugins.
std::string defaultPluginsDir();
// Directory of the one-map's files: <dir of /proc/self/exe>/../share/onemap.
std::string defaultStaticDir();

// Cluster mode: makes `data_dir`/lake anew from a peer's snapshot (GET /api/v1/cluster/snapshot
// at `peer_url`, with an admin key the peer knows), for a node whose lake is lost or has a gap.
// The present lake, if any, is moved aside (lake.replaced-<time>); the copy's pending Kafka
// deliveries are dropped (they are the peer's). The node then starts on it and its replica goes
// on from the offsets the peer had applied. The node must not be running.
struct RebuildReport {
  uint64_t bytes = 0;
  size_t files = 0;
  uint64_t dropped_deliveries = 0;
  std::string replaced;  // where the lake it replaced went; empty when there was none
};
Result<RebuildReport> rebuildLakeFromPeer(const std::string& peer_url, const std::string& api_key,
                                          const std::string& data_dir);

}  // namespace firehub
