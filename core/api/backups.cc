// POST /api/v1/backups and GET /api/v1/backups: a backup of the running hub's lake into a folder
// under backup.root (admins only), and its progress.
#include <Poco/JSON/Object.h>

#include <chrono>
#include <regex>

#include "api/paging.h"
#include "api/router.h"
#include "firehub/api.h"
#include "firehub/log.h"

namespace firehub::api {
namespace {

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

BackupJobs::~BackupJobs() {
  if (thread_.joinable()) thread_.join();
}

Status BackupJobs::start(const std::string& name) {
  if (root_.empty())
    return Status::failedPrecondition("backups are off: an operator sets backup.root first");
  static const std::regex kName("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
  if (!std::regex_match(name, kName))
    return Status::invalidArgument(
        "field 'to' must be a folder name under backup.root "
        "([A-Za-z0-9._-], at most 64)");
  std::lock_guard<std::mutex> lock(mu_);
  if (running_)
    return Status::failedPrecondition("a backup to " + to_ + " is running; wait for it");
  if (thread_.joinable()) thread_.join();
  running_ = true;
  to_ = name;
  error_.clear();
  bytes_ = 0;
  done_.reset();
  started_ms_ = wallMs();
  finished_ms_ = 0;
  const std::string dir = root_ + "/" + name;
  thread_ = std::thread([this, dir] {
    log::nameThread("fh-backup");
    FIREHUB_LOG(kInfo, "backup", "backing the lake up to " << dir);
    auto made = lake_.backup(
        dir,
        [this](uint64_t bytes) {
          std::lock_guard<std::mutex> held(mu_);
          bytes_ = bytes;
        },
        rate_limit_mb_ << 20);
    std::lock_guard<std::mutex> held(mu_);
    running_ = false;
    finished_ms_ = wallMs();
    if (made.isOk()) {
      done_ = made.value();
      bytes_ = made->bytes;
      FIREHUB_LOG(kInfo, "backup",
                  "backup " << made->id << " in " << dir << ": " << made->files << " files, "
                            << made->bytes << " bytes, " << (finished_ms_ - started_ms_) << " ms");
    } else {
      error_ = made.status().message();
      FIREHUB_LOG(kError, "backup", "backup to " << dir << " failed: " << error_);
    }
  });
  return Status::ok();
}

std::string BackupJobs::stateJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  Poco::JSON::Object o;
  o.set("enabled", !root_.empty());
  o.set("running", running_);
  if (!to_.empty()) o.set("to", to_);
  o.set("bytes", bytes_);
  if (started_ms_) o.set("started_at", isoMillis(started_ms_));
  if (finished_ms_) o.set("finished_at", isoMillis(finished_ms_));
  if (!error_.empty()) o.set("error", error_);
  if (done_) {
    Poco::JSON::Object b;
    b.set("id", done_->id);
    b.set("files", done_->files);
    b.set("bytes", done_->bytes);
    o.set("backup", b);
  }
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

// POST /api/v1/backups {"to": "<folder under backup.root>"}: 202 and the job's state.
void Router::startBackup(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) {
    discardBody(req, resp);
    return sendError(resp, body.status());
  }
  if (!who_.canAdminister()) return (void)forbid(resp, "backups are made by admins");
  if (!ctx_.backups || !ctx_.backups->enabled())
    return sendError(
        resp, Status::failedPrecondition("backups are off: an operator sets backup.root first"));
  std::string to;
  try {
    auto v = Poco::JSON::Parser().parse(body.value());
    auto obj = v.extract<Poco::JSON::Object::Ptr>();
    if (!obj->has("to") || !obj->get("to").isString())
      return sendError(resp, Status::invalidArgument("field 'to' is required"));
    to = obj->getValue<std::string>("to");
  } catch (const Poco::Exception&) {
    return sendError(resp, Status::invalidArgument("body must be a JSON object {\"to\": ...}"));
  }
  audit_target_ = bounded(to, 64);
  if (Status s = ctx_.backups->start(to); !s.isOk()) return sendError(resp, s);
  send(resp, 202, ctx_.backups->stateJson());
}

// GET /api/v1/backups: the last (or running) backup's state.
void Router::backupState(HTTPServerResponse& resp) {
  if (!who_.canAdminister()) return (void)forbid(resp, "backups are made by admins");
  if (!ctx_.backups) return send(resp, 200, R"({"enabled":false,"running":false,"bytes":0})");
  send(resp, 200, ctx_.backups->stateJson());
}

}  // namespace firehub::api
