// The hub in-process: real RocksDB in a temp dir, the embedded broker, HTTP on port 0.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/InflatingStream.h>
#include <gtest/gtest.h>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/URI.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <sstream>

#include "firehub/hub.h"
#include "firehub/log.h"
#include "gbt26875.h"
#include "http_peers.h"
#include "test_support.h"

namespace firehub {
namespace {

using firehub::testing::EventReader;
using firehub::testing::http;
using firehub::testing::kWeatherHeader;
using firehub::testing::TempDir;
using firehub::testing::waitFor;
using firehub::testing::WebhookReceiver;

using firehub::testing::fixture;
const auto& parse = firehub::testing::parseObject;

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HubConfig c;
    c.init = true;  // a fresh data dir
    c.init = true;  // a fresh data dir
    c.data_dir = dir_.path();
    c.http_listen = "127.0.0.1:0";
    c.plugins_dir = firehub::testing::pluginsDir();
    c.lake_sync = false;
    c.max_body_bytes = 64 * 1024;
    c.file_drop_root = drops_.path();
    c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()};  // the tests' webhook receivers
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hub_ = std::move(hub).value();
    port_ = hub_->httpPort();
    key_ = firehub::testing::adminKey(dir_.path());
    ASSERT_EQ(key_.size(), 80u) << "admin key written on first start";
    auto r =
        post("/api/v1/feeds",
             R"({"id":"wx","agency":"met","connector":"firehub.connector.weather","config":{}})",
             "application/json");
    ASSERT_EQ(r.status, 201) << r.body;
  }

  firehub::testing::Http get(const std::string& path) {
    return http("127.0.0.1", port_, "GET", path, "", "", key_);
  }
  firehub::testing::Http post(const std::string& path, const std::string& body,
                              const std::string& type) {
    return http("127.0.0.1", port_, "POST", path, body, type, key_);
  }

  TempDir dir_;
  TempDir drops_;  // file_drop.root
  std::unique_ptr<Hub> hub_;
  uint16_t port_ = 0;
  std::string key_;
};

TEST_F(HubTest, HealthReadinessAndKafkaInfo) {
  EXPECT_EQ(get("/healthz").status, 200);
  EXPECT_EQ(get("/readyz").status, 200);
  auto kafka = get("/api/v1/kafka");
  ASSERT_EQ(kafka.status, 200);
  auto obj = parse(kafka.body);
  EXPECT_TRUE(obj->getValue<bool>("embedded"));
  EXPECT_EQ(obj->getValue<std::string>("bootstrap_servers"), hub_->kafkaBootstrap());
}

TEST_F(HubTest, PushCountsGoodBadAndRepeatedRows) {
  std::string csv = std::string(kWeatherHeader) +
                    "A1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"
                    "A2,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,140,10,,0\n"  // rh out of range
                    "A3,123.60,41.70,not-a-time,1.0,50,5,20,0.4\n"               // bad time
                    "A1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"  // repeated
                    "A4,123.70,41.75,2026-11-22T08:00:00+08:00,-2.0,60,0,,0\n";
  auto r = post("/api/v1/feeds/wx/records", csv, "text/csv; charset=utf-8");
  ASSERT_EQ(r.status, 202) << r.body;
  auto obj = parse(r.body);
  EXPECT_EQ(obj->getValue<int>("accepted"), 2);
  EXPECT_EQ(obj->getValue<int>("rejected"), 2);
  EXPECT_EQ(obj->getValue<int>("duplicates"), 1);
  EXPECT_NE(r.body.find("line 3: field 'rh_pct' = 140 is outside [0, 100]"), std::string::npos);
  EXPECT_NE(r.body.find("line 4: field 'time'"), std::string::npos);

  auto dlq = get("/api/v1/dlq?feed=wx");
  ASSERT_EQ(dlq.status, 200);
  EXPECT_NE(dlq.body.find("\"stage\":\"validate\""), std::string::npos);
  EXPECT_NE(dlq.body.find("A2,123.50,41.90"), std::string::npos);

  auto rec = get("/api/v1/records/wx:A1@2026-11-22T00:00:00Z");
  ASSERT_EQ(rec.status, 200) << rec.body;
  EXPECT_NE(rec.body.find("\"temperature_c\":3.5"), std::string::npos);
  EXPECT_EQ(get("/api/v1/records/wx:nope").status, 404);

  auto feed = parse(get("/api/v1/feeds/wx").body);
  auto counts = feed->getObject("counts");
  EXPECT_EQ(counts->getValue<int>("accepted"), 2);
  EXPECT_EQ(counts->getValue<int>("rejected"), 2);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 1);

  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto metrics = get("/metrics").body;
  EXPECT_NE(metrics.find("firehub_records_total{feed=\"wx\",outcome=\"accepted\"} 2"),
            std::string::npos)
      << metrics;
  // Two records on firehub.v1.weather and the two dead letters on firehub.v1.dlq.
  EXPECT_NE(metrics.find("firehub_kafka_delivered_total 4"), std::string::npos) << metrics;
}

TEST_F(HubTest, JsonArrayAndNdjsonBodies) {
  auto a = post(
      "/api/v1/feeds/wx/records",
      R"([{"station_id":"J1","lon":123.1,"lat":41.6,"time":"2026-11-22T09:00:00Z","temp_c":1,"rh_pct":30,"wind_kmh":4,"precip_mm":0},
                    {"station_id":"J2","lon":"east","lat":41.6,"time":"2026-11-22T09:00:00Z","temp_c":1,"rh_pct":30,"wind_kmh":4,"precip_mm":0},
                    {"station_id":54342,"lon":123.2,"lat":41.7,"time":"2026-11-22 17:00:00","temp_c":1,"rh_pct":30,"wind_kmh":4,"precip_mm":0}])",
      "application/json");
  ASSERT_EQ(a.status, 202) << a.body;
  EXPECT_EQ(parse(a.body)->getValue<int>("accepted"), 2);
  EXPECT_EQ(parse(a.body)->getValue<int>("rejected"), 1);
  EXPECT_NE(a.body.find("item 1: field 'lon' is not a valid value"), std::string::npos) << a.body;

  auto n = post("/api/v1/feeds/wx/records",
                "{\"station_id\":\"N1\",\"lon\":123.3,\"lat\":41.9,\"time\":\"2026-11-22T09:00:"
                "00Z\",\"temp_c\":1,\"rh_pct\":30,\"wind_kmh\":4,\"precip_mm\":0}\n"
                "{broken json\n"
                "{\"station_id\":\"N2\",\"lon\":123.3,\"lat\":41.9,\"time\":\"2026-11-22T09:00:"
                "00Z\",\"temp_c\":1,\"rh_pct\":30,\"wind_kmh\":-4,\"precip_mm\":0}\n",
                "application/x-ndjson");
  ASSERT_EQ(n.status, 202) << n.body;
  EXPECT_EQ(parse(n.body)->getValue<int>("accepted"), 1);
  EXPECT_EQ(parse(n.body)->getValue<int>("rejected"), 2);
  EXPECT_NE(n.body.find("line 2: invalid JSON"), std::string::npos) << n.body;
  EXPECT_NE(n.body.find("line 3: field 'wind_kmh'"), std::string::npos) << n.body;
}

TEST_F(HubTest, ClearErrorsForBadRequests) {
  auto unknown = post("/api/v1/feeds/nope/records", "x", "text/csv");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("\"error\":\"not_found\""), std::string::npos);

  auto media = post("/api/v1/feeds/wx/records", "%PDF-1.7", "application/pdf");
  EXPECT_EQ(media.status, 415);
  EXPECT_NE(media.body.find("text/csv"), std::string::npos);

  auto unparseable = post("/api/v1/feeds/wx/records", "[{\"station_id\": ", "application/json");
  EXPECT_EQ(unparseable.status, 400);
  EXPECT_NE(unparseable.body.find("not valid JSON"), std::string::npos);

  auto header = post("/api/v1/feeds/wx/records", "a,b\n1,2\n", "text/csv");
  EXPECT_EQ(header.status, 400);
  EXPECT_NE(header.body.find("CSV header lacks column"), std::string::npos);

  std::string big(70 * 1024, 'x');
  auto too_big = post("/api/v1/feeds/wx/records", big, "text/csv");
  EXPECT_EQ(too_big.status, 413);
  EXPECT_NE(too_big.body.find("http.max_body_bytes"), std::string::npos);

  auto bad_feed = post("/api/v1/feeds",
                       R"({"id":"Bad Id","agency":"x","connector":"firehub.connector.weather"})",
                       "application/json");
  EXPECT_EQ(bad_feed.status, 400);
  auto no_connector =
      post("/api/v1/feeds", R"({"id":"x","agency":"x","connector":"firehub.connector.nope"})",
           "application/json");
  EXPECT_EQ(no_connector.status, 400);
  EXPECT_NE(no_connector.body.find("no connector"), std::string::npos);
  auto bad_config = post(
      "/api/v1/feeds",
      R"({"id":"x","agency":"x","connector":"firehub.connector.weather","config":{"utc_offset":"noon"}})",
      "application/json");
  EXPECT_EQ(bad_config.status, 400);
  EXPECT_NE(bad_config.body.find("utc_offset"), std::string::npos);
  auto conflict = post("/api/v1/feeds",
                       R"({"id":"wx","agency":"other","connector":"firehub.connector.weather"})",
                       "application/json");
  EXPECT_EQ(conflict.status, 409);

  auto bbox = get("/api/v1/entities?domain=weather&bbox=1,2,3");
  EXPECT_EQ(bbox.status, 400);
  EXPECT_EQ(get("/api/v1/entities").status, 400);
  EXPECT_EQ(get("/nowhere").status, 404);
  // The hub still serves after all of that.
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(HubTest, EntitiesInABoundingBoxAreTheLatestPerStation) {
  std::string csv = std::string(kWeatherHeader) +
                    "B1,123.40,41.80,2026-11-22T08:00:00Z,3.5,40,12,310,0\n"
                    "B1,123.40,41.80,2026-11-22T09:00:00Z,4.5,38,12,310,0\n"
                    "B2,125.00,43.00,2026-11-22T09:00:00Z,1.0,50,5,20,0\n";
  ASSERT_EQ(post("/api/v1/feeds/wx/records", csv, "text/csv").status, 202);
  auto r = get("/api/v1/entities?domain=weather&bbox=123,41,124,42");
  ASSERT_EQ(r.status, 200);
  auto obj = parse(r.body);
  auto features = obj->getArray("features");
  ASSERT_EQ(features->size(), 1u);
  auto props = features->getObject(0)->getObject("properties");
  EXPECT_EQ(props->getValue<std::string>("entity_id"), "B1");
  EXPECT_EQ(props->getObject("weather_observation")->getValue<double>("temperature_c"), 4.5);
  auto all = parse(get("/api/v1/entities?domain=weather").body);
  EXPECT_EQ(all->getArray("features")->size(), 2u);
}

TEST_F(HubTest, PluginsEndpointListsLoadedConnectors) {
  auto r = get("/api/v1/plugins");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("firehub.connector.weather"), std::string::npos);
  EXPECT_NE(r.body.find("\"state\":\"loaded\""), std::string::npos);
}

TEST_F(HubTest, PressureTelemetryPatchesTheRegisteredSource) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"hydrants","agency":"water-bureau","connector":"firehub.connector.water"})",
           "application/json")
          .status,
      201);
  auto registry =
      post("/api/v1/feeds/hydrants/records", fixture("water", "sources.csv"), "text/csv");
  ASSERT_EQ(registry.status, 202) << registry.body;
  EXPECT_EQ(parse(registry.body)->getValue<int>("accepted"), 6);
  auto telemetry = post("/api/v1/feeds/hydrants/records",
                        fixture("water", "pressure.ndjson") +
                            "{\"source_id\":\"SY-H-99999\",\"time\":\"2026-11-22T08:00:00+08:00\","
                            "\"pressure_mpa\":0.2}\n",
                        "application/x-ndjson");
  ASSERT_EQ(telemetry.status, 202) << telemetry.body;
  EXPECT_EQ(parse(telemetry.body)->getValue<int>("accepted"), 2);
  EXPECT_EQ(parse(telemetry.body)->getValue<int>("rejected"), 1);
  EXPECT_NE(telemetry.body.find("patch for unknown entity water/water_source/SY-H-99999"),
            std::string::npos)
      << telemetry.body;

  auto latest = hub_->lake().latest("water/water_source/SY-H-00003");
  ASSERT_TRUE(latest.isOk() && latest.value());
  const auto& r = *latest.value();
  EXPECT_EQ(r.op(), firehub::v1::OP_UPSERT);
  EXPECT_EQ(r.water_source().kind(), firehub::v1::WaterSource::KIND_HYDRANT);  // kept
  EXPECT_EQ(r.water_source().status(), firehub::v1::WaterSource::STATUS_IN_SERVICE);
  EXPECT_DOUBLE_EQ(r.water_source().pressure_mpa(), 0.06);  // patched
  EXPECT_DOUBLE_EQ(r.geometry().point().lon(), 123.4288);   // kept
  EXPECT_EQ(r.observed_at().seconds(), 1795305600);
}

TEST_F(HubTest, HazardsArePlacedAtTheirBuilding) {
  ASSERT_EQ(
      post(
          "/api/v1/feeds",
          R"({"id":"buildings","agency":"housing-bureau","connector":"firehub.connector.building"})",
          "application/json")
          .status,
      201);
  auto buildings = post("/api/v1/feeds/buildings/records", fixture("building", "buildings.geojson"),
                        "application/json");
  ASSERT_EQ(buildings.status, 202) << buildings.body;
  EXPECT_EQ(parse(buildings.body)->getValue<int>("accepted"), 4);
  auto hazards =
      post("/api/v1/feeds/buildings/records",
           fixture("building", "hazards.csv") +
               "HZ-2026-0003,SY-B-404,blocked_exit,major,open,2026-11-10T10:00:00+08:00,\n",
           "text/csv");
  ASSERT_EQ(hazards.status, 202) << hazards.body;
  EXPECT_EQ(parse(hazards.body)->getValue<int>("accepted"), 2);
  EXPECT_NE(hazards.body.find("no located building/building/SY-B-404"), std::string::npos)
      << hazards.body;
  auto hazard = hub_->lake().latest("building/building_hazard/HZ-2026-0001");
  ASSERT_TRUE(hazard.isOk() && hazard.value());
  ASSERT_TRUE(hazard.value()->geometry().has_polygon());
  EXPECT_DOUBLE_EQ(hazard.value()->geometry().polygon().rings(0).points(0).lon(), 123.43);
  auto near =
      parse(get("/api/v1/entities?domain=building&bbox=123.429,41.803,123.432,41.805").body);
  EXPECT_EQ(near->getArray("features")->size(), 2u);  // the complex and its hazard
}

TEST_F(HubTest, FhirBundleBedObservationsPatchTheirLocation) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"fhir","agency":"health-commission","connector":"firehub.connector.health"})",
           "application/json")
          .status,
      201);
  auto r = post("/api/v1/feeds/fhir/records", fixture("health", "bundle.json"), "application/json");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 4);  // 2 locations, 2 bed observations
  EXPECT_EQ(parse(r.body)->getValue<int>("rejected"), 0);
  auto latest = hub_->lake().latest("health/health_facility/cmu1");
  ASSERT_TRUE(latest.isOk() && latest.value());
  const auto& h = latest.value()->health_facility();
  EXPECT_EQ(h.kind(), firehub::v1::HealthFacility::KIND_HOSPITAL);
  EXPECT_EQ(h.beds_emergency_available(), 12);
  EXPECT_EQ(h.beds_burn_available(), 3);
  EXPECT_FALSE(h.has_beds_icu_available());
  auto bad = post("/api/v1/feeds/fhir/records", fixture("health", "bundle.invalid.json"),
                  "application/json");
  ASSERT_EQ(bad.status, 202) << bad.body;
  EXPECT_EQ(parse(bad.body)->getValue<int>("accepted"), 0);
  EXPECT_NE(bad.body.find("Bundle.entry[1].resource.position.latitude: outside -90..90"),
            std::string::npos)
      << bad.body;
}

std::string readBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Reads `n` GB/T 26875 replies (30 bytes each, no application data) and returns their
// (command, serial) pairs.
std::vector<std::pair<int, int>> readReplies(Poco::Net::StreamSocket& socket, size_t n) {
  std::string got;
  char buf[1024];
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  while (got.size() < n * 30) {
    int r = socket.receiveBytes(buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i + 30 <= got.size(); i += 30) {
    out.emplace_back(static_cast<uint8_t>(got[i + 26]),
                     static_cast<uint8_t>(got[i + 2]) | (static_cast<uint8_t>(got[i + 3]) << 8));
  }
  return out;
}

TEST_F(HubTest, GbT26875FramesOverTcpAreConfirmedAndStored) {
  if (std::getenv("FIREHUB_LOG_LEVEL")) firehub::log::setLevel(firehub::log::Level::kDebug);
  auto created = post(
      "/api/v1/feeds",
      R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm","config":{"listen":"127.0.0.1:0"}})",
      "application/json");
  ASSERT_EQ(created.status, 201) << created.body;
  int port = parse(get("/api/v1/feeds/iot").body)->getValue<int>("listen_port");
  ASSERT_GT(port, 0);
  auto devices = post("/api/v1/feeds/iot/records", fixture("alarm", "devices.csv"), "text/csv");
  ASSERT_EQ(devices.status, 202) << devices.body;

  std::string dir = firehub::testing::sourceDir() + "/connectors/alarm/tests/fixtures/";
  std::string good = readBinary(dir + "frames.gbt26875");
  std::string bad = readBinary(dir + "frames.invalid.gbt26875");
  Poco::Net::StreamSocket socket(
      Poco::Net::SocketAddress("127.0.0.1", static_cast<uint16_t>(port)));
  // Garbage first, then the frames split at awkward places (mid-header, mid-checksum).
  std::string stream = "\x01\x02junk@" + good;
  for (size_t at : {size_t{5}, size_t{20}, size_t{61}, size_t{62}, stream.size()}) {
    static size_t sent = 0;
    if (at <= sent) continue;
    socket.sendBytes(stream.data() + sent, static_cast<int>(at - sent));
    sent = at;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  auto replies = readReplies(socket, 4);
  ASSERT_EQ(replies.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(replies[i].first, 3) << "confirm";
    EXPECT_EQ(replies[i].second, i + 1);
  }
  socket.sendBytes(bad.data(), static_cast<int>(bad.size()));
  auto answers = readReplies(socket, 4);
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0], std::make_pair(3, 5));  // good frame after noise
  EXPECT_EQ(answers[1], std::make_pair(6, 6));  // checksum: deny
  EXPECT_EQ(answers[2], std::make_pair(6, 7));  // command 1: deny
  EXPECT_EQ(answers[3], std::make_pair(6, 8));  // object count mismatch: deny

  auto alarm = hub_->lake().latest("alarm/fire_alarm_component/a1b2c3d4e5f6/1-1/515");
  ASSERT_TRUE(alarm.isOk() && alarm.value());
  const auto& e = alarm.value()->fire_alarm_event();
  EXPECT_TRUE(e.fire_alarm());
  EXPECT_FALSE(e.resolved());
  EXPECT_EQ(e.description(), "3号楼2层烟感火警");
  EXPECT_EQ(e.component_type(), 40u);
  EXPECT_EQ(alarm.value()->observed_at().seconds(),
            1795305600 + 3600 + 15 * 60 + 30);                          // 09:15:30 +08:00
  EXPECT_DOUBLE_EQ(alarm.value()->geometry().point().lon(), 123.4305);  // placed at its device
  auto device = hub_->lake().latest("alarm/transmission_device/a1b2c3d4e5f6");
  ASSERT_TRUE(device.isOk() && device.value());
  EXPECT_TRUE(device.value()->fire_alarm_event().fault());  // main power fault bit

  // A device nobody registered: its event is kept, flagged, and dead-lettered for location.
  uint8_t t[6] = {0, 30, 9, 22, 11, 26};
  std::string data = std::string("\x15\x01\x03", 3) + std::string(reinterpret_cast<char*>(t), 6);
  std::string frame = firehub::connectors::gbt26875::build(9, 1, 0, t, std::string(6, '\x09'),
                                                           std::string(6, '\0'), 2, data);
  socket.sendBytes(frame.data(), static_cast<int>(frame.size()));
  auto last = readReplies(socket, 1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0], std::make_pair(3, 9));
  auto stray = hub_->lake().latest("alarm/transmission_device/090909090909");
  ASSERT_TRUE(stray.isOk() && stray.value());
  EXPECT_TRUE(stray.value()->unplaced());
  EXPECT_TRUE(stray.value()->fire_alarm_event().fire_alarm());
  auto dlq = get("/api/v1/dlq?feed=iot").body;
  EXPECT_NE(dlq.find("no located alarm/alarm_device/090909090909"), std::string::npos) << dlq;
  EXPECT_NE(dlq.find("checksum mismatch"), std::string::npos);
}

TEST_F(HubTest, CapWarningsUpdateAndCancelWithdrawEarlierAlerts) {
  // The alert as the fixture has it, but expiring long after today (the layer leaves out expired
  // ones).
  std::string cap = fixture("weather", "warning.cap.xml");
  const std::string expires = "<expires>2026-11-23T20:00:00+08:00</expires>";
  ASSERT_NE(cap.find(expires), std::string::npos);
  cap.replace(cap.find(expires), expires.size(), "<expires>2099-11-23T20:00:00+08:00</expires>");
  auto first = post("/api/v1/feeds/wx/records", cap, "application/cap+xml");
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(parse(first.body)->getValue<int>("accepted"), 1);
  auto area = "/api/v1/entities?domain=weather&bbox=123.5,41.7,123.8,42.0";
  auto shown = parse(get(area).body)->getArray("features");
  ASSERT_EQ(shown->size(), 1u);
  auto w = shown->getObject(0)->getObject("properties")->getObject("weather_warning");
  EXPECT_EQ(w->getValue<std::string>("event"), "森林火险");
  EXPECT_EQ(w->getValue<std::string>("severity"), "SEVERITY_SEVERE");
  EXPECT_EQ(w->getArray("circles")->size(), 1u);
  // The warnings layer draws it; a page past it is empty (offset counts there too).
  auto layer = parse(get("/api/v1/layers/warnings").body);
  ASSERT_EQ(layer->getValue<int>("numberMatched"), 1) << get("/api/v1/layers/warnings").body;
  EXPECT_EQ(layer->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("kind"),
            "received");
  auto past = parse(get("/api/v1/layers/warnings?offset=1").body);
  EXPECT_EQ(past->getValue<int>("numberMatched"), 1);
  EXPECT_EQ(past->getArray("features")->size(), 0u);
  // A box takes the warnings whose area meets it: also a sliver of the area's east edge, far from
  // its centre (where the geo index places it); not a box beside it.
  auto polygons =
      layer->getArray("features")->getObject(0)->getObject("geometry")->getArray("coordinates");
  double east = -180, west = 180, south = 90, north = -90;
  for (size_t p = 0; p < polygons->size(); ++p) {  // a MultiPolygon: polygons, rings, points
    for (size_t r = 0; r < polygons->getArray(p)->size(); ++r) {
      auto ring = polygons->getArray(p)->getArray(r);
      for (size_t i = 0; i < ring->size(); ++i) {
        const double lon = ring->getArray(i)->get(0).convert<double>(),
                     lat = ring->getArray(i)->get(1).convert<double>();
        east = std::max(east, lon);
        west = std::min(west, lon);
        south = std::min(south, lat);
        north = std::max(north, lat);
      }
    }
  }
  ASSERT_GT(east - west, 0.01) << "an area, not a point";
  auto in_box = [&](double w, double s, double e, double n) {
    char box[160];
    std::snprintf(box, sizeof box, "/api/v1/layers/warnings?bbox=%.6f,%.6f,%.6f,%.6f", w, s, e, n);
    return parse(get(box).body)->getValue<int>("numberMatched");
  };
  EXPECT_EQ(in_box(west, south, east, north), 1);
  EXPECT_EQ(in_box(east - 0.001, south, east + 0.5, north), 1) << "the east edge";
  EXPECT_EQ(in_box(east + 0.01, south, east + 0.5, north), 0) << "beside it";
  EXPECT_EQ(in_box(100, 20, 101, 21), 0) << "far away";

  // The feed updates 0001 with 0002, then cancels 0002: nothing stays on the map.
  auto feed =
      post("/api/v1/feeds/wx/records", fixture("weather", "feed.atom.xml"), "application/atom+xml");
  ASSERT_EQ(feed.status, 202) << feed.body;
  EXPECT_EQ(parse(feed.body)->getValue<int>("accepted"),
            3);  // retract 0001, alert 0002, retract 0002
  auto old_alert =
      hub_->lake().latest("weather/weather_warning/shenyang.weather.cn,LN-SY-2026-1122-0001");
  ASSERT_TRUE(old_alert.isOk() && old_alert.value());
  EXPECT_EQ(old_alert.value()->op(), firehub::v1::OP_RETRACT);
  EXPECT_TRUE(old_alert.value()->has_geometry());  // placed where the alert was
  auto update =
      hub_->lake().latest("weather/weather_warning/shenyang.weather.cn,LN-SY-2026-1122-0002");
  ASSERT_TRUE(update.isOk() && update.value());
  EXPECT_EQ(update.value()->op(), firehub::v1::OP_RETRACT);
  EXPECT_EQ(parse(get(area).body)->getArray("features")->size(), 0u);

  auto wrong_ns = post(
      "/api/v1/feeds/wx/records",
      "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.1\"><identifier>x</identifier></alert>",
      "application/xml");
  EXPECT_EQ(wrong_ns.status, 400);
  EXPECT_NE(wrong_ns.body.find("no CAP 1.2"), std::string::npos) << wrong_ns.body;
  auto broken = post("/api/v1/feeds/wx/records", "<alert><unclosed></alert>", "application/xml");
  EXPECT_EQ(broken.status, 400);
  EXPECT_NE(broken.body.find("not well-formed XML"), std::string::npos) << broken.body;
  auto bad = post("/api/v1/feeds/wx/records", fixture("weather", "warnings.invalid.xml"),
                  "application/xml");
  ASSERT_EQ(bad.status, 202) << bad.body;
  EXPECT_EQ(parse(bad.body)->getValue<int>("rejected"), 4);
  EXPECT_NE(bad.body.find("geocodes alone cannot be placed"), std::string::npos) << bad.body;
}

TEST_F(HubTest, FireWeatherLayerFollowsNoonObservations) {
  std::string csv =
      std::string(kWeatherHeader) +
      "F1,123.40,41.80,2026-11-21T09:00:00+08:00,2,60,10,,0\n"  // morning: no day yet
      "F1,123.40,41.80,2026-11-21T12:00:00+08:00,17,25,30,300,0\n"
      "F2,123.60,41.90,2026-11-21T11:00:00+08:00,5,50,10,,0\n";  // no noon observation
  ASSERT_EQ(post("/api/v1/feeds/wx/records", csv, "text/csv").status, 202);
  ASSERT_TRUE(
      waitFor([&] { return get("/api/v1/layers/fwi").body.find("\"F1\"") != std::string::npos; }));
  auto layer = parse(get("/api/v1/layers/fwi").body);
  auto features = layer->getArray("features");
  ASSERT_EQ(features->size(), 1u);
  auto props = features->getObject(0)->getObject("properties");
  EXPECT_EQ(props->getValue<std::string>("day"), "2026-11-21");
  EXPECT_GT(props->getValue<double>("ffmc"), 85);
  EXPECT_FALSE(props->getValue<std::string>("danger_class").empty());
}

TEST_F(HubTest, RestrictedDomainsAlsoPublishARedactedPublicTopic) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police"})",
           "application/json")
          .status,
      201);
  auto pushed =
      post("/api/v1/feeds/cad/records", fixture("police", "incidents.json"), "application/json");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  ASSERT_EQ(parse(pushed.body)->getValue<int>("accepted"), 3);
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto full = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.police", 3);
  auto open = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.police.public", 3);
  ASSERT_EQ(full.size(), 3u);
  ASSERT_EQ(open.size(), 3u);
  std::string all_full, all_open;
  for (const auto& m : full) all_full += m.value;
  for (const auto& m : open) all_open += m.value;
  EXPECT_NE(all_full.find("张伟"), std::string::npos);
  EXPECT_NE(all_full.find("13800000001"), std::string::npos);
  EXPECT_EQ(all_open.find("张伟"), std::string::npos) << all_open;
  EXPECT_EQ(all_open.find("13800000001"), std::string::npos);
  EXPECT_EQ(all_open.find("三楼窗口冒烟"), std::string::npos);
  EXPECT_NE(all_open.find("沈河区中街路128号"),
            std::string::npos);  // the address is not restricted
}

TEST_F(HubTest, RiskLayerTurnsAnAlarmedBuildingRedLiveOnTheStreamAndOnKafka) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"bld","agency":"housing-bureau","connector":"firehub.connector.building"})",
           "application/json")
          .status,
      201);
  ASSERT_EQ(post("/api/v1/feeds/bld/records", fixture("building", "buildings.geojson"),
                 "application/geo+json")
                .status,
            202);
  ASSERT_TRUE(waitFor([&] {
    auto layer = get("/api/v1/layers/risk?bbox=123.3,41.7,123.6,41.9");
    return layer.status == 200 && layer.body.find("\"numberMatched\":0") == std::string::npos;
  }));
  // Key units are buildings (footprints): the point layer draws each at its footprint's middle.
  {
    auto units = parse(get("/api/v1/layers/key_units").body)->getArray("features");
    ASSERT_GE(units->size(), 1u);
    bool found = false;
    for (size_t i = 0; i < units->size(); ++i) {
      auto f = units->getObject(i);
      ASSERT_FALSE(f->isNull("geometry"))
          << "key unit " << f->getValue<std::string>("id") << " has no point";
      if (f->getValue<std::string>("id") != "SY-B-000001") continue;
      found = true;
      auto geometry = f->getObject("geometry");
      EXPECT_EQ(geometry->getValue<std::string>("type"), "Point");
      EXPECT_NEAR(geometry->getArray("coordinates")->getElement<double>(0), 123.4305, 1e-6);
      EXPECT_NEAR(geometry->getArray("coordinates")->getElement<double>(1), 41.8044, 1e-6);
    }
    EXPECT_TRUE(found);
  }
  auto layers = parse(get("/api/v1/layers").body)->getArray("layers");
  ASSERT_GE(layers->size(), 10u);
  EXPECT_EQ(layers->getObject(0)->getValue<std::string>("name"), "risk");
  EXPECT_EQ(
      layers->getObject(0)->getArray("legend")->getObject(0)->getValue<std::string>("label_zh"),
      "红色（I级）");

  // The big shopping centre's cell, by the token of its polygon's anchor.
  const std::string view = "/api/v1/layers/risk?bbox=123.4299,41.8039,123.4311,41.8049";
  auto first = get(view);
  auto before = parse(first.body);
  // The cell layers carry an ETag of the layer version: unchanged -> 304 without a body.
  const std::string etag = first.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  auto again = http("127.0.0.1", port_, "GET", view, "", "", key_, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(get(view).body, first.body);  // served from the cache, the same bytes
  // A browser asks for gzip: the same view compressed, under its own ETag.
  auto zipped =
      http("127.0.0.1", port_, "GET", view, "", "", key_, {{"Accept-Encoding", "br, gzip;q=0.8"}});
  ASSERT_EQ(zipped.status, 200);
  EXPECT_EQ(zipped.headers["Content-Encoding"], "gzip");
  EXPECT_EQ(zipped.headers["Vary"], "Accept-Encoding");
  EXPECT_NE(zipped.headers["ETag"], etag);
  {
    std::istringstream compressed(zipped.body);
    Poco::InflatingInputStream inflate(compressed, Poco::InflatingStreamBuf::STREAM_GZIP);
    std::string plain((std::istreambuf_iterator<char>(inflate)), std::istreambuf_iterator<char>());
    EXPECT_EQ(plain, first.body);
  }
  auto refused = http("127.0.0.1", port_, "GET", view, "", "", key_,
                      {{"Accept-Encoding", "gzip;q=0, identity"}});
  EXPECT_EQ(refused.headers.count("Content-Encoding"), 0u);
  EXPECT_EQ(refused.body, first.body);
  ASSERT_EQ(before->getValue<int>("numberReturned"), 1) << "the building's cell";
  std::string cell = before->getArray("features")->getObject(0)->getValue<std::string>("id");
  // `properties=` selects the members of the cells' properties (the map asks for what it draws);
  // the feature, its id and geometry stay, the values are those of the whole feature.
  {
    auto full = before->getArray("features")->getObject(0);
    EXPECT_EQ(full->getObject("properties")->size(), 16u);
    auto lean = get(view + "&properties=colour,cell");
    ASSERT_EQ(lean.status, 200) << lean.body;
    auto f = parse(lean.body)->getArray("features")->getObject(0);
    EXPECT_EQ(f->getValue<std::string>("id"), cell);
    auto props = f->getObject("properties");
    EXPECT_EQ(props->size(), 2u) << lean.body;
    EXPECT_EQ(props->getValue<std::string>("cell"), cell);
    EXPECT_EQ(props->getValue<std::string>("colour"),
              full->getObject("properties")->getValue<std::string>("colour"));
    std::ostringstream full_geometry, lean_geometry;
    full->getObject("geometry")->stringify(full_geometry);
    f->getObject("geometry")->stringify(lean_geometry);
    EXPECT_EQ(lean_geometry.str(), full_geometry.str());
    // Another selection of the same cell: its polygon now comes from the kept ones.
    auto again = parse(get(view + "&properties=level").body)->getArray("features")->getObject(0);
    std::ostringstream kept_geometry;
    again->getObject("geometry")->stringify(kept_geometry);
    EXPECT_EQ(kept_geometry.str(), full_geometry.str());
    EXPECT_EQ(again->getObject("properties")->getValue<std::string>("level"),
              full->getObject("properties")->getValue<std::string>("level"));
    auto unknown = get(view + "&properties=cell,colour_of_money");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_NE(unknown.body.find("colour_of_money"), std::string::npos) << unknown.body;
    EXPECT_NE(unknown.body.find("water_colour"), std::string::npos) << "names the known properties";
    EXPECT_EQ(get("/api/v1/layers/hydrants?properties=cell").status, 400);
  }
  EXPECT_NE(before->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("level"),
            "I");

  EventReader events(port_, "/api/v1/layers/risk/stream", [&](const std::string& t) {
    return t.find("\"forced\":true") != std::string::npos;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the stream is open
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})",
                 "application/json")
                .status,
            201);
  auto pushed = post(
      "/api/v1/feeds/iot/records",
      R"({"event_id":"T-1","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":3,"description":"烟感火警","time":"2026-11-22T09:20:00+08:00"})"
      "\n",
      "application/x-ndjson");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  ASSERT_EQ(parse(pushed.body)->getValue<int>("accepted"), 1) << pushed.body;
  ASSERT_TRUE(waitFor([&] { return events.text().find("\"forced\":true") != std::string::npos; }))
      << events.text();
  EXPECT_EQ(events.contentType(), "text/event-stream");
  std::string stream = events.text();
  EXPECT_NE(stream.find("event: delta"), std::string::npos);
  EXPECT_NE(stream.find("\"id\":\"" + cell + "\""), std::string::npos) << stream;

  // The layer moved on: the old ETag no longer matches, the cached view is rendered again.
  auto changed = http("127.0.0.1", port_, "GET", view, "", "", key_, {{"If-None-Match", etag}});
  ASSERT_EQ(changed.status, 200);
  EXPECT_NE(changed.headers["ETag"], etag);
  EXPECT_NE(changed.body.find("\"forced\":true"), std::string::npos) << changed.body;

  auto explained = get("/api/v1/layers/risk/cells/" + cell);
  ASSERT_EQ(explained.status, 200) << explained.body;
  auto why = parse(explained.body);
  EXPECT_EQ(why->getValue<std::string>("level"), "I");
  EXPECT_TRUE(why->getValue<bool>("forced"));
  bool names_alarm = false;
  auto factors = why->getArray("factors");
  ASSERT_EQ(factors->size(), 7u);
  for (size_t i = 0; i < factors->size(); ++i) {
    auto f = factors->getObject(i);
    if (f->getValue<std::string>("name") != "alarm") continue;
    auto sources = f->getArray("sources");
    for (size_t j = 0; j < sources->size(); ++j) {
      names_alarm |= sources->getElement<std::string>(j).rfind("iot:", 0) == 0;
    }
  }
  EXPECT_TRUE(names_alarm) << explained.body;
  EXPECT_EQ(get("/api/v1/layers/risk/cells/zzz").status, 400);
  EXPECT_EQ(get("/api/v1/layers/risk/cells/5e2").status, 400);  // not the grid's level
  EXPECT_EQ(get("/api/v1/layers/nope").status, 404);
  EXPECT_EQ(get("/api/v1/layers/risk?bbox=1,2,3").status, 400);

  // The rise to level I drafted a CAP alert at once.
  auto warnings = parse(get("/api/v1/warnings").body)->getArray("warnings");
  ASSERT_EQ(warnings->size(), 1u);
  EXPECT_EQ(warnings->getObject(0)->getValue<std::string>("msg_type"), "Alert");
  std::string identifier = warnings->getObject(0)->getValue<std::string>("identifier");
  auto cap = get("/api/v1/warnings/" + identifier);
  ASSERT_EQ(cap.status, 200);
  EXPECT_NE(cap.body.find("<identifier>" + identifier + "</identifier>"), std::string::npos)
      << cap.body;
  EXPECT_NE(cap.body.find("urn:oasis:names:tc:emergency:cap:1.2"), std::string::npos);

  // Kafka: the cell's state keyed by its token, and the CAP document on the warnings topic.
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto risk = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.layer.risk", 1000,
                                           std::chrono::seconds(5));
  std::string last_value;
  for (const auto& m : risk) {
    if (m.key == cell) last_value = m.value;
  }
  ASSERT_FALSE(last_value.empty()) << risk.size() << " messages, none keyed " << cell;
  EXPECT_NE(last_value.find("\"level\":\"I\""), std::string::npos) << last_value;
  auto drafts = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.warnings", 1);
  ASSERT_EQ(drafts.size(), 1u);
  EXPECT_EQ(drafts[0].headers["content-type"], "application/cap+xml");
  EXPECT_NE(drafts[0].value.find(identifier), std::string::npos);

  // The alarms layer (read through the lake's index of unresolved alarms) draws the detector
  // until it reports normal again, and then no longer.
  auto alarms = parse(get("/api/v1/layers/alarms").body);
  ASSERT_EQ(alarms->getValue<int>("numberMatched"), 1);
  EXPECT_EQ(alarms->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("state"),
            "fire");
  auto normal = post(
      "/api/v1/feeds/iot/records",
      R"({"event_id":"T-2","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":1,"description":"正常","time":"2026-11-22T09:25:00+08:00"})"
      "\n",
      "application/x-ndjson");
  ASSERT_EQ(normal.status, 202) << normal.body;
  auto after = parse(get("/api/v1/layers/alarms").body);
  EXPECT_EQ(after->getValue<int>("numberMatched"), 0);
  EXPECT_EQ(after->getArray("features")->size(), 0u);
}

// Keys: who may write what, and who may see restricted fields.
TEST_F(HubTest, KeysKeepAgenciesToTheirOwnFeedsAndWritesNeedAKey) {
  auto anonymous = http("127.0.0.1", port_, "POST", "/api/v1/feeds",
                        R"({"id":"x","agency":"met","connector":"firehub.connector.weather"})",
                        "application/json");
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_NE(anonymous.body.find("API key"), std::string::npos);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "fh_nope").status, 401);
  // Loopback readers without a key see the public view: feeds without their config, no dead
  // letters.
  auto feeds = http("127.0.0.1", port_, "GET", "/api/v1/feeds");
  ASSERT_EQ(feeds.status, 200);
  EXPECT_EQ(feeds.body.find("\"config\""), std::string::npos) << feeds.body;
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/dlq").status, 403);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/keys").status, 403);

  // The admin makes an agency key; the key is shown once, the list never shows it.
  auto made = post(
      "/api/v1/keys",
      R"({"role":"agency","agency":"water-bureau","domains":["water"],"note":"hydrant register"})",
      "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string water = parse(made.body)->getValue<std::string>("key");
  std::string water_id = parse(made.body)->getValue<std::string>("id");
  ASSERT_EQ(water.size(), 80u);
  auto listed = get("/api/v1/keys");
  EXPECT_EQ(listed.body.find(water.substr(16)), std::string::npos)
      << "secrets are stored only as hashes";
  EXPECT_NE(listed.body.find(water_id), std::string::npos);
  EXPECT_EQ(post("/api/v1/keys", R"({"role":"agency"})", "application/json").status, 400);
  EXPECT_EQ(post("/api/v1/keys", R"({"role":"root"})", "application/json").status, 400);

  auto as = [&](const std::string& key, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& type = "") {
    return http("127.0.0.1", port_, method, path, body, type, key);
  };
  EXPECT_EQ(as(water, "POST", "/api/v1/feeds",
               R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})",
               "application/json")
                .status,
            201);
  auto other =
      as(water, "POST", "/api/v1/feeds",
         R"({"id":"cad2","agency":"public-security","connector":"firehub.connector.police"})",
         "application/json");
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_NE(other.body.find("public-security"), std::string::npos);
  EXPECT_EQ(
      as(water, "POST", "/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv")
          .status,
      202);
  auto foreign =
      as(water, "POST", "/api/v1/feeds/wx/records", std::string(kWeatherHeader), "text/csv");
  EXPECT_EQ(foreign.status, 403) << "the weather feed belongs to 'met'";
  // An agency sees its own feed's config and dead letters, not others'.
  EXPECT_EQ(as(water, "GET", "/api/v1/dlq?feed=hyd").status, 200);
  EXPECT_EQ(as(water, "GET", "/api/v1/dlq?feed=wx").status, 403);
  EXPECT_EQ(as(water, "GET", "/api/v1/keys").status, 403);

  // A feed's config is checked against its connector's schema before it is stored.
  auto bad_config = post(
      "/api/v1/feeds",
      R"({"id":"wx2","agency":"met","connector":"firehub.connector.weather","config":{"utc_ofset":"+08:00"}})",
      "application/json");
  EXPECT_EQ(bad_config.status, 400) << bad_config.body;
  EXPECT_NE(bad_config.body.find("config.utc_ofset: is not a setting of this connector"),
            std::string::npos)
      << bad_config.body;
  auto mistyped = post(
      "/api/v1/feeds",
      R"({"id":"wx2","agency":"met","connector":"firehub.connector.weather","config":{"csv_delimiter":5}})",
      "application/json");
  EXPECT_EQ(mistyped.status, 400);
  EXPECT_NE(mistyped.body.find("config.csv_delimiter: must be string"), std::string::npos)
      << mistyped.body;
  EXPECT_EQ(get("/api/v1/feeds/wx2").status, 404) << "nothing stored";

  // A viewer key reads but never writes.
  auto viewer = parse(post("/api/v1/keys", R"({"role":"viewer"})", "application/json").body)
                    ->getValue<std::string>("key");
  EXPECT_EQ(as(viewer, "GET", "/api/v1/feeds").status, 200);
  EXPECT_EQ(
      as(viewer, "POST", "/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv")
          .status,
      403);

  // Revoked keys stop working at once.
  EXPECT_EQ(http("127.0.0.1", port_, "DELETE", "/api/v1/keys/" + water_id, "", "", key_).status,
            200);
  auto revoked =
      as(water, "POST", "/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv");
  EXPECT_EQ(revoked.status, 401);
  EXPECT_NE(revoked.body.find("revoked"), std::string::npos);

  // Every write above, allowed or refused, is in the audit log and the chain is intact.
  auto audit = parse(get("/api/v1/audit").body)->getArray("entries");
  ASSERT_GE(audit->size(), 10u);
  bool saw_refusal = false;
  for (size_t i = 0; i < audit->size(); ++i)
    saw_refusal |= audit->getObject(i)->getValue<int>("status") == 403;
  EXPECT_TRUE(saw_refusal);
  EXPECT_TRUE(parse(get("/api/v1/audit/verify").body)->getValue<bool>("intact"));
}

TEST_F(HubTest, RestrictedFieldsOnlyWithTheGrant) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police"})",
           "application/json")
          .status,
      201);
  ASSERT_EQ(
      post("/api/v1/feeds/cad/records", fixture("police", "incidents.json"), "application/json")
          .status,
      202);
  auto entities = parse(get("/api/v1/entities?domain=police&limit=10").body)->getArray("features");
  ASSERT_GE(entities->size(), 1u);
  std::string id;
  for (size_t i = 0; i < entities->size(); ++i) {
    auto props = entities->getObject(i)->getObject("properties");
    if (props->getValue<std::string>("entity_id") == "SY-110-20261122-0001")
      id = props->getValue<std::string>("id");
  }
  ASSERT_FALSE(id.empty());
  std::string encoded;
  Poco::URI::encode(id, "#?/%", encoded);
  std::string path = "/api/v1/records/" + encoded;
  auto viewer = parse(post("/api/v1/keys", R"({"role":"viewer"})", "application/json").body)
                    ->getValue<std::string>("key");
  auto granted =
      parse(post("/api/v1/keys", R"({"role":"subscriber","restricted":true})", "application/json")
                .body)
          ->getValue<std::string>("key");
  auto anonymous = http("127.0.0.1", port_, "GET", path);
  auto plain = http("127.0.0.1", port_, "GET", path, "", "", viewer);
  auto full = http("127.0.0.1", port_, "GET", path, "", "", granted);
  ASSERT_EQ(anonymous.status, 200);
  EXPECT_EQ(anonymous.body.find("张伟"), std::string::npos) << anonymous.body;
  EXPECT_EQ(plain.body.find("13800000001"), std::string::npos) << plain.body;
  EXPECT_NE(plain.body.find("沈河区中街路128号"), std::string::npos)
      << "the address is not restricted";
  EXPECT_NE(full.body.find("张伟"), std::string::npos) << full.body;
  // The same rule on the entity list, the point layers and OGC API.
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/entities?domain=police", "", "", viewer)
                .body.find("张伟"),
            std::string::npos);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/layers/incidents").body.find("张伟"),
            std::string::npos);
  EXPECT_NE(http("127.0.0.1", port_, "GET", "/api/v1/layers/incidents", "", "", granted)
                .body.find("张伟"),
            std::string::npos);
  EXPECT_EQ(
      http("127.0.0.1", port_, "GET", "/ogc/collections/entities-police/items").body.find("张伟"),
      std::string::npos);
  EXPECT_NE(
      http("127.0.0.1", port_, "GET", "/ogc/collections/entities-police/items", "", "", granted)
          .body.find("张伟"),
      std::string::npos);
}

TEST_F(HubTest, FeedsPauseResumeAndDeleteAndTheCatalogueListsThem) {
  ASSERT_EQ(
      post(
          "/api/v1/feeds",
          R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police","cadence_s":60})",
          "application/json")
          .status,
      201);
  ASSERT_EQ(
      post("/api/v1/feeds/cad/records", fixture("police", "incidents.json"), "application/json")
          .status,
      202);
  auto paused = post("/api/v1/feeds/cad/pause", "", "application/json");
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(parse(paused.body)->getValue<std::string>("state"), "paused");
  auto refused =
      post("/api/v1/feeds/cad/records", fixture("police", "incidents.json"), "application/json");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("paused"), std::string::npos) << refused.body;
  ASSERT_EQ(post("/api/v1/feeds/cad/resume", "", "application/json").status, 200);
  auto status = parse(get("/api/v1/feeds/cad").body);
  EXPECT_EQ(status->getValue<std::string>("state"), "active");
  EXPECT_FALSE(status->getValue<bool>("stale"));
  EXPECT_EQ(status->getValue<int>("cadence_s"), 60);
  EXPECT_EQ(
      post("/api/v1/feeds/cad/records", fixture("police", "incidents.json"), "application/json")
          .status,
      202);

  auto catalog = parse(get("/api/v1/catalog").body);
  auto topics = catalog->getArray("topics");
  bool police = false, open_view = false;
  for (size_t i = 0; i < topics->size(); ++i) {
    auto t = topics->getObject(i);
    std::string topic = t->getValue<std::string>("topic");
    if (topic == "firehub.v1.police") {
      police = true;
      EXPECT_EQ(t->getArray("owners")->getElement<std::string>(0), "public-security");
      EXPECT_EQ(t->getArray("bodies")->getElement<std::string>(0), "firehub.v1.PoliceIncident");
      EXPECT_EQ(t->getValue<uint64_t>("record_count"), 3u);
      EXPECT_EQ(t->getValue<std::string>("classification"), "contains restricted fields");
      EXPECT_TRUE(t->has("last_update"));
    }
    open_view |= topic == "firehub.v1.police.public";
  }
  EXPECT_TRUE(police);
  EXPECT_TRUE(open_view);
  EXPECT_GE(catalog->getArray("layers")->size(), 10u);

  // Deleting a feed keeps its records.
  auto record_count = [&] {
    return parse(get("/api/v1/entities?domain=police").body)->getValue<int>("numberReturned");
  };
  int before = record_count();
  EXPECT_EQ(http("127.0.0.1", port_, "DELETE", "/api/v1/feeds/cad", "", "", key_).status, 200);
  EXPECT_EQ(get("/api/v1/feeds/cad").status, 404);
  EXPECT_EQ(record_count(), before);
}

// HTTPS with a certificate made now with the openssl CLI; plain HTTP on that port fails.
// Point layers and OGC collections page through an area of the lake one record at a time:
// every match once across pages, and a total only where the area was counted to its end (the
// budget of records looked at past a full page is 1 here; the default is 10000).
TEST(HubAreaPagingTest, PagesCoverEveryMatchOnceAndGiveTotalsOnlyWhenCounted) {
  TempDir dir;
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir.path();
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  c.area_count_budget = 1;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  const uint16_t port = hub.value()->httpPort();
  const std::string key = firehub::testing::adminKey(dir.path());
  auto get = [&](const std::string& path) {
    return http("127.0.0.1", port, "GET", path, "", "", key);
  };
  ASSERT_EQ(
      http("127.0.0.1", port, "POST", "/api/v1/feeds",
           R"({"id":"bld","agency":"housing-bureau","connector":"firehub.connector.building"})",
           "application/json", key)
          .status,
      201);
  // Four buildings, three of them key units.
  ASSERT_EQ(http("127.0.0.1", port, "POST", "/api/v1/feeds/bld/records",
                 fixture("building", "buildings.geojson"), "application/geo+json", key)
                .status,
            202);

  auto whole = parse(get("/api/v1/layers/key_units?limit=1000").body);
  EXPECT_EQ(whole->getValue<int>("numberMatched"), 3)
      << "a page that is not full counted everything";
  EXPECT_FALSE(whole->has("more"));
  std::set<std::string> seen;
  bool said_more = false;
  for (int offset = 0; offset < 10; ++offset) {
    auto page =
        parse(get("/api/v1/layers/key_units?limit=1&offset=" + std::to_string(offset)).body);
    auto features = page->getArray("features");
    if (features->size() == 0) break;
    ASSERT_EQ(features->size(), 1u);
    EXPECT_TRUE(seen.insert(features->getObject(0)->getValue<std::string>("id")).second)
        << "offset " << offset;
    if (page->has("more")) {
      said_more = true;
      EXPECT_FALSE(page->has("numberMatched"))
          << "no total where the area was not counted to its end";
    } else {
      EXPECT_EQ(page->getValue<int>("numberMatched"), 3) << "offset " << offset;
    }
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(said_more) << "the first page lies two records or more before the area's end";

  // OGC: the next links lead through every building once; numberMatched only when counted.
  std::set<std::string> buildings;
  std::vector<std::string> walk_order;
  std::string next = "/ogc/collections/entities-building/items?limit=1";
  for (int pages = 0; !next.empty() && pages < 10; ++pages) {
    auto reply = get(next);
    ASSERT_EQ(reply.status, 200) << reply.body;
    auto page = parse(reply.body);
    for (size_t i = 0; i < page->getArray("features")->size(); ++i) {
      EXPECT_TRUE(
          buildings.insert(page->getArray("features")->getObject(i)->getValue<std::string>("id"))
              .second);
      walk_order.push_back(page->getArray("features")->getObject(i)->getValue<std::string>("id"));
    }
    if (pages == 0) {
      EXPECT_FALSE(page->has("numberMatched")) << reply.body;
    }
    next.clear();
    auto links = page->getArray("links");
    for (size_t i = 0; i < links->size(); ++i) {
      if (links->getObject(i)->getValue<std::string>("rel") != "next") continue;
      const std::string href = links->getObject(i)->getValue<std::string>("href");
      next = href.substr(href.find("/ogc/"));
      // The next page resumes where this one ended (no walk from the start again).
      EXPECT_NE(next.find("&cursor="), std::string::npos) << next;
      EXPECT_EQ(next.find("offset="), std::string::npos) << next;
    }
    if (pages > 0) {
      EXPECT_FALSE(page->has("numberMatched")) << "no total counted from a cursor";
    }
  }
  EXPECT_EQ(buildings.size(), 4u);
  // An explicit offset (skipped by the geo keys) lands on the same building as the cursor walk.
  for (size_t k = 0; k < walk_order.size(); ++k) {
    auto page = parse(
        get("/ogc/collections/entities-building/items?limit=1&offset=" + std::to_string(k)).body);
    ASSERT_EQ(page->getArray("features")->size(), 1u) << "offset " << k;
    EXPECT_EQ(page->getArray("features")->getObject(0)->getValue<std::string>("id"), walk_order[k])
        << "offset " << k;
  }
  EXPECT_EQ(parse(get("/ogc/collections/entities-building/items?limit=1&offset=4").body)
                ->getArray("features")
                ->size(),
            0u);
  EXPECT_EQ(get("/ogc/collections/entities-building/items?cursor=zz").status, 400);
  EXPECT_EQ(get("/ogc/collections/key_units/items?cursor=00").status, 400)
      << "cursors are the entity collections'";
  EXPECT_EQ(parse(get("/ogc/collections/entities-building/items?limit=10").body)
                ->getValue<int>("numberMatched"),
            4);

  // One item by its id, looked up directly: every building, the key units on their layer, and
  // the building that is no key unit not there.
  size_t not_key_units = 0;
  for (const auto& id : buildings) {
    auto one = get("/ogc/collections/entities-building/items/" + id);
    ASSERT_EQ(one.status, 200) << id << ": " << one.body;
    EXPECT_EQ(parse(one.body)->getValue<std::string>("id"), id);
    const std::string entity = id.substr(id.find(':') + 1);
    auto unit = get("/ogc/collections/key_units/items/" + entity);
    if (seen.count(entity)) {
      ASSERT_EQ(unit.status, 200) << entity << ": " << unit.body;
      EXPECT_EQ(parse(unit.body)->getValue<std::string>("id"), entity);
    } else {
      EXPECT_EQ(unit.status, 404) << entity << " is no key unit";
      ++not_key_units;
    }
  }
  EXPECT_EQ(not_key_units, 1u);
  EXPECT_EQ(get("/ogc/collections/entities-building/items/building:NOPE").status, 404);
  EXPECT_EQ(get("/ogc/collections/entities-building/items/no-colon").status, 404);
}

TEST(HubMemoryTest, CachesTakeTheirShareOfTheBudgetUnlessGivenTheirOwnSize) {
  TempDir dir;
  auto config_with = [&](const std::string& lines) {
    const std::string file = dir.path() + "/firehub.properties";
    std::ofstream(file) << "data.dir = " << dir.path()
                        << "/data\nhttp.listen = 127.0.0.1:0\nlake.sync = false\n"
                        << lines;
    return loadConfig(file);
  };
  auto defaults = config_with("");
  ASSERT_TRUE(defaults.isOk()) << defaults.status().toString();
  const MemoryPlan by_default = memoryPlan(defaults.value());
  EXPECT_EQ(by_default.lake_write_buffer_mb, 95u);
  EXPECT_EQ(by_default.lake_block_cache_mb, 40u);
  EXPECT_EQ(by_default.feature_cache_mb, 51u);
  EXPECT_LE(by_default.totalBytes(), size_t{288} << 20) << "the shares add up to the budget";
  EXPECT_GE(by_default.totalBytes(), size_t{280} << 20);

  auto config =
      config_with("memory.cache_mb = 200\nlake.record_cache_mb = 10\napi.feature_cache_mb = 0\n");
  ASSERT_TRUE(config.isOk()) << config.status().toString();
  const MemoryPlan plan = memoryPlan(config.value());
  EXPECT_EQ(plan.lake_write_buffer_mb, 66u);
  EXPECT_EQ(plan.lake_block_cache_mb, 28u);
  EXPECT_EQ(plan.lake_record_cache_mb, 10u) << "given its own size";
  EXPECT_EQ(plan.lake_latest_cache_entries,
            (size_t{200} << 20) * 3 / 100 / lake::kLatestCacheEntryBytes);
  EXPECT_EQ(plan.layer_cache_mb, 16u);
  EXPECT_EQ(plan.feature_cache_mb, 0u) << "0 turns the kept features off";
  EXPECT_EQ(plan.polygon_cache_mb, 10u);
  EXPECT_EQ(plan.spare_buffer_mb, 10u);
  // The smallest budget still leaves the memtables more than the 8 MiB they need at least.
  auto small = config_with("memory.cache_mb = 32\n");
  ASSERT_TRUE(small.isOk());
  EXPECT_EQ(memoryPlan(small.value()).lake_write_buffer_mb, 10u);
  EXPECT_EQ(memoryPlan(config_with("memory.cache_mb = 40\nlake.write_buffer_mb = 8\n").value())
                .lake_write_buffer_mb,
            8u);

  for (const char* bad : {"memory.cache_mb = 8\n", "lake.write_buffer_mb = 4\n",
                          "lake.block_cache_mb = 70000\n", "api.layer_cache_mb = -1\n"}) {
    auto refused = config_with(bad);
    ASSERT_FALSE(refused.isOk()) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(refused.status().message().find(key), std::string::npos)
        << refused.status().toString();
  }

  // The hub runs with the plan and shows each cap beside what the part holds.
  HubConfig c = config.value();
  c.init = true;  // a fresh data dir
  c.plugins_dir = firehub::testing::pluginsDir();
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  const auto metrics = http("127.0.0.1", hub.value()->httpPort(), "GET", "/metrics", "", "",
                            firehub::testing::adminKey(c.data_dir))
                           .body;
  for (const auto& [part, bytes] : plan.parts()) {
    EXPECT_NE(
        metrics.find("firehub_memory_limit_bytes{part=\"" + part + "\"} " + std::to_string(bytes)),
        std::string::npos)
        << part << "\n"
        << metrics;
    EXPECT_NE(metrics.find("firehub_memory_bytes{part=\"" + part + "\"}"), std::string::npos)
        << part;
  }
  EXPECT_EQ(hub.value()->lake().memoryUse().block_cache_capacity, size_t{28} << 20);
}

TEST(HubTlsTest, ServesHttpsWithAConfiguredCertificate) {
  TempDir dir;
  std::string cert = dir.path() + "/hub.crt", key = dir.path() + "/hub.key";
  std::string make =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout " + key +
      " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0) << "openssl CLI";
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir.path() + "/data";
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  c.tls_cert = cert;
  c.tls_key = key;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  std::string port = std::to_string(hub.value()->httpPort());
  std::string out = dir.path() + "/out";
  std::string curl = "curl -s --cacert " + cert + " -o " + out +
                     " -w '%{http_code}' https://127.0.0.1:" + port +
                     "/api/v1/feeds -H 'Authorization: Bearer " +
                     firehub::testing::adminKey(c.data_dir) + "' > " + out + ".code";
  ASSERT_EQ(std::system(curl.c_str()), 0);
  std::ifstream code(out + ".code");
  std::string status;
  code >> status;
  EXPECT_EQ(status, "200");
  EXPECT_ANY_THROW(http("127.0.0.1", hub.value()->httpPort(), "GET", "/healthz"));

  c.tls_key = dir.path() + "/missing.key";
  c.data_dir = dir.path() + "/data2";
  auto bad = Hub::start(c);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("HTTPS"), std::string::npos) << bad.status().message();
}

TEST_F(HubTest, SubscriptionsNeedAGrantAndDeliverFilteredRecordsBySseWebhookAndKafka) {
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})",
                 "application/json")
                .status,
            201);
  auto sub_key_body = parse(
      post("/api/v1/keys", R"({"role":"subscriber","note":"dispatch system"})", "application/json")
          .body);
  std::string sub_key = sub_key_body->getValue<std::string>("key");
  std::string sub_id = sub_key_body->getValue<std::string>("id");
  auto as = [&](const std::string& method, const std::string& path, const std::string& body = "") {
    return http("127.0.0.1", port_, method, path, body, body.empty() ? "" : "application/json",
                sub_key);
  };
  const std::string out_of_service =
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"eq","value":"out_of_service"}],)"
      R"("bbox":[123.0,41.0,124.0,42.0]},"delivery":{"kind":"sse"}})";
  auto refused = as("POST", "/api/v1/subscriptions", out_of_service);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("no grant for topic firehub.v1.water"), std::string::npos);
  ASSERT_EQ(post("/api/v1/grants", R"({"key_id":")" + sub_id + R"(","topic":"firehub.v1.water"})",
                 "application/json")
                .status,
            201);
  auto bad_field = as(
      "POST", "/api/v1/subscriptions",
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.colour","op":"eq","value":1}]}})");
  EXPECT_EQ(bad_field.status, 400);
  EXPECT_NE(bad_field.body.find("water_source.colour"), std::string::npos) << bad_field.body;
  auto made = as("POST", "/api/v1/subscriptions", out_of_service);
  ASSERT_EQ(made.status, 201) << made.body;
  std::string sse_id = parse(made.body)->getValue<std::string>("id");

  // SSE: only out-of-service hydrants; the event ids are log sequences.
  std::string seen;
  {
    EventReader events(
        port_, "/api/v1/subscriptions/" + sse_id + "/events",
        [](const std::string& t) { return t.find("SY-H-00002") != std::string::npos; },
        {{"Authorization", "Bearer " + sub_key}});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(post("/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv").status,
              202);
    ASSERT_TRUE(waitFor([&] { return events.text().find("SY-H-00002") != std::string::npos; }))
        << events.text();
    seen = events.text();
  }
  EXPECT_EQ(seen.find("SY-H-00001"), std::string::npos) << "in service: filtered out";
  size_t id_at = seen.rfind("id: ");
  ASSERT_NE(id_at, std::string::npos);
  std::string last_id = seen.substr(id_at + 4, seen.find('\n', id_at) - id_at - 4);
  // While disconnected, a hydrant fails; resuming from the last id delivers it, and nothing twice.
  ASSERT_EQ(post("/api/v1/feeds/hyd/records",
                 "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n"
                 "SY-H-00777,hydrant,123.44,41.81,out_of_service,,2026-11-22T10:00:00+08:00\n",
                 "text/csv")
                .status,
            202);
  EventReader resumed(
      port_, "/api/v1/subscriptions/" + sse_id + "/events",
      [](const std::string& t) { return t.find("SY-H-00777") != std::string::npos; },
      {{"Authorization", "Bearer " + sub_key}, {"Last-Event-ID", last_id}});
  ASSERT_TRUE(waitFor([&] { return resumed.text().find("SY-H-00777") != std::string::npos; }))
      << resumed.text();
  EXPECT_EQ(resumed.text().find("SY-H-00002"), std::string::npos)
      << "already delivered before the disconnect";
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/subscriptions/" + sse_id + "/events").status,
            401);

  // Webhook: fails twice, then every record arrives once, in order, signed.
  WebhookReceiver hook(2);
  auto webhook =
      as("POST", "/api/v1/subscriptions",
         R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
             std::to_string(hook.port()) + R"(/firehub","secret":"a-long-shared-secret"}})");
  ASSERT_EQ(webhook.status, 201) << webhook.body;
  auto kafka = as("POST", "/api/v1/subscriptions",
                  R"({"topic":"firehub.v1.water","delivery":{"kind":"kafka"}})");
  ASSERT_EQ(kafka.status, 201) << kafka.body;
  std::string kafka_topic =
      parse(kafka.body)->getObject("delivery")->getValue<std::string>("topic");
  EXPECT_NE(kafka_topic.find(".public"), std::string::npos)
      << "a subscriber without the grant gets the public view";
  for (int i = 0; i < 3; ++i) {
    char line[160];
    std::snprintf(line, sizeof line,
                  "source_id,kind,lon,lat,status,pressure_mpa,updated_at\nSY-H-1%04d,hydrant,123.4%"
                  "d,41.8,in_service,0.3,2026-11-22T10:0%d:00+08:00\n",
                  i, i, i);
    ASSERT_EQ(post("/api/v1/feeds/hyd/records", line, "text/csv").status, 202);
  }
  ASSERT_TRUE(waitFor([&] {
    std::string all;
    for (const auto& d : hook.received()) all += d.body;
    return all.find("SY-H-10002") != std::string::npos;
  })) << hook.attempts()
      << " attempts";
  EXPECT_GE(hook.attempts(), 3);
  std::string all;
  for (const auto& d : hook.received()) {
    // "t=<unix seconds>,sha256=<HMAC of '<t>.<body>'>": a receiver can refuse a replayed body.
    ASSERT_EQ(d.signature.rfind("t=", 0), 0u) << d.signature;
    const int64_t t = std::stoll(d.signature.substr(2, d.signature.find(',') - 2));
    EXPECT_EQ(d.signature, subs::webhookSignature("a-long-shared-secret", t, d.body));
    EXPECT_EQ(
        d.signature.substr(d.signature.find(',') + 1),
        "sha256=" + subs::hmacSha256Hex("a-long-shared-secret", std::to_string(t) + "." + d.body));
    EXPECT_LT(std::abs(t - static_cast<int64_t>(std::time(nullptr))), 120);
    all += d.body;
  }
  std::vector<uint64_t> sequences;
  std::vector<std::string> entities;
  for (const auto& d : hook.received()) {
    auto records = parse(d.body)->getArray("records");
    for (size_t i = 0; i < records->size(); ++i) {
      sequences.push_back(records->getObject(i)->getValue<uint64_t>("sequence"));
      entities.push_back(
          records->getObject(i)->getObject("record")->getValue<std::string>("entity_id"));
    }
  }
  EXPECT_TRUE(std::is_sorted(sequences.begin(), sequences.end()));
  EXPECT_EQ(std::set<uint64_t>(sequences.begin(), sequences.end()).size(), sequences.size())
      << "each once";
  std::vector<std::string> mine;
  for (const auto& e : entities) {
    if (e.rfind("SY-H-1", 0) == 0) mine.push_back(e);
  }
  EXPECT_EQ(mine, (std::vector<std::string>{"SY-H-10000", "SY-H-10001", "SY-H-10002"}));

  auto messages = firehub::testing::consumeAll(hub_->kafkaBootstrap(), kafka_topic, 3);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].headers["schema"], "firehub.v1.WaterSource");

  // A receiver that never answers 2xx: after max_attempts the batch becomes a dead letter with
  // the stage and reason, and delivery moves on.
  WebhookReceiver broken(1000);
  auto doomed =
      as("POST", "/api/v1/subscriptions",
         R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
             std::to_string(broken.port()) +
             R"(/","secret":"a-long-shared-secret","max_attempts":2}})");
  ASSERT_EQ(doomed.status, 201) << doomed.body;
  std::string doomed_id = parse(doomed.body)->getValue<std::string>("id");
  ASSERT_EQ(post("/api/v1/feeds/hyd/records",
                 "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n"
                 "SY-H-20000,hydrant,123.45,41.8,in_service,0.3,2026-11-22T11:00:00+08:00\n",
                 "text/csv")
                .status,
            202);
  ASSERT_TRUE(waitFor([&] {
    return get("/api/v1/dlq?feed=subscription:" + doomed_id).body.find("SY-H-20000") !=
           std::string::npos;
  })) << broken.attempts()
      << " attempts";
  auto letters = get("/api/v1/dlq?feed=subscription:" + doomed_id).body;
  EXPECT_NE(letters.find("\"stage\":\"deliver\""), std::string::npos) << letters;
  EXPECT_NE(letters.find("failed 2 times"), std::string::npos) << letters;
  EXPECT_EQ(broken.attempts(), 2);
}

// Operators add a connector without a restart; a second copy of a loaded id is refused.
TEST(HubPluginsTest, RescanLoadsNewConnectorsAndRefusesASecondVersionOfALoadedId) {
  TempDir dir;
  std::string plugins = dir.path() + "/plugins";
  std::filesystem::create_directories(plugins);
  std::string built = firehub::testing::pluginsDir();
  std::filesystem::copy_file(built + "/firehub_connector_weather.so",
                             plugins + "/firehub_connector_weather.so");
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir.path() + "/data";
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = plugins;
  c.lake_sync = false;
  c.plugin_scan_interval_s = 0;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  uint16_t port = hub.value()->httpPort();
  std::string key = firehub::testing::adminKey(c.data_dir);
  auto call = [&](const std::string& method, const std::string& path,
                  const std::string& body = "") {
    return http("127.0.0.1", port, method, path, body, body.empty() ? "" : "application/json", key);
  };
  const std::string police_feed =
      R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police"})";
  EXPECT_EQ(call("POST", "/api/v1/feeds", police_feed).status, 400) << "not loaded yet";

  std::filesystem::copy_file(built + "/firehub_connector_police.so",
                             plugins + "/firehub_connector_police.so");
  std::filesystem::copy_file(built + "/firehub_connector_weather.so",
                             plugins + "/firehub_connector_weather_v2.so");
  EXPECT_EQ(
      http("127.0.0.1", port, "POST", "/api/v1/plugins/rescan", "{}", "application/json").status,
      401);
  auto rescanned = call("POST", "/api/v1/plugins/rescan", "{}");
  ASSERT_EQ(rescanned.status, 200) << rescanned.body;
  auto list = parse(rescanned.body)->getArray("plugins");
  bool police = false, refused = false;
  for (size_t i = 0; i < list->size(); ++i) {
    auto p = list->getObject(i);
    if (p->optValue<std::string>("id", "") == "firehub.connector.police")
      police = p->getValue<std::string>("state") == "loaded";
    if (p->getValue<std::string>("file").find("weather_v2") != std::string::npos) {
      refused = p->getValue<std::string>("state") == "refused" &&
                p->getValue<std::string>("reason").find("already provided") != std::string::npos;
    }
  }
  EXPECT_TRUE(police) << rescanned.body;
  EXPECT_TRUE(refused) << rescanned.body;
  EXPECT_EQ(call("POST", "/api/v1/feeds", police_feed).status, 201);
  EXPECT_EQ(call("POST", "/api/v1/feeds/cad/records", fixture("police", "incidents.json")).status,
            202);
}

}  // namespace
}  // namespace firehub

namespace firehub {
namespace {

TEST_F(HubTest, DeadLettersAreReplayedOnceTheirCauseIsFixedAndPublishedOnTheDlqTopic) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"hydrants","agency":"water-bureau","connector":"firehub.connector.water"})",
           "application/json")
          .status,
      201);
  // A pressure reading for a hydrant the registry has not sent yet: dead-lettered (validate).
  auto early =
      post("/api/v1/feeds/hydrants/records",
           R"({"source_id":"SY-H-00077","time":"2026-11-22T08:00:00+08:00","pressure_mpa":0.21})"
           "\n",
           "application/x-ndjson");
  ASSERT_EQ(early.status, 202) << early.body;
  EXPECT_EQ(parse(early.body)->getValue<int>("rejected"), 1);
  // A registry row that can never pass (bad kind): dead-lettered with the CSV header kept.
  std::string header = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
  auto bad =
      post("/api/v1/feeds/hydrants/records",
           header + "SY-H-00078,volcano,123.43,41.80,in_service,0.3,2026-11-20T10:00:00+08:00\n",
           "text/csv");
  ASSERT_EQ(bad.status, 202) << bad.body;
  EXPECT_EQ(parse(bad.body)->getValue<int>("rejected"), 1);

  auto listed = parse(get("/api/v1/dlq?feed=hydrants").body);
  auto letters = listed->getArray("dead_letters");
  ASSERT_EQ(letters->size(), 2u);
  uint64_t early_id = letters->getObject(0)->getValue<uint64_t>("sequence");
  uint64_t bad_id = letters->getObject(1)->getValue<uint64_t>("sequence");
  auto shown = get("/api/v1/dlq/" + std::to_string(bad_id));
  ASSERT_EQ(shown.status, 200);
  auto one = parse(shown.body);
  EXPECT_EQ(one->getValue<std::string>("stage"), "validate");
  EXPECT_EQ(one->getValue<std::string>("connector").rfind("firehub.connector.water@", 0), 0u);
  EXPECT_EQ(one->getValue<std::string>("replay_prefix"), header);
  EXPECT_NE(one->getValue<std::string>("raw").find("volcano"), std::string::npos);
  EXPECT_EQ(get("/api/v1/dlq/abc").status, 400);
  EXPECT_EQ(get("/api/v1/dlq/999999").status, 404);
  // Both are on firehub.v1.dlq before anything below replays or discards them (a dead letter
  // gone before it was sent is skipped, so a fast run could otherwise publish neither).
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));

  // The registry row arrives; replaying the feed stores the reading and keeps the bad row.
  ASSERT_EQ(
      post("/api/v1/feeds/hydrants/records",
           header +
               "SY-H-00077,hydrant,123.4301,41.8052,in_service,0.32,2026-11-20T10:00:00+08:00\n",
           "text/csv")
          .status,
      202);
  auto replay = post("/api/v1/dlq/replay", R"({"feed":"hydrants"})", "application/json");
  ASSERT_EQ(replay.status, 200) << replay.body;
  auto result = parse(replay.body);
  EXPECT_EQ(result->getValue<int>("replayed"), 2);
  EXPECT_EQ(result->getValue<int>("resolved"), 1) << replay.body;
  auto results = result->getArray("results");
  EXPECT_TRUE(results->getObject(0)->getValue<bool>("resolved"));
  EXPECT_FALSE(results->getObject(1)->getValue<bool>("resolved"));
  EXPECT_NE(results->getObject(1)->getValue<std::string>("reason").find("kind"), std::string::npos)
      << replay.body;
  auto latest = hub_->lake().latest("water/water_source/SY-H-00077");
  ASSERT_TRUE(latest.isOk() && latest.value());
  EXPECT_DOUBLE_EQ(latest.value()->water_source().pressure_mpa(), 0.21);
  EXPECT_EQ(latest.value()->provenance().transport(), "replay");
  EXPECT_EQ(get("/api/v1/dlq/" + std::to_string(early_id)).status, 404);
  EXPECT_EQ(parse(get("/api/v1/dlq?feed=hydrants").body)->getArray("dead_letters")->size(), 1u);
  // Replaying what is gone says so; discarding removes for good.
  auto again = parse(
      post("/api/v1/dlq/replay", "{\"ids\":[" + std::to_string(early_id) + "]}", "application/json")
          .body);
  EXPECT_NE(again->getArray("results")->getObject(0)->getValue<std::string>("reason").find(
                "already replayed"),
            std::string::npos);
  EXPECT_EQ(post("/api/v1/dlq/replay", R"({"feed":"a","ids":[1]})", "application/json").status,
            400);
  EXPECT_EQ(
      http("127.0.0.1", port_, "DELETE", "/api/v1/dlq/" + std::to_string(bad_id), "", "", key_)
          .status,
      200);
  EXPECT_EQ(get("/api/v1/dlq/" + std::to_string(bad_id)).status, 404);

  // Both dead letters also went to firehub.v1.dlq, keyed by feed, with their stage.
  auto messages = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.dlq", 2);
  ASSERT_GE(messages.size(), 1u);
  for (const auto& m : messages) {
    EXPECT_EQ(m.key, "hydrants");
    EXPECT_EQ(m.headers.at("stage"), "validate");
    EXPECT_NE(m.value.find("\"reason\""), std::string::npos);
  }
}

TEST_F(HubTest, ToleranceNoneStopsTheFeedOnTheFirstBadRecordAndStoresNothingOfThatBody) {
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"strict","agency":"met","connector":"firehub.connector.weather",
                 "errors":{"tolerance":"none","retries":2}})",
                 "application/json")
                .status,
            201);
  EXPECT_EQ(
      post("/api/v1/feeds", R"({"id":"x","agency":"met","connector":"firehub.connector.weather",
                 "errors":{"tolerance":"some"}})",
           "application/json")
          .status,
      400);
  auto typo =
      post("/api/v1/feeds", R"({"id":"x","agency":"met","connector":"firehub.connector.weather",
                   "errors":{"retry":2}})",
           "application/json");
  EXPECT_EQ(typo.status, 400);
  EXPECT_NE(typo.body.find("errors.retry"), std::string::npos) << typo.body;

  std::string csv = std::string(kWeatherHeader) +
                    "S1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"
                    "S2,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,140,10,,0\n"
                    "S3,123.60,41.70,2026-11-22T08:00:00+08:00,1.0,50,5,20,0.4\n";
  auto r = post("/api/v1/feeds/strict/records", csv, "text/csv");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("line 3: field 'rh_pct' = 140"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("stopped"), std::string::npos);
  EXPECT_FALSE(hub_->lake().latest("weather/weather_station/S1").value());  // nothing of the body
  auto feed = parse(get("/api/v1/feeds/strict").body);
  EXPECT_EQ(feed->getValue<std::string>("state"), "stopped");
  EXPECT_NE(feed->getValue<std::string>("stopped").find("rh_pct"), std::string::npos);
  EXPECT_EQ(parse(get("/api/v1/dlq?feed=strict").body)->getArray("dead_letters")->size(), 1u);

  // Refused until resumed, also after a restart.
  std::string good =
      std::string(kWeatherHeader) + "S1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n";
  auto refused = post("/api/v1/feeds/strict/records", good, "text/csv");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("stopped by its error policy"), std::string::npos) << refused.body;
  hub_.reset();
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir_.path();
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  hub_ = std::move(hub).value();
  port_ = hub_->httpPort();
  EXPECT_EQ(parse(get("/api/v1/feeds/strict").body)->getValue<std::string>("state"), "stopped");
  EXPECT_EQ(post("/api/v1/feeds/strict/records", good, "text/csv").status, 409);
  ASSERT_EQ(post("/api/v1/feeds/strict/resume", "{}", "application/json").status, 200);
  auto accepted = post("/api/v1/feeds/strict/records", good, "text/csv");
  EXPECT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_EQ(parse(get("/api/v1/feeds/strict").body)->getValue<std::string>("state"), "active");
}

}  // namespace
}  // namespace firehub

namespace firehub {
namespace {

TEST_F(HubTest, FileDropIngestsDroppedFilesAndSetsAsideWhatItCannotRead) {
  namespace fs = std::filesystem;
  const std::string drop = drops_.path() + "/met";
  auto r = post("/api/v1/feeds",
                R"({"id":"wxfiles","agency":"met","connector":"firehub.connector.weather",
                "file_drop":{"dir":")" +
                    drop + R"("}})",
                "application/json");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(
      post("/api/v1/feeds", R"({"id":"x","agency":"met","connector":"firehub.connector.weather",
                 "file_drop":{"dir":"../outside"}})",
           "application/json")
          .status,
      400);
  fs::create_directories(drop);
  auto write = [&](const std::string& name, const std::string& content) {
    // Written under a .part name and renamed, as agencies are asked to.
    { std::ofstream(drop + "/" + name + ".part") << content; }
    fs::rename(drop + "/" + name + ".part", drop + "/" + name);
  };
  write("obs-0800.csv", std::string(kWeatherHeader) +
                            "F1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"
                            "F2,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,140,10,,0\n"
                            "F3,123.60,41.70,2026-11-22T08:00:00+08:00,1.0,50,5,20,0.4\n");
  write("notes.txt", "not a format the hub knows");
  write("broken.json", "{\"station_id\": ");
  { std::ofstream(drop + "/half-written.csv.part") << kWeatherHeader; }

  ASSERT_TRUE(
      waitFor([&] { return fs::exists(drop + "/done/obs-0800.csv"); }, std::chrono::seconds(10)));
  ASSERT_TRUE(waitFor(
      [&] {
        return fs::exists(drop + "/failed/notes.txt") && fs::exists(drop + "/failed/broken.json");
      },
      std::chrono::seconds(10)));
  EXPECT_TRUE(fs::exists(drop + "/half-written.csv.part"));  // left alone
  auto f1 = hub_->lake().latest("weather/weather_station/F1");
  ASSERT_TRUE(f1.isOk() && f1.value());
  EXPECT_EQ(f1.value()->provenance().transport(), "file");
  EXPECT_TRUE(hub_->lake().latest("weather/weather_station/F3").value());
  auto dlq = get("/api/v1/dlq?feed=wxfiles").body;
  EXPECT_NE(dlq.find("rh_pct"), std::string::npos) << dlq;  // the bad row
  EXPECT_NE(dlq.find("file notes.txt: cannot tell the format"), std::string::npos) << dlq;
  EXPECT_NE(dlq.find("file broken.json: "), std::string::npos) << dlq;
  EXPECT_NE(dlq.find("\"stage\":\"transport\""), std::string::npos);

  // The same file dropped again (an agency re-sending after a crash) adds nothing.
  write("obs-0800-again.csv", std::string(kWeatherHeader) +
                                  "F1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n");
  ASSERT_TRUE(waitFor([&] { return fs::exists(drop + "/done/obs-0800-again.csv"); },
                      std::chrono::seconds(10)));
  auto counts = parse(get("/api/v1/feeds/wxfiles").body)->getObject("counts");
  EXPECT_EQ(counts->getValue<int>("accepted"), 2);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 1);
}

}  // namespace
}  // namespace firehub
