// Faults the hub meets in one process: misbehaving plugins (throwing, garbage, wrong ABI,
// blocking) and a corpus of malformed input for every format (tests/data/bad-input). The hub and
// the other feeds must keep serving; each bad piece gets a clear 4xx or a dead letter with a
// reason.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "firehub/hub.h"
#include "test_support.h"

namespace firehub {
namespace {

using firehub::testing::http;
using firehub::testing::kWeatherHeader;
using firehub::testing::TempDir;
using firehub::testing::waitFor;
namespace fs = std::filesystem;

Poco::JSON::Object::Ptr parse(const std::string& body) {
  Poco::JSON::Parser parser;
  return parser.parse(body).extract<Poco::JSON::Object::Ptr>();
}

std::string readBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class InProcessFaultTest : public ::testing::Test {
 protected:
  void startHub(const std::string& plugins_dir, int64_t busy_timeout_ms = 10000) {
    HubConfig c;
    c.init = true;  // a fresh data dir
    c.data_dir = dir_.sub("data");
    c.http_listen = "127.0.0.1:0";
    c.plugins_dir = plugins_dir;
    c.lake_sync = false;
    c.max_body_bytes = 1 << 20;
    c.busy_timeout_ms = busy_timeout_ms;
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hub_ = std::move(hub).value();
    port_ = hub_->httpPort();
    key_ = firehub::testing::adminKey(c.data_dir);
  }
  firehub::testing::Http get(const std::string& path) {
    return http("127.0.0.1", port_, "GET", path, "", "", key_);
  }
  firehub::testing::Http post(const std::string& path, const std::string& body,
                              const std::string& type) {
    return http("127.0.0.1", port_, "POST", path, body, type, key_);
  }
  void feed(const std::string& id, const std::string& connector, const std::string& config = "{}") {
    auto r =
        post("/api/v1/feeds",
             R"({"id":")" + id + R"(","agency":"a-)" + id + R"(","connector":"firehub.connector.)" +
                 connector + R"(","config":)" + config + "}",
             "application/json");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  std::string weatherRow(const std::string& station) {
    return std::string(kWeatherHeader) + station +
           ",123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n";
  }
  std::string state(const std::string& feed) {
    return parse(get("/api/v1/feeds/" + feed).body)->getValue<std::string>("state");
  }

  TempDir dir_;
  std::unique_ptr<Hub> hub_;
  uint16_t port_ = 0;
  std::string key_;
};

TEST_F(InProcessFaultTest, MisbehavingPluginsFailTheirFeedOnlyAndTheHubKeepsServing) {
  // The real weather connector beside four broken ones.
  const std::string plugins = dir_.sub("plugins");
  fs::create_directories(plugins);
  fs::copy_file(firehub::testing::pluginsDir() + "/firehub_connector_weather.so",
                plugins + "/weather.so");
  for (const char* p : {"throwing", "garbage", "blocking", "bad_abi"}) {
    fs::copy_file(firehub::testing::testPluginsDir() + "/test_plugin_" + p + ".so",
                  plugins + "/" + p + ".so");
  }
  startHub(plugins, /*busy_timeout_ms=*/1000);
  auto listed = get("/api/v1/plugins").body;
  EXPECT_NE(listed.find("bad_abi.so"), std::string::npos) << listed;  // refused, with the reason
  EXPECT_NE(listed.find("ABI"), std::string::npos);
  feed("wx", "weather");
  feed("thr", "throwing");
  feed("gar", "garbage");
  const std::string release = dir_.sub("release-blocking");
  feed("blk", "blocking", R"({"release_file":")" + release + R"("})");

  // Throws: 500 naming the connector, the feed failed, the others unaffected.
  auto thrown = post("/api/v1/feeds/thr/records", weatherRow("T1"), "text/csv");
  EXPECT_EQ(thrown.status, 500) << thrown.body;
  EXPECT_NE(thrown.body.find("connector firehub.connector.throwing failed: boom in decode"),
            std::string::npos);
  EXPECT_EQ(state("thr"), "failed");
  EXPECT_EQ(post("/api/v1/feeds/wx/records", weatherRow("W1"), "text/csv").status, 202);
  EXPECT_EQ(state("wx"), "active");

  // Garbage: every piece dead-lettered, nothing stored, the feed failed with the reason.
  auto garbage = post("/api/v1/feeds/gar/records", "\x08\x96\x01 not a record", "text/csv");
  ASSERT_EQ(garbage.status, 202) << garbage.body;
  EXPECT_EQ(parse(garbage.body)->getValue<int>("accepted"), 0);
  EXPECT_EQ(parse(garbage.body)->getValue<int>("rejected"), 3);
  auto gar = parse(get("/api/v1/feeds/gar").body);
  EXPECT_EQ(gar->getValue<std::string>("state"), "failed");
  EXPECT_NE(gar->getValue<std::string>("fault").find("not a firehub.v1.Record"), std::string::npos);
  EXPECT_EQ(parse(get("/api/v1/dlq?feed=gar").body)->getArray("dead_letters")->size(), 3u);

  // Blocks: the first push hangs in the connector; the next one to that feed gets 503 instead
  // of hanging too; the feed reads as failed (blocked); other feeds and the API keep serving.
  auto stuck = std::async(std::launch::async, [&] {
    return http("127.0.0.1", port_, "POST", "/api/v1/feeds/blk/records", weatherRow("B1"),
                "text/csv", key_);
  });
  ASSERT_TRUE(waitFor(
      [&] {
        return stuck.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready &&
               state("blk") == "failed";
      },
      std::chrono::seconds(10)));
  EXPECT_NE(parse(get("/api/v1/feeds/blk").body)
                ->getValue<std::string>("fault")
                .find("connector blocked"),
            std::string::npos);
  auto busy = post("/api/v1/feeds/blk/records", weatherRow("B2"), "text/csv");
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_NE(busy.body.find("is busy: its connector has been decoding one body"), std::string::npos)
      << busy.body;
  EXPECT_EQ(post("/api/v1/feeds/wx/records", weatherRow("W2"), "text/csv").status, 202);
  EXPECT_EQ(get("/healthz").status, 200);
  std::ofstream(release) << "go";
  auto released = stuck.get();
  EXPECT_EQ(released.status, 400) << released.body;
  EXPECT_EQ(state("blk"), "active");
  EXPECT_TRUE(hub_->lake().latest("weather/weather_station/W2").value());
}

// One line of tests/data/bad-input/cases.tsv.
struct Case {
  std::string name, feed, type, status, reason;
  int accepted = 0, min_rejected = 0;
};

std::vector<Case> corpus() {
  std::ifstream in(firehub::testing::sourceDir() + "/tests/data/bad-input/cases.tsv");
  std::vector<Case> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream s(line);
    Case c;
    std::string accepted, rejected;
    std::getline(s, c.name, '\t');
    std::getline(s, c.feed, '\t');
    std::getline(s, c.type, '\t');
    std::getline(s, c.status, '\t');
    std::getline(s, accepted, '\t');
    std::getline(s, rejected, '\t');
    std::getline(s, c.reason, '\t');
    c.accepted = std::stoi(accepted);
    c.min_rejected = std::stoi(rejected);
    out.push_back(c);
  }
  return out;
}

TEST_F(InProcessFaultTest, EveryMalformedInputGetsAClearErrorAndNothingElseIsLost) {
  startHub(firehub::testing::pluginsDir());
  feed("wx", "weather");
  feed("pol", "police");
  feed("bld", "building");
  feed("hosp", "health");
  feed("iot", "alarm", R"({"listen":"127.0.0.1:0"})");
  const std::string dir = firehub::testing::sourceDir() + "/tests/data/bad-input/";
  auto cases = corpus();
  ASSERT_GE(cases.size(), 15u);
  uint64_t dead_before = hub_->lake().deadLetterCount();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = post("/api/v1/feeds/" + c.feed + "/records", readBinary(dir + c.name), c.type);
    if (c.status != "-") {
      ASSERT_EQ(std::to_string(r.status), c.status) << r.body;
    } else {
      ASSERT_TRUE(r.status == 202 || (r.status >= 400 && r.status < 500))
          << r.status << " " << r.body;
    }
    uint64_t dead_now = hub_->lake().deadLetterCount();
    if (r.status == 202) {
      auto obj = parse(r.body);
      EXPECT_EQ(obj->getValue<int>("accepted"), c.accepted) << r.body;
      EXPECT_GE(obj->getValue<int>("rejected"), c.min_rejected) << r.body;
      EXPECT_EQ(dead_now - dead_before, static_cast<uint64_t>(obj->getValue<int>("rejected")))
          << "every rejected piece is a dead letter";
    } else {
      EXPECT_EQ(dead_now, dead_before) << "a refused body stores nothing";
    }
    if (c.reason != "-") {
      std::string dlq = get("/api/v1/dlq?feed=" + c.feed + "&limit=1000").body;
      EXPECT_TRUE(r.body.find(c.reason) != std::string::npos ||
                  dlq.find(c.reason) != std::string::npos)
          << "expected '" << c.reason << "' in " << r.body;
    }
    EXPECT_EQ(r.body.find("root:x:0:0"), std::string::npos) << "no external entity was read";
    dead_before = dead_now;
  }
  // The good records of the mixed bodies are all there.
  for (const char* key :
       {"weather/weather_station/G1", "weather/weather_station/G2", "weather/weather_station/B1",
        "weather/weather_station/J1", "weather/weather_station/J2", "police/police_incident/N-1",
        "police/police_incident/N-2"}) {
    EXPECT_TRUE(hub_->lake().latest(key).value()) << key;
  }
  auto dlq = get("/api/v1/dlq?limit=1000").body;
  EXPECT_EQ(dlq.find("root:x:0:0"), std::string::npos);

  // Bodies over the limit, types nobody reads, a feed that does not exist.
  EXPECT_EQ(post("/api/v1/feeds/wx/records",
                 std::string(kWeatherHeader) + std::string(2 << 20, 'x'), "text/csv")
                .status,
            413);
  EXPECT_EQ(post("/api/v1/feeds/wx/records", "a,b\n", "text/plain").status, 415);
  EXPECT_EQ(post("/api/v1/feeds/wx/records", "a,b\n", "application/octet-stream").status, 415);
  EXPECT_EQ(post("/api/v1/feeds/nope/records", "a,b\n", "text/csv").status, 404);

  // GB/T 26875 over TCP: garbage and a buffer-sized run without a frame start are dropped as
  // dead letters; the connection and the feed keep working.
  int port = parse(get("/api/v1/feeds/iot").body)->getValue<int>("listen_port");
  std::string garbage = readBinary(dir + "gbt-garbage.gbt26875");
  uint64_t before = hub_->lake().deadLetterCount();
  {
    Poco::Net::StreamSocket socket(
        Poco::Net::SocketAddress("127.0.0.1", static_cast<uint16_t>(port)));
    socket.sendBytes(garbage.data(), static_cast<int>(garbage.size()));
    std::string flood(70 * 1024, 'z');
    socket.sendBytes(flood.data(), static_cast<int>(flood.size()));
  }
  EXPECT_TRUE(
      waitFor([&] { return hub_->lake().deadLetterCount() > before; }, std::chrono::seconds(10)));
  auto iot = get("/api/v1/dlq?feed=iot&limit=1000").body;
  EXPECT_NE(iot.find("\"stage\":\"decode\""), std::string::npos) << iot;
  EXPECT_EQ(post("/api/v1/feeds/wx/records", weatherRow("AFTER"), "text/csv").status, 202);
  EXPECT_EQ(get("/healthz").status, 200);
}

}  // namespace
}  // namespace firehub
