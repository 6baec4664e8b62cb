// The FWI System against the standard test sequence (40° N, 100° W, from 13 April 1985) and
// against properties of the published equations.
#include "firehub/fwi.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

namespace firehub::fusion {
namespace {

struct Row {
  FwiWeather w;
  FwiIndices expected;
};

TEST(FwiTest, StandardTestSequence) {
  const Row rows[] = {
      {{17, 42, 25, 0}, {87.6494, 8.54505, 19.014, 10.7762, 8.49043, 10.0362, 1.61193}},
      {{20, 21, 25, 2.4}, {86.2009, 10.4019, 23.568, 8.77083, 10.3553, 9.22044, 1.38733}},
      {{8.5, 40, 17, 0}, {86.908, 11.7983, 26.052, 6.4782, 11.7392, 7.51672, 0.966361}},
  };
  FwiState state;
  for (const auto& row : rows) {
    FwiIndices got = advanceDay(state, row.w, 40, 4);
    EXPECT_NEAR(got.ffmc, row.expected.ffmc, 1e-3);
    EXPECT_NEAR(got.dmc, row.expected.dmc, 1e-3);
    EXPECT_NEAR(got.dc, row.expected.dc, 1e-3);
    EXPECT_NEAR(got.isi, row.expected.isi, 1e-3);
    EXPECT_NEAR(got.bui, row.expected.bui, 1e-3);
    EXPECT_NEAR(got.fwi, row.expected.fwi, 1e-3);
    EXPECT_NEAR(got.dsr, row.expected.dsr, 1e-3);
  }
}

// The whole published 48-day sequence: rain days (up to 16.4 mm), a drought run (DC past 125),
// cold days (5.5 °C) and the extreme day of 7 May (FWI 52.3). The published values are rounded
// to 0.1 (DSR to 0.01), so every index must agree within 0.1.
TEST(FwiTest, PublishedFortyEightDaySequenceAgreesWithinATenth) {
  std::ifstream in(std::string(FIREHUB_SOURCE_DIR) + "/tests/data/fwi_reference_1985.csv");
  ASSERT_TRUE(in) << "missing tests/data/fwi_reference_1985.csv";
  std::string line;
  FwiState state;
  int days = 0;
  double worst = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == 'l') continue;
    std::istringstream row(line);
    std::string cell;
    std::vector<double> v;
    while (std::getline(row, cell, ',')) v.push_back(std::stod(cell));
    ASSERT_EQ(v.size(), 16u) << line;
    FwiIndices got = advanceDay(state, {v[5], v[6], v[7], v[8]}, v[1], static_cast<int>(v[3]));
    const double computed[] = {got.ffmc, got.dmc, got.dc, got.isi, got.bui, got.fwi, got.dsr};
    const char* names[] = {"FFMC", "DMC", "DC", "ISI", "BUI", "FWI", "DSR"};
    for (int i = 0; i < 7; ++i) {
      double err = std::fabs(computed[i] - v[9 + i]);
      worst = std::max(worst, err);
      EXPECT_LE(err, 0.1) << names[i] << " on " << v[2] << "-" << v[3] << "-" << v[4] << ": got "
                          << computed[i] << ", published " << v[9 + i];
    }
    ++days;
  }
  EXPECT_EQ(days, 48);
  RecordProperty("max_abs_error", std::to_string(worst));
}

TEST(FwiTest, RainThresholds) {
  FwiWeather dry{20, 40, 15, 0};
  FwiWeather drizzle = dry;
  drizzle.prec_mm = 0.5;  // at the FFMC threshold: no wetting
  EXPECT_DOUBLE_EQ(fineFuelMoistureCode(85, dry), fineFuelMoistureCode(85, drizzle));
  drizzle.prec_mm = 0.6;
  EXPECT_LT(fineFuelMoistureCode(85, drizzle), fineFuelMoistureCode(85, dry));
  FwiWeather light = dry;
  light.prec_mm = 1.5;  // DMC threshold
  EXPECT_DOUBLE_EQ(duffMoistureCode(30, dry, 45, 7), duffMoistureCode(30, light, 45, 7));
  light.prec_mm = 2.8;  // DC threshold
  EXPECT_DOUBLE_EQ(droughtCode(300, dry, 45, 7), droughtCode(300, light, 45, 7));
  light.prec_mm = 3.0;
  EXPECT_LT(droughtCode(300, light, 45, 7), droughtCode(300, dry, 45, 7));
}

TEST(FwiTest, ColdDaysDoNotDry) {
  FwiWeather cold{-15, 60, 10, 0};
  EXPECT_DOUBLE_EQ(duffMoistureCode(20, cold, 45, 1), 20);  // temp clamped at -1.1: no drying
  EXPECT_DOUBLE_EQ(droughtCode(100, cold, 45, 1), 100);     // January factor -1.6: pe clamped at 0
  EXPECT_NEAR(droughtCode(100, cold, 45, 4), 100 + 0.9 / 2, 1e-9);  // April factor +0.9
}

TEST(FwiTest, DayLengthFollowsLatitudeBands) {
  FwiWeather w{25, 30, 10, 0};
  double north = duffMoistureCode(10, w, 45, 6) - 10;   // 13.9 h
  double tropic = duffMoistureCode(10, w, 20, 6) - 10;  // 10.2 h
  double equator = duffMoistureCode(10, w, 0, 6) - 10;  // 9 h
  double south = duffMoistureCode(10, w, -40, 6) - 10;  // 6.2 h (austral winter)
  EXPECT_NEAR(north / equator, 13.9 / 9.0, 1e-9);
  EXPECT_NEAR(tropic / equator, 10.2 / 9.0, 1e-9);
  EXPECT_NEAR(south / equator, 6.2 / 9.0, 1e-9);
  EXPECT_GT(droughtCode(100, w, 45, 7), droughtCode(100, w, -45, 7));
}

TEST(FwiTest, LongSequenceOfDroughtRainAndColdStaysInRange) {
  FwiState state;
  double last_dc = state.dc;
  for (int day = 0; day < 120; ++day) {
    FwiWeather w;
    if (day < 40)
      w = {28, 20, 20, 0};  // drought: codes climb
    else if (day < 45)
      w = {12, 95, 5, 25};  // a wet spell
    else if (day < 80)
      w = {-8, 70, 15, 0.3};  // cold
    else
      w = {22, 30, 30, 0};
    int month = 5 + day / 30;
    FwiIndices i = advanceDay(state, w, 41.8, month);
    for (double v : {i.ffmc, i.dmc, i.dc, i.isi, i.bui, i.fwi, i.dsr}) {
      ASSERT_TRUE(std::isfinite(v)) << "day " << day;
      ASSERT_GE(v, 0) << "day " << day;
    }
    ASSERT_LE(i.ffmc, 101);
    if (day < 40) {
      EXPECT_GT(i.dc, last_dc) << "drought day " << day;
    }
    if (day == 39) {
      EXPECT_GT(i.ffmc, 92);
      EXPECT_GT(i.fwi, 30);
    }
    if (day == 44) {
      EXPECT_LT(i.ffmc, 40);
      EXPECT_LT(i.dc, last_dc);
    }
    last_dc = i.dc;
  }
}

TEST(FwiTest, ValidationNamesTheValue) {
  EXPECT_EQ(checkFwiWeather({20, 50, 10, 0}), "");
  EXPECT_NE(checkFwiWeather({20, 101, 10, 0}).find("rh"), std::string::npos);
  EXPECT_NE(checkFwiWeather({20, 50, -1, 0}).find("ws"), std::string::npos);
  EXPECT_NE(checkFwiWeather({20, 50, 10, -1}).find("prec"), std::string::npos);
  EXPECT_NE(checkFwiWeather({NAN, 50, 10, 0}).find("temp"), std::string::npos);
}

// A day computed from given start codes (an operator's season start, or a row's previous-day
// codes), against the published equations worked by hand: FFMC 90, DMC 30, DC 200 at 41.8° N in
// July, 25 °C, 30 %, 20 km/h, no rain.
//   FFMC: m_o = 147.27723 (101 - 90) / (59.5 + 90) = 10.83645; E_d = 8.81486 (Eq. 4);
//         k_d = 0.98336 (Eqs. 6a, 6b); m = E_d + (m_o - E_d) 10^-k_d = 9.02491 (Eq. 8);
//         FFMC = 59.5 (250 - m) / (147.27723 + m) = 91.73270 (Eq. 10)
//   DMC:  L_e = 12.4 (July, north of 30° N); K = 1.894 (25 + 1.1)(100 - 30) 12.4 10^-6
//         = 0.042908 (Eq. 16); DMC = 30 + 100 K = 34.29082
//   DC:   L_f = 6.4; V = 0.36 (25 + 2.8) + 6.4 = 16.408 (Eq. 22); DC = 200 + V / 2 = 208.204
//   ISI = 15.02672, BUI = 48.57932, FWI = 29.09571 (Eqs. 24-30)
TEST(FwiTest, ADayFromGivenStartCodesFollowsThePublishedEquations) {
  FwiState start{90, 30, 200};
  const auto day = advanceDay(start, {25, 30, 20, 0}, 41.8, 7);
  EXPECT_NEAR(day.ffmc, 91.73270, 1e-4);
  EXPECT_NEAR(day.dmc, 34.29082, 1e-4);
  EXPECT_NEAR(day.dc, 208.204, 1e-4);
  EXPECT_NEAR(day.isi, 15.02672, 1e-4);
  EXPECT_NEAR(day.bui, 48.57932, 1e-4);
  EXPECT_NEAR(day.fwi, 29.09571, 1e-4);
  EXPECT_EQ(start.ffmc, day.ffmc) << "the state carries the day's codes on";
}

// The overwintered DC of the cffdrs documentation's examples (Lawson & Armitage 2008,
// Eqs. 2-4), worked by hand: autumn DC 300, 110 mm of winter precipitation, a = b = 0.75:
// Q_f = 800 e^(-300/400) = 377.893; Q_s = 0.75 Q_f + 0.75 (3.94)(110) = 608.470;
// DC_s = 400 ln(800 / Q_s) = 109.466.
TEST(FwiTest, OverwinteringTheDroughtCode) {
  EXPECT_NEAR(overwinterDroughtCode(300, 110), 109.4657, 1e-3);
  // a = 1.0, b = 0.9: Q_s = 377.893 + 0.9 (3.94)(110) = 767.953; DC_s = 16.353
  EXPECT_NEAR(overwinterDroughtCode(300, 110, 1.0, 0.9), 16.3532, 1e-3);
  // autumn DC 400, 99 mm: Q_s = 0.75 (294.304) + 0.75 (390.06) = 513.273; DC_s = 177.522
  EXPECT_NEAR(overwinterDroughtCode(400, 99), 177.5218, 1e-3);
  // 200 mm refills the layer: the result is held at the minimum of 15
  EXPECT_EQ(overwinterDroughtCode(250, 200), 15.0);
}

TEST(FwiTest, StartCodesAreChecked) {
  EXPECT_EQ(checkFwiState({85, 6, 15}), "");
  EXPECT_NE(checkFwiState({102, 6, 15}), "");
  EXPECT_NE(checkFwiState({85, -1, 15}), "");
  EXPECT_NE(checkFwiState({85, 6, std::nan("")}), "");
  EXPECT_NE(checkFwiState({85, 6, INFINITY}), "");
}

TEST(FwiTest, DaysBetweenDates) {
  EXPECT_EQ(daysBetween(20270228, 20270301), 1);
  EXPECT_EQ(daysBetween(20280228, 20280301), 2);  // a leap year
  EXPECT_EQ(daysBetween(20261231, 20270101), 1);
  EXPECT_EQ(daysBetween(20270410, 20270401), -9);
}

}  // namespace
}  // namespace firehub::fusion
