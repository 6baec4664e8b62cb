#include <gtest/gtest.h>

#include <random>

#include "firehub/testkit/decode.h"
#include "gbt26875.h"

extern "C" const fh_connector_descriptor* fh_connector_alarm(void);

namespace firehub::testkit {
namespace {

namespace gb = firehub::connectors::gbt26875;
constexpr const char* kStream = "application/x-gbt26875";

std::vector<std::pair<int, int>> replies(const std::string& bytes) {
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i + 30 <= bytes.size(); i += 30) {
    out.emplace_back(
        static_cast<uint8_t>(bytes[i + 26]),
        static_cast<uint8_t>(bytes[i + 2]) | (static_cast<uint8_t>(bytes[i + 3]) << 8));
  }
  return out;
}

TEST(AlarmConnectorTest, FramesBecomeEventsAndAreConfirmed) {
  auto d = decodeWith(fh_connector_alarm(), fixture("alarm", "frames.gbt26875"), kStream);
  ASSERT_TRUE(d.status.isOk());
  ASSERT_EQ(d.records.size(), 3u);
  const auto& fire = d.records[0];
  EXPECT_EQ(fire.entity_type(), "fire_alarm_component");
  EXPECT_EQ(fire.entity_id(), "a1b2c3d4e5f6/1-1/515");
  EXPECT_EQ(fire.located_by().entity_id(), "a1b2c3d4e5f6");
  EXPECT_TRUE(fire.located_by().keep_unplaced());
  const auto& e = fire.fire_alarm_event();
  EXPECT_EQ(e.info_type(), firehub::v1::FireAlarmEvent::INFO_TYPE_COMPONENT_STATE);
  EXPECT_TRUE(e.fire_alarm());
  EXPECT_FALSE(e.fault());
  EXPECT_EQ(e.description(), "3号楼2层烟感火警");
  EXPECT_EQ(e.component_address(), 0x0203u);
  EXPECT_EQ(fire.observed_at().seconds(), 1795305600 + 3600 + 15 * 60 + 30);
  EXPECT_TRUE(d.records[1].fire_alarm_event().resolved());  // system normal
  EXPECT_TRUE(d.records[2].fire_alarm_event().fault());     // device main power fault
  auto r = replies(d.reply);
  ASSERT_EQ(r.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r[i], std::make_pair(3, i + 1));
  EXPECT_EQ(d.consumed.value_or(0), fixture("alarm", "frames.gbt26875").size());
}

TEST(AlarmConnectorTest, AnySplitOfTheStreamGivesTheSameResult) {
  std::string stream = "xx@" + fixture("alarm", "frames.gbt26875") + "@";
  std::mt19937 rng(26875);
  for (int trial = 0; trial < 50; ++trial) {
    std::string buffer, all_replies;
    size_t records = 0, pos = 0;
    while (pos < stream.size()) {
      size_t n = 1 + rng() % 40;
      buffer += stream.substr(pos, n);
      pos += n;
      auto d = decodeWith(fh_connector_alarm(), buffer, kStream);
      records += d.records.size();
      all_replies += d.reply;
      buffer.erase(0, d.consumed.value_or(buffer.size()));
    }
    EXPECT_EQ(records, 3u) << "trial " << trial;
    EXPECT_EQ(replies(all_replies).size(), 4u) << "trial " << trial;
    EXPECT_EQ(buffer, "@");  // a trailing '@' may start the next frame
  }
}

TEST(AlarmConnectorTest, BadFramesAreDeniedAndTheStreamGoesOn) {
  auto d = decodeWith(fh_connector_alarm(), fixture("alarm", "frames.invalid.gbt26875"), kStream);
  EXPECT_EQ(d.records.size(), 1u);
  auto r = replies(d.reply);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0], std::make_pair(3, 5));
  EXPECT_EQ(r[1], std::make_pair(6, 6));
  EXPECT_EQ(r[2], std::make_pair(6, 7));
  EXPECT_EQ(r[3], std::make_pair(6, 8));
  ASSERT_GE(d.reasons.size(), 4u);
  EXPECT_EQ(d.reasons[0], "bytes outside any frame");
  EXPECT_EQ(d.reasons[1], "checksum mismatch");
}

const uint8_t kTime[6] = {0, 20, 9, 22, 11, 26};  // 2026-11-22 09:20:00 local time
const std::string kDevice("\x00\x11\x22\x33\x44\xff", 6);
const std::string kHub("\x00\x00\x00\x00\x00\x01", 6);

std::string bytes(std::initializer_list<int> b) {
  std::string out;
  for (int c : b) out.push_back(static_cast<char>(c));
  return out;
}

// Every information object type a device uploads (GB/T 26875.3-2011, 8.2.1), each in a frame
// of its own, becomes a record; each frame is confirmed.
TEST(AlarmConnectorTest, EveryUploadedObjectTypeIsDecoded) {
  const std::string gbk_config = "\xd6\xf7\xbb\xfa v2";  // "主机 v2" in GB 18030
  std::string text31(31, '\0');
  text31.replace(0, 6, "\xc5\xe7\xc1\xdc\xb1\xc3");  // "喷淋泵"
  const std::vector<std::string> objects = {
      bytes({1, 1, 1, 2, 0x06, 0x00}),                                        // 1: fire and fault
      bytes({2, 1, 1, 2, 40, 3, 2, 0, 0, 0x03, 0}) + text31,                  // 2: component fire
      bytes({3, 1, 1, 2, 27, 7, 0, 0, 0, 4, 0x0c, 0x00}),                     // 3: 1.2 MPa
      bytes({4, 1, 1, 2, 0x01, 9}),                                           // 4: reset by 9
      bytes({5, 1, 1, 2, 3, 14}),                                             // 5: version 3.14
      bytes({6, 1, 1, 2, static_cast<int>(gbk_config.size())}) + gbk_config,  // 6: config text
      bytes({7, 1, 1, 2, 27, 7, 0, 0, 0}) + text31,                           // 7: component config
      bytes({8, 1, 1, 2, 5, 20, 9, 22, 11, 26}),                              // 8: system clock
      bytes({21, 1, 0x09}),                                                   // 21: power fault
      bytes({24, 1, 0x01, 3}),                                                // 24: reset by 3
      bytes({25, 1, 2, 7}),                                                   // 25: version 2.7
      bytes({26, 1, 2}) + "ok",                                               // 26: config text
      bytes({28, 1, 0, 19, 9, 22, 11, 26}),                                   // 28: device clock
  };
  std::string stream;
  for (size_t i = 0; i < objects.size(); ++i)
    stream += gb::build(static_cast<uint16_t>(100 + i), 1, 0, kTime, kDevice, kHub, 2, objects[i]);
  auto d = decodeWith(fh_connector_alarm(), stream, kStream);
  ASSERT_TRUE(d.status.isOk());
  EXPECT_TRUE(d.reasons.empty()) << d.reasons.front();
  ASSERT_EQ(d.records.size(), objects.size());
  auto r = replies(d.reply);
  ASSERT_EQ(r.size(), objects.size());
  for (size_t i = 0; i < r.size(); ++i)
    EXPECT_EQ(r[i], std::make_pair(3, static_cast<int>(100 + i))) << "confirmed";
  using E = firehub::v1::FireAlarmEvent;
  auto at = [&](int type) -> const firehub::v1::Record& {
    for (const auto& rec : d.records)
      if (rec.fire_alarm_event().info_type() == type) return rec;
    ADD_FAILURE() << "no record of type " << type;
    return d.records.front();
  };
  EXPECT_TRUE(at(1).fire_alarm_event().fire_alarm());
  EXPECT_TRUE(at(1).fire_alarm_event().fault());
  EXPECT_EQ(at(2).fire_alarm_event().description(), "喷淋泵");
  const auto& analog = at(E::INFO_TYPE_COMPONENT_ANALOG);
  EXPECT_EQ(analog.entity_type(), "fire_alarm_analog");
  EXPECT_EQ(analog.entity_id(), "0011223344ff/1-2/7/a4");
  EXPECT_EQ(analog.fire_alarm_event().analog_quantity(), "pressure");
  EXPECT_EQ(analog.fire_alarm_event().analog_unit(), "MPa");
  EXPECT_DOUBLE_EQ(analog.fire_alarm_event().analog_value(), 1.2);
  EXPECT_FALSE(analog.fire_alarm_event().fire_alarm());
  EXPECT_EQ(at(4).entity_type(), "fire_alarm_operation");
  EXPECT_EQ(at(4).fire_alarm_event().operator_id(), 9u);
  EXPECT_TRUE(at(4).fire_alarm_event().resolved());
  EXPECT_EQ(at(5).fire_alarm_event().software_version(), "3.14");
  EXPECT_EQ(at(5).entity_id(), "0011223344ff/1-2/version");
  EXPECT_EQ(at(6).fire_alarm_event().description(), "主机 v2");
  EXPECT_EQ(at(6).entity_id(), "0011223344ff/1-2/config");
  EXPECT_EQ(at(7).fire_alarm_event().description(), "喷淋泵");
  EXPECT_EQ(at(7).entity_id(), "0011223344ff/1-2/7/config");
  EXPECT_EQ(at(8).fire_alarm_event().reported_clock().seconds() + 0,
            at(8).observed_at().seconds() + 5)
      << "the system clock, 5 s ahead of the frame's";
  EXPECT_EQ(at(8).entity_id(), "0011223344ff/1-2/clock");
  EXPECT_TRUE(at(21).fire_alarm_event().fault());
  EXPECT_EQ(at(21).entity_type(), "transmission_device");
  EXPECT_EQ(at(24).fire_alarm_event().operator_id(), 3u);
  EXPECT_EQ(at(25).fire_alarm_event().software_version(), "2.7");
  EXPECT_EQ(at(25).entity_type(), "transmission_device_info");
  EXPECT_EQ(at(26).fire_alarm_event().description(), "ok");
  EXPECT_EQ(at(28).fire_alarm_event().reported_clock().seconds(),
            at(28).observed_at().seconds() - 60)
      << "a minute behind";
  EXPECT_EQ(at(28).entity_id(), "0011223344ff/clock");
}

// Analog values with a time tag each, and a negative temperature.
TEST(AlarmConnectorTest, AnalogValuesCarryTheirUnitAndTime) {
  std::string data = bytes({3, 2});
  data += bytes({1, 1, 31, 9, 0, 0, 0, 3, 0x9c, 0xff}) + bytes({0, 21, 9, 22, 11, 26});  // -10.0 °C
  data += bytes({1, 1, 33, 10, 0, 0, 0, 2, 0x2c, 0x01}) + bytes({0, 22, 9, 22, 11, 26});  // 3.00 m
  auto d =
      decodeWith(fh_connector_alarm(), gb::build(7, 1, 0, kTime, kDevice, kHub, 2, data), kStream);
  ASSERT_EQ(d.records.size(), 2u) << (d.reasons.empty() ? "" : d.reasons[0]);
  EXPECT_DOUBLE_EQ(d.records[0].fire_alarm_event().analog_value(), -10.0);
  EXPECT_EQ(d.records[0].fire_alarm_event().analog_unit(), "°C");
  EXPECT_DOUBLE_EQ(d.records[1].fire_alarm_event().analog_value(), 3.0);
  EXPECT_EQ(d.records[1].fire_alarm_event().analog_quantity(), "height");
  EXPECT_EQ(d.records[1].observed_at().seconds() - d.records[0].observed_at().seconds(), 60);
}

// A frame of a type the standard does not define for upload is confirmed and kept whole as a
// rejection (a dead letter at the hub), never confirmed and dropped.
TEST(AlarmConnectorTest, UndefinedObjectTypesAreKeptWholeAndConfirmed) {
  const std::string frame = gb::build(41, 1, 0, kTime, kDevice, kHub, 2,
                                      bytes({9, 1, 1, 1, 0x28, 7, 0, 0, 0, 2, 0x10, 0x27}));
  auto d = decodeWith(fh_connector_alarm(), frame, kStream);
  ASSERT_TRUE(d.status.isOk());
  EXPECT_EQ(d.records.size(), 0u);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_NE(d.reasons[0].find("information object type 9 is not one a device uploads"),
            std::string::npos)
      << d.reasons[0];
  ASSERT_EQ(d.raws.size(), 1u);
  EXPECT_EQ(d.raws[0], frame) << "the raw frame";
  auto r = replies(d.reply);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], std::make_pair(3, 41)) << "confirmed";
}

// Requests (command 4): the time of day is answered (command 5) with the hub's clock; other
// requests are denied; neither is stored. An answer (5) carrying objects is stored without a
// reply; the device's own confirms and denies (3, 6) need nothing.
TEST(AlarmConnectorTest, RequestsAreAnsweredAndAnswersStored) {
  std::string stream = gb::build(50, 1, 0, kTime, kDevice, kHub, 4, bytes({88, 1, 0}));
  stream += gb::build(51, 1, 0, kTime, kDevice, kHub, 4, bytes({68, 1, 1, 2}));
  stream += gb::build(52, 1, 0, kTime, kDevice, kHub, 4, bytes({61, 1, 1, 2}));
  stream += gb::build(53, 1, 0, kTime, kDevice, kHub, 5, bytes({25, 1, 2, 8}));
  stream += gb::build(54, 1, 0, kTime, kDevice, kHub, 3, "");
  auto d = decodeWith(fh_connector_alarm(), stream, kStream);
  ASSERT_TRUE(d.status.isOk());
  EXPECT_TRUE(d.reasons.empty()) << d.reasons.front();
  ASSERT_EQ(d.records.size(), 1u);
  EXPECT_EQ(d.records[0].fire_alarm_event().software_version(), "2.8");
  size_t consumed = 0;
  auto answers = gb::scan(d.reply, consumed);
  ASSERT_EQ(answers.size(), 3u) << "one answer per request, none to the answer or the confirm";
  EXPECT_EQ(answers[0].frame.command, gb::kCmdAnswer);
  EXPECT_EQ(answers[0].frame.serial, 50);
  EXPECT_EQ(answers[0].frame.destination, kDevice);
  ASSERT_EQ(answers[0].frame.data.size(), 8u);
  EXPECT_EQ(static_cast<uint8_t>(answers[0].frame.data[0]), 28) << "the device's clock, set";
  EXPECT_EQ(answers[1].frame.command, gb::kCmdAnswer);
  ASSERT_EQ(answers[1].frame.data.size(), 10u);
  EXPECT_EQ(answers[1].frame.data.substr(0, 4), bytes({8, 1, 1, 2}));
  EXPECT_EQ(answers[2].frame.command, gb::kCmdDeny) << "the hub holds no facility state";
  EXPECT_EQ(answers[2].frame.serial, 52);
}

TEST(AlarmConnectorTest, RegistryAndWebhook) {
  auto devices = decodeWith(fh_connector_alarm(), fixture("alarm", "devices.csv"), "text/csv");
  ASSERT_EQ(devices.records.size(), 2u);
  EXPECT_EQ(devices.records[0].entity_type(), "alarm_device");
  EXPECT_EQ(devices.records[0].alarm_device().building_id(), "SY-B-000001");
  auto hook =
      decodeWith(fh_connector_alarm(), fixture("alarm", "webhook.ndjson"), "application/x-ndjson");
  ASSERT_EQ(hook.records.size(), 2u);
  EXPECT_EQ(hook.records[0].entity_id(), "0011223344ff/1-2/118");  // address lower-cased
  EXPECT_TRUE(hook.records[0].fire_alarm_event().fire_alarm());
  EXPECT_TRUE(hook.records[0].has_located_by());
  EXPECT_TRUE(hook.records[1].has_geometry());  // placed by its own lon/lat
  EXPECT_EQ(hook.records[1].fire_alarm_event().building_id(), "SY-B-000002");
}

TEST(AlarmConnectorTest, RepliesAreValidFrames) {
  uint8_t t[6] = {1, 2, 3, 4, 5, 26};
  gb::Frame f;
  f.serial = 0x1234;
  f.version_major = 1;
  f.source = "ABCDEF";
  f.destination = std::string(6, '\0');
  std::string reply = gb::reply(f, gb::kCmdConfirm, t);
  size_t consumed = 0;
  auto pieces = gb::scan(reply, consumed);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].kind, gb::Piece::Kind::kFrame);
  EXPECT_EQ(pieces[0].frame.serial, 0x1234);
  EXPECT_EQ(pieces[0].frame.destination, "ABCDEF");
  EXPECT_EQ(pieces[0].frame.command, gb::kCmdConfirm);
}

}  // namespace
}  // namespace firehub::testkit
