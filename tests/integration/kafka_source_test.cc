// A feed that reads an agency's Kafka topic (the agency's own broker: here an embedded one) with
// a plain producer writing to it. Checked: each message lands once through the feed's connector;
// a message the connector cannot read is a dead letter naming its topic, partition and offset;
// the feed's state shows the partition and its lag, and secret settings are never shown back; a
// restarted hub goes on from the offsets its lake holds, repeating nothing.
#include <librdkafka/rdkafka.h>

#include "hub_fixture.h"

namespace firehub {
namespace {

std::string observationLine(int i) {
  char line[256];
  std::snprintf(line, sizeof line,
                "{\"station_id\":\"K%03d\",\"lon\":%.4f,\"lat\":41.8,\"time\":"
                "\"2026-12-07T08:00:00+08:00\",\"temp_c\":3.5,\"rh_pct\":40,\"wind_kmh\":12,"
                "\"wind_dir_deg\":270,\"precip_mm\":0}",
                i, 123.3 + i * 0.001);
  return line;
}

class KafkaSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = bus::EmbeddedBroker::start(1, 2);
    ASSERT_TRUE(broker.isOk()) << broker.status().toString();
    agency_ = std::move(broker).value();
    agency_->ensureTopic("met.observations");
    startHub(true);
  }
  void TearDown() override {
    hub_.reset();
    if (producer_) {
      rd_kafka_flush(producer_, 5000);
      rd_kafka_destroy(producer_);
    }
  }

  void startHub(bool init) {
    HubConfig c = sourceHubConfig(dir_.path(), init);
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hub_ = std::move(hub).value();
    key_ = firehub::testing::adminKey(dir_.path());
  }

  firehub::testing::Http call(const std::string& method, const std::string& path,
                              const std::string& body = "", const std::string& type = "") {
    return http("127.0.0.1", hub_->httpPort(), method, path, body, type, key_);
  }

  // A plain producer of the agency's, acks=all.
  void produce(const std::string& value, int partition) {
    if (!producer_) {
      char err[256];
      rd_kafka_conf_t* conf = rd_kafka_conf_new();
      rd_kafka_conf_set(conf, "bootstrap.servers", agency_->bootstrapServers().c_str(), err,
                        sizeof err);
      rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
      producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
      ASSERT_NE(producer_, nullptr) << err;
    }
    ASSERT_EQ(rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC("met.observations"),
                                RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(rd_kafka_flush(producer_, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  size_t stations() {
    auto r = call("GET", "/api/v1/entities?domain=weather&limit=1");
    return r.status == 200 ? parse(r.body)->getValue<size_t>("numberMatched") : 0;
  }

  TempDir dir_;
  std::unique_ptr<bus::EmbeddedBroker> agency_;
  std::unique_ptr<Hub> hub_;
  std::string key_;
  rd_kafka_t* producer_ = nullptr;
};

TEST_F(KafkaSourceTest, MessagesLandOnceBadOnesAreDeadLettersAndARestartRepeatsNothing) {
  const std::string feed =
      R"({"id":"metk","agency":"met","connector":"firehub.connector.weather","kafka":{)"
      R"("bootstrap":")" +
      agency_->bootstrapServers() +
      R"(","topics":["met.observations"],"content_type":"application/x-ndjson",)"
      R"("properties":{"client.id":"firehub-metk","ssl.key.password":"s3cret",)"
      R"("session.timeout.ms":"6000","heartbeat.interval.ms":"500"}}})";
  auto made = call("POST", "/api/v1/feeds", feed, "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.body.find("s3cret"), std::string::npos) << "secrets are not shown back";
  for (int i = 0; i < 40; ++i) ASSERT_NO_FATAL_FAILURE(produce(observationLine(i), i % 2));
  ASSERT_NO_FATAL_FAILURE(produce("{not json", 1));
  for (int i = 40; i < 50; ++i) ASSERT_NO_FATAL_FAILURE(produce(observationLine(i), i % 2));
  ASSERT_TRUE(waitFor([&] { return stations() == 50; }, std::chrono::seconds(30)))
      << stations() << "\n"
      << call("GET", "/api/v1/feeds/metk").body;

  auto letters = call("GET", "/api/v1/dlq?feed=metk").body;
  EXPECT_NE(letters.find("met.observations/1@20"), std::string::npos) << letters;
  auto state = parse(call("GET", "/api/v1/feeds/metk").body);
  EXPECT_EQ(call("GET", "/api/v1/feeds/metk").body.find("s3cret"), std::string::npos);
  EXPECT_NE(call("GET", "/api/v1/feeds/metk").body.find("\"ssl.key.password\":\"********\""),
            std::string::npos);
  auto kafka = state->getObject("kafka_state");
  ASSERT_TRUE(kafka) << call("GET", "/api/v1/feeds/metk").body;
  EXPECT_TRUE(kafka->getValue<bool>("running"));
  EXPECT_EQ(kafka->getValue<int>("messages"), 51);
  EXPECT_EQ(kafka->getValue<int>("dead_lettered"), 1);
  ASSERT_TRUE(waitFor([&] {
    auto parts = parse(call("GET", "/api/v1/feeds/metk").body)
                     ->getObject("kafka_state")
                     ->getArray("partitions");
    int64_t lag = 0;
    for (size_t i = 0; parts && i < parts->size(); ++i)
      lag += parts->getObject(static_cast<unsigned>(i))->getValue<int64_t>("lag");
    return parts && parts->size() == 2 && lag == 0;
  })) << call("GET", "/api/v1/feeds/metk").body;
  EXPECT_NE(call("GET", "/metrics").body.find("firehub_kafka_source_lag_messages{feed=\"metk\""),
            std::string::npos);
  const int accepted = state->getObject("counts")->getValue<int>("accepted");
  EXPECT_EQ(accepted, 50);

  // A restart goes on from the lake's offsets: the next messages only, nothing twice.
  hub_.reset();
  ASSERT_NO_FATAL_FAILURE(startHub(false));
  for (int i = 50; i < 60; ++i) ASSERT_NO_FATAL_FAILURE(produce(observationLine(i), i % 2));
  ASSERT_TRUE(waitFor([&] { return stations() == 60; }, std::chrono::seconds(30)))
      << call("GET", "/api/v1/feeds/metk").body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto counts = parse(call("GET", "/api/v1/feeds/metk").body)->getObject("counts");
  EXPECT_EQ(counts->getValue<int>("accepted"), 60);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 0) << "nothing read twice";
}

// What a Kafka source may not be is refused with a reason.
TEST_F(KafkaSourceTest, BadKafkaSettingsAreRefused) {
  auto with = [&](const std::string& kafka) {
    return call("POST", "/api/v1/feeds",
                R"({"id":"bad","agency":"met","connector":"firehub.connector.weather","kafka":)" +
                    kafka + "}",
                "application/json");
  };
  EXPECT_EQ(with(R"({"bootstrap":"x","topics":["a"]})").status, 400);
  EXPECT_EQ(with(R"({"bootstrap":"h:9092","topics":[]})").status, 400);
  EXPECT_EQ(with(R"({"bootstrap":"h:9092","topics":["a b"]})").status, 400);
  auto owned = with(R"({"bootstrap":"h:9092","topics":["a"],"properties":{"group.id":"x"}})");
  EXPECT_EQ(owned.status, 400);
  EXPECT_NE(owned.body.find("group.id"), std::string::npos) << owned.body;
  EXPECT_EQ(with(R"({"bootstrap":"h:9092","topics":["a"],"content_type":"image/png"})").status,
            400);
}

}  // namespace
}  // namespace firehub
