// recordToJson must be exactly protobuf's JSON mapping (proto names, primitive fields printed):
// parsed back by protobuf's own parser it gives the same message, for many varied records.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <random>

#include "firehub/bus.h"

namespace firehub::bus {
namespace {

firehub::v1::Record randomRecord(std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  firehub::v1::Record r;
  r.set_id("wx:A" + std::to_string(rng() % 1000) + "@2026-11-22T00:00:00Z");
  r.set_feed_id("wx");
  r.set_agency(rng() % 2 ? "met" : "气象局 \"quoted\" \\ back\tslash\n\x01");
  r.set_domain("weather");
  r.set_entity_type("weather_station");
  r.set_entity_id(std::to_string(rng()));
  r.mutable_observed_at()->set_seconds(1795305600 + rng() % 100000);
  if (rng() % 2) r.mutable_observed_at()->set_nanos(static_cast<int32_t>(rng() % 1000000000));
  r.mutable_received_at()->set_seconds(1795305600);
  if (rng() % 3 == 0) {
    auto* ring = r.mutable_geometry()->mutable_polygon()->add_rings();
    for (int i = 0; i < 4; ++i) {
      auto* p = ring->add_points();
      p->set_lon(123 + u(rng));
      p->set_lat(41 + u(rng));
    }
  } else {
    r.mutable_geometry()->mutable_point()->set_lon(123.4 + u(rng) * 1e-3);
    r.mutable_geometry()->mutable_point()->set_lat(41.8 + u(rng) * 1e-9);
  }
  r.set_s2_cell("5e2f87e54");
  r.set_classification(static_cast<firehub::v1::Classification>(rng() % 4));
  r.set_op(static_cast<firehub::v1::Op>(rng() % 3));
  r.mutable_provenance()->set_connector_id("firehub.connector.weather");
  r.mutable_provenance()->set_source_offset("line " + std::to_string(rng() % 100));
  auto* w = r.mutable_weather_observation();
  w->set_station_id(r.entity_id());
  w->set_temperature_c(u(rng) * 60);
  w->set_relative_humidity_pct(rng() % 2 ? 0.0 : 50 + u(rng) * 50);
  w->set_wind_speed_kmh(1e-7 * (rng() % 1000));
  if (rng() % 2) w->set_wind_direction_deg(rng() % 2 ? 0.0 : 359.99);
  w->set_precipitation_mm(rng() % 2 ? 0.0 : 1e300);
  return r;
}

TEST(RecordJsonTest, MatchesProtobufJsonMappingExactly) {
  std::mt19937 rng(1);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  for (int i = 0; i < 2000; ++i) {
    auto r = randomRecord(rng);
    std::string ours = recordToJson(r);
    firehub::v1::Record back;
    auto parsed = google::protobuf::util::JsonStringToMessage(ours, &back);
    ASSERT_TRUE(parsed.ok()) << parsed.ToString() << "\n" << ours;
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r, back)) << ours;

    // Same set of keys as protobuf's printer: compare after parsing both into a message is not
    // enough for presence, so also compare the key sets textually.
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(r, &theirs, options).ok());
    for (const char* key : {"\"wind_direction_deg\"", "\"polygon\"", "\"point\"", "\"nanos\"",
                            "\"precipitation_mm\"", "\"relative_humidity_pct\"", "\"op\"",
                            "\"station_name\"", "\"rings\""}) {
      EXPECT_EQ(ours.find(key) == std::string::npos, theirs.find(key) == std::string::npos)
          << key << "\nours:   " << ours << "\ntheirs: " << theirs;
    }
  }
}

// Every body the schema has (a oneof): the one set is written, with all its fields as protobuf
// writes them, and no other member of the oneof.
TEST(RecordJsonTest, EachBodyOfTheOneofIsWrittenAndNoOther) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  ASSERT_GT(body->field_count(), 3);
  std::mt19937 rng(2);
  for (int i = 0; i < body->field_count(); ++i) {
    const auto* member = body->field(i);
    auto r = randomRecord(rng);
    r.GetReflection()->MutableMessage(&r, member);  // replaces the weather body
    const std::string ours = recordToJson(r);
    firehub::v1::Record back;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ours, &back).ok()) << ours;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(r, back)) << ours;
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(r, &theirs, options).ok());
    // The member and each field of its (empty) message that protobuf prints.
    EXPECT_NE(ours.find("\"" + member->name() + "\":{"), std::string::npos) << ours;
    const auto* type = member->message_type();
    for (int k = 0; k < type->field_count(); ++k) {
      std::string key = "\"" + type->field(k)->name() + "\":";
      EXPECT_EQ(ours.find(key) == std::string::npos, theirs.find(key) == std::string::npos)
          << key << "\nours:   " << ours << "\ntheirs: " << theirs;
    }
    for (int j = 0; j < body->field_count(); ++j) {
      if (j == i) continue;
      EXPECT_EQ(ours.find("\"" + body->field(j)->name() + "\""), std::string::npos) << ours;
    }
  }
}

TEST(RecordJsonTest, ReadableShape) {
  firehub::v1::Record r;
  r.set_id("wx:1");
  r.mutable_observed_at()->set_seconds(1795305600);
  r.mutable_weather_observation()->set_temperature_c(3.5);
  std::string json = recordToJson(r);
  EXPECT_NE(json.find(R"("observed_at":"2026-11-22T00:00:00Z")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("temperature_c":3.5)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("precipitation_mm":0)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("classification":"CLASSIFICATION_UNSPECIFIED")"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"geometry\""), std::string::npos) << json;  // unset message: absent
}

TEST(RecordJsonTest, TimestampsAreWrittenAsProtobufWritesThem) {
  std::mt19937_64 rng(7);
  const int64_t min = -62135596800, max = 253402300799;
  std::vector<int64_t> seconds = {min, max, 0, -1, 86399, 86400, 951782400 /* 2000-02-29 */,
                                  4107542400 /* 2100-03-01 */, -2208988800 /* 1900-01-01 */};
  for (int i = 0; i < 20000; ++i) seconds.push_back(min + static_cast<int64_t>(rng() % (max - min)));
  for (int64_t s : seconds) {
    for (int32_t nanos : {0, 5000000, 123456000, 1, 999999999}) {
      google::protobuf::Timestamp t;
      t.set_seconds(s);
      t.set_nanos(nanos);
      std::string expected = "\"";
      expected += google::protobuf::util::TimeUtil::ToString(t);
      expected += '"';
      ASSERT_EQ(messageToJson(t), expected)
          << s << " " << nanos;
    }
  }
}

}  // namespace
}  // namespace firehub::bus
