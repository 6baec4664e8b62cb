// History over HTTP: an entity's versions and a domain's records in a time range, paged, in each
// format; the risk layer and a cell's explanation as they were at a moment; the lake's state and
// the retention settings as they load.
#include <chrono>

#include "hub_fixture.h"

namespace firehub {
namespace {

class HubHistoryTest : public HubTest {};

std::string isoNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

TEST_F(HubHistoryTest, AnEntitysVersionsAndADomainsRecordsByTimeInEveryFormat) {
  std::string csv = kWeatherHeader;
  for (int h = 0; h < 5; ++h) {
    csv += "S1,123.40,41.80,2026-11-2" + std::to_string(h) + "T10:00:00+08:00,1" +
           std::to_string(h) + ",40,10,90,0\n";
  }
  csv += "S2,123.50,41.90,2026-11-22T11:00:00+08:00,9,40,10,90,0\n";
  auto pushed = post("/api/v1/feeds/wx/records", csv, "text/csv");
  ASSERT_EQ(pushed.status, 202) << pushed.body;

  auto all = get("/api/v1/entities/weather/S1/history");
  ASSERT_EQ(all.status, 200) << all.body;
  auto records = parse(all.body)->getArray("records");
  ASSERT_EQ(records->size(), 5u);
  EXPECT_EQ(records->getObject(0)->getValue<std::string>("observed_at"), "2026-11-20T02:00:00Z");
  EXPECT_EQ(records->getObject(4)->getValue<std::string>("observed_at"), "2026-11-24T02:00:00Z");

  // A time range, paged two at a time.
  const std::string range =
      "/api/v1/entities/weather/S1/history?from=2026-11-21T00:00:00Z&to=2026-11-24T00:00:00Z";
  auto first = get(range + "&limit=2");
  ASSERT_EQ(first.status, 200) << first.body;
  auto page = parse(first.body);
  EXPECT_EQ(page->getValue<int>("numberReturned"), 2);
  ASSERT_TRUE(page->has("next")) << first.body;
  EXPECT_NE(first.headers["Link"].find("rel=\"next\""), std::string::npos);
  auto second = get(range + "&limit=2&cursor=" + page->getValue<std::string>("next"));
  ASSERT_EQ(second.status, 200) << second.body;
  auto rest = parse(second.body);
  EXPECT_EQ(rest->getValue<int>("numberReturned"), 1);
  EXPECT_FALSE(rest->has("next"));
  EXPECT_EQ(rest->getArray("records")->getObject(0)->getValue<std::string>("observed_at"),
            "2026-11-23T02:00:00Z");

  // The domain's records in time, as CSV, NDJSON and GeoJSON.
  auto table = get("/api/v1/records?domain=weather&from=2026-11-22T00:00:00Z&format=csv");
  ASSERT_EQ(table.status, 200) << table.body;
  EXPECT_EQ(table.headers["Content-Type"], "text/csv; charset=utf-8");
  EXPECT_EQ(table.body.substr(0, table.body.find('\r')),
            "id,domain,entity_type,entity_id,observed_at,received_at,feed_id,agency,op,lon,lat,"
            "record");
  EXPECT_EQ(std::count(table.body.begin(), table.body.end(), '\n'), 5) << "header and 4 rows";
  EXPECT_NE(table.body.find(",S2,2026-11-22T03:00:00Z,"), std::string::npos) << table.body;
  auto lines = get("/api/v1/records?domain=weather&feed=wx&format=ndjson");
  ASSERT_EQ(lines.status, 200);
  EXPECT_EQ(std::count(lines.body.begin(), lines.body.end(), '\n'), 6);
  auto features = get("/api/v1/records?domain=weather&format=geojson&limit=4");
  ASSERT_EQ(features.status, 200);
  auto fc = parse(features.body);
  EXPECT_EQ(fc->getArray("features")->size(), 4u);
  EXPECT_EQ(
      fc->getArray("features")->getObject(0)->getObject("geometry")->getValue<std::string>("type"),
      "Point");

  // Clear refusals.
  EXPECT_EQ(get("/api/v1/records?domain=weather&from=yesterday").status, 400);
  EXPECT_EQ(get("/api/v1/records?domain=weather&format=xml").status, 400);
  EXPECT_EQ(get("/api/v1/records?domain=nothing").status, 404);
  EXPECT_EQ(get("/api/v1/records?domain=weather&feed=nope").status, 404);
  EXPECT_EQ(get("/api/v1/records").status, 400);
  EXPECT_EQ(get(range + "&cursor=bm90LWEtY3Vyc29y").status, 400) << "not a cursor of the list";
  EXPECT_EQ(get("/api/v1/records?domain=weather&from=2026-11-24T00:00:00Z&to=2026-11-20T00:00:00Z")
                .status,
            400);
  EXPECT_EQ(get("/api/v1/entities/weather/S9/history").body,
            R"({"records":[],"numberReturned":0})");
}

// A cell that was level I while a fire alarm was open and is back below it once the alarm is
// resolved: at the moment of the alarm the layer and the cell's explanation are as they were.
TEST_F(HubHistoryTest, TheRiskLayerAndACellsExplanationAsTheyWereAtAMoment) {
  ASSERT_NO_FATAL_FAILURE(pushBuildings());
  // The cell of building SY-B-000001 (the one the alarm below is in).
  const std::string view = "/api/v1/layers/risk?bbox=123.4299,41.8039,123.4311,41.8049";
  ASSERT_TRUE(waitFor([&] { return parse(get(view).body)->getValue<int>("numberReturned") == 1; }));
  auto before = parse(get(view).body)->getArray("features")->getObject(0);
  const std::string cell = before->getValue<std::string>("id");
  const std::string level_before = before->getObject("properties")->getValue<std::string>("level");
  ASSERT_NE(level_before, "I");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // versions are kept per second
  const std::string quiet = isoNow();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));

  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})",
                 "application/json")
                .status,
            201);
  auto alarm = [&](int flags, const char* time) {
    return post(
        "/api/v1/feeds/iot/records",
        std::string(R"({"event_id":"T-)") + std::to_string(flags) +
            R"(","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":)" +
            std::to_string(flags) + R"(,"description":"烟感火警","time":")" + time + "\"}\n",
        "application/x-ndjson");
  };
  ASSERT_EQ(alarm(3, "2026-11-22T09:20:00+08:00").status, 202);
  auto level = [&] {
    return parse(get(view).body)
        ->getArray("features")
        ->getObject(0)
        ->getObject("properties")
        ->getValue<std::string>("level");
  };
  ASSERT_TRUE(waitFor([&] { return level() == "I"; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string burning = isoNow();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_EQ(alarm(1, "2026-11-22T09:50:00+08:00").status, 202);  // running again: resolved
  ASSERT_TRUE(waitFor([&] { return level() == level_before; })) << get(view).body;

  auto then = get(view + "&at=" + burning);
  ASSERT_EQ(then.status, 200) << then.body;
  auto past = parse(then.body);
  ASSERT_EQ(past->getValue<int>("numberReturned"), 1) << then.body;
  auto past_cell = past->getArray("features")->getObject(0);
  EXPECT_EQ(past_cell->getValue<std::string>("id"), cell);
  EXPECT_EQ(past_cell->getObject("properties")->getValue<std::string>("level"), "I");
  EXPECT_EQ(parse(get(view + "&at=" + quiet).body)
                ->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("level"),
            level_before);
  EXPECT_EQ(parse(get(view + "&at=2020-01-01T00:00:00Z").body)->getValue<int>("numberReturned"), 0);

  auto explained = get("/api/v1/layers/risk/cells/" + cell + "?at=" + burning);
  ASSERT_EQ(explained.status, 200) << explained.body;
  auto why = parse(explained.body);
  EXPECT_EQ(why->getValue<std::string>("level"), "I");
  EXPECT_TRUE(why->getValue<bool>("forced"));
  bool names_alarm = false;
  auto factors = why->getArray("factors");
  for (size_t i = 0; i < factors->size(); ++i) {
    auto f = factors->getObject(i);
    if (f->getValue<std::string>("name") == "alarm")
      names_alarm = f->getArray("sources")->size() > 0;
  }
  EXPECT_TRUE(names_alarm) << explained.body;
  auto now = parse(get("/api/v1/layers/risk/cells/" + cell).body);
  EXPECT_EQ(now->getValue<std::string>("level"), level_before);
  EXPECT_EQ(get("/api/v1/layers/risk/cells/" + cell + "?at=2020-01-01T00:00:00Z").status, 404);
  EXPECT_EQ(get(view + "&at=soon").status, 400);
  EXPECT_EQ(get("/api/v1/layers/hydrants?at=" + burning).status, 400);
}

TEST_F(HubHistoryTest, TheLakesSizeByColumnFamilyAndRetentionOnDemand) {
  auto state = get("/api/v1/lake");
  ASSERT_EQ(state.status, 200) << state.body;
  auto o = parse(state.body);
  for (const char* family : {"records", "latest", "history", "log", "layers"})
    EXPECT_TRUE(o->getObject("bytes")->has(family)) << family;
  EXPECT_GT(o->getValue<uint64_t>("disk_free_bytes"), 0u);
  EXPECT_TRUE(o->has("history_index_behind"));
  auto run = post("/api/v1/lake/retention", "", "application/json");
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_TRUE(parse(run.body)->getObject("retention")->has("last_run"));
  auto metrics = get("/metrics");
  EXPECT_NE(metrics.body.find("firehub_lake_bytes{family=\"records\"}"), std::string::npos);
  EXPECT_NE(metrics.body.find("firehub_lake_disk_free_bytes"), std::string::npos);
  EXPECT_NE(metrics.body.find("firehub_lake_history_index_behind"), std::string::npos);
}

TEST_F(HubHistoryTest, AStationsSeasonStartCodesSetByAnOperator) {
  auto put = [&](const std::string& body) {
    return http("127.0.0.1", port_, "PUT", "/api/v1/fwi/stations/S1/start", body,
                "application/json", key_);
  };
  auto set = put(
      R"({"ffmc":88,"dmc":12,"overwinter":{"fall_dc":300,"winter_prec_mm":110},"from":"2027-04-01"})");
  ASSERT_EQ(set.status, 200) << set.body;
  auto stored = parse(get("/api/v1/fwi/stations/S1/start").body);
  EXPECT_EQ(stored->getValue<double>("ffmc"), 88);
  EXPECT_NEAR(stored->getValue<double>("dc"), 109.4657, 1e-3) << "overwintered";
  EXPECT_EQ(stored->getValue<std::string>("from"), "2027-04-01");
  EXPECT_FALSE(stored->getValue<bool>("applied"));
  for (const char* bad :
       {R"({"ffmc":120,"from":"2027-04-01"})", R"({"dmc":"x","from":"2027-04-01"})",
        R"({"dc":15,"overwinter":{"fall_dc":1,"winter_prec_mm":1},"from":"2027-04-01"})",
        R"({"ffmc":85})", R"({"ffmc":85,"from":"April"})",
        R"({"overwinter":{"fall_dc":300},"from":"2027-04-01"})"}) {
    auto refused = put(bad);
    EXPECT_EQ(refused.status, 400) << bad << " " << refused.body;
  }
  EXPECT_EQ(get("/api/v1/fwi/stations/S9/start").status, 404);
  auto audit = get("/api/v1/audit?limit=1000");
  EXPECT_NE(audit.body.find("PUT /api/v1/fwi/stations/S1/start"), std::string::npos);
}

// Who may do what: the lake's state is for operators, a retention pass for admins, start codes
// are set by operators; numbers that are not finite are refused; a revoked key is refused.
TEST_F(HubHistoryTest, TheNewRoutesRefuseWhoMayNotAndWhatIsNotANumber) {
  auto keyOf = [&](const std::string& body) {
    return parse(post("/api/v1/keys", body, "application/json").body)->getValue<std::string>("key");
  };
  const std::string viewer = keyOf(R"({"role":"viewer"})");
  const std::string agency = keyOf(R"({"role":"agency","agency":"met","domains":["weather"]})");
  const std::string operator_key = keyOf(R"({"role":"operator"})");
  auto as = [&](const std::string& key, const std::string& method, const std::string& path,
                const std::string& body = "") {
    return http("127.0.0.1", port_, method, path, body, "application/json", key).status;
  };
  const std::string start = "/api/v1/fwi/stations/S1/start";
  const std::string codes = R"({"ffmc":85,"dmc":6,"dc":15,"from":"2027-04-01"})";
  EXPECT_EQ(as(viewer, "GET", "/api/v1/lake"), 403);
  EXPECT_EQ(as(agency, "GET", "/api/v1/lake"), 403);
  EXPECT_EQ(as(operator_key, "GET", "/api/v1/lake"), 200);
  EXPECT_EQ(as(operator_key, "POST", "/api/v1/lake/retention"), 403);
  EXPECT_EQ(as(viewer, "POST", "/api/v1/lake/retention"), 403);
  EXPECT_EQ(http("127.0.0.1", port_, "POST", "/api/v1/lake/retention", "", "", "").status, 401);
  EXPECT_EQ(as(viewer, "PUT", start, codes), 403);
  EXPECT_EQ(as(agency, "PUT", start, codes), 403);
  EXPECT_EQ(as(operator_key, "PUT", start, codes), 200);
  for (const char* number : {"NaN", "Infinity", "-Infinity", "1e400", "-1", "\"\"", "[]"}) {
    const std::string body =
        std::string(R"({"ffmc":)") + number + R"(,"dmc":6,"dc":15,"from":"2027-04-01"})";
    EXPECT_EQ(as(operator_key, "PUT", start, body), 400) << body;
  }
  EXPECT_EQ(as(operator_key, "PUT", start, R"({"ffmc":85)"), 400) << "a truncated body";
  EXPECT_EQ(as(operator_key, "PUT", "/api/v1/fwi/stations/..%2F..%2Fkeys/start", codes), 200)
      << "a station id is a name, never a path";
  EXPECT_EQ(get("/api/v1/fwi/stations/..%2F..%2Fkeys/start").status, 200);
  auto revoked = parse(get("/api/v1/keys?limit=100").body)->getArray("keys");
  std::string operator_id;
  for (size_t i = 0; i < revoked->size(); ++i) {
    if (revoked->getObject(i)->getValue<std::string>("role") == "operator")
      operator_id = revoked->getObject(i)->getValue<std::string>("id");
  }
  ASSERT_FALSE(operator_id.empty());
  ASSERT_EQ(http("127.0.0.1", port_, "DELETE", "/api/v1/keys/" + operator_id, "", "", key_).status,
            200);
  EXPECT_EQ(as(operator_key, "PUT", start, codes), 401) << "a revoked key";
  EXPECT_EQ(as(operator_key, "GET", "/api/v1/lake"), 401);
  for (const char* at : {"NaN", "1e400", "2026-13-45T99:99:99Z", ""}) {
    EXPECT_EQ(get(std::string("/api/v1/layers/risk?at=") + at).status, 400) << at;
    EXPECT_EQ(get(std::string("/api/v1/records?domain=weather&from=") + at).status, 400) << at;
  }
}

TEST(RetentionSettingsTest, DurationsAndTheBudgetAreCheckedAtLoad) {
  TempDir dir;
  auto with = [&](std::vector<std::pair<std::string, std::string>> settings) {
    settings.emplace_back("data.dir", dir.path());
    return loadConfig("", settings);
  };
  auto fine = with({{"lake.retention.weather", "90d"},
                    {"lake.retention.alarm", "12h"},
                    {"lake.retention.dead_letters", "2w"},
                    {"lake.retention.audit", "3600s"},
                    {"lake.retention.interval_s", "600"},
                    {"lake.disk_budget", "200GiB"}});
  ASSERT_TRUE(fine.isOk()) << fine.status().toString();
  const auto& c = fine.value();
  ASSERT_EQ(c.retention.domains.size(), 2u);
  for (const auto& [domain, window] : c.retention.domains) {
    EXPECT_EQ(window, domain == "weather" ? 90LL * 86400 * 1000000 : 12LL * 3600 * 1000000);
  }
  EXPECT_EQ(c.retention.dead_letters_micros, 14LL * 86400 * 1000000);
  EXPECT_EQ(c.audit_retention_s, 3600);
  EXPECT_EQ(c.retention_interval_s, 600);
  EXPECT_EQ(c.disk_budget_bytes, 200ULL << 30);
  for (auto [key, value, named] :
       {std::tuple{"lake.retention.weathr", "1d", "no domain 'weathr'"},
        std::tuple{"lake.retention.weather", "-5d", "lake.retention.weather"},
        std::tuple{"lake.retention.weather", "5", "a duration"},
        std::tuple{"lake.retention.weather", "nand", "a duration"},
        std::tuple{"lake.retention.weather", "999999999999d", "100 years"},
        std::tuple{"lake.disk_budget", "10XB", "lake.disk_budget"},
        std::tuple{"lake.disk_budget", "0", "lake.disk_budget"}}) {
    auto refused = with({{key, value}});
    ASSERT_FALSE(refused.isOk()) << key << "=" << value;
    EXPECT_NE(refused.status().message().find(named), std::string::npos)
        << refused.status().message();
  }
}

}  // namespace
}  // namespace firehub
