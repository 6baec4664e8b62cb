// The bench's generated weather data, shared by `firehub bench ingest` and the pipeline
// micro-benchmark so both push the same bytes: 1,000 stations, one reading each per minute from
// 2026-11-18T00:00:00Z on.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdio>
#include <string>

#include "firehub/lake.h"
#include "firehub/v1/time_text.h"

namespace firehub::cli {

// The generated data's clock: seconds after 2026-11-18T00:00:00Z as RFC 3339 text.
inline std::string benchTime(int64_t seconds_after) {
  google::protobuf::Timestamp t;
  t.set_seconds(1795000000 + seconds_after);
  return firehub::v1::rfc3339(t);
}

// One weather observation i (1,000 stations, one reading per station per minute).
struct Observation {
  char station[8];
  double lon, lat, temp, wind, precip;
  int rh, dir;
  char when[32];
};
inline Observation observation(size_t i) {
  const size_t stations = 1000;
  Observation o{};
  size_t s = i % stations;
  std::snprintf(o.station, sizeof o.station, "S%05zu", s);
  std::snprintf(o.when, sizeof o.when, "%s",
                benchTime(static_cast<int64_t>(i / stations) * 60).c_str());
  o.lon = 122.9 + (s % 40) * 0.025;
  o.lat = 41.4 + (s / 40) * 0.03;
  o.temp = -5.0 + (i % 170) * 0.1;
  o.rh = static_cast<int>(20 + i % 70);
  o.wind = 5.0 + (i % 30);
  o.dir = static_cast<int>(i % 360);
  o.precip = (i % 50 == 0) ? 1.2 : 0.0;
  return o;
}

// Observations first .. first + n - 1 as one body: CSV with its header line, or JSON lines as a
// station would log them.
inline std::string observationBody(size_t first, size_t n, bool csv) {
  std::string body =
      csv ? "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n" : "";
  char line[320];
  for (size_t i = first; i < first + n; ++i) {
    Observation o = observation(i);
    if (csv) {
      std::snprintf(line, sizeof line, "%s,%.5f,%.5f,%s,%.1f,%d,%.1f,%d,%.1f\n", o.station, o.lon,
                    o.lat, o.when, o.temp, o.rh, o.wind, o.dir, o.precip);
    } else {
      std::snprintf(
          line, sizeof line,
          "{\"station_id\":\"%s\",\"lon\":%.5f,\"lat\":%.5f,\"time\":\"%s\",\"temp_c\":%.1f,"
          "\"rh_pct\":%d,\"wind_kmh\":%.1f,\"wind_dir_deg\":%d,\"precip_mm\":%.1f}\n",
          o.station, o.lon, o.lat, o.when, o.temp, o.rh, o.wind, o.dir, o.precip);
    }
    body += line;
  }
  return body;
}

// A record of the synthetic regions (`bench fusion`, `bench map`): an entity placed at lon/lat,
// observed at one fixed time; the caller fills its body.
inline lake::StoreItem benchItem(const std::string& domain, const std::string& type,
                                 const std::string& id, double lon, double lat) {
  lake::StoreItem it;
  auto& r = it.record();
  r.set_id("bench:" + id);
  r.set_domain(domain);
  r.set_entity_type(type);
  r.set_entity_id(id);
  r.set_feed_id("bench");
  r.mutable_observed_at()->set_seconds(1795300000);
  r.mutable_geometry()->mutable_point()->set_lon(lon);
  r.mutable_geometry()->mutable_point()->set_lat(lat);
  return it;
}

}  // namespace firehub::cli
