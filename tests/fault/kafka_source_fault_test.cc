// A Kafka source feed across kill -9: `firehub broker` stands for the agency's Kafka, a plain
// producer writes observations to its topic, and the `firehub serve` reading them is killed with
// -9 mid-stream and started again on its lake. Every message lands once: none lost (every
// station is there), none read twice (no duplicates), because each message's next offset is in
// the same lake commit as its records.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "processes.h"

namespace firehub::testing {
namespace {

TEST(KafkaSourceFaultTest, KillDashNineMidStreamLosesNothingAndRepeatsNothing) {
  TempDir dir;
  BrokerProcess agency(dir.sub("agency"));
  std::filesystem::create_directories(dir.sub("agency"));
  ASSERT_TRUE(agency.start()) << agency.log();
  HubProcess hub(dir.sub("hub"), pluginsDir(), dir.sub("hub.log"));
  ASSERT_TRUE(hub.start()) << hub.log();
  auto made =
      hub.post("/api/v1/feeds",
               R"({"id":"metk","agency":"met","connector":"firehub.connector.weather",)"
               R"("kafka":{"bootstrap":")" +
                   agency.bootstrap() +
                   R"(","topics":["met.obs"],"content_type":"application/x-ndjson",)"
                   R"("properties":{"session.timeout.ms":"6000","heartbeat.interval.ms":"500"}}})",
               "application/json");
  ASSERT_EQ(made.status, 201) << made.body;

  const int total = 4000;
  std::atomic<int> produced{0};
  std::thread producer([&] {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", agency.bootstrap().c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
    rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p) return;
    for (int i = 0; i < total; ++i) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "{\"station_id\":\"F%05d\",\"lon\":%.4f,\"lat\":%.4f,\"time\":"
                    "\"2026-12-07T08:00:00+08:00\",\"temp_c\":3.5,\"rh_pct\":40,\"wind_kmh\":12,"
                    "\"wind_dir_deg\":270,\"precip_mm\":0}",
                    i, 123.0 + (i % 100) * 0.002, 41.5 + (i / 100) * 0.002);
      while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC("met.obs"), RD_KAFKA_V_VALUE(line, strlen(line)),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(p, 10);
      ++produced;
      if (i % 100 == 99) {
        rd_kafka_flush(p, 10000);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);
  });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{producer};

  auto accepted = [&] {
    auto r = hub.get("/api/v1/feeds/metk");
    return r.status == 200 ? parseObject(r.body)->getObject("counts")->getValue<int>("accepted")
                           : -1;
  };
  ASSERT_TRUE(waitFor([&] { return accepted() >= 800; }, std::chrono::seconds(60)))
      << hub.get("/api/v1/feeds/metk").body;
  const int before = accepted();
  hub.killNow();
  std::cout << "kafka source: kill -9 after " << before << " of " << total << " (" << produced
            << " produced)" << std::endl;
  ASSERT_TRUE(hub.start()) << hub.log();
  producer.join();
  auto stations = [&] {
    auto r = hub.get("/api/v1/entities?domain=weather&limit=1");
    return r.status == 200 ? parseObject(r.body)->getValue<int>("numberMatched") : -1;
  };
  ASSERT_TRUE(waitFor([&] { return stations() == total; }, std::chrono::seconds(120)))
      << stations() << " of " << total << "\n"
      << hub.get("/api/v1/feeds/metk").body;
  auto counts = parseObject(hub.get("/api/v1/feeds/metk").body)->getObject("counts");
  EXPECT_EQ(counts->getValue<int>("accepted"), total);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 0) << "no message was read twice";
  EXPECT_EQ(counts->getValue<int>("rejected"), 0);
}

}  // namespace
}  // namespace firehub::testing
