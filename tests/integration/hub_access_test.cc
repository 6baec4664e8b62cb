// The hub in-process, as principals meet it: keys and roles, restricted fields, HTTPS,
// subscriptions by SSE, webhook and Kafka, and plugins added without a restart.
#include "hub_fixture.h"
#include "processes.h"

namespace firehub {
namespace {

// Keys: who may write what, and who may see restricted fields.
TEST_F(HubTest, KeysKeepAgenciesToTheirOwnFeedsAndWritesNeedAKey) {
  auto anonymous = http("127.0.0.1", port_, "POST", "/api/v1/feeds",
                        R"({"id":"x","agency":"met","connector":"firehub.connector.weather"})",
                        "application/json");
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_NE(anonymous.body.find("API key"), std::string::npos);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/feeds", "", "", "fh_nope").status, 401);
  // Loopback readers without a key see the public view: feeds without their config, no dead
  // letters.
  auto feeds = http("127.0.0.1", port_, "GET", "/api/v1/feeds");
  ASSERT_EQ(feeds.status, 200);
  EXPECT_EQ(feeds.body.find("\"config\""), std::string::npos) << feeds.body;
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/dlq").status, 403);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/keys").status, 403);

  // The admin makes an agency key; the key is shown once, the list never shows it.
  auto made = post(
      "/api/v1/keys",
      R"({"role":"agency","agency":"water-bureau","domains":["water"],"note":"hydrant register"})",
      "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string water = parse(made.body)->getValue<std::string>("key");
  std::string water_id = parse(made.body)->getValue<std::string>("id");
  ASSERT_EQ(water.size(), 80u);
  auto listed = get("/api/v1/keys");
  EXPECT_EQ(listed.body.find(water.substr(16)), std::string::npos)
      << "secrets are stored only as hashes";
  EXPECT_NE(listed.body.find(water_id), std::string::npos);
  EXPECT_EQ(post("/api/v1/keys", R"({"role":"agency"})", "application/json").status, 400);
  EXPECT_EQ(post("/api/v1/keys", R"({"role":"root"})", "application/json").status, 400);

  auto as = [&](const std::string& key, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& type = "") {
    return http("127.0.0.1", port_, method, path, body, type, key);
  };
  EXPECT_EQ(as(water, "POST", "/api/v1/feeds",
               R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})",
               "application/json")
                .status,
            201);
  auto other =
      as(water, "POST", "/api/v1/feeds",
         R"({"id":"cad2","agency":"public-security","connector":"firehub.connector.police"})",
         "application/json");
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_NE(other.body.find("public-security"), std::string::npos);
  EXPECT_EQ(
      as(water, "POST", "/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv")
          .status,
      202);
  auto foreign =
      as(water, "POST", "/api/v1/feeds/wx/records", std::string(kWeatherHeader), "text/csv");
  EXPECT_EQ(foreign.status, 403) << "the weather feed belongs to 'met'";
  // An agency sees its own feed's config and dead letters, not others'.
  EXPECT_EQ(as(water, "GET", "/api/v1/dlq?feed=hyd").status, 200);
  EXPECT_EQ(as(water, "GET", "/api/v1/dlq?feed=wx").status, 403);
  EXPECT_EQ(as(water, "GET", "/api/v1/keys").status, 403);

  // A feed's config is checked against its connector's schema before it is stored.
  auto bad_config = post(
      "/api/v1/feeds",
      R"({"id":"wx2","agency":"met","connector":"firehub.connector.weather","config":{"utc_ofset":"+08:00"}})",
      "application/json");
  EXPECT_EQ(bad_config.status, 400) << bad_config.body;
  EXPECT_NE(bad_config.body.find("config.utc_ofset: is not a setting of this connector"),
            std::string::npos)
      << bad_config.body;
  auto mistyped = post(
      "/api/v1/feeds",
      R"({"id":"wx2","agency":"met","connector":"firehub.connector.weather","config":{"csv_delimiter":5}})",
      "application/json");
  EXPECT_EQ(mistyped.status, 400);
  EXPECT_NE(mistyped.body.find("config.csv_delimiter: must be string"), std::string::npos)
      << mistyped.body;
  EXPECT_EQ(get("/api/v1/feeds/wx2").status, 404) << "nothing stored";

  // A viewer key reads but never writes.
  auto viewer = parse(post("/api/v1/keys", R"({"role":"viewer"})", "application/json").body)
                    ->getValue<std::string>("key");
  EXPECT_EQ(as(viewer, "GET", "/api/v1/feeds").status, 200);
  EXPECT_EQ(
      as(viewer, "POST", "/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv")
          .status,
      403);

  // Revoked keys stop working at once.
  EXPECT_EQ(http("127.0.0.1", port_, "DELETE", "/api/v1/keys/" + water_id, "", "", key_).status,
            200);
  auto revoked =
      as(water, "POST", "/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv");
  EXPECT_EQ(revoked.status, 401);
  EXPECT_NE(revoked.body.find("revoked"), std::string::npos);

  // Every write above, allowed or refused, is in the audit log and the chain is intact.
  auto audit = parse(get("/api/v1/audit").body)->getArray("entries");
  ASSERT_GE(audit->size(), 10u);
  bool saw_refusal = false;
  for (size_t i = 0; i < audit->size(); ++i)
    saw_refusal |= audit->getObject(i)->getValue<int>("status") == 403;
  EXPECT_TRUE(saw_refusal);
  EXPECT_TRUE(parse(get("/api/v1/audit/verify").body)->getValue<bool>("intact"));
}

TEST_F(HubTest, SignInGivesACookieSessionWhoseWritesNeedTheirCsrfToken) {
  auto user =
      post("/api/v1/users", R"({"name":"ops.desk","password":"a long password","role":"operator"})",
           "application/json");
  ASSERT_EQ(user.status, 201) << user.body;
  auto anon = [&](const std::string& method, const std::string& path, const std::string& body,
                  std::map<std::string, std::string> headers) {
    return http("127.0.0.1", port_, method, path, body, body.empty() ? "" : "application/json", "",
                headers);
  };
  auto wrong = anon("POST", "/api/v1/session", R"({"user":"ops.desk","password":"nope nope"})", {});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.headers.count("Set-Cookie"), 0u);
  auto signed_in =
      anon("POST", "/api/v1/session", R"({"user":"ops.desk","password":"a long password"})", {});
  ASSERT_EQ(signed_in.status, 200) << signed_in.body;
  const std::string cookie = signed_in.headers["Set-Cookie"];
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(cookie.find("Max-Age="), std::string::npos);
  const std::string value = cookie.substr(0, cookie.find(';'));  // fh_session=...
  auto session = parse(signed_in.body);
  const std::string csrf = session->getValue<std::string>("csrf");
  EXPECT_EQ(session->getValue<std::string>("role"), "operator");
  // Reads and writes with the cookie; a write needs the CSRF token.
  auto me = anon("GET", "/api/v1/session", "", {{"Cookie", value}});
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(parse(me.body)->getValue<std::string>("csrf"), csrf);
  const std::string feed =
      R"({"id":"desk","agency":"met","connector":"firehub.connector.weather","config":{}})";
  EXPECT_EQ(anon("POST", "/api/v1/feeds", feed, {{"Cookie", value}}).status, 403);
  EXPECT_EQ(anon("POST", "/api/v1/feeds", feed, {{"Cookie", value}, {"X-CSRF-Token", "x"}}).status,
            403);
  EXPECT_EQ(anon("POST", "/api/v1/feeds", feed, {{"Cookie", value}, {"X-CSRF-Token", csrf}}).status,
            201);
  EXPECT_EQ(anon("GET", "/api/v1/users", "", {{"Cookie", value}}).status, 403)
      << "an operator does not manage users";
  // The session is a key of its own, listed with its end; signing out revokes it.
  auto out = anon("DELETE", "/api/v1/session", "", {{"Cookie", value}, {"X-CSRF-Token", csrf}});
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.headers["Set-Cookie"].find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(anon("GET", "/api/v1/session", "", {{"Cookie", value}}).status, 200)
      << "a stale cookie counts as none: this test reads from loopback";
  EXPECT_TRUE(parse(anon("GET", "/api/v1/session", "", {{"Cookie", value}}).body)
                  ->getValue<bool>("anonymous"));
  // Signing in with a key; removing a user ends their sessions.
  auto by_key = anon("POST", "/api/v1/session", R"({"key":")" + key_ + R"("})", {});
  ASSERT_EQ(by_key.status, 200) << by_key.body;
  EXPECT_EQ(parse(by_key.body)->getValue<std::string>("role"), "admin");
  auto again =
      anon("POST", "/api/v1/session", R"({"user":"ops.desk","password":"a long password"})", {});
  const std::string second =
      again.headers["Set-Cookie"].substr(0, again.headers["Set-Cookie"].find(';'));
  auto removed = http("127.0.0.1", port_, "DELETE", "/api/v1/users/ops.desk", "", "", key_);
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(parse(removed.body)->getValue<int>("sessions_ended"), 1);
  EXPECT_TRUE(parse(anon("GET", "/api/v1/session", "", {{"Cookie", second}}).body)
                  ->getValue<bool>("anonymous"));
  auto listed = parse(get("/api/v1/users").body)->getArray("users");
  EXPECT_EQ(listed->size(), 0u);
}

TEST_F(HubTest, RestrictedFieldsOnlyWithTheGrant) {
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
  auto entities = parse(get("/api/v1/entities?domain=police&limit=10").body)->getArray("features");
  ASSERT_GE(entities->size(), 1u);
  std::string id;
  for (size_t i = 0; i < entities->size(); ++i) {
    auto props = entities->getObject(i)->getObject("properties");
    if (props->getValue<std::string>("entity_id") == "SY-110-20261122-0001")
      id = props->getValue<std::string>("id");
  }
  ASSERT_FALSE(id.empty());
  std::string encoded;
  Poco::URI::encode(id, "#?/%", encoded);
  std::string path = "/api/v1/records/" + encoded;
  auto viewer = parse(post("/api/v1/keys", R"({"role":"viewer"})", "application/json").body)
                    ->getValue<std::string>("key");
  auto granted =
      parse(post("/api/v1/keys", R"({"role":"subscriber","restricted":true})", "application/json")
                .body)
          ->getValue<std::string>("key");
  auto anonymous = http("127.0.0.1", port_, "GET", path);
  auto plain = http("127.0.0.1", port_, "GET", path, "", "", viewer);
  auto full = http("127.0.0.1", port_, "GET", path, "", "", granted);
  ASSERT_EQ(anonymous.status, 200);
  EXPECT_EQ(anonymous.body.find("张伟"), std::string::npos) << anonymous.body;
  EXPECT_EQ(plain.body.find("13800000001"), std::string::npos) << plain.body;
  EXPECT_NE(plain.body.find("沈河区中街路128号"), std::string::npos)
      << "the address is not restricted";
  EXPECT_NE(full.body.find("张伟"), std::string::npos) << full.body;
  // The same rule on the entity list, the point layers and OGC API.
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/entities?domain=police", "", "", viewer)
                .body.find("张伟"),
            std::string::npos);
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/layers/incidents").body.find("张伟"),
            std::string::npos);
  EXPECT_NE(http("127.0.0.1", port_, "GET", "/api/v1/layers/incidents", "", "", granted)
                .body.find("张伟"),
            std::string::npos);
  EXPECT_EQ(
      http("127.0.0.1", port_, "GET", "/ogc/collections/entities-police/items").body.find("张伟"),
      std::string::npos);
  EXPECT_NE(
      http("127.0.0.1", port_, "GET", "/ogc/collections/entities-police/items", "", "", granted)
          .body.find("张伟"),
      std::string::npos);
  // And on history and exports, in every format (the CSV's record column too).
  for (const std::string format : {"json", "ndjson", "csv", "geojson"}) {
    for (const std::string& list :
         {"/api/v1/records?domain=police&format=" + format,
          "/api/v1/entities/police/SY-110-20261122-0001/history?format=" + format}) {
      auto redacted = http("127.0.0.1", port_, "GET", list, "", "", viewer);
      ASSERT_EQ(redacted.status, 200) << list << " " << redacted.body;
      EXPECT_NE(redacted.body.find("沈河区中街路128号"), std::string::npos) << list;
      EXPECT_EQ(redacted.body.find("张伟"), std::string::npos) << list;
      EXPECT_EQ(redacted.body.find("13800000001"), std::string::npos) << list;
      EXPECT_NE(http("127.0.0.1", port_, "GET", list, "", "", granted).body.find("张伟"),
                std::string::npos)
          << list;
    }
  }
}

// (Also the trust review's TLS finding: suites without forward secrecy, no HSTS, http:// links.)
TEST(HubTlsTest, ServesHttpsWithAConfiguredCertificate) {
  TempDir dir;
  std::string cert = dir.path() + "/hub.crt", key = dir.path() + "/hub.key";
  std::string make =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout " + key +
      " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0) << "openssl CLI";
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir.path() + "/data";
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.lake_sync = false;
  c.tls_cert = cert;
  c.tls_key = key;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  std::string port = std::to_string(hub.value()->httpPort());
  std::string out = dir.path() + "/out";
  std::string curl = "curl -s --cacert " + cert + " -o " + out +
                     " -w '%{http_code}' https://127.0.0.1:" + port +
                     "/api/v1/feeds -H 'Authorization: Bearer " +
                     firehub::testing::adminKey(c.data_dir) + "' > " + out + ".code";
  ASSERT_EQ(std::system(curl.c_str()), 0);
  std::ifstream code(out + ".code");
  std::string status;
  code >> status;
  EXPECT_EQ(status, "200");
  EXPECT_ANY_THROW(http("127.0.0.1", hub.value()->httpPort(), "GET", "/healthz"));

  // Only forward-secret suites (ECDHE) on TLS 1.2; HSTS; OGC links https:// behind TLS.
  const std::string base = "https://127.0.0.1:" + std::to_string(hub.value()->httpPort());
  auto fetch = [&](const std::string& args) {
    return firehub::testing::run("curl -s --cacert " + cert + " " + args + " 2>&1");
  };
  auto headers = fetch("-D - -o /dev/null " + base + "/healthz");
  EXPECT_NE(headers.second.find("Strict-Transport-Security: max-age="), std::string::npos)
      << headers.second;
  auto ogc = fetch(base + "/ogc/collections");
  EXPECT_NE(ogc.second.find("\"href\":\"https://"), std::string::npos) << ogc.second;
  EXPECT_EQ(ogc.second.find("\"href\":\"http://"), std::string::npos) << ogc.second;
  auto plain_rsa =
      fetch("--tls-max 1.2 --ciphers AES128-GCM-SHA256 -o /dev/null -w '%{http_code}' " + base +
            "/healthz");
  EXPECT_EQ(plain_rsa.second.find("200"), std::string::npos)
      << "RSA key exchange is refused: " << plain_rsa.second;
  auto ecdhe =
      fetch("--tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256 -o /dev/null -w '%{http_code}' " +
            base + "/healthz");
  EXPECT_NE(ecdhe.second.find("200"), std::string::npos) << ecdhe.second;

  c.tls_key = dir.path() + "/missing.key";
  c.data_dir = dir.path() + "/data2";
  auto bad = Hub::start(c);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("HTTPS"), std::string::npos) << bad.status().message();
}

TEST_F(HubTest, SubscriptionsNeedAGrantAndDeliverFilteredRecordsBySseWebhookAndKafka) {
  ASSERT_EQ(post("/api/v1/feeds",
                 R"({"id":"hyd","agency":"water-bureau","connector":"firehub.connector.water"})",
                 "application/json")
                .status,
            201);
  auto sub_key_body = parse(
      post("/api/v1/keys", R"({"role":"subscriber","note":"dispatch system"})", "application/json")
          .body);
  std::string sub_key = sub_key_body->getValue<std::string>("key");
  std::string sub_id = sub_key_body->getValue<std::string>("id");
  auto as = [&](const std::string& method, const std::string& path, const std::string& body = "") {
    return http("127.0.0.1", port_, method, path, body, body.empty() ? "" : "application/json",
                sub_key);
  };
  const std::string out_of_service =
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.status","op":"eq","value":"out_of_service"}],)"
      R"("bbox":[123.0,41.0,124.0,42.0]},"delivery":{"kind":"sse"}})";
  auto refused = as("POST", "/api/v1/subscriptions", out_of_service);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("no grant for topic firehub.v1.water"), std::string::npos);
  ASSERT_EQ(post("/api/v1/grants", R"({"key_id":")" + sub_id + R"(","topic":"firehub.v1.water"})",
                 "application/json")
                .status,
            201);
  auto bad_field = as(
      "POST", "/api/v1/subscriptions",
      R"({"topic":"firehub.v1.water","filter":{"where":[{"field":"water_source.colour","op":"eq","value":1}]}})");
  EXPECT_EQ(bad_field.status, 400);
  EXPECT_NE(bad_field.body.find("water_source.colour"), std::string::npos) << bad_field.body;
  auto made = as("POST", "/api/v1/subscriptions", out_of_service);
  ASSERT_EQ(made.status, 201) << made.body;
  std::string sse_id = parse(made.body)->getValue<std::string>("id");

  // SSE: only out-of-service hydrants; the event ids are log sequences.
  std::string seen;
  {
    EventReader events(
        port_, "/api/v1/subscriptions/" + sse_id + "/events",
        [](const std::string& t) { return t.find("SY-H-00002") != std::string::npos; },
        {{"Authorization", "Bearer " + sub_key}});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(post("/api/v1/feeds/hyd/records", fixture("water", "sources.csv"), "text/csv").status,
              202);
    ASSERT_TRUE(waitFor([&] { return events.text().find("SY-H-00002") != std::string::npos; }))
        << events.text();
    seen = events.text();
  }
  EXPECT_EQ(seen.find("SY-H-00001"), std::string::npos) << "in service: filtered out";
  size_t id_at = seen.rfind("id: ");
  ASSERT_NE(id_at, std::string::npos);
  std::string last_id = seen.substr(id_at + 4, seen.find('\n', id_at) - id_at - 4);
  // While disconnected, a hydrant fails; resuming from the last id delivers it, and nothing twice.
  ASSERT_EQ(post("/api/v1/feeds/hyd/records",
                 "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n"
                 "SY-H-00777,hydrant,123.44,41.81,out_of_service,,2026-11-22T10:00:00+08:00\n",
                 "text/csv")
                .status,
            202);
  EventReader resumed(
      port_, "/api/v1/subscriptions/" + sse_id + "/events",
      [](const std::string& t) { return t.find("SY-H-00777") != std::string::npos; },
      {{"Authorization", "Bearer " + sub_key}, {"Last-Event-ID", last_id}});
  ASSERT_TRUE(waitFor([&] { return resumed.text().find("SY-H-00777") != std::string::npos; }))
      << resumed.text();
  EXPECT_EQ(resumed.text().find("SY-H-00002"), std::string::npos)
      << "already delivered before the disconnect";
  EXPECT_EQ(http("127.0.0.1", port_, "GET", "/api/v1/subscriptions/" + sse_id + "/events").status,
            401);

  // Webhook: fails twice, then every record arrives once, in order, signed.
  WebhookReceiver hook(2);
  auto webhook =
      as("POST", "/api/v1/subscriptions",
         R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
             std::to_string(hook.port()) + R"(/firehub","secret":"a-long-shared-secret"}})");
  ASSERT_EQ(webhook.status, 201) << webhook.body;
  auto kafka = as("POST", "/api/v1/subscriptions",
                  R"({"topic":"firehub.v1.water","delivery":{"kind":"kafka"}})");
  ASSERT_EQ(kafka.status, 201) << kafka.body;
  std::string kafka_topic =
      parse(kafka.body)->getObject("delivery")->getValue<std::string>("topic");
  EXPECT_NE(kafka_topic.find(".public"), std::string::npos)
      << "a subscriber without the grant gets the public view";
  for (int i = 0; i < 3; ++i) {
    char line[160];
    std::snprintf(line, sizeof line,
                  "source_id,kind,lon,lat,status,pressure_mpa,updated_at\nSY-H-1%04d,hydrant,123.4%"
                  "d,41.8,in_service,0.3,2026-11-22T10:0%d:00+08:00\n",
                  i, i, i);
    ASSERT_EQ(post("/api/v1/feeds/hyd/records", line, "text/csv").status, 202);
  }
  ASSERT_TRUE(waitFor([&] {
    std::string all;
    for (const auto& d : hook.received()) all += d.body;
    return all.find("SY-H-10002") != std::string::npos;
  })) << hook.attempts()
      << " attempts";
  EXPECT_GE(hook.attempts(), 3);
  std::string all;
  for (const auto& d : hook.received()) {
    // "t=<unix seconds>,sha256=<HMAC of '<t>.<body>'>": a receiver can refuse a replayed body.
    ASSERT_EQ(d.signature.rfind("t=", 0), 0u) << d.signature;
    const int64_t t = std::stoll(d.signature.substr(2, d.signature.find(',') - 2));
    EXPECT_EQ(d.signature, subs::webhookSignature("a-long-shared-secret", t, d.body));
    EXPECT_EQ(
        d.signature.substr(d.signature.find(',') + 1),
        "sha256=" + subs::hmacSha256Hex("a-long-shared-secret", std::to_string(t) + "." + d.body));
    EXPECT_LT(std::abs(t - static_cast<int64_t>(std::time(nullptr))), 120);
    all += d.body;
  }
  std::vector<uint64_t> sequences;
  std::vector<std::string> entities;
  for (const auto& d : hook.received()) {
    auto records = parse(d.body)->getArray("records");
    for (size_t i = 0; i < records->size(); ++i) {
      sequences.push_back(records->getObject(i)->getValue<uint64_t>("id"));
      entities.push_back(
          records->getObject(i)->getObject("record")->getValue<std::string>("entity_id"));
    }
  }
  EXPECT_TRUE(std::is_sorted(sequences.begin(), sequences.end()));
  EXPECT_EQ(std::set<uint64_t>(sequences.begin(), sequences.end()).size(), sequences.size())
      << "each once";
  std::vector<std::string> mine;
  for (const auto& e : entities) {
    if (e.rfind("SY-H-1", 0) == 0) mine.push_back(e);
  }
  EXPECT_EQ(mine, (std::vector<std::string>{"SY-H-10000", "SY-H-10001", "SY-H-10002"}));

  auto messages = firehub::testing::consumeAll(hub_->kafkaBootstrap(), kafka_topic, 3);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].headers["schema"], "firehub.v1.WaterSource");

  // A receiver that never answers 2xx: after max_attempts the batch becomes a dead letter with
  // the stage and reason, and delivery moves on.
  WebhookReceiver broken(1000);
  auto doomed =
      as("POST", "/api/v1/subscriptions",
         R"({"topic":"firehub.v1.water","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
             std::to_string(broken.port()) +
             R"(/","secret":"a-long-shared-secret","max_attempts":2}})");
  ASSERT_EQ(doomed.status, 201) << doomed.body;
  std::string doomed_id = parse(doomed.body)->getValue<std::string>("id");
  ASSERT_EQ(post("/api/v1/feeds/hyd/records",
                 "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n"
                 "SY-H-20000,hydrant,123.45,41.8,in_service,0.3,2026-11-22T11:00:00+08:00\n",
                 "text/csv")
                .status,
            202);
  ASSERT_TRUE(waitFor([&] {
    return get("/api/v1/dlq?feed=subscription:" + doomed_id).body.find("SY-H-20000") !=
           std::string::npos;
  })) << broken.attempts()
      << " attempts";
  auto letters = get("/api/v1/dlq?feed=subscription:" + doomed_id).body;
  EXPECT_NE(letters.find("\"stage\":\"deliver\""), std::string::npos) << letters;
  EXPECT_NE(letters.find("failed 2 times"), std::string::npos) << letters;
  EXPECT_EQ(broken.attempts(), 2);
}

// Operators add a connector without a restart; a second copy of a loaded id is refused.
TEST(HubPluginsTest, RescanLoadsNewConnectorsAndRefusesASecondVersionOfALoadedId) {
  TempDir dir;
  std::string plugins = dir.path() + "/plugins";
  std::filesystem::create_directories(plugins);
  std::string built = firehub::testing::pluginsDir();
  std::filesystem::copy_file(built + "/firehub_connector_weather.so",
                             plugins + "/firehub_connector_weather.so");
  HubConfig c;
  c.init = true;  // a fresh data dir
  c.data_dir = dir.path() + "/data";
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = plugins;
  c.lake_sync = false;
  c.plugin_scan_interval_s = 0;
  auto hub = Hub::start(c);
  ASSERT_TRUE(hub.isOk()) << hub.status().toString();
  uint16_t port = hub.value()->httpPort();
  std::string key = firehub::testing::adminKey(c.data_dir);
  auto call = [&](const std::string& method, const std::string& path,
                  const std::string& body = "") {
    return http("127.0.0.1", port, method, path, body, body.empty() ? "" : "application/json", key);
  };
  const std::string police_feed =
      R"({"id":"cad","agency":"public-security","connector":"firehub.connector.police"})";
  EXPECT_EQ(call("POST", "/api/v1/feeds", police_feed).status, 400) << "not loaded yet";

  std::filesystem::copy_file(built + "/firehub_connector_police.so",
                             plugins + "/firehub_connector_police.so");
  std::filesystem::copy_file(built + "/firehub_connector_weather.so",
                             plugins + "/firehub_connector_weather_v2.so");
  EXPECT_EQ(
      http("127.0.0.1", port, "POST", "/api/v1/plugins/rescan", "{}", "application/json").status,
      401);
  auto rescanned = call("POST", "/api/v1/plugins/rescan", "{}");
  ASSERT_EQ(rescanned.status, 200) << rescanned.body;
  auto list = parse(rescanned.body)->getArray("plugins");
  bool police = false, refused = false;
  for (size_t i = 0; i < list->size(); ++i) {
    auto p = list->getObject(i);
    if (p->optValue<std::string>("id", "") == "firehub.connector.police")
      police = p->getValue<std::string>("state") == "loaded";
    if (p->getValue<std::string>("file").find("weather_v2") != std::string::npos) {
      refused = p->getValue<std::string>("state") == "refused" &&
                p->getValue<std::string>("reason").find("already provided") != std::string::npos;
    }
  }
  EXPECT_TRUE(police) << rescanned.body;
  EXPECT_TRUE(refused) << rescanned.body;
  EXPECT_EQ(call("POST", "/api/v1/feeds", police_feed).status, 201);
  EXPECT_EQ(call("POST", "/api/v1/feeds/cad/records", fixture("police", "incidents.json")).status,
            202);
}

}  // namespace
}  // namespace firehub
