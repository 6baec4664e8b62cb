#include "firehub/classification.h"

#include <gtest/gtest.h>

namespace firehub {
namespace {

TEST(ClassificationTest, RestrictedFieldsComeFromTheSchema) {
  EXPECT_TRUE(hasRestrictedFields(firehub::v1::PoliceIncident::descriptor()));
  EXPECT_TRUE(hasRestrictedFields(firehub::v1::HealthFacility::descriptor()));
  EXPECT_TRUE(hasRestrictedFields(firehub::v1::Record::descriptor()));  // through its bodies
  EXPECT_FALSE(hasRestrictedFields(firehub::v1::WeatherObservation::descriptor()));
  EXPECT_FALSE(hasRestrictedFields(firehub::v1::WaterSource::descriptor()));
  EXPECT_FALSE(hasRestrictedFields(firehub::v1::Building::descriptor()));

  firehub::v1::Record weather;
  weather.mutable_weather_observation()->set_station_id("A1");
  EXPECT_FALSE(bodyHasRestrictedFields(weather));
  firehub::v1::Record police;
  police.mutable_police_incident()->set_incident_id("X");
  EXPECT_TRUE(bodyHasRestrictedFields(police));
}

TEST(ClassificationTest, RedactionClearsOnlyRestrictedFields) {
  firehub::v1::Record r;
  r.set_entity_id("SY-1");
  auto* p = r.mutable_police_incident();
  p->set_incident_id("SY-1");
  p->set_address("沈河区中街路128号");
  p->set_reporter_name("张伟");
  p->set_reporter_phone("13800000001");
  p->set_notes("三楼窗口冒烟");
  EXPECT_EQ(redactRestricted(r), 3);
  EXPECT_EQ(p->reporter_name(), "");
  EXPECT_EQ(p->reporter_phone(), "");
  EXPECT_EQ(p->notes(), "");
  EXPECT_EQ(p->address(), "沈河区中街路128号");
  EXPECT_EQ(p->incident_id(), "SY-1");
  EXPECT_EQ(redactRestricted(r), 0);
}

}  // namespace
}  // namespace firehub
