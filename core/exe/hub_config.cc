// Reading the hub's configuration: the properties file and `--set` settings, each key checked.
#include <cmath>
#include <cstdio>
#include <Poco/AutoPtr.h>
#include <Poco/Util/PropertyFileConfiguration.h>

#include <Poco/String.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include <Poco/NumberParser.h>

#include <map>

#include "firehub/auth.h"
#include "firehub/hub.h"
#include "firehub/tiers.h"

namespace firehub {

namespace {

// A properties configuration that remembers which keys were asked for, so a key nothing reads
// (a typo, a setting of another version) is refused instead of silently ignored.
class TrackedConfiguration : public Poco::Util::PropertyFileConfiguration {
 public:
  TrackedConfiguration() = default;
  explicit TrackedConfiguration(const std::string& file)
      : Poco::Util::PropertyFileConfiguration(file) {}
  // Every key with a value that nothing asked for.
  std::vector<std::string> unread() const {
    std::vector<std::string> out;
    std::function<void(const std::string&)> walk = [&](const std::string& key) {
      Keys sub;
      keys(key, sub);
      std::string value;
      if (Poco::Util::PropertyFileConfiguration::getRaw(key, value) && !asked_.count(key))
        out.push_back(key);
      for (const auto& s : sub) walk(key.empty() ? s : key + "." + s);
    };
    Keys top;
    keys(top);
    for (const auto& k : top) walk(k);
    return out;
  }

 protected:
  bool getRaw(const std::string& key, std::string& value) const override {
    asked_.insert(key);
    return Poco::Util::PropertyFileConfiguration::getRaw(key, value);
  }

 private:
  mutable std::set<std::string> asked_;
};

// A comma-separated list, each item trimmed, empty items left out.
std::vector<std::string> listOf(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item = Poco::trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A tier's name: what the parent knows the child by (its key's agency), and the prefix of what
// it forwards: lower-case letters, digits and '-', at most 64.
bool tierName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
}

// A duration setting ("90d", "12h", "30m", "3600s", "2w") in seconds: whole, positive, at most
// a hundred years.
Result<int64_t> durationSetting(const std::string& key, const std::string& text) {
  static const std::map<char, int64_t> kUnit = {
      {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
  Poco::Int64 n = 0;
  const bool unit = !text.empty() && kUnit.count(text.back());
  if (!unit || !Poco::NumberParser::tryParse64(text.substr(0, text.size() - 1), n) || n <= 0 ||
      n > 100LL * 365 * 86400 / kUnit.at(text.back())) {
    return Status::invalidArgument(key +
                                   " must be a duration such as 90d, 12h, 30m or 3600s (up to "
                                   "100 years), not '" +
                                   text + "'");
  }
  return n * kUnit.at(text.back());
}

// A size setting: bytes, or a whole number of MiB, GiB or TiB.
Result<uint64_t> bytesSetting(const std::string& key, const std::string& text) {
  static const std::vector<std::pair<std::string, int>> kUnit = {
      {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"", 0}};
  for (const auto& [suffix, shift] : kUnit) {
    if (text.size() <= suffix.size() ||
        text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    Poco::UInt64 n = 0;
    if (!Poco::NumberParser::tryParseUnsigned64(text.substr(0, text.size() - suffix.size()), n) ||
        n == 0 || n > (uint64_t{1} << (60 - shift)))
      break;
    return n << shift;
  }
  return Status::invalidArgument(key +
                                 " must be a size such as 200GiB, 512MiB or a number of bytes, "
                                 "not '" +
                                 text + "'");
}

Status checkTiers(const HubConfig& c) {
  const auto& levels = tiers::levels();
  const auto level = std::find(levels.begin(), levels.end(), c.tier_level);
  if (level == levels.end())
    return Status::invalidArgument("tier.level must be county, city or province");
  if (!c.tier_name.empty() && !tierName(c.tier_name))
    return Status::invalidArgument(
        "tier.name must be lower-case letters, digits and '-' (at most 64)");
  for (const auto& child : c.tier_children) {
    if (!tierName(child))
      return Status::invalidArgument("tier.children: '" + child +
                                     "' is not a tier name (lower-case letters, digits, '-')");
    if (child == c.tier_name) return Status::invalidArgument("tier.children may not name this hub");
  }
  if (!c.tier_children.empty() && c.tier_name.empty())
    return Status::invalidArgument("tier.children needs tier.name (loops are told apart by it)");
  if (!c.tier_children.empty() && level == levels.begin())
    return Status::invalidArgument("tier.children: a county hub is the lowest tier");
  if (c.upstream_url.empty()) {
    if (!c.upstream_key_file.empty())
      return Status::invalidArgument("upstream.key_file needs upstream.url");
    if (!c.upstream_area.empty())
      return Status::invalidArgument("upstream.area needs upstream.url");
    if (!c.upstream_layers.empty())
      return Status::invalidArgument("upstream.layers needs upstream.url");
    return Status::ok();
  }
  if (c.tier_name.empty()) return Status::invalidArgument("upstream.url needs tier.name");
  if (level + 1 == levels.end())
    return Status::invalidArgument("upstream.url: a province hub is the highest tier");
  if (!c.cluster_id.empty())
    return Status::invalidArgument(
        "upstream.url: a cluster's link upward is not supported (run the link from a single hub)");
  if (Status s = net::checkUrlShape(c.upstream_url); !s.isOk())
    return Status::invalidArgument("upstream.url: " + s.message());
  if (c.upstream_key_file.empty())
    return Status::invalidArgument(
        "upstream.url needs upstream.key_file (the agency key the parent issued)");
  const auto& known = auth::schemaDomains();
  for (const auto& d : c.upstream_domains) {
    if (std::find(known.begin(), known.end(), d) == known.end())
      return Status::invalidArgument("upstream.domains: no domain '" + d + "'");
  }
  const auto& layers = tiers::downLayers();
  for (const auto& l : c.upstream_layers) {
    if (std::find(layers.begin(), layers.end(), l) == layers.end())
      return Status::invalidArgument("upstream.layers: no layer '" + l +
                                     "' comes down (known: risk)");
  }
  return Status::ok();
}

}  // namespace

// Long: one line or two per setting, in the order of firehub.properties.
Result<HubConfig> loadConfig(const std::string& file,
                             const std::vector<std::pair<std::string, std::string>>& overrides) {
  HubConfig c;
  const std::string where = file.empty() ? std::string("--set") : "config " + file;
  try {
    Poco::AutoPtr<TrackedConfiguration> p(file.empty() ? new TrackedConfiguration()
                                                       : new TrackedConfiguration(file));
    for (const auto& [key, value] : overrides) p->setString(key, value);
    c.data_dir = p->getString("data.dir", c.data_dir);
    c.http_listen = p->getString("http.listen", c.http_listen);
    c.kafka_bootstrap = p->getString("kafka.bootstrap.servers", "");
    c.cluster_id = p->getString("cluster.id", "");
    c.cluster_node = p->getString("cluster.node", "");
    c.cluster_max_lag_s = p->getDouble("cluster.max_lag_s", c.cluster_max_lag_s);
    c.cluster_session_timeout_ms =
        p->getInt("cluster.session_timeout_ms", c.cluster_session_timeout_ms);
    c.ingest_ack = p->getString("ingest.ack", "");
    c.ingest_ack_timeout_ms = p->getInt("ingest.ack_timeout_ms", c.ingest_ack_timeout_ms);
    c.embedded_brokers = p->getInt("kafka.embedded.brokers", c.embedded_brokers);
    c.embedded_partitions = p->getInt("kafka.embedded.partitions", c.embedded_partitions);
    c.plugins_dir = p->getString("plugins.dir", "");
    c.feeds_dir = p->getString("feeds.dir", "");
    c.plugin_scan_interval_s = p->getInt("plugins.scan_interval_s", c.plugin_scan_interval_s);
    c.file_drop_poll_ms = p->getInt("file_drop.poll_ms", c.file_drop_poll_ms);
    c.file_drop_root = p->getString("file_drop.root", "");
    c.backup_root = p->getString("backup.root", "");
    {
      Poco::Util::AbstractConfiguration::Keys kept;
      p->keys("lake.retention", kept);
      const auto& domains = auth::schemaDomains();
      for (const auto& name : kept) {
        const std::string key = "lake.retention." + name;
        const std::string text = p->getString(key);
        if (name == "interval_s") {
          Poco::Int64 n = 0;
          if (!Poco::NumberParser::tryParse64(text, n) || n < 1 || n > 7 * 86400)
            return Status::invalidArgument(key + " must be a whole number in 1..604800");
          c.retention_interval_s = static_cast<int>(n);
          continue;
        }
        auto seconds = durationSetting(key, text);
        if (!seconds.isOk()) return seconds.status();
        const int64_t micros = seconds.value() * 1000000;
        if (name == "dead_letters") {
          c.retention.dead_letters_micros = micros;
        } else if (name == "layers") {
          c.retention.layer_versions_micros = micros;
        } else if (name == "audit") {
          c.audit_retention_s = seconds.value();
        } else if (std::binary_search(domains.begin(), domains.end(), name)) {
          c.retention.domains.emplace_back(name, micros);
        } else {
          return Status::invalidArgument(key + ": no domain '" + name +
                                         "' (domains: " + auth::schemaDomainList() +
                                         "; or dead_letters, layers, audit, interval_s)");
        }
      }
    }
    if (p->hasProperty("lake.disk_budget")) {
      auto budget = bytesSetting("lake.disk_budget", p->getString("lake.disk_budget"));
      if (!budget.isOk()) return budget.status();
      c.disk_budget_bytes = budget.value();
    }
    auto allow = net::parseAllowList(p->getString("outbound.allow", ""));
    if (!allow.isOk())
      return Status::invalidArgument("outbound.allow: " + allow.status().message());
    c.outbound_allow = allow.value();
    c.outbound_ca_file = p->getString("outbound.ca_file", "");
    if (c.file_drop_poll_ms < 10 || c.file_drop_poll_ms > 600000) {
      return Status::invalidArgument("file_drop.poll_ms must be in 10..600000");
    }
    c.static_dir = p->getString("http.static_dir", "");
    c.tls_cert = p->getString("http.tls.cert", "");
    c.tls_key = p->getString("http.tls.key", "");
    c.auth_enabled = p->getBool("auth.enabled", c.auth_enabled);
    c.anonymous_loopback = p->getString("auth.anonymous_loopback", c.anonymous_loopback);
    c.outlines_file = p->getString("map.outlines", "");
    c.tier_name = p->getString("tier.name", "");
    c.tier_level = p->getString("tier.level", c.tier_level);
    c.tier_children = listOf(p->getString("tier.children", ""));
    c.upstream_url = p->getString("upstream.url", "");
    c.upstream_key_file = p->getString("upstream.key_file", "");
    c.upstream_domains = listOf(p->getString("upstream.domains", ""));
    c.upstream_layers = listOf(p->getString("upstream.layers", ""));
    c.upstream_area = p->getString("upstream.area", "");
    c.upstream_restricted = p->getBool("upstream.restricted", c.upstream_restricted);
    c.http_limits.basemap = p->getString("map.basemap", "");
    c.http_limits.basemap_attribution = p->getString("map.basemap_attribution", "");
    c.http_limits.initial_view = p->getString("map.initial_view", "");
    c.area_count_budget =
        static_cast<size_t>(p->getUInt64("api.area_count_budget", c.area_count_budget));
    if (c.area_count_budget > 100000000)
      return Status::invalidArgument("api.area_count_budget must be in 0..100000000");
    // A whole-number setting, when given, checked against its range into `into` (an integer, or
    // an optional one that stays empty when the key is not set).
    auto whole = [&](const char* key, int64_t low, int64_t high, auto& into) -> Status {
      if (!p->hasProperty(key)) return Status::ok();
      Poco::Int64 v = 0;
      if (!Poco::NumberParser::tryParse64(p->getString(key), v) || v < low || v > high) {
        return Status::invalidArgument(std::string(key) + " must be a whole number in " +
                                       std::to_string(low) + ".." + std::to_string(high));
      }
      using Target = std::remove_reference_t<decltype(into)>;
      if constexpr (requires { typename Target::value_type; }) {
        into = static_cast<typename Target::value_type>(v);
      } else {
        into = static_cast<Target>(v);
      }
      return Status::ok();
    };
    // Cache sizes: the ones given, the others from memory.cache_mb (memoryPlan).
    const auto& size_of = whole;
    std::optional<size_t> budget;
    FIREHUB_RETURN_IF_ERROR(size_of("memory.cache_mb", 32, 1048576, budget));
    c.cache_budget_mb = budget.value_or(c.cache_budget_mb);
    FIREHUB_RETURN_IF_ERROR(size_of("api.layer_cache_mb", 0, 65536, c.layer_cache_mb));
    FIREHUB_RETURN_IF_ERROR(size_of("api.feature_cache_mb", 0, 65536, c.feature_cache_mb));
    FIREHUB_RETURN_IF_ERROR(size_of("api.tile_cache_mb", 0, 65536, c.tile_cache_mb));
    FIREHUB_RETURN_IF_ERROR(size_of("lake.write_buffer_mb", 8, 65536, c.lake_write_buffer_mb));
    FIREHUB_RETURN_IF_ERROR(whole("backup.rate_limit_mb", 0, 100000, c.backup_rate_limit_mb));
    FIREHUB_RETURN_IF_ERROR(size_of("lake.block_cache_mb", 0, 65536, c.lake_block_cache_mb));
    FIREHUB_RETURN_IF_ERROR(size_of("lake.record_cache_mb", 0, 65536, c.lake_record_cache_mb));
    FIREHUB_RETURN_IF_ERROR(
        size_of("lake.latest_cache_entries", 0, 100000000, c.lake_latest_cache_entries));
    c.cell_level = p->getInt("fusion.cell.level", c.cell_level);
    c.fusion_threads = p->getInt("fusion.threads", c.fusion_threads);
    if (c.fusion_threads < 0 || c.fusion_threads > 64)
      return Status::invalidArgument("fusion.threads must be in 0..64");
    c.lake_sync = p->getBool("lake.sync", c.lake_sync);
    c.max_body_bytes = static_cast<size_t>(p->getUInt64("http.max_body_bytes", c.max_body_bytes));
    auto& h = c.http_limits;
    FIREHUB_RETURN_IF_ERROR(whole("http.threads", 8, 4096, h.threads));
    FIREHUB_RETURN_IF_ERROR(
        whole("http.max_connections_per_client", 0, 100000, h.max_connections_per_client));
    FIREHUB_RETURN_IF_ERROR(whole("http.timeout_s", 1, 600, h.timeout_s));
    FIREHUB_RETURN_IF_ERROR(whole("upstream.batch", 1, 50000, c.upstream_batch));
    FIREHUB_RETURN_IF_ERROR(whole("upstream.down_interval_s", 1, 3600, c.upstream_down_interval_s));
    FIREHUB_RETURN_IF_ERROR(whole("upstream.max_backoff_s", 1, 3600, c.upstream_max_backoff_s));
    FIREHUB_RETURN_IF_ERROR(whole("http.keep_alive_s", 1, 600, h.keep_alive_s));
    FIREHUB_RETURN_IF_ERROR(whole("http.header_timeout_s", 1, 600, h.header_timeout_s));
    FIREHUB_RETURN_IF_ERROR(whole("auth.session_hours", 1, 720, h.session_hours));
    FIREHUB_RETURN_IF_ERROR(whole("http.max_connections", 16, 1000000, h.max_connections));
    FIREHUB_RETURN_IF_ERROR(whole("http.pushes_per_feed", 0, 10000, h.pushes_per_feed));
    FIREHUB_RETURN_IF_ERROR(whole("http.pushes_per_agency", 0, 10000, h.pushes_per_agency));
    auto proxies = net::parseAllowList(p->getString("http.trusted_proxies", ""));
    if (!proxies.isOk())
      return Status::invalidArgument("http.trusted_proxies: " + proxies.status().message());
    h.trusted_proxies = proxies.value();
    c.busy_timeout_ms = p->getInt64("pipeline.busy_timeout_ms", c.busy_timeout_ms);
    if (c.busy_timeout_ms < 100 || c.busy_timeout_ms > 600000) {
      return Status::invalidArgument("pipeline.busy_timeout_ms must be in 100..600000");
    }
    c.drain_timeout_ms = p->getInt("shutdown.drain_timeout_ms", c.drain_timeout_ms);
    // Every other kafka.* key is handed to librdkafka as it is.
    std::function<void(const std::string&)> walk = [&](const std::string& prefix) {
      Poco::Util::AbstractConfiguration::Keys sub;
      p->keys(prefix, sub);
      if (sub.empty()) {
        std::string k = prefix.substr(std::string("kafka.").size());
        if (k != "bootstrap.servers" && k.rfind("embedded.", 0) != 0) {
          c.kafka_properties[k] = p->getString(prefix);
        }
        return;
      }
      for (const auto& s : sub) walk(prefix + "." + s);
    };
    Poco::Util::AbstractConfiguration::Keys top;
    p->keys("kafka", top);
    for (const auto& s : top) walk("kafka." + s);
    // Relative paths are relative to the config file's directory (without one: the working
    // directory).
    auto base = std::filesystem::path(file).parent_path();
    auto resolve = [&](std::string& path) {
      if (!path.empty() && std::filesystem::path(path).is_relative()) path = (base / path).string();
    };
    resolve(c.plugins_dir);
    resolve(c.feeds_dir);
    resolve(c.static_dir);
    resolve(c.tls_cert);
    resolve(c.tls_key);
    resolve(c.outlines_file);
    resolve(c.file_drop_root);
    resolve(c.backup_root);
    resolve(c.outbound_ca_file);
    c.local_offset_minutes = p->getInt("fusion.utc_offset_minutes", c.local_offset_minutes);
    std::map<std::string, std::string> risk_keys;
    for (const char* root : {"risk", "warnings"}) {
      std::function<void(const std::string&)> collect = [&](const std::string& prefix) {
        Poco::Util::AbstractConfiguration::Keys sub;
        p->keys(prefix, sub);
        if (p->hasProperty(prefix)) risk_keys[prefix] = p->getString(prefix);
        for (const auto& s : sub) collect(prefix + "." + s);
      };
      Poco::Util::AbstractConfiguration::Keys sub;
      p->keys(root, sub);
      for (const auto& s : sub) collect(std::string(root) + "." + s);
    }
    auto risk = fusion::riskConfigFrom(risk_keys);
    if (!risk.isOk()) return Status::invalidArgument(where + ": " + risk.status().message());
    c.risk = std::move(risk).value();
    if (auto unread = p->unread(); !unread.empty()) {
      std::string names;
      for (const auto& k : unread) names += (names.empty() ? "" : ", ") + k;
      return Status::invalidArgument(where + ": no such setting: " + names +
                                     " (the settings are listed in ops/config/firehub.properties)");
    }
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument(where + ": " + e.displayText());
  }
  // The one-map's basemap and first view, refused loudly when they cannot work.
  const std::string& basemap = c.http_limits.basemap;
  const bool templated = basemap.find("{z}") != std::string::npos ||
                         basemap.find("{x}") != std::string::npos ||
                         basemap.find("{y}") != std::string::npos;
  if (!basemap.empty() &&
      ((basemap.rfind("http://", 0) != 0 && basemap.rfind("https://", 0) != 0) ||
       (templated &&
        (basemap.find("{z}") == std::string::npos || basemap.find("{x}") == std::string::npos ||
         basemap.find("{y}") == std::string::npos)) ||
       basemap.find_first_of(" \"<>\\") != std::string::npos)) {
    return Status::invalidArgument(
        "map.basemap must be an http(s) raster tile URL template with {z}, {x} and {y}, or the "
        "http(s) URL of a MapLibre style (a vector basemap)");
  }
  FIREHUB_RETURN_IF_ERROR(checkTiers(c));
  if (!c.http_limits.initial_view.empty()) {
    double lon = 0, lat = 0, zoom = 0;
    char end = 0;
    if (std::sscanf(c.http_limits.initial_view.c_str(), "%lf,%lf,%lf%c", &lon, &lat, &zoom, &end) !=
            3 ||
        !std::isfinite(lon) || !std::isfinite(lat) || !std::isfinite(zoom) || lon < -180 ||
        lon > 180 || lat < -85 || lat > 85 || zoom < 0 || zoom > 22) {
      return Status::invalidArgument(
          "map.initial_view must be lon,lat,zoom (lon -180..180, lat -85..85, zoom 0..22)");
    }
  }
  if (c.anonymous_loopback != "none" && !auth::parseRole(c.anonymous_loopback).isOk()) {
    return Status::invalidArgument("auth.anonymous_loopback must be a role or 'none'");
  }
  if (c.anonymous_loopback == "admin" || c.anonymous_loopback == "operator") {
    return Status::invalidArgument("auth.anonymous_loopback may not grant " + c.anonymous_loopback);
  }
  if (c.cell_level < 0 || c.cell_level > 30) {
    return Status::invalidArgument("fusion.cell.level must be 0..30");
  }
  return c;
}

}  // namespace firehub
