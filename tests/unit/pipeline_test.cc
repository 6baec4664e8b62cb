// The pipeline alone, on a real lake in a temporary directory and the weather connector linked
// in: counts, dead letters with their stage and bytes, the error policy, and replay.
#include <gtest/gtest.h>

#include "firehub/metrics.h"
#include "firehub/pipeline.h"
#include "firehub/plugin_abi.h"
#include "test_support.h"

extern "C" const fh_connector_descriptor* fh_connector_weather(void);

namespace firehub::pipeline {
namespace {

using firehub::testing::kWeatherHeader;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lake::LakeOptions o;
    o.path = dir_.sub("lake");
    o.sync = false;
    auto opened = lake::Lake::open(o);
    ASSERT_TRUE(opened.isOk()) << opened.status().toString();
    lake_ = std::move(opened).value();
    ASSERT_TRUE(connectors_.registerStatic(fh_connector_weather()).isOk());
    feeds_ = std::make_unique<registry::FeedRegistry>(*lake_, connectors_);
    pipeline_ = std::make_unique<Pipeline>(*lake_, *feeds_, metrics_);
  }
  void addFeed(const std::string& json) {
    auto spec = registry::parseFeedSpec(json);
    ASSERT_TRUE(spec.isOk()) << spec.status().toString();
    ASSERT_TRUE(feeds_->create(spec.value()).isOk());
  }
  Result<IngestSummary> push(const std::string& feed, const std::string& body) {
    body_ = body;  // the request views the body
    return pipeline_->ingest({feed, body_, "text/csv"});
  }

  firehub::testing::TempDir dir_;
  std::unique_ptr<lake::Lake> lake_;
  plugin::ConnectorRegistry connectors_;
  Metrics metrics_;
  std::unique_ptr<registry::FeedRegistry> feeds_;
  std::unique_ptr<Pipeline> pipeline_;
  std::string body_;
};

TEST_F(PipelineTest, GoodBadAndRepeatedRowsAreCountedAndBadOnesDeadLettered) {
  addFeed(R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  const std::string body = std::string(kWeatherHeader) +
                           "A,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"
                           "B,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,140,10,,0\n";
  auto first = push("wx", body);
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  EXPECT_EQ(first->accepted, 1u);
  EXPECT_EQ(first->rejected, 1u);
  ASSERT_EQ(first->errors.size(), 1u);
  EXPECT_NE(first->errors[0].find("rh_pct"), std::string::npos) << first->errors[0];
  auto again = push("wx", body);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->duplicates, 1u) << "the same source record is stored once";

  auto a = lake_->latest("weather/weather_station/A");
  ASSERT_TRUE(a.isOk() && a.value());
  EXPECT_EQ(a.value()->id(), "wx:" + a.value()->provenance().source_record_id());
  EXPECT_EQ(a.value()->agency(), "met") << "the host fills the envelope";
  EXPECT_FALSE(a.value()->s2_cell().empty());
  std::vector<lake::DeadLetterEntry> letters;
  ASSERT_TRUE(lake_->listDeadLetters(0, 10, "wx", letters).isOk());
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].letter.stage(), "validate");
  EXPECT_NE(letters[0].letter.raw().find("B,123.50"), std::string::npos);
  EXPECT_EQ(letters[0].letter.replay_prefix(), kWeatherHeader)
      << "a CSV dead letter keeps its header";
}

TEST_F(PipelineTest, ToleranceNoneStoresNothingOfABadBodyAndStopsTheFeed) {
  addFeed(
      R"({"id":"strict","agency":"met","connector":"firehub.connector.weather","errors":{"tolerance":"none"}})");
  auto refused = push("strict", std::string(kWeatherHeader) +
                                    "A,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"
                                    "B,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,140,10,,0\n");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(lake_->latest("weather/weather_station/A").value()) << "nothing of that body";
  EXPECT_FALSE(feeds_->get("strict")->stoppedReason().empty());
  auto after = push("strict", std::string(kWeatherHeader) +
                                  "C,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n");
  EXPECT_EQ(after.status().code(), StatusCode::kFailedPrecondition) << "stopped until resumed";
}

TEST_F(PipelineTest, AReplayedDeadLetterIsStoredOnceItsCauseIsGone) {
  addFeed(R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  ASSERT_TRUE(push("wx", std::string(kWeatherHeader) +
                             "B,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,140,10,,0\n")
                  .isOk());
  std::vector<lake::DeadLetterEntry> letters;
  ASSERT_TRUE(lake_->listDeadLetters(0, 10, "wx", letters).isOk());
  ASSERT_EQ(letters.size(), 1u);
  auto still = pipeline_->replay({letters[0].sequence});
  ASSERT_TRUE(still.isOk());
  ASSERT_EQ(still->size(), 1u);
  EXPECT_FALSE(still->front().resolved) << "the row is still out of range";
  EXPECT_TRUE(lake_->getDeadLetter(letters[0].sequence).value()) << "and its dead letter stays";
}

TEST_F(PipelineTest, UnknownAndPausedFeedsAreRefused) {
  EXPECT_EQ(push("nope", kWeatherHeader).status().code(), StatusCode::kNotFound);
  addFeed(R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  ASSERT_TRUE(feeds_->setPaused("wx", true).isOk());
  EXPECT_EQ(push("wx", kWeatherHeader).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace firehub::pipeline
