// The risk model's rules, each checked against a value worked out by hand, and the configuration
// that tunes them.
#include "firehub/risk.h"
#include "firehub/v1/layer.pb.h"

#include <gtest/gtest.h>

namespace firehub::fusion {
namespace {

using firehub::v1::Building;
using firehub::v1::PoliceIncident;
using firehub::v1::WeatherWarning;

// The risk layer decides whether a recomputed cell changed by comparing RiskCell, RiskFactor and
// Point field by field (sameCell in risk_layer.cc). A new field must be added there too.
TEST(RiskModelTest, CellComparisonCoversEveryField) {
  EXPECT_EQ(firehub::v1::RiskCell::descriptor()->field_count(), 14)
      << "extend sameCell in risk_layer.cc";
  EXPECT_EQ(firehub::v1::RiskFactor::descriptor()->field_count(), 6)
      << "extend sameFactor in risk_layer.cc";
  EXPECT_EQ(firehub::v1::Point::descriptor()->field_count(), 2)
      << "extend sameCell in risk_layer.cc";
}

TEST(RiskModelTest, BuildingScoreIsOccupancyRaisedByKeyUnitBlackListAndOpenHazards) {
  EXPECT_DOUBLE_EQ(buildingScore(Building::OCCUPANCY_RESIDENTIAL, false, false, 0, 0), 0.3);
  // Office 0.3 + key unit 0.1 + one general 0.1 + one major 0.25 = 0.75.
  EXPECT_DOUBLE_EQ(buildingScore(Building::OCCUPANCY_OFFICE, true, false, 1, 1), 0.75);
  // Warehouse 0.6 + black list 0.2 = 0.8.
  EXPECT_DOUBLE_EQ(buildingScore(Building::OCCUPANCY_WAREHOUSE, false, true, 0, 0), 0.8);
  // Capped at 1.
  EXPECT_DOUBLE_EQ(buildingScore(Building::OCCUPANCY_PETROCHEMICAL, true, true, 3, 2), 1.0);
  EXPECT_DOUBLE_EQ(occupancyWeight(Building::OCCUPANCY_UNSPECIFIED), 0.2);
  EXPECT_DOUBLE_EQ(occupancyWeight(Building::OCCUPANCY_ELDERLY_CARE), 0.8);
}

TEST(RiskModelTest, AlarmWaterAndPublicSafetyRules) {
  EXPECT_DOUBLE_EQ(alarmScore(1, 0), 1.0);
  EXPECT_DOUBLE_EQ(alarmScore(0, 3), 0.3);
  EXPECT_DOUBLE_EQ(alarmScore(0, 9), 0.5);
  EXPECT_DOUBLE_EQ(alarmScore(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(waterScore(1, 2), 0.0);
  EXPECT_DOUBLE_EQ(waterScore(0, 2), 0.5);
  EXPECT_DOUBLE_EQ(waterScore(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(publicSafetyScore({}), 0.0);
  // Arson 1.0 alone; fireworks 0.6 + two more incidents (+0.2) = 0.8.
  EXPECT_DOUBLE_EQ(publicSafetyScore({incidentWeight(PoliceIncident::TYPE_ARSON)}), 1.0);
  EXPECT_NEAR(publicSafetyScore({incidentWeight(PoliceIncident::TYPE_FIREWORKS), 0.2, 0.1}), 0.8,
              1e-12);
}

TEST(RiskModelTest, WeatherScoresByDangerClassAndCapSeverity) {
  EXPECT_DOUBLE_EQ(fwiScore(4.9), 0.0);
  EXPECT_DOUBLE_EQ(fwiScore(5.0), 0.25);
  EXPECT_DOUBLE_EQ(fwiScore(19.9), 0.5);
  EXPECT_DOUBLE_EQ(fwiScore(29.9), 0.75);
  EXPECT_DOUBLE_EQ(fwiScore(30.0), 1.0);
  EXPECT_DOUBLE_EQ(capSeverityScore(WeatherWarning::SEVERITY_SEVERE), 0.75);
  EXPECT_DOUBLE_EQ(capSeverityScore(WeatherWarning::SEVERITY_MINOR), 0.25);
  EXPECT_DOUBLE_EQ(capSeverityScore(WeatherWarning::SEVERITY_UNKNOWN), 0.0);
}

TEST(RiskModelTest, ResponseAndMedicalRampBetweenTheirBounds) {
  RiskConfig c;
  // 2 km straight line * 1.3 detour at 30 km/h (8.333 m/s) = 312 s.
  EXPECT_NEAR(travelSeconds(c, 2000), 312.0, 1e-9);
  EXPECT_DOUBLE_EQ(responseScore(c, 300.0), 0.0);
  EXPECT_DOUBLE_EQ(responseScore(c, 600.0), 0.5);
  EXPECT_DOUBLE_EQ(responseScore(c, 900.0), 1.0);
  EXPECT_DOUBLE_EQ(responseScore(c, std::nullopt), 1.0);
  EXPECT_DOUBLE_EQ(medicalScore(c, 5.0), 0.0);
  EXPECT_DOUBLE_EQ(medicalScore(c, 12.5), 0.5);
  EXPECT_DOUBLE_EQ(medicalScore(c, 25.0), 1.0);
  EXPECT_DOUBLE_EQ(medicalScore(c, std::nullopt), 1.0);
}

TEST(RiskModelTest, DefaultScaleHasFourLevelsAndAnAlarmForcesTheTop) {
  RiskConfig c;
  EXPECT_EQ(c.levelFor(75, false).name, "I");
  EXPECT_EQ(c.levelFor(74.99, false).name, "II");
  EXPECT_EQ(c.levelFor(50, false).name, "II");
  EXPECT_EQ(c.levelFor(25, false).name, "III");
  EXPECT_EQ(c.levelFor(0, false).name, "IV");
  EXPECT_EQ(c.levelFor(3, true).name, "I");
  EXPECT_EQ(c.levelFor(80, false).name_zh, "红色");
  EXPECT_EQ(c.rankOf("III"), 3);
  double total = 0;
  for (const auto& name : factorNames()) total += c.weight(name);
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_STREQ(capSeverityOfRank(1), "Extreme");
  EXPECT_STREQ(capSeverityOfRank(4), "Minor");
}

TEST(RiskModelTest, ConfigurationOverridesWeightsScaleAndThresholds) {
  auto c = riskConfigFrom(
      {{"risk.weight.alarm", "0.4"},
       {"risk.levels", "A|高|high|#ff0000|60; B|中|medium|#ffff00|30; C|低|low|#00ff00|0"},
       {"risk.water.radius_m", "120"},
       {"risk.response.good_s", "240"},
       {"warnings.level", "A"},
       {"warnings.instruction.A", "立即出动"},
       {"warnings.max_per_step", "0"},
       {"fusion.cell.level", "15"}});  // other prefixes are not this reader's
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_DOUBLE_EQ(c->weight("alarm"), 0.4);
  EXPECT_DOUBLE_EQ(c->weight("building"), 0.25);
  ASSERT_EQ(c->levels.size(), 3u);
  EXPECT_EQ(c->levelFor(61, false).name, "A");
  EXPECT_EQ(c->levelFor(45, false).colour, "#ffff00");
  EXPECT_DOUBLE_EQ(c->hydrant_radius_m, 120);
  EXPECT_DOUBLE_EQ(c->response_good_s, 240);
  EXPECT_EQ(c->warning_instructions.at("A"), "立即出动");
  EXPECT_EQ(c->warning_max_per_step, 0u);
  EXPECT_EQ(RiskConfig().warning_max_per_step, 8u);
}

TEST(RiskModelTest, BadConfigurationNamesTheKey) {
  auto expectError = [](std::map<std::string, std::string> props, const std::string& words) {
    auto c = riskConfigFrom(props);
    ASSERT_FALSE(c.isOk());
    EXPECT_NE(c.status().message().find(words), std::string::npos) << c.status().message();
  };
  expectError({{"risk.weight.smoke", "0.1"}}, "risk.weight.smoke: unknown factor");
  expectError({{"risk.weight.water", "1.5"}}, "between 0 and 1");
  expectError({{"risk.weight.water", "lots"}}, "is not a number");
  expectError(
      {{"risk.levels", "I|红|red|#ff0000|75;II|橙|orange|#ff8800|80;III|黄|yellow|#ffff00|0"}},
      "from the highest score down");
  expectError({{"risk.levels", "I|红|red|#ff0000|75;II|橙|orange|#ff8800|10"}},
              "the last level starts at 0");
  expectError({{"risk.levels", "I|红|red|red|75;II|橙|orange|#ff8800|0"}}, "is not #rrggbb");
  expectError({{"risk.response.bad_s", "200"}}, "bad_s must be above");
  expectError({{"warnings.level", "V"}}, "warnings.level: 'V'");
  expectError({{"warnings.status", "Live"}}, "CAP status");
  expectError({{"warnings.area_level", "25"}}, "warnings.area_level: an S2 level 4..20");
  expectError({{"warnings.max_per_step", "2.5"}}, "warnings.max_per_step: a whole number");
  expectError({{"warnings.max_per_step", "-1"}}, "warnings.max_per_step: a whole number");
  expectError({{"risk.hydrant", "1"}}, "risk.hydrant: unknown setting");
}

}  // namespace
}  // namespace firehub::fusion
