#include <gtest/gtest.h>

#include "firehub/testkit/decode.h"

extern "C" const fh_connector_descriptor* fh_connector_building(void);

namespace firehub::testkit {
namespace {

using firehub::v1::Building;

TEST(BuildingConnectorTest, FeaturesMapWithTheirGeometry) {
  auto d = decodeWith(fh_connector_building(), fixture("building", "buildings.geojson"),
                      "application/json");
  ASSERT_TRUE(d.status.isOk());
  ASSERT_EQ(d.records.size(), 4u);
  const auto& mall = d.records[0];
  EXPECT_EQ(mall.entity_type(), "building");
  ASSERT_TRUE(mall.geometry().has_polygon());
  EXPECT_EQ(mall.geometry().polygon().rings(0).points_size(), 5);
  const auto& b = mall.building();
  EXPECT_EQ(b.occupancy(), Building::OCCUPANCY_LARGE_COMMERCIAL_COMPLEX);
  EXPECT_TRUE(b.key_unit());
  EXPECT_EQ(b.floors(), 24);
  EXPECT_DOUBLE_EQ(b.height_m(), 98.5);
  EXPECT_EQ(b.year_built(), 2009);
  EXPECT_EQ(b.credit_status(), Building::CREDIT_STATUS_NORMAL);
  EXPECT_TRUE(d.records[1].geometry().has_multi_polygon());
  EXPECT_EQ(d.records[1].building().occupancy(), Building::OCCUPANCY_ELDERLY_CARE);
  EXPECT_EQ(d.records[1].building().credit_status(), Building::CREDIT_STATUS_BLACK_LIST);
  EXPECT_FALSE(d.records[2].building().has_height_m());
  EXPECT_FALSE(d.records[3].building().key_unit());
  EXPECT_EQ(d.records[3].building().credit_status(), Building::CREDIT_STATUS_NORMAL);  // default
}

TEST(BuildingConnectorTest, HazardsAreLocatedByTheirBuilding) {
  auto d = decodeWith(fh_connector_building(), fixture("building", "hazards.csv"), "text/csv");
  ASSERT_EQ(d.records.size(), 2u);
  const auto& h = d.records[0];
  EXPECT_EQ(h.entity_type(), "building_hazard");
  EXPECT_FALSE(h.has_geometry());
  EXPECT_EQ(h.located_by().entity_type(), "building");
  EXPECT_EQ(h.located_by().entity_id(), "SY-B-000001");
  EXPECT_EQ(h.building_hazard().level(), firehub::v1::BuildingHazard::LEVEL_MAJOR);
  EXPECT_EQ(d.records[1].building_hazard().status(), firehub::v1::BuildingHazard::STATUS_RECTIFIED);
  EXPECT_EQ(d.records[1].observed_at().seconds(),
            d.records[1].building_hazard().rectified_at().seconds());
  auto missing = decodeWith(fh_connector_building(),
                            "hazard_id,building_id,type,level,status,found_at,rectified_at\n"
                            "H9,B1,blocked_exit,general,verified,2026-11-01T10:00:00+08:00,\n",
                            "text/csv");
  ASSERT_EQ(missing.reasons.size(), 1u);
  EXPECT_NE(missing.reasons[0].find("'rectified_at' is required"), std::string::npos);
}

TEST(BuildingConnectorTest, InvalidFeatures) {
  auto d = decodeWith(fh_connector_building(), fixture("building", "buildings.invalid.geojson"),
                      "application/json");
  EXPECT_TRUE(d.records.empty());
  ASSERT_EQ(d.reasons.size(), 8u);
  EXPECT_NE(d.reasons[0].find("'occupancy' = 'castle'"), std::string::npos);
  EXPECT_NE(d.reasons[1].find("'floors' = 2.5 must be a whole number"), std::string::npos)
      << d.reasons[1];
  EXPECT_NE(d.reasons[3].find("ring needs at least 4 positions"), std::string::npos)
      << d.reasons[3];
  EXPECT_NE(d.reasons[4].find("'LineString' is not Point, Polygon or MultiPolygon"),
            std::string::npos);
  EXPECT_NE(d.reasons[6].find("'key_unit' is not a valid value"), std::string::npos);
}

}  // namespace
}  // namespace firehub::testkit
