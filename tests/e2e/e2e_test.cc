// End to end, as an operator and an agency meet firehub: start `firehub serve`, register a feed,
// push a CSV with good, bad and repeated rows, read the topic with a Kafka consumer (and kcat
// when installed), query the API, restart on the same data dir and query again.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "firehub/plugin_abi.h"
#include "processes.h"
#include "test_support.h"

namespace firehub {
namespace {

using firehub::testing::buildDir;
using firehub::testing::consumeAll;
using firehub::testing::firehubBinary;
using firehub::testing::http;
using firehub::testing::HubProcess;
using firehub::testing::kWeatherHeader;
using firehub::testing::readFile;
using firehub::testing::run;
using firehub::testing::TempDir;
using firehub::testing::waitFor;

Poco::JSON::Object::Ptr parse(const std::string& body) {
  Poco::JSON::Parser parser;
  return parser.parse(body).extract<Poco::JSON::Object::Ptr>();
}

TEST(EndToEndTest, PushToKafkaAndApiSurvivesRestart) {
  TempDir dir;
  std::string plugins = dir.sub("plugins");
  std::filesystem::create_directories(plugins);
  // The real weather plugin, and one built for another ABI major that must be refused.
  std::filesystem::create_symlink(buildDir() + "/plugins/firehub_connector_weather.so",
                                  plugins + "/firehub_connector_weather.so");
  std::filesystem::copy_file(buildDir() + "/tests/plugins/test_plugin_bad_abi.so",
                             plugins + "/firehub_connector_future.so");

  auto listed = run(firehubBinary() + " plugins list --dir " + plugins);
  EXPECT_EQ(listed.first, 3) << "exit code 3 when a plugin is refused";
  EXPECT_NE(listed.second.find("firehub.connector.weather"), std::string::npos) << listed.second;
  const std::string refusal = "plugin ABI " + std::to_string(FH_ABI_MAJOR + 1) +
                              ".0 is incompatible with host ABI " + std::to_string(FH_ABI_MAJOR) +
                              "." + std::to_string(FH_ABI_MINOR);
  EXPECT_NE(listed.second.find(refusal), std::string::npos) << listed.second;

  HubProcess hub(dir.sub("data"), plugins, dir.sub("hub.log"));
  ASSERT_TRUE(hub.start()) << hub.log();
  EXPECT_EQ(hub.get("/healthz").status, 200);
  auto plugin_list = hub.get("/api/v1/plugins").body;
  EXPECT_NE(plugin_list.find("\"state\":\"refused\""), std::string::npos) << plugin_list;
  EXPECT_NE(plugin_list.find("firehub_connector_future.so"), std::string::npos);

  auto created = hub.post(
      "/api/v1/feeds",
      R"({"id":"wx-shenyang","agency":"meteorology","connector":"firehub.connector.weather","config":{}})",
      "application/json");
  ASSERT_EQ(created.status, 201) << created.body;

  std::string csv = std::string(kWeatherHeader);
  for (int i = 0; i < 30; ++i) {
    char line[160];
    std::snprintf(line, sizeof line, "A%04d,%.4f,%.4f,2026-11-22T08:00:00+08:00,%.1f,%d,%d,%d,0\n",
                  7101 + i, 123.2 + i * 0.015, 41.7 + (i % 6) * 0.04, -2.0 + i * 0.3, 30 + i,
                  8 + i % 9, (i * 37) % 360);
    csv += line;
  }
  csv += "A9001,123.40,41.80,2026-11-22T08:00:00+08:00,75.0,40,12,310,0\n";   // too hot
  csv += "A9002,200.00,41.80,2026-11-22T08:00:00+08:00,5.0,40,12,310,0\n";    // lon out of range
  csv += "A7101,123.2000,41.7000,2026-11-22T08:00:00+08:00,-2.0,30,8,0,0\n";  // repeated
  auto pushed = hub.post("/api/v1/feeds/wx-shenyang/records", csv, "text/csv");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  auto counts = parse(pushed.body);
  EXPECT_EQ(counts->getValue<int>("accepted"), 30);
  EXPECT_EQ(counts->getValue<int>("rejected"), 2);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 1);

  auto kafka = parse(hub.get("/api/v1/kafka").body);
  std::string bootstrap = kafka->getValue<std::string>("bootstrap_servers");
  EXPECT_TRUE(kafka->getValue<bool>("embedded"));
  EXPECT_EQ(bootstrap, readFile(dir.sub("data") + "/kafka.bootstrap"));
  auto messages = consumeAll(bootstrap, "firehub.v1.weather", 30);
  ASSERT_EQ(messages.size(), 30u);
  std::set<std::string> keys;
  for (const auto& m : messages) keys.insert(m.key);
  EXPECT_EQ(keys.size(), 30u);
  EXPECT_TRUE(keys.count("A7101"));
  EXPECT_EQ(messages[0].headers["feed"], "wx-shenyang");
  EXPECT_EQ(messages[0].headers["schema"], "firehub.v1.WeatherObservation");

  if (std::system("command -v kcat >/dev/null 2>&1") == 0) {
    auto kcat =
        run("timeout 30 kcat -b " + bootstrap + " -C -t firehub.v1.weather -e -q -f '%k\\n'");
    EXPECT_EQ(kcat.first, 0);
    size_t lines = std::count(kcat.second.begin(), kcat.second.end(), '\n');
    EXPECT_EQ(lines, 30u) << kcat.second;
  } else {
    GTEST_LOG_(INFO) << "kcat not installed: checked with the librdkafka consumer only";
  }

  auto near = hub.get("/api/v1/entities?domain=weather&bbox=123.1,41.6,123.5,42.0");
  ASSERT_EQ(near.status, 200);
  size_t in_box = parse(near.body)->getArray("features")->size();
  EXPECT_GT(in_box, 10u);
  EXPECT_LE(in_box, 30u);
  auto record = hub.get("/api/v1/records/wx-shenyang:A7101@2026-11-22T00:00:00Z");
  ASSERT_EQ(record.status, 200) << record.body;

  // Offline ingest into a data dir in use is refused clearly; through the hub it works.
  std::string file = dir.sub("more.csv");
  std::ofstream(file) << kWeatherHeader
                      << "A7101,123.2,41.7,2026-11-22T09:00:00+08:00,-1.0,31,8,0,0\n";
  auto offline = run(firehubBinary() + " ingest --feed wx-shenyang --file " + file +
                     " --data-dir " + dir.sub("data") + " --plugins-dir " + plugins + " 2>&1");
  EXPECT_NE(offline.first, 0);
  EXPECT_NE(offline.second.find("in use"), std::string::npos) << offline.second;
  auto online = run(firehubBinary() + " ingest --feed wx-shenyang --file " + file +
                    " --hub http://127.0.0.1:" + std::to_string(hub.port()) + " --key-file " +
                    dir.sub("data") + "/admin.key 2>/dev/null");
  EXPECT_EQ(online.first, 0) << online.second;
  EXPECT_NE(online.second.find("\"accepted\": 1"), std::string::npos) << online.second;

  // Keys and the audit log from the command line, through the running hub with its admin key.
  auto made = run(firehubBinary() +
                  " keys create --role agency --agency water-bureau --domains water --json "
                  "--data-dir " +
                  dir.sub("data") + " 2>&1");
  EXPECT_EQ(made.first, 0) << made.second;
  EXPECT_NE(made.second.find("\"key\":\"fh_"), std::string::npos) << made.second;
  EXPECT_NE(made.second.find("\"domains\":[\"water\"]"), std::string::npos) << made.second;
  // Tables by default, for people: a header and a row per key; never the keys themselves.
  auto key_list = run(firehubBinary() + " keys list --data-dir " + dir.sub("data") + " 2>&1");
  EXPECT_EQ(key_list.first, 0) << key_list.second;
  EXPECT_EQ(key_list.second.rfind("ID ", 0), 0u) << key_list.second;
  EXPECT_NE(key_list.second.find("ROLE"), std::string::npos) << key_list.second;
  EXPECT_NE(key_list.second.find("water-bureau"), std::string::npos) << key_list.second;
  EXPECT_EQ(key_list.second.find("fh_"), std::string::npos) << "keys are never listed";
  // The hub and key from the environment; a key the hub does not know names the file it came
  // from.
  std::ofstream(dir.sub("stale.key")) << "fh_000000000000_0000\n";
  auto stale =
      run("FIREHUB_KEY_FILE=" + dir.sub("stale.key") + " FIREHUB_DATA_DIR=" + dir.sub("data") +
          " " + firehubBinary() + " feeds list 2>&1");
  EXPECT_EQ(stale.first, 1) << stale.second;
  EXPECT_NE(stale.second.find(dir.sub("stale.key")), std::string::npos) << stale.second;
  EXPECT_NE(stale.second.find("answered 401"), std::string::npos) << stale.second;
  auto paused = run(firehubBinary() + " feeds pause wx-shenyang --json --data-dir " +
                    dir.sub("data") + " 2>&1");
  EXPECT_EQ(paused.first, 0) << paused.second;
  EXPECT_NE(paused.second.find("\"state\":\"paused\""), std::string::npos) << paused.second;
  auto resumed = run(firehubBinary() + " feeds resume wx-shenyang --json --data-dir " +
                     dir.sub("data") + " 2>&1");
  EXPECT_NE(resumed.second.find("\"state\":\"active\""), std::string::npos) << resumed.second;
  auto verified =
      run(firehubBinary() + " audit verify --json --data-dir " + dir.sub("data") + " 2>&1");
  EXPECT_EQ(verified.first, 0) << verified.second;
  EXPECT_NE(verified.second.find("\"intact\":true"), std::string::npos) << verified.second;

  ASSERT_EQ(hub.stop(), 0) << hub.log();
  EXPECT_NE(hub.log().find("stopped"), std::string::npos);
  auto offline_verify =
      run(firehubBinary() + " audit verify --offline --data-dir " + dir.sub("data") + " 2>&1");
  EXPECT_EQ(offline_verify.first, 0) << offline_verify.second;
  EXPECT_NE(offline_verify.second.find("intact"), std::string::npos) << offline_verify.second;
  // Without --offline and no hub answering, the data dir is what the user meant.
  auto stopped_verify =
      run(firehubBinary() + " audit verify --data-dir " + dir.sub("data") + " 2>&1");
  EXPECT_EQ(stopped_verify.first, 0) << stopped_verify.second;
  EXPECT_NE(stopped_verify.second.find("no hub answers"), std::string::npos)
      << stopped_verify.second;
  EXPECT_NE(stopped_verify.second.find("intact"), std::string::npos) << stopped_verify.second;

  // Restart on the same data dir: the feed, the records and the latest state are still there.
  ASSERT_TRUE(hub.start()) << hub.log();
  auto feeds = parse(hub.get("/api/v1/feeds").body)->getArray("feeds");
  ASSERT_EQ(feeds->size(), 1u);
  EXPECT_EQ(feeds->getObject(0)->getValue<std::string>("state"), "active");
  auto kept = feeds->getObject(0)->getObject("counts");  // counters are stored with the data
  EXPECT_EQ(kept->getValue<int>("accepted"), 31);
  EXPECT_EQ(kept->getValue<int>("rejected"), 2);
  EXPECT_EQ(kept->getValue<int>("duplicates"), 1);
  EXPECT_EQ(hub.get("/api/v1/records/wx-shenyang:A7101@2026-11-22T00:00:00Z").status, 200);
  auto after = parse(hub.get("/api/v1/entities?domain=weather&bbox=123.1,41.6,123.5,42.0").body);
  EXPECT_EQ(after->getArray("features")->size(), in_box);
  bool latest_is_newer = false;
  auto features = after->getArray("features");
  for (size_t i = 0; i < features->size(); ++i) {
    auto props = features->getObject(i)->getObject("properties");
    if (props->getValue<std::string>("entity_id") == "A7101") {
      latest_is_newer = props->getValue<std::string>("observed_at") == "2026-11-22T01:00:00Z";
    }
  }
  EXPECT_TRUE(latest_is_newer);
  auto again = hub.post("/api/v1/feeds/wx-shenyang/records", csv, "text/csv");
  ASSERT_EQ(again.status, 202);
  EXPECT_EQ(parse(again.body)->getValue<int>("accepted"), 0);
  EXPECT_EQ(parse(again.body)->getValue<int>("duplicates"), 31);
  ASSERT_EQ(hub.stop(), 0) << hub.log();
}

TEST(EndToEndTest, FwiCommandReproducesTheStandardSequence) {
  TempDir dir;
  for (char sep : {',', ';'}) {
    std::string file = dir.sub(sep == ',' ? "comma.csv" : "semicolon.csv");
    std::string header = "long,lat,yr,mon,day,temp,rh,ws,prec";
    std::vector<std::string> rows = {"-100,40,1985,4,13,17,42,25,0",
                                     "-100,40,1985,4,14,20,21,25,2.4",
                                     "-100,40,1985,4,15,8.5,40,17,0"};
    auto sep_of = [&](std::string s) {
      std::replace(s.begin(), s.end(), ',', sep);
      return s;
    };
    {
      std::ofstream out(file);
      out << sep_of(header) << "\n";
      for (const auto& r : rows) out << sep_of(r) << "\n";
    }
    auto result = run(firehubBinary() + " fwi --input " + file);
    ASSERT_EQ(result.first, 0) << result.second;
    std::string expected =
        sep_of(header + ",FFMC,DMC,DC,ISI,BUI,FWI,DSR") + "\n" +
        sep_of(rows[0] + ",87.6494,8.54505,19.014,10.7762,8.49043,10.0362,1.61193") + "\n" +
        sep_of(rows[1] + ",86.2009,10.4019,23.568,8.77083,10.3553,9.22044,1.38733") + "\n" +
        sep_of(rows[2] + ",86.908,11.7983,26.052,6.4782,11.7392,7.51672,0.966361") + "\n";
    EXPECT_EQ(result.second, expected);
  }
  // The shipped reference data, citation comments on top, runs as the README shows it.
  auto reference = run(firehubBinary() + " fwi --input " + firehub::testing::sourceDir() +
                       "/tests/data/fwi_reference_1985.csv 2>&1");
  EXPECT_EQ(reference.first, 0) << reference.second;
  EXPECT_NE(
      reference.second.find("-100,40,1985,4,13,17,42,25,0,87.6,8.5,19,10.8,8.5,10,1.61,87.6494"),
      std::string::npos)
      << reference.second;
  std::string bad = dir.sub("bad.csv");
  std::ofstream(bad) << "long,lat,yr,mon,day,temp,rh,ws,prec\n-100,40,1985,4,13,17,142,25,0\n";
  auto refused = run(firehubBinary() + " fwi --input " + bad + " 2>&1");
  EXPECT_EQ(refused.first, 2);
  EXPECT_NE(refused.second.find("line 2: rh = 142 is outside [0, 100]"), std::string::npos)
      << refused.second;

  // Start codes (--init) and a row that carries the previous day's codes: the day from FFMC 90,
  // DMC 30, DC 200 at 41.8° N in July, worked by hand from the published equations (fwi_test).
  std::string seasons = dir.sub("seasons.csv");
  std::ofstream(seasons) << "long,lat,yr,mon,day,temp,rh,ws,prec,ffmc_yda,dmc_yda,dc_yda\n"
                            "123.4,41.8,2027,7,1,25,30,20,0,,,\n"
                            "123.4,41.8,2027,7,2,25,30,20,0,90,30,200\n";
  auto started = run(firehubBinary() + " fwi --init 90,30,200 --input " + seasons);
  ASSERT_EQ(started.first, 0) << started.second;
  EXPECT_NE(started.second.find("2027,7,1,25,30,20,0,,,,91.7327,34.2908,208.204,15.0267,48.5793,"
                                "29.0957"),
            std::string::npos)
      << started.second;
  EXPECT_NE(started.second.find("2027,7,2,25,30,20,0,90,30,200,91.7327,34.2908,208.204,"),
            std::string::npos)
      << "the row's own previous codes, not the day before's: " << started.second;
  // The overwintered DC (autumn DC 300, 110 mm): 109.466, then a July day from it.
  auto wintered = run(firehubBinary() + " fwi --init 90,30,200 --overwinter 300,110 --input " +
                      seasons + " 2>&1");
  ASSERT_EQ(wintered.first, 0) << wintered.second;
  EXPECT_NE(wintered.second.find(",117.67"), std::string::npos) << wintered.second;
  auto wrong = run(firehubBinary() + " fwi --init 190,30,200 --input " + seasons + " 2>&1");
  EXPECT_EQ(wrong.first, 2);
  EXPECT_NE(wrong.second.find("FFMC must be in 0..101"), std::string::npos) << wrong.second;
}

// kill -9 right after acknowledged pushes: after a restart every acknowledged record is in the
// lake and is published (the outbox survives the crash).
TEST(EndToEndTest, AcknowledgedRecordsSurviveKillDashNine) {
  TempDir dir;
  HubProcess hub(dir.sub("data"), buildDir() + "/plugins", dir.sub("hub.log"));
  ASSERT_TRUE(hub.start()) << hub.log();
  ASSERT_EQ(hub.post("/api/v1/feeds",
                     R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})",
                     "application/json")
                .status,
            201);
  size_t acknowledged = 0;
  for (int batch = 0; batch < 20; ++batch) {
    std::string csv = kWeatherHeader;
    for (int i = 0; i < 100; ++i) {
      char line[160];
      std::snprintf(line, sizeof line, "K%03d,123.%03d,41.8,2026-11-22T%02d:00:00Z,1.0,50,5,0,0\n",
                    i, i, batch);
      csv += line;
    }
    auto r = hub.post("/api/v1/feeds/wx/records", csv, "text/csv");
    ASSERT_EQ(r.status, 202);
    acknowledged += parse(r.body)->getValue<size_t>("accepted");
  }
  EXPECT_EQ(acknowledged, 2000u);
  hub.~HubProcess();  // SIGKILL, no drain
  new (&hub) HubProcess(dir.sub("data"), buildDir() + "/plugins", dir.sub("hub.log"));
  ASSERT_TRUE(hub.start()) << hub.log();
  for (int batch = 0; batch < 20; batch += 7) {
    char id[64];
    std::snprintf(id, sizeof id, "/api/v1/records/wx:K042@2026-11-22T%02d:00:00Z", batch);
    EXPECT_EQ(hub.get(id).status, 200) << id;
  }
  // The embedded broker is new after the restart; whatever was still in the outbox is published
  // to it, and the outbox drains to zero.
  ASSERT_TRUE(waitFor(
      [&] { return parse(hub.get("/api/v1/kafka").body)->getValue<int>("outbox_depth") == 0; }));
  ASSERT_EQ(hub.stop(), 0) << hub.log();
}

// `firehub plugins new NAME` makes a connector folder from the template and registers it. (The
// template itself builds and passes the conformance testkit in every run of the suite.)
TEST(EndToEndTest, PluginsNewMakesARenamedConnectorFromTheTemplate) {
  TempDir dir;
  namespace fs = std::filesystem;
  std::string src = firehub::testing::sourceDir();
  fs::create_directories(dir.sub("tree/plugins"));
  fs::create_directories(dir.sub("tree/connectors"));
  fs::copy(src + "/plugins/template", dir.sub("tree/plugins/template"),
           fs::copy_options::recursive);
  fs::copy_file(src + "/connectors/CMakeLists.txt", dir.sub("tree/connectors/CMakeLists.txt"));
  auto made =
      run(firehubBinary() + " plugins new forestry_bureau --source " + dir.sub("tree") + " 2>&1");
  ASSERT_EQ(made.first, 0) << made.second;
  std::string code =
      readFile(dir.sub("tree/connectors/forestry_bureau/forestry_bureau_connector.cc"));
  EXPECT_NE(code.find("FIREHUB_DECLARE_CONNECTOR(forestry_bureau, "
                      "firehub::connectors::ForestryBureauConnector"),
            std::string::npos);
  EXPECT_NE(code.find("\"firehub.connector.forestry_bureau\""), std::string::npos);
  EXPECT_EQ(code.find("TemplateConnector"), std::string::npos);
  EXPECT_EQ(code.find("connector.template"), std::string::npos);
  EXPECT_NE(readFile(dir.sub("tree/connectors/forestry_bureau/CMakeLists.txt"))
                .find("firehub_connector(forestry_bureau SRCS forestry_bureau_connector.cc"),
            std::string::npos);
  EXPECT_TRUE(
      fs::exists(dir.sub("tree/connectors/forestry_bureau/tests/fixtures/readings.ndjson")));
  EXPECT_NE(readFile(dir.sub("tree/connectors/forestry_bureau/config.schema.json"))
                .find("firehub.connector.forestry_bureau"),
            std::string::npos);
  EXPECT_NE(
      readFile(dir.sub("tree/connectors/CMakeLists.txt")).find("add_subdirectory(forestry_bureau)"),
      std::string::npos);
  EXPECT_EQ(
      run(firehubBinary() + " plugins new forestry_bureau --source " + dir.sub("tree") + " 2>&1")
          .first,
      1);
  EXPECT_EQ(
      run(firehubBinary() + " plugins new Bad-Name --source " + dir.sub("tree") + " 2>&1").first,
      2);
}

// `firehub broker` runs the mock cluster as its own process: a hub publishes to it, a full broker
// outage leaves the hub degraded with the records waiting in its outbox, and they arrive once the
// brokers are back. The broker outlives a hub killed with -9.
TEST(EndToEndTest, BrokerProcessSurvivesHubCrashesAndOutagesDrain) {
  TempDir dir;
  firehub::testing::BrokerProcess broker(dir.path());
  ASSERT_TRUE(broker.start()) << broker.log();
  const std::string& bootstrap = broker.bootstrap();
  uint16_t control_port = broker.controlPort();
  std::ofstream(dir.sub("hub.properties")) << "kafka.bootstrap.servers = " << bootstrap << "\n";

  std::string plugins = buildDir() + "/plugins";
  auto csv = [](int n) {
    return std::string("source_id,kind,lon,lat,status,pressure_mpa,updated_at\n") + "SY-H-" +
           std::to_string(70000 + n) +
           ",hydrant,123.4,41.8,in_service,0.3,2026-11-22T10:00:00+08:00\n";
  };
  {
    HubProcess hub(dir.sub("data"), plugins, dir.sub("hub.log"), dir.sub("hub.properties"));
    ASSERT_TRUE(hub.start()) << hub.log();
    ASSERT_EQ(hub.post("/api/v1/feeds",
                       R"({"id":"hyd","agency":"water","connector":"firehub.connector.water"})",
                       "application/json")
                  .status,
              201);
    ASSERT_EQ(hub.post("/api/v1/feeds/hyd/records", csv(1), "text/csv").status, 202);
    ASSERT_TRUE(waitFor(
        [&] { return hub.get("/readyz").body.find("\"outbox_depth\":0") != std::string::npos; }));
  }  // killed with -9 here
  ASSERT_EQ(consumeAll(bootstrap, "firehub.v1.water", 1).size(), 1u)
      << "the broker kept what it received";

  HubProcess hub(dir.sub("data"), plugins, dir.sub("hub.log"), dir.sub("hub.properties"));
  ASSERT_TRUE(hub.start()) << hub.log();
  ASSERT_EQ(
      http("127.0.0.1", control_port, "POST", "/brokers/all/down", "{}", "application/json").status,
      200);
  ASSERT_EQ(hub.post("/api/v1/feeds/hyd/records", csv(2), "text/csv").status, 202)
      << "accepted into the lake";
  ASSERT_TRUE(waitFor([&] { return hub.get("/readyz").status == 503; }, std::chrono::seconds(30)))
      << hub.get("/readyz").body;
  EXPECT_NE(hub.get("/readyz").body.find("\"outbox_depth\":1"), std::string::npos);
  ASSERT_EQ(
      http("127.0.0.1", control_port, "POST", "/brokers/all/up", "{}", "application/json").status,
      200);
  ASSERT_TRUE(waitFor([&] { return hub.get("/readyz").status == 200; }, std::chrono::seconds(60)))
      << hub.get("/readyz").body;
  auto messages = consumeAll(bootstrap, "firehub.v1.water", 2);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_TRUE(messages[0].key == "SY-H-70002" || messages[1].key == "SY-H-70002")
      << "the record held during the outage";
  EXPECT_EQ(
      http("127.0.0.1", control_port, "POST", "/errors/produce?count=3", "{}", "application/json")
          .status,
      200);
  EXPECT_EQ(http("127.0.0.1", control_port, "GET", "/nope").status, 404);
}

}  // namespace
}  // namespace firehub
