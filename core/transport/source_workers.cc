#include <chrono>

#include "firehub/log.h"
#include "firehub/transport.h"
#include "internal.h"

namespace firehub::transport {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status keepUnreadable(lake::Lake& lake, const registry::FeedSpec& spec, const std::string& reason,
                      std::string_view raw, const std::string& where,
                      const std::string& content_type,
                      const std::vector<std::pair<std::string, std::string>>& meta) {
  firehub::v1::DeadLetter dl;
  dl.set_feed_id(spec.id);
  dl.set_agency(spec.agency);
  dl.set_connector_id(spec.connector);
  dl.set_stage("decode");
  dl.set_reason(reason);
  dl.mutable_at()->set_seconds(nowMs() / 1000);
  dl.set_raw(std::string(raw));
  dl.set_source_offset(where);
  dl.set_content_type(content_type);
  auto committed = lake.commit(
      {}, {dl},
      [&](const lake::CommitResult&, std::vector<std::pair<std::string, std::string>>& out) {
        out.insert(out.end(), meta.begin(), meta.end());
      });
  return committed.isOk() ? Status::ok() : committed.status();
}

void SourceWorkers::start() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void SourceWorkers::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<std::string, std::unique_ptr<SourceWorker>> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  workers.clear();  // each stops, outside the lock
}

bool SourceWorkers::with(const std::string& feed,
                         const std::function<void(SourceWorker&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(feed);
  if (it == workers_.end()) return false;
  fn(*it->second);
  return true;
}

void SourceWorkers::run() {
  log::nameThread(("fh-" + kind_.name.substr(0, 10)).c_str());
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    // The feeds with such a source now, as registered (a changed definition: a new worker).
    std::map<std::string, registry::FeedSpec> wanted;
    for (const auto& feed : feeds_.list()) {
      if (kind_.has(feed->spec())) wanted.emplace(feed->spec().id, feed->spec());
    }
    std::vector<std::unique_ptr<SourceWorker>> gone;
    std::vector<std::pair<std::string, std::unique_ptr<SourceWorker>>> started;
    {
      std::lock_guard<std::mutex> held(mu_);
      for (auto it = workers_.begin(); it != workers_.end();) {
        auto w = wanted.find(it->first);
        if (w == wanted.end() || !kind_.same(w->second, it->second->spec())) {
          gone.push_back(std::move(it->second));
          it = workers_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& [id, spec] : wanted) {
        if (!workers_.count(id)) started.emplace_back(id, kind_.make(spec));
      }
    }
    gone.clear();  // stopped outside the lock
    for (auto& [id, w] : started) {
      if (Status s = w->start(); !s.isOk()) {
        w->failed(s.message());  // shown in the feed's state; tried again when it changes
      } else {
        FIREHUB_LOG(kInfo, kind_.name.c_str(), "feed " << id << " " << kind_.describe(w->spec()));
      }
      std::lock_guard<std::mutex> held(mu_);
      workers_[id] = std::move(w);
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
  }
}

}  // namespace firehub::transport
