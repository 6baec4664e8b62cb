// Data as Chinese agencies send it. Bodies in their encodings (tests/data/encodings, written by
// Python's codecs): the Content-Type's charset, the feed's encoding (utf-8, gb18030, auto), an
// XML declaration's encoding; a body not valid in its encoding is a 400 that says so; dead
// letters keep the bytes as they were sent. Positions from Chinese web maps (a feed's crs:
// gcj02, bd09) stored in WGS 84 with the original kept in provenance.
#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>

#include "hub_fixture.h"

namespace firehub {
namespace {

std::string encoded(const std::string& name) {
  std::ifstream in(firehub::testing::sourceDir() + "/tests/data/encodings/" + name,
                   std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  EXPECT_FALSE(out.str().empty()) << name;
  return out.str();
}

std::string unbase64(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in, Poco::BASE64_NO_PADDING);
  std::ostringstream out;
  out << decoder.rdbuf();
  return out.str();
}

class AgencyDataTest : public HubTest {
 protected:
  // A station feed with this encoding ("" leaves the default).
  void stationFeed(const std::string& id, const std::string& encoding) {
    std::string def =
        R"({"id":")" + id + R"(","agency":"fire","connector":"firehub.connector.station")";
    if (!encoding.empty()) def += R"(,"encoding":")" + encoding + "\"";
    auto made = post("/api/v1/feeds", def + "}", "application/json");
    ASSERT_EQ(made.status, 201) << made.body;
  }
  std::string nameOf(const std::string& station) {
    auto r = get("/api/v1/entities?domain=station&limit=100");
    auto features = parse(r.body)->getArray("features");
    for (size_t i = 0; features && i < features->size(); ++i) {
      auto f = features->getObject(static_cast<unsigned>(i));
      if (f->getValue<std::string>("id") == station)
        return f->getObject("properties")->getObject("fire_station")->getValue<std::string>("name");
    }
    return "";
  }
};

TEST_F(AgencyDataTest, AGbkBodyIsReadInTheCharsetItsContentTypeDeclares) {
  ASSERT_NO_FATAL_FAILURE(stationFeed("st", ""));
  const std::string gbk = encoded("stations.gbk.csv");
  // Without a charset the default is UTF-8: refused whole, saying what to do.
  auto plain = post("/api/v1/feeds/st/records", gbk, "text/csv");
  EXPECT_EQ(plain.status, 400);
  EXPECT_NE(plain.body.find("not valid UTF-8 (byte "), std::string::npos) << plain.body;
  EXPECT_NE(plain.body.find("charset=GB18030"), std::string::npos) << plain.body;
  // Declared: each of the names agencies use for it.
  auto r = post("/api/v1/feeds/st/records", gbk, "text/csv; charset=GBK");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 4) << r.body;
  EXPECT_EQ(nameOf("LN-SY-002"), "和平区消防救援站");
  r = post("/api/v1/feeds/st/records", gbk, "text/csv;charset=\"gb2312\"");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("duplicates"), 4) << "the same records";
}

TEST_F(AgencyDataTest, TheFeedsEncodingCoversAgenciesThatSendNoCharset) {
  ASSERT_NO_FATAL_FAILURE(stationFeed("gb", "gb18030"));
  ASSERT_NO_FATAL_FAILURE(stationFeed("au", "auto"));
  EXPECT_EQ(parse(get("/api/v1/feeds/gb").body)->getValue<std::string>("encoding"), "gb18030");
  auto r = post("/api/v1/feeds/gb/records", encoded("stations.gbk.csv"), "text/csv");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 4);
  // auto: GB18030 when the bytes are not UTF-8, UTF-8 when they are.
  r = post("/api/v1/feeds/au/records", encoded("stations.gb18030.geojson"), "application/geo+json");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 2);
  EXPECT_EQ(nameOf("LN-SY-006"), "大东区专职消防队\xF0\xA0\x80\xBE")
      << "a four-byte GB18030 character";
  r = post("/api/v1/feeds/au/records", fixture("station", "stations.csv"), "text/csv");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 4);
  auto bad = post(
      "/api/v1/feeds",
      R"({"id":"x","agency":"fire","connector":"firehub.connector.station","encoding":"big5-hkscs"})",
      "application/json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("utf-8, gb18030 or auto"), std::string::npos) << bad.body;
}

TEST_F(AgencyDataTest, ABodyNotValidInItsDeclaredEncodingIsRefusedNamingIt) {
  ASSERT_NO_FATAL_FAILURE(stationFeed("st", ""));
  auto r = post("/api/v1/feeds/st/records", encoded("stations.gbk.csv"), "text/csv; charset=utf-8");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not valid UTF-8 (byte "), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("as its Content-Type declares"), std::string::npos) << r.body;
  // 0x81 0x20 starts no GB18030 character.
  r = post(
      "/api/v1/feeds/st/records",
      "station_id,name,kind,lon,lat,status,engines\nLN-1,\x81 ,class1,123.4,41.8,in_service,1\n",
      "text/csv; charset=gb18030");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not valid GB18030: byte 49 (0x81) starts no character"), std::string::npos)
      << r.body;
  r = post("/api/v1/feeds/st/records", "a,b\n", "text/csv; charset=no-such-charset");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("charset 'no-such-charset' of the Content-Type is not known"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(parse(get("/api/v1/feeds/st").body)->getObject("counts")->getValue<int>("accepted"), 0);
  // Stray bytes in a UTF-8 body nothing declared: those rows are refused, the others stored,
  // and the answer says why first.
  r = post(
      "/api/v1/feeds/st/records",
      "station_id,name,kind,lon,lat,status,engines\nLN-1,\xff\xfe,class1,123.4,41.8,in_service,1\n"
      "LN-2,浑南站,class1,123.5,41.7,in_service,2\n",
      "text/csv");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 1) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("rejected"), 1) << r.body;
  EXPECT_EQ(parse(r.body)->getArray("errors")->getElement<std::string>(0).rfind(
                "the body is not valid UTF-8 (byte 49)", 0),
            0u)
      << r.body;
}

TEST_F(AgencyDataTest, AnXmlDeclarationsEncodingIsHonoured) {
  auto r =
      post("/api/v1/feeds/wx/records", encoded("warning.gb2312.cap.xml"), "application/cap+xml");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 1) << r.body;
  auto list = get("/api/v1/entities?domain=weather&limit=10");
  EXPECT_NE(list.body.find("沈阳市气象台发布森林火险橙色预警"), std::string::npos) << list.body;
}

TEST_F(AgencyDataTest, ADeadLetterKeepsTheBytesAsTheyWereSent) {
  ASSERT_NO_FATAL_FAILURE(stationFeed("st", ""));
  const std::string gbk = encoded("stations.invalid.gbk.csv");
  auto r = post("/api/v1/feeds/st/records", gbk, "text/csv; charset=GBK");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 1);
  EXPECT_EQ(parse(r.body)->getValue<int>("rejected"), 1);
  auto letters = parse(get("/api/v1/dlq?feed=st").body)->getArray("dead_letters");
  ASSERT_EQ(letters->size(), 1u);
  auto dl = letters->getObject(0);
  EXPECT_EQ(dl->getValue<std::string>("content_type"), "text/csv; charset=gb18030");
  const std::string raw = unbase64(dl->getValue<std::string>("raw_base64"));
  const std::string row = gbk.substr(gbk.find("LN-SY-101"));
  EXPECT_EQ(raw, row.substr(0, row.find('\n'))) << "the GBK bytes of the row";
  // Replayed, it is read in its charset again (and fails on its kind, not on its bytes).
  auto replay = post("/api/v1/dlq/replay", R"({"ids":[)" + dl->getValue<std::string>("id") + "]}",
                     "application/json");
  EXPECT_NE(replay.body.find("'kind'"), std::string::npos) << replay.body;
}

TEST_F(AgencyDataTest, PositionsFromChineseWebMapsAreStoredInWgs84) {
  ASSERT_NO_FATAL_FAILURE(stationFeed("gcj", ""));
  ASSERT_EQ(
      post("/api/v1/feeds",
           R"({"id":"bd","agency":"fire","connector":"firehub.connector.station","crs":"bd09"})",
           "application/json")
          .status,
      201);
  auto patched = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/gcj", R"({"crs":"gcj02"})",
                      "application/merge-patch+json", key_);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(parse(patched.body)->getValue<std::string>("crs"), "gcj02");
  const std::string header = "station_id,name,kind,lon,lat,status,engines\n";
  ASSERT_EQ(post("/api/v1/feeds/gcj/records",
                 header + "G1,gcj,class1,123.4310,41.8057,in_service,3\n", "text/csv")
                .status,
            202);
  ASSERT_EQ(post("/api/v1/feeds/bd/records",
                 header + "B1,bd,class1,123.4310,41.8057,in_service,3\n", "text/csv")
                .status,
            202);
  auto stored = [&](const std::string& id) {
    auto r = get("/api/v1/entities?domain=station&limit=100");
    auto features = parse(r.body)->getArray("features");
    for (size_t i = 0; features && i < features->size(); ++i) {
      auto f = features->getObject(static_cast<unsigned>(i));
      if (f->getValue<std::string>("id") == id) return f;
    }
    return Poco::JSON::Object::Ptr();
  };
  for (auto [id, crs] :
       {std::pair{"G1", pipeline::Crs::kGcj02}, std::pair{"B1", pipeline::Crs::kBd09}}) {
    auto f = stored(id);
    ASSERT_TRUE(f) << id;
    auto at = f->getObject("geometry")->getArray("coordinates");
    const auto want = pipeline::toWgs84({123.4310, 41.8057}, crs);
    EXPECT_NEAR(at->getElement<double>(0), want.lon, 1e-6) << id;
    EXPECT_NEAR(at->getElement<double>(1), want.lat, 1e-6) << id;
    EXPECT_GT(std::fabs(at->getElement<double>(0) - 123.4310), 0.003)
        << id << ": moved hundreds of metres";
    auto prov = f->getObject("properties")->getObject("provenance");
    EXPECT_EQ(prov->getValue<std::string>("original_crs"), pipeline::crsName(crs));
    EXPECT_DOUBLE_EQ(prov->getObject("original_position")->getValue<double>("lon"), 123.431);
  }
  // ?crs=gcj02 gives a Chinese web map's base layer its datum back: the position as sent.
  auto asGcj = parse(get("/api/v1/entities?domain=station&limit=100&crs=gcj02").body);
  bool found = false;
  for (size_t i = 0; i < asGcj->getArray("features")->size(); ++i) {
    auto f = asGcj->getArray("features")->getObject(static_cast<unsigned>(i));
    if (f->getValue<std::string>("id") != "G1") continue;
    found = true;
    auto at = f->getObject("geometry")->getArray("coordinates");
    EXPECT_NEAR(at->getElement<double>(0), 123.4310, 1e-6) << "round trip, within 0.1 m";
    EXPECT_NEAR(at->getElement<double>(1), 41.8057, 1e-6);
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(get("/api/v1/entities?domain=station&crs=epsg:3857").status, 400);
  auto bad = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/gcj", R"({"crs":"epsg:4490"})",
                  "application/merge-patch+json", key_);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("wgs84, cgcs2000, gcj02 or bd09"), std::string::npos) << bad.body;
}

// A register exported from Excel (written by openpyxl): one sheet of several, read as CSV.
TEST_F(AgencyDataTest, ASpreadsheetsSheetIsReadLikeCsv) {
  const std::string xlsx_file = dir_.sub("stations.xlsx");
  const std::string write = "/usr/bin/python3 " + firehub::testing::sourceDir() +
                            "/tests/data/spreadsheets/write_stations.py " + xlsx_file;
  ASSERT_EQ(std::system(write.c_str()), 0) << write << " (Debian's python3-openpyxl)";
  std::ifstream in(xlsx_file, std::ios::binary);
  const std::string xlsx((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(xlsx.size(), 1000u);
  const std::string type = pipeline::kXlsxType;
  ASSERT_EQ(
      post(
          "/api/v1/feeds",
          R"({"id":"reg","agency":"fire","connector":"firehub.connector.station","sheet":"消防站"})",
          "application/json")
          .status,
      201);
  auto r = post("/api/v1/feeds/reg/records", xlsx, type);
  ASSERT_EQ(r.status, 202) << r.body;
  auto obj = parse(r.body);
  EXPECT_EQ(obj->getValue<int>("accepted"), 3) << r.body;
  EXPECT_EQ(obj->getValue<int>("rejected"), 1) << r.body;
  EXPECT_EQ(obj->getArray("errors")->getElement<std::string>(0).rfind("line 6: field 'kind'", 0),
            0u)
      << "the sheet's row number: " << r.body;
  EXPECT_EQ(nameOf("LN-SY-102"), "中街微型消防站, 沈河");
  EXPECT_EQ(nameOf("LN-SY-103"), "新区\"特勤\"站");
  auto stations = get("/api/v1/entities?domain=station&limit=10").body;
  EXPECT_NE(stations.find("\"observed_at\":\"2026-11-01T01:30:00Z\""), std::string::npos)
      << "09:30 local (+08:00) from an Excel date-time cell";
  EXPECT_NE(stations.find("\"observed_at\":\"2026-11-02T16:00:00Z\""), std::string::npos)
      << "midnight of 2026-11-03 local";
  EXPECT_NE(stations.find("\"engines\":8"), std::string::npos);
  // The first sheet is the notes: without "sheet" the header is not there, and says so.
  ASSERT_NO_FATAL_FAILURE(stationFeed("first", ""));
  auto first = post("/api/v1/feeds/first/records", xlsx, type);
  EXPECT_EQ(first.status, 400);
  EXPECT_NE(first.body.find("CSV header lacks column"), std::string::npos) << first.body;
  auto patched = http("127.0.0.1", port_, "PATCH", "/api/v1/feeds/first", R"({"sheet":"nope"})",
                      "application/merge-patch+json", key_);
  ASSERT_EQ(patched.status, 200) << patched.body;
  auto none = post("/api/v1/feeds/first/records", xlsx, type);
  EXPECT_EQ(none.status, 400);
  EXPECT_NE(none.body.find("no sheet 'nope' (it has 说明, 消防站)"), std::string::npos)
      << none.body;
  auto junk = post("/api/v1/feeds/reg/records", "PK\x03\x04 not a zip", type);
  EXPECT_EQ(junk.status, 400) << junk.body;
}

// A CAP Update that arrives before the alert it updates is kept, not refused; the alert, when it
// comes later, stays withdrawn.
TEST_F(AgencyDataTest, AnUpdateBeforeItsAlertIsKeptAndTheAlertStaysWithdrawn) {
  std::string alert = fixture("weather", "warning.cap.xml");
  const std::string expires = "<expires>2026-11-23T20:00:00+08:00</expires>";
  alert.replace(alert.find(expires), expires.size(),
                "<expires>2099-11-23T20:00:00+08:00</expires>");
  std::string update = alert;
  auto swap = [&](const std::string& from, const std::string& to) {
    ASSERT_NE(update.find(from), std::string::npos) << from;
    update.replace(update.find(from), from.size(), to);
  };
  ASSERT_NO_FATAL_FAILURE(swap("LN-SY-2026-1122-0001", "LN-SY-2026-1122-0002"));
  ASSERT_NO_FATAL_FAILURE(
      swap("<sent>2026-11-22T07:30:00+08:00</sent>", "<sent>2026-11-22T10:00:00+08:00</sent>"));
  ASSERT_NO_FATAL_FAILURE(swap("<msgType>Alert</msgType>",
                               "<msgType>Update</msgType><references>shenyang.weather.cn,"
                               "LN-SY-2026-1122-0001,2026-11-22T07:30:00+08:00</references>"));
  auto r = post("/api/v1/feeds/wx/records", update, "application/cap+xml");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 2) << "the withdrawal and the new alert";
  EXPECT_EQ(parse(r.body)->getValue<int>("rejected"), 0) << r.body;
  EXPECT_EQ(parse(get("/api/v1/dlq?feed=wx").body)->getArray("dead_letters")->size(), 0u);
  r = post("/api/v1/feeds/wx/records", alert, "application/cap+xml");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(parse(r.body)->getValue<int>("accepted"), 1) << r.body;
  auto layer = parse(get("/api/v1/layers/warnings").body);
  ASSERT_EQ(layer->getValue<int>("numberMatched"), 1) << get("/api/v1/layers/warnings").body;
  EXPECT_NE(get("/api/v1/layers/warnings").body.find("LN-SY-2026-1122-0002"), std::string::npos);
}

// A resource of a kind the connector maps to nothing is counted as skipped, by kind, with why.
TEST_F(AgencyDataTest, WhatAConnectorDoesNotMapIsReportedSkipped) {
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"hosp","agency":"health","connector":"firehub.connector.health"})",
                 "application/json")
                .status,
            201);
  auto r = post("/api/v1/feeds/hosp/records",
                R"({"resourceType":"Organization","id":"org-1","name":"沈阳市第一人民医院"})",
                "application/fhir+json");
  ASSERT_EQ(r.status, 202) << r.body;
  auto obj = parse(r.body);
  EXPECT_EQ(obj->getValue<int>("accepted"), 0);
  EXPECT_EQ(obj->getValue<int>("rejected"), 0);
  EXPECT_EQ(obj->getValue<int>("skipped"), 1) << r.body;
  auto kind = obj->getObject("skipped_kinds")->getObject("Organization");
  ASSERT_TRUE(kind) << r.body;
  EXPECT_EQ(kind->getValue<int>("count"), 1);
  EXPECT_NE(kind->getValue<std::string>("reason").find("Location"), std::string::npos);
  // Nothing skipped: still said, as 0.
  r = post("/api/v1/feeds/wx/records",
           std::string(firehub::testing::kWeatherHeader) +
               "S1,123.40,41.80,2026-11-22T08:00:00+08:00,3.5,40,12,310,0\n",
           "text/csv");
  EXPECT_EQ(parse(r.body)->getValue<int>("skipped"), 0) << r.body;
}

}  // namespace
}  // namespace firehub
