// The lake's upkeep: retention every interval on a thread of its own, and the lake's size by
// column family against the disk budget (gauges, warnings, GET /api/v1/lake).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <sys/statvfs.h>

#include <chrono>

#include "api/paging.h"
#include "firehub/api.h"
#include "firehub/log.h"

namespace firehub::api {
namespace {

int64_t wallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string duration(int64_t micros) {
  const int64_t s = micros / 1000000;
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

// Past this many log sequences behind, the history index's lag is a warning (a writer that keeps
// up is a few commits behind at most).
constexpr uint64_t kHistoryBehindWarning = 1000000;

}  // namespace

LakeUpkeep::LakeUpkeep(lake::Lake& lake, auth::AuditLog* audit, Metrics& metrics,
                       UpkeepOptions options)
    : lake_(lake),
      audit_(audit),
      options_(std::move(options)),
      bytes_(prometheus::BuildGauge()
                 .Name("firehub_lake_bytes")
                 .Help("Bytes of the lake by column family (table files and memtables)")
                 .Register(metrics.registry())),
      budget_(prometheus::BuildGauge()
                  .Name("firehub_lake_disk_budget_bytes")
                  .Help("lake.disk_budget (0: none set)")
                  .Register(metrics.registry())
                  .Add({})),
      free_(prometheus::BuildGauge()
                .Name("firehub_lake_disk_free_bytes")
                .Help("Free bytes of the file system the lake is on")
                .Register(metrics.registry())
                .Add({})),
      history_behind_(prometheus::BuildGauge()
                          .Name("firehub_lake_history_index_behind")
                          .Help("Log sequences the history index has not reached yet (its writer "
                                "catching up after a start, or falling behind the commits)")
                          .Register(metrics.registry())
                          .Add({})),
      removed_(prometheus::BuildCounter()
                   .Name("firehub_retention_removed_total")
                   .Help("What retention removed (records, dead_letters, layer_versions, audit)")
                   .Register(metrics.registry())) {
  budget_.Set(static_cast<double>(options_.disk_budget_bytes));
}

LakeUpkeep::~LakeUpkeep() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LakeUpkeep::start() {
  thread_ = std::thread([this] {
    log::nameThread("fh-upkeep");
    // Sizes every minute; retention every interval (the first a minute after start).
    int64_t next_retention = wallMicros() + 60 * 1000000LL;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(wait_mu_);
        if (wake_.wait_for(lock, std::chrono::seconds(60), [this] { return stop_; })) return;
      }
      for (const auto& w : measure().warnings) FIREHUB_LOG(kWarning, "lake", w);
      if (wallMicros() < next_retention) continue;
      next_retention = wallMicros() + int64_t{options_.interval_s} * 1000000;
      auto done = runOnce(wallMicros());
      if (!done.isOk())
        FIREHUB_LOG(kError, "lake", "retention failed: " << done.status().message());
    }
  });
}

Result<lake::RetentionResult> LakeUpkeep::runOnce(int64_t now_micros) {
  std::lock_guard<std::mutex> lock(mu_);
  auto result = lake_.expire(options_.rules, now_micros);
  last_run_ms_ = now_micros / 1000;
  if (!result.isOk()) {
    last_error_ = result.status().message();
    return result;
  }
  last_error_.clear();
  last_ = result.value();
  last_audit_ = 0;
  if (audit_ && options_.audit_retention_s > 0) {
    auto removed = audit_->expire(now_micros / 1000 - options_.audit_retention_s * 1000);
    if (!removed.isOk()) {
      last_error_ = removed.status().message();
      return removed.status();
    }
    last_audit_ = removed.value();
  }
  removed_.Add({{"what", "records"}}).Increment(static_cast<double>(last_.records));
  removed_.Add({{"what", "dead_letters"}}).Increment(static_cast<double>(last_.dead_letters));
  removed_.Add({{"what", "layer_versions"}}).Increment(static_cast<double>(last_.layer_versions));
  removed_.Add({{"what", "audit"}}).Increment(static_cast<double>(last_audit_));
  if (last_.records + last_.dead_letters + last_.layer_versions + last_audit_ > 0) {
    FIREHUB_LOG(kInfo, "lake",
                "retention removed " << last_.records << " records, " << last_.dead_letters
                                     << " dead letters, " << last_.layer_versions
                                     << " layer versions, " << last_audit_ << " audit entries");
  }
  return result;
}

LakeUpkeep::Measured LakeUpkeep::measure() {
  Measured m;
  m.families = lake_.sizeByFamily();
  for (const auto& [family, bytes] : m.families) {
    bytes_.Add({{"family", family}}).Set(static_cast<double>(bytes));
    m.total += bytes;
  }
  struct statvfs fs {};
  if (::statvfs(lake_.path().c_str(), &fs) == 0) {
    const double free = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
    const double size = static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize);
    free_.Set(free);
    m.disk_free = static_cast<uint64_t>(free);
    if (size > 0 && free / size < 0.05) {
      m.warnings.push_back("the disk of the lake is " +
                           std::to_string(static_cast<int>(100 - 100 * free / size)) +
                           "% full: shorten lake.retention.* or add disk before writes stop");
    }
  }
  m.history_behind = lake_.historyIndexBehind();
  history_behind_.Set(static_cast<double>(m.history_behind));
  if (m.history_behind > kHistoryBehindWarning) {
    m.warnings.push_back("the history index is " + std::to_string(m.history_behind) +
                         " log sequences behind the commits: history and exports wait for it");
  }
  const uint64_t budget = options_.disk_budget_bytes;
  if (budget > 0 && m.total >= budget / 10 * 8) {
    m.warnings.push_back("the lake holds " + std::to_string(m.total >> 20) + " MiB, " +
                         std::to_string(m.total * 100 / budget) +
                         "% of lake.disk_budget: shorten lake.retention.* or raise the budget");
  }
  return m;
}

std::string LakeUpkeep::stateJson() {
  const Measured m = measure();
  Poco::JSON::Object o;
  Poco::JSON::Object bytes;
  for (const auto& [family, n] : m.families) bytes.set(family, n);
  o.set("bytes", bytes);
  o.set("total_bytes", m.total);
  o.set("disk_budget_bytes", options_.disk_budget_bytes);
  Poco::JSON::Array warnings;
  for (const auto& w : m.warnings) warnings.add(w);
  o.set("warnings", warnings);
  o.set("disk_free_bytes", m.disk_free);
  o.set("history_index_behind", m.history_behind);
  Poco::JSON::Object retention;
  Poco::JSON::Object rules;
  for (const auto& [domain, window] : options_.rules.domains) rules.set(domain, duration(window));
  if (options_.rules.dead_letters_micros > 0)
    rules.set("dead_letters", duration(options_.rules.dead_letters_micros));
  if (options_.rules.layer_versions_micros > 0)
    rules.set("layers", duration(options_.rules.layer_versions_micros));
  if (options_.audit_retention_s > 0)
    rules.set("audit", duration(options_.audit_retention_s * 1000000));
  retention.set("rules", rules);
  retention.set("interval_s", options_.interval_s);
  std::lock_guard<std::mutex> lock(mu_);
  if (last_run_ms_ > 0) {
    retention.set("last_run", isoMillis(last_run_ms_));
    if (!last_error_.empty()) retention.set("error", last_error_);
    Poco::JSON::Object removed;
    removed.set("records", last_.records);
    removed.set("dead_letters", last_.dead_letters);
    removed.set("layer_versions", last_.layer_versions);
    removed.set("audit_entries", last_audit_);
    retention.set("removed", removed);
    Poco::JSON::Object kept;
    kept.set("latest_states", last_.kept_latest);
    kept.set("still_needed", last_.kept_needed);
    retention.set("kept_past_window", kept);
  }
  o.set("retention", retention);
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

}  // namespace firehub::api
