// Subscriptions as data: parsing and its checks, what is stored reads back the same, matching
// records, and the webhook signature.
#include <gtest/gtest.h>

#include "firehub/subscriptions.h"

namespace firehub::subs {
namespace {

firehub::v1::Record hydrant(const std::string& id, firehub::v1::WaterSource::Status status,
                            double pressure, double lon, double lat) {
  firehub::v1::Record r;
  r.set_id("hyd:" + id);
  r.set_domain("water");
  r.set_entity_type("water_source");
  r.set_entity_id(id);
  r.set_agency("water-bureau");
  r.mutable_water_source()->set_status(status);
  r.mutable_water_source()->set_pressure_mpa(pressure);
  r.mutable_geometry()->mutable_point()->set_lon(lon);
  r.mutable_geometry()->mutable_point()->set_lat(lat);
  return r;
}

TEST(SubscriptionTest, WhatIsStoredParsesBackToTheSameSubscription) {
  auto s = parseSubscription(
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"eq","value":"out_of_service"},)"
      R"({"field":"water_source.pressure_mpa","op":"lt","value":0.1},{"field":"agency","op":"in","values":["a","b"]}],)"
      R"("bbox":[123,41,124,42]},"delivery":{"kind":"sse"}})",
      false);
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  auto again = parseSubscription(subscriptionJson(s.value(), true), false);
  ASSERT_TRUE(again.isOk()) << again.status().toString() << " in "
                            << subscriptionJson(s.value(), true);
  EXPECT_EQ(subscriptionJson(again.value()), subscriptionJson(s.value()));
  ASSERT_EQ(again->where.size(), 3u);
  EXPECT_EQ(again->where[0].values, (std::vector<std::string>{"out_of_service"}));
  EXPECT_EQ(again->where[2].values, (std::vector<std::string>{"a", "b"}));
  // What earlier versions stored ('values' for every operator) still reads.
  EXPECT_TRUE(
      parseSubscription(
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"agency","op":"eq","values":["a"]}]}})",
          false)
          .isOk());
}

TEST(SubscriptionTest, FiltersAreCheckedAgainstTheSchemaAndBounded) {
  auto refused = [](const std::string& json, bool restricted = false) {
    auto s = parseSubscription(json, restricted);
    return s.isOk() ? std::string() : s.status().message();
  };
  EXPECT_NE(refused(R"({"topic":"firehub.v1.nowhere"})"), "");
  EXPECT_NE(
      refused(
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.colour","op":"eq","value":1}]}})"),
      "");
  EXPECT_NE(
      refused(
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"agency","op":"like","value":"a"}]}})"),
      "");
  EXPECT_NE(
      refused(
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"agency","op":"gt","value":"a"}]}})"),
      "");
  EXPECT_NE(
      refused(
          R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.pressure_mpa","op":"gt","value":"inf"}]}})"),
      "");
  EXPECT_NE(refused(R"({"topic":"firehub.v1.water","filter":{"bbox":[1e999,0,1,1]}})"), "");
  EXPECT_NE(refused(R"({"topic":"firehub.v1.water","filter":{"polygon":[[0,0],[1,1]]}})"), "");
  const std::string reporter =
      R"({"topic":"firehub.v1.police","filter":{"where":[{"field":"police_incident.reporter_name","op":"eq","value":"x"}]}})";
  EXPECT_NE(refused(reporter).find("restricted"), std::string::npos);
  EXPECT_EQ(refused(reporter, true), "");
  EXPECT_NE(
      refused(
          R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://u:p@h/","secret":"a-long-shared-secret"}})"),
      "");
  EXPECT_EQ(
      refused(
          R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"https://h/","secret":"a-long-shared-secret"}})"),
      "");
}

TEST(SubscriptionTest, MatchesOnFieldsEnumNamesAndArea) {
  auto s = parseSubscription(
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"eq","value":"out_of_service"},)"
      R"({"field":"water_source.pressure_mpa","op":"lte","value":0.1}],"polygon":[[123,41],[124,41],[124,42],[123,42]]}})",
      false);
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  using WS = firehub::v1::WaterSource;
  EXPECT_TRUE(matches(s.value(), hydrant("A", WS::STATUS_OUT_OF_SERVICE, 0.05, 123.5, 41.5)));
  EXPECT_FALSE(matches(s.value(), hydrant("B", WS::STATUS_IN_SERVICE, 0.05, 123.5, 41.5)));
  EXPECT_FALSE(matches(s.value(), hydrant("C", WS::STATUS_OUT_OF_SERVICE, 0.3, 123.5, 41.5)));
  EXPECT_FALSE(matches(s.value(), hydrant("D", WS::STATUS_OUT_OF_SERVICE, 0.05, 125.5, 41.5)));
  auto other = hydrant("E", WS::STATUS_OUT_OF_SERVICE, 0.05, 123.5, 41.5);
  other.set_domain("police");
  EXPECT_FALSE(matches(s.value(), other));
}

TEST(SubscriptionTest, WebhookSignaturesAreHmacSha256OfTheTimeAndBody) {
  // RFC 4231, test case 2.
  EXPECT_EQ(hmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(webhookSignature("Jefe", 1733500000, "{}"),
            "t=1733500000,sha256=" + hmacSha256Hex("Jefe", "1733500000.{}"));
}

}  // namespace
}  // namespace firehub::subs
