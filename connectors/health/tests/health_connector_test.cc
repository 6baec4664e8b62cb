#include <gtest/gtest.h>

#include "firehub/testkit/decode.h"

extern "C" const fh_connector_descriptor* fh_connector_health(void);

namespace firehub::testkit {
namespace {

using firehub::v1::HealthFacility;

TEST(HealthConnectorTest, LocationsFirstThenBedPatches) {
  auto d = decodeWith(fh_connector_health(), fixture("health", "bundle.json"), "application/json");
  ASSERT_TRUE(d.status.isOk());
  ASSERT_EQ(d.records.size(), 4u);
  // Locations come out before the observations, whatever the bundle order.
  EXPECT_EQ(d.records[0].op(), firehub::v1::OP_UPSERT);
  EXPECT_EQ(d.records[1].op(), firehub::v1::OP_UPSERT);
  const auto& hospital = d.records[0].health_facility();
  EXPECT_EQ(hospital.facility_id(), "cmu1");
  EXPECT_EQ(hospital.kind(), HealthFacility::KIND_HOSPITAL);
  EXPECT_EQ(hospital.operational_status(), HealthFacility::OPERATIONAL_STATUS_OPEN);
  EXPECT_EQ(d.records[1].health_facility().kind(), HealthFacility::KIND_ELDERLY_CARE);
  const auto& er = d.records[2];
  EXPECT_EQ(er.op(), firehub::v1::OP_PATCH);
  EXPECT_EQ(er.entity_id(), "cmu1");
  EXPECT_EQ(er.health_facility().beds_emergency_available(), 12);
  EXPECT_EQ(d.records[3].health_facility().beds_burn_available(), 3);
  EXPECT_TRUE(d.reasons.empty());
}

TEST(HealthConnectorTest, InvalidResourcesNameTheFhirPath) {
  auto d = decodeWith(fh_connector_health(), fixture("health", "bundle.invalid.json"),
                      "application/json");
  EXPECT_TRUE(d.records.empty());
  ASSERT_EQ(d.reasons.size(), 8u);
  EXPECT_EQ(d.reasons[0], "Bundle.entry[7].resource: missing");
  EXPECT_NE(d.reasons[1].find("Bundle.entry[0].resource.position: missing"), std::string::npos)
      << d.reasons[1];
  EXPECT_NE(d.reasons[3].find("Bundle.entry[2].resource.status: 'closed'"), std::string::npos);
  EXPECT_NE(d.reasons[4].find("Bundle.entry[3].resource.code"), std::string::npos);
  EXPECT_NE(d.reasons[5].find("subject.reference: must reference a Location"), std::string::npos);
  EXPECT_NE(d.reasons[6].find("valueQuantity.value: must be a whole number"), std::string::npos);
  EXPECT_NE(d.reasons[7].find("effectiveDateTime"), std::string::npos);
  EXPECT_EQ(decodeWith(fh_connector_health(), "{}", "application/json").status.code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace firehub::testkit
