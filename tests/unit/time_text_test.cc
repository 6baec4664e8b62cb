// RFC 3339 text of timestamps: written exactly as protobuf writes it, and read as the general
// parser the SDK falls back to (firehub::sdk::parseIsoTimeGeneral, absl's) reads it.
#include "firehub/v1/time_text.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <random>

#include "firehub/sdk/text.h"

namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

TEST(TimeTextTest, WritesWhatProtobufWrites) {
  std::mt19937_64 rng(11);
  const int32_t nanos[] = {0, 1, 999, 1000, 5000000, 120000000, 999999999, 123456789, 100000};
  for (int i = 0; i < 20000; ++i) {
    Timestamp t;
    t.set_seconds(static_cast<int64_t>(rng() % 315537897600ULL) - 62135596800LL);  // 0001..9999
    t.set_nanos(nanos[i % 9]);
    ASSERT_EQ(firehub::v1::rfc3339(t), TimeUtil::ToString(t)) << t.seconds() << "." << t.nanos();
  }
  Timestamp edge;
  edge.set_seconds(-62135596800LL);
  EXPECT_EQ(firehub::v1::rfc3339(edge), "0001-01-01T00:00:00Z");
  edge.set_seconds(951782400);  // a leap day
  EXPECT_EQ(firehub::v1::rfc3339(edge), "2000-02-29T00:00:00Z");
}

TEST(TimeTextTest, CommonShapesReadAsTheGeneralParserReadsThem) {
  const char* texts[] = {"2026-11-22T08:00:00+08:00",
                         "2026-11-22T08:00:00Z",
                         "2026-11-22 08:00:00",
                         "2026-11-22T08:00",
                         "2026-11-22T08:00+05:30",
                         "2026-11-22T08:00:00.5Z",
                         "2026-11-22T08:00:00.123456789-03:00",
                         "1969-12-31T23:59:59.999999Z",
                         "2024-02-29T12:00:00Z",
                         "0001-01-01T00:00:00Z",
                         "9999-12-31T23:59:59Z",
                         "1900-03-01T00:00:00-12:00",
                         "2026-01-01T00:00:00.000001+14:00"};
  for (const char* text : texts) {
    auto common = firehub::v1::parseRfc3339Common(text, 480);
    auto general = firehub::sdk::parseIsoTimeGeneral(text, 480);
    ASSERT_TRUE(common.has_value()) << text;
    ASSERT_TRUE(general.has_value()) << text;
    EXPECT_EQ(common->DebugString(), general->DebugString()) << text;
  }
}

TEST(TimeTextTest, NeverReadsATextDifferentlyFromTheGeneralParser) {
  // Valid times, then each mutated at one place: a value the fast reader accepts must be the
  // general parser's value; what it declines goes to the general parser.
  std::mt19937 rng(5);
  const std::string alphabet = "0123456789-:.TZz+ x";
  size_t read_fast = 0;
  for (int i = 0; i < 40000; ++i) {
    Timestamp t;
    t.set_seconds(static_cast<int64_t>(rng() % 4000000000U) - 1000000000);
    std::string text = TimeUtil::ToString(t);
    if (i % 3 == 1) text = text.substr(0, 19) + "+08:00";
    if (i % 5 == 2) text = text.substr(0, 16);
    if (i % 2 == 0) text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
    if (i % 7 == 3) text.insert(rng() % text.size(), 1, alphabet[rng() % alphabet.size()]);
    auto common = firehub::v1::parseRfc3339Common(text, -300);
    auto viaSdk = firehub::sdk::parseIsoTime(text, -300);
    auto general = firehub::sdk::parseIsoTimeGeneral(text, -300);
    if (common) {
      ++read_fast;
      ASSERT_TRUE(general.has_value()) << "'" << text << "' read only by the fast reader";
      ASSERT_EQ(common->DebugString(), general->DebugString()) << text;
    }
    // The SDK trims the text and takes 16 to 40 characters, then reads it as the general parser.
    std::string trimmed(firehub::sdk::trim(text));
    auto expected = trimmed.size() >= 16 && trimmed.size() <= 40
                        ? firehub::sdk::parseIsoTimeGeneral(trimmed, -300)
                        : std::nullopt;
    ASSERT_EQ(viaSdk.has_value(), expected.has_value()) << text;
    if (expected) {
      ASSERT_EQ(viaSdk->DebugString(), expected->DebugString()) << text;
    }
  }
  EXPECT_GT(read_fast, 20000u);  // the usual shapes take the fast way
}

}  // namespace
