// Layers decided above: the parent's risk cells, read by the link on the rhythm of the warnings
// (GET /api/v1/tiers/layers/risk, revalidated by ETag), kept in the lake's meta so that a
// restart or a cut link keeps the last copy, and served by the child as its parent_risk layer.
#include <google/protobuf/io/coded_stream.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/tiers.h"

namespace firehub::tiers {
namespace {

// The lake meta entry of the parent's risk layer: its ETag, a newline, the cells as read.
constexpr const char* kParentRiskKey = "upstream/layer/risk";

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string coordinate(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

const std::vector<std::string>& downLayers() {
  static const std::vector<std::string> l = {"risk"};
  return l;
}

firehub::v1::RiskCell cellForChild(const firehub::v1::RiskCell& cell) {
  firehub::v1::RiskCell out = cell;
  out.clear_factors();
  out.clear_nearest_station();
  redactRestricted(out);
  return out;
}

Status ParentLayer::replace(std::string_view delimited, std::string etag, int64_t read_ms) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(delimited.data()),
                                            static_cast<int>(delimited.size()));
  in.SetTotalBytesLimit(static_cast<int>(std::min<size_t>(delimited.size() + 16, INT32_MAX)));
  std::vector<firehub::v1::RiskCell> cells;
  while (!in.ExpectAtEnd()) {
    uint32_t size = 0;
    if (!in.ReadVarint32(&size) || size > (1u << 20))
      return Status::invalidArgument("cell " + std::to_string(cells.size() + 1) +
                                     ": not a size-delimited firehub.v1.RiskCell");
    const auto limit = in.PushLimit(static_cast<int>(size));
    firehub::v1::RiskCell c;
    if (!c.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
      return Status::invalidArgument("cell " + std::to_string(cells.size() + 1) +
                                     " does not parse");
    in.PopLimit(limit);
    if (!std::isfinite(c.score()) || !std::isfinite(c.center().lon()) ||
        !std::isfinite(c.center().lat()))
      return Status::invalidArgument("cell " + c.cell() + ": a number is not finite");
    if (cells.size() == kMaxParentCells)
      return Status::resourceExhausted("more than " + std::to_string(kMaxParentCells) + " cells");
    cells.push_back(std::move(c));
  }
  std::lock_guard<std::mutex> lock(mu_);
  cells_ = std::move(cells);
  etag_ = std::move(etag);
  read_ms_ = read_ms;
  ++version_;
  return Status::ok();
}

size_t ParentLayer::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cells_.size();
}

std::string ParentLayer::etag() const {
  std::lock_guard<std::mutex> lock(mu_);
  return etag_;
}

int64_t ParentLayer::readMs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return read_ms_;
}

void ParentLayer::forEachIn(const lake::BBox& bbox,
                            const std::function<bool(const firehub::v1::RiskCell&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : cells_) {
    if (!bbox.contains(c.center().lon(), c.center().lat())) continue;
    if (!fn(c)) return;
  }
}

bool Upstream::bringsDown(const std::string& layer) const {
  return std::find(options_.layers.begin(), options_.layers.end(), layer) != options_.layers.end();
}

// What an earlier run kept of the parent's risk layer (nothing when it was never read).
Status Upstream::loadParentRisk() {
  if (!bringsDown("risk")) return Status::ok();
  auto kept = lake_.getMeta(kParentRiskKey);
  if (!kept.isOk()) return kept.status();
  if (!kept.value()) return Status::ok();
  const std::string& v = *kept.value();
  const size_t nl = v.find('\n');
  if (nl == std::string::npos)
    return Status::dataLoss(std::string(kParentRiskKey) + ": no ETag line");
  Status s = parent_risk_.replace(std::string_view(v).substr(nl + 1), v.substr(0, nl), 0);
  if (!s.isOk()) return Status::dataLoss(std::string(kParentRiskKey) + ": " + s.message());
  FIREHUB_LOG(kInfo, "tiers",
              "the parent's risk layer as last read: " << parent_risk_.size() << " cells");
  return Status::ok();
}

Status Upstream::downRisk() {
  std::string url = options_.url + "/api/v1/tiers/layers/risk";
  const auto& b = options_.layers_bbox;
  if (b.min_lon > -180 || b.min_lat > -90 || b.max_lon < 180 || b.max_lat < 90) {
    url += "?bbox=" + coordinate(b.min_lon) + "," + coordinate(b.min_lat) + "," +
           coordinate(b.max_lon) + "," + coordinate(b.max_lat);
  }
  std::map<std::string, std::string> headers = {{"Authorization", "Bearer " + options_.key},
                                                {"X-Firehub-Tier-Name", options_.here},
                                                {"X-Firehub-Tier-Level", options_.level}};
  const std::string etag = parent_risk_.etag();
  if (!etag.empty()) headers["If-None-Match"] = etag;
  auto answer = net::request(options_.outbound, "GET", url, headers, "", "", options_.timeout_s,
                             size_t{256} << 20);
  if (!answer.isOk()) return answer.status();
  const int64_t now = nowMs();
  if (answer->status == 304) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.layer_read_ms = now;
    status_.layer_error.clear();
    return Status::ok();
  }
  if (answer->status != 200) {
    return Status::unavailable("the parent answered HTTP " + std::to_string(answer->status) + ": " +
                               answer->body.substr(0, 500));
  }
  if (answer->cut) return Status::resourceExhausted("the parent's risk layer exceeds 256 MiB");
  FIREHUB_RETURN_IF_ERROR(parent_risk_.replace(answer->body, answer->etag, now));
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kParentRiskKey, answer->etag + "\n" + answer->body));
  std::lock_guard<std::mutex> lock(mu_);
  status_.layer_read_ms = now;
  status_.layer_error.clear();
  return Status::ok();
}

}  // namespace firehub::tiers
