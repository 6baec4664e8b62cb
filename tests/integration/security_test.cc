// What an outside probe broke, kept closed: each test is one finding of the trust review, tried
// the way the probe tried it (a running hub on loopback, real HTTP, real RocksDB, real files).
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "firehub/hub.h"
#include "firehub/net.h"
#include "http_peers.h"
#include "processes.h"
#include "test_support.h"

namespace firehub {
namespace {

namespace fs = std::filesystem;
using firehub::testing::EventReader;
using firehub::testing::http;
using firehub::testing::kWeatherHeader;
using firehub::testing::TempDir;
using firehub::testing::waitFor;
using firehub::testing::WebhookReceiver;

using firehub::testing::fixture;
const auto& parse = firehub::testing::parseObject;

// Sends raw bytes on a new connection, half-closes it, and returns what the hub answered.
std::string rawExchange(uint16_t port, const std::string& bytes) {
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port));
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  socket.shutdownSend();
  std::string out;
  char buf[4096];
  for (;;) {
    int n = 0;
    try {
      n = socket.receiveBytes(buf, sizeof buf);
    } catch (const Poco::Exception&) {
      break;
    }
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A TCP connection to the hub from a chosen loopback address (the kernel answers for all of
// 127.0.0.0/8), standing for another client machine.
class Connection {
 public:
  Connection(const char* from, uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in local{}, remote{};
    local.sin_family = remote.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &local.sin_addr);
    ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    remote.sin_port = htons(port);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0 &&
          ::connect(fd_, reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0;
  }
  Connection(Connection&& o) noexcept : fd_(o.fd_), ok_(o.ok_) { o.fd_ = -1; }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  void send(const std::string& bytes) { (void)!::write(fd_, bytes.data(), bytes.size()); }
  // What the hub sends within 5 s.
  std::string receive() {
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[1024];
    ssize_t n = ::read(fd_, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  int fd_;
  bool ok_ = false;
};

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  // (Re)starts the hub on the same data dir with `tweak` applied to its config.
  void start(const std::function<void(HubConfig&)>& tweak = nullptr) {
    hub_.reset();
    HubConfig c;
    c.init = true;
    c.data_dir = data_;
    c.http_listen = "127.0.0.1:0";
    c.plugins_dir = firehub::testing::pluginsDir();
    c.lake_sync = false;
    c.file_drop_root = drops_.path();
    c.static_dir = static_.path();
    if (tweak) tweak(c);
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hub_ = std::move(hub).value();
    port_ = hub_->httpPort();
    admin_ = firehub::testing::adminKey(data_);
  }

  firehub::testing::Http as(const std::string& key, const std::string& method,
                            const std::string& path, const std::string& body = "",
                            const std::string& type = "application/json") {
    return http("127.0.0.1", port_, method, path, body, body.empty() ? "" : type, key);
  }
  firehub::testing::Http admin(const std::string& method, const std::string& path,
                               const std::string& body = "",
                               const std::string& type = "application/json") {
    return as(admin_, method, path, body, type);
  }
  // A new key; returns {key, id}.
  std::pair<std::string, std::string> key(const std::string& json) {
    auto made = admin("POST", "/api/v1/keys", json);
    EXPECT_EQ(made.status, 201) << made.body;
    auto o = parse(made.body);
    return {o->getValue<std::string>("key"), o->getValue<std::string>("id")};
  }

  TempDir dir_;
  const std::string data_ = dir_.sub("data");
  TempDir drops_;
  TempDir static_;
  std::unique_ptr<Hub> hub_;
  uint16_t port_ = 0;
  std::string admin_;
};

// 1. file_drop pointed at the data dir handed admin.key back as a dead letter, and moved the lake.
TEST_F(SecurityTest, FileDropsStayUnderTheOperatorsRootAndNeverFollowLinks) {
  auto [met, met_id] = key(R"({"role":"agency","agency":"met","domains":["weather"]})");
  auto agency_drop = as(
      met, "POST", "/api/v1/feeds",
      R"({"id":"a","agency":"met","connector":"firehub.connector.weather","file_drop":{"dir":"met"}})");
  EXPECT_EQ(agency_drop.status, 403)
      << "folders are the operators' to choose: " << agency_drop.body;
  for (std::string dir : {data_, data_ + "/lake", std::string("/etc"), std::string("../escape"),
                          fs::path(data_).parent_path().string()}) {
    auto r = admin(
        "POST", "/api/v1/feeds",
        R"({"id":"b","agency":"met","connector":"firehub.connector.weather","file_drop":{"dir":")" +
            dir + R"("}})");
    EXPECT_EQ(r.status, 400) << dir << ": " << r.body;
  }
  ASSERT_TRUE(fs::exists(data_ + "/lake/CURRENT")) << "the lake stays where it is";
  auto ok = admin(
      "POST", "/api/v1/feeds",
      R"({"id":"wxf","agency":"met","connector":"firehub.connector.weather","file_drop":{"dir":"met"}})");
  ASSERT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(parse(ok.body)->getObject("file_drop")->getValue<std::string>("dir"),
            fs::canonical(drops_.path()).string() + "/met");

  // Links in the folder lead to files that are not the agency's: set aside unread.
  const std::string drop = drops_.path() + "/met";
  fs::create_directories(drop);
  fs::create_symlink(data_ + "/admin.key", drop + "/key.csv");
  fs::create_hard_link(data_ + "/admin.key", drop + "/hard.csv");
  ASSERT_TRUE(waitFor(
      [&] { return fs::exists(drop + "/failed/key.csv") && fs::exists(drop + "/failed/hard.csv"); },
      std::chrono::seconds(10)));
  auto letters = admin("GET", "/api/v1/dlq?feed=wxf").body;
  EXPECT_NE(letters.find("symbolic or hard link"), std::string::npos) << letters;
  EXPECT_EQ(letters.find(admin_.substr(16)), std::string::npos)
      << "the admin key never leaves the data dir";
  EXPECT_EQ(firehub::testing::adminKey(data_), admin_);
}

// 1. A lake moved away came back as an empty lake with a new admin key and an "intact" audit.
TEST(SecurityStartTest, AMissingLakeIsAStartErrorUnlessInitIsGiven) {
  TempDir dir;
  HubConfig c;
  c.data_dir = dir.sub("data");
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  auto refused = Hub::start(c);
  ASSERT_FALSE(refused.isOk());
  EXPECT_NE(refused.status().message().find("--init"), std::string::npos)
      << refused.status().message();
  EXPECT_FALSE(fs::exists(dir.sub("data") + "/admin.key"));
  c.init = true;
  {
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.sub("data").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "the data dir is its owner's only";
  fs::rename(dir.sub("data") + "/lake", dir.sub("moved"));
  c.init = false;
  auto gone = Hub::start(c);
  ASSERT_FALSE(gone.isOk());
  EXPECT_NE(gone.status().message().find("no lake"), std::string::npos) << gone.status().message();
  fs::create_directories(dir.sub("data") + "/lake");  // an empty folder is no lake either
  EXPECT_FALSE(Hub::start(c).isOk());
  fs::remove_all(dir.sub("data") + "/lake");
  fs::rename(dir.sub("moved"), dir.sub("data") + "/lake");
  EXPECT_TRUE(Hub::start(c).isOk()) << "the lake back in place starts as it was";
  // A drop root inside the data dir is refused at start.
  c.file_drop_root = dir.sub("data") + "/drops";
  auto inside = Hub::start(c);
  ASSERT_FALSE(inside.isOk());
  EXPECT_NE(inside.status().message().find("file_drop.root"), std::string::npos);
}

// 2. ?bbox=nan,nan,nan,nan passed the range check and tripped an S2 FATAL check.
TEST_F(SecurityTest, NonFiniteAndHugeNumbersInQueriesAreRefusedAndTheHubStaysUp) {
  const std::vector<std::string> boxes = {"nan,nan,nan,nan",
                                          "-nan,0,1,1",
                                          "0,0,inf,1",
                                          "-inf,-inf,inf,inf",
                                          "0,0,1e999,1",
                                          "1,2,3,4,5",
                                          "0x1p+1,0,3,3",
                                          "NaN,1,2,3",
                                          "",
                                          ",,,"};
  const std::vector<std::string> paths = {
      "/api/v1/entities?domain=weather&bbox=", "/api/v1/layers/risk?bbox=",
      "/api/v1/layers/hydrants?bbox=",         "/api/v1/layers/warnings?bbox=",
      "/ogc/collections/risk/items?bbox=",     "/ogc/collections/entities-weather/items?bbox="};
  for (const auto& path : paths) {
    for (const auto& box : boxes) {
      auto r =
          http("127.0.0.1", port_, "GET", path + box);  // no key: the anonymous loopback reader
      if (box == "0x1p+1,0,3,3") {  // a hexadecimal float is a finite number: answered either way
        EXPECT_TRUE(r.status == 200 || r.status == 400) << path << box;
        continue;
      }
      EXPECT_EQ(r.status, 400) << path << box << ": " << r.body;
    }
  }
  for (std::string n : {"nan", "inf", "-1", "1e999", "99999999999999999999", "0x10"}) {
    EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/entities?domain=weather&limit=" + n).status,
              400)
        << n;
    EXPECT_EQ(http("127.0.0.1", port_, "GET", "/ogc/collections/risk/items?limit=" + n).status, 400)
        << n;
  }
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/layers/risk/cells/X").status, 400);
  // Numbers in bodies: a subscription's area.
  for (std::string area : {R"("bbox":[1e999,0,1,1])", R"("bbox":[-1e999,-1e999,1e999,1e999])",
                           R"("polygon":[[1e999,0],[1,1],[0,1]])", R"("bbox":[200,0,201,1])"}) {
    auto r = admin("POST", "/api/v1/subscriptions",
                   R"({"topic":"firehub.v1.water","filter":{)" + area + "}}");
    EXPECT_EQ(r.status, 400) << area << ": " << r.body;
  }
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/healthz").status, 200) << "the hub is still up";
}

// 3. The water bureau closed a police incident; an agency may register any connector.
TEST_F(SecurityTest, AgencyKeysWriteOnlyTheirDomainsAndTheirOwnEntities) {
  auto [bare, bare_id] = key(R"({"role":"agency","agency":"water-bureau"})");
  auto none = as(bare, "POST", "/api/v1/feeds",
                 R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})");
  EXPECT_EQ(none.status, 403) << "a key with no domains registers nothing: " << none.body;
  EXPECT_EQ(admin("POST", "/api/v1/keys", R"({"role":"agency","agency":"x","domains":["nowhere"]})")
                .status,
            400);
  EXPECT_EQ(admin("POST", "/api/v1/keys", R"({"role":"viewer","domains":["water"]})").status, 400);
  auto patched = admin("PATCH", "/api/v1/keys/" + bare_id, R"({"domains":["water"]})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  const std::string& water = bare;
  EXPECT_EQ(as(water, "POST", "/api/v1/feeds",
               R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})")
                .status,
            201);
  auto police =
      as(water, "POST", "/api/v1/feeds",
         R"({"id":"fake-cad","agency":"water-bureau","connector":"firehub.connector.police"})");
  EXPECT_EQ(police.status, 403) << police.body;
  EXPECT_NE(police.body.find("domain 'police'"), std::string::npos) << police.body;
  auto listen = as(
      water, "POST", "/api/v1/feeds",
      R"({"id":"hyd2","agency":"water-bureau","connector":"firehub.connector.water","config":{"listen":"0.0.0.0:9999"}})");
  EXPECT_NE(listen.status, 201) << "agencies do not choose the hub's listen addresses: "
                                << listen.body;

  // Two agencies of one domain: the second may not move the first one's hydrant.
  auto [company, company_id] =
      key(R"({"role":"agency","agency":"water-company","domains":["water"]})");
  ASSERT_EQ(as(company, "POST", "/api/v1/feeds",
               R"({"id":"co","agency":"water-company","connector":"firehub.connector.water"})")
                .status,
            201);
  const std::string header = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
  ASSERT_EQ(as(water, "POST", "/api/v1/feeds/hyd/records",
               header + "SY-H-1,hydrant,123.44,41.81,in_service,0.3,2026-11-22T10:00:00+08:00\n",
               "text/csv")
                .status,
            202);
  auto hijack = as(company, "POST", "/api/v1/feeds/co/records",
                   header +
                       "SY-H-1,hydrant,123.44,41.81,out_of_service,,2026-11-22T11:00:00+08:00\n"
                       "SY-H-2,hydrant,123.45,41.81,in_service,0.3,2026-11-22T11:00:00+08:00\n",
                   "text/csv");
  ASSERT_EQ(hijack.status, 202) << hijack.body;
  EXPECT_EQ(parse(hijack.body)->getValue<int>("accepted"), 1) << hijack.body;
  EXPECT_EQ(parse(hijack.body)->getValue<int>("rejected"), 1) << hijack.body;
  EXPECT_NE(hijack.body.find("another agency"), std::string::npos) << hijack.body;
  auto latest = hub_->lake().latest("water/water_source/SY-H-1");
  ASSERT_TRUE(latest.isOk() && latest.value());
  EXPECT_EQ(latest.value()->agency(), "water-bureau");
  EXPECT_EQ(latest.value()->water_source().status(), firehub::v1::WaterSource::STATUS_IN_SERVICE);
  auto letters = as(company, "GET", "/api/v1/dlq?feed=co").body;
  EXPECT_NE(letters.find("belongs to agency 'water-bureau'"), std::string::npos) << letters;
  // The owner moves its own entity on.
  ASSERT_EQ(as(water, "POST", "/api/v1/feeds/hyd/records",
               header + "SY-H-1,hydrant,123.44,41.81,out_of_service,,2026-11-22T12:00:00+08:00\n",
               "text/csv")
                .status,
            202);
  EXPECT_EQ(hub_->lake().latest("water/water_source/SY-H-1").value()->water_source().status(),
            firehub::v1::WaterSource::STATUS_OUT_OF_SERVICE);
  // A key that loses the domain may no longer push.
  ASSERT_EQ(admin("PATCH", "/api/v1/keys/" + company_id, R"({"domains":[]})").status, 200);
  EXPECT_EQ(as(company, "POST", "/api/v1/feeds/co/records", header, "text/csv").status, 403);
}

// 4. Open streams and webhooks went on after their key or grant was revoked, across restarts.
TEST_F(SecurityTest, RevokingAKeyOrGrantStopsEveryDeliveryWithinSeconds) {
  start([](HubConfig& c) { c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()}; });
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})")
                .status,
            201);
  auto [sub, sub_id] = key(R"({"role":"subscriber"})");
  ASSERT_EQ(admin("POST", "/api/v1/grants",
                  R"({"key_id":")" + sub_id + R"(","topic":"firehub.v1.water"})")
                .status,
            201);
  auto sse = as(sub, "POST", "/api/v1/subscriptions", R"({"topic":"firehub.v1.water"})");
  ASSERT_EQ(sse.status, 201) << sse.body;
  const std::string sse_id = parse(sse.body)->getValue<std::string>("id");
  WebhookReceiver hook(0);
  auto webhook =
      as(sub, "POST", "/api/v1/subscriptions",
         R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
             std::to_string(hook.port()) + R"(/in","secret":"a-long-shared-secret"}})");
  ASSERT_EQ(webhook.status, 201) << webhook.body;
  const std::string header = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
  auto push = [&](int i) {
    char line[128];
    std::snprintf(line, sizeof line,
                  "SY-H-%d,hydrant,123.44,41.81,in_service,0.3,2026-11-22T10:%02d:00+08:00\n", i,
                  i);
    ASSERT_EQ(admin("POST", "/api/v1/feeds/hyd/records", header + line, "text/csv").status, 202);
  };
  {
    // From the start of the log (a stream without Last-Event-ID starts at its head whenever it
    // connects, which may be after the push below).
    EventReader open(port_, "/api/v1/subscriptions/" + sse_id + "/events",
                     [](const std::string&) { return false; },
                     {{"Authorization", "Bearer " + sub}, {"Last-Event-ID", "0"}});
    EventReader map(port_, "/api/v1/layers/risk/stream", [](const std::string&) { return false; },
                    {{"Authorization", "Bearer " + sub}});
    push(1);
    ASSERT_TRUE(waitFor([&] { return open.text().find("SY-H-1") != std::string::npos; }))
        << open.text();
    ASSERT_TRUE(waitFor([&] { return hook.received().size() == 1; }));
    // The grant goes: the subscription's stream closes and the webhook holds.
    ASSERT_EQ(admin("DELETE", "/api/v1/grants/" + sub_id + "/firehub.v1.water").status, 200);
    EXPECT_TRUE(waitFor([&] { return open.finished(); }, std::chrono::seconds(5)))
        << "the stream closed";
    push(2);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(hook.received().size(), 1u) << "no delivery without the grant";
    auto reopened = as(sub, "GET", "/api/v1/subscriptions/" + sse_id + "/events");
    EXPECT_EQ(reopened.status, 403) << reopened.body;
    EXPECT_FALSE(map.finished()) << "the map's stream needs no grant";
    // The key goes: every stream it opened closes.
    ASSERT_EQ(admin("DELETE", "/api/v1/keys/" + sub_id).status, 200);
    EXPECT_TRUE(waitFor([&] { return map.finished(); }, std::chrono::seconds(5)));
  }
  // Across a restart: still held; the grant back (on a new key the operator trusts) is not the old
  // key's, so nothing flows to the revoked key.
  start([](HubConfig& c) { c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()}; });
  ASSERT_EQ(admin("POST", "/api/v1/grants",
                  R"({"key_id":")" + sub_id + R"(","topic":"firehub.v1.water"})")
                .status,
            201);
  push(3);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(hook.received().size(), 1u) << "a revoked key's webhook stays held";
}

// 5. A webhook pointed at a co-located broker's control endpoint took every broker down.
TEST_F(SecurityTest, WebhooksMayNotReachInternalAddressesUnlessAllowListed) {
  auto [sub, sub_id] = key(R"({"role":"subscriber"})");
  ASSERT_EQ(admin("POST", "/api/v1/grants",
                  R"({"key_id":")" + sub_id + R"(","topic":"firehub.v1.water"})")
                .status,
            201);
  auto hook = [&](const std::string& url) {
    return as(sub, "POST", "/api/v1/subscriptions",
              R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":")" + url +
                  R"(","secret":"a-long-shared-secret"}})");
  };
  for (std::string url :
       {"http://127.0.0.1:9/brokers/all/down", "http://localhost:9/", "http://[::1]:9/",
        "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://192.168.1.1/",
        "http://0.0.0.0:9/", "http://[::ffff:127.0.0.1]:9/", "https://127.0.0.2/"}) {
    auto r = hook(url);
    EXPECT_EQ(r.status, 403) << url << ": " << r.body;
  }
  EXPECT_EQ(hook("http://user:pass@example.org/").status, 400);
  EXPECT_EQ(hook("ftp://example.org/").status, 400);
  // The policy itself: the allow-list opens exactly what it names.
  net::OutboundPolicy open({{net::parseNetwork("127.0.0.1/32").value()}, ""});
  EXPECT_EQ(open.refusal(Poco::Net::IPAddress("127.0.0.1")), "");
  EXPECT_NE(open.refusal(Poco::Net::IPAddress("127.0.0.2")), "");
  EXPECT_NE(open.refusal(Poco::Net::IPAddress("::ffff:10.0.0.1")), "");
  EXPECT_EQ(open.refusal(Poco::Net::IPAddress("93.184.216.34")), "");
  EXPECT_FALSE(net::parseAllowList("10.0.0.0/33").isOk());
}

// 6. 48 idle or slow connections (no key needed) took the API down; one agency's flood slowed
// every other one.
TEST_F(SecurityTest, IdleSlowAndFloodingClientsDoNotStarveOthers) {
  start([](HubConfig& c) {
    c.http_limits.threads = 64;
    c.http_limits.max_connections_per_client = 16;
    c.http_limits.pushes_per_feed = 2;
  });
  // 40 idle connections and 40 sending half a request, from two other loopback addresses: each
  // address holds 16 threads at most, the rest is refused.
  std::vector<Connection> idle;
  for (int i = 0; i < 80; ++i) {
    idle.emplace_back(i < 40 ? "127.0.0.2" : "127.0.0.3", port_);
    ASSERT_TRUE(idle.back().ok());
    if (i >= 40) idle.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(http("127.0.0.1", port_, "GET", "/healthz").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000))
        << "healthz stays quick";
  }
  // Past its cap an address gets a 503 saying why.
  Connection extra("127.0.0.2", port_);
  EXPECT_NE(extra.receive().find("503"), std::string::npos);
  idle.clear();

  // A flood of pushes to one feed: past its share they are refused at once with Retry-After,
  // and another agency's push goes through.
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"flood","agency":"met","connector":"firehub.connector.weather"})")
                .status,
            201);
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})")
                .status,
            201);
  std::string big = kWeatherHeader;
  for (int i = 0; i < 3000; ++i) {
    big += "F" + std::to_string(i) + ",123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n";
  }
  std::atomic<int> busy{0}, done{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 12; ++i) {
    flood.emplace_back([&, i] {
      auto r = admin("POST", "/api/v1/feeds/flood/records", big, "text/csv");
      if (r.status == 503 && !r.headers["Retry-After"].empty() &&
          r.body.find("pushes in progress") != std::string::npos) {
        ++busy;
      }
      ++done;
    });
  }
  auto t0 = std::chrono::steady_clock::now();
  auto other = admin("POST", "/api/v1/feeds/hyd/records",
                     "source_id,kind,lon,lat,status,pressure_mpa,updated_at\nSY-H-1,hydrant,123.44,"
                     "41.81,in_service,0.3,2026-11-22T10:00:00+08:00\n",
                     "text/csv");
  EXPECT_EQ(other.status, 202) << other.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  for (auto& t : flood) t.join();
  EXPECT_GT(busy.load(), 0) << "past the feed's share pushes are refused, not queued";
}

// 7. %252f..%252f and %2500 read files outside http.static_dir (admin.key among them).
TEST_F(SecurityTest, StaticFilesAreDecodedOnceAndServedOnlyFromTheirRoot) {
  fs::create_directories(static_.path() + "/sub");
  std::ofstream(static_.path() + "/index.html") << "<html>map</html>";
  std::ofstream(static_.path() + "/sub/app.js") << "ok();";
  std::ofstream(dir_.sub("secret.json")) << "{\"secret\":1}";
  fs::create_symlink(dir_.sub("secret.json"), static_.path() + "/sub/link.json");
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/sub/app.js").status, 200);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/").body, "<html>map</html>");
  const std::string up =
      fs::relative(dir_.path(), static_.path() + "/sub").string();  // "../../<dir>"
  for (std::string path :
       {"/sub/%252f..%252f..%252fsecret.json", "/sub/..%2f..%2fsecret.json",
        "/sub/%2e%2e/%2e%2e/secret.json", "/sub/..%5c..%5csecret.json", "/sub/app.js%2500.json",
        "/sub/app.js%00.json", "/sub/link.json", "/%2fetc%2fpasswd%00.json", "/sub/%25",
        "/sub/%zz.js", "/..%2fdata%2fadmin.key%00.js"}) {
    auto r = http("127.0.0.1", port_, "GET", path);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << path << " -> " << r.status;
    EXPECT_EQ(r.body.find("\"secret\":1"), std::string::npos) << path << ": " << r.body;
    EXPECT_EQ(r.body.find(admin_.substr(16)), std::string::npos) << path;
  }
  (void)up;
}

// 8. A filter on a restricted field answered yes/no about reporters' names and phones.
TEST_F(SecurityTest, FiltersMayNameRestrictedFieldsOnlyWithTheRestrictedGrant) {
  auto [plain, plain_id] = key(R"({"role":"subscriber"})");
  auto [cleared, cleared_id] = key(R"({"role":"subscriber","restricted":true})");
  for (const auto& id : {plain_id, cleared_id}) {
    ASSERT_EQ(
        admin("POST", "/api/v1/grants", R"({"key_id":")" + id + R"(","topic":"firehub.v1.police"})")
            .status,
        201);
  }
  const std::string oracle =
      R"({"topic":"firehub.v1.police","filter":{"where":[{"field":"police_incident.reporter_name","op":"eq","value":"张伟"}]}})";
  auto refused = as(plain, "POST", "/api/v1/subscriptions", oracle);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("restricted"), std::string::npos);
  EXPECT_EQ(as(cleared, "POST", "/api/v1/subscriptions", oracle).status, 201);
  std::string many =
      R"({"topic":"firehub.v1.police","filter":{"where":[{"field":"entity_id","op":"in","values":[)";
  for (int i = 0; i < 300; ++i)
    many += (i ? "," : "") + std::string("\"x") + std::to_string(i) + "\"";
  EXPECT_EQ(as(cleared, "POST", "/api/v1/subscriptions", many + "]}]}}").status, 400)
      << "'in' lists are bounded";
}

// 9. eq/ne/gt/... subscriptions vanished on every restart, with only a log line.
TEST_F(SecurityTest, SubscriptionsSurviveRestartsAndWhatCannotLoadFailsReadiness) {
  auto made = admin(
      "POST", "/api/v1/subscriptions",
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"eq","value":"out_of_service"},)"
      R"({"field":"water_source.pressure_mpa","op":"lt","value":0.1},{"field":"agency","op":"in","values":["water-bureau"]}]}})");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string id = parse(made.body)->getValue<std::string>("id");
  EXPECT_NE(made.body.find(R"("value":"out_of_service")"), std::string::npos) << made.body;
  EXPECT_EQ(
      admin(
          "POST", "/api/v1/subscriptions",
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.pressure_mpa","op":"gt","value":"nan"}]}})")
          .status,
      400);
  start();
  auto again = admin("GET", "/api/v1/subscriptions/" + id);
  ASSERT_EQ(again.status, 200) << "kept across the restart: " << again.body;
  EXPECT_EQ(again.body, admin("GET", "/api/v1/subscriptions/" + id).body);
  EXPECT_NE(again.body.find(R"("op":"lt","value":"0.1")"), std::string::npos) << again.body;
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/readyz").status, 200);
  // A stored definition that does not load is loud: /readyz 503 naming it, and a metric.
  ASSERT_TRUE(hub_->lake().putMeta("subs/sbroken", R"({"topic":"firehub.v1.nowhere"})").isOk());
  start();
  auto ready = http("127.0.0.1", port_, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("subscription sbroken"), std::string::npos) << ready.body;
  EXPECT_NE(http("127.0.0.1", port_, "GET", "/metrics").body.find("firehub_load_failures 1"),
            std::string::npos);
  EXPECT_EQ(admin("GET", "/api/v1/subscriptions/" + id).status, 200) << "the others still load";
}

// 10. A second hub on the same port started "fine" and the kernel split the traffic.
TEST_F(SecurityTest, ATakenPortIsAStartErrorForTheApiAndForDeviceListeners) {
  TempDir other;
  HubConfig c;
  c.init = true;
  c.data_dir = other.sub("data");
  c.http_listen = "127.0.0.1:" + std::to_string(port_);
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  auto second = Hub::start(c);
  ASSERT_FALSE(second.isOk()) << "two hubs may not share 127.0.0.1:" << port_;
  EXPECT_NE(second.status().message().find("cannot listen"), std::string::npos)
      << second.status().message();
  // A GB/T listener on a taken port: the feed reads failed and /readyz names it.
  auto r = admin(
      "POST", "/api/v1/feeds",
      R"({"id":"gbt","agency":"fire-iot","connector":"firehub.connector.alarm","config":{"listen":"127.0.0.1:)" +
          std::to_string(port_) + R"("}})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto feed = parse(admin("GET", "/api/v1/feeds/gbt").body);
  EXPECT_EQ(feed->getValue<std::string>("state"), "failed");
  auto ready = http("127.0.0.1", port_, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("cannot listen"), std::string::npos) << ready.body;
}

// 11. A body shorter than its Content-Length, or a broken chunked body, was stored and got 202.
TEST_F(SecurityTest, TruncatedBodiesAreRefusedAndNothingOfThemIsStored) {
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})")
                .status,
            201);
  const std::string body =
      std::string(kWeatherHeader) + "T1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n";
  const std::string head =
      "POST /api/v1/feeds/wx/records HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + admin_ +
      "\r\nContent-Type: text/csv\r\n";
  auto shortBody = rawExchange(
      port_, head + "Content-Length: " + std::to_string(body.size() + 500) + "\r\n\r\n" + body);
  EXPECT_NE(shortBody.find("400"), std::string::npos) << shortBody;
  EXPECT_NE(shortBody.find("Content-Length"), std::string::npos) << shortBody;
  auto chunk = [](const std::string& s) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", s.size());
    return size + s + "\r\n";
  };
  auto cut =
      rawExchange(port_, head + "Transfer-Encoding: chunked\r\n\r\n" + chunk(body).substr(0, 40));
  EXPECT_NE(cut.find("400"), std::string::npos) << cut;
  auto unfinished = rawExchange(port_, head + "Transfer-Encoding: chunked\r\n\r\n" + chunk(body));
  EXPECT_NE(unfinished.find("400"), std::string::npos) << "no last chunk: " << unfinished;
  EXPECT_FALSE(hub_->lake().latest("weather/weather_station/T1").value())
      << "nothing of them stored";
  auto whole =
      rawExchange(port_, head + "Transfer-Encoding: chunked\r\n\r\n" + chunk(body.substr(0, 30)) +
                             chunk(body.substr(30)) + "0\r\n\r\n");
  EXPECT_NE(whole.find("202"), std::string::npos) << whole;
  EXPECT_TRUE(hub_->lake().latest("weather/weather_station/T1").value());
}

// 12. CAP drafts went out as Actual/Public, from the demo too.
TEST_F(SecurityTest, MachineWarningsAreDraftsUntilAnOperatorIssuesThem) {
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"bld","agency":"housing","connector":"firehub.connector.building"})")
                .status,
            201);
  ASSERT_EQ(admin("POST", "/api/v1/feeds/bld/records", fixture("building", "buildings.geojson"),
                  "application/geo+json")
                .status,
            202);
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})")
                .status,
            201);
  ASSERT_EQ(
      admin(
          "POST", "/api/v1/feeds/iot/records",
          R"({"event_id":"T-1","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":3,"description":"烟感火警","time":"2026-11-22T09:20:00+08:00"})"
          "\n",
          "application/x-ndjson")
          .status,
      202);
  std::string draft;
  ASSERT_TRUE(waitFor([&] {
    auto list = parse(admin("GET", "/api/v1/warnings").body)->getArray("warnings");
    if (list->size() == 0) return false;
    draft = list->getObject(0)->getValue<std::string>("identifier");
    return true;
  }));
  auto cap = admin("GET", "/api/v1/warnings/" + draft).body;
  EXPECT_NE(cap.find("<status>Draft</status>"), std::string::npos) << cap;
  EXPECT_EQ(cap.find("<status>Actual</status>"), std::string::npos);
  auto [viewer, viewer_id] = key(R"({"role":"viewer"})");
  EXPECT_EQ(as(viewer, "POST", "/api/v1/warnings/" + draft + "/issue", "{}").status, 403);
  EXPECT_EQ(admin("POST", "/api/v1/warnings/FH-nope-1/issue", "{}").status, 404);
  auto issued = admin("POST", "/api/v1/warnings/" + draft + "/issue", "{}");
  ASSERT_EQ(issued.status, 201) << issued.body;
  const std::string actual = parse(issued.body)->getValue<std::string>("id");
  auto doc = admin("GET", "/api/v1/warnings/" + actual).body;
  EXPECT_NE(doc.find("<status>Actual</status>"), std::string::npos) << doc;
  EXPECT_NE(doc.find("<references>"), std::string::npos);
  EXPECT_NE(doc.find("," + draft + ","), std::string::npos) << "references the draft: " << doc;
  EXPECT_EQ(admin("POST", "/api/v1/warnings/" + draft + "/issue", "{}").status, 409)
      << "issued once";
  bool audited = false;
  auto audit = parse(admin("GET", "/api/v1/audit").body)->getArray("entries");
  for (size_t i = 0; i < audit->size(); ++i) {
    auto e = audit->getObject(i);
    audited |= e->getValue<std::string>("action").find("/issue") != std::string::npos &&
               e->getValue<int>("status") == 201;
  }
  EXPECT_TRUE(audited);
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto messages = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.warnings", 2);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[1].value.find("<status>Actual</status>"), std::string::npos);
  // The setting refuses Actual for machine drafts.
  EXPECT_FALSE(fusion::riskConfigFrom({{"warnings.status", "Actual"}}).isOk());
}

}  // namespace
}  // namespace firehub

namespace firehub {
namespace {

// Medium: a reverse proxy on the machine made every remote user the anonymous loopback reader; a
// page of another site resolving to 127.0.0.1 read as that reader too.
TEST_F(SecurityTest, OnlyReadersOnThisMachineAreAnonymousNotWhatAProxyForwards) {
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds").status, 200);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "",
                 {{"X-Forwarded-For", "203.0.113.5"}})
                .status,
            401);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "",
                 {{"Forwarded", "for=203.0.113.5"}})
                .status,
            401);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "", {{"Host", "evil.example"}})
                .status,
            401);
  EXPECT_EQ(
      http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "", {{"Host", "localhost:8080"}})
          .status,
      200);
  EXPECT_EQ(
      http("127.0.0.1", port_, "GET", "/healthz", "", "", "", {{"Host", "evil.example"}}).status,
      200)
      << "probes answer anyone";
  // Behind a trusted proxy the forwarded address decides.
  start([](HubConfig& c) {
    c.http_limits.trusted_proxies = {net::parseNetwork("127.0.0.1").value()};
  });
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "",
                 {{"X-Forwarded-For", "203.0.113.5"}})
                .status,
            401);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "",
                 {{"X-Forwarded-For", "203.0.113.5, 127.0.0.1"}})
                .status,
            200);
}

// Medium: key-less requests filled the audit log (42 MiB in 4 s).
TEST_F(SecurityTest, KeylessWritesCannotFloodTheAuditLog) {
  const std::string long_path = "/api/v1/feeds/" + std::string(5000, 'x') + "/records";
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(http("127.0.0.1", port_, "POST", long_path, "a", "text/csv").status, 401);
  }
  auto entries = parse(admin("GET", "/api/v1/audit").body)->getArray("entries");
  EXPECT_LE(entries->size(), 130u) << "at most 120 key-less entries a minute";
  size_t longest = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    longest = std::max(longest, entries->getObject(i)->getValue<std::string>("action").size());
  }
  EXPECT_LT(longest, 400u) << "each entry bounded";
  EXPECT_TRUE(parse(admin("GET", "/api/v1/audit/verify").body)->getValue<bool>("intact"));
}

// Medium: raw police bytes in dead letters for operators without the grant, and for whoever
// registered a deleted feed's id again.
TEST_F(SecurityTest, DeadLettersWithholdRestrictedBytesAndStayWithTheirAgency) {
  ASSERT_EQ(
      admin("POST", "/api/v1/feeds",
            R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police"})")
          .status,
      201);
  const std::string bad =
      R"([{"incident_id":"X-1","type":"fire_report","status":"open","reported_at":"2026-11-22T08:12:00+08:00","lon":"east","lat":41.8,"reporter_name":"张伟","reporter_phone":"13800000001"}])";
  auto pushed = admin("POST", "/api/v1/feeds/cad/records", bad);
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  ASSERT_GE(parse(pushed.body)->getValue<int>("rejected"), 1) << pushed.body;
  auto [op, op_id] = key(R"({"role":"operator"})");
  auto seen = as(op, "GET", "/api/v1/dlq?feed=cad").body;
  EXPECT_EQ(seen.find("13800000001"), std::string::npos) << seen;
  EXPECT_NE(seen.find("raw_withheld"), std::string::npos) << seen;
  EXPECT_NE(admin("GET", "/api/v1/dlq?feed=cad").body.find("13800000001"), std::string::npos)
      << "the admin has the grant";
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto topic = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.dlq", 1);
  ASSERT_EQ(topic.size(), 1u);
  EXPECT_EQ(topic[0].value.find("13800000001"), std::string::npos) << topic[0].value;
  // The feed is deleted and its id registered by another agency: the old dead letters stay hidden.
  ASSERT_EQ(admin("DELETE", "/api/v1/feeds/cad").status, 200);
  auto [other, other_id] = key(R"({"role":"agency","agency":"traffic","domains":["police"]})");
  ASSERT_EQ(as(other, "POST", "/api/v1/feeds",
               R"({"id":"cad","agency":"traffic","connector":"firehub.connector.police"})")
                .status,
            201);
  auto theirs = parse(as(other, "GET", "/api/v1/dlq?feed=cad").body)->getArray("dead_letters");
  EXPECT_EQ(theirs->size(), 0u);
}

// Medium: one never-answering webhook stalled every other subscriber's deliveries.
TEST_F(SecurityTest, AWebhookThatNeverAnswersHoldsOnlyItsOwnSubscription) {
  start([](HubConfig& c) { c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()}; });
  Poco::Net::ServerSocket silent(
      Poco::Net::SocketAddress("127.0.0.1", 0));  // accepts, never answers
  WebhookReceiver fine(0);
  ASSERT_EQ(admin("POST", "/api/v1/feeds",
                  R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})")
                .status,
            201);
  for (uint16_t port : {silent.address().port(), fine.port()}) {
    auto r = admin(
        "POST", "/api/v1/subscriptions",
        R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
            std::to_string(port) + R"(/","secret":"a-long-shared-secret"}})");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  ASSERT_EQ(admin("POST", "/api/v1/feeds/hyd/records",
                  "source_id,kind,lon,lat,status,pressure_mpa,updated_at\nSY-H-1,hydrant,123.44,41."
                  "81,in_service,0.3,2026-11-22T10:00:00+08:00\n",
                  "text/csv")
                .status,
            202);
  EXPECT_TRUE(waitFor([&] { return fine.received().size() == 1; }, std::chrono::seconds(5)))
      << "delivered while the other receiver hangs";
}

}  // namespace
}  // namespace firehub
