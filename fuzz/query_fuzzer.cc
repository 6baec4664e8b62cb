// libFuzzer target for the query parameters of the GET routes: a hub runs in this process (real
// RocksDB in a temporary directory, HTTP on a loopback port, no Kafka) with a little data, and
// each input is one GET to it. The first byte picks the route (and, for routes with a name in
// the path, the name comes from the input too); the rest is the query string, percent-encoded
// where a request line needs it. A crash of the process (an assertion a request reached) or an
// answer of 500 (an exception the API did not turn into a 4xx) is a finding.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "firehub/hub.h"
#include "firehub/log.h"

namespace {

// Never destroyed: the process ends with the hub running (an exit handler closing the lake would
// run after RocksDB's own static objects are gone).
firehub::Hub* hub = nullptr;
Poco::Net::HTTPClientSession* session = nullptr;
std::string key;

constexpr const char* kRoutes[] = {"/api/v1/entities?",
                                   "/api/v1/layers/risk?",
                                   "/api/v1/layers/hydrants?",
                                   "/api/v1/layers/warnings?",
                                   "/api/v1/layers/fwi?",
                                   "/api/v1/layers/response?",
                                   "/api/v1/layers/risk/cells/",
                                   "/ogc/collections/risk/items?",
                                   "/ogc/collections/entities-weather/items?",
                                   "/ogc/collections/hydrants/items?",
                                   "/api/v1/records/",
                                   "/api/v1/dlq?",
                                   "/api/v1/dlq/",
                                   "/api/v1/warnings?",
                                   "/api/v1/warnings/",
                                   "/api/v1/feeds/",
                                   "/api/v1/audit?",
                                   "/api/v1/subscriptions/",
                                   "/ogc/collections/",
                                   "/api/v1/catalog?",
                                   "/"};

std::string encode(const uint8_t* data, size_t size) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    unsigned char c = data[i];
    if (std::isalnum(c) ||
        std::string_view("=&,.-_%+:;").find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

int get(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      Poco::Net::HTTPRequest req("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
      req.set("Authorization", "Bearer " + key);
      session->sendRequest(req);
      Poco::Net::HTTPResponse resp;
      std::istream& in = session->receiveResponse(resp);
      std::ostringstream sink;
      Poco::StreamCopier::copyStream(in, sink);
      return static_cast<int>(resp.getStatus());
    } catch (const Poco::Exception&) {
      session->reset();  // the hub closed a kept-alive connection: once more on a new one
    }
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  firehub::log::setLevel(firehub::log::Level::kError);
  char dir[] = "/tmp/firehub-query-fuzz-XXXXXX";
  if (!mkdtemp(dir)) std::abort();
  firehub::HubConfig c;
  c.init = true;
  c.data_dir = dir;
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir =
      std::getenv("FIREHUB_PLUGINS_DIR") ? std::getenv("FIREHUB_PLUGINS_DIR") : FIREHUB_PLUGINS_DIR;
  c.lake_sync = false;
  c.publish = false;
  auto started = firehub::Hub::start(c);
  if (!started.isOk()) std::abort();
  hub = std::move(started).value().release();
  key = hub->adminKey();
  session = new Poco::Net::HTTPClientSession("127.0.0.1", hub->httpPort());
  session->setKeepAlive(true);
  session->setTimeout(Poco::Timespan(30, 0));
  // A little data, so reads walk something.
  firehub::pipeline::IngestRequest in;
  (void)hub->feeds().create({"wx", "met", "firehub.connector.weather"});
  in.feed_id = "wx";
  in.content_type = "text/csv";
  in.body =
      "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n"
      "F1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n"
      "F2,123.50,41.90,2026-11-22T08:00:00+08:00,2.0,50,10,,0\n";
  (void)hub->pipeline().ingest(in);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string route = kRoutes[data[0] % (sizeof kRoutes / sizeof kRoutes[0])];
  int status = get(route + encode(data + 1, size - 1));
  if (status == 0 || status == 500) __builtin_trap();
  return 0;
}
