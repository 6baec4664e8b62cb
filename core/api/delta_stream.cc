// The live stream of risk deltas shared by the open event streams.
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

DeltaStream::DeltaStream(size_t keep) : keep_(keep) {
  epoch_ = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
}

void DeltaStream::publish(const fusion::FusionDelta& delta) {
  // A step that only applied records (no cell moved, no warning): nothing for the stream.
  if (delta.cells.empty() && delta.removed.empty() && delta.warnings.empty()) return;
  std::string text = R"({"features":[)";
  text.reserve(delta.cells.size() * 720 + 64);
  for (size_t i = 0; i < delta.cells.size(); ++i) {
    if (i) text += ',';
    auto prev = delta.previous.find(delta.cells[i].cell());  // the level before, in properties
    appendRiskCellFeature(text, delta.cells[i],
                          prev != delta.previous.end() ? &prev->second : nullptr);
  }
  text += R"(],"removed":[)";
  for (size_t i = 0; i < delta.removed.size(); ++i) {
    if (i) text += ',';
    text += quote(delta.removed[i]);
  }
  text += R"(],"warnings":[)";
  for (size_t i = 0; i < delta.warnings.size(); ++i) {
    if (i) text += ',';
    text += warningJson(delta.warnings[i]);
  }
  text += "]}";
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_ += text.size();
    events_.push_back({next_++, std::move(text)});
    // At most `keep_` events and `kKeepBytes` of them (a full recompute can make one event of
    // every cell); the newest always stays. A client behind the oldest kept event gets `reset`.
    constexpr size_t kKeepBytes = 64u << 20;
    while (events_.size() > keep_ || (bytes_ > kKeepBytes && events_.size() > 1)) {
      bytes_ -= events_.front().text.size();
      events_.pop_front();
    }
  }
  cv_.notify_all();
}

void DeltaStream::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::string DeltaStream::currentId() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_ + "-" + std::to_string(next_ - 1);
}

bool DeltaStream::next(std::string& last_event_id, std::string& out, bool& reset, int wait_ms) {
  out.clear();
  reset = false;
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t after = next_ - 1;
  size_t dash = last_event_id.find('-');
  if (!last_event_id.empty()) {
    if (dash == std::string::npos || last_event_id.substr(0, dash) != epoch_) {
      reset = true;  // another run of the hub: the client reloads the layer
    } else {
      after = std::strtoull(last_event_id.c_str() + dash + 1, nullptr, 10);
      if (after + 1 < (events_.empty() ? next_ : events_.front().n))
        reset = true;  // too far behind
      if (after > next_ - 1) reset = true;
    }
  }
  if (reset) {
    last_event_id = epoch_ + "-" + std::to_string(next_ - 1);
    return !closed_;
  }
  cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
               [&] { return closed_ || next_ - 1 > after; });
  if (closed_) return false;
  for (const auto& e : events_) {
    if (e.n <= after) continue;
    out += "id: " + epoch_ + "-" + std::to_string(e.n) + "\nevent: delta\ndata: " + e.text + "\n\n";
    after = e.n;
  }
  last_event_id = epoch_ + "-" + std::to_string(after);
  return true;
}

}  // namespace firehub::api
