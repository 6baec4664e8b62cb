// The outbox publisher against librdkafka's mock cluster: delivery only on success reports,
// broker outages back up on disk, fatal producer errors rebuild and replay.
#include <gtest/gtest.h>

#include <set>

#include "firehub/bus.h"
#include "firehub/lake.h"
#include "test_support.h"

namespace firehub::bus {
namespace {

using firehub::testing::consumeAll;
using firehub::testing::TempDir;
using firehub::testing::waitFor;

std::vector<lake::StoreItem> records(int first, int count) {
  std::vector<lake::StoreItem> out;
  for (int i = first; i < first + count; ++i) {
    lake::StoreItem item;
    auto& r = item.record();
    r.set_id("wx:S" + std::to_string(i) + "@1");
    r.set_feed_id("wx");
    r.set_agency("met");
    r.set_domain("weather");
    r.set_entity_type("weather_station");
    r.set_entity_id("S" + std::to_string(i));
    r.mutable_observed_at()->set_seconds(1795305600);
    r.mutable_geometry()->mutable_point()->set_lon(123.4);
    r.mutable_geometry()->mutable_point()->set_lat(41.8);
    r.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
    r.mutable_weather_observation()->set_station_id(r.entity_id());
    item.topics = {"firehub.v1.weather"};
    out.push_back(std::move(item));
  }
  return out;
}

class PublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lake::LakeOptions o;
    o.path = dir_.sub("lake");
    o.sync = false;
    auto lake = lake::Lake::open(o);
    ASSERT_TRUE(lake.isOk());
    lake_ = std::move(lake).value();
    auto broker = EmbeddedBroker::start(3, 4);
    ASSERT_TRUE(broker.isOk());
    broker_ = std::move(broker).value();
  }

  std::unique_ptr<Publisher> makePublisher(std::map<std::string, std::string> props = {}) {
    PublisherOptions o;
    o.bootstrap_servers = broker_->bootstrapServers();
    o.properties = std::move(props);
    o.max_backoff_ms = 500;
    auto* b = broker_.get();
    o.ensure_topic = [b](const std::string& t) { b->ensureTopic(t); };
    return std::make_unique<Publisher>(*lake_, metrics_, o);
  }

  static std::set<std::string> keys(const std::vector<firehub::testing::KafkaMessage>& messages) {
    std::set<std::string> out;
    for (const auto& m : messages) out.insert(m.key);
    return out;
  }

  TempDir dir_;
  Metrics metrics_;
  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<EmbeddedBroker> broker_;
};

TEST_F(PublisherTest, DeliversOutboxAndDeletesOnlyAfterSuccess) {
  ASSERT_TRUE(lake_->commit(records(0, 200), {}).isOk());
  auto publisher = makePublisher();
  ASSERT_TRUE(publisher->start().isOk());
  ASSERT_TRUE(waitFor([&] { return lake_->outboxDepth() == 0; }));
  EXPECT_EQ(publisher->delivered(), 200u);
  EXPECT_EQ(publisher->failed(), 0u);
  auto messages = consumeAll(broker_->bootstrapServers(), "firehub.v1.weather", 200);
  ASSERT_EQ(messages.size(), 200u);
  EXPECT_EQ(keys(messages).size(), 200u);
  EXPECT_EQ(messages[0].headers["feed"], "wx");
  EXPECT_EQ(messages[0].headers["agency"], "met");
  EXPECT_EQ(messages[0].headers["schema"], "firehub.v1.WeatherObservation");
  EXPECT_NE(messages[0].value.find("\"weather_observation\""), std::string::npos);
  publisher->stop(1000);
}

TEST_F(PublisherTest, BrokerOutageBacksUpInTheOutboxAndDrainsAfter) {
  auto publisher = makePublisher({{"message.timeout.ms", "1500"}});
  ASSERT_TRUE(publisher->start().isOk());
  ASSERT_TRUE(lake_->commit(records(0, 10), {}).isOk());
  publisher->notify();
  ASSERT_TRUE(waitFor([&] { return lake_->outboxDepth() == 0; }));

  for (int b = 1; b <= broker_->brokerCount(); ++b) broker_->setBrokerDown(b, true);
  ASSERT_TRUE(lake_->commit(records(10, 300), {}).isOk());
  publisher->notify();
  // Deliveries time out and fail; nothing is deleted from the outbox.
  ASSERT_TRUE(waitFor([&] { return publisher->failed() > 0; }, std::chrono::seconds(30)));
  EXPECT_EQ(lake_->outboxDepth(), 300u);
  EXPECT_EQ(publisher->delivered(), 10u);

  EXPECT_TRUE(waitFor([&] { return !publisher->healthy(); }, std::chrono::seconds(30)))
      << "readiness reports the outage";

  for (int b = 1; b <= broker_->brokerCount(); ++b) broker_->setBrokerDown(b, false);
  ASSERT_TRUE(waitFor([&] { return lake_->outboxDepth() == 0; }, std::chrono::seconds(60)));
  EXPECT_TRUE(waitFor([&] { return publisher->healthy(); }, std::chrono::seconds(10)));
  auto messages = consumeAll(broker_->bootstrapServers(), "firehub.v1.weather", 310);
  EXPECT_EQ(keys(messages).size(), 310u);  // every record at least once
  publisher->stop(1000);
}

TEST_F(PublisherTest, FatalProducerErrorRebuildsAndReplays) {
  auto publisher = makePublisher();
  ASSERT_TRUE(publisher->start().isOk());
  ASSERT_TRUE(lake_->commit(records(0, 50), {}).isOk());
  publisher->notify();
  ASSERT_TRUE(waitFor([&] { return lake_->outboxDepth() == 0; }));
  ASSERT_TRUE(publisher->injectFatalError("injected by test").isOk());
  ASSERT_TRUE(waitFor([&] { return publisher->rebuilds() == 1; }));
  ASSERT_TRUE(lake_->commit(records(50, 50), {}).isOk());
  publisher->notify();
  ASSERT_TRUE(waitFor([&] { return lake_->outboxDepth() == 0; }));
  auto messages = consumeAll(broker_->bootstrapServers(), "firehub.v1.weather", 100);
  EXPECT_EQ(keys(messages).size(), 100u);
  publisher->stop(1000);
}

TEST_F(PublisherTest, StopKeepsUndeliveredEntriesForTheNextStart) {
  for (int b = 1; b <= broker_->brokerCount(); ++b) broker_->setBrokerDown(b, true);
  auto publisher = makePublisher();
  ASSERT_TRUE(publisher->start().isOk());
  ASSERT_TRUE(lake_->commit(records(0, 20), {}).isOk());
  publisher->notify();
  publisher->stop(300);
  EXPECT_EQ(lake_->outboxDepth(), 20u);
  EXPECT_EQ(publisher->delivered(), 0u);

  for (int b = 1; b <= broker_->brokerCount(); ++b) broker_->setBrokerDown(b, false);
  auto next = makePublisher();
  ASSERT_TRUE(next->start().isOk());
  ASSERT_TRUE(waitFor([&] { return lake_->outboxDepth() == 0; }, std::chrono::seconds(30)));
  EXPECT_EQ(next->delivered(), 20u);
  next->stop(1000);
}

}  // namespace
}  // namespace firehub::bus
