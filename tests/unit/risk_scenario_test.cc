// A small synthetic district: three named cells that must come out at named levels, and change
// level when an alarm, a hydrant failure, a CAP warning or a station going out of service
// arrives, then settle back when those inputs are withdrawn. Warning drafts follow and validate
// against the OASIS CAP 1.2 schema. A restart publishes nothing that did not change.
#include <gtest/gtest.h>
#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>

#include "firehub/fusion.h"
#include "test_support.h"

namespace firehub::fusion {
namespace {

using firehub::testing::TempDir;
using firehub::v1::Record;

constexpr int64_t kT0 = 1795312800;  // 2026-11-22T02:00:00Z

std::string token(double lon, double lat) {
  return S2CellId(S2LatLng::FromDegrees(lat, lon)).parent(15).ToToken();
}

class District {
 public:
  explicit District(lake::Lake& lake) : lake_(lake) {}

  Record& add(const std::string& domain, const std::string& type, const std::string& id, double lon,
              double lat) {
    items_.emplace_back();
    Record& r = items_.back().record();
    r.set_id(domain + ":" + id + "@" + std::to_string(++version_));
    r.set_domain(domain);
    r.set_entity_type(type);
    r.set_entity_id(id);
    r.mutable_observed_at()->set_seconds(kT0 + version_);
    r.mutable_geometry()->mutable_point()->set_lon(lon);
    r.mutable_geometry()->mutable_point()->set_lat(lat);
    items_.back().topics = {"firehub.v1." + domain};
    return r;
  }
  void building(const std::string& id, double lon, double lat, firehub::v1::Building::Occupancy o,
                bool key_unit = false, bool black_list = false) {
    auto* b = add("building", "building", id, lon, lat).mutable_building();
    b->set_building_id(id);
    b->set_occupancy(o);
    b->set_key_unit(key_unit);
    if (black_list) b->set_credit_status(firehub::v1::Building::CREDIT_STATUS_BLACK_LIST);
  }
  void hydrant(const std::string& id, double lon, double lat, bool in_service, double mpa = 0.3) {
    auto* w = add("water", "water_source", id, lon, lat).mutable_water_source();
    w->set_source_id(id);
    w->set_kind(firehub::v1::WaterSource::KIND_HYDRANT);
    w->set_status(in_service ? firehub::v1::WaterSource::STATUS_IN_SERVICE
                             : firehub::v1::WaterSource::STATUS_OUT_OF_SERVICE);
    w->set_pressure_mpa(mpa);
  }
  void station(const std::string& id, double lon, double lat, bool in_service) {
    auto* s = add("station", "fire_station", id, lon, lat).mutable_fire_station();
    s->set_station_id(id);
    s->set_name("Station " + id);
    s->set_status(in_service ? firehub::v1::FireStation::STATUS_IN_SERVICE
                             : firehub::v1::FireStation::STATUS_OUT_OF_SERVICE);
  }
  void hospital(const std::string& id, double lon, double lat, int beds) {
    auto* h = add("health", "health_facility", id, lon, lat).mutable_health_facility();
    h->set_facility_id(id);
    h->set_kind(firehub::v1::HealthFacility::KIND_HOSPITAL);
    h->set_operational_status(firehub::v1::HealthFacility::OPERATIONAL_STATUS_OPEN);
    h->set_beds_emergency_available(beds);
  }
  std::string alarm(const std::string& id, double lon, double lat, bool fire) {
    Record& r = add("alarm", "fire_alarm_component", id, lon, lat);
    auto* a = r.mutable_fire_alarm_event();
    a->set_device_address("21000000007a");
    a->set_info_type(firehub::v1::FireAlarmEvent::INFO_TYPE_COMPONENT_STATE);
    a->set_fire_alarm(fire);
    a->set_resolved(!fire);
    a->set_description("3层走廊感烟探测器火警");
    return r.id();
  }
  std::string capWarning(const std::string& id, double lon, double lat, double half,
                         int64_t expires) {
    Record& r = add("weather", "weather_warning", id, lon, lat);
    auto* ring = r.mutable_geometry()->mutable_polygon()->add_rings();
    for (auto [dx, dy] : {std::pair{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}}) {
      auto* p = ring->add_points();
      p->set_lon(lon + dx * half);
      p->set_lat(lat + dy * half);
    }
    auto* w = r.mutable_weather_warning();
    w->set_identifier(id);
    w->set_event("森林火险");
    w->set_msg_type(firehub::v1::WeatherWarning::MSG_TYPE_ALERT);
    w->set_status(firehub::v1::WeatherWarning::STATUS_ACTUAL);
    w->set_severity(firehub::v1::WeatherWarning::SEVERITY_EXTREME);
    w->mutable_onset()->set_seconds(kT0 - 60);
    w->mutable_expires()->set_seconds(expires);
    return r.id();
  }
  void commit() {
    auto result = lake_.commit(items_, {});
    ASSERT_TRUE(result.isOk()) << result.status().toString();
    items_.clear();
  }

 private:
  lake::Lake& lake_;
  std::vector<lake::StoreItem> items_;
  int version_ = 0;
};

// Points of the district (around 41.80° N, 123.40° E).
constexpr double kStationLon = 123.400, kLat = 41.800;
constexpr double kALon = 123.402;  // petrochemical key unit next to the station
constexpr double kBLon = 123.472;  // houses 6 km east
constexpr double kCLon = 123.430;  // a black-listed care home 2.5 km east

class RiskScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lake::LakeOptions lo;
    lo.path = dir_.path() + "/lake";
    lo.sync = false;
    auto opened = lake::Lake::open(lo);
    ASSERT_TRUE(opened.isOk());
    lake_ = std::move(opened).value();
    options_.risk.warning_hold_s = 0;
    options_.now = [this] { return clock_; };
  }

  std::unique_ptr<FusionEngine> engine() {
    auto e = std::make_unique<FusionEngine>(*lake_, options_);
    e->addListener([this](const FusionDelta& d) { deltas_.push_back(d); });
    return e;
  }

  firehub::v1::RiskCell cell(FusionEngine& e, const std::string& t) {
    auto c = e.riskCell(t);
    EXPECT_TRUE(c.has_value()) << "cell " << t << " not in the layer";
    return c.value_or(firehub::v1::RiskCell());
  }

  static const firehub::v1::RiskFactor& factor(const firehub::v1::RiskCell& c,
                                               const std::string& name) {
    for (const auto& f : c.factors()) {
      if (f.name() == name) return f;
    }
    static firehub::v1::RiskFactor none;
    ADD_FAILURE() << "no factor " << name;
    return none;
  }

  void expectValidCap(const firehub::v1::WarningDraft& d) {
    std::string file = dir_.path() + "/" + d.identifier() + ".xml";
    std::ofstream(file) << d.cap_xml();
    std::string cmd = "xmllint --noout --schema " + std::string(FIREHUB_SOURCE_DIR) +
                      "/tests/data/CAP-v1.2.xsd " + file + " 2>" + file + ".log";
    int rc = std::system(cmd.c_str());
    std::ifstream log(file + ".log");
    std::string why((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << d.msg_type() << " " << d.identifier() << " is not valid CAP 1.2: " << why
                     << "\n"
                     << d.cap_xml();
  }

  TempDir dir_;
  std::unique_ptr<lake::Lake> lake_;
  FusionOptions options_;
  int64_t clock_ = kT0;
  std::vector<FusionDelta> deltas_;
};

TEST_F(RiskScenarioTest, NamedCellsChangeLevelWithAlarmsHydrantsWarningsAndStations) {
  const std::string a = token(kALon, kLat), b = token(kBLon, kLat), c = token(kCLon, kLat);
  District d(*lake_);
  d.station("S1", kStationLon, kLat, true);
  d.hospital("H1", kStationLon + 0.005, kLat + 0.001, 5);
  d.building("A", kALon, kLat, firehub::v1::Building::OCCUPANCY_PETROCHEMICAL, true);
  d.hydrant("HA", kALon + 0.0005, kLat, true);
  d.building("B", kBLon, kLat, firehub::v1::Building::OCCUPANCY_RESIDENTIAL);
  d.hydrant("HB", kBLon, kLat + 0.0005, true);
  d.building("C", kCLon, kLat, firehub::v1::Building::OCCUPANCY_ELDERLY_CARE, false, true);
  d.commit();
  auto e = engine();
  ASSERT_TRUE(e->catchUp().isOk());

  // Baseline. A: petrochemical key unit, capped at 1 -> 25 points, everything else covered: III.
  auto ca = cell(*e, a);
  EXPECT_EQ(ca.level(), "III");
  EXPECT_DOUBLE_EQ(factor(ca, "building").score(), 1.0);
  EXPECT_DOUBLE_EQ(factor(ca, "building").contribution(), 25.0);
  EXPECT_DOUBLE_EQ(factor(ca, "water").score(), 0.0);
  EXPECT_DOUBLE_EQ(factor(ca, "response").score(), 0.0);
  EXPECT_EQ(ca.colour(), "#fecc5c");
  // B: houses 6 km out (response 1: 15 points), residential 0.3 (7.5), hydrant in reach: IV.
  auto cb = cell(*e, b);
  EXPECT_EQ(cb.level(), "IV");
  EXPECT_DOUBLE_EQ(factor(cb, "response").score(), 1.0);
  EXPECT_DOUBLE_EQ(factor(cb, "water").score(), 0.0);
  EXPECT_EQ(cb.hydrants_in_reach(), 1);
  // C: black-listed care home (0.8 + 0.2 = 1: 25), no hydrant (10), 2.5 km from the station: III.
  auto cc = cell(*e, c);
  EXPECT_EQ(cc.level(), "III");
  EXPECT_DOUBLE_EQ(factor(cc, "water").score(), 1.0);
  EXPECT_GT(factor(cc, "response").score(), 0.0);
  EXPECT_LT(factor(cc, "response").score(), 0.5);
  EXPECT_EQ(e->riskCellCount(), 3u);
  EXPECT_TRUE(e->activeWarnings().empty());

  // An unresolved fire alarm in A forces level I; its explanation names the alarm record.
  deltas_.clear();
  std::string alarm_id = d.alarm("21000000007a#2#1", kALon, kLat, true);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  ca = cell(*e, a);
  EXPECT_EQ(ca.level(), "I");
  EXPECT_TRUE(ca.forced());
  ASSERT_EQ(factor(ca, "alarm").sources_size(), 1);
  EXPECT_EQ(factor(ca, "alarm").sources(0), alarm_id);
  ASSERT_EQ(deltas_.size(), 1u);
  ASSERT_EQ(deltas_[0].cells.size(), 1u);
  EXPECT_EQ(deltas_[0].cells[0].cell(), a);
  EXPECT_EQ(deltas_[0].previous.at(a), "III");
  // A rise to level I is drafted at once.
  ASSERT_EQ(deltas_[0].warnings.size(), 1u);
  EXPECT_EQ(deltas_[0].warnings[0].msg_type(), "Alert");
  EXPECT_EQ(deltas_[0].warnings[0].severity(), "Extreme");
  expectValidCap(deltas_[0].warnings[0]);

  // Hydrant failure at B: no water in reach, 10 points more: IV -> III.
  d.hydrant("HB", kBLon, kLat + 0.0005, false);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  cb = cell(*e, b);
  EXPECT_EQ(cb.level(), "III");
  EXPECT_DOUBLE_EQ(factor(cb, "water").score(), 1.0);
  EXPECT_EQ(cb.hydrants_in_reach(), 0);

  // An extreme CAP warning over C raises its weather factor to 1 (15 points): III -> II.
  std::string cap_id = d.capWarning("CAP-1", kCLon, kLat, 0.01, kT0 + 3600);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  cc = cell(*e, c);
  EXPECT_EQ(cc.level(), "II");
  EXPECT_DOUBLE_EQ(factor(cc, "weather").score(), 1.0);
  EXPECT_EQ(factor(cc, "weather").sources(0), cap_id);
  EXPECT_EQ(cell(*e, a).level(), "I");  // outside the warning area: unchanged
  EXPECT_DOUBLE_EQ(factor(cell(*e, a), "weather").score(), 0.0);

  // The only station goes out of service: response is 1 everywhere.
  d.station("S1", kStationLon, kLat, false);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  cc = cell(*e, c);
  EXPECT_DOUBLE_EQ(factor(cc, "response").score(), 1.0);
  EXPECT_EQ(factor(cc, "response").note(), "no in-service station");
  EXPECT_EQ(cc.response_s(), -1);
  EXPECT_DOUBLE_EQ(factor(cell(*e, a), "response").score(), 1.0);

  // Warnings: both areas warn (A at I, C at II), every draft validates.
  auto active = e->activeWarnings();
  EXPECT_FALSE(active.empty());
  for (const auto& w : active) expectValidCap(w);

  // Everything withdrawn: station back, alarm reset, hydrant restored, CAP warning expired.
  d.station("S1", kStationLon, kLat, true);
  d.alarm("21000000007a#2#1", kALon, kLat, false);
  d.hydrant("HB", kBLon, kLat + 0.0005, true);
  d.commit();
  clock_ = kT0 + 3601;
  ASSERT_TRUE(e->catchUp().isOk());
  ASSERT_TRUE(e->catchUp().isOk());  // a step with an empty log still applies the clock
  EXPECT_EQ(cell(*e, a).level(), "III");
  EXPECT_FALSE(cell(*e, a).forced());
  EXPECT_EQ(cell(*e, b).level(), "IV");
  EXPECT_EQ(cell(*e, c).level(), "III");
  EXPECT_DOUBLE_EQ(factor(cell(*e, c), "weather").score(), 0.0);
  EXPECT_TRUE(e->activeWarnings().empty());
  auto history = e->warningHistory();
  ASSERT_TRUE(history.isOk());
  int cancels = 0;
  for (const auto& w : history.value()) {
    expectValidCap(w);
    if (w.msg_type() == "Cancel") {
      ++cancels;
      EXPECT_EQ(w.references_size(), 1);
    }
  }
  EXPECT_GE(cancels, 1);

  // The layer went out through the outbox: one delivery per changed cell or draft.
  std::vector<lake::OutboxEntry> outbox;
  ASSERT_TRUE(lake_->readOutbox(0, 100000, outbox).isOk());
  size_t risk = 0, warnings = 0;
  for (const auto& o : outbox) {
    if (o.topic == kRiskTopic) ++risk;
    if (o.topic == kWarningsTopic) ++warnings;
  }
  EXPECT_GE(risk, 8u);
  EXPECT_EQ(warnings, history->size());

  // A restart restores the published layer: nothing is announced again. The map is told to
  // reload once the published cells are read, before the inputs are rebuilt: it gets them whole.
  e.reset();
  deltas_.clear();
  auto again = engine();
  size_t cells_at_reload = 0;
  std::string level_at_reload;
  again->addListener(
      [&](const FusionDelta& d) {
        if (!d.reload) return;
        cells_at_reload = again->riskCellCount();
        level_at_reload = cell(*again, b).level();
      },
      true);
  ASSERT_TRUE(again->catchUp().isOk());
  EXPECT_EQ(cells_at_reload, 3u);
  EXPECT_EQ(level_at_reload, "IV");
  EXPECT_TRUE(deltas_.empty());
  EXPECT_EQ(again->riskCellCount(), 3u);
  EXPECT_EQ(cell(*again, b).level(), "IV");
}

// A change that is not a rise to level I waits out warnings.hold_s before it is drafted (an
// alarm reset and raised again within the hold sends nothing), and is drafted on the first step
// after the hold even when no record arrives.
TEST_F(RiskScenarioTest, WarningsThatAreNotEscalationsWaitOutTheHold) {
  options_.risk.warning_hold_s = 60;
  const std::string a = token(kALon, kLat), c = token(kCLon, kLat);
  District d(*lake_);
  d.station("S1", kStationLon, kLat, true);
  d.building("A", kALon, kLat, firehub::v1::Building::OCCUPANCY_PETROCHEMICAL, true);
  d.hydrant("HA", kALon + 0.0005, kLat, true);
  d.building("C", kCLon, kLat, firehub::v1::Building::OCCUPANCY_ELDERLY_CARE, false, true);
  d.commit();
  auto e = engine();
  ASSERT_TRUE(e->catchUp().isOk());
  auto drafted = [&] {
    std::vector<std::string> out;
    for (const auto& delta : deltas_) {
      for (const auto& w : delta.warnings) out.push_back(w.msg_type() + " " + w.area());
    }
    deltas_.clear();
    return out;
  };
  drafted();

  // Alarms in A and C: both cells to level I, two areas or one; a rise to I is drafted at once.
  d.alarm("21000000007a#2#1", kALon, kLat, true);
  d.alarm("21000000007c#2#1", kCLon, kLat, true);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  auto alerts = drafted();
  ASSERT_FALSE(alerts.empty());
  for (const auto& w : alerts) EXPECT_EQ(w.rfind("Alert ", 0), 0u) << w;
  const size_t areas = alerts.size();

  // A's alarm reset: its cell falls back, which is no escalation, so it waits.
  clock_ += 10;
  d.alarm("21000000007a#2#1", kALon, kLat, false);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  EXPECT_EQ(cell(*e, a).level(), "III");
  EXPECT_TRUE(drafted().empty()) << "held for warnings.hold_s";
  clock_ += 30;
  ASSERT_TRUE(e->catchUp().isOk());
  EXPECT_TRUE(drafted().empty()) << "30 s into a 60 s hold";
  clock_ += 35;  // 65 s after the reset: drafted on a step without records
  ASSERT_TRUE(e->catchUp().isOk());
  auto after_hold = drafted();
  ASSERT_EQ(after_hold.size(), 1u);
  EXPECT_EQ(after_hold[0].rfind(areas == 2 ? "Cancel " : "Update ", 0), 0u) << after_hold[0];
  EXPECT_TRUE(drafted().empty());

  // C's alarm reset and raised again within the hold: C is at I again and nothing is sent.
  clock_ += 5;
  d.alarm("21000000007c#2#1", kCLon, kLat, false);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  clock_ += 20;
  d.alarm("21000000007c#2#1", kCLon, kLat, true);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  EXPECT_EQ(cell(*e, c).level(), "I");
  clock_ += 120;
  ASSERT_TRUE(e->catchUp().isOk());
  EXPECT_TRUE(drafted().empty()) << "the difference went away within the hold";
}

// Fires in five areas at once: the map gets every cell in the first step, the Alerts come at
// most two per step from it on, each area's once, and none is lost.
TEST_F(RiskScenarioTest, ABurstOfNewWarningsIsDraftedAFewPerStepWithoutLosingAny) {
  options_.risk.warning_max_per_step = 2;
  District d(*lake_);
  d.station("S1", kStationLon, kLat, true);
  std::vector<double> lons;
  for (int i = 0; i < 5; ++i) lons.push_back(kStationLon + 0.05 * i);  // ~4 km apart: one area each
  std::set<std::string> areas;
  for (size_t i = 0; i < lons.size(); ++i) {
    d.building("K" + std::to_string(i), lons[i], kLat, firehub::v1::Building::OCCUPANCY_OFFICE);
    areas.insert(S2CellId(S2LatLng::FromDegrees(kLat, lons[i]))
                     .parent(options_.risk.warning_area_level)
                     .ToToken());
  }
  ASSERT_EQ(areas.size(), lons.size());
  d.commit();
  auto e = engine();
  ASSERT_TRUE(e->catchUp().isOk());
  deltas_.clear();

  for (size_t i = 0; i < lons.size(); ++i)
    d.alarm("21000000007" + std::to_string(i) + "#2#1", lons[i], kLat, true);
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  ASSERT_GE(deltas_.size(), 3u);
  size_t forced = 0;
  for (const auto& c : deltas_[0].cells) forced += c.forced() ? 1 : 0;
  EXPECT_EQ(forced, lons.size()) << "every burning cell in the first step";
  std::vector<std::string> alerted;
  for (size_t k = 0; k < deltas_.size(); ++k) {
    EXPECT_LE(deltas_[k].warnings.size(), 2u) << "step " << k;
    if (k > 0) {
      EXPECT_TRUE(deltas_[k].cells.empty()) << "step " << k;
    }
    for (const auto& w : deltas_[k].warnings) {
      EXPECT_EQ(w.msg_type(), "Alert");
      alerted.push_back(w.area());
    }
  }
  EXPECT_EQ(std::set<std::string>(alerted.begin(), alerted.end()), areas);
  EXPECT_EQ(alerted.size(), areas.size()) << "one Alert per area";
  EXPECT_EQ(e->activeWarnings().size(), areas.size());
  // Nothing is left waiting: a later step drafts nothing new.
  deltas_.clear();
  clock_ += 60;
  ASSERT_TRUE(e->catchUp().isOk());
  for (const auto& delta : deltas_) EXPECT_TRUE(delta.warnings.empty());
}

TEST_F(RiskScenarioTest, ACellLeavesTheLayerWhenItsLastBuildingIsRetracted) {
  District d(*lake_);
  d.building("X", 123.45, 41.85, firehub::v1::Building::OCCUPANCY_OFFICE);
  d.commit();
  auto e = engine();
  ASSERT_TRUE(e->catchUp().isOk());
  ASSERT_EQ(e->riskCellCount(), 1u);
  // The second version is a retraction.
  lake::StoreItem retract;
  retract.record().set_id("building:X@retract");
  retract.record().set_domain("building");
  retract.record().set_entity_type("building");
  retract.record().set_entity_id("X");
  retract.record().set_op(firehub::v1::OP_RETRACT);
  retract.record().mutable_observed_at()->set_seconds(kT0 + 100);
  ASSERT_TRUE(lake_->commit({retract}, {}).isOk());
  deltas_.clear();
  ASSERT_TRUE(e->catchUp().isOk());
  EXPECT_EQ(e->riskCellCount(), 0u);
  ASSERT_EQ(deltas_.size(), 1u);
  ASSERT_EQ(deltas_[0].removed.size(), 1u);
  EXPECT_EQ(deltas_[0].removed[0], token(123.45, 41.85));
}

// A cell's stamp (what renderings of it are kept by) moves exactly when the cell does; live
// listeners get a step's cells, then its warnings, before the durable listeners get it whole.
TEST_F(RiskScenarioTest, StampsMoveWithTheirCellAndLiveListenersHearFirst) {
  const std::string a = token(kALon, kLat), b = token(kBLon, kLat);
  District d(*lake_);
  d.station("S1", kStationLon, kLat, true);
  d.building("A", kALon, kLat, firehub::v1::Building::OCCUPANCY_PETROCHEMICAL, true);
  d.building("B", kBLon, kLat, firehub::v1::Building::OCCUPANCY_RESIDENTIAL);
  d.commit();
  auto e = engine();
  std::vector<std::string> heard;  // "live:cells", "live:warnings", "durable"
  e->addListener(
      [&](const FusionDelta& delta) {
        heard.push_back(delta.warnings.empty() ? "live:cells" : "live:warnings");
        if (!delta.warnings.empty()) {
          EXPECT_TRUE(delta.cells.empty());
        }
      },
      /*live=*/true);
  e->addListener([&](const FusionDelta&) { heard.push_back("durable"); });
  ASSERT_TRUE(e->catchUp().isOk());
  auto stamps = [&] {
    std::map<std::string, uint64_t> out;
    e->forEachRiskCell(lake::BBox{}, 0, 100,
                       [&](const firehub::v1::RiskCell& c, uint64_t id, uint64_t stamp) {
                         EXPECT_EQ(S2CellId(id).ToToken(), c.cell());
                         out[c.cell()] = stamp;
                       });
    return out;
  };
  auto before = stamps();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_NE(before[a], 0u);
  EXPECT_NE(before[a], before[b]);

  heard.clear();
  d.alarm("21000000007a#2#1", kALon, kLat, true);  // A goes to level I; an Alert is drafted
  d.commit();
  ASSERT_TRUE(e->catchUp().isOk());
  auto after = stamps();
  EXPECT_NE(after[a], before[a]);
  EXPECT_EQ(after[b], before[b]);
  EXPECT_EQ(heard, (std::vector<std::string>{"live:cells", "live:warnings", "durable"}));
  // The durable listener got the step whole.
  ASSERT_FALSE(deltas_.empty());
  EXPECT_EQ(deltas_.back().cells.size(), 1u);
  EXPECT_EQ(deltas_.back().warnings.size(), 1u);
}

// A box query gives exactly the cells whose area meets the box (S2's exact test on every cell
// of the layer), for boxes from a few cells to the whole district, at and off the cell edges.
TEST_F(RiskScenarioTest, BoxQueriesGiveExactlyTheCellsThatMeetTheBox) {
  District d(*lake_);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> jitter(-0.002, 0.002);
  for (int i = 0; i < 60; ++i) {
    for (int j = 0; j < 40; ++j) {
      std::string id = "G";
      id += std::to_string(i);
      id += '_';
      id += std::to_string(j);
      d.building(id, 123.30 + i * 0.004 + jitter(rng), 41.75 + j * 0.004 + jitter(rng),
                 firehub::v1::Building::OCCUPANCY_RESIDENTIAL);
    }
  }
  d.commit();
  auto e = engine();
  ASSERT_TRUE(e->catchUp().isOk());
  std::vector<uint64_t> all;
  e->forEachRiskCell(
      lake::BBox{}, 0, 1000000,
      [&](const firehub::v1::RiskCell&, uint64_t id, uint64_t) { all.push_back(id); });
  ASSERT_GT(all.size(), 1000u);
  std::uniform_real_distribution<double> u(0, 1);
  for (int q = 0; q < 60; ++q) {
    const double w = 0.002 + u(rng) * (q % 3 == 0 ? 0.3 : 0.06),
                 h = 0.002 + u(rng) * (q % 3 == 0 ? 0.2 : 0.04);
    const double lon = 123.28 + u(rng) * 0.25, lat = 41.73 + u(rng) * 0.17;
    lake::BBox box{lon, lat, lon + w, lat + h};
    S2LatLngRect rect(S2LatLng::FromDegrees(box.min_lat, box.min_lon),
                      S2LatLng::FromDegrees(box.max_lat, box.max_lon));
    std::set<uint64_t> expected;
    for (uint64_t id : all) {
      if (rect.Intersects(S2Cell(S2CellId(id)))) expected.insert(id);
    }
    std::set<uint64_t> got;
    size_t matched = 0;
    e->forEachRiskCell(
        box, 0, 1000000,
        [&](const firehub::v1::RiskCell&, uint64_t id, uint64_t) {
          EXPECT_TRUE(got.insert(id).second);
        },
        &matched);
    EXPECT_EQ(got, expected) << "box " << box.min_lon << "," << box.min_lat << "," << box.max_lon
                             << "," << box.max_lat;
    EXPECT_EQ(matched, expected.size());
  }
}

TEST_F(RiskScenarioTest, ConfiguredTextWithMarkupStaysValidCap) {
  // Operators write the instructions; markup characters are escaped and a stray control
  // character (invalid in XML 1.0) becomes a space, so the draft still validates.
  options_.risk.warning_instructions["I"] = "拨打<119> & 报告\x01值班室";
  options_.risk.warning_instructions["I.en"] = "Call <119> & \"stand by\"\x07 now";
  District d(*lake_);
  d.station("S1", kStationLon, kLat, true);
  d.building("A", kALon, kLat, firehub::v1::Building::OCCUPANCY_PETROCHEMICAL, true);
  d.alarm("21000000007a#2#1", kALon, kLat, true);
  d.commit();
  auto e = engine();
  ASSERT_TRUE(e->catchUp().isOk());
  auto active = e->activeWarnings();
  ASSERT_EQ(active.size(), 1u);
  expectValidCap(active[0]);
  const std::string& xml = active[0].cap_xml();
  EXPECT_NE(xml.find("<instruction>拨打&lt;119&gt; &amp; 报告 值班室</instruction>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<instruction>Call &lt;119&gt; &amp; \"stand by\"  now</instruction>"),
            std::string::npos)
      << xml;
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert "
                      "xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">",
                      0),
            0u)
      << xml;
}

}  // namespace
}  // namespace firehub::fusion
