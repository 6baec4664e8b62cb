// Tiers, in one process on loopback: a county hub forwards to its city hub, and a city hub to its
// province hub, each with its own lake and embedded broker. Checked: the parent stores each
// record once, as the child's (origin, prefixed ids), fuses it into its layers; a parent that is
// down leaves the records in the child's log (the child keeps accepting) and the backlog goes up
// in order when it is back; a chain county -> city -> province holds each record once at each
// level; what the parent refuses is refused with a reason.
#include <cmath>

#include "hub_fixture.h"

namespace firehub {
namespace {

// What a shell command prints.
std::string shellOut(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
  }
  return out;
}

class TiersTest : public ::testing::Test {
 protected:
  struct Tier {
    std::string name, level, parent;
    std::vector<std::string> children;
    uint16_t port = 0;
    std::vector<std::string> domains;  // upstream.domains
    std::string area;                  // upstream.area: a GeoJSON file
    std::vector<std::string> layers;   // upstream.layers
  };

  HubConfig config(const Tier& t, bool init) {
    HubConfig c;
    c.init = init;
    c.data_dir = dirs_.sub(t.name);
    c.http_listen = "127.0.0.1:" + std::to_string(t.port);
    c.plugins_dir = firehub::testing::pluginsDir();
    c.plugin_scan_interval_s = 0;
    c.lake_sync = false;
    c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()};  // the parent on loopback
    c.tier_name = t.name;
    c.tier_level = t.level;
    c.tier_children = t.children;
    if (!t.parent.empty()) {
      c.upstream_url = "http://127.0.0.1:" + std::to_string(tiers_[t.parent].port);
      c.upstream_key_file = dirs_.sub(t.name + ".upstream.key");
      c.upstream_down_interval_s = 1;
      c.upstream_domains = t.domains;
      c.upstream_area = t.area;
      c.upstream_layers = t.layers;
    }
    return c;
  }

  // Starts a tier (its parent first); a child gets an agency key its parent issued to it.
  void start(Tier t, bool init = true) {
    if (!t.parent.empty() && init) {
      auto issued = on(t.parent, "POST", "/api/v1/keys",
                       R"({"role":"agency","agency":")" + t.name +
                           R"(","domains":["building","alarm","water","station"]})",
                       "application/json");
      ASSERT_EQ(issued.status, 201) << issued.body;
      std::ofstream(dirs_.sub(t.name + ".upstream.key"))
          << parse(issued.body)->getValue<std::string>("key") << "\n";
    }
    auto hub = Hub::start(config(t, init));
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    t.port = hub.value()->httpPort();
    hubs_[t.name] = std::move(hub).value();
    keys_[t.name] = firehub::testing::adminKey(dirs_.sub(t.name));
    tiers_[t.name] = t;
  }

  void stop(const std::string& name) { hubs_.erase(name); }

  firehub::testing::Http on(const std::string& hub, const std::string& method,
                            const std::string& path, const std::string& body = "",
                            const std::string& type = "") {
    return http("127.0.0.1", tiers_[hub].port, method, path, body, type, keys_[hub]);
  }

  size_t entities(const std::string& hub, const std::string& domain) {
    auto r = on(hub, "GET", "/api/v1/entities?domain=" + domain + "&limit=1");
    return r.status == 200 ? parse(r.body)->getValue<size_t>("numberMatched") : 0;
  }

  // The latest record of an entity as the hub lists it (null when it has none).
  Poco::JSON::Object::Ptr latestOf(const std::string& hub, const std::string& domain,
                                   const std::string& entity_id) {
    auto r = on(hub, "GET", "/api/v1/entities?domain=" + domain + "&limit=1000");
    if (r.status != 200) return nullptr;
    auto features = parse(r.body)->getArray("features");
    for (size_t i = 0; features && i < features->size(); ++i) {
      auto f = features->getObject(static_cast<unsigned>(i));
      if (f->getValue<std::string>("id") == entity_id) return f->getObject("properties");
    }
    return nullptr;
  }

  void pushBuildings(const std::string& hub) {
    if (on(hub, "GET", "/api/v1/feeds/bld").status == 404) {
      auto made = on(hub, "POST", "/api/v1/feeds",
                     R"({"id":"bld","agency":"housing","connector":"firehub.connector.building"})",
                     "application/json");
      ASSERT_EQ(made.status, 201) << made.body;
    }
    auto pushed = on(hub, "POST", "/api/v1/feeds/bld/records",
                     fixture("building", "buildings.geojson"), "application/geo+json");
    ASSERT_EQ(pushed.status, 202) << pushed.body;
  }

  // Pushes `n` hydrants with ids from `first` to the hub's water feed.
  void pushHydrants(const std::string& hub, int first, int n) {
    if (on(hub, "GET", "/api/v1/feeds/water").status == 404) {
      auto made =
          on(hub, "POST", "/api/v1/feeds",
             R"({"id":"water","agency":"water-bureau","connector":"firehub.connector.water"})",
             "application/json");
      ASSERT_EQ(made.status, 201) << made.body;
    }
    std::string csv = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
    for (int i = first; i < first + n; ++i) {
      csv += "H" + std::to_string(i) + ",hydrant," + std::to_string(123.40 + (i % 100) * 1e-4) +
             "," + std::to_string(41.79 + (i / 100) * 1e-4) +
             ",in_service,0.3,2026-12-07T08:00:00+08:00\n";
    }
    auto pushed = on(hub, "POST", "/api/v1/feeds/water/records", csv, "text/csv");
    ASSERT_EQ(pushed.status, 202) << pushed.body;
    ASSERT_EQ(parse(pushed.body)->getValue<int>("accepted"), n) << pushed.body;
  }

  TempDir dirs_;
  std::map<std::string, std::unique_ptr<Hub>> hubs_;
  std::map<std::string, std::string> keys_;
  std::map<std::string, Tier> tiers_;
};

TEST_F(TiersTest, ACountyForwardsToItsCityWhichStoresEachRecordOnceAsTheCountys) {
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "", {"hunnan"}}));
  ASSERT_NO_FATAL_FAILURE(start({"hunnan", "county", "shenyang", {}}));
  ASSERT_NO_FATAL_FAILURE(pushBuildings("hunnan"));
  ASSERT_TRUE(firehub::testing::waitFor([&] { return entities("shenyang", "building") == 4; }))
      << on("hunnan", "GET", "/api/v1/upstream").body;
  auto r = latestOf("shenyang", "building", "hunnan/SY-B-000001");
  ASSERT_TRUE(r) << on("shenyang", "GET", "/api/v1/entities?domain=building").body;
  EXPECT_EQ(r->getValue<std::string>("id").rfind("hunnan/bld:SY-B-000001", 0), 0u);
  EXPECT_EQ(r->getValue<std::string>("feed_id"), "hunnan/bld");
  EXPECT_EQ(r->getValue<std::string>("agency"), "hunnan/housing");
  auto prov = r->getObject("provenance");
  EXPECT_EQ(prov->getValue<std::string>("origin_hub"), "hunnan");
  EXPECT_EQ(prov->getValue<std::string>("origin_level"), "county");
  EXPECT_EQ(prov->getValue<std::string>("transport"), "tier");
  // The city fuses them into its own risk layer.
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto layer = on("shenyang", "GET", "/api/v1/layers/risk?limit=1");
    return layer.status == 200 && parse(layer.body)->getValue<int>("numberMatched") > 0;
  }));
  // The county's link says where it stands.
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
    return up->getValue<uint64_t>("backlog") == 0 && up->getValue<uint64_t>("sent") == 4;
  })) << on("hunnan", "GET", "/api/v1/upstream").body;
  auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
  EXPECT_TRUE(up->getValue<bool>("configured"));
  EXPECT_EQ(up->getValue<std::string>("last_error"), "");
  EXPECT_NE(up->getValue<std::string>("last_success"), "");
  EXPECT_NE(on("hunnan", "GET", "/metrics").body.find("firehub_upstream_sent_records_total 4"),
            std::string::npos);

  // The same records again at the county (new ids there: a second push of a feed dedupes at the
  // county already) and a resent batch at the city are stored once.
  ASSERT_NO_FATAL_FAILURE(pushBuildings("hunnan"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(entities("shenyang", "building"), 4u);
}

// Downward: a warning the city drafts reaches the county's alert list marked with its origin,
// and never goes back up.
TEST_F(TiersTest, AWarningTheCityDraftsReachesTheCountyAndStaysThere) {
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "", {"hunnan"}}));
  ASSERT_NO_FATAL_FAILURE(start({"hunnan", "county", "shenyang", {}}));
  ASSERT_NO_FATAL_FAILURE(pushBuildings("shenyang"));
  ASSERT_EQ(on("shenyang", "POST", "/api/v1/feeds",
               R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})",
               "application/json")
                .status,
            201);
  auto alarm = on(
      "shenyang", "POST", "/api/v1/feeds/iot/records",
      R"({"event_id":"T-1","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":3,"description":"烟感火警","time":"2026-11-22T09:20:00+08:00"})"
      "\n",
      "application/x-ndjson");
  ASSERT_EQ(alarm.status, 202) << alarm.body;
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto list = parse(on("shenyang", "GET", "/api/v1/warnings").body)->getArray("warnings");
    return list && list->size() > 0;
  }));
  Poco::JSON::Object::Ptr received;
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto alerts = parse(on("hunnan", "GET", "/api/v1/alerts").body)->getArray("alerts");
    for (size_t i = 0; alerts && i < alerts->size(); ++i) {
      auto a = alerts->getObject(static_cast<unsigned>(i));
      if (a->getValue<std::string>("kind") == "cap_received") received = a;
    }
    return received;
  })) << on("hunnan", "GET", "/api/v1/upstream").body;
  EXPECT_EQ(received->getValue<std::string>("origin"), "shenyang");
  EXPECT_EQ(received->getValue<std::string>("level"), "EXTREME");
  auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
  EXPECT_GE(up->getValue<uint64_t>("down_stored"), 1u);
  EXPECT_EQ(up->getValue<std::string>("down_error"), "");
  // Read again on every poll, stored once; and not sent back up.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(entities("hunnan", "weather"), 1u);
  EXPECT_EQ(parse(on("hunnan", "GET", "/api/v1/upstream").body)->getValue<uint64_t>("sent"), 0u);
  EXPECT_EQ(entities("shenyang", "weather"), 0u);
}

// Layers decided above: the city's risk cells come down to the county (upstream.layers = risk),
// where they are the parent_risk layer (GeoJSON, tiles, the layer list); a restart while the
// city is away keeps the last copy.
TEST_F(TiersTest, TheCitysRiskLayerComesDownAndStaysThroughACut) {
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "", {"hunnan"}}));
  Tier county{"hunnan", "county", "shenyang", {}};
  county.layers = {"risk"};
  ASSERT_NO_FATAL_FAILURE(start(county));
  ASSERT_NO_FATAL_FAILURE(pushBuildings("shenyang"));
  size_t city_cells = 0;
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    city_cells = parse(on("shenyang", "GET", "/api/v1/layers/risk?limit=1").body)
                     ->getValue<size_t>("numberMatched");
    return city_cells > 0;
  }));
  // The county's copy follows within a few polls (every second here).
  Poco::JSON::Object::Ptr down;
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    city_cells = parse(on("shenyang", "GET", "/api/v1/layers/risk?limit=1").body)
                     ->getValue<size_t>("numberMatched");
    auto r = on("hunnan", "GET", "/api/v1/layers/parent_risk?limit=100000");
    if (r.status != 200) return false;
    down = parse(r.body);
    return down->getValue<size_t>("numberMatched") == city_cells;
  })) << on("hunnan", "GET", "/api/v1/upstream").body;
  auto features = down->getArray("features");
  ASSERT_GT(features->size(), 0u);
  auto first = features->getObject(0);
  auto props = first->getObject("properties");
  EXPECT_FALSE(props->getValue<std::string>("colour").empty());
  EXPECT_EQ(props->getArray("top_factors")->size(), 0u) << "the city's factors stay there";
  auto city_cell =
      on("shenyang", "GET", "/api/v1/layers/risk/cells/" + first->getValue<std::string>("id"));
  ASSERT_EQ(city_cell.status, 200) << "the county's cells are the city's";
  EXPECT_EQ(parse(city_cell.body)->getValue<std::string>("level"),
            props->getValue<std::string>("level"));
  EXPECT_NE(on("hunnan", "GET", "/api/v1/layers").body.find("\"parent_risk\""), std::string::npos);
  auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
  auto layer = up->getArray("layers")->getObject(0);
  EXPECT_EQ(layer->getValue<size_t>("cells"), city_cells);
  EXPECT_EQ(layer->getValue<std::string>("error"), "");
  EXPECT_EQ(parse(on("hunnan", "GET", "/api/v1/layers/risk?limit=1").body)
                ->getValue<size_t>("numberMatched"),
            0u)
      << "the county's own layer stays its own";
  // A tile over the first cell draws it.
  auto ring = first->getObject("geometry")->getArray("coordinates")->getArray(0)->getArray(0);
  const double lon = ring->getElement<double>(0), lat = ring->getElement<double>(1);
  const int z = 12, n = 1 << z;
  const int x = static_cast<int>((lon + 180) / 360 * n);
  const double phi = lat * M_PI / 180;
  const int y = static_cast<int>((1 - std::log(std::tan(phi) + 1 / std::cos(phi)) / M_PI) / 2 * n);
  auto tile = on("hunnan", "GET",
                 "/tiles/parent_risk/" + std::to_string(z) + "/" + std::to_string(x) + "/" +
                     std::to_string(y) + ".mvt");
  EXPECT_EQ(tile.status, 200);
  EXPECT_NE(tile.body.find("parent_risk"), std::string::npos) << "a tile with the layer in it";
  // The city goes away and the county restarts: the last copy stays, the read's error shows.
  stop("shenyang");
  stop("hunnan");
  Tier again = tiers_["hunnan"];
  ASSERT_NO_FATAL_FAILURE(start(again, /*init=*/false));
  EXPECT_EQ(parse(on("hunnan", "GET", "/api/v1/layers/parent_risk?limit=1").body)
                ->getValue<size_t>("numberMatched"),
            city_cells);
  EXPECT_TRUE(firehub::testing::waitFor([&] {
    auto l = parse(on("hunnan", "GET", "/api/v1/upstream").body)->getArray("layers")->getObject(0);
    return !l->getValue<std::string>("error").empty();
  }));
}

TEST_F(TiersTest, AParentThatIsDownGetsTheBacklogInOrderOnceItIsBack) {
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "", {"hunnan"}}));
  ASSERT_NO_FATAL_FAILURE(start({"hunnan", "county", "shenyang", {}}));
  ASSERT_NO_FATAL_FAILURE(pushHydrants("hunnan", 0, 100));
  ASSERT_TRUE(firehub::testing::waitFor([&] { return entities("shenyang", "water") == 100; }));
  // The city goes away; the county keeps accepting and keeps what it cannot send.
  const uint16_t city_port = tiers_["shenyang"].port;
  stop("shenyang");
  for (int i = 0; i < 5; ++i) ASSERT_NO_FATAL_FAILURE(pushHydrants("hunnan", 100 + i * 200, 200));
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
    return up->getValue<uint64_t>("backlog") >= 1000 && up->getValue<int>("failures") > 0 &&
           !up->getValue<std::string>("last_error").empty();
  })) << on("hunnan", "GET", "/api/v1/upstream").body;
  EXPECT_NE(on("hunnan", "GET", "/metrics").body.find("firehub_upstream_backlog_records"),
            std::string::npos);
  // Back on the same address: the backlog goes up, each record once.
  Tier city = tiers_["shenyang"];
  city.port = city_port;
  ASSERT_NO_FATAL_FAILURE(start(city, /*init=*/false));
  ASSERT_TRUE(firehub::testing::waitFor([&] { return entities("shenyang", "water") == 1100; },
                                        std::chrono::seconds(60)))
      << entities("shenyang", "water") << " " << on("hunnan", "GET", "/api/v1/upstream").body;
  // The city stores a batch before the county reads its answer: the county's state follows.
  EXPECT_TRUE(firehub::testing::waitFor([&] {
    auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
    return up->getValue<uint64_t>("backlog") == 0 &&
           up->getValue<std::string>("last_error").empty();
  })) << on("hunnan", "GET", "/api/v1/upstream").body;
}

// The agreement: only the domains and the area it names go up; the rest stays in the county.
TEST_F(TiersTest, WhatTheAgreementLeavesOutStaysInTheCounty) {
  const std::string area = dirs_.sub("west.geojson");
  std::ofstream(area)
      << R"({"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"west"},)"
      << R"("geometry":{"type":"Polygon","coordinates":[[[123.3,41.7],[123.405,41.7],[123.405,41.9],[123.3,41.9],[123.3,41.7]]]}}]})";
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "", {"hunnan"}}));
  Tier county{"hunnan", "county", "shenyang", {}};
  county.domains = {"water"};
  county.area = area;
  ASSERT_NO_FATAL_FAILURE(start(county));
  ASSERT_NO_FATAL_FAILURE(pushBuildings("hunnan"));
  ASSERT_NO_FATAL_FAILURE(pushHydrants("hunnan", 0, 100));  // lon 123.4000 .. 123.4099
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
    return up->getValue<uint64_t>("backlog") == 0 && up->getValue<uint64_t>("skipped") > 0;
  })) << on("hunnan", "GET", "/api/v1/upstream").body;
  const size_t west = entities("shenyang", "water");
  EXPECT_GT(west, 40u);
  EXPECT_LT(west, 60u) << "only the hydrants west of 123.405";
  EXPECT_EQ(entities("shenyang", "building"), 0u) << "buildings are not in upstream.domains";
  auto up = parse(on("hunnan", "GET", "/api/v1/upstream").body);
  EXPECT_EQ(up->getValue<uint64_t>("sent"), west);
  EXPECT_EQ(up->getValue<uint64_t>("skipped"), 4 + (100 - west));
}

TEST_F(TiersTest, AChainHoldsEachRecordOnceAtEachLevelAndNothingLoops) {
  ASSERT_NO_FATAL_FAILURE(start({"liaoning", "province", "", {"shenyang"}}));
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "liaoning", {"hunnan"}}));
  ASSERT_NO_FATAL_FAILURE(start({"hunnan", "county", "shenyang", {}}));
  ASSERT_NO_FATAL_FAILURE(pushHydrants("hunnan", 0, 50));
  ASSERT_NO_FATAL_FAILURE(pushHydrants("shenyang", 0, 30));  // the city's own H0..H29
  ASSERT_TRUE(firehub::testing::waitFor([&] { return entities("liaoning", "water") == 80; }))
      << entities("liaoning", "water");
  EXPECT_EQ(entities("shenyang", "water"), 80u) << "the county's 50 and its own 30";
  EXPECT_EQ(entities("hunnan", "water"), 50u) << "nothing came back down";
  auto via = latestOf("liaoning", "water", "hunnan/H7");
  ASSERT_TRUE(via);
  auto prov = via->getObject("provenance");
  EXPECT_EQ(prov->getValue<std::string>("origin_hub"), "hunnan");
  ASSERT_TRUE(prov->getArray("hops"));
  EXPECT_EQ(prov->getArray("hops")->getElement<std::string>(0), "shenyang");
  auto own = latestOf("liaoning", "water", "shenyang/H7");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->getObject("provenance")->getValue<std::string>("origin_hub"), "shenyang");
  auto own_hops = own->getObject("provenance")->getArray("hops");
  EXPECT_TRUE(!own_hops || own_hops->size() == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(entities("liaoning", "water"), 80u);
}

TEST_F(TiersTest, WhatTheParentCannotTakeIsRefusedWithAReason) {
  ASSERT_NO_FATAL_FAILURE(start({"shenyang", "city", "", {"hunnan"}}));
  const std::string type = "application/vnd.firehub.records+protobuf";
  auto as = [&](const std::string& key, const std::string& name, const std::string& level,
                const std::string& body, const std::string& content_type) {
    return firehub::testing::http("127.0.0.1", tiers_["shenyang"].port, "POST",
                                  "/api/v1/tiers/records", body, content_type, key,
                                  {{"X-Firehub-Tier-Name", name}, {"X-Firehub-Tier-Level", level}});
  };
  auto issue = [&](const std::string& agency) {
    auto r = on("shenyang", "POST", "/api/v1/keys",
                R"({"role":"agency","agency":")" + agency + R"(","domains":["water"]})",
                "application/json");
    return parse(r.body)->getValue<std::string>("key");
  };
  const std::string child = issue("hunnan"), stranger = issue("tiexi");
  EXPECT_EQ(as(stranger, "tiexi", "county", "", type).status, 403) << "not in tier.children";
  EXPECT_EQ(as(child, "heping", "county", "", type).status, 403) << "another hub's name";
  EXPECT_EQ(as(child, "hunnan", "city", "", type).status, 400) << "not below a city";
  EXPECT_EQ(as(child, "hunnan", "county", "", "application/json").status, 415);
  EXPECT_EQ(as(child, "hunnan", "county", "\xff\xff\xff\xff\x0f", type).status, 400);
  // A record of a domain the key does not hold is a dead letter; one that came from this hub a
  // loop.
  firehub::v1::Record r;
  r.set_id("bld:X1");
  r.set_domain("building");
  r.set_entity_type("building");
  r.set_entity_id("X1");
  std::string framed;
  {
    const std::string bytes = r.SerializeAsString();
    framed.push_back(static_cast<char>(bytes.size()));
    framed += bytes;
    r.mutable_provenance()->set_origin_hub("shenyang");
    r.set_domain("water");
    const std::string looped = r.SerializeAsString();
    framed.push_back(static_cast<char>(looped.size()));
    framed += looped;
  }
  auto answer = as(child, "hunnan", "county", framed, type);
  ASSERT_EQ(answer.status, 202) << answer.body;
  auto summary = parse(answer.body);
  EXPECT_EQ(summary->getValue<int>("rejected"), 1) << answer.body;
  EXPECT_EQ(summary->getValue<int>("looped"), 1) << answer.body;
  EXPECT_NE(answer.body.find("not among the domains"), std::string::npos) << answer.body;
  auto letters = on("shenyang", "GET", "/api/v1/dlq?feed=tier%3Ahunnan");
  EXPECT_NE(letters.body.find("not among the domains"), std::string::npos) << letters.body;
}

// Between departments the link runs over HTTPS, the parent's certificate checked against
// outbound.ca_file: with it the records go up; without it nothing does, and the link says why.
TEST_F(TiersTest, TheLinkRunsOverHttpsWithTheParentsCertificateChecked) {
  const std::string cert = dirs_.sub("city.crt"), key = dirs_.sub("city.pem");
  ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                         "-addext subjectAltName=IP:127.0.0.1 -keyout " +
                         key + " -out " + cert + " >/dev/null 2>&1")
                            .c_str()),
            0)
      << "openssl CLI";
  Tier city_tier{"shenyang", "city", "", {"hunnan"}};
  HubConfig city = config(city_tier, true);
  city.tls_cert = cert;
  city.tls_key = key;
  auto city_hub = Hub::start(city);
  ASSERT_TRUE(city_hub.isOk()) << city_hub.status().toString();
  const std::string base = "https://127.0.0.1:" + std::to_string(city_hub.value()->httpPort());
  const std::string admin =
      "-H 'Authorization: Bearer " + firehub::testing::adminKey(city.data_dir) + "'";
  auto issued = shellOut("curl -s --cacert " + cert + " " + admin +
                         " -H 'content-type: application/json' -d "
                         "'{\"role\":\"agency\",\"agency\":\"hunnan\",\"domains\":[\"water\"]}' " +
                         base + "/api/v1/keys");
  ASSERT_NE(issued.find("\"key\""), std::string::npos) << issued;
  std::ofstream(dirs_.sub("hunnan.upstream.key")) << parse(issued)->getValue<std::string>("key");
  // The CLI talks to the HTTPS hub with the hub's CA (FIREHUB_CA_FILE), and refuses it without.
  const std::string cli = firehub::testing::buildDir() + "/bin/firehub keys list --hub " + base +
                          " --key-file " + city.data_dir + "/admin.key 2>&1";
  const std::string listed = shellOut("FIREHUB_CA_FILE=" + cert + " " + cli);
  EXPECT_NE(listed.find("hunnan"), std::string::npos) << listed;
  const std::string refused = shellOut("FIREHUB_CA_FILE= " + cli);
  EXPECT_NE(refused.find("certificate of " + base + " is refused"), std::string::npos) << refused;
  auto water = [&] {
    auto listed = shellOut("curl -s --cacert " + cert + " " + admin + " '" + base +
                           "/api/v1/entities?domain=water&limit=1'");
    return listed.find("\"numberMatched\":") == std::string::npos
               ? size_t{0}
               : parse(listed)->getValue<size_t>("numberMatched");
  };

  // Without the parent's CA the certificate is refused: nothing goes up, the link says why.
  Tier county_tier{"hunnan", "county", "", {}};
  HubConfig county = config(county_tier, true);
  county.upstream_url = base;
  county.upstream_key_file = dirs_.sub("hunnan.upstream.key");
  {
    auto unchecked = Hub::start(county);
    ASSERT_TRUE(unchecked.isOk()) << unchecked.status().toString();
    tiers_["hunnan"] = county_tier;
    tiers_["hunnan"].port = unchecked.value()->httpPort();
    keys_["hunnan"] = firehub::testing::adminKey(county.data_dir);
    hubs_["hunnan"] = std::move(unchecked).value();
    ASSERT_NO_FATAL_FAILURE(pushHydrants("hunnan", 0, 10));
    ASSERT_TRUE(firehub::testing::waitFor([&] {
      return !parse(on("hunnan", "GET", "/api/v1/upstream").body)
                  ->getValue<std::string>("last_error")
                  .empty();
    }));
    EXPECT_NE(on("hunnan", "GET", "/api/v1/upstream").body.find("TLS"), std::string::npos)
        << on("hunnan", "GET", "/api/v1/upstream").body;
    EXPECT_EQ(water(), 0u);
    stop("hunnan");
  }
  // With it, the backlog goes up over TLS.
  county.init = false;
  county.outbound_ca_file = cert;
  auto checked = Hub::start(county);
  ASSERT_TRUE(checked.isOk()) << checked.status().toString();
  tiers_["hunnan"].port = checked.value()->httpPort();
  hubs_["hunnan"] = std::move(checked).value();
  ASSERT_TRUE(firehub::testing::waitFor([&] { return water() == 10; }))
      << on("hunnan", "GET", "/api/v1/upstream").body;
}

}  // namespace
}  // namespace firehub
