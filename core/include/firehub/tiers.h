// Tiers: county, city and province hubs linked upward. A lower hub forwards what its data-
// sharing agreement allows (domains, an area, restricted fields only when granted) to its parent
// over HTTP(S) with an agency key the parent issued; the parent stores the records as its own
// with their origin (pipeline::ingestForwarded) and fuses them into its layers.
//
// Store and forward: the lower hub's lake log is the buffer. The upstream link reads the log
// from its cursor (the last log sequence the parent confirmed, kept in the lake's meta), sends
// batches in log order, and moves the cursor only after the parent's 2xx; a cut link leaves the
// records in the log and the link retries with back-off, then sends the backlog in order. A
// batch resent after a lost answer is stored once (the parent skips ids it holds).
// @remark Thread-safe; one thread per link.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "firehub/lake.h"
#include "firehub/metrics.h"
#include "firehub/net.h"
#include "firehub/status.h"
#include "firehub/tiles.h"
#include "firehub/v1/layer.pb.h"

namespace firehub::tiers {

// tier.level's values, lowest first.
const std::vector<std::string>& levels();

// The layers a parent hub sends down (upstream.layers), and the name each has at the child.
const std::vector<std::string>& downLayers();
inline constexpr const char* kParentRiskLayer = "parent_risk";
// The most cells a layer brought down may have (the parent refuses more, naming the bbox).
inline constexpr size_t kMaxParentCells = 500000;

// A risk cell as it goes down to a child: where, its level and score, when computed; no factors
// (they name the parent's records, which the child cannot open). Restricted fields removed.
firehub::v1::RiskCell cellForChild(const firehub::v1::RiskCell& cell);

// The parent's risk layer as the child last read it (and keeps across restarts and cut links).
// @remark Thread-safe.
class ParentLayer {
 public:
  // Replaces the cells with those of `delimited` (size-delimited firehub.v1.RiskCell); nothing
  // changes when the body does not parse. `etag`: the parent's, for the next read.
  Status replace(std::string_view delimited, std::string etag, int64_t read_ms);
  // Changes whenever the cells do (0: never read).
  uint64_t version() const { return version_.load(); }
  size_t size() const;
  std::string etag() const;
  int64_t readMs() const;
  // The cells whose centre lies in `bbox` (all with an empty one), in no order; `fn` false stops.
  void forEachIn(const lake::BBox& bbox,
                 const std::function<bool(const firehub::v1::RiskCell&)>& fn) const;

 private:
  mutable std::mutex mu_;
  std::vector<firehub::v1::RiskCell> cells_;
  std::string etag_;
  int64_t read_ms_ = 0;
  std::atomic<uint64_t> version_{0};
};

// The lake meta entry holding the link's cursor: the last log sequence the parent confirmed.
inline constexpr const char* kUpstreamCursorKey = "upstream/cursor";

struct UpstreamOptions {
  std::string here;                  // tier.name
  std::string level;                 // tier.level
  std::string url;                   // upstream.url: the parent hub's base URL
  std::string key;                   // the key read from upstream.key_file
  std::vector<std::string> domains;  // upstream.domains; empty: every domain
  std::vector<tiles::Area> area;     // upstream.area; empty: everywhere
  bool restricted = false;           // upstream.restricted: the agreement grants them
  size_t batch = 2000;               // records per POST at most (upstream.batch)
  int timeout_s = 30;                // seconds the parent has to answer a batch
  int max_backoff_s = 30;            // the longest wait between tries while it fails
  net::OutboundPolicy outbound;
  // Downward: every `down_interval_s` the link asks the parent for the CAP warnings it drafted
  // or received (GET /api/v1/tiers/down) and hands the body to `store_down` (the pipeline's
  // ingestFromParent). Null: nothing comes down.
  int down_interval_s = 10;
  std::function<Status(std::string_view body, size_t& stored)> store_down;
  // Layers read from the parent on the same rhythm (upstream.layers: "risk"), for the cells in
  // `layers_bbox` (upstream.area's bounds; empty: all), kept in the lake's meta.
  std::vector<std::string> layers;
  lake::BBox layers_bbox;
};

struct UpstreamStatus {
  std::string url;
  uint64_t cursor = 0;         // the last log sequence the parent confirmed (or passed over)
  uint64_t last_sequence = 0;  // the lake's newest
  uint64_t seen = 0;           // every log entry up to here was read (sent, or left out)
  // Sequences past `seen` and the cursor: an upper bound of the records waiting (the hub's
  // bookkeeping entries share the numbering); 0 when the link has caught up.
  uint64_t backlog = 0;
  double lag_s = 0;      // age of the oldest record not yet confirmed (0: none)
  uint64_t sent = 0;     // records the parent confirmed since the start
  uint64_t skipped = 0;  // records the agreement leaves out since the start
  int64_t last_success_ms = 0;
  int64_t last_attempt_ms = 0;
  std::string last_error;  // of the last try, empty after a success
  int failures = 0;        // tries failed in a row
  // Downward: warnings stored from the parent since the start, the last read, its error.
  uint64_t down_stored = 0;
  int64_t down_last_success_ms = 0;
  std::string down_error;
  // The parent's risk layer as last read: cells, when, the last read's error.
  size_t layer_cells = 0;
  int64_t layer_read_ms = 0;
  std::string layer_error;
};

class Upstream {
 public:
  Upstream(lake::Lake& lake, Metrics& metrics, UpstreamOptions options);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  Status start();
  void stop();
  // New records were committed: send without waiting for the next poll.
  void wake();
  UpstreamStatus status();
  // The parent's risk layer (empty unless upstream.layers names it).
  const ParentLayer& parentRisk() const { return parent_risk_; }
  bool bringsDown(const std::string& layer) const;

 private:
  void run();
  // One batch from the cursor: read, filtered, sent, confirmed. `idle` when nothing was left.
  Status step(bool& idle);
  bool forwarded(const firehub::v1::Record& r) const;
  // One read of what the parent sends down.
  Status down();
  // One read of the parent's risk layer (304 when it has not changed).
  Status downRisk();
  Status loadParentRisk();

  lake::Lake& lake_;
  UpstreamOptions options_;
  prometheus::Gauge& backlog_gauge_;
  prometheus::Gauge& lag_gauge_;
  prometheus::Gauge& success_gauge_;
  prometheus::Counter& sent_counter_;
  prometheus::Counter& failed_counter_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  UpstreamStatus status_;
  ParentLayer parent_risk_;
  std::thread thread_;
};

}  // namespace firehub::tiers
