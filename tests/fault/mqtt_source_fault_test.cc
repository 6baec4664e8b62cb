// An MQTT source feed against a real Mosquitto broker (a user and a password, persistence) and a
// `firehub serve` process. Checked: messages land through the feed's connector, an unreadable
// one is a dead letter naming its topic, the password is never shown back; a paused feed
// acknowledges nothing it did not store; the hub killed with
// -9 mid-stream loses nothing (every message is acknowledged only after its commit, so the
// broker sends again what was not); a broker restart is ridden out.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "processes.h"

namespace firehub::testing {
namespace {

std::string observations(const std::string& prefix, int from, int to) {
  std::string lines;
  for (int i = from; i < to; ++i) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "{\"station_id\":\"%s%05d\",\"lon\":%.4f,\"lat\":%.4f,\"time\":"
                  "\"2026-12-07T08:00:00+08:00\",\"temp_c\":3.5,\"rh_pct\":40,\"wind_kmh\":12,"
                  "\"wind_dir_deg\":270,\"precip_mm\":0}\n",
                  prefix.c_str(), i, 121.0 + (i % 100) * 0.002, 38.9 + (i / 100) * 0.002);
    lines += line;
  }
  return lines;
}

TEST(MqttSourceTest, NothingLostAcrossKillDashNineAndABrokerRestart) {
  TempDir dir;
  MosquittoProcess broker(dir.sub("mqtt"), "iot", "pa55word");
  ASSERT_TRUE(broker.start()) << broker.log();
  std::ofstream(dir.sub("hub.conf")) << "outbound.allow = 127.0.0.1/32\nlake.sync = false\n";
  HubProcess hub(dir.sub("hub"), pluginsDir(), dir.sub("hub.log"), dir.sub("hub.conf"));
  ASSERT_TRUE(hub.start()) << hub.log();
  auto made = hub.post("/api/v1/feeds",
                       R"({"id":"iotm","agency":"met","connector":"firehub.connector.weather",)"
                       R"("mqtt":{"host":"127.0.0.1","port":)" +
                           std::to_string(broker.port()) +
                           R"(,"topics":["met/+/obs"],"username":"iot","password":"pa55word",)"
                           R"("content_type":"application/x-ndjson","keepalive_s":5}})",
                       "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.body.find("pa55word"), std::string::npos) << "the password is not shown back";
  auto state = [&] {
    auto r = hub.get("/api/v1/feeds/iotm");
    return r.status == 200 ? parseObject(r.body)->getObject("mqtt_state") : nullptr;
  };
  auto connected = [&] {
    auto s = state();
    return s && s->getValue<bool>("connected");
  };
  ASSERT_TRUE(waitFor(connected)) << hub.get("/api/v1/feeds/iotm").body << hub.log();
  auto stations = [&] {
    auto r = hub.get("/api/v1/entities?domain=weather&limit=1");
    return r.status == 200 ? parseObject(r.body)->getValue<int>("numberMatched") : -1;
  };
  auto accepted = [&] {
    auto r = hub.get("/api/v1/feeds/iotm");
    return r.status == 200 ? parseObject(r.body)->getObject("counts")->getValue<int>("accepted")
                           : -1;
  };

  // Messages through the connector; an unreadable one is a dead letter.
  ASSERT_EQ(broker.publish("met/shenyang/obs", observations("S", 0, 20) + "{not json\n"), 0);
  ASSERT_TRUE(waitFor([&] { return stations() == 20; })) << hub.get("/api/v1/feeds/iotm").body;
  ASSERT_TRUE(waitFor([&] { return state()->getValue<int>("dead_lettered") == 1; }))
      << hub.get("/api/v1/feeds/iotm").body;
  auto letters = hub.get("/api/v1/dlq?feed=iotm").body;
  EXPECT_NE(letters.find("mqtt met/shenyang/obs"), std::string::npos) << letters;

  // Paused: a message that cannot be stored now is not acknowledged; the client stays away and
  // the broker keeps what comes meanwhile; resumed, all of it lands.
  ASSERT_EQ(hub.post("/api/v1/feeds/iotm/pause", "{}", "application/json").status, 200);
  ASSERT_EQ(broker.publish("met/fushun/obs", observations("F", 0, 10)), 0);
  ASSERT_TRUE(waitFor([&] {
    auto s = state();
    return s && !s->getValue<bool>("connected");
  })) << hub.get("/api/v1/feeds/iotm").body;
  EXPECT_EQ(stations(), 20);
  ASSERT_EQ(hub.post("/api/v1/feeds/iotm/resume", "{}", "application/json").status, 200);
  ASSERT_TRUE(waitFor([&] { return stations() == 30; })) << hub.get("/api/v1/feeds/iotm").body;

  // kill -9 while messages stream in: those not acknowledged come again after the restart.
  const int total = 3000;
  std::atomic<int> published{-1};
  std::thread publisher(
      [&] { published = broker.publish("met/dalian/obs", observations("D", 0, total)); });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{publisher};
  ASSERT_TRUE(waitFor([&] { return accepted() >= 30 + 300; }, std::chrono::seconds(60)))
      << hub.get("/api/v1/feeds/iotm").body;
  const int before = accepted();
  hub.killNow();
  std::cout << "mqtt source: kill -9 after " << before - 30 << " of " << total << std::endl;
  ASSERT_TRUE(hub.start()) << hub.log();
  publisher.join();
  EXPECT_EQ(published.load(), 0) << broker.log();
  ASSERT_TRUE(waitFor([&] { return stations() == 30 + total; }, std::chrono::seconds(120)))
      << stations() << " of " << 30 + total << "\n"
      << hub.get("/api/v1/feeds/iotm").body;
  EXPECT_EQ(accepted(), 30 + total) << "each observation stored once";

  // The broker restarts: the hub says so, connects again, and goes on.
  broker.stop();
  ASSERT_TRUE(waitFor([&] {
    auto s = state();
    return s && !s->getValue<bool>("connected") && !s->getValue<std::string>("error").empty();
  })) << hub.get("/api/v1/feeds/iotm").body;
  ASSERT_TRUE(broker.start()) << broker.log();
  ASSERT_TRUE(waitFor(connected, std::chrono::seconds(60))) << hub.get("/api/v1/feeds/iotm").body;
  ASSERT_EQ(broker.publish("met/anshan/obs", observations("A", 0, 5)), 0);
  ASSERT_TRUE(waitFor([&] { return stations() == 35 + total; }))
      << hub.get("/api/v1/feeds/iotm").body;
  EXPECT_EQ(hub.get("/api/v1/feeds/iotm").body.find("pa55word"), std::string::npos);
}

// A broker behind TLS: its certificate is checked against the feed's ca_file (and the name the
// hub connects by); with the system's CAs instead, the hub refuses it and says so.
TEST(MqttSourceTest, ATlsBrokerIsCheckedAgainstTheFeedsCa) {
  TempDir dir;
  const std::string cert = dir.sub("broker.crt"), key = dir.sub("broker.pem");
  ASSERT_EQ(run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
                "-addext subjectAltName=DNS:localhost -keyout " +
                key + " -out " + cert + " 2>&1")
                .first,
            0);
  MosquittoProcess broker(dir.sub("mqtt"), "iot", "pa55word");
  broker.withTls(cert, key);
  ASSERT_TRUE(broker.start()) << broker.log();
  std::ofstream(dir.sub("hub.conf")) << "outbound.allow = 127.0.0.1/32\nlake.sync = false\n";
  HubProcess hub(dir.sub("hub"), pluginsDir(), dir.sub("hub.log"), dir.sub("hub.conf"));
  ASSERT_TRUE(hub.start()) << hub.log();
  auto feed = [&](const std::string& id, const std::string& ca) {
    return hub.post("/api/v1/feeds",
                    R"({"id":")" + id +
                        R"(","agency":"met","connector":"firehub.connector.weather",)"
                        R"("mqtt":{"host":"localhost","port":)" +
                        std::to_string(broker.tlsPort()) + R"(,"tls":true,)" + ca +
                        R"("topics":["met/+/obs"],"username":"iot","password":"pa55word",)"
                        R"("content_type":"application/x-ndjson","client_id":")" +
                        id + R"("}})",
                    "application/json");
  };
  ASSERT_EQ(feed("tlsok", R"("ca_file":")" + cert + R"(",)").status, 201);
  ASSERT_EQ(feed("tlsbad", "").status, 201);
  auto state = [&](const std::string& id) {
    auto r = hub.get("/api/v1/feeds/" + id);
    return r.status == 200 ? parseObject(r.body)->getObject("mqtt_state") : nullptr;
  };
  ASSERT_TRUE(waitFor([&] {
    auto s = state("tlsok");
    return s && s->getValue<bool>("connected");
  })) << hub.get("/api/v1/feeds/tlsok").body
      << broker.log();
  ASSERT_TRUE(waitFor([&] {
    auto s = state("tlsbad");
    return s && !s->getValue<std::string>("error").empty();
  })) << hub.get("/api/v1/feeds/tlsbad").body;
  EXPECT_FALSE(state("tlsbad")->getValue<bool>("connected"));
  EXPECT_NE(state("tlsbad")->getValue<std::string>("error").find("certificate verify failed"),
            std::string::npos);
  std::cout << "mqtt source, TLS with the system's CAs: "
            << state("tlsbad")->getValue<std::string>("error") << std::endl;
  ASSERT_EQ(run("mosquitto_pub -h localhost -p " + std::to_string(broker.tlsPort()) + " --cafile " +
                cert + " -u iot -P pa55word -q 1 -t met/tls/obs -m '" +
                observations("T", 0, 1).substr(0, observations("T", 0, 1).size() - 1) + "' 2>&1")
                .first,
            0);
  ASSERT_TRUE(waitFor([&] {
    auto r = hub.get("/api/v1/entities?domain=weather&limit=1");
    return r.status == 200 && parseObject(r.body)->getValue<int>("numberMatched") == 1;
  })) << hub.get("/api/v1/feeds/tlsok").body;
}

}  // namespace
}  // namespace firehub::testing
