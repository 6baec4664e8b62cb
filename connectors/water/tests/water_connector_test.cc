#include <gtest/gtest.h>

#include "firehub/testkit/decode.h"

extern "C" const fh_connector_descriptor* fh_connector_water(void);

namespace firehub::testkit {
namespace {

TEST(WaterConnectorTest, RegistryRowsMapEveryField) {
  auto d = decodeWith(fh_connector_water(), fixture("water", "sources.csv"), "text/csv");
  ASSERT_TRUE(d.status.isOk()) << d.status.toString();
  ASSERT_EQ(d.records.size(), 6u);
  const auto& r = d.records[0];
  EXPECT_EQ(r.domain(), "water");
  EXPECT_EQ(r.entity_type(), "water_source");
  EXPECT_EQ(r.entity_id(), "SY-H-00001");
  EXPECT_EQ(r.op(), firehub::v1::OP_UPSERT);
  EXPECT_EQ(r.water_source().kind(), firehub::v1::WaterSource::KIND_HYDRANT);
  EXPECT_EQ(r.water_source().status(), firehub::v1::WaterSource::STATUS_IN_SERVICE);
  EXPECT_DOUBLE_EQ(r.water_source().pressure_mpa(), 0.32);
  EXPECT_EQ(r.observed_at().seconds(), 1795140000);  // 2026-11-20T10:00:00+08:00
  EXPECT_DOUBLE_EQ(r.geometry().point().lon(), 123.4301);
  EXPECT_FALSE(d.records[1].water_source().has_pressure_mpa());
  EXPECT_EQ(d.records[1].water_source().status(), firehub::v1::WaterSource::STATUS_OUT_OF_SERVICE);
  EXPECT_EQ(d.records[4].water_source().kind(), firehub::v1::WaterSource::KIND_NATURAL_INTAKE);
  EXPECT_EQ(d.records[5].water_source().kind(), firehub::v1::WaterSource::KIND_WATER_CRANE);
}

TEST(WaterConnectorTest, GeoJsonFeaturesTakeTheirPointGeometry) {
  auto d =
      decodeWith(fh_connector_water(), fixture("water", "sources.geojson"), "application/json");
  ASSERT_EQ(d.records.size(), 2u);
  EXPECT_DOUBLE_EQ(d.records[0].geometry().point().lon(), 123.4511);
  EXPECT_DOUBLE_EQ(d.records[0].water_source().pressure_mpa(), 0.28);
}

TEST(WaterConnectorTest, TelemetryIsAPatchWithoutGeometry) {
  auto d =
      decodeWith(fh_connector_water(), fixture("water", "pressure.ndjson"), "application/x-ndjson");
  ASSERT_EQ(d.records.size(), 2u);
  const auto& r = d.records[1];
  EXPECT_EQ(r.op(), firehub::v1::OP_PATCH);
  EXPECT_FALSE(r.has_geometry());
  EXPECT_EQ(r.entity_id(), "SY-H-00003");
  EXPECT_DOUBLE_EQ(r.water_source().pressure_mpa(), 0.06);
  EXPECT_EQ(r.water_source().pressure_at().seconds(), 1795305600);
  EXPECT_EQ(r.provenance().source_record_id(), "SY-H-00003@2026-11-22T00:00:00Z");
}

TEST(WaterConnectorTest, InvalidRowsNameTheirField) {
  auto d = decodeWith(fh_connector_water(), fixture("water", "sources.invalid.csv"), "text/csv");
  EXPECT_TRUE(d.records.empty());
  ASSERT_EQ(d.reasons.size(), 7u);
  EXPECT_NE(d.reasons[0].find(
                "'kind' = 'fountain' is not one of hydrant, pool, natural_intake, water_crane"),
            std::string::npos)
      << d.reasons[0];
  EXPECT_NE(d.reasons[1].find("'status'"), std::string::npos);
  EXPECT_NE(d.reasons[2].find("'pressure_mpa' = 2.5 is outside [0, 2]"), std::string::npos)
      << d.reasons[2];
  EXPECT_NE(d.reasons[3].find("'pressure_mpa' = -0.1"), std::string::npos);
  EXPECT_NE(d.reasons[4].find("'lat'"), std::string::npos);
  EXPECT_NE(d.reasons[5].find("'source_id'"), std::string::npos);
  EXPECT_NE(d.reasons[6].find("'pressure_mpa' is not a valid value"), std::string::npos);
}

TEST(WaterConnectorTest, SameContentSameIdChangedContentNewVersion) {
  std::string header = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
  auto a =
      decodeWith(fh_connector_water(), header + "H1,hydrant,123,41,in_service,0.3,\n", "text/csv");
  auto b =
      decodeWith(fh_connector_water(), header + "H1,hydrant,123,41,in_service,0.3,\n", "text/csv");
  auto c = decodeWith(fh_connector_water(), header + "H1,hydrant,123,41,out_of_service,0.3,\n",
                      "text/csv");
  EXPECT_EQ(a.records[0].provenance().source_record_id(),
            b.records[0].provenance().source_record_id());
  EXPECT_NE(a.records[0].provenance().source_record_id(),
            c.records[0].provenance().source_record_id());
}

}  // namespace
}  // namespace firehub::testkit
