// What the layer files of the api module share: JSON text helpers, the legend bands of the
// coverage layers, cell polygons and the JSON of a warning. Private to the api module.
#pragma once

#include <google/protobuf/util/time_util.h>

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include "api/layers.h"
#include "firehub/bus.h"

namespace firehub::api {

inline void appendQuoted(std::string& out, std::string_view s) { bus::appendJsonString(out, s); }

inline std::string quote(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  appendQuoted(out, s);
  return out;
}

// Fixed-point with `precision` decimals, as printf's %.*f.
inline void appendNum(std::string& out, double v, int precision = 2) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  if (ec == std::errc()) {
    out.append(buf, end);
  } else {
    int n = std::snprintf(buf, sizeof buf, "%.*f", precision, v);
    out.append(buf, static_cast<size_t>(std::max(0, std::min<int>(n, sizeof buf - 1))));
  }
}

inline std::string num(double v, int precision = 2) {
  std::string out;
  appendNum(out, v, precision);
  return out;
}

inline Reply error(int status, const std::string& code, const std::string& detail) {
  return {status, R"({"error":)" + quote(code) + R"(,"detail":)" + quote(detail) + "}"};
}

inline std::string isoTime(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return google::protobuf::util::TimeUtil::ToString(t);
}

struct Band {
  const char* key;
  const char* label;
  const char* label_zh;
  const char* colour;
};

extern const Band kResponseBands[4];
extern const Band kWaterBands[3];

const Band& responseBand(double s);

const Band& waterBand(const firehub::v1::RiskCell& c);

void appendCellPolygon(std::string& out, uint64_t id);

std::string cellPolygon(uint64_t id);

std::string warningJson(const firehub::v1::WarningDraft& d);

}  // namespace firehub::api
