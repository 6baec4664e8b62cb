// GCJ-02 and BD-09 to WGS 84 and back, against gcoord (tests/crs/reference.mjs, an
// implementation apart from the hub's) on a grid of points across China: within 0.5 m each way,
// and a round trip within a centimetre.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "firehub/pipeline.h"
#include "test_support.h"

namespace firehub::pipeline {
namespace {

// Metres between two lon/lat points (haversine, mean Earth radius).
double metres(lake::LonLat a, lake::LonLat b) {
  constexpr double kR = 6371008.8, kRad = M_PI / 180;
  const double dlat = (b.lat - a.lat) * kRad, dlon = (b.lon - a.lon) * kRad;
  const double h =
      std::sin(dlat / 2) * std::sin(dlat / 2) +
      std::cos(a.lat * kRad) * std::cos(b.lat * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kR * std::asin(std::sqrt(h));
}

struct Reference {
  lake::LonLat p, gcj_to_wgs, bd_to_wgs, wgs_to_gcj, wgs_to_bd;
};

std::vector<Reference> reference() {
  const std::string command = "node " + firehub::testing::sourceDir() + "/tests/crs/reference.mjs";
  std::vector<Reference> out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  std::string text;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  pclose(p);
  std::istringstream in(text);
  Reference r;
  while (in >> r.p.lon >> r.p.lat >> r.gcj_to_wgs.lon >> r.gcj_to_wgs.lat >> r.bd_to_wgs.lon >>
         r.bd_to_wgs.lat >> r.wgs_to_gcj.lon >> r.wgs_to_gcj.lat >> r.wgs_to_bd.lon >>
         r.wgs_to_bd.lat) {
    out.push_back(r);
  }
  return out;
}

TEST(CrsTest, AgreesWithAnIndependentImplementationAcrossChina) {
  const auto grid = reference();
  ASSERT_GT(grid.size(), 400u) << "tests/crs/reference.mjs (npm ci in tests/crs)";
  double worst = 0;
  for (const auto& r : grid) {
    const double d[] = {metres(toWgs84(r.p, Crs::kGcj02), r.gcj_to_wgs),
                        metres(toWgs84(r.p, Crs::kBd09), r.bd_to_wgs),
                        metres(fromWgs84(r.p, Crs::kGcj02), r.wgs_to_gcj),
                        metres(fromWgs84(r.p, Crs::kBd09), r.wgs_to_bd)};
    for (double m : d) {
      EXPECT_LT(m, 0.5) << r.p.lon << "," << r.p.lat;
      worst = std::max(worst, m);
    }
    // The offset itself is hundreds of metres: the comparison means something.
    EXPECT_GT(metres(r.p, r.wgs_to_gcj), 50) << r.p.lon << "," << r.p.lat;
  }
  std::printf("crs: %zu points, largest difference from gcoord %.4f m\n", grid.size(), worst);
}

TEST(CrsTest, TheInverseRoundTrips) {
  for (double lat = 18.5; lat <= 53.5; lat += 0.9) {
    for (double lon = 73.7; lon <= 134.7; lon += 1.3) {
      for (Crs c : {Crs::kGcj02, Crs::kBd09}) {
        const lake::LonLat p{lon, lat};
        EXPECT_LT(metres(fromWgs84(toWgs84(p, c), c), p), 0.01) << lon << "," << lat;
        EXPECT_LT(metres(toWgs84(fromWgs84(p, c), c), p), 0.01) << lon << "," << lat;
      }
    }
  }
}

TEST(CrsTest, OutsideChinaNothingMovesAndCgcs2000IsTakenAsWgs84) {
  const lake::LonLat paris{2.35, 48.85};
  EXPECT_EQ(metres(toWgs84(paris, Crs::kGcj02), paris), 0);
  const lake::LonLat shenyang{123.43, 41.80};
  EXPECT_EQ(metres(toWgs84(shenyang, Crs::kCgcs2000), shenyang), 0);
  firehub::v1::Record r;
  r.mutable_geometry()->mutable_point()->set_lon(123.43);
  r.mutable_geometry()->mutable_point()->set_lat(41.80);
  recordToWgs84(r, Crs::kGcj02);
  EXPECT_EQ(r.provenance().original_crs(), "gcj02");
  EXPECT_DOUBLE_EQ(r.provenance().original_position().lon(), 123.43);
  const double moved =
      metres({123.43, 41.80}, {r.geometry().point().lon(), r.geometry().point().lat()});
  EXPECT_GT(moved, 300);
  EXPECT_LT(moved, 700);
  EXPECT_EQ(parseCrs("wgs-84"), std::nullopt);
}

}  // namespace
}  // namespace firehub::pipeline
