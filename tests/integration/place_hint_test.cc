// Records that name their place instead of giving it, placed by the hub's district outlines
// (map.outlines: here the demo's, whose features carry GB/T 2260 "adcode"s). A CAP area given
// only by administrative-division geocodes lies on the districts they name (a city's code: all
// of its districts); a code no outline carries, or another geocode scheme, keeps the warning
// unplaced with the reason, listed among the alerts but not on the map. A FHIR Location without a
// position is placed at the centre of the district its address names, or kept unplaced.
#include "hub_fixture.h"

namespace firehub {
namespace {

std::string capAlert(const std::string& id, const std::string& scheme, const std::string& code) {
  return R"(<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>)" + id +
         R"(</identifier><sender>lnqx@cma</sender><sent>2026-12-07T07:30:00+08:00</sent>)"
         R"(<status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info>)"
         R"(<event>大风</event><urgency>Expected</urgency><severity>Severe</severity>)"
         R"(<certainty>Likely</certainty><headline>)" +
         id + R"(</headline><area><areaDesc>预警区域</areaDesc><geocode><valueName>)" + scheme +
         "</valueName><value>" + code + "</value></geocode></area></info></alert>";
}

class PlaceHintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HubConfig c = sourceHubConfig(dir_.path(), true);
    c.outlines_file = firehub::testing::sourceDir() + "/web/onemap/districts.geojson";
    auto hub = Hub::start(c);
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hub_ = std::move(hub).value();
    key_ = firehub::testing::adminKey(dir_.path());
    for (const char* feed :
         {R"({"id":"cap","agency":"met","connector":"firehub.connector.weather"})",
          R"({"id":"fhir","agency":"health","connector":"firehub.connector.health"})"}) {
      auto made = call("POST", "/api/v1/feeds", feed, "application/json");
      ASSERT_EQ(made.status, 201) << made.body;
    }
  }
  firehub::testing::Http call(const std::string& method, const std::string& path,
                              const std::string& body = "", const std::string& type = "") {
    return http("127.0.0.1", hub_->httpPort(), method, path, body, type, key_);
  }
  // The received warning `headline`'s alert (null when it is not listed).
  Poco::JSON::Object::Ptr alert(const std::string& headline) {
    auto alerts = parse(call("GET", "/api/v1/alerts").body)->getArray("alerts");
    for (size_t i = 0; alerts && i < alerts->size(); ++i) {
      auto a = alerts->getObject(static_cast<unsigned>(i));
      if (a->getValue<std::string>("kind") == "cap_received" &&
          a->getValue<std::string>("detail") == headline)
        return a;
    }
    return nullptr;
  }

  TempDir dir_;
  std::unique_ptr<Hub> hub_;
  std::string key_;
};

TEST_F(PlaceHintTest, GeocodesAndAddressesArePlacedByTheDistrictOutlines) {
  auto pushed = call("POST", "/api/v1/feeds/cap/records",
                     "<alerts>" + capAlert("HEPING", "行政区划代码", "210102") +
                         capAlert("CITY", "GB/T 2260", "210100000000") +
                         capAlert("ELSEWHERE", "行政区划代码", "220102") +
                         capAlert("FIPS", "FIPS6", "006037") + "</alerts>",
                     "application/cap+xml");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  EXPECT_EQ(parse(pushed.body)->getValue<int>("accepted"), 4) << "none refused: " << pushed.body;
  EXPECT_EQ(parse(pushed.body)->getValue<int>("rejected"), 0) << pushed.body;

  // 和平区 (210102) in the demo's outlines lies within 123.3733..123.45 E, 41.7667..41.8333 N.
  auto heping = alert("HEPING");
  ASSERT_TRUE(heping) << call("GET", "/api/v1/alerts").body;
  auto point = heping->getArray("point");
  ASSERT_TRUE(point) << "placed";
  EXPECT_NEAR(point->getElement<double>(0), 123.41, 0.04);
  EXPECT_NEAR(point->getElement<double>(1), 41.80, 0.04);
  std::string id = heping->getValue<std::string>("id").substr(4);
  std::string escaped;
  Poco::URI::encode(id, ":#@,/", escaped);
  auto record = call("GET", "/api/v1/records/" + escaped);
  EXPECT_NE(record.body.find("210102 -> 和平区"), std::string::npos) << record.body;
  EXPECT_NE(record.body.find("\"multi_polygon\""), std::string::npos) << record.body;

  // The city's code: all eight districts, so the middle of their union.
  auto city = alert("CITY");
  ASSERT_TRUE(city && city->getArray("point"));
  EXPECT_NEAR(city->getArray("point")->getElement<double>(0), 123.40, 0.1);

  // A code no outline carries, and a scheme that is not administrative-division codes: kept,
  // listed with the reason, not drawn.
  auto elsewhere = alert("ELSEWHERE");
  ASSERT_TRUE(elsewhere);
  EXPECT_FALSE(elsewhere->getArray("point"));
  EXPECT_NE(elsewhere->getValue<std::string>("unplaced")
                .find("no district of map.outlines matches code 220102"),
            std::string::npos)
      << elsewhere->getValue<std::string>("unplaced");
  auto fips = alert("FIPS");
  ASSERT_TRUE(fips);
  EXPECT_NE(fips->getValue<std::string>("unplaced").find("geocode scheme 'FIPS6'"),
            std::string::npos)
      << fips->getValue<std::string>("unplaced");

  // FHIR Locations without a position: 浑南区 is one of the outlines, 朝阳区 is not.
  auto fhir = call(
      "POST", "/api/v1/feeds/fhir/records",
      R"({"resourceType":"Bundle","type":"collection","entry":[)"
      R"({"resource":{"resourceType":"Location","id":"hn-1","status":"active","name":"浑南医院",)"
      R"("type":[{"coding":[{"code":"HOSP"}]}],"address":{"district":"浑南区","city":"沈阳市"}}},)"
      R"({"resource":{"resourceType":"Location","id":"cy-1","status":"active","name":"朝阳医院",)"
      R"("address":{"district":"朝阳区","city":"北京市"}}}]})",
      "application/fhir+json");
  ASSERT_EQ(fhir.status, 202) << fhir.body;
  EXPECT_EQ(parse(fhir.body)->getValue<int>("accepted"), 2) << fhir.body;
  auto health = call("GET", "/api/v1/entities?domain=health&limit=10").body;
  EXPECT_NE(health.find("hn-1"), std::string::npos) << "placed, so on the map: " << health;
  EXPECT_EQ(health.find("cy-1"), std::string::npos) << "unplaced, so not on the map: " << health;
  auto unplaced = parse(fhir.body)->getArray("unplaced");
  ASSERT_TRUE(unplaced && unplaced->size() == 1) << fhir.body;
  EXPECT_NE(unplaced->getObject(0)->getValue<std::string>("reason").find(
                "no district of map.outlines matches name 朝阳区, name 北京市"),
            std::string::npos)
      << fhir.body;
}

}  // namespace
}  // namespace firehub
