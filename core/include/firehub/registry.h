// The feed registry: which agency feeds exist, which connector decodes each, and their live
// counters. Feeds are stored in the lake's meta column family ("feed/<id>") and survive restarts;
// feeds.d/*.json files are applied at start.
// @remark Thread-safe. A Feed's pushes (decode and commit) run under Feed::pushMutex() only.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <Poco/JSON/Object.h>

#include "firehub/lake.h"
#include "firehub/plugin.h"
#include "firehub/status.h"

namespace firehub::registry {

// What the pipeline does with a feed's bad records and transient failures.
struct ErrorPolicy {
  // all: dead-letter bad records and keep the rest; none: the first bad record stops the feed
  // (nothing of that body is stored; the feed refuses data until it is resumed).
  enum class Tolerance { kAll, kNone };
  Tolerance tolerance = Tolerance::kAll;
  // Retries of a retryable failure (the lake busy or failing to read/write) inside one push,
  // with exponential back-off and full jitter from backoff_ms up to max_backoff_ms.
  int retries = 3;
  int64_t backoff_ms = 50;
  int64_t max_backoff_ms = 2000;
  bool operator==(const ErrorPolicy&) const = default;
};

// A directory the hub watches for files of one feed (the file-drop transport).
struct FileDrop {
  std::string dir;           // under file_drop.root (relative to it, or absolute); empty = none
  std::string content_type;  // empty = from the file's extension (.csv, .json, .ndjson, .xml)
  bool operator==(const FileDrop&) const = default;
};

// A feed that reads an agency's Kafka topics instead of being pushed to: each message goes
// through the feed's connector as a push body would (of `content_type`), and the next offset of
// its partition is stored in the same lake commit as its records.
struct KafkaSource {
  std::string bootstrap;  // the agency's brokers, host:port[,host:port...]
  std::vector<std::string> topics;
  std::string group;         // consumer group; default "firehub.<feed id>"
  std::string content_type;  // of every message; default application/json
  // librdkafka settings passed through (security.*, sasl.*, ssl.*, client.id, ...); those whose
  // name holds "password", "secret" or ".key" are never shown back by the API.
  std::map<std::string, std::string> properties;
  bool operator==(const KafkaSource&) const = default;
};
// A feed that polls an agency's HTTP API: every interval the hub GETs `url` (headers sent,
// ETag and Last-Modified honoured), reads the answer through the feed's connector as a push
// body, and follows the pages (a Link rel="next", a next URL in the answer, or a cursor sent back
// as a query parameter). Where the poll is (the next URL, the validators) is stored in the same
// lake commit as each page's records, so a restart neither skips nor repeats a page.
struct PollSource {
  std::string url;  // http:// or https://, no credentials in it
  int64_t interval_s = 300;
  int64_t timeout_s = 30;  // at most interval_s (its default when that is shorter)
  // Sent with every request (Authorization, an API key...); never shown back by the API.
  std::map<std::string, std::string> headers;
  std::string content_type;  // empty: the answer's own Content-Type (its charset honoured)
  // Pages: "link" (the answer's Link header, rel="next"), or a path in the answer's JSON
  // ("links.next", "data.next_url": Poco JSON query syntax) holding the next page's URL.
  std::string next;
  // Cursor pages: `cursor` is the path in the answer's JSON of the next cursor, sent back as
  // the query parameter `cursor_param` (the agency's "since"/"cursor"/"page_token").
  std::string cursor;
  std::string cursor_param;
  // Where the records are in a JSON answer ("data", "result.list"): that array goes to the
  // connector as the body. Empty: the whole answer.
  std::string items;
  int64_t max_pages = 100;  // pages read one after another in one poll
  bool operator==(const PollSource&) const = default;
};
// The meta entry of a poll source's place (JSON: next URL, validators).
std::string pollStateKey(const std::string& feed);
// A URL as the API and dead letters show it: the values of query parameters whose names look
// like keys (key, token, secret, password, sign, auth) as "********".
std::string displayUrl(const std::string& url);

// A feed that subscribes to topics on an agency's MQTT broker (an IoT platform): QoS 1 in a
// persistent session; a message is acknowledged to the broker only after its records are in the
// lake, so a crash loses nothing (the broker sends it again, the lake keeps it once).
struct MqttSource {
  std::string host;
  int64_t port = 1883;
  std::vector<std::string> topics;  // filters, + and # allowed
  std::string client_id;            // default "firehub-<feed id>"; the session's name
  std::string username;
  std::string password;  // never shown back
  bool tls = false;
  std::string ca_file;       // PEM of the CAs the broker's certificate is checked against
  std::string content_type;  // of every message; default application/json
  int64_t keepalive_s = 60;
  bool operator==(const MqttSource&) const = default;
};

// The meta entry of a Kafka source's next offset in one partition.
std::string kafkaOffsetKey(const std::string& feed, const std::string& topic, int partition);
// Whether a librdkafka setting's value is a secret (not shown back).
bool secretProperty(const std::string& name);

struct FeedSpec {
  std::string id;         // [a-z0-9][a-z0-9._-]{0,63}
  std::string agency;     // owner agency id, same pattern
  std::string connector;  // e.g. firehub.connector.weather
  std::string config_json = "{}";
  std::string description;
  int64_t cadence_s = 0;   // expected interval between updates; 0 = unknown
  int64_t created_at = 0;  // unix seconds
  bool paused = false;     // a paused feed refuses pushes (409) until resumed
  std::string stopped;     // why the error policy stopped the feed (it is paused too); "" = not
  ErrorPolicy errors;
  FileDrop file_drop;
  KafkaSource kafka;  // topics empty: not a Kafka source
  PollSource poll;    // url empty: not polled
  MqttSource mqtt;    // topics empty: not an MQTT source
  // What a text body without a declared charset is read as: utf-8, gb18030 (GBK and GB2312
  // too), or auto (UTF-8 when it is valid, else GB18030).
  std::string encoding = "utf-8";
  // What the connector's positions are in: wgs84, cgcs2000 (taken as WGS 84), gcj02 (Chinese
  // web maps) or bd09 (Baidu); converted to WGS 84 on ingest.
  std::string crs = "wgs84";
  // The sheet of an .xlsx body that is read (empty: the first).
  std::string sheet;
};

struct FeedCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<int64_t> last_record_at{0};  // unix seconds of the last accepted push
};

class Feed {
 public:
  Feed(FeedSpec spec, std::unique_ptr<plugin::ConnectorInstance> instance, std::string state_reason)
      : spec_(std::move(spec)), instance_(std::move(instance)), reason_(std::move(state_reason)) {}
  const FeedSpec& spec() const { return spec_; }
  // Null when the feed's connector is not loaded (reason() says why).
  plugin::ConnectorInstance* connector() { return instance_.get(); }
  const std::string& reason() const { return reason_; }
  // Held for one push, from decode through commit: the connector instance is not shared
  // between threads, and the counters are written with the batch they count.
  std::timed_mutex& pushMutex() { return push_mu_; }
  // When the connector started decoding the body in hand (steady ms), 0 when idle.
  std::atomic<int64_t>& decodingSince() { return decoding_since_ms_; }
  // Why the connector itself is failing (threw, emitted garbage), "" when its last body went
  // through. Cleared by the next clean decode.
  std::string fault() const {
    std::lock_guard<std::mutex> lock(error_mu_);
    return fault_;
  }
  void setFault(const std::string& reason) {
    std::lock_guard<std::mutex> lock(error_mu_);
    fault_ = reason;
  }
  FeedCounters& counters() { return counters_; }
  bool paused() const { return paused_.load(); }
  void setPaused(bool paused) { paused_ = paused; }
  // Why the error policy stopped the feed, "" when it did not (or it was resumed since).
  std::string stoppedReason() const {
    std::lock_guard<std::mutex> lock(error_mu_);
    return stopped_;
  }
  void setStopped(const std::string& reason) {
    std::lock_guard<std::mutex> lock(error_mu_);
    stopped_ = reason;
  }
  // Data older than twice the declared cadence (false when the cadence is unknown or nothing
  // arrived yet).
  bool stale(int64_t now_s) const {
    int64_t last = counters_.last_record_at.load();
    return spec_.cadence_s > 0 && last > 0 && now_s - last > 2 * spec_.cadence_s;
  }
  void setLastError(const std::string& e) {
    std::lock_guard<std::mutex> lock(error_mu_);
    last_error_ = e;
  }
  std::string lastError() const {
    std::lock_guard<std::mutex> lock(error_mu_);
    return last_error_;
  }

 private:
  FeedSpec spec_;
  std::unique_ptr<plugin::ConnectorInstance> instance_;
  std::string reason_;
  std::timed_mutex push_mu_;
  std::atomic<int64_t> decoding_since_ms_{0};
  FeedCounters counters_;
  std::atomic<bool> paused_{false};
  mutable std::mutex error_mu_;
  std::string last_error_;
  std::string stopped_;
  std::string fault_;
};

// A feed's counters as stored in the lake's meta (written with the batch they count).
struct FeedStats {
  uint64_t accepted = 0, rejected = 0, duplicates = 0;
  int64_t last_record_at = 0;
};
std::string feedStatsKey(const std::string& feed_id);
std::string encodeFeedStats(const FeedStats& stats);
bool decodeFeedStats(const std::string& text, FeedStats& stats);

// Where file drops may be: under an operator's root, never the data dir, inside it or above it.
struct FileDropPolicy {
  std::string root;      // file_drop.root; empty: no file drops at all
  std::string data_dir;  // the hub's data dir
};
// The directory a feed's file_drop.dir names, made absolute (relative names are under the root)
// and canonical (symlinks resolved, as far as it exists), or a PermissionDenied saying why it may
// not be used. Checked when a feed is registered and again before every scan of the directory.
Result<std::string> resolveFileDropDir(const std::string& dir, const FileDropPolicy& policy);

// Parses a feed definition (the body of POST /api/v1/feeds or a feeds.d file).
Result<FeedSpec> parseFeedSpec(const std::string& json);

// Checks a feed's config (JSON object text) against its connector's config schema: a 400
// (invalid argument) naming the key and the rule it breaks, or a failed precondition when the
// schema itself uses keywords this hub does not check.
Status validateConfig(const std::string& schema_json, const std::string& config_json);
std::string feedSpecToJson(const FeedSpec& spec);
// `secrets` false: as the API shows it (a Kafka source's secret settings as "********").
Poco::JSON::Object feedSpecObject(const FeedSpec& spec, bool secrets = true);

class FeedRegistry {
 public:
  FeedRegistry(lake::Lake& lake, plugin::ConnectorRegistry& connectors, FileDropPolicy drops = {})
      : lake_(lake), connectors_(connectors), drops_(std::move(drops)) {}
  const FileDropPolicy& fileDropPolicy() const { return drops_; }
  // Stored feeds that could not be loaded, or loaded without a part of them (a file drop outside
  // the root, a listener that cannot bind): "feed <id>: <why>", for /readyz.
  std::vector<std::string> loadFailures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return load_failures_;
  }

  // Loads stored feeds. A feed whose connector is missing is kept, without an instance.
  Status load();
  // Applies feeds.d/*.json: new feeds are created, identical ones left alone, changed ones
  // replaced. A bad file is logged and skipped.
  void loadDirectory(const std::string& dir);

  // Validates the spec and its config against the connector, stores it, and returns the feed.
  // AlreadyExists when a different feed with the same id exists (an identical one is returned).
  Result<std::shared_ptr<Feed>> create(FeedSpec spec, bool replace = false);
  std::shared_ptr<Feed> get(const std::string& id) const;
  // Pauses or resumes a feed (stored, so it survives a restart). Resuming also clears a stop.
  Status setPaused(const std::string& id, bool paused);
  // Stops a feed for its error policy: paused, with the reason stored.
  Status stop(const std::string& id, const std::string& reason);
  // Gives feeds whose connector was missing an instance, now that it may be loaded. Returns how
  // many became active.
  size_t activateWaiting();
  // Removes a feed from the registry; its records stay in the lake.
  Status remove(const std::string& id);
  // Takes feed `id` as the lake's meta now holds it (another node of the cluster registered,
  // changed or deleted it): the in-memory feed is made, replaced or dropped; nothing is written.
  Status adoptStored(const std::string& id);
  // Called with every feed that becomes active (created, replaced or loaded), e.g. to start its
  // transport. Set before load().
  void setActivationListener(std::function<void(Feed&)> fn) { on_active_ = std::move(fn); }
  std::vector<std::shared_ptr<Feed>> list() const;

 private:
  // Makes the in-memory feed of a stored definition (replacing one of the same id).
  void install(const std::string& json);
  lake::Lake& lake_;
  plugin::ConnectorRegistry& connectors_;
  FileDropPolicy drops_;
  mutable std::mutex mu_;
  std::vector<std::string> load_failures_;
  std::map<std::string, std::shared_ptr<Feed>> feeds_;
  std::function<void(Feed&)> on_active_;
};

}  // namespace firehub::registry
