// The hub in-process, as the map and GIS clients read it: CAP warnings, fire weather, the
// redacted public topics, the risk layer live on its stream and on Kafka, and area paging.
#include "hub_fixture.h"

namespace firehub {
namespace {

TEST_F(HubTest, CapWarningsUpdateAndCancelWithdrawEarlierAlerts) {
  // The alert as the fixture has it, but expiring long after today (the layer leaves out expired
  // ones).
  std::string cap = fixture("weather", "warning.cap.xml");
  const std::string expires = "<expires>2026-11-23T20:00:00+08:00</expires>";
  ASSERT_NE(cap.find(expires), std::string::npos);
  cap.replace(cap.find(expires), expires.size(), "<expires>2099-11-23T20:00:00+08:00</expires>");
  auto first = post("/api/v1/feeds/wx/records", cap, "application/cap+xml");
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(parse(first.body)->getValue<int>("accepted"), 1);
  auto area = "/api/v1/entities?domain=weather&bbox=123.5,41.7,123.8,42.0";
  auto shown = parse(get(area).body)->getArray("features");
  ASSERT_EQ(shown->size(), 1u);
  auto w = shown->getObject(0)->getObject("properties")->getObject("weather_warning");
  EXPECT_EQ(w->getValue<std::string>("event"), "森林火险");
  EXPECT_EQ(w->getValue<std::string>("severity"), "SEVERITY_SEVERE");
  EXPECT_EQ(w->getArray("circles")->size(), 1u);
  // The warnings layer draws it; a page past it is empty (offset counts there too).
  auto layer = parse(get("/api/v1/layers/warnings").body);
  ASSERT_EQ(layer->getValue<int>("numberMatched"), 1) << get("/api/v1/layers/warnings").body;
  EXPECT_EQ(layer->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("kind"),
            "received");
  auto past = parse(get("/api/v1/layers/warnings?offset=1").body);
  EXPECT_EQ(past->getValue<int>("numberMatched"), 1);
  EXPECT_EQ(past->getArray("features")->size(), 0u);
  // A box takes the warnings whose area meets it: also a sliver of the area's east edge, far from
  // its centre (where the geo index places it); not a box beside it.
  auto polygons =
      layer->getArray("features")->getObject(0)->getObject("geometry")->getArray("coordinates");
  double east = -180, west = 180, south = 90, north = -90;
  for (size_t p = 0; p < polygons->size(); ++p) {  // a MultiPolygon: polygons, rings, points
    for (size_t r = 0; r < polygons->getArray(p)->size(); ++r) {
      auto ring = polygons->getArray(p)->getArray(r);
      for (size_t i = 0; i < ring->size(); ++i) {
        const double lon = ring->getArray(i)->get(0).convert<double>(),
                     lat = ring->getArray(i)->get(1).convert<double>();
        east = std::max(east, lon);
        west = std::min(west, lon);
        south = std::min(south, lat);
        north = std::max(north, lat);
      }
    }
  }
  ASSERT_GT(east - west, 0.01) << "an area, not a point";
  auto in_box = [&](double w, double s, double e, double n) {
    char box[160];
    std::snprintf(box, sizeof box, "/api/v1/layers/warnings?bbox=%.6f,%.6f,%.6f,%.6f", w, s, e, n);
    return parse(get(box).body)->getValue<int>("numberMatched");
  };
  EXPECT_EQ(in_box(west, south, east, north), 1);
  EXPECT_EQ(in_box(east - 0.001, south, east + 0.5, north), 1) << "the east edge";
  EXPECT_EQ(in_box(east + 0.01, south, east + 0.5, north), 0) << "beside it";
  EXPECT_EQ(in_box(100, 20, 101, 21), 0) << "far away";

  // The feed updates 0001 with 0002, then cancels 0002: nothing stays on the map.
  auto feed =
      post("/api/v1/feeds/wx/records", fixture("weather", "feed.atom.xml"), "application/atom+xml");
  ASSERT_EQ(feed.status, 202) << feed.body;
  EXPECT_EQ(parse(feed.body)->getValue<int>("accepted"),
            3);  // retract 0001, alert 0002, retract 0002
  auto old_alert =
      hub_->lake().latest("weather/weather_warning/shenyang.weather.cn,LN-SY-2026-1122-0001");
  ASSERT_TRUE(old_alert.isOk() && old_alert.value());
  EXPECT_EQ(old_alert.value()->op(), firehub::v1::OP_RETRACT);
  EXPECT_TRUE(old_alert.value()->has_geometry());  // placed where the alert was
  auto update =
      hub_->lake().latest("weather/weather_warning/shenyang.weather.cn,LN-SY-2026-1122-0002");
  ASSERT_TRUE(update.isOk() && update.value());
  EXPECT_EQ(update.value()->op(), firehub::v1::OP_RETRACT);
  EXPECT_EQ(parse(get(area).body)->getArray("features")->size(), 0u);

  auto wrong_ns = post(
      "/api/v1/feeds/wx/records",
      "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.1\"><identifier>x</identifier></alert>",
      "application/xml");
  EXPECT_EQ(wrong_ns.status, 400);
  EXPECT_NE(wrong_ns.body.find("no CAP 1.2"), std::string::npos) << wrong_ns.body;
  auto broken = post("/api/v1/feeds/wx/records", "<alert><unclosed></alert>", "application/xml");
  EXPECT_EQ(broken.status, 400);
  EXPECT_NE(broken.body.find("not well-formed XML"), std::string::npos) << broken.body;
  auto bad = post("/api/v1/feeds/wx/records", fixture("weather", "warnings.invalid.xml"),
                  "application/xml");
  ASSERT_EQ(bad.status, 202) << bad.body;
  EXPECT_EQ(parse(bad.body)->getValue<int>("rejected"), 3);
  // An area given only by a geocode is kept, unplaced here (this hub has no district outlines),
  // and listed with the reason; it is not on the map.
  EXPECT_EQ(parse(bad.body)->getValue<int>("accepted"), 1) << bad.body;
  auto alerts = get("/api/v1/alerts").body;
  EXPECT_NE(alerts.find("\"unplaced\":\"the hub has no district outlines (map.outlines) to look "
                        "up code 210100"),
            std::string::npos)
      << alerts;
}

TEST_F(HubTest, FireWeatherLayerFollowsNoonObservations) {
  std::string csv =
      std::string(kWeatherHeader) +
      "F1,123.40,41.80,2026-11-21T09:00:00+08:00,2,60,10,,0\n"  // morning: no day yet
      "F1,123.40,41.80,2026-11-21T12:00:00+08:00,17,25,30,300,0\n"
      "F2,123.60,41.90,2026-11-21T11:00:00+08:00,5,50,10,,0\n";  // no noon observation
  ASSERT_EQ(post("/api/v1/feeds/wx/records", csv, "text/csv").status, 202);
  ASSERT_TRUE(
      waitFor([&] { return get("/api/v1/layers/fwi").body.find("\"F1\"") != std::string::npos; }));
  auto layer = parse(get("/api/v1/layers/fwi").body);
  auto features = layer->getArray("features");
  ASSERT_EQ(features->size(), 1u);
  auto props = features->getObject(0)->getObject("properties");
  EXPECT_EQ(props->getValue<std::string>("day"), "2026-11-21");
  EXPECT_GT(props->getValue<double>("ffmc"), 85);
  EXPECT_FALSE(props->getValue<std::string>("danger_class").empty());
}

TEST_F(HubTest, RestrictedDomainsAlsoPublishARedactedPublicTopic) {
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police"})",
           "application/json")
          .status,
      201);
  auto pushed =
      post("/api/v1/feeds/cad/records", fixture("police", "incidents.json"), "application/json");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  ASSERT_EQ(parse(pushed.body)->getValue<int>("accepted"), 3);
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto full = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.police", 3);
  auto open = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.police.public", 3);
  ASSERT_EQ(full.size(), 3u);
  ASSERT_EQ(open.size(), 3u);
  std::string all_full, all_open;
  for (const auto& m : full) all_full += m.value;
  for (const auto& m : open) all_open += m.value;
  EXPECT_NE(all_full.find("张伟"), std::string::npos);
  EXPECT_NE(all_full.find("13800000001"), std::string::npos);
  EXPECT_EQ(all_open.find("张伟"), std::string::npos) << all_open;
  EXPECT_EQ(all_open.find("13800000001"), std::string::npos);
  EXPECT_EQ(all_open.find("三楼窗口冒烟"), std::string::npos);
  EXPECT_NE(all_open.find("沈河区中街路128号"),
            std::string::npos);  // the address is not restricted
}

TEST_F(HubTest, RiskLayerTurnsAnAlarmedBuildingRedLiveOnTheStreamAndOnKafka) {
  ASSERT_NO_FATAL_FAILURE(pushBuildings());
  ASSERT_TRUE(waitFor([&] {
    auto layer = get("/api/v1/layers/risk?bbox=123.3,41.7,123.6,41.9");
    return layer.status == 200 && layer.body.find("\"numberMatched\":0") == std::string::npos;
  }));
  // Key units are buildings (footprints): the point layer draws each at its footprint's middle.
  {
    auto units = parse(get("/api/v1/layers/key_units").body)->getArray("features");
    ASSERT_GE(units->size(), 1u);
    bool found = false;
    for (size_t i = 0; i < units->size(); ++i) {
      auto f = units->getObject(i);
      ASSERT_FALSE(f->isNull("geometry"))
          << "key unit " << f->getValue<std::string>("id") << " has no point";
      if (f->getValue<std::string>("id") != "SY-B-000001") continue;
      found = true;
      auto geometry = f->getObject("geometry");
      EXPECT_EQ(geometry->getValue<std::string>("type"), "Point");
      EXPECT_NEAR(geometry->getArray("coordinates")->getElement<double>(0), 123.4305, 1e-6);
      EXPECT_NEAR(geometry->getArray("coordinates")->getElement<double>(1), 41.8044, 1e-6);
    }
    EXPECT_TRUE(found);
  }
  auto layers = parse(get("/api/v1/layers").body)->getArray("layers");
  ASSERT_GE(layers->size(), 10u);
  EXPECT_EQ(layers->getObject(0)->getValue<std::string>("name"), "risk");
  EXPECT_EQ(
      layers->getObject(0)->getArray("legend")->getObject(0)->getValue<std::string>("label_zh"),
      "红色（I级）");

  // The big shopping centre's cell, by the token of its polygon's anchor.
  const std::string view = "/api/v1/layers/risk?bbox=123.4299,41.8039,123.4311,41.8049";
  auto first = get(view);
  auto before = parse(first.body);
  // The cell layers carry an ETag of the layer version: unchanged -> 304 without a body.
  const std::string etag = first.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  auto again = http("127.0.0.1", port_, "GET", view, "", "", key_, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(get(view).body, first.body);  // served from the cache, the same bytes
  // A browser asks for gzip: the same view compressed, under its own ETag.
  auto zipped =
      http("127.0.0.1", port_, "GET", view, "", "", key_, {{"Accept-Encoding", "br, gzip;q=0.8"}});
  ASSERT_EQ(zipped.status, 200);
  EXPECT_EQ(zipped.headers["Content-Encoding"], "gzip");
  EXPECT_EQ(zipped.headers["Vary"], "Accept-Encoding");
  EXPECT_NE(zipped.headers["ETag"], etag);
  {
    std::istringstream compressed(zipped.body);
    Poco::InflatingInputStream inflate(compressed, Poco::InflatingStreamBuf::STREAM_GZIP);
    std::string plain((std::istreambuf_iterator<char>(inflate)), std::istreambuf_iterator<char>());
    EXPECT_EQ(plain, first.body);
  }
  auto refused = http("127.0.0.1", port_, "GET", view, "", "", key_,
                      {{"Accept-Encoding", "gzip;q=0, identity"}});
  EXPECT_EQ(refused.headers.count("Content-Encoding"), 0u);
  EXPECT_EQ(refused.body, first.body);
  ASSERT_EQ(before->getValue<int>("numberReturned"), 1) << "the building's cell";
  std::string cell = before->getArray("features")->getObject(0)->getValue<std::string>("id");
  // `properties=` selects the members of the cells' properties (the map asks for what it draws);
  // the feature, its id and geometry stay, the values are those of the whole feature.
  {
    auto full = before->getArray("features")->getObject(0);
    EXPECT_EQ(full->getObject("properties")->size(), 16u);
    auto lean = get(view + "&properties=colour,cell");
    ASSERT_EQ(lean.status, 200) << lean.body;
    auto f = parse(lean.body)->getArray("features")->getObject(0);
    EXPECT_EQ(f->getValue<std::string>("id"), cell);
    auto props = f->getObject("properties");
    EXPECT_EQ(props->size(), 2u) << lean.body;
    EXPECT_EQ(props->getValue<std::string>("cell"), cell);
    EXPECT_EQ(props->getValue<std::string>("colour"),
              full->getObject("properties")->getValue<std::string>("colour"));
    std::ostringstream full_geometry, lean_geometry;
    full->getObject("geometry")->stringify(full_geometry);
    f->getObject("geometry")->stringify(lean_geometry);
    EXPECT_EQ(lean_geometry.str(), full_geometry.str());
    // Another selection of the same cell: its polygon now comes from the kept ones.
    auto again = parse(get(view + "&properties=level").body)->getArray("features")->getObject(0);
    std::ostringstream kept_geometry;
    again->getObject("geometry")->stringify(kept_geometry);
    EXPECT_EQ(kept_geometry.str(), full_geometry.str());
    EXPECT_EQ(again->getObject("properties")->getValue<std::string>("level"),
              full->getObject("properties")->getValue<std::string>("level"));
    auto unknown = get(view + "&properties=cell,colour_of_money");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_NE(unknown.body.find("colour_of_money"), std::string::npos) << unknown.body;
    EXPECT_NE(unknown.body.find("water_colour"), std::string::npos) << "names the known properties";
    EXPECT_EQ(get("/api/v1/layers/hydrants?properties=cell").status, 400);
  }
  EXPECT_NE(before->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("level"),
            "I");

  EventReader events(port_, "/api/v1/layers/risk/stream", [&](const std::string& t) {
    return t.find("\"forced\":true") != std::string::npos;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the stream is open
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})",
                 "application/json")
                .status,
            201);
  auto pushed = post(
      "/api/v1/feeds/iot/records",
      R"({"event_id":"T-1","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":3,"description":"烟感火警","time":"2026-11-22T09:20:00+08:00"})"
      "\n",
      "application/x-ndjson");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  ASSERT_EQ(parse(pushed.body)->getValue<int>("accepted"), 1) << pushed.body;
  ASSERT_TRUE(waitFor([&] { return events.text().find("\"forced\":true") != std::string::npos; }))
      << events.text();
  EXPECT_EQ(events.contentType(), "text/event-stream");
  std::string stream = events.text();
  EXPECT_NE(stream.find("event: delta"), std::string::npos);
  EXPECT_NE(stream.find("\"id\":\"" + cell + "\""), std::string::npos) << stream;

  // The layer moved on: the old ETag no longer matches, the cached view is rendered again.
  auto changed = http("127.0.0.1", port_, "GET", view, "", "", key_, {{"If-None-Match", etag}});
  ASSERT_EQ(changed.status, 200);
  EXPECT_NE(changed.headers["ETag"], etag);
  EXPECT_NE(changed.body.find("\"forced\":true"), std::string::npos) << changed.body;

  auto explained = get("/api/v1/layers/risk/cells/" + cell);
  ASSERT_EQ(explained.status, 200) << explained.body;
  auto why = parse(explained.body);
  EXPECT_EQ(why->getValue<std::string>("level"), "I");
  EXPECT_TRUE(why->getValue<bool>("forced"));
  bool names_alarm = false;
  auto factors = why->getArray("factors");
  ASSERT_EQ(factors->size(), 7u);
  for (size_t i = 0; i < factors->size(); ++i) {
    auto f = factors->getObject(i);
    if (f->getValue<std::string>("name") != "alarm") continue;
    auto sources = f->getArray("sources");
    for (size_t j = 0; j < sources->size(); ++j) {
      names_alarm |= sources->getElement<std::string>(j).rfind("iot:", 0) == 0;
    }
  }
  EXPECT_TRUE(names_alarm) << explained.body;
  EXPECT_EQ(get("/api/v1/layers/risk/cells/zzz").status, 400);
  EXPECT_EQ(get("/api/v1/layers/risk/cells/5e2").status, 400);  // not the grid's level
  EXPECT_EQ(get("/api/v1/layers/nope").status, 404);
  EXPECT_EQ(get("/api/v1/layers/risk?bbox=1,2,3").status, 400);

  // The rise to level I drafted a CAP alert at once.
  auto warnings = parse(get("/api/v1/warnings").body)->getArray("warnings");
  ASSERT_EQ(warnings->size(), 1u);
  EXPECT_EQ(warnings->getObject(0)->getValue<std::string>("msg_type"), "Alert");
  std::string identifier = warnings->getObject(0)->getValue<std::string>("identifier");
  auto cap = get("/api/v1/warnings/" + identifier);
  ASSERT_EQ(cap.status, 200);
  EXPECT_NE(cap.body.find("<identifier>" + identifier + "</identifier>"), std::string::npos)
      << cap.body;
  EXPECT_NE(cap.body.find("urn:oasis:names:tc:emergency:cap:1.2"), std::string::npos);

  // Kafka: the cell's state keyed by its token, and the CAP document on the warnings topic.
  ASSERT_TRUE(waitFor([&] { return hub_->lake().outboxDepth() == 0; }));
  auto risk = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.layer.risk", 1000,
                                           std::chrono::seconds(5));
  std::string last_value;
  for (const auto& m : risk) {
    if (m.key == cell) last_value = m.value;
  }
  ASSERT_FALSE(last_value.empty()) << risk.size() << " messages, none keyed " << cell;
  EXPECT_NE(last_value.find("\"level\":\"I\""), std::string::npos) << last_value;
  auto drafts = firehub::testing::consumeAll(hub_->kafkaBootstrap(), "firehub.v1.warnings", 1);
  ASSERT_EQ(drafts.size(), 1u);
  EXPECT_EQ(drafts[0].headers["content-type"], "application/cap+xml");
  EXPECT_NE(drafts[0].value.find(identifier), std::string::npos);

  // The alarms layer (read through the lake's index of unresolved alarms) draws the detector
  // until it reports normal again, and then no longer.
  auto alarms = parse(get("/api/v1/layers/alarms").body);
  ASSERT_EQ(alarms->getValue<int>("numberMatched"), 1);
  EXPECT_EQ(alarms->getArray("features")
                ->getObject(0)
                ->getObject("properties")
                ->getValue<std::string>("state"),
            "fire");
  auto normal = post(
      "/api/v1/feeds/iot/records",
      R"({"event_id":"T-2","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":1,"description":"正常","time":"2026-11-22T09:25:00+08:00"})"
      "\n",
      "application/x-ndjson");
  ASSERT_EQ(normal.status, 202) << normal.body;
  auto after = parse(get("/api/v1/layers/alarms").body);
  EXPECT_EQ(after->getValue<int>("numberMatched"), 0);
  EXPECT_EQ(after->getArray("features")->size(), 0u);
}

// HTTPS with a certificate made now with the openssl CLI; plain HTTP on that port fails.
// Point layers and OGC collections page through an area of the lake one record at a time:
// every match once across pages, and a total only where the area was counted to its end (the
// budget of records looked at past a full page is 1 here; the default is 10000).
TEST(HubAreaPagingTest, PagesCoverEveryMatchOnceAndGiveTotalsOnlyWhenCounted) {
  TempDir dir;
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir.path();
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  c.area_count_budget = 1;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  const uint16_t port = hub.value()->httpPort();
  const std::string key = firehub::testing::adminKey(dir.path());
  auto get = [&](const std::string& path) {
    return http("127.0.0.1", port, "GET", path, "", "", key);
  };
  ASSERT_EQ(
      http("127.0.0.1", port, "POST", "/api/v1/feeds",
           R"({"id":"bld","agency":"housing-bureau","connector":"firehub.connector.building"})",
           "application/json", key)
          .status,
      201);
  // Four buildings, three of them key units.
  ASSERT_EQ(http("127.0.0.1", port, "POST", "/api/v1/feeds/bld/records",
                 fixture("building", "buildings.geojson"), "application/geo+json", key)
                .status,
            202);

  auto whole = parse(get("/api/v1/layers/key_units?limit=1000").body);
  EXPECT_EQ(whole->getValue<int>("numberMatched"), 3)
      << "a page that is not full counted everything";
  EXPECT_FALSE(whole->has("more"));
  std::set<std::string> seen;
  bool said_more = false;
  for (int offset = 0; offset < 10; ++offset) {
    auto page =
        parse(get("/api/v1/layers/key_units?limit=1&offset=" + std::to_string(offset)).body);
    auto features = page->getArray("features");
    if (features->size() == 0) break;
    ASSERT_EQ(features->size(), 1u);
    EXPECT_TRUE(seen.insert(features->getObject(0)->getValue<std::string>("id")).second)
        << "offset " << offset;
    if (page->has("more")) {
      said_more = true;
      EXPECT_FALSE(page->has("numberMatched"))
          << "no total where the area was not counted to its end";
    } else {
      EXPECT_EQ(page->getValue<int>("numberMatched"), 3) << "offset " << offset;
    }
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(said_more) << "the first page lies two records or more before the area's end";

  // OGC: the next links lead through every building once; numberMatched only when counted.
  std::set<std::string> buildings;
  std::vector<std::string> walk_order;
  std::string next = "/ogc/collections/entities-building/items?limit=1";
  for (int pages = 0; !next.empty() && pages < 10; ++pages) {
    auto reply = get(next);
    ASSERT_EQ(reply.status, 200) << reply.body;
    auto page = parse(reply.body);
    for (size_t i = 0; i < page->getArray("features")->size(); ++i) {
      EXPECT_TRUE(
          buildings.insert(page->getArray("features")->getObject(i)->getValue<std::string>("id"))
              .second);
      walk_order.push_back(page->getArray("features")->getObject(i)->getValue<std::string>("id"));
    }
    if (pages == 0) {
      EXPECT_FALSE(page->has("numberMatched")) << reply.body;
    }
    next.clear();
    auto links = page->getArray("links");
    for (size_t i = 0; i < links->size(); ++i) {
      if (links->getObject(i)->getValue<std::string>("rel") != "next") continue;
      const std::string href = links->getObject(i)->getValue<std::string>("href");
      next = href.substr(href.find("/ogc/"));
      // The next page resumes where this one ended (no walk from the start again).
      EXPECT_NE(next.find("&cursor="), std::string::npos) << next;
      EXPECT_EQ(next.find("offset="), std::string::npos) << next;
    }
    if (pages > 0) {
      EXPECT_FALSE(page->has("numberMatched")) << "no total counted from a cursor";
    }
  }
  EXPECT_EQ(buildings.size(), 4u);
  // An explicit offset (skipped by the geo keys) lands on the same building as the cursor walk.
  for (size_t k = 0; k < walk_order.size(); ++k) {
    auto page = parse(
        get("/ogc/collections/entities-building/items?limit=1&offset=" + std::to_string(k)).body);
    ASSERT_EQ(page->getArray("features")->size(), 1u) << "offset " << k;
    EXPECT_EQ(page->getArray("features")->getObject(0)->getValue<std::string>("id"), walk_order[k])
        << "offset " << k;
  }
  EXPECT_EQ(parse(get("/ogc/collections/entities-building/items?limit=1&offset=4").body)
                ->getArray("features")
                ->size(),
            0u);
  EXPECT_EQ(get("/ogc/collections/entities-building/items?cursor=zz").status, 400);
  EXPECT_EQ(get("/ogc/collections/key_units/items?cursor=00").status, 400)
      << "cursors are the entity collections'";
  EXPECT_EQ(parse(get("/ogc/collections/entities-building/items?limit=10").body)
                ->getValue<int>("numberMatched"),
            4);

  // One item by its id, looked up directly: every building, the key units on their layer, and
  // the building that is no key unit not there.
  size_t not_key_units = 0;
  for (const auto& id : buildings) {
    auto one = get("/ogc/collections/entities-building/items/" + id);
    ASSERT_EQ(one.status, 200) << id << ": " << one.body;
    EXPECT_EQ(parse(one.body)->getValue<std::string>("id"), id);
    const std::string entity = id.substr(id.find(':') + 1);
    auto unit = get("/ogc/collections/key_units/items/" + entity);
    if (seen.count(entity)) {
      ASSERT_EQ(unit.status, 200) << entity << ": " << unit.body;
      EXPECT_EQ(parse(unit.body)->getValue<std::string>("id"), entity);
    } else {
      EXPECT_EQ(unit.status, 404) << entity << " is no key unit";
      ++not_key_units;
    }
  }
  EXPECT_EQ(not_key_units, 1u);
  EXPECT_EQ(get("/ogc/collections/entities-building/items/building:NOPE").status, 404);
  EXPECT_EQ(get("/ogc/collections/entities-building/items/no-colon").status, 404);
}

}  // namespace
}  // namespace firehub
