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

// A frame of an object type not mapped yet (3: component analog values) is confirmed and kept
// whole as a rejection (a dead letter at the hub), never confirmed and dropped.
TEST(AlarmConnectorTest, UnmappedObjectTypesAreKeptWholeAndConfirmed) {
  const uint8_t time[6] = {0, 20, 9, 22, 11, 26};
  const std::string source("\x00\x11\x22\x33\x44\xff", 6);
  const std::string dest("\x00\x00\x00\x00\x00\x01", 6);
  std::string data("\x03\x01", 2);  // type 3, one object (its bytes as the device sends them)
  data += std::string("\x01\x01\x28\x07\x00\x00\x00\x02\x10\x27", 10);
  const std::string frame = gb::build(41, 1, 0, time, source, dest, 2, data);
  auto d = decodeWith(fh_connector_alarm(), frame, kStream);
  ASSERT_TRUE(d.status.isOk());
  EXPECT_EQ(d.records.size(), 0u);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_NE(d.reasons[0].find("information object type 3 is not mapped yet"), std::string::npos);
  ASSERT_EQ(d.raws.size(), 1u);
  EXPECT_EQ(d.raws[0], frame) << "the raw frame";
  auto r = replies(d.reply);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], std::make_pair(3, 41)) << "confirmed";
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
