#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/transport.h"

namespace firehub::transport {
namespace fs = std::filesystem;

namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool stillBeingWritten(const std::string& name) {
  auto ends = [&](const char* suffix) {
    size_t n = std::char_traits<char>::length(suffix);
    return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
  };
  return name.empty() || name[0] == '.' || ends(".part") || ends(".tmp");
}

// Moves `from` into `dir`, never over an existing file of the same name.
std::error_code moveInto(const fs::path& from, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ec;
  fs::path to = dir / from.filename();
  for (int i = 1; fs::exists(to) && i < 1000; ++i) {
    to = dir / (from.filename().string() + "." + std::to_string(i));
  }
  fs::rename(from, to, ec);
  return ec;
}

}  // namespace

std::vector<std::string> splitBody(const std::string& data, const std::string& type, size_t chunk) {
  std::vector<std::string> out;
  bool line_based = type == "text/csv" || type == "application/x-ndjson";
  if (!line_based || data.size() <= chunk) {
    out.push_back(data);
    return out;
  }
  std::string header;
  size_t pos = 0;
  if (type == "text/csv") {
    size_t nl = data.find('\n');
    header = data.substr(0, nl == std::string::npos ? data.size() : nl + 1);
    pos = header.size();
  }
  while (pos < data.size()) {
    size_t end = std::min(data.size(), pos + chunk);
    if (end < data.size()) {
      size_t nl = data.find('\n', end);
      end = nl == std::string::npos ? data.size() : nl + 1;
    }
    std::string piece = header;
    piece.append(data, pos, end - pos);
    out.push_back(std::move(piece));
    pos = end;
  }
  return out;
}

std::string contentTypeOfFile(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".csv") return "text/csv";
  if (ext == ".ndjson" || ext == ".jsonl") return "application/x-ndjson";
  if (ext == ".json") return "application/json";
  if (ext == ".geojson") return "application/geo+json";
  if (ext == ".xml" || ext == ".cap") return "application/xml";
  return "";
}

FileDrops::FileDrops(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds, lake::Lake& lake,
                     FileDropOptions options)
    : pipeline_(pipeline), feeds_(feeds), lake_(lake), options_(options) {}

FileDrops::~FileDrops() { stop(); }

void FileDrops::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    log::nameThread("fh-file-drop");
    run();
  });
}

void FileDrops::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FileDrops::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    if (!options_.holds_duty || options_.holds_duty()) scanOnce();
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms), [this] { return stop_; });
  }
}

size_t FileDrops::scanOnce() {
  size_t finished = 0;
  for (const auto& feed : feeds_.list()) {
    const auto& drop = feed->spec().file_drop;
    if (drop.dir.empty() || !feed->connector() || feed->paused()) continue;
    auto& backoff = backoff_[feed->spec().id];
    if (nowMs() < backoff.until_ms) continue;
    // Checked again on every scan: a folder swapped for a symlink since registration is refused.
    auto dir = registry::resolveFileDropDir(drop.dir, feeds_.fileDropPolicy());
    if (!dir.isOk() || dir.value() != drop.dir) {
      feed->setLastError("file drop " + drop.dir + " not watched: " +
                         (dir.isOk() ? "it now leads to " + dir.value() : dir.status().message()));
      continue;
    }
    std::error_code ec;
    fs::create_directories(drop.dir, ec);
    std::vector<fs::directory_entry> files;
    for (fs::directory_iterator it(drop.dir, ec), end; !ec && it != end; it.increment(ec)) {
      // Symlinks are not followed: only files that are themselves in the folder are read.
      if ((it->is_symlink(ec) || it->is_regular_file(ec)) &&
          !stillBeingWritten(it->path().filename().string())) {
        files.push_back(*it);
      }
    }
    if (ec) {
      feed->setLastError("file drop " + drop.dir + ": " + ec.message());
      continue;
    }
    // Oldest first, so records arrive in the order the agency wrote them.
    std::sort(files.begin(), files.end(),
              [](const fs::directory_entry& a, const fs::directory_entry& b) {
                std::error_code e1, e2;
                auto ta = a.last_write_time(e1), tb = b.last_write_time(e2);
                return ta != tb ? ta < tb : a.path() < b.path();
              });
    for (const auto& f : files) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return finished;
      }
      if (!ingestFile(*feed, f.path().string())) {
        // The lake (or the feed) cannot take it now: back off, then start again from this file.
        static thread_local std::mt19937 rng{std::random_device{}()};
        backoff.delay_ms = backoff.delay_ms == 0 ? options_.poll_ms
                                                 : std::min<int64_t>(backoff.delay_ms * 2, 60000);
        backoff.until_ms = nowMs() + std::uniform_int_distribution<int64_t>(backoff.delay_ms / 2,
                                                                            backoff.delay_ms)(rng);
        break;
      }
      backoff = Backoff{};
      ++finished;
    }
  }
  return finished;
}

bool FileDrops::ingestFile(registry::Feed& feed, const std::string& path) {
  const auto& spec = feed.spec();
  const std::string name = fs::path(path).filename().string();
  std::error_code ec;
  // A link leads to a file that is not the agency's to hand over (a symlink to the hub's key, a
  // hard link to a file elsewhere on the disk): set aside unread.
  if (fs::is_symlink(fs::symlink_status(path, ec)) || fs::hard_link_count(path, ec) > 1) {
    failFile(feed, path, "'" + name + "' is a symbolic or hard link; only plain files are read",
             /*keep_bytes=*/false);
    return true;
  }
  auto size = fs::file_size(path, ec);
  if (ec) return true;  // gone meanwhile
  if (size > options_.max_file_bytes) {
    failFile(feed, path,
             "file is " + std::to_string(size) + " bytes, more than the limit of " +
                 std::to_string(options_.max_file_bytes));
    return true;
  }
  std::string type =
      spec.file_drop.content_type.empty() ? contentTypeOfFile(path) : spec.file_drop.content_type;
  if (type.empty()) {
    failFile(feed, path,
             "cannot tell the format of '" + name +
                 "': use .csv, .json, .ndjson, .geojson or .xml, or set file_drop.content_type");
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) {
    feed.setLastError("file drop: cannot read " + path);
    return false;
  }
  std::string data = buffer.str();
  uint64_t accepted = 0, rejected = 0, duplicates = 0;
  for (const auto& piece : splitBody(data, type, options_.chunk_bytes)) {
    pipeline::IngestRequest req;
    req.feed_id = spec.id;
    req.body = piece;
    req.content_type = type;
    req.transport = "file";
    auto result = pipeline_.ingest(req);
    if (!result.isOk()) {
      if (result.status().code() == StatusCode::kInvalidArgument) {
        failFile(feed, path, result.status().message());
        return true;
      }
      // Lake trouble, or the feed was paused/stopped: the file stays and is read again later
      // (what was committed already counts as duplicates then).
      feed.setLastError("file drop " + name + ": " + result.status().message());
      FIREHUB_LOG(
          kWarning, "transport",
          "feed " << spec.id << ": file " << name << " waits: " << result.status().message());
      return false;
    }
    accepted += result->accepted;
    rejected += result->rejected;
    duplicates += result->duplicates;
  }
  ec = moveInto(path, fs::path(spec.file_drop.dir) / "done");
  if (ec) {
    feed.setLastError("file drop: cannot move " + name + " to done/: " + ec.message());
    return false;
  }
  FIREHUB_LOG(kInfo, "transport",
              "feed " << spec.id << ": file " << name << " done (" << accepted << " accepted, "
                      << rejected << " rejected, " << duplicates << " duplicates)");
  return true;
}

void FileDrops::failFile(registry::Feed& feed, const std::string& path, const std::string& reason,
                         bool keep_bytes) {
  const auto& spec = feed.spec();
  const std::string name = fs::path(path).filename().string();
  firehub::v1::DeadLetter dl;
  dl.set_feed_id(spec.id);
  dl.set_agency(spec.agency);
  if (auto* c = feed.connector()) {
    dl.set_connector_id(c->plugin().descriptor().id);
    dl.set_connector_version(c->plugin().descriptor().version);
    dl.set_restricted(domainHasRestrictedFields(c->plugin().descriptor().domain));
  }
  dl.set_stage("transport");
  dl.set_reason("file " + name + ": " + reason);
  *dl.mutable_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  dl.set_source_offset("file " + name);
  dl.set_content_type(spec.file_drop.content_type.empty() ? contentTypeOfFile(path)
                                                          : spec.file_drop.content_type);
  // The whole file up to 16 MiB (replayable); of a larger one its first MiB, enough to see what
  // was sent (not replayable: the file itself is kept in failed/ to be dropped again).
  std::error_code size_ec;
  const auto size = fs::file_size(path, size_ec);
  const bool whole = keep_bytes && !size_ec && size <= (16u << 20);
  if (keep_bytes) {
    std::ifstream in(path, std::ios::binary);
    std::string head(whole ? size : (1u << 20), '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    dl.set_raw(head);
  }
  if (!whole) dl.set_content_type(pipeline::kTruncatedType);
  auto committed = lake_.commit({}, {dl});
  if (!committed.isOk()) {
    FIREHUB_LOG(kError, "transport",
                "feed " << spec.id << ": cannot dead-letter file " << name << ": "
                        << committed.status().message());
  }
  std::error_code ec = moveInto(path, fs::path(spec.file_drop.dir) / "failed");
  feed.setLastError(dl.reason());
  FIREHUB_LOG(kWarning, "transport",
              "feed " << spec.id << ": " << dl.reason()
                      << (ec ? " (could not move it to failed/: " + ec.message() + ")" : ""));
}

}  // namespace firehub::transport
