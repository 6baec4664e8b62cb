// The hub in-process, as a map reads it in vector tiles: the cell, point and building layers as
// Mapbox Vector Tiles read back by an independent decoder (GDAL's MVT driver, ogrinfo), the same
// cells as the GeoJSON layer, generalised below the grid's zoom, a per-tile ETag that moves only
// for the tiles a change touched, TileJSON and OGC API - Tiles; and the map's search.
#include <cmath>
#include <cstdlib>

#include "hub_fixture.h"

namespace firehub {
namespace {

// The tile of zoom z holding lon/lat.
std::string tileAt(int z, double lon, double lat) {
  const double n = std::ldexp(1.0, z);
  const double x = (lon + 180) / 360 * n;
  const double y = (1 - std::asinh(std::tan(lat * M_PI / 180)) / M_PI) / 2 * n;
  return std::to_string(z) + "/" + std::to_string(static_cast<int>(x)) + "/" +
         std::to_string(static_cast<int>(y));
}

// What ogrinfo makes of a tile: its output for the tile written where the MVT driver finds its
// address (…/z/x/y.pbf).
std::string ogrinfo(const std::string& dir, const std::string& tile, const std::string& bytes) {
  const std::string path = dir + "/tiles/" + tile + ".pbf";
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
  const std::string out = dir + "/ogrinfo.txt";
  const std::string cmd = "ogrinfo -ro -al MVT:" + path + " > " + out + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(HubTest, LayersAsVectorTilesFollowTheirChangesTileByTile) {
  ASSERT_NO_FATAL_FAILURE(pushBuildings());
  ASSERT_TRUE(waitFor([&] {
    auto layer = get("/api/v1/layers/risk");
    return layer.status == 200 && layer.body.find("\"numberMatched\":0") == std::string::npos;
  }));
  // The shopping centre (SY-B-000001) at the grid's zoom: its tile holds the same cells as the
  // GeoJSON layer within the tile's bounds, each with the level and colour that layer gives it.
  const double lon = 123.4305, lat = 41.8044;
  const std::string leaf = tileAt(16, lon, lat);
  auto tile = get("/tiles/risk/" + leaf + ".mvt");
  ASSERT_EQ(tile.status, 200) << tile.body;
  EXPECT_EQ(tile.headers["Content-Type"], "application/vnd.mapbox-vector-tile");
  const std::string decoded = ogrinfo(dir_.path(), leaf, tile.body);
  ASSERT_NE(decoded.find("using driver `MVT' successful"), std::string::npos) << decoded;
  auto geojson = parse(get("/api/v1/layers/risk?bbox=123.4299,41.8039,123.4311,41.8049").body);
  auto cell = geojson->getArray("features")->getObject(0)->getObject("properties");
  const std::string token = cell->getValue<std::string>("cell");
  EXPECT_NE(decoded.find("cell (String) = " + token), std::string::npos) << decoded;
  EXPECT_NE(decoded.find("colour (String) = " + cell->getValue<std::string>("colour")),
            std::string::npos);
  EXPECT_NE(decoded.find("POLYGON (("), std::string::npos) << "cells are polygons";

  // Below the grid's zoom a tile draws coarser cells summarising the grid cells under them: the
  // whole fixture's cells are counted in the province view.
  const std::string province = tileAt(6, lon, lat);
  auto province_tile = get("/tiles/risk/" + province + ".mvt");
  ASSERT_GT(province_tile.body.size(), 0u) << province;
  const std::string coarse = ogrinfo(dir_.path(), province, province_tile.body);
  const int all = parse(get("/api/v1/layers/risk").body)->getValue<int>("numberMatched");
  int summed = 0;
  for (size_t at = coarse.find("cells (Integer"); at != std::string::npos;
       at = coarse.find("cells (Integer", at + 1)) {
    summed += std::atoi(coarse.c_str() + coarse.find("= ", at) + 2);
  }
  EXPECT_EQ(summed, all) << coarse;

  // Key units as points (clusters below street zoom) and buildings as footprints at street zoom.
  ASSERT_TRUE(waitFor(
      [&] { return get("/tiles/key_units/" + tileAt(16, lon, lat) + ".mvt").body.size() > 0; }));
  const std::string units =
      ogrinfo(dir_.path(), leaf, get("/tiles/key_units/" + leaf + ".mvt").body);
  EXPECT_NE(units.find("id (String) = SY-B-000001"), std::string::npos) << units;
  EXPECT_NE(units.find("POINT ("), std::string::npos);
  const std::string street = tileAt(15, lon, lat);
  const std::string footprints =
      ogrinfo(dir_.path(), street, get("/tiles/buildings/" + street + ".mvt").body);
  EXPECT_NE(footprints.find("id (String) = SY-B-000001"), std::string::npos) << footprints;
  EXPECT_EQ(get("/tiles/buildings/" + tileAt(12, lon, lat) + ".mvt").body.size(), 0u)
      << "no buildings below street zoom";

  // Each tile has its ETag: unchanged, a revalidation is a 304 without a body.
  const std::string far = tileAt(16, lon + 0.5, lat + 0.5);
  const std::string far_etag = get("/tiles/risk/" + far + ".mvt").headers["ETag"];
  const std::string etag = tile.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  auto again = http("127.0.0.1", port_, "GET", "/tiles/risk/" + leaf + ".mvt", "", "", key_,
                    {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  auto zipped = http("127.0.0.1", port_, "GET", "/tiles/risk/" + leaf + ".mvt", "", "", key_,
                     {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(zipped.headers["Content-Encoding"], "gzip");
  {
    std::istringstream compressed(zipped.body);
    Poco::InflatingInputStream inflate(compressed, Poco::InflatingStreamBuf::STREAM_GZIP);
    std::string plain((std::istreambuf_iterator<char>(inflate)), std::istreambuf_iterator<char>());
    EXPECT_EQ(plain, tile.body);
  }

  // A fire alarm in the shopping centre: its tiles change (a new ETag, the cell now level I);
  // a tile far away keeps its ETag.
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})",
                 "application/json")
                .status,
            201);
  ASSERT_EQ(
      post(
          "/api/v1/feeds/iot/records",
          R"({"event_id":"T-1","device_address":"0011223344ff","building_id":"SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":3,"description":"烟感火警","time":"2026-11-22T09:20:00+08:00"})"
          "\n",
          "application/x-ndjson")
          .status,
      202);
  firehub::testing::Http changed;
  ASSERT_TRUE(waitFor([&] {
    changed = http("127.0.0.1", port_, "GET", "/tiles/risk/" + leaf + ".mvt", "", "", key_,
                   {{"If-None-Match", etag}});
    return changed.status == 200;
  }));
  EXPECT_NE(changed.headers["ETag"], etag);
  const std::string now = ogrinfo(dir_.path(), leaf, changed.body);
  const size_t at = now.find("cell (String) = " + token);
  ASSERT_NE(at, std::string::npos) << now;
  EXPECT_EQ(now.substr(now.find("level (String) = ", at) + 17, 1), "I") << now;
  EXPECT_EQ(get("/tiles/risk/" + far + ".mvt").headers["ETag"], far_etag)
      << "a tile the change did not touch keeps its ETag";

  // TileJSON, and the same tile through OGC API - Tiles (matrix, row, column).
  auto tilejson = parse(get("/tiles/risk.json").body);
  EXPECT_EQ(tilejson->getValue<std::string>("tilejson"), "3.0.0");
  EXPECT_NE(
      tilejson->getArray("tiles")->getElement<std::string>(0).find("/tiles/risk/{z}/{x}/{y}.mvt"),
      std::string::npos);
  auto bounds = tilejson->getArray("bounds");
  EXPECT_LE(bounds->getElement<double>(0), lon);
  EXPECT_GE(bounds->getElement<double>(2), lon);
  const auto slash1 = leaf.find('/'), slash2 = leaf.rfind('/');
  const std::string x = leaf.substr(slash1 + 1, slash2 - slash1 - 1), y = leaf.substr(slash2 + 1);
  auto ogc = get("/ogc/collections/risk/tiles/WebMercatorQuad/16/" + y + "/" + x);
  ASSERT_EQ(ogc.status, 200) << ogc.body;
  EXPECT_EQ(ogc.body, changed.body);
  auto sets = parse(get("/ogc/collections/risk/tiles").body);
  EXPECT_EQ(sets->getArray("tilesets")->getObject(0)->getValue<std::string>("tileMatrixSetURI"),
            "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad");
  auto matrices = parse(get("/ogc/tileMatrixSets/WebMercatorQuad").body)->getArray("tileMatrices");
  EXPECT_EQ(matrices->size(), 17u);
  EXPECT_NE(get("/ogc/conformance").body.find("ogcapi-tiles-1/1.0/conf/mvt"), std::string::npos);

  // Addresses that are not tiles are refused with a reason.
  EXPECT_EQ(get("/tiles/risk/17/0/0.mvt").status, 400);
  EXPECT_EQ(get("/tiles/risk/3/8/0.mvt").status, 400);
  EXPECT_EQ(get("/tiles/risk/3/x/0.mvt").status, 400);
  EXPECT_EQ(get("/tiles/risk/3/1/1e0.mvt").status, 400);
  EXPECT_EQ(get("/tiles/nope/3/1/1.mvt").status, 404);
  EXPECT_EQ(get("/tiles/nope.json").status, 404);
  EXPECT_EQ(get("/ogc/collections/warnings/tiles").status, 404);
}

// The map's search reads an index of the places' public names, addresses and ids, kept current
// as records change: a whole name comes before a name that merely contains the words.
// The risk tiles as the layer was at a moment (?at=): the grid cells with their level then, the
// province view's summaries counting them all, nothing before the layer began.
TEST_F(HubTest, RiskTilesAsTheLayerWasAtAMoment) {
  ASSERT_NO_FATAL_FAILURE(pushBuildings());
  ASSERT_TRUE(waitFor([&] {
    auto layer = get("/api/v1/layers/risk");
    return layer.status == 200 && layer.body.find("\"numberMatched\":0") == std::string::npos;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // versions are kept per second
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char at[32];
  std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const double lon = 123.4305, lat = 41.8044;
  const std::string leaf = tileAt(16, lon, lat);
  auto tile = get("/tiles/risk/" + leaf + ".mvt?at=" + at);
  ASSERT_EQ(tile.status, 200) << tile.body;
  EXPECT_EQ(tile.headers["Content-Type"], "application/vnd.mapbox-vector-tile");
  const std::string decoded = ogrinfo(dir_.path(), leaf, tile.body);
  auto cell = parse(get("/api/v1/layers/risk?bbox=123.4299,41.8039,123.4311,41.8049").body)
                  ->getArray("features")
                  ->getObject(0)
                  ->getObject("properties");
  EXPECT_NE(decoded.find("cell (String) = " + cell->getValue<std::string>("cell")),
            std::string::npos)
      << decoded;
  EXPECT_NE(decoded.find("level (String) = " + cell->getValue<std::string>("level")),
            std::string::npos);
  const std::string province = tileAt(6, lon, lat);
  const std::string coarse =
      ogrinfo(dir_.path(), province, get("/tiles/risk/" + province + ".mvt?at=" + at).body);
  int summed = 0;
  for (size_t i = coarse.find("cells (Integer"); i != std::string::npos;
       i = coarse.find("cells (Integer", i + 1)) {
    summed += std::atoi(coarse.c_str() + coarse.find("= ", i) + 2);
  }
  EXPECT_EQ(summed, parse(get("/api/v1/layers/risk").body)->getValue<int>("numberMatched"))
      << coarse;
  EXPECT_EQ(get("/tiles/risk/" + leaf + ".mvt?at=2020-01-01T00:00:00Z").body.size(), 0u)
      << "nothing before the layer began";
  EXPECT_EQ(get("/tiles/risk/" + leaf + ".mvt?at=noon").status, 400);
  EXPECT_EQ(get("/tiles/hydrants/" + leaf + ".mvt?at=" + std::string(at)).status, 400);
}

TEST_F(HubTest, SearchFindsPlacesByNameAddressAndIdAndFollowsChanges) {
  std::string buildings = fixture("building", "buildings.geojson");
  ASSERT_NO_FATAL_FAILURE(pushBuildings(buildings));
  auto search = [&](const std::string& q) {
    auto r = get("/api/v1/search?q=" + q);
    EXPECT_EQ(r.status, 200) << q << ": " << r.body;
    return parse(r.body);
  };
  auto firstId = [](const Poco::JSON::Object::Ptr& answer) {
    auto results = answer->getArray("results");
    return results->size() ? results->getObject(0)->getValue<std::string>("entity_id") : "";
  };
  const std::string palace = "%E6%95%85%E5%AE%AB";  // 故宫
  ASSERT_TRUE(waitFor([&] { return firstId(search(palace)) == "SY-B-000003"; }));
  auto found = search(palace)->getArray("results")->getObject(0);
  EXPECT_EQ(found->getValue<std::string>("matched"), "name");
  EXPECT_EQ(found->getValue<std::string>("label"), "沈阳故宫");
  EXPECT_EQ(found->getArray("point")->size(), 2u);
  EXPECT_EQ(firstId(search("sy-b-000002")), "SY-B-000002") << "ids, case folded";
  EXPECT_EQ(
      search("sy-b-000002")->getArray("results")->getObject(0)->getValue<std::string>("matched"),
      "entity_id");
  EXPECT_EQ(search("sy-b-0000")->getArray("results")->size(), 4u);
  EXPECT_TRUE(search("sy-b-0000")->getValue<bool>("complete"));
  EXPECT_EQ(get("/api/v1/search?q=sy-b-0000&limit=2").body.find("\"complete\":false") !=
                std::string::npos,
            true)
      << "more matched than the limit";

  // A renamed building is found by its new name only, once.
  const std::string old_name = "沈阳故宫";
  buildings.replace(buildings.find(old_name), old_name.size(), "盛京宫阙");
  ASSERT_NO_FATAL_FAILURE(pushBuildings(buildings));
  const std::string renamed = "%E7%9B%9B%E4%BA%AC";  // 盛京
  ASSERT_TRUE(waitFor([&] { return firstId(search(renamed)) == "SY-B-000003"; }));
  EXPECT_EQ(search(palace)->getArray("results")->size(), 0u);
  EXPECT_EQ(search("sy-b-000003")->getArray("results")->size(), 1u);

  // Queries that cannot be searched are refused with a reason.
  EXPECT_EQ(get("/api/v1/search?q=a").status, 400);
  EXPECT_EQ(get("/api/v1/search?q=ab%01cd").status, 400);
  EXPECT_EQ(get("/api/v1/search?q=" + std::string(201, 'x')).status, 400);
}

// The one-map's basemap and first view are checked when the settings load.
TEST(MapSettingsTest, BasemapAndFirstViewAreCheckedAtLoad) {
  TempDir dir;
  auto with = [&](const std::string& key, const std::string& value) {
    return loadConfig("", {{"data.dir", dir.path()}, {key, value}});
  };
  for (const char* fine : {"https://map.example.gov.cn/tiles/{z}/{x}/{y}.png?key=abc",
                           "http://10.1.2.3:8080/styles/province/style.json"}) {
    auto config = with("map.basemap", fine);
    ASSERT_TRUE(config.isOk()) << fine << ": " << config.status().toString();
    EXPECT_EQ(config.value().http_limits.basemap, fine);
  }
  for (const char* bad : {"ftp://map.example/{z}/{x}/{y}.png", "https://map.example/{z}/{x}.png",
                          "map.example/style.json", "https://map.example/a b/style.json"}) {
    auto refused = with("map.basemap", bad);
    ASSERT_FALSE(refused.isOk()) << bad;
    EXPECT_NE(refused.status().message().find("map.basemap"), std::string::npos);
  }
  EXPECT_TRUE(with("map.initial_view", "123.43,41.80,12").isOk());
  for (const char* bad :
       {"123.43,41.80", "nan,41.8,12", "123.4,88,12", "123.4,41.8,23", "1,2,3x"}) {
    auto refused = with("map.initial_view", bad);
    ASSERT_FALSE(refused.isOk()) << bad;
    EXPECT_NE(refused.status().message().find("map.initial_view"), std::string::npos);
  }
}

}  // namespace
}  // namespace firehub
