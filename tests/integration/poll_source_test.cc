// Feeds that poll an agency's HTTP API, served here on loopback. Checked: pages followed by the
// Link header, the feed's headers sent and never shown back, the ETag honoured (a 304 stores
// nothing); cursor pages in a JSON envelope in GBK; a 500 shown in the feed's state and then
// recovered from; an answer that is an error said in a 200 kept as a dead letter; and a restart
// that goes on at the stored cursor, so no page is skipped or read twice.
#include <Poco/Net/HTTPServerResponse.h>

#include "firehub/pipeline.h"
#include "hub_fixture.h"

namespace firehub {
namespace {

using firehub::testing::AgencyApi;

std::string observation(const std::string& id, int i, const std::string& name = "") {
  char line[320];
  std::snprintf(line, sizeof line,
                "{\"station_id\":\"%s\",\"lon\":%.4f,\"lat\":41.8,\"time\":"
                "\"2026-12-07T08:00:00+08:00\",\"temp_c\":3.5,\"rh_pct\":40,\"wind_kmh\":12,"
                "\"wind_dir_deg\":270,\"precip_mm\":0%s}",
                id.c_str(), 123.3 + i * 0.001,
                name.empty() ? "" : (",\"station_name\":\"" + name + "\"").c_str());
  return line;
}

class PollSourceTest : public ::testing::Test {
 protected:
  void startHub(bool init) {
    HubConfig c = sourceHubConfig(dir_.path(), init);
    c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()};  // the agency's API
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hub_ = std::move(hub).value();
    key_ = firehub::testing::adminKey(dir_.path());
  }
  firehub::testing::Http call(const std::string& method, const std::string& path,
                              const std::string& body = "", const std::string& type = "") {
    return http("127.0.0.1", hub_->httpPort(), method, path, body, type, key_);
  }
  size_t stations() {
    auto r = call("GET", "/api/v1/entities?domain=weather&limit=1");
    return r.status == 200 ? parse(r.body)->getValue<size_t>("numberMatched") : 0;
  }
  Poco::JSON::Object::Ptr pollState(const std::string& feed) {
    auto r = call("GET", "/api/v1/feeds/" + feed);
    if (r.status != 200) return nullptr;
    return parse(r.body)->getObject("poll_state");
  }

  TempDir dir_;
  std::unique_ptr<Hub> hub_;
  std::string key_;
};

TEST_F(PollSourceTest, LinkPagesSecretHeadersAndETag) {
  std::atomic<int> not_modified{0};
  AgencyApi api([&](const AgencyApi::Request& r, Poco::Net::HTTPServerResponse& resp) {
    auto header = [&](const char* k) {
      auto it = r.headers.find(k);
      return it == r.headers.end() ? std::string() : it->second;
    };
    if (header("Authorization") != "Bearer s3cret") {
      resp.setStatus(Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED);
      resp.send() << "no key";
      return;
    }
    const int page = r.uri.find("page=3") != std::string::npos   ? 3
                     : r.uri.find("page=2") != std::string::npos ? 2
                                                                 : 1;
    if (page == 1 && header("If-None-Match") == "\"v1\"") {
      ++not_modified;
      resp.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_MODIFIED);
      resp.setContentLength(0);
      resp.send();
      return;
    }
    if (page == 1) resp.set("ETag", "\"v1\"");
    if (page < 3)
      resp.set("Link", "</v1/obs?page=" + std::to_string(page + 1) +
                           ">; rel=\"next\", </v1/obs?page=1>; rel=\"first\"");
    resp.setContentType("application/x-ndjson");
    resp.send() << observation("L" + std::to_string(page) + "a", page) << "\n"
                << observation("L" + std::to_string(page) + "b", page + 10) << "\n";
  });
  ASSERT_NO_FATAL_FAILURE(startHub(true));
  auto made = call("POST", "/api/v1/feeds",
                   R"({"id":"metp","agency":"met","connector":"firehub.connector.weather",)"
                   R"("poll":{"url":")" +
                       api.url("/v1/obs?page=1&appkey=k123") +
                       R"(","interval_s":5,"next":"link",)"
                       R"("headers":{"Authorization":"Bearer s3cret"}}})",
                   "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  ASSERT_TRUE(waitFor([&] { return stations() == 6; }, std::chrono::seconds(20)))
      << call("GET", "/api/v1/feeds/metp").body;
  ASSERT_TRUE(waitFor([&] { return not_modified.load() >= 1; }, std::chrono::seconds(20)))
      << "the next poll asks for page 1 with its ETag";
  auto shown = call("GET", "/api/v1/feeds/metp").body;
  EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("k123"), std::string::npos) << "a key in the URL is not shown: " << shown;
  EXPECT_NE(shown.find("\"Authorization\":\"********\""), std::string::npos) << shown;
  auto state = pollState("metp");
  ASSERT_TRUE(state) << shown;
  EXPECT_TRUE(state->getValue<bool>("running"));
  EXPECT_EQ(state->getValue<std::string>("error"), "");
  EXPECT_EQ(state->getValue<int>("pages"), 3);
  EXPECT_GE(state->getValue<int>("not_modified"), 1);
  auto counts = parse(shown)->getObject("counts");
  EXPECT_EQ(counts->getValue<int>("accepted"), 6);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 0) << "a 304 stores nothing";
  for (const auto& r : api.requests())
    EXPECT_EQ(r.headers.count("Authorization"), 1u) << r.uri << ": the key goes with every page";

  // Addresses the outbound policy forbids are refused when the feed is registered.
  auto refused = call("POST", "/api/v1/feeds",
                      R"({"id":"metx","agency":"met","connector":"firehub.connector.weather",)"
                      R"("poll":{"url":"http://169.254.169.254/latest/meta-data"}})",
                      "application/json");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("poll.url"), std::string::npos) << refused.body;
  refused = call("POST", "/api/v1/feeds",
                 R"({"id":"metx","agency":"met","connector":"firehub.connector.weather",)"
                 R"("mqtt":{"host":"10.1.2.3","topics":["a/#"]}})",
                 "application/json");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("private"), std::string::npos) << refused.body;

  // A next page on another origin is not followed: the feed's headers stay with its own API.
  AgencyApi other([&](const AgencyApi::Request&, Poco::Net::HTTPServerResponse& resp) {
    resp.set("Link", "<http://127.0.0.2:" + std::to_string(api.port()) + "/steal>; rel=next");
    resp.setContentType("application/x-ndjson");
    resp.send() << observation("O1", 1) << "\n";
  });
  made = call("POST", "/api/v1/feeds",
              R"({"id":"meto","agency":"met","connector":"firehub.connector.weather",)"
              R"("poll":{"url":")" +
                  other.url("/obs") + R"(","next":"link"}})",
              "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  ASSERT_TRUE(waitFor([&] {
    auto s = pollState("meto");
    return s && s->getValue<std::string>("error").find("another origin") != std::string::npos;
  })) << call("GET", "/api/v1/feeds/meto").body;
}

TEST_F(PollSourceTest, CursorPagesFailuresAndARestartWithoutGapOrDuplicate) {
  // The agency's event log: GET /events?since=N answers up to 4 events from N in a JSON
  // envelope, in GBK, with the cursor of the next ones.
  std::mutex mu;
  std::vector<std::string> events;
  int failures_left = 1;      // the first request: 500
  bool error_in_200 = false;  // one answer: {"code":"E500",...} with status 200
  for (int i = 0; i < 10; ++i) events.push_back(observation("E" + std::to_string(i), i, "沈阳站"));
  AgencyApi api([&](const AgencyApi::Request& r, Poco::Net::HTTPServerResponse& resp) {
    std::lock_guard<std::mutex> lock(mu);
    if (failures_left > 0) {
      --failures_left;
      resp.setStatus(Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR);
      resp.send() << "database down";
      return;
    }
    std::string utf8;
    if (error_in_200) {
      error_in_200 = false;
      utf8 = R"({"code":"E500","msg":"系统繁忙"})";
    } else {
      size_t since = 0;
      if (auto p = r.uri.find("since="); p != std::string::npos)
        since = std::stoul(r.uri.substr(p + 6));
      const size_t end = std::min(events.size(), since + 4);
      utf8 = R"({"code":"0","data":[)";
      for (size_t i = since; i < end; ++i) utf8 += (i > since ? "," : "") + events[i];
      utf8 += R"(],"next_cursor":)" + std::to_string(end) + "}";
    }
    resp.setContentType("application/json; charset=GBK");
    resp.send() << pipeline::convertCharset(utf8, "utf-8", "gb18030").value();
  });
  ASSERT_NO_FATAL_FAILURE(startHub(true));
  auto made = call("POST", "/api/v1/feeds",
                   R"({"id":"mete","agency":"met","connector":"firehub.connector.weather",)"
                   R"("poll":{"url":")" +
                       api.url("/events") +
                       R"(","interval_s":5,"items":"data","cursor":"next_cursor",)"
                       R"("cursor_param":"since"}})",
                   "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  ASSERT_TRUE(waitFor([&] {
    auto s = pollState("mete");
    return s && s->getValue<std::string>("error").find("HTTP 500") != std::string::npos &&
           s->getValue<int>("failures") == 1;
  })) << call("GET", "/api/v1/feeds/mete").body;
  ASSERT_TRUE(waitFor([&] { return stations() == 10; }, std::chrono::seconds(30)))
      << call("GET", "/api/v1/feeds/mete").body;
  auto state = pollState("mete");
  EXPECT_EQ(state->getValue<std::string>("error"), "") << "recovered";
  EXPECT_NE(state->getValue<std::string>("next").find("since=10"), std::string::npos);
  auto entity = call("GET", "/api/v1/entities?domain=weather&limit=100");
  EXPECT_NE(entity.body.find("沈阳站"), std::string::npos) << "GBK read as such: " << entity.body;

  // Stopped, the log grows, started again: the poll goes on at since=10.
  hub_.reset();
  const size_t before = api.requests().size();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (int i = 10; i < 16; ++i) events.push_back(observation("E" + std::to_string(i), i));
    error_in_200 = true;
  }
  ASSERT_NO_FATAL_FAILURE(startHub(false));
  ASSERT_TRUE(waitFor([&] { return stations() == 16; }, std::chrono::seconds(30)))
      << call("GET", "/api/v1/feeds/mete").body;
  auto after = api.requests();
  ASSERT_GT(after.size(), before);
  EXPECT_NE(after[before].uri.find("since=10"), std::string::npos) << after[before].uri;
  for (size_t i = before; i < after.size(); ++i)
    EXPECT_EQ(after[i].uri.find("since=4"), std::string::npos) << "no page read again";
  auto counts = parse(call("GET", "/api/v1/feeds/mete").body)->getObject("counts");
  EXPECT_EQ(counts->getValue<int>("accepted"), 16);
  EXPECT_EQ(counts->getValue<int>("duplicates"), 0);
  auto letters = call("GET", "/api/v1/dlq?feed=mete").body;
  EXPECT_NE(letters.find("no array at 'data'"), std::string::npos) << letters;
  EXPECT_EQ(pollState("mete")->getValue<int>("dead_lettered"), 1);
}

}  // namespace
}  // namespace firehub
