// The API as a contract: one way to page, name, time, round and redact; feeds and
// subscriptions changed without deleting them; subscription filters and starts checked. (Every
// response these tests receive is also checked against docs/openapi.yaml by api_contract_check.)
#include <regex>

#include "hub_fixture.h"

namespace firehub {
namespace {

const std::regex kTime(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z)");

// Walks a list by its `next` cursors; the ids of every page, in order.
std::vector<std::string> walk(const std::function<firehub::testing::Http(const std::string&)>& get,
                              const std::string& path, const std::string& array,
                              size_t* pages = nullptr) {
  std::vector<std::string> ids;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    std::string url = path + (path.find('?') == std::string::npos ? "?" : "&") + "limit=2";
    if (!cursor.empty()) url += "&cursor=" + cursor;
    auto r = get(url);
    EXPECT_EQ(r.status, 200) << url << " " << r.body;
    if (r.status != 200) break;
    auto o = parse(r.body);
    auto items = o->getArray(array);
    for (size_t i = 0; i < items->size(); ++i)
      ids.push_back(items->getObject(static_cast<unsigned>(i))->get("id").toString());
    EXPECT_EQ(o->getValue<size_t>("numberReturned"), items->size());
    if (pages) ++*pages;
    if (!o->has("next")) break;
    cursor = o->getValue<std::string>("next");
  }
  return ids;
}

// The risk layer's cells, once it has some (after buildings were pushed).
size_t riskCells(const std::function<firehub::testing::Http(const std::string&)>& get) {
  size_t cells = 0;
  firehub::testing::waitFor([&] {
    auto layer = get("/api/v1/layers/risk?limit=1");
    cells = layer.status == 200 ? parse(layer.body)->getValue<size_t>("numberMatched") : 0;
    return cells > 0;
  });
  return cells;
}

TEST_F(HubTest, EveryListPagesTheSameWayWithOpaqueCursors) {
  for (const char* id : {"a1", "a2", "a3", "a4"}) {
    ASSERT_EQ(post("/api/v1/feeds",
                   std::string(R"({"id":")") + id +
                       R"(","agency":"met","connector":"firehub.connector.weather"})",
                   "application/json")
                  .status,
              201);
  }
  size_t pages = 0;
  auto feeds = walk([&](const std::string& p) { return get(p); }, "/api/v1/feeds", "feeds", &pages);
  EXPECT_EQ(feeds, (std::vector<std::string>{"a1", "a2", "a3", "a4", "wx"}));
  EXPECT_EQ(pages, 3u);
  EXPECT_EQ(parse(get("/api/v1/feeds?limit=2").body)->getValue<int>("numberMatched"), 5);
  // A cursor belongs to its list; a made-up one is a 400 that says where cursors come from.
  std::string feed_cursor = parse(get("/api/v1/feeds?limit=2").body)->getValue<std::string>("next");
  auto foreign = get("/api/v1/keys?cursor=" + feed_cursor);
  EXPECT_EQ(foreign.status, 400) << foreign.body;
  EXPECT_NE(foreign.body.find("next"), std::string::npos) << foreign.body;
  EXPECT_EQ(get("/api/v1/feeds?cursor=bm90LWEtY3Vyc29y").status, 400);
  EXPECT_EQ(get("/api/v1/feeds?limit=0").status, 400);

  // Entities: 20 stations, walked two at a time, each once.
  ASSERT_EQ(
      post("/api/v1/feeds/wx/records", fixture("weather", "observations.csv"), "text/csv").status,
      202);
  auto all = parse(get("/api/v1/entities?domain=weather&limit=1000").body);
  const size_t stations = all->getValue<size_t>("numberMatched");
  ASSERT_GT(stations, 2u);
  EXPECT_FALSE(all->has("next"));
  auto walked = walk([&](const std::string& p) { return get(p); },
                     "/api/v1/entities?domain=weather", "features");
  EXPECT_EQ(walked.size(), stations);
  EXPECT_EQ(std::set<std::string>(walked.begin(), walked.end()).size(), stations);

  // The audit log and the dead letters page by cursor too; ids are called id.
  auto audit = walk([&](const std::string& p) { return get(p); }, "/api/v1/audit", "entries");
  ASSERT_GE(audit.size(), 5u);
  EXPECT_EQ(audit.front(), "1");
  ASSERT_EQ(
      post("/api/v1/feeds/wx/records", fixture("weather", "observations.invalid.csv"), "text/csv")
          .status,
      202);
  auto letters = walk([&](const std::string& p) { return get(p); }, "/api/v1/dlq", "dead_letters");
  ASSERT_GE(letters.size(), 1u);
  EXPECT_EQ(get("/api/v1/dlq/" + letters.front()).status, 200) << "the listed id is the path's";
  auto of_feed = parse(get("/api/v1/dlq?feed=nobody").body);
  EXPECT_EQ(of_feed->getArray("dead_letters")->size(), 0u);
  EXPECT_FALSE(of_feed->has("numberMatched")) << "no hub-wide total under ?feed=";
  // Layers: cursor pages instead of an undocumented offset.
  ASSERT_NO_FATAL_FAILURE(pushBuildings());
  const size_t cells = riskCells([&](const std::string& p) { return get(p); });
  ASSERT_GT(cells, 2u);
  auto layer =
      walk([&](const std::string& p) { return get(p); }, "/api/v1/layers/risk", "features");
  EXPECT_EQ(layer.size(), cells);
  EXPECT_EQ(std::set<std::string>(layer.begin(), layer.end()).size(), cells);
}

TEST_F(HubTest, TimesNumbersRedactionAndRecordLinksAreWrittenOneWay) {
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
  auto viewer = parse(post("/api/v1/keys", R"({"role":"viewer"})", "application/json").body)
                    ->getValue<std::string>("key");
  auto list = http("127.0.0.1", port_, "GET", "/api/v1/entities?domain=police", "", "", viewer);
  auto features = parse(list.body)->getArray("features");
  ASSERT_GE(features->size(), 1u);
  auto feature = features->getObject(0);
  auto props = feature->getObject("properties");
  // Redacted fields are absent, and named.
  EXPECT_FALSE(props->getObject("police_incident")->has("reporter_phone")) << list.body;
  auto redacted = props->getArray("redacted");
  ASSERT_TRUE(redacted) << list.body;
  std::set<std::string> names;
  for (size_t i = 0; i < redacted->size(); ++i) names.insert(redacted->getElement<std::string>(i));
  EXPECT_TRUE(names.count("police_incident.reporter_phone")) << list.body;
  // Times: RFC 3339, milliseconds at most.
  EXPECT_TRUE(std::regex_match(props->getValue<std::string>("observed_at"), kTime)) << list.body;
  EXPECT_TRUE(std::regex_match(props->getValue<std::string>("received_at"), kTime));
  auto feed = parse(get("/api/v1/feeds/cad").body);
  EXPECT_TRUE(std::regex_match(feed->getValue<std::string>("created_at"), kTime));
  EXPECT_TRUE(std::regex_match(feed->getValue<std::string>("last_record_at"), kTime));
  auto keys = parse(get("/api/v1/keys").body)->getArray("keys");
  EXPECT_TRUE(std::regex_match(keys->getObject(0)->getValue<std::string>("created_at"), kTime));
  // A record's id holds '#' and ':'; the feature's link carries it encoded, and the link works.
  const std::string id = props->getValue<std::string>("id");
  ASSERT_NE(id.find('#'), std::string::npos) << id;
  auto link = feature->getArray("links")->getObject(0);
  EXPECT_EQ(link->getValue<std::string>("rel"), "record");
  const std::string href = link->getValue<std::string>("href");
  EXPECT_EQ(href.find('#'), std::string::npos) << href;
  auto record = http("127.0.0.1", port_, "GET", href, "", "", viewer);
  ASSERT_EQ(record.status, 200) << href;
  EXPECT_EQ(parse(record.body)->getValue<std::string>("id"), id);
  EXPECT_FALSE(parse(record.body)->getObject("police_incident")->has("reporter_name"));
  // The explanation of a cell: numbers to 7 decimal places at most.
  ASSERT_NO_FATAL_FAILURE(pushBuildings());
  ASSERT_GT(riskCells([&](const std::string& p) { return get(p); }), 0u);
  auto cells = parse(get("/api/v1/layers/risk?limit=1").body)->getArray("features");
  ASSERT_EQ(cells->size(), 1u);
  auto why = get("/api/v1/layers/risk/cells/" + cells->getObject(0)->getValue<std::string>("id"));
  ASSERT_EQ(why.status, 200);
  EXPECT_FALSE(std::regex_search(why.body, std::regex(R"(\d\.\d{8,})"))) << why.body;
}

TEST_F(HubTest, FeedsAndSubscriptionsChangeWithoutBeingDeleted) {
  // A feed: a merge patch, checked as a registration is, audited; id and agency stay.
  auto patched = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/wx",
                      R"({"description":"Met office stations","cadence_s":600})",
                      "application/merge-patch+json", key_);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(parse(patched.body)->getValue<int>("cadence_s"), 600);
  EXPECT_EQ(parse(get("/api/v1/feeds/wx").body)->getValue<std::string>("description"),
            "Met office stations");
  auto bad = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/wx", R"({"cadence_s":-5})",
                  "application/json", key_);
  EXPECT_EQ(bad.status, 400) << bad.body;
  auto moved = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/wx", R"({"agency":"other"})",
                    "application/json", key_);
  EXPECT_EQ(moved.status, 400) << moved.body;
  auto paused = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/wx", R"({"paused":true})",
                     "application/json", key_);
  EXPECT_EQ(parse(paused.body)->getValue<std::string>("state"), "paused");
  EXPECT_EQ(http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/none", "{}", "application/json", key_)
                .status,
            404);
  auto audit = get("/api/v1/audit").body;
  EXPECT_NE(audit.find(R"("action":"PATCH /api/v1/feeds/wx")"), std::string::npos) << audit;
  ASSERT_EQ(http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/wx", R"({"paused":false})",
                 "application/json", key_)
                .status,
            200);

  // Records to subscribe to, before the subscriptions exist.
  ASSERT_EQ(
      post("/api/v1/feeds/wx/records", fixture("weather", "observations.csv"), "text/csv").status,
      202);
  // Enum values are checked against the enum.
  auto unknown_enum = post(
      "/api/v1/subscriptions",
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"eq","value":"broken"}]}})",
      "application/json");
  EXPECT_EQ(unknown_enum.status, 400) << unknown_enum.body;
  EXPECT_NE(unknown_enum.body.find("STATUS_OUT_OF_SERVICE"), std::string::npos)
      << "names the values: " << unknown_enum.body;
  EXPECT_EQ(
      post(
          "/api/v1/subscriptions",
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"in","values":["out_of_service","IN_SERVICE"]}]}})",
          "application/json")
          .status,
      201);
  EXPECT_EQ(post("/api/v1/subscriptions", R"({"topic":"firehub.v1.weather","from":"yesterday"})",
                 "application/json")
                .status,
            400);

  // from: beginning delivers what came before the subscription; now does not.
  auto events = [&](const std::string& from) {
    auto made = post(
        "/api/v1/subscriptions",
        R"({"topic":"firehub.v1.weather","delivery":{"kind":"kafka"},"from":")" + from + R"("})",
        "application/json");
    EXPECT_EQ(made.status, 201) << made.body;
    return parse(made.body);
  };
  auto beginning = events("beginning");
  EXPECT_EQ(beginning->getValue<std::string>("from"), "beginning");
  EXPECT_TRUE(std::regex_match(beginning->getValue<std::string>("created_at"), kTime));
  auto past = events("2020-01-01T00:00:00+08:00");
  auto now = events("now");
  auto sse = parse(post("/api/v1/subscriptions",
                        R"({"topic":"firehub.v1.weather","from":"beginning"})", "application/json")
                       .body);
  const std::string sse_id = sse->getValue<std::string>("id");
  // An SSE subscription's first read starts at its `from`: from the beginning, the records
  // already stored; from now, none of them.
  auto firstRecord = [&](const std::string& id) {
    try {
      Poco::Net::HTTPClientSession s("127.0.0.1", port_);
      s.setTimeout(Poco::Timespan(2, 0));
      Poco::Net::HTTPRequest req("GET", "/api/v1/subscriptions/" + id + "/events",
                                 Poco::Net::HTTPMessage::HTTP_1_1);
      req.set("Authorization", "Bearer " + key_);
      s.sendRequest(req);
      Poco::Net::HTTPResponse resp;
      std::istream& in = s.receiveResponse(resp);
      if (resp.getStatus() != 200) return false;
      std::string line;
      for (int i = 0; i < 200 && std::getline(in, line); ++i) {
        if (line == "event: record") return true;
      }
    } catch (const Poco::Exception&) {  // the read timed out: nothing came
    }
    return false;
  };
  EXPECT_TRUE(firstRecord(sse_id)) << "from=beginning replays the stored records";
  auto sse_now = parse(
      post("/api/v1/subscriptions", R"({"topic":"firehub.v1.weather"})", "application/json").body);
  EXPECT_EQ(sse_now->getValue<std::string>("from"), "now");
  EXPECT_FALSE(firstRecord(sse_now->getValue<std::string>("id")))
      << "from=now (the default) starts after what is stored";
  // Pause holds, PATCH changes the filter (checked as at creation), resume goes on.
  auto held = post("/api/v1/subscriptions/" + sse_id + "/pause", "", "");
  ASSERT_EQ(held.status, 200) << held.body;
  EXPECT_TRUE(parse(held.body)->getValue<bool>("paused"));
  EXPECT_EQ(get("/api/v1/subscriptions/" + sse_id + "/events").status, 409);
  auto refiltered = http(
      "127.0.0.1", port_, "PATCH", "/api/v1/subscriptions/" + sse_id,
      R"({"filter":{"where":[{"field":"weather_observation.temperature_c","op":"gt","value":30}]},"paused":false})",
      "application/json", key_);
  ASSERT_EQ(refiltered.status, 200) << refiltered.body;
  EXPECT_FALSE(parse(refiltered.body)->getValue<bool>("paused"));
  EXPECT_EQ(parse(refiltered.body)->getObject("filter")->getArray("where")->size(), 1u);
  auto bad_filter = http("127.0.0.1", port_, "PATCH", "/api/v1/subscriptions/" + sse_id,
                         R"({"filter":{"where":[{"field":"no.such","op":"eq","value":1}]}})",
                         "application/json", key_);
  EXPECT_EQ(bad_filter.status, 400) << bad_filter.body;
  auto new_topic = http("127.0.0.1", port_, "PATCH", "/api/v1/subscriptions/" + sse_id,
                        R"({"topic":"firehub.v1.water"})", "application/json", key_);
  EXPECT_EQ(new_topic.status, 400) << new_topic.body;
  (void)past;
  (void)now;

  // Listed, shown, resumed and ended; grants listed and taken back; keys shown and changed.
  auto subs =
      walk([&](const std::string& p) { return get(p); }, "/api/v1/subscriptions", "subscriptions");
  EXPECT_GE(subs.size(), 5u);
  EXPECT_EQ(get("/api/v1/subscriptions/" + sse_id).status, 200);
  EXPECT_EQ(post("/api/v1/subscriptions/" + sse_id + "/pause", "", "").status, 200);
  EXPECT_FALSE(parse(post("/api/v1/subscriptions/" + sse_id + "/resume", "", "").body)
                   ->getValue<bool>("paused"));
  EXPECT_EQ(
      http("127.0.0.1", port_, "DELETE", "/api/v1/subscriptions/" + sse_id, "", "", key_).status,
      200);
  EXPECT_EQ(get("/api/v1/subscriptions/" + sse_id).status, 404);
  auto agency =
      parse(post("/api/v1/keys", R"({"role":"agency","agency":"met","domains":["weather"]})",
                 "application/json")
                .body);
  const std::string agency_id = agency->getValue<std::string>("id");
  EXPECT_EQ(parse(get("/api/v1/keys/" + agency_id).body)->getValue<std::string>("agency"), "met");
  auto widened = http("127.0.0.1", port_, "PATCH", "/api/v1/keys/" + agency_id,
                      R"({"domains":["weather","water"]})", "application/json", key_);
  EXPECT_EQ(parse(widened.body)->getArray("domains")->size(), 2u) << widened.body;
  ASSERT_EQ(
      post("/api/v1/grants", R"({"key_id":")" + agency_id + R"(","topic":"firehub.v1.weather"})",
           "application/json")
          .status,
      201);
  auto grants = walk([&](const std::string& p) { return get(p); }, "/api/v1/grants", "grants");
  EXPECT_EQ(grants, std::vector<std::string>{agency_id + "/firehub.v1.weather"});
  EXPECT_EQ(http("127.0.0.1", port_, "DELETE",
                 "/api/v1/grants/" + agency_id + "/firehub.v1.weather", "", "", key_)
                .status,
            200);
  auto revoked = http("127.0.0.1", port_, "DELETE", "/api/v1/keys/" + agency_id, "", "", key_);
  EXPECT_TRUE(parse(revoked.body)->getValue<bool>("revoked")) << revoked.body;
  // The description of all this, served by the hub itself.
  auto spec = get("/api/v1/openapi.json");
  ASSERT_EQ(spec.status, 200);
  EXPECT_EQ(parse(spec.body)->getValue<std::string>("openapi"), "3.1.0");
  EXPECT_TRUE(parse(spec.body)->getObject("paths")->has("/api/v1/feeds/{id}"));
  auto outlines = get("/api/v1/outlines");
  EXPECT_EQ(outlines.status, 404) << "none configured here";
  EXPECT_NE(outlines.body.find("map.outlines"), std::string::npos) << outlines.body;
}

}  // namespace
}  // namespace firehub
