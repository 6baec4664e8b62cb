// The hub in-process, as agencies push to it: bodies, counts, errors, patches and placements,
// GB/T 26875 over TCP, feeds paused and deleted, dead letters and their replay, the error
// policy, file drops and the memory plan.
#include "hub_fixture.h"

namespace firehub {
namespace {

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
  auto unknown_domain = get("/api/v1/entities?domain=nowhere");
  EXPECT_EQ(unknown_domain.status, 404) << "an unknown domain is not an empty one";
  EXPECT_NE(unknown_domain.body.find("weather"), std::string::npos)
      << "names the domains: " << unknown_domain.body;
  // A known resource with another method: 405 naming the methods it takes.
  auto wrong = http("127.0.0.1", port_, "PUT", "/api/v1/feeds/wx", "{}", "application/json", key_);
  EXPECT_EQ(wrong.status, 405) << wrong.body;
  EXPECT_EQ(wrong.headers["Allow"], "GET, HEAD, PATCH, DELETE");
  auto post_catalog = post("/api/v1/catalog", "{}", "application/json");
  EXPECT_EQ(post_catalog.status, 405);
  EXPECT_EQ(post_catalog.headers["Allow"], "GET, HEAD");
  auto ogc_write = post("/ogc/collections", "{}", "application/json");
  EXPECT_EQ(ogc_write.status, 405);
  EXPECT_EQ(ogc_write.headers["Allow"], "GET, HEAD");
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
  EXPECT_EQ(by_default.feature_cache_mb, 28u);
  EXPECT_EQ(by_default.tile_cache_mb, 23u);
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
  uint64_t early_id = letters->getObject(0)->getValue<uint64_t>("id");
  uint64_t bad_id = letters->getObject(1)->getValue<uint64_t>("id");
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
