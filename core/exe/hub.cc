#include "firehub/hub.h"

#include <Poco/AutoPtr.h>
#include <Poco/NumberParser.h>
#include <Poco/String.h>

#include <filesystem>
#include <cmath>
#include <regex>
#include <fstream>
#include <functional>
#include <set>

#include "firehub/log.h"

namespace firehub {
namespace {

Status writeFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out) return Status::unavailable("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::unavailable("cannot rename " + tmp + ": " + ec.message());
  return Status::ok();
}

}  // namespace

std::vector<plugin::PluginInfo> Hub::rescanPlugins() {
  auto found = connectors_.scanDirectory(config_.plugins_dir);
  if (feeds_) {
    size_t activated = feeds_->activateWaiting();
    if (activated) FIREHUB_LOG(kInfo, "hub", activated << " feed(s) activated by new plugins");
  }
  return found;
}

std::string Hub::adminKeyFile() const {
  return (std::filesystem::path(config_.data_dir) / "admin.key").string();
}

std::string Hub::adminKey() const {
  std::ifstream in(adminKeyFile());
  std::string key;
  std::getline(in, key);
  return key;
}

namespace {

// The first of the places beside the binary that exists: the build tree's layout (bin/, plugins/,
// share/onemap/), then the installed one (bin/, lib/firehub/plugins/, share/firehub/onemap/).
std::string besideBinary(const std::vector<std::filesystem::path>& candidates) {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return candidates.front().string();
  const auto prefix = exe.parent_path().parent_path();
  for (const auto& c : candidates) {
    if (std::filesystem::is_directory(prefix / c, ec)) return (prefix / c).string();
  }
  return (prefix / candidates.front()).string();
}

}  // namespace

std::string defaultStaticDir() { return besideBinary({"share/onemap", "share/firehub/onemap"}); }

std::string defaultPluginsDir() { return besideBinary({"plugins", "lib/firehub/plugins"}); }

MemoryPlan memoryPlan(const HubConfig& c) {
  const size_t budget = c.cache_budget_mb;
  auto share = [budget](size_t percent) { return budget * percent / 100; };
  MemoryPlan plan;
  // At least 10 MiB of memtables (RocksDB needs 8): memory.cache_mb is at least 32.
  plan.lake_write_buffer_mb = c.lake_write_buffer_mb.value_or(share(33));
  plan.lake_block_cache_mb = c.lake_block_cache_mb.value_or(share(14));
  plan.lake_record_cache_mb = c.lake_record_cache_mb.value_or(share(14));
  plan.lake_latest_cache_entries =
      c.lake_latest_cache_entries.value_or((budget << 20) * 3 / 100 / lake::kLatestCacheEntryBytes);
  plan.layer_cache_mb = c.layer_cache_mb.value_or(share(8));
  plan.feature_cache_mb = c.feature_cache_mb.value_or(share(10));
  plan.tile_cache_mb = c.tile_cache_mb.value_or(share(8));
  plan.polygon_cache_mb = share(5);
  plan.spare_buffer_mb = share(5);
  return plan;
}

std::vector<std::pair<std::string, size_t>> MemoryPlan::parts() const {
  return {{"lake_memtables", lake_write_buffer_mb << 20},
          {"lake_block_cache", lake_block_cache_mb << 20},
          {"lake_record_cache", lake_record_cache_mb << 20},
          {"lake_latest_cache", lake_latest_cache_entries * lake::kLatestCacheEntryBytes},
          {"layer_cache_responses", layer_cache_mb << 20},
          {"layer_cache_features", feature_cache_mb << 20},
          {"layer_cache_polygons", polygon_cache_mb << 20},
          {"layer_cache_spare_buffers", spare_buffer_mb << 20},
          {"tile_cache", tile_cache_mb << 20}};
}

size_t MemoryPlan::totalBytes() const {
  size_t total = 0;
  for (const auto& [part, bytes] : parts()) total += bytes;
  return total;
}

namespace {

// Cluster and acknowledgement settings, checked before anything starts.
Status checkCluster(HubConfig& c) {
  static const std::regex kName("[a-z0-9][a-z0-9._-]{0,63}");
  if (c.ingest_ack.empty()) c.ingest_ack = c.cluster_id.empty() ? "local" : "replicated";
  if (c.ingest_ack != "local" && c.ingest_ack != "replicated")
    return Status::invalidArgument("ingest.ack must be local or replicated, not '" + c.ingest_ack +
                                   "'");
  if (c.ingest_ack_timeout_ms < 100 || c.ingest_ack_timeout_ms > 600000)
    return Status::invalidArgument("ingest.ack_timeout_ms must be in 100..600000");
  if (!std::isfinite(c.cluster_max_lag_s) || c.cluster_max_lag_s <= 0 ||
      c.cluster_max_lag_s > 86400)
    return Status::invalidArgument("cluster.max_lag_s must be a number of seconds in (0, 86400]");
  if (c.cluster_session_timeout_ms < 1000 || c.cluster_session_timeout_ms > 300000)
    return Status::invalidArgument("cluster.session_timeout_ms must be in [1000, 300000]");
  if (c.cluster_id.empty()) {
    if (!c.cluster_node.empty())
      return Status::invalidArgument("cluster.node is set but cluster.id is not");
    return Status::ok();
  }
  if (!std::regex_match(c.cluster_id, kName) || !std::regex_match(c.cluster_node, kName)) {
    return Status::invalidArgument(
        "cluster.id and cluster.node must both be set, each [a-z0-9][a-z0-9._-]{0,63}");
  }
  if (c.kafka_bootstrap.empty()) {
    return Status::invalidArgument(
        "cluster mode needs a Kafka cluster every node reaches (kafka.bootstrap.servers); the "
        "embedded broker is one node's own");
  }
  return Status::ok();
}

}  // namespace

// Long: the wiring in the one order the modules must start in.
Result<std::unique_ptr<Hub>> Hub::start(
    const HubConfig& config, const std::vector<const fh_connector_descriptor*>& static_connectors) {
  std::unique_ptr<Hub> hub(new Hub());
  hub->config_ = config;
  HubConfig& c = hub->config_;
  if (c.plugins_dir.empty()) c.plugins_dir = defaultPluginsDir();
  if (c.static_dir.empty()) c.static_dir = defaultStaticDir();
  FIREHUB_RETURN_IF_ERROR(checkCluster(c));

  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path lake_dir = fs::path(c.data_dir) / "lake";
  // A lake that is missing (moved away, a wrong path) is never replaced by an empty one unless
  // asked: an empty lake would come with a new admin key and an "intact" empty audit chain.
  if (!c.init && !fs::exists(lake_dir / "CURRENT", ec)) {
    return Status::failedPrecondition("no lake in " + lake_dir.string() + " (" +
                                      (fs::exists(lake_dir, ec)
                                           ? "the folder is there but holds no RocksDB database"
                                           : "the folder does not exist") +
                                      "); to create a new, empty hub there start with --init");
  }
  fs::create_directories(c.data_dir, ec);
  if (ec) return Status::unavailable("cannot create data dir " + c.data_dir + ": " + ec.message());
  // The data dir holds the admin key and the agencies' raw data: its owner only.
  fs::permissions(c.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec)
    return Status::unavailable("cannot make data dir " + c.data_dir + " private: " + ec.message());
  if (!c.file_drop_root.empty()) {
    auto probe = registry::resolveFileDropDir("probe", {c.file_drop_root, c.data_dir});
    if (!probe.isOk()) {
      return Status::invalidArgument("file_drop.root " + c.file_drop_root +
                                     " may not hold or be inside the "
                                     "data dir: " +
                                     probe.status().message());
    }
  }

  lake::LakeOptions lake_options;
  lake_options.path = (std::filesystem::path(c.data_dir) / "lake").string();
  lake_options.sync = c.lake_sync;
  hub->memory_ = memoryPlan(c);
  const MemoryPlan& memory = hub->memory_;
  for (const auto& [part, bytes] : memory.parts())
    hub->metrics_.setMemoryLimitBytes(part, static_cast<double>(bytes));
  FIREHUB_LOG(kInfo, "hub",
              "caches up to " << (memory.totalBytes() >> 20) << " MiB (memory.cache_mb "
                              << c.cache_budget_mb << "): lake memtables "
                              << memory.lake_write_buffer_mb << ", block cache "
                              << memory.lake_block_cache_mb << ", records "
                              << memory.lake_record_cache_mb << ", latest pointers "
                              << memory.lake_latest_cache_entries << " entries, cell layers "
                              << memory.layer_cache_mb << " + features " << memory.feature_cache_mb
                              << " + polygons " << memory.polygon_cache_mb << " + buffers "
                              << memory.spare_buffer_mb);
  lake_options.write_buffer_mb = memory.lake_write_buffer_mb;
  lake_options.block_cache_mb = memory.lake_block_cache_mb;
  lake_options.record_cache_mb = memory.lake_record_cache_mb;
  lake_options.latest_cache_entries = memory.lake_latest_cache_entries;
  lake_options.area_indexes = api::pointLayerIndexes();
  lake_options.create_if_missing = c.init;
  auto lake = lake::Lake::open(lake_options);
  if (!lake.isOk()) return lake.status();
  hub->lake_ = std::move(lake).value();
  if (!c.cluster_id.empty() && c.publish && c.serve_http) {
    // The shared configuration (feeds, keys, grants): this node's changes go to the cluster's
    // configuration topic from here on, the first admin key included.
    hub->config_publisher_ = std::make_unique<cluster::ConfigPublisher>(hub->replicaOptions());
    FIREHUB_RETURN_IF_ERROR(hub->config_publisher_->start());
    auto* publisher = hub->config_publisher_.get();
    hub->lake_->setMetaListener([publisher](const std::string& key, const std::string* value) {
      publisher->changed(key, value);
    });
  }
  if (!c.cluster_id.empty() && c.publish && c.serve_http) {
    // The singleton duties: this node joins the duties group; what it is assigned, it runs.
    hub->duties_ =
        std::make_unique<cluster::DutyGroup>(hub->replicaOptions(), c.cluster_session_timeout_ms);
    FIREHUB_RETURN_IF_ERROR(hub->duties_->start());
  }

  hub->keys_ = std::make_unique<auth::KeyStore>(*hub->lake_);
  hub->users_ = std::make_unique<auth::UserStore>(*hub->lake_);
  hub->audit_ = std::make_unique<auth::AuditLog>(*hub->lake_);
  if (c.auth_enabled && c.serve_http) {
    auto admin = hub->keys_->ensureAdmin(hub->adminKeyFile());
    if (!admin.isOk()) return admin.status();
    if (admin.value()) {  // the key itself only in the file, never in a log
      FIREHUB_LOG(kWarning, "auth",
                  "first start: admin key written to " << hub->adminKeyFile() << " (mode 0600)");
    }
    for (const auto& id : hub->keys_->undecodable())
      hub->load_failures_.push_back("key " + id + ": does not decode");
  }

  for (const auto* d : static_connectors) {
    Status s = hub->connectors_.registerStatic(d);
    if (!s.isOk()) FIREHUB_LOG(kWarning, "hub", "built-in connector refused: " << s.message());
  }
  hub->connectors_.scanDirectory(c.plugins_dir);

  hub->feeds_ = std::make_unique<registry::FeedRegistry>(
      *hub->lake_, hub->connectors_, registry::FileDropPolicy{c.file_drop_root, c.data_dir});
  pipeline::PipelineOptions pipeline_options;
  pipeline_options.cell_level = c.cell_level;
  pipeline_options.busy_timeout_ms = c.busy_timeout_ms;
  if (!c.outlines_file.empty()) {  // place hints (CAP geocodes, addresses) by district outlines
    auto areas = tiles::readAreas(c.outlines_file, "map.outlines");
    if (!areas.isOk()) return areas.status();
    std::vector<pipeline::District> districts;
    for (const auto& a : areas.value()) {
      pipeline::District d{a.code, a.name, {}};
      auto* multi = d.outline.mutable_multi_polygon();
      for (const auto& polygon : a.polygons) {
        auto* out = multi->add_polygons();
        for (const auto& ring : polygon) {
          auto* points = out->add_rings();
          for (const auto& [lon, lat] : ring) {
            auto* p = points->add_points();
            p->set_lon(lon);
            p->set_lat(lat);
          }
        }
      }
      districts.push_back(std::move(d));
    }
    pipeline_options.gazetteer = std::make_shared<pipeline::Gazetteer>(std::move(districts));
  }
  hub->pipeline_ = std::make_unique<pipeline::Pipeline>(*hub->lake_, *hub->feeds_, hub->metrics_,
                                                        pipeline_options);
  if (c.serve_http) {  // network transports run with the server, not for offline ingest
    hub->tcp_ = std::make_unique<transport::TcpListeners>(*hub->pipeline_);
    auto* tcp = hub->tcp_.get();
    hub->feeds_->setActivationListener([tcp](registry::Feed& feed) {
      Status s = tcp->ensure(feed);
      if (!s.isOk()) {  // loud: the feed reads failed, and names why
        FIREHUB_LOG(kError, "hub", s.message());
        feed.setFault(s.message());
      }
    });
  }
  FIREHUB_RETURN_IF_ERROR(hub->feeds_->load());
  hub->feeds_->loadDirectory(c.feeds_dir);
  if (c.serve_http) {
    transport::FileDropOptions drop_options;
    drop_options.poll_ms = c.file_drop_poll_ms;
    if (auto* duties = hub->duties_.get())
      drop_options.holds_duty = [duties] { return duties->epoch(cluster::Duty::kFileDrops) > 0; };
    hub->drops_ = std::make_unique<transport::FileDrops>(*hub->pipeline_, *hub->feeds_, *hub->lake_,
                                                         drop_options);
    // Kafka source feeds keep their offsets in this lake: single hubs only for now (a cluster's
    // nodes would each keep their own).
    if (c.cluster_id.empty()) {
      hub->kafka_sources_ = std::make_unique<transport::KafkaSources>(*hub->pipeline_, *hub->feeds_,
                                                                      *hub->lake_, hub->metrics_);
      const net::OutboundPolicy outbound({c.outbound_allow, c.outbound_ca_file});
      hub->polls_ = std::make_unique<transport::HttpPolls>(*hub->pipeline_, *hub->feeds_,
                                                           *hub->lake_, outbound);
      hub->mqtt_sources_ = std::make_unique<transport::MqttSources>(*hub->pipeline_, *hub->feeds_,
                                                                    *hub->lake_, outbound);
    }
  }

  if (c.publish) FIREHUB_RETURN_IF_ERROR(hub->startPublisher());
  if (c.serve_http) {  // derived state is kept by the running hub, not by offline ingest
    fusion::FusionOptions fusion_options;
    fusion_options.cell_level = c.cell_level;
    if (c.fusion_threads > 0) fusion_options.threads = static_cast<size_t>(c.fusion_threads);
    fusion_options.risk = c.risk;
    fusion_options.local_offset_minutes = c.local_offset_minutes;
    hub->fusion_ = std::make_unique<fusion::FusionEngine>(*hub->lake_, fusion_options);
    if (auto* publisher = hub->publisher_.get()) {  // derived deliveries wait in the outbox
      hub->fusion_->addListener([publisher](const fusion::FusionDelta&) { publisher->notify(); });
    }
    FIREHUB_RETURN_IF_ERROR(hub->fusion_->start());
  }
  if (c.serve_http) {  // deliveries to subscribers run with the server
    subs::SubscriptionOptions sub_options;
    sub_options.keys = c.auth_enabled ? hub->keys_.get() : nullptr;
    sub_options.outbound = net::OutboundPolicy({c.outbound_allow, c.outbound_ca_file});
    if (auto* duties = hub->duties_.get())
      sub_options.duty_epoch = [duties] { return duties->epoch(cluster::Duty::kSubscriptions); };
    hub->subs_ = std::make_unique<subs::SubscriptionManager>(*hub->lake_, sub_options);
    FIREHUB_RETURN_IF_ERROR(hub->subs_->start());
  }
  if (!c.cluster_id.empty() && c.publish && c.serve_http) {  // this lake, a replica of the whole
    cluster::ReplicaOptions replica_options = hub->replicaOptions();
    auto* feeds = hub->feeds_.get();
    auto* subscriptions = hub->subs_.get();
    replica_options.on_config = [feeds, subscriptions](const std::string& key) {
      if (key.rfind("feed/", 0) == 0) {
        Status s = feeds->adoptStored(key.substr(5));
        if (!s.isOk())
          FIREHUB_LOG(kError, "cluster", "feed " << key.substr(5) << ": " << s.message());
      } else if (key.rfind("subs/", 0) == 0 && subscriptions) {
        subscriptions->reload(key.substr(5));
      }
    };
    hub->replica_ = std::make_unique<cluster::Replica>(*hub->lake_, replica_options);
    FIREHUB_RETURN_IF_ERROR(hub->replica_->start());
  }
  if (hub->duties_) {
    Hub* h = hub.get();
    hub->duties_->setListener([h](cluster::Duty duty, uint64_t epoch) {
      h->metrics_.setDutyHeld(cluster::dutyName(duty), epoch > 0);
      if (h->replica_) h->replica_->heartbeatSoon();
      if (h->publisher_) h->publisher_->notify();
      if (h->subs_) h->subs_->notify();
    });
    if (hub->replica_) {
      auto* duties = hub->duties_.get();
      hub->replica_->setDutiesSource([duties] { return cluster::dutiesJson(*duties); });
    }
  }
  if (!c.upstream_url.empty()) FIREHUB_RETURN_IF_ERROR(hub->startUpstream());
  {
    auto* publisher = hub->publisher_.get();
    auto* fusion = hub->fusion_.get();
    auto* subscriptions = hub->subs_.get();
    auto* upstream = hub->upstream_.get();
    hub->pipeline_->setCommitListener([publisher, fusion, subscriptions, upstream] {
      if (publisher) publisher->notify();
      if (fusion) fusion->notify();
      if (subscriptions) subscriptions->notify();
      if (upstream) upstream->wake();
    });
  }
  if (c.serve_http) FIREHUB_RETURN_IF_ERROR(hub->startApi());
  if (hub->replica_) hub->replica_->setAdvertised(hub->httpAddress());
  if (hub->drops_) hub->drops_->start();
  if (hub->kafka_sources_) hub->kafka_sources_->start();
  if (hub->polls_) hub->polls_->start();
  if (hub->mqtt_sources_) hub->mqtt_sources_->start();
  if (c.serve_http && c.plugin_scan_interval_s > 0) {
    Hub* h = hub.get();
    hub->plugin_scanner_ = std::thread([h, interval = c.plugin_scan_interval_s] {
      log::nameThread("fh-plugin-scan");
      std::unique_lock<std::mutex> lock(h->scanner_mu_);
      while (!h->scanner_cv_.wait_for(lock, std::chrono::seconds(interval),
                                      [h] { return h->scanner_stop_; })) {
        lock.unlock();
        h->rescanPlugins();
        lock.lock();
      }
    });
  }
  return hub;
}

cluster::ReplicaOptions Hub::replicaOptions() const {
  cluster::ReplicaOptions o;
  o.bootstrap_servers = config_.kafka_bootstrap;
  o.properties = config_.kafka_properties;
  o.cluster_id = config_.cluster_id;
  o.node = config_.cluster_node;
  o.domains = auth::schemaDomains();
  return o;
}

Status Hub::startPublisher() {
  const HubConfig& c = config_;
  bus::PublisherOptions publisher_options;
  publisher_options.properties = c.kafka_properties;
  if (c.kafka_bootstrap.empty()) {
    auto broker = bus::EmbeddedBroker::start(c.embedded_brokers, c.embedded_partitions);
    if (!broker.isOk()) return broker.status();
    broker_ = std::move(broker).value();
    bootstrap_ = broker_->bootstrapServers();
    auto* b = broker_.get();
    publisher_options.ensure_topic = [b](const std::string& topic) { b->ensureTopic(topic); };
  } else {
    bootstrap_ = c.kafka_bootstrap;
  }
  publisher_options.bootstrap_servers = bootstrap_;
  publisher_options.record_header = !c.cluster_id.empty();
  if (auto* duties = duties_.get()) {
    publisher_options.layers_epoch = [duties] { return duties->epoch(cluster::Duty::kLayers); };
    publisher_options.held_ms = std::max(30000, 3 * c.cluster_session_timeout_ms);
    publisher_options.once_topics = {fusion::kWarningsTopic};
  }
  publisher_ = std::make_unique<bus::Publisher>(*lake_, metrics_, publisher_options);
  FIREHUB_RETURN_IF_ERROR(publisher_->start());
  FIREHUB_RETURN_IF_ERROR(
      writeFile((std::filesystem::path(c.data_dir) / "kafka.bootstrap").string(), bootstrap_));
  FIREHUB_LOG(kInfo, "hub",
              "Kafka bootstrap servers: " << bootstrap_ << (broker_ ? " (embedded)" : ""));
  return Status::ok();
}

Status Hub::startApi() {
  const HubConfig& c = config_;

  api::ApiContext ctx;
  ctx.lake = lake_.get();
  ctx.pipeline = pipeline_.get();
  ctx.feeds = feeds_.get();
  ctx.connectors = &connectors_;
  ctx.publisher = publisher_.get();
  ctx.replica = replica_.get();
  ctx.duties = duties_.get();
  ctx.cluster_id = config_.cluster_id;
  ctx.tier_name = config_.tier_name;
  ctx.tier_level = config_.tier_level;
  ctx.tier_children = config_.tier_children;
  ctx.upstream = upstream_.get();
  ctx.cluster_node = config_.cluster_node;
  ctx.cluster_max_lag_s = config_.cluster_max_lag_s;
  ctx.ack_replicated = config_.ingest_ack == "replicated" && publisher_ != nullptr;
  ctx.ack_timeout_ms = config_.ingest_ack_timeout_ms;
  ctx.fusion = fusion_.get();
  ctx.metrics = &metrics_;
  ctx.kafka_bootstrap = bootstrap_;
  ctx.kafka_embedded = broker_ != nullptr;
  ctx.plugins_dir = c.plugins_dir;
  ctx.rescan_plugins = [this] { return rescanPlugins(); };
  if (tcp_) {
    auto* tcp = tcp_.get();
    ctx.listen_port = [tcp](const std::string& feed) { return tcp->port(feed); };
  }
  if (auto* sources = kafka_sources_.get()) {
    ctx.kafka_source = [sources](const std::string& feed) { return sources->state(feed); };
  }
  ctx.outbound = net::OutboundPolicy({c.outbound_allow, c.outbound_ca_file});
  ctx.backups = std::make_shared<api::BackupJobs>(*lake_, c.backup_root, c.backup_rate_limit_mb);
  upkeep_ = std::make_unique<api::LakeUpkeep>(
      *lake_, audit_.get(), metrics_,
      api::UpkeepOptions{c.retention, c.audit_retention_s, c.retention_interval_s,
                         c.disk_budget_bytes});
  upkeep_->start();
  ctx.upkeep = upkeep_.get();
  if (auto* polls = polls_.get()) {
    ctx.poll_source = [polls](const std::string& feed) { return polls->state(feed); };
  }
  if (auto* mqtt = mqtt_sources_.get()) {
    ctx.mqtt_source = [mqtt](const std::string& feed) { return mqtt->state(feed); };
  }
  api::ApiOptions api_options = c.http_limits;
  api_options.listen = c.http_listen;
  api_options.max_body_bytes = c.max_body_bytes;
  api_options.layer_cache_mb = memory_.layer_cache_mb;
  api_options.feature_cache_mb = memory_.feature_cache_mb;
  api_options.polygon_cache_mb = memory_.polygon_cache_mb;
  api_options.spare_buffer_mb = memory_.spare_buffer_mb;
  api_options.tile_cache_mb = memory_.tile_cache_mb;
  api_options.static_dir = config_.static_dir;
  api_options.tls_cert = c.tls_cert;
  api_options.tls_key = c.tls_key;
  ctx.keys = c.auth_enabled ? keys_.get() : nullptr;
  ctx.users = users_.get();
  ctx.audit = audit_.get();
  ctx.subscriptions = subs_.get();
  ctx.anonymous_loopback = c.anonymous_loopback == "none" ? "" : c.anonymous_loopback;
  ctx.area_count_budget = c.area_count_budget;
  ctx.load_failures = [this] {
    std::vector<std::string> all = load_failures_;
    for (auto& f : feeds_->loadFailures()) all.push_back(std::move(f));
    if (subs_) {
      for (auto& f : subs_->loadFailures()) all.push_back(std::move(f));
    }
    for (const auto& feed : feeds_->list()) {
      if (std::string fault = feed->fault();
          fault.rfind("feed " + feed->spec().id + ": cannot listen", 0) == 0) {
        all.push_back(fault);
      }
    }
    return all;
  };
  api_options.outlines_file = config_.outlines_file;
  api_ = std::make_unique<api::ApiServer>(ctx, api_options);
  FIREHUB_RETURN_IF_ERROR(api_->start());
  return writeFile((std::filesystem::path(c.data_dir) / "http.address").string(), httpAddress());
}

// The link to the parent hub (upstream.*): its key and area read now, refused loudly when they
// cannot be.
Status Hub::startUpstream() {
  const auto& c = config_;
  std::ifstream key_in(c.upstream_key_file);
  std::string key;
  if (!key_in || !std::getline(key_in, key) || Poco::trim(key).empty()) {
    return Status::failedPrecondition("upstream.key_file: cannot read a key from " +
                                      c.upstream_key_file);
  }
  tiers::UpstreamOptions o;
  o.here = c.tier_name;
  o.level = c.tier_level;
  o.url = c.upstream_url;
  while (!o.url.empty() && o.url.back() == '/') o.url.pop_back();
  o.key = Poco::trim(key);
  o.domains = c.upstream_domains;
  if (!c.upstream_area.empty()) {
    auto area = tiles::readAreas(c.upstream_area, "upstream.area");
    if (!area.isOk()) return area.status();
    o.area = std::move(area).value();
    // The layers brought down are asked for within the area's bounds.
    lake::BBox& b = o.layers_bbox;
    b = {180, 90, -180, -90};
    for (const auto& a : o.area) {
      b.min_lon = std::min(b.min_lon, a.box.west);
      b.min_lat = std::min(b.min_lat, a.box.south);
      b.max_lon = std::max(b.max_lon, a.box.east);
      b.max_lat = std::max(b.max_lat, a.box.north);
    }
  }
  o.layers = c.upstream_layers;
  o.restricted = c.upstream_restricted;
  o.batch = c.upstream_batch;
  o.down_interval_s = c.upstream_down_interval_s;
  o.max_backoff_s = c.upstream_max_backoff_s;
  o.outbound = net::OutboundPolicy({c.outbound_allow, c.outbound_ca_file});
  auto* pipeline = pipeline_.get();
  o.store_down = [pipeline](std::string_view body, size_t& stored) -> Status {
    auto summary = pipeline->ingestFromParent(body);
    if (!summary.isOk()) return summary.status();
    stored = summary->accepted;
    return Status::ok();
  };
  upstream_ = std::make_unique<tiers::Upstream>(*lake_, metrics_, std::move(o));
  return upstream_->start();
}

std::string Hub::httpAddress() const {
  return api_ ? api_->host() + ":" + std::to_string(api_->port()) : "";
}

void Hub::stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(scanner_mu_);
    scanner_stop_ = true;
  }
  scanner_cv_.notify_all();
  if (plugin_scanner_.joinable()) plugin_scanner_.join();
  if (api_) api_->stop();                      // no new pushes
  if (tcp_) tcp_->stopAll();                   // no new frames
  if (drops_) drops_->stop();                  // no new files
  if (kafka_sources_) kafka_sources_->stop();  // no new messages
  if (polls_) polls_->stop();
  if (mqtt_sources_) mqtt_sources_->stop();
  if (upstream_) upstream_->stop();  // the cursor stays where the parent confirmed
  if (subs_) subs_->stop();          // deliveries end (their cursors still reach the others)
  if (duties_) duties_->stop();      // leaving the group hands the duties on at once
  if (replica_) replica_->stop();    // no more records from the other nodes
  if (config_publisher_) config_publisher_->stop();
  if (fusion_) fusion_->stop();
  if (publisher_) publisher_->stop(config_.drain_timeout_ms);  // drain what is committed
  publisher_.reset();
  replica_.reset();
  duties_.reset();
  if (lake_) lake_->setMetaListener(nullptr);
  config_publisher_.reset();
  subs_.reset();
  upstream_.reset();
  fusion_.reset();
  api_.reset();
  upkeep_.reset();  // a retention pass in progress ends first
  tcp_.reset();
  drops_.reset();
  kafka_sources_.reset();
  polls_.reset();
  mqtt_sources_.reset();
  pipeline_.reset();
  feeds_.reset();
  broker_.reset();
  lake_.reset();
  FIREHUB_LOG(kInfo, "hub", "stopped");
}

Hub::~Hub() { stop(); }

}  // namespace firehub
