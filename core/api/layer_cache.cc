// Rendered cell layers kept for maps that ask again, and gzip for browsers.
#include "api/layer_parts.h"
#include "api/layers.h"

#include <Poco/DeflatingStream.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/String.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>

#include <algorithm>
#include <cmath>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string_view>

#include "firehub/bus.h"
#include "firehub/classification.h"

namespace firehub::api {

bool acceptsGzip(const std::string& accept_encoding) {
  // Codings separated by commas, each optionally ";q=<weight>".
  size_t start = 0;
  while (start <= accept_encoding.size()) {
    size_t end = accept_encoding.find(',', start);
    if (end == std::string::npos) end = accept_encoding.size();
    std::string coding = accept_encoding.substr(start, end - start);
    std::string weight;
    if (size_t semi = coding.find(';'); semi != std::string::npos) {
      weight = coding.substr(semi + 1);
      coding.resize(semi);
    }
    Poco::trimInPlace(coding);
    Poco::toLowerInPlace(coding);
    if (coding == "gzip") {
      Poco::trimInPlace(weight);
      if (weight.rfind("q=", 0) != 0) return true;
      return std::strtod(weight.c_str() + 2, nullptr) > 0;
    }
    start = end + 1;
  }
  return false;
}

std::string gzipped(const std::string& body) {
  std::ostringstream out;
  {
    // The fastest level: a layer view is compressed on the request that first asks for it.
    Poco::DeflatingOutputStream deflate(out, Poco::DeflatingStreamBuf::STREAM_GZIP, 1);
    deflate.write(body.data(), static_cast<std::streamsize>(body.size()));
    deflate.close();
  }
  return std::move(out).str();
}

std::shared_ptr<const std::string> LayerCache::get(const std::string& key, uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.version != version) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.body;
}

void LayerCache::put(const std::string& key, uint64_t version,
                     std::shared_ptr<const std::string> body) {
  if (!body || body->size() > max_bytes_ / 4) return;  // one response may not crowd out the rest
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.body->size();
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  lru_.push_front(key);
  bytes_ += body->size();
  entries_.emplace(key, Entry{version, std::move(body), lru_.begin()});
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto oldest = entries_.find(lru_.back());
    bytes_ -= oldest->second.body->size();
    entries_.erase(oldest);
    lru_.pop_back();
  }
}

LayerCache::Held LayerCache::held() {
  Held h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    h.responses = bytes_;
  }
  {
    std::lock_guard<std::mutex> lock(features_mu_);
    h.features = feature_bytes_;
  }
  {
    std::lock_guard<std::mutex> lock(polygons_mu_);
    h.polygons = polygon_bytes_;
  }
  std::lock_guard<std::mutex> lock(spare_mu_);
  h.spare = spare_bytes_;
  return h;
}

std::string LayerCache::borrowBuffer() {
  std::lock_guard<std::mutex> lock(spare_mu_);
  if (spare_.empty()) return {};
  std::string buffer = std::move(spare_.back());
  spare_.pop_back();
  spare_bytes_ -= buffer.capacity();
  buffer.clear();
  return buffer;
}

void LayerCache::returnBuffer(std::string buffer) {
  std::lock_guard<std::mutex> lock(spare_mu_);
  if (spare_.size() >= kSpareBuffers || spare_bytes_ + buffer.capacity() > max_spare_bytes_) return;
  spare_bytes_ += buffer.capacity();
  spare_.push_back(std::move(buffer));
}

std::string_view LayerCache::polygonOf(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(polygons_mu_);
    auto it = polygons_.find(id);
    // The view stays valid: polygons are never erased, and rehashing keeps the nodes.
    if (it != polygons_.end()) return it->second;
  }
  std::string polygon = cellPolygon(id);
  std::lock_guard<std::mutex> lock(polygons_mu_);
  if (polygon_bytes_ + polygon.size() > max_polygon_bytes_) return {};  // rendered by the caller
  auto [it, added] = polygons_.emplace(id, std::move(polygon));
  if (added) polygon_bytes_ += it->second.size();
  return it->second;
}

void LayerCache::appendCellFeature(std::string& out, const firehub::v1::RiskCell& cell, uint64_t id,
                                   uint64_t stamp, uint32_t properties) {
  const bool whole = properties == kAllCellProperties;
  if (whole && stamp != 0) {
    std::lock_guard<std::mutex> lock(features_mu_);
    auto it = features_.find(id);
    if (it != features_.end() && it->second.stamp == stamp) {
      out += it->second.text;
      return;
    }
  }
  const size_t start = out.size();
  appendRiskCellFeature(out, cell, nullptr, properties, polygonOf(id));
  if (!whole || stamp == 0) return;  // only whole features are kept (selections are cheap to write)
  std::string text = out.substr(start);
  std::lock_guard<std::mutex> lock(features_mu_);
  if (feature_bytes_ + text.size() > max_feature_bytes_) {
    features_.clear();
    feature_bytes_ = 0;
  }
  auto& kept = features_[id];
  feature_bytes_ += text.size();
  feature_bytes_ -= kept.text.size();
  kept.stamp = stamp;
  kept.text = std::move(text);
}

}  // namespace firehub::api
