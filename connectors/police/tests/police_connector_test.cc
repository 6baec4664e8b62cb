#include <gtest/gtest.h>

#include "firehub/testkit/decode.h"

extern "C" const fh_connector_descriptor* fh_connector_police(void);

namespace firehub::testkit {
namespace {

TEST(PoliceConnectorTest, IncidentsMapWithRestrictedFieldsKept) {
  auto d =
      decodeWith(fh_connector_police(), fixture("police", "incidents.json"), "application/json");
  ASSERT_TRUE(d.status.isOk());
  ASSERT_EQ(d.records.size(), 3u);
  const auto& r = d.records[0];
  EXPECT_EQ(r.domain(), "police");
  EXPECT_EQ(r.entity_type(), "police_incident");
  EXPECT_EQ(r.classification(), firehub::v1::CLASSIFICATION_INTERNAL);
  const auto& p = r.police_incident();
  EXPECT_EQ(p.type(), firehub::v1::PoliceIncident::TYPE_FIRE_REPORT);
  EXPECT_EQ(p.status(), firehub::v1::PoliceIncident::STATUS_OPEN);
  EXPECT_EQ(p.reporter_name(), "张伟");
  EXPECT_EQ(p.notes(), "三楼窗口冒烟");
  EXPECT_EQ(r.observed_at().seconds(), p.reported_at().seconds());
  EXPECT_EQ(d.records[1].police_incident().type(), firehub::v1::PoliceIncident::TYPE_ROAD_CLOSURE);
  EXPECT_TRUE(d.records[1].police_incident().has_closure_until());
  // updated_at, when present, is the time of this version.
  EXPECT_GT(d.records[2].observed_at().seconds(),
            d.records[2].police_incident().reported_at().seconds());
}

TEST(PoliceConnectorTest, NdjsonAndRejections) {
  EXPECT_EQ(decodeWith(fh_connector_police(), fixture("police", "incidents.ndjson"),
                       "application/x-ndjson")
                .records.size(),
            2u);
  auto bad = decodeWith(fh_connector_police(), fixture("police", "incidents.invalid.ndjson"),
                        "application/x-ndjson");
  EXPECT_TRUE(bad.records.empty());
  ASSERT_EQ(bad.reasons.size(), 7u);
  EXPECT_NE(bad.reasons[0].find("'type' = 'riot' is not one of fire_report, arson"),
            std::string::npos)
      << bad.reasons[0];
  EXPECT_NE(bad.reasons[2].find("'reported_at' is missing"), std::string::npos);
  EXPECT_NE(bad.reasons[3].find("'reported_at' = 'today'"), std::string::npos);
  EXPECT_NE(bad.reasons[6].find("invalid JSON"), std::string::npos);
}

TEST(PoliceConnectorTest, CsvIsRefusedAsAWhole) {
  auto d = decodeWith(fh_connector_police(), "incident_id\n1\n", "text/csv");
  EXPECT_EQ(d.status.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace firehub::testkit
