#include <gtest/gtest.h>

#include "firehub/testkit/decode.h"

extern "C" const fh_connector_descriptor* fh_connector_station(void);

namespace firehub::testkit {
namespace {

TEST(StationConnectorTest, CsvAndGeoJsonMap) {
  auto csv = decodeWith(fh_connector_station(), fixture("station", "stations.csv"), "text/csv");
  ASSERT_EQ(csv.records.size(), 4u);
  const auto& s = csv.records[0].fire_station();
  EXPECT_EQ(s.kind(), firehub::v1::FireStation::KIND_SPECIAL_DUTY);
  EXPECT_EQ(s.status(), firehub::v1::FireStation::STATUS_IN_SERVICE);
  EXPECT_EQ(s.engines(), 8);
  EXPECT_EQ(s.name(), "沈阳市消防救援支队特勤一站");
  EXPECT_EQ(csv.records[3].fire_station().name(), "中街微型消防站, 沈河");  // quoted field
  EXPECT_EQ(csv.records[2].fire_station().status(),
            firehub::v1::FireStation::STATUS_OUT_OF_SERVICE);
  auto geo = decodeWith(fh_connector_station(), fixture("station", "stations.geojson"),
                        "application/json");
  ASSERT_EQ(geo.records.size(), 2u);
  EXPECT_DOUBLE_EQ(geo.records[0].geometry().point().lon(), 123.347);
  EXPECT_EQ(geo.records[0].observed_at().seconds(),
            1793494800);  // updated_at 2026-11-01T09:00+08:00
  EXPECT_EQ(geo.records[1].fire_station().kind(), firehub::v1::FireStation::KIND_PROFESSIONAL);
}

TEST(StationConnectorTest, InvalidRows) {
  auto d =
      decodeWith(fh_connector_station(), fixture("station", "stations.invalid.csv"), "text/csv");
  EXPECT_TRUE(d.records.empty());
  ASSERT_EQ(d.reasons.size(), 6u);
  EXPECT_NE(d.reasons[0].find("'kind' = 'class9'"), std::string::npos);
  EXPECT_NE(d.reasons[4].find("'engines' must be a whole number"), std::string::npos);
  EXPECT_NE(d.reasons[5].find("'lon' is not a valid value"), std::string::npos);
}

}  // namespace
}  // namespace firehub::testkit
