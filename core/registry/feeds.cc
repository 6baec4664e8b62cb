#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "firehub/log.h"
#include "firehub/registry.h"
#include "internal.h"

namespace firehub::registry {
namespace {

const std::regex kIdPattern("^[a-z0-9][a-z0-9._-]{0,63}$");

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stringify(const Poco::Dynamic::Var& v) {
  std::ostringstream os;
  Poco::JSON::Stringifier::stringify(v, os);
  return os.str();
}

}  // namespace

std::string feedStatsKey(const std::string& feed_id) { return "feedstats/" + feed_id; }

std::string encodeFeedStats(const FeedStats& s) {
  return std::to_string(s.accepted) + " " + std::to_string(s.rejected) + " " +
         std::to_string(s.duplicates) + " " + std::to_string(s.last_record_at);
}

bool decodeFeedStats(const std::string& text, FeedStats& s) {
  std::istringstream in(text);
  return static_cast<bool>(in >> s.accepted >> s.rejected >> s.duplicates >> s.last_record_at);
}

namespace {

Status parseErrorPolicy(const Poco::Dynamic::Var& v, ErrorPolicy& out) {
  auto obj = objectField(v, "errors", {"tolerance", "retries", "backoff_ms", "max_backoff_ms"});
  if (!obj.isOk()) return obj.status();
  const auto& o = *obj.value();
  if (o.has("tolerance")) {
    std::string t = o.get("tolerance").isString() ? o.get("tolerance").convert<std::string>() : "";
    if (t == "all") {
      out.tolerance = ErrorPolicy::Tolerance::kAll;
    } else if (t == "none") {
      out.tolerance = ErrorPolicy::Tolerance::kNone;
    } else {
      return Status::invalidArgument(
          "field 'errors.tolerance' must be \"all\" (dead-letter bad records and "
          "continue) or \"none\" (stop the feed on the first bad record)");
    }
  }
  int64_t retries = out.retries;
  FIREHUB_RETURN_IF_ERROR(integerField(o, "errors", "retries", 0, 20, retries));
  out.retries = static_cast<int>(retries);
  FIREHUB_RETURN_IF_ERROR(integerField(o, "errors", "backoff_ms", 1, 60000, out.backoff_ms));
  FIREHUB_RETURN_IF_ERROR(
      integerField(o, "errors", "max_backoff_ms", 1, 600000, out.max_backoff_ms));
  if (out.max_backoff_ms < out.backoff_ms) {
    return Status::invalidArgument("field 'errors.max_backoff_ms' must be >= errors.backoff_ms");
  }
  return Status::ok();
}

Status parseFileDrop(const Poco::Dynamic::Var& v, FileDrop& out) {
  auto obj = objectField(v, "file_drop", {"dir", "content_type"});
  if (!obj.isOk()) return obj.status();
  const auto& o = *obj.value();
  if (!o.has("dir") || !o.get("dir").isString() || o.get("dir").convert<std::string>().empty() ||
      o.get("dir").convert<std::string>().find('\0') != std::string::npos) {
    return Status::invalidArgument(
        "field 'file_drop.dir' must be a directory under file_drop.root");
  }
  out.dir = o.get("dir").convert<std::string>();
  if (o.has("content_type")) {
    auto t = contentType(o, "file_drop");
    if (!t.isOk()) return t.status();
    out.content_type = t.value();
  }
  return Status::ok();
}

}  // namespace

Result<FeedSpec> parseFeedSpec(const std::string& json) {
  Poco::JSON::Object::Ptr obj;
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(json);
    if (v.type() != typeid(Poco::JSON::Object::Ptr)) {
      return Status::invalidArgument("feed definition must be a JSON object");
    }
    obj = v.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("feed definition is not valid JSON: " + e.displayText());
  }
  FeedSpec spec;
  auto text = [&](const char* key, std::string& out, bool required) -> Status {
    if (!obj->has(key)) {
      return required ? Status::invalidArgument(std::string("field '") + key + "' is required")
                      : Status::ok();
    }
    auto v = obj->get(key);
    if (!v.isString())
      return Status::invalidArgument(std::string("field '") + key + "' must be a string");
    out = v.convert<std::string>();
    return Status::ok();
  };
  FIREHUB_RETURN_IF_ERROR(text("id", spec.id, true));
  FIREHUB_RETURN_IF_ERROR(text("agency", spec.agency, true));
  FIREHUB_RETURN_IF_ERROR(text("connector", spec.connector, true));
  FIREHUB_RETURN_IF_ERROR(text("description", spec.description, false));
  FIREHUB_RETURN_IF_ERROR(text("encoding", spec.encoding, false));
  if (spec.encoding != "utf-8" && spec.encoding != "gb18030" && spec.encoding != "auto")
    return Status::invalidArgument("field 'encoding' must be utf-8, gb18030 or auto");
  FIREHUB_RETURN_IF_ERROR(text("crs", spec.crs, false));
  FIREHUB_RETURN_IF_ERROR(text("sheet", spec.sheet, false));
  if (spec.sheet.size() > 31)
    return Status::invalidArgument("field 'sheet': a sheet's name has at most 31 characters");
  if (spec.crs != "wgs84" && spec.crs != "cgcs2000" && spec.crs != "gcj02" && spec.crs != "bd09")
    return Status::invalidArgument("field 'crs' must be wgs84, cgcs2000, gcj02 or bd09");
  if (!std::regex_match(spec.id, kIdPattern)) {
    return Status::invalidArgument("field 'id' must match [a-z0-9][a-z0-9._-]{0,63}");
  }
  if (!std::regex_match(spec.agency, kIdPattern)) {
    return Status::invalidArgument("field 'agency' must match [a-z0-9][a-z0-9._-]{0,63}");
  }
  if (obj->has("config")) {
    auto v = obj->get("config");
    if (v.type() != typeid(Poco::JSON::Object::Ptr)) {
      return Status::invalidArgument("field 'config' must be a JSON object");
    }
    spec.config_json = stringify(v);
  }
  if (obj->has("cadence_s")) {
    auto v = obj->get("cadence_s");
    if (!v.isNumeric() || v.convert<double>() < 0) {
      return Status::invalidArgument("field 'cadence_s' must be a number >= 0");
    }
    spec.cadence_s = static_cast<int64_t>(v.convert<double>());
  }
  if (obj->has("paused")) {
    auto v = obj->get("paused");
    if (!v.isBoolean()) return Status::invalidArgument("field 'paused' must be true or false");
    spec.paused = v.convert<bool>();
  }
  if (obj->has("stopped")) {
    auto v = obj->get("stopped");
    if (!v.isString()) return Status::invalidArgument("field 'stopped' must be a string");
    spec.stopped = v.convert<std::string>();
  }
  if (obj->has("errors")) {
    FIREHUB_RETURN_IF_ERROR(parseErrorPolicy(obj->get("errors"), spec.errors));
  }
  if (obj->has("file_drop")) {
    FIREHUB_RETURN_IF_ERROR(parseFileDrop(obj->get("file_drop"), spec.file_drop));
  }
  FIREHUB_RETURN_IF_ERROR(parseSources(*obj, spec));
  if (obj->has("created_at") && obj->get("created_at").isNumeric()) {
    spec.created_at = obj->get("created_at").convert<int64_t>();
  }
  static const std::set<std::string> kKnown = {
      "id",         "agency", "connector", "config", "description", "cadence_s",
      "created_at", "paused", "stopped",   "errors", "file_drop",   "kafka",
      "poll",       "mqtt",   "encoding",  "crs",    "sheet"};
  std::vector<std::string> names;
  obj->getNames(names);
  for (const auto& n : names) {
    if (!kKnown.count(n)) return Status::invalidArgument("field '" + n + "' is not known");
  }
  return spec;
}

Result<std::string> resolveFileDropDir(const std::string& dir, const FileDropPolicy& policy) {
  namespace fs = std::filesystem;
  if (policy.root.empty()) {
    return Status::invalidArgument("file drops are off: an operator sets file_drop.root first");
  }
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(fs::absolute(policy.root, ec), ec);
  if (ec) return Status::permissionDenied("file_drop.root " + policy.root + ": " + ec.message());
  fs::path wanted = fs::path(dir).is_absolute() ? fs::path(dir) : root / dir;
  const fs::path resolved = fs::weakly_canonical(wanted, ec);
  if (ec) return Status::permissionDenied("file_drop.dir " + dir + ": " + ec.message());
  auto within = [](const fs::path& inner, const fs::path& outer) {
    auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
    return o == outer.end();
  };
  if (!within(resolved, root) || resolved == root) {
    return Status::invalidArgument("file_drop.dir " + dir +
                                   " is not a folder under file_drop.root (" + root.string() + ")");
  }
  if (!policy.data_dir.empty()) {
    const fs::path data = fs::weakly_canonical(fs::absolute(policy.data_dir, ec), ec);
    if (!ec && (within(resolved, data) || within(data, resolved))) {
      return Status::invalidArgument("file_drop.dir " + dir +
                                     " is the hub's data dir, inside it or above it");
    }
  }
  return resolved.string();
}

Poco::JSON::Object feedSpecObject(const FeedSpec& spec, bool secrets) {
  Poco::JSON::Object obj;
  obj.set("id", spec.id);
  obj.set("agency", spec.agency);
  obj.set("connector", spec.connector);
  Poco::JSON::Parser parser;
  obj.set("config", parser.parse(spec.config_json));
  if (!spec.description.empty()) obj.set("description", spec.description);
  obj.set("cadence_s", spec.cadence_s);
  obj.set("encoding", spec.encoding);
  obj.set("crs", spec.crs);
  if (!spec.sheet.empty()) obj.set("sheet", spec.sheet);
  obj.set("created_at", spec.created_at);
  obj.set("paused", spec.paused);
  if (!spec.stopped.empty()) obj.set("stopped", spec.stopped);
  Poco::JSON::Object errors;
  errors.set("tolerance", spec.errors.tolerance == ErrorPolicy::Tolerance::kNone ? "none" : "all");
  errors.set("retries", spec.errors.retries);
  errors.set("backoff_ms", spec.errors.backoff_ms);
  errors.set("max_backoff_ms", spec.errors.max_backoff_ms);
  obj.set("errors", errors);
  if (!spec.file_drop.dir.empty()) {
    Poco::JSON::Object drop;
    drop.set("dir", spec.file_drop.dir);
    if (!spec.file_drop.content_type.empty()) drop.set("content_type", spec.file_drop.content_type);
    obj.set("file_drop", drop);
  }
  setSourceFields(obj, spec, secrets);
  return obj;
}

std::string feedSpecToJson(const FeedSpec& spec) {
  std::ostringstream os;
  feedSpecObject(spec).stringify(os);
  return os.str();
}

void FeedRegistry::install(const std::string& json) {
  {
    auto spec = parseFeedSpec(json);
    if (!spec.isOk()) {
      FIREHUB_LOG(kError, "registry", "stored feed does not parse: " << spec.status().message());
      std::lock_guard<std::mutex> lock(mu_);
      load_failures_.push_back("feed definition " + json.substr(0, 80) + ": " +
                               spec.status().message());
      return;
    }
    if (!spec->file_drop.dir.empty()) {
      auto dir = resolveFileDropDir(spec->file_drop.dir, drops_);
      if (!dir.isOk()) {  // kept, but its folder is not watched
        FIREHUB_LOG(kError, "registry",
                    "feed " << spec->id << ": file drop off: " << dir.status().message());
        std::lock_guard<std::mutex> lock(mu_);
        load_failures_.push_back("feed " + spec->id + ": file drop off: " + dir.status().message());
      }
    }
    std::unique_ptr<plugin::ConnectorInstance> instance;
    std::string reason;
    auto created = connectors_.create(spec->connector, spec->config_json);
    if (created.isOk()) {
      instance = std::move(created).value();
    } else {
      reason = created.status().message();
      FIREHUB_LOG(kWarning, "registry", "feed " << spec->id << " is inactive: " << reason);
    }
    auto feed = std::make_shared<Feed>(spec.value(), std::move(instance), reason);
    feed->setPaused(spec->paused);
    feed->setStopped(spec->stopped);
    auto stored_stats = lake_.getMeta(feedStatsKey(spec->id));
    FeedStats stats;
    if (stored_stats.isOk() && stored_stats.value() &&
        decodeFeedStats(*stored_stats.value(), stats)) {
      auto& c = feed->counters();
      c.accepted = stats.accepted;
      c.rejected = stats.rejected;
      c.duplicates = stats.duplicates;
      c.last_record_at = stats.last_record_at;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      feeds_[spec->id] = feed;
    }
    if (feed->connector() && on_active_) on_active_(*feed);
  }
}

Status FeedRegistry::adoptStored(const std::string& id) {
  auto stored = lake_.getMeta("feed/" + id);
  if (!stored.isOk()) return stored.status();
  if (!stored.value()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (feeds_.erase(id))
      FIREHUB_LOG(kInfo, "registry", "feed " << id << " deleted on another node");
    return Status::ok();
  }
  if (auto current = get(id); current && feedSpecToJson(current->spec()) == *stored.value())
    return Status::ok();  // this node's own change, back from the cluster
  install(*stored.value());
  FIREHUB_LOG(kInfo, "registry", "feed " << id << " as another node registered it");
  return Status::ok();
}

Status FeedRegistry::load() {
  std::vector<std::string> stored;
  FIREHUB_RETURN_IF_ERROR(lake_.scanMeta(
      "feed/", [&](const std::string&, const std::string& value) { stored.push_back(value); }));
  for (const auto& json : stored) install(json);
  FIREHUB_LOG(kInfo, "registry", "loaded " << stored.size() << " feed(s)");
  return Status::ok();
}

void FeedRegistry::loadDirectory(const std::string& dir) {
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    auto spec = parseFeedSpec(text.str());
    if (!spec.isOk()) {
      FIREHUB_LOG(kError, "registry", path.string() << ": " << spec.status().message());
      continue;
    }
    auto feed = create(spec.value(), /*replace=*/true);
    if (!feed.isOk()) {
      FIREHUB_LOG(kError, "registry", path.string() << ": " << feed.status().message());
    }
  }
}

Result<std::shared_ptr<Feed>> FeedRegistry::create(FeedSpec spec, bool replace) {
  if (!std::regex_match(spec.id, kIdPattern)) {
    return Status::invalidArgument("feed id must match [a-z0-9][a-z0-9._-]{0,63}");
  }
  if (!connectors_.has(spec.connector)) {
    return Status::invalidArgument("field 'connector': no connector '" + spec.connector +
                                   "' is loaded (see GET /api/v1/plugins)");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = feeds_.find(spec.id);
    if (it != feeds_.end()) {
      const FeedSpec& old = it->second->spec();
      bool same = old.agency == spec.agency && old.connector == spec.connector &&
                  old.config_json == spec.config_json && old.cadence_s == spec.cadence_s &&
                  old.description == spec.description && old.errors == spec.errors &&
                  old.file_drop == spec.file_drop && old.encoding == spec.encoding &&
                  old.crs == spec.crs && old.sheet == spec.sheet;
      if (same && it->second->connector()) return it->second;
      if (!replace) {
        return Status::alreadyExists("feed '" + spec.id +
                                     "' already exists with another definition");
      }
      spec.created_at = old.created_at;
    }
  }
  if (auto plugin = connectors_.find(spec.connector);
      plugin && plugin->descriptor().config_schema) {
    FIREHUB_RETURN_IF_ERROR(validateConfig(plugin->descriptor().config_schema, spec.config_json));
  }
  if (!spec.file_drop.dir.empty()) {
    auto dir = resolveFileDropDir(spec.file_drop.dir, drops_);
    if (!dir.isOk()) return dir.status();
    spec.file_drop.dir = dir.value();
  }
  auto instance = connectors_.create(spec.connector, spec.config_json);
  if (!instance.isOk()) return instance.status();
  if (spec.created_at == 0) spec.created_at = nowSeconds();
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta("feed/" + spec.id, feedSpecToJson(spec)));
  auto feed = std::make_shared<Feed>(spec, std::move(instance).value(), "");
  feed->setPaused(spec.paused);
  feed->setStopped(spec.stopped);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto old = feeds_.find(spec.id); old != feeds_.end()) {  // a replaced feed keeps its counts
      auto& from = old->second->counters();
      auto& to = feed->counters();
      to.accepted = from.accepted.load();
      to.rejected = from.rejected.load();
      to.duplicates = from.duplicates.load();
      to.last_record_at = from.last_record_at.load();
    }
    feeds_[spec.id] = feed;
  }
  FIREHUB_LOG(
      kInfo, "registry",
      "feed " << spec.id << " (" << spec.agency << ", " << spec.connector << ") registered");
  if (on_active_) on_active_(*feed);
  return feed;
}

std::shared_ptr<Feed> FeedRegistry::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = feeds_.find(id);
  return it == feeds_.end() ? nullptr : it->second;
}

size_t FeedRegistry::activateWaiting() {
  size_t activated = 0;
  for (const auto& feed : list()) {
    if (feed->connector() || !connectors_.has(feed->spec().connector)) continue;
    auto replaced = create(feed->spec(), /*replace=*/true);
    if (replaced.isOk()) {
      ++activated;
    } else {
      FIREHUB_LOG(kWarning, "registry",
                  "feed " << feed->spec().id << " stays inactive: " << replaced.status().message());
    }
  }
  return activated;
}

Status FeedRegistry::setPaused(const std::string& id, bool paused) {
  auto feed = get(id);
  if (!feed) return Status::notFound("no feed '" + id + "'");
  FeedSpec spec = feed->spec();
  spec.paused = paused;
  if (!paused) spec.stopped.clear();
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta("feed/" + id, feedSpecToJson(spec)));
  feed->setPaused(paused);
  if (!paused) feed->setStopped("");
  FIREHUB_LOG(kInfo, "registry", "feed " << id << (paused ? " paused" : " resumed"));
  return Status::ok();
}

Status FeedRegistry::stop(const std::string& id, const std::string& reason) {
  auto feed = get(id);
  if (!feed) return Status::notFound("no feed '" + id + "'");
  FeedSpec spec = feed->spec();
  spec.paused = true;
  spec.stopped = reason;
  feed->setPaused(true);
  feed->setStopped(reason);
  FIREHUB_LOG(kWarning, "registry", "feed " << id << " stopped by its error policy: " << reason);
  return lake_.putMeta("feed/" + id, feedSpecToJson(spec));
}

Status FeedRegistry::remove(const std::string& id) {
  auto feed = get(id);
  if (!feed) return Status::notFound("no feed '" + id + "'");
  FIREHUB_RETURN_IF_ERROR(lake_.deleteMeta("feed/" + id));
  {
    std::lock_guard<std::mutex> lock(mu_);
    feeds_.erase(id);
  }
  FIREHUB_LOG(kInfo, "registry", "feed " << id << " deleted (its records stay in the lake)");
  return Status::ok();
}

std::vector<std::shared_ptr<Feed>> FeedRegistry::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Feed>> out;
  for (const auto& [_, f] : feeds_) out.push_back(f);
  return out;
}

}  // namespace firehub::registry
