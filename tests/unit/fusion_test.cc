// Fire weather kept by the fusion engine from the lake's log: one FWI day per station from its
// first observation at or after local noon, 24-hour precipitation summed, state and checkpoint in
// the lake so a restart continues the sequence.
#include "firehub/fusion.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace firehub::fusion {
namespace {

using firehub::testing::TempDir;

// 1985-04-13 00:00 UTC.
constexpr int64_t kApril13 = 482198400;

lake::StoreItem observation(int64_t utc_seconds, double temp, double rh, double ws, double prec) {
  lake::StoreItem item;
  auto& r = item.record();
  r.set_id("wx:TEST@" + std::to_string(utc_seconds));
  r.set_domain("weather");
  r.set_entity_type("weather_station");
  r.set_entity_id("TEST");
  r.mutable_observed_at()->set_seconds(utc_seconds);
  r.mutable_geometry()->mutable_point()->set_lon(-100);
  r.mutable_geometry()->mutable_point()->set_lat(40);
  auto* w = r.mutable_weather_observation();
  w->set_temperature_c(temp);
  w->set_relative_humidity_pct(rh);
  w->set_wind_speed_kmh(ws);
  w->set_precipitation_mm(prec);
  item.topics = {"firehub.v1.weather"};
  return item;
}

TEST(FusionTest, NoonObservationsReproduceTheStandardSequenceAcrossARestart) {
  TempDir dir;
  lake::LakeOptions lo;
  lo.path = dir.path();
  lo.sync = false;
  auto lake = lake::Lake::open(lo);
  ASSERT_TRUE(lake.isOk());
  FusionOptions fo;
  fo.local_offset_minutes = -360;  // UTC-6 at 100° W
  const int64_t noon = 18 * 3600;  // 12:00 local
  // Day 1: a morning observation (ignored for the day's indices), then noon.
  ASSERT_TRUE((*lake)
                  ->commit({observation(kApril13 + 15 * 3600, 9, 70, 10, 0),
                            observation(kApril13 + noon, 17, 42, 25, 0),
                            observation(kApril13 + noon + 3600, 18, 40, 20,
                                        1.0)},  // after noon: tomorrow's rain
                           {})
                  .isOk());
  {
    FusionEngine engine(**lake, fo);
    ASSERT_TRUE(engine.catchUp().isOk());
    auto stations = engine.stations();
    ASSERT_TRUE(stations.isOk());
    ASSERT_EQ(stations->size(), 1u);
    const auto& s = stations->at(0);
    EXPECT_EQ(s.last_day, 19850413);
    EXPECT_NEAR(s.today.ffmc, 87.6494, 1e-3);
    EXPECT_NEAR(s.today.fwi, 10.0362, 1e-3);
    EXPECT_STREQ(dangerClass(s.today.fwi), "high");
  }
  // Day 2 after a restart: 1.0 mm after yesterday's noon + 1.4 mm this morning = 2.4 mm.
  ASSERT_TRUE((*lake)
                  ->commit({observation(kApril13 + 86400 + 14 * 3600, 12, 80, 10, 1.4),
                            observation(kApril13 + 86400 + noon, 20, 21, 25, 0)},
                           {})
                  .isOk());
  FusionEngine engine(**lake, fo);
  EXPECT_GT(engine.checkpoint(), 0u);
  ASSERT_TRUE(engine.catchUp().isOk());
  auto day2 = engine.stations();
  ASSERT_TRUE(day2.isOk());
  ASSERT_EQ(day2->size(), 1u);
  EXPECT_EQ(day2->at(0).last_day, 19850414);
  EXPECT_NEAR(day2->at(0).today.ffmc, 86.2009, 1e-3);
  EXPECT_NEAR(day2->at(0).today.dmc, 10.4019, 1e-3);
  EXPECT_NEAR(day2->at(0).today.dc, 23.568, 1e-3);
  EXPECT_NEAR(day2->at(0).today.fwi, 9.22044, 1e-3);
  // Day 3, and a second noon observation the same day that must not advance it again.
  ASSERT_TRUE((*lake)
                  ->commit({observation(kApril13 + 2 * 86400 + noon, 8.5, 40, 17, 0),
                            observation(kApril13 + 2 * 86400 + noon + 600, 30, 5, 60, 0)},
                           {})
                  .isOk());
  ASSERT_TRUE(engine.catchUp().isOk());
  auto day3 = engine.stations();
  ASSERT_TRUE(day3.isOk());
  EXPECT_NEAR(day3->at(0).today.dsr, 0.966361, 1e-3);
  EXPECT_NEAR(day3->at(0).today.bui, 11.7392, 1e-3);
}

// A season started from an operator's codes: the first noon on or after the start day computes
// from them (not from the codes the station carried), and the start is then marked applied. A
// station silent for more than three days restarts its FFMC at 85; DMC and DC carry over.
TEST(FusionTest, SeasonStartCodesAndAStationThatStopsReporting) {
  TempDir dir;
  lake::LakeOptions lo;
  lo.path = dir.path();
  lo.sync = false;
  auto lake = lake::Lake::open(lo);
  ASSERT_TRUE(lake.isOk());
  FusionOptions fo;
  fo.local_offset_minutes = -360;
  const int64_t noon = 18 * 3600;
  ASSERT_TRUE((*lake)->commit({observation(kApril13 + noon, 17, 42, 25, 0)}, {}).isOk());
  FusionEngine engine(**lake, fo);
  ASSERT_TRUE(engine.catchUp().isOk());
  FwiStart start;
  start.codes = {90, 30, 200};
  start.from_day = 19850414;
  start.set_by = "k-ops";
  ASSERT_TRUE(engine.setFwiStart("TEST", start).isOk());
  EXPECT_FALSE(engine.setFwiStart("TEST", FwiStart{{120, 6, 15}, 19850414}).isOk())
      << "an FFMC past 101 is refused";
  // 14 April: from the start codes. The same weather from FFMC 90, DMC 30, DC 200 at 40° N in
  // April (L_e 12.8, L_f 0.9): FFMC 86.6 would come from yesterday's 87.6; from 90 it is higher.
  ASSERT_TRUE((*lake)->commit({observation(kApril13 + 86400 + noon, 20, 21, 25, 0)}, {}).isOk());
  ASSERT_TRUE(engine.catchUp().isOk());
  auto day = engine.stations();
  ASSERT_TRUE(day.isOk());
  FwiState expected{90, 30, 200};
  const auto want = advanceDay(expected, {20, 21, 25, 0}, 40, 4);
  EXPECT_NEAR(day->at(0).today.ffmc, want.ffmc, 1e-9);
  EXPECT_NEAR(day->at(0).today.dmc, want.dmc, 1e-9);
  EXPECT_NEAR(day->at(0).today.dc, want.dc, 1e-9);
  auto stored = engine.fwiStart("TEST");
  ASSERT_TRUE(stored.isOk() && stored.value());
  EXPECT_TRUE(stored.value()->applied);
  EXPECT_EQ(stored.value()->set_by, "k-ops");
  // Silent from the 15th to the 19th (five days): on the 20th FFMC starts at 85 again, DMC and
  // DC go on from the 14th's.
  const FwiState before{day->at(0).today.ffmc, day->at(0).today.dmc, day->at(0).today.dc};
  ASSERT_TRUE(
      (*lake)->commit({observation(kApril13 + 7 * 86400 + noon, 15, 50, 10, 0)}, {}).isOk());
  ASSERT_TRUE(engine.catchUp().isOk());
  day = engine.stations();
  FwiState restarted{85, before.dmc, before.dc};
  const auto after = advanceDay(restarted, {15, 50, 10, 0}, 40, 4);
  EXPECT_EQ(day->at(0).last_day, 19850420);
  EXPECT_NEAR(day->at(0).today.ffmc, after.ffmc, 1e-9);
  EXPECT_NEAR(day->at(0).today.dmc, after.dmc, 1e-9);
  EXPECT_NEAR(day->at(0).today.dc, after.dc, 1e-9);
  // A gap of two days carries every code over.
  const FwiState carried{day->at(0).today.ffmc, day->at(0).today.dmc, day->at(0).today.dc};
  ASSERT_TRUE(
      (*lake)->commit({observation(kApril13 + 10 * 86400 + noon, 15, 50, 10, 0)}, {}).isOk());
  ASSERT_TRUE(engine.catchUp().isOk());
  day = engine.stations();
  FwiState next = carried;
  EXPECT_NEAR(day->at(0).today.ffmc, advanceDay(next, {15, 50, 10, 0}, 40, 4).ffmc, 1e-9);
}

TEST(FusionTest, DangerClasses) {
  EXPECT_STREQ(dangerClass(0), "low");
  EXPECT_STREQ(dangerClass(7), "moderate");
  EXPECT_STREQ(dangerClass(19.9), "high");
  EXPECT_STREQ(dangerClass(25), "very_high");
  EXPECT_STREQ(dangerClass(45), "extreme");
}

}  // namespace
}  // namespace firehub::fusion
