#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/time_util.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <chrono>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/pipeline.h"
#include "firehub/tiers.h"

namespace firehub::tiers {
namespace {

using google::protobuf::util::TimeUtil;
using pipeline::kFromParentTransport;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

prometheus::Gauge& gauge(Metrics& m, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(m.registry()).Add({});
}
prometheus::Counter& counter(Metrics& m, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(m.registry()).Add({});
}

// Where a record lies for the area test: the point the lake places it by.
bool placeOf(const firehub::v1::Record& r, double& lon, double& lat) {
  auto at = lake::representativePoint(r.geometry());
  if (!at) return false;
  lon = at->lon;
  lat = at->lat;
  return true;
}

}  // namespace

const std::vector<std::string>& levels() {
  static const std::vector<std::string> l = {"county", "city", "province"};
  return l;
}

Upstream::Upstream(lake::Lake& lake, Metrics& metrics, UpstreamOptions options)
    : lake_(lake),
      options_(std::move(options)),
      backlog_gauge_(gauge(metrics, "firehub_upstream_backlog_records",
                           "Sequences past what the parent hub confirmed: an upper bound of the "
                           "records waiting (0: caught up)")),
      lag_gauge_(gauge(metrics, "firehub_upstream_lag_seconds",
                       "Age of the oldest record the parent hub has not confirmed (0: none)")),
      success_gauge_(gauge(metrics, "firehub_upstream_last_success_timestamp_seconds",
                           "When the parent hub last confirmed a batch (0: never)")),
      sent_counter_(counter(metrics, "firehub_upstream_sent_records_total",
                            "Records the parent hub confirmed")),
      failed_counter_(counter(metrics, "firehub_upstream_failed_batches_total",
                              "Batches the parent hub did not confirm (sent again later)")) {
  status_.url = options_.url;
  // Retention keeps the log entries the parent hub has not confirmed.
  lake_.holdLog("upstream", [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return status_.cursor + 1;
  });
}

Upstream::~Upstream() {
  stop();
  lake_.holdLog("upstream", nullptr);
}

Status Upstream::start() {
  auto cursor = lake_.getMeta(kUpstreamCursorKey);
  if (!cursor.isOk()) return cursor.status();
  if (cursor.value()) {
    try {
      status_.cursor = std::stoull(*cursor.value());
    } catch (const std::exception&) {
      return Status::dataLoss(std::string(kUpstreamCursorKey) +
                              " is not a sequence: " + *cursor.value());
    }
  }
  FIREHUB_RETURN_IF_ERROR(loadParentRisk());
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  FIREHUB_LOG(kInfo, "tiers",
              options_.here << " (" << options_.level << ") forwards to " << options_.url
                            << " from log sequence " << status_.cursor + 1);
  return Status::ok();
}

void Upstream::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Upstream::wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

UpstreamStatus Upstream::status() {
  std::lock_guard<std::mutex> lock(mu_);
  UpstreamStatus s = status_;
  s.last_sequence = lake_.lastSequence();
  const uint64_t from = std::max(s.cursor, s.seen);
  s.backlog = s.last_sequence > from ? s.last_sequence - from : 0;
  if (s.backlog == 0) s.lag_s = 0;
  s.layer_cells = parent_risk_.size();
  if (!s.layer_read_ms) s.layer_read_ms = parent_risk_.readMs();
  return s;
}

bool Upstream::forwarded(const firehub::v1::Record& r) const {
  if (r.provenance().transport() == kFromParentTransport) return false;  // it came from above
  if (!options_.domains.empty() && std::find(options_.domains.begin(), options_.domains.end(),
                                             r.domain()) == options_.domains.end())
    return false;
  if (options_.area.empty()) return true;
  double lon = 0, lat = 0;
  if (!placeOf(r, lon, lat)) return false;  // no place: not known to lie in the area
  return std::any_of(options_.area.begin(), options_.area.end(),
                     [&](const tiles::Area& a) { return a.contains(lon, lat); });
}

Status Upstream::step(bool& idle) {
  uint64_t cursor = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cursor = status_.cursor;
  }
  // Sequences are shared with the hub's bookkeeping entries (outbox, dead letters): a read that
  // finds no more log entries than it asked for has seen everything up to `before`, which is
  // what the backlog counts from (the cursor itself stays at a log entry read).
  const uint64_t before = lake_.lastSequence();
  std::vector<std::pair<uint64_t, std::string>> log;
  FIREHUB_RETURN_IF_ERROR(lake_.readLog(cursor + 1, options_.batch, log));
  idle = log.empty();
  if (idle) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.seen = std::max(status_.seen, before);
    return Status::ok();
  }
  // The batch: each forwarded record, redacted unless the agreement grants restricted fields,
  // preceded by its size.
  std::string body;
  size_t records = 0, skipped = 0;
  int64_t oldest_ms = 0;
  {
    google::protobuf::io::StringOutputStream raw(&body);
    google::protobuf::io::CodedOutputStream out(&raw);
    std::vector<std::string> ids;
    ids.reserve(log.size());
    for (const auto& entry : log) ids.push_back(entry.second);
    std::vector<std::optional<std::string>> stored;
    FIREHUB_RETURN_IF_ERROR(lake_.readRecordsBytes(ids, stored));
    firehub::v1::Record r;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!stored[i]) continue;  // a log entry of a record since removed
      if (!r.ParseFromString(*stored[i]))
        return Status::dataLoss("record " + ids[i] + " does not parse");
      if (!forwarded(r)) {
        ++skipped;
        continue;
      }
      if (!oldest_ms) oldest_ms = TimeUtil::TimestampToMilliseconds(r.received_at());
      if (!options_.restricted && redactRestricted(r) > 0) {
        out.WriteVarint32(static_cast<uint32_t>(r.ByteSizeLong()));
        r.SerializeWithCachedSizes(&out);
      } else {  // as stored
        out.WriteVarint32(static_cast<uint32_t>(stored[i]->size()));
        out.WriteRaw(stored[i]->data(), static_cast<int>(stored[i]->size()));
      }
      ++records;
    }
  }
  const uint64_t last = log.back().first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.lag_s = oldest_ms ? std::max<double>(0, (nowMs() - oldest_ms) / 1000.0) : 0;
    status_.last_attempt_ms = nowMs();
  }
  if (records > 0) {
    auto answer = net::post(options_.outbound, options_.url + "/api/v1/tiers/records",
                            {{"Authorization", "Bearer " + options_.key},
                             {"X-Firehub-Tier-Name", options_.here},
                             {"X-Firehub-Tier-Level", options_.level}},
                            "application/vnd.firehub.records+protobuf", body, options_.timeout_s);
    if (!answer.isOk()) return answer.status();
    if (answer->status / 100 != 2) {
      return Status::unavailable("the parent answered HTTP " + std::to_string(answer->status) +
                                 ": " + answer->body.substr(0, 500));
    }
  }
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kUpstreamCursorKey, std::to_string(last)));
  std::lock_guard<std::mutex> lock(mu_);
  status_.cursor = last;
  if (log.size() < options_.batch) {  // caught up with what was there when the read began
    status_.seen = std::max(status_.seen, before);
    status_.lag_s = 0;
  }
  status_.sent += records;
  status_.skipped += skipped;
  if (records > 0) status_.last_success_ms = nowMs();
  status_.last_error.clear();
  status_.failures = 0;
  sent_counter_.Increment(static_cast<double>(records));
  if (records > 0) success_gauge_.Set(static_cast<double>(status_.last_success_ms) / 1000.0);
  return Status::ok();
}

Status Upstream::down() {
  auto answer = net::request(options_.outbound, "GET", options_.url + "/api/v1/tiers/down",
                             {{"Authorization", "Bearer " + options_.key},
                              {"X-Firehub-Tier-Name", options_.here},
                              {"X-Firehub-Tier-Level", options_.level}},
                             "", "", options_.timeout_s, size_t{64} << 20);
  if (!answer.isOk()) return answer.status();
  if (answer->status != 200) {
    return Status::unavailable("the parent answered HTTP " + std::to_string(answer->status) + ": " +
                               answer->body.substr(0, 500));
  }
  if (answer->cut) return Status::resourceExhausted("the parent's warnings exceed 64 MiB");
  size_t stored = 0;
  FIREHUB_RETURN_IF_ERROR(options_.store_down(answer->body, stored));
  std::lock_guard<std::mutex> lock(mu_);
  status_.down_stored += stored;
  status_.down_last_success_ms = nowMs();
  status_.down_error.clear();
  return Status::ok();
}

void Upstream::run() {
  log::nameThread("fh-upstream");
  std::unique_lock<std::mutex> lock(mu_);
  int64_t next_down_ms = 0;
  while (!stopping_) {
    lock.unlock();
    if (options_.store_down && nowMs() >= next_down_ms) {
      next_down_ms = nowMs() + int64_t{options_.down_interval_s} * 1000;
      if (Status d = down(); !d.isOk()) {
        std::lock_guard<std::mutex> held(mu_);
        if (status_.down_error != d.message())
          FIREHUB_LOG(kWarning, "tiers", "warnings from " << options_.url << ": " << d.message());
        status_.down_error = d.message();
      }
      if (bringsDown("risk")) {
        if (Status d = downRisk(); !d.isOk()) {
          std::lock_guard<std::mutex> held(mu_);
          if (status_.layer_error != d.message())
            FIREHUB_LOG(kWarning, "tiers",
                        "risk layer from " << options_.url << ": " << d.message());
          status_.layer_error = d.message();
        }
      }
    }
    bool idle = false;
    Status s = step(idle);
    const UpstreamStatus now = status();
    backlog_gauge_.Set(static_cast<double>(now.backlog));
    lag_gauge_.Set(now.lag_s);
    lock.lock();
    std::chrono::milliseconds wait{0};
    if (!s.isOk()) {
      // Cut link, parent down or refusing: the records stay in the log; try again later, each
      // time waiting longer (up to max_backoff_s).
      failed_counter_.Increment();
      if (status_.failures++ == 0 || status_.last_error != s.message()) {
        FIREHUB_LOG(kWarning, "tiers",
                    "upstream " << options_.url << ": " << s.message() << " (kept; " << now.backlog
                                << " log entries wait)");
      }
      status_.last_error = s.message();
      wait = std::chrono::milliseconds(std::min<int64_t>(
          int64_t{options_.max_backoff_s} * 1000, int64_t{250} << std::min(status_.failures, 10)));
    } else if (idle) {
      wait = std::chrono::milliseconds(500);
    }
    if (wait.count() > 0) {
      woken_ = false;
      cv_.wait_for(lock, wait, [this, &s] { return stopping_ || (woken_ && s.isOk()); });
    }
  }
}

}  // namespace firehub::tiers
