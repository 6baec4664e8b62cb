// Field mapping and validation of the weather connector, compiled in statically (no dlopen).
#include <gtest/gtest.h>

#include "firehub/plugin.h"
#include "firehub/testkit/decode.h"
#include "firehub/v1/record.pb.h"

extern "C" const fh_connector_descriptor* fh_connector_weather(void);

namespace firehub::connectors {
namespace {

using firehub::testkit::Decoded;

class WeatherConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(registry_.registerStatic(fh_connector_weather()).isOk()); }

  Decoded decode(const std::string& body, const std::string& type,
                 const std::string& config = "{}") {
    return firehub::testkit::decodeWith(fh_connector_weather(), body, type, config);
  }

  plugin::ConnectorRegistry registry_;
};

constexpr const char* kHeader =
    "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";

TEST_F(WeatherConnectorTest, MapsEveryCsvField) {
  auto d = decode(
      std::string(kHeader) + "54342,123.4333,41.7667,2026-04-13T12:00:00+08:00,17,42,25,300,0.4\n",
      "text/csv");
  ASSERT_TRUE(d.status.isOk());
  ASSERT_EQ(d.records.size(), 1u);
  const auto& r = d.records[0];
  EXPECT_EQ(r.domain(), "weather");
  EXPECT_EQ(r.entity_type(), "weather_station");
  EXPECT_EQ(r.entity_id(), "54342");
  EXPECT_EQ(r.observed_at().seconds(), 1776052800);  // 2026-04-13T04:00:00Z
  EXPECT_DOUBLE_EQ(r.geometry().point().lon(), 123.4333);
  EXPECT_DOUBLE_EQ(r.geometry().point().lat(), 41.7667);
  EXPECT_EQ(r.classification(), firehub::v1::CLASSIFICATION_PUBLIC);
  EXPECT_EQ(r.provenance().source_record_id(), "54342@2026-04-13T04:00:00Z");
  EXPECT_EQ(r.provenance().source_offset(), "line 2");
  const auto& w = r.weather_observation();
  EXPECT_EQ(w.station_id(), "54342");
  EXPECT_DOUBLE_EQ(w.temperature_c(), 17);
  EXPECT_DOUBLE_EQ(w.relative_humidity_pct(), 42);
  EXPECT_DOUBLE_EQ(w.wind_speed_kmh(), 25);
  ASSERT_TRUE(w.has_wind_direction_deg());
  EXPECT_DOUBLE_EQ(w.wind_direction_deg(), 300);
  EXPECT_DOUBLE_EQ(w.precipitation_mm(), 0.4);
}

TEST_F(WeatherConnectorTest, TimesWithoutOffsetUseTheConfiguredOffset) {
  std::string body = std::string(kHeader) + "S1,123,41,2026-04-13 12:00:00,1,50,5,,0\n";
  auto beijing = decode(body, "text/csv");
  ASSERT_EQ(beijing.records.size(), 1u);
  EXPECT_EQ(beijing.records[0].observed_at().seconds(), 1776052800);
  auto utc = decode(body, "text/csv", R"({"utc_offset": "Z"})");
  ASSERT_EQ(utc.records.size(), 1u);
  EXPECT_EQ(utc.records[0].observed_at().seconds(), 1776052800 + 8 * 3600);
  EXPECT_FALSE(utc.records[0].weather_observation().has_wind_direction_deg());
}

TEST_F(WeatherConnectorTest, ColumnsInAnyOrderQuotedFieldsCrlfBomAndSemicolons) {
  std::string body =
      "\xEF\xBB\xBF"
      "time;station_id;station_name;lat;lon;temp_c;rh_pct;wind_kmh;precip_mm\r\n"
      "2026-04-13T12:00:00+08:00;\"A1\";\"Hunnan; south\";41.7;123.5;3;40;10;0\r\n";
  auto d = decode(body, "text/csv", R"({"csv_delimiter": ";"})");
  ASSERT_TRUE(d.status.isOk()) << d.status.toString();
  ASSERT_EQ(d.records.size(), 1u) << (d.reasons.empty() ? "" : d.reasons[0]);
  EXPECT_EQ(d.records[0].weather_observation().station_name(), "Hunnan; south");
  EXPECT_EQ(d.records[0].entity_id(), "A1");
}

TEST_F(WeatherConnectorTest, EachInvalidRowNamesItsField) {
  std::string body = std::string(kHeader) +
                     "S1,181,41,2026-04-13T12:00:00Z,1,50,5,,0\n"
                     "S2,123,-91,2026-04-13T12:00:00Z,1,50,5,,0\n"
                     "S3,123,41,2026-04-13T12:00:00Z,-61,50,5,,0\n"
                     "S4,123,41,2026-04-13T12:00:00Z,1,101,5,,0\n"
                     "S5,123,41,2026-04-13T12:00:00Z,1,50,-1,,0\n"
                     "S6,123,41,2026-04-13T12:00:00Z,1,50,5,,-0.1\n"
                     "S7,123,41,13/04/2026,1,50,5,,0\n"
                     "S8,123,41,2026-04-13T12:00:00Z,1,50,5,400,0\n"
                     "S9,123,41,2026-04-13T12:00:00Z,abc,50,5,,0\n"
                     "S10,123,41,2026-04-13T12:00:00Z,1,50,5,,\n"
                     "bad id!,123,41,2026-04-13T12:00:00Z,1,50,5,,0\n"
                     "S12,123,41\n"
                     "S13,123,41,2026-04-13T12:00:00Z,1,50,5,,0\n";
  auto d = decode(body, "text/csv");
  ASSERT_TRUE(d.status.isOk());
  ASSERT_EQ(d.records.size(), 1u);
  EXPECT_EQ(d.records[0].entity_id(), "S13");
  std::vector<std::string> fields = {"'lon'",      "'lat'",       "'temp_c'",     "'rh_pct'",
                                     "'wind_kmh'", "'precip_mm'", "'time'",       "'wind_dir_deg'",
                                     "'temp_c'",   "'precip_mm'", "'station_id'", "fields"};
  ASSERT_EQ(d.reasons.size(), fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    EXPECT_NE(d.reasons[i].find(fields[i]), std::string::npos) << d.reasons[i];
    EXPECT_EQ(d.offsets[i], "line " + std::to_string(i + 2));
  }
  EXPECT_EQ(d.raws[0], "S1,181,41,2026-04-13T12:00:00Z,1,50,5,,0");
}

TEST_F(WeatherConnectorTest, WholeBodyErrors) {
  EXPECT_EQ(decode("", "text/csv").status.code(), StatusCode::kInvalidArgument);
  auto header = decode("station,lon\n1,2\n", "text/csv");
  EXPECT_NE(header.status.message().find("'station_id'"), std::string::npos);
  EXPECT_FALSE(decode("[1,2", "application/json").status.isOk());
  EXPECT_FALSE(decode("42", "application/json").status.isOk());
  auto type = decode("x", "application/pdf");
  EXPECT_NE(type.status.message().find("unsupported content type"), std::string::npos);
}

TEST_F(WeatherConnectorTest, JsonObjectArrayAndNdjsonLabelledAsJson) {
  const char* one =
      R"({"station_id":"J1","lon":123,"lat":41,"time":"2026-04-13T12:00:00Z","temp_c":1,"rh_pct":50,"wind_kmh":5,"precip_mm":0})";
  EXPECT_EQ(decode(one, "application/json").records.size(), 1u);
  EXPECT_EQ(decode(std::string("[") + one + "," + one + "]", "application/json").records.size(),
            2u);
  std::string lines = std::string(one) + "\n" + one + "\n";
  EXPECT_EQ(decode(lines, "application/json").records.size(), 2u);
  auto nd = decode(lines + "[]\n", "application/x-ndjson");
  EXPECT_EQ(nd.records.size(), 2u);
  ASSERT_EQ(nd.reasons.size(), 1u);
  EXPECT_EQ(nd.offsets[0], "line 3");
}

TEST_F(WeatherConnectorTest, ConfigIsValidated) {
  EXPECT_FALSE(registry_.create("firehub.connector.weather", R"({"utc_offset":"+8"})").isOk());
  EXPECT_FALSE(registry_.create("firehub.connector.weather", R"({"csv_delimiter":"x"})").isOk());
  EXPECT_FALSE(
      registry_.create("firehub.connector.weather", R"({"timezone":"Asia/Shanghai"})").isOk());
  EXPECT_TRUE(
      registry_
          .create("firehub.connector.weather", R"({"utc_offset":"-05:30","csv_delimiter":"\t"})")
          .isOk());
}

}  // namespace
}  // namespace firehub::connectors
