// The hub in-process for the hub_*_test files: real RocksDB in a temp dir, the embedded broker,
// HTTP on port 0, an admin key and a weather feed "wx".
#pragma once

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

// A hub for source tests (Kafka, HTTP poll): its data in `dir`, HTTP on port 0, no plugin
// rescans, the lake without fsync.
inline HubConfig sourceHubConfig(const std::string& dir, bool init) {
  HubConfig c;
  c.init = init;
  c.data_dir = dir;
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.plugin_scan_interval_s = 0;
  c.lake_sync = false;
  return c;
}

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HubConfig c;
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

  // The housing bureau's feed "bld" (made on first use) and a push of `geojson` to it.
  void pushBuildings(const std::string& geojson = fixture("building", "buildings.geojson")) {
    if (get("/api/v1/feeds/bld").status == 404) {
      auto made =
          post("/api/v1/feeds",
               R"({"id":"bld","agency":"housing-bureau","connector":"firehub.connector.building"})",
               "application/json");
      ASSERT_EQ(made.status, 201) << made.body;
    }
    auto pushed = post("/api/v1/feeds/bld/records", geojson, "application/geo+json");
    ASSERT_EQ(pushed.status, 202) << pushed.body;
  }

  TempDir dir_;
  TempDir drops_;  // file_drop.root
  std::unique_ptr<Hub> hub_;
  uint16_t port_ = 0;
  std::string key_;
};

}  // namespace
}  // namespace firehub
