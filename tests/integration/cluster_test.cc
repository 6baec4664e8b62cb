// Cluster mode, in one process: two hubs (nodes a and b of cluster "t") sharing one Kafka
// cluster (librdkafka's mock cluster), each lake a replica of the whole. Records pushed to one
// node are served by the other, duplicates collapse, a restarted node catches up from the
// offsets its lake stored, and both nodes' risk layers come out the same.
#include "http_peers.h"
#include "hub_fixture.h"

namespace firehub {
namespace {

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = bus::EmbeddedBroker::start(3, 3);
    ASSERT_TRUE(broker.isOk()) << broker.status().toString();
    broker_ = std::move(broker).value();
    for (const char* node : {"a", "b"}) startNode(node, true);
  }

  HubConfig config(const std::string& node, bool init) {
    HubConfig c;
    c.init = init;
    c.data_dir = dirs_.sub(node);
    c.http_listen = "127.0.0.1:0";
    c.plugins_dir = firehub::testing::pluginsDir();
    c.lake_sync = false;
    c.kafka_bootstrap = broker_->bootstrapServers();
    c.kafka_properties["reconnect.backoff.max.ms"] = "500";
    c.cluster_id = "t";
    c.cluster_node = node;
    c.plugin_scan_interval_s = 0;
    c.cluster_session_timeout_ms = 4000;
    c.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()};  // the webhook receiver
    return c;
  }

  void startNode(const std::string& node, bool init) {
    auto hub = Hub::start(config(node, init));
    ASSERT_TRUE(hub.isOk()) << hub.status().toString();
    hubs_[node] = std::move(hub).value();
    keys_[node] = firehub::testing::adminKey(dirs_.sub(node));
  }

  firehub::testing::Http on(const std::string& node, const std::string& method,
                            const std::string& path, const std::string& body = "",
                            const std::string& type = "") {
    return http("127.0.0.1", hubs_[node]->httpPort(), method, path, body, type, keys_[node]);
  }

  // A feed registered on one node; every node knows it within moments (shared configuration).
  void registerFeed(const std::string& on_node, const std::string& json) {
    auto r = on(on_node, "POST", "/api/v1/feeds", json, "application/json");
    ASSERT_EQ(r.status, 201) << on_node << " " << r.body;
    const std::string id = parse(r.body)->getValue<std::string>("id");
    for (const auto& [node, hub] : hubs_) {
      ASSERT_TRUE(firehub::testing::waitFor([&] {
        return on(node, "GET", "/api/v1/feeds/" + id).status == 200;
      })) << "feed "
          << id << " registered on " << on_node << " is unknown on " << node;
    }
  }

  // How many entities of a domain a node serves (0 when it does not answer).
  size_t entities(const std::string& node, const std::string& domain) {
    auto r = on(node, "GET", "/api/v1/entities?domain=" + domain + "&limit=1");
    return r.status == 200 ? parse(r.body)->getValue<size_t>("numberMatched") : 0;
  }

  TempDir dirs_;
  std::unique_ptr<bus::EmbeddedBroker> broker_;
  std::map<std::string, std::unique_ptr<Hub>> hubs_;
  std::map<std::string, std::string> keys_;
};

TEST_F(ClusterTest, EveryNodeServesWhatAnyNodeAcceptedAndARestartedNodeCatchesUp) {
  // Registered on b, pushed to on a.
  registerFeed("b", R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  // Acknowledged on a only once Kafka confirmed it (ingest.ack = replicated, the cluster default).
  auto pushed = on("a", "POST", "/api/v1/feeds/wx/records", fixture("weather", "observations.csv"),
                   "text/csv");
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  const size_t accepted = parse(pushed.body)->getValue<size_t>("accepted");
  ASSERT_GT(accepted, 2u);
  auto count = [&](const std::string& node) { return entities(node, "weather"); };
  const size_t stations = count("a");
  ASSERT_GT(stations, 0u);
  ASSERT_TRUE(firehub::testing::waitFor([&] { return count("b") == stations; }))
      << "b serves a's stations: " << count("b") << " of " << stations << "\n"
      << on("b", "GET", "/api/v1/cluster").body;
  // One record by id, the same on both.
  auto first = parse(on("a", "GET", "/api/v1/entities?domain=weather&limit=1").body)
                   ->getArray("features")
                   ->getObject(0)
                   ->getArray("links")
                   ->getObject(0)
                   ->getValue<std::string>("href");
  EXPECT_EQ(on("a", "GET", first).body, on("b", "GET", first).body);

  // The same body pushed to b: every record is one b already holds from a.
  auto again = on("b", "POST", "/api/v1/feeds/wx/records", fixture("weather", "observations.csv"),
                  "text/csv");
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(parse(again.body)->getValue<size_t>("accepted"), 0u) << again.body;
  EXPECT_EQ(parse(again.body)->getValue<size_t>("duplicates"), accepted) << again.body;

  // b's view of the cluster: its replica applied a's records and is caught up.
  auto status = parse(on("b", "GET", "/api/v1/cluster").body);
  EXPECT_EQ(status->getValue<std::string>("mode"), "cluster");
  EXPECT_EQ(status->getValue<std::string>("ingest_ack"), "replicated");
  EXPECT_GE(status->getObject("replica")->getValue<size_t>("applied"), accepted);
  EXPECT_EQ(on("b", "GET", "/readyz").status, 200);
  // Each node's heartbeat reaches the others: a lists both nodes with their addresses.
  ASSERT_TRUE(firehub::testing::waitFor(
      [&] {
        auto nodes = parse(on("a", "GET", "/api/v1/cluster").body)->getArray("nodes");
        return nodes && nodes->size() == 2;
      },
      std::chrono::seconds(15)))
      << on("a", "GET", "/api/v1/cluster").body;
  EXPECT_NE(on("a", "GET", "/api/v1/cluster").body.find(hubs_["b"]->httpAddress()),
            std::string::npos);

  // b stops; a takes buildings meanwhile; b comes back on its lake and catches up from the
  // offsets it stored, without applying anything twice.
  hubs_["b"]->stop();
  hubs_.erase("b");
  registerFeed("a", R"({"id":"bld","agency":"housing","connector":"firehub.connector.building"})");
  ASSERT_EQ(on("a", "POST", "/api/v1/feeds/bld/records", fixture("building", "buildings.geojson"),
               "application/geo+json")
                .status,
            202);
  startNode("b", false);
  auto buildings = [&](const std::string& node) { return entities(node, "building"); };
  ASSERT_GT(buildings("a"), 0u);
  ASSERT_TRUE(firehub::testing::waitFor([&] { return buildings("b") == buildings("a"); }))
      << on("b", "GET", "/api/v1/cluster").body;
  auto restarted = parse(on("b", "GET", "/api/v1/cluster").body)->getObject("replica");
  EXPECT_EQ(restarted->getValue<size_t>("duplicates"), 0u)
      << "resumed from its stored offsets, nothing read twice: "
      << on("b", "GET", "/api/v1/cluster").body;
  EXPECT_EQ(count("b"), stations);

  // Fusion on each node from its own replica: the same cells, levels and scores.
  auto cells = [&](const std::string& node) {
    std::map<std::string, std::string> out;
    auto layer = parse(on(node, "GET", "/api/v1/layers/risk?properties=cell,level,score").body);
    auto features = layer->getArray("features");
    for (size_t i = 0; i < features->size(); ++i) {
      auto p = features->getObject(static_cast<unsigned>(i))->getObject("properties");
      out[p->getValue<std::string>("cell")] =
          p->get("level").toString() + " " + p->get("score").toString();
    }
    return out;
  };
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto a = cells("a");
    return !a.empty() && a == cells("b");
  })) << "a has "
      << cells("a").size() << " cells, b " << cells("b").size();
}

TEST_F(ClusterTest, BadInputGetsTheSameAnswerOnEveryNode) {
  registerFeed("a", R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  // A row that does not parse: a dead letter with the same stage and reason on either node.
  const std::string bad =
      "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n"
      "X-1,123.4,41.8,not-a-time,17.0,42,25,300,0.0\n";
  auto on_a = on("a", "POST", "/api/v1/feeds/wx/records", bad, "text/csv");
  auto on_b = on("b", "POST", "/api/v1/feeds/wx/records", bad, "text/csv");
  EXPECT_EQ(on_a.status, on_b.status);
  EXPECT_EQ(on_a.body, on_b.body);
  // A body of the wrong type and a feed no node knows: the same 4xx.
  for (const char* path : {"/api/v1/feeds/wx/records", "/api/v1/feeds/nope/records"}) {
    auto a = on("a", "POST", path, "\x01\x02", "application/x-unknown");
    auto b = on("b", "POST", path, "\x01\x02", "application/x-unknown");
    EXPECT_GE(a.status, 400) << a.body;
    EXPECT_LT(a.status, 500) << a.body;
    EXPECT_EQ(a.status, b.status) << path;
    EXPECT_EQ(a.body, b.body) << path;
  }
  auto letters = [&](const std::string& node) {
    auto r = on(node, "GET", "/api/v1/dlq?feed=wx");
    return r.status == 200 ? parse(r.body)->getArray("dead_letters")->size() : 0u;
  };
  EXPECT_GT(letters("a"), 0u);
  EXPECT_EQ(letters("a"), letters("b"));
}

TEST_F(ClusterTest, KeysAreSharedAndARevocationHoldsOnEveryNode) {
  // A key made on a works on b; revoked on a, it is refused on b within seconds.
  auto made = on("a", "POST", "/api/v1/keys", R"({"role":"viewer","note":"wall screen"})",
                 "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string key = parse(made.body)->getValue<std::string>("key");
  const std::string id = parse(made.body)->getValue<std::string>("id");
  auto as_key = [&](const std::string& node) {
    return http("127.0.0.1", hubs_[node]->httpPort(), "GET", "/api/v1/feeds", "", "", key).status;
  };
  ASSERT_TRUE(firehub::testing::waitFor([&] { return as_key("b") == 200; }))
      << "a key made on a is known on b";
  ASSERT_EQ(on("a", "DELETE", "/api/v1/keys/" + id).status, 200);
  const auto revoked_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(firehub::testing::waitFor([&] { return as_key("b") == 401; }))
      << "a key revoked on a is refused on b";
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, std::chrono::seconds(5));
  // Grants too: given on b, they hold on a.
  ASSERT_EQ(on("b", "POST", "/api/v1/grants",
               R"({"key_id":")" + id + R"(","topic":"firehub.v1.water"})", "application/json")
                .status,
            201);
  ASSERT_TRUE(firehub::testing::waitFor(
      [&] { return on("a", "GET", "/api/v1/grants").body.find(id) != std::string::npos; }));
}

TEST_F(ClusterTest, ANodeRebuiltFromAPeersSnapshotHoldsTheWholeLake) {
  registerFeed("a", R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  auto first = on("a", "POST", "/api/v1/feeds/wx/records", fixture("weather", "observations.csv"),
                  "text/csv");
  ASSERT_EQ(first.status, 202);
  const size_t observations = parse(first.body)->getValue<size_t>("accepted");
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    return entities("b", "weather") > 0 && entities("b", "weather") == entities("a", "weather");
  }));
  // b's lake is lost while it is down; a goes on taking records.
  hubs_["b"]->stop();
  hubs_.erase("b");
  registerFeed("a", R"({"id":"bld","agency":"housing","connector":"firehub.connector.building"})");
  ASSERT_EQ(on("a", "POST", "/api/v1/feeds/bld/records", fixture("building", "buildings.geojson"),
               "application/geo+json")
                .status,
            202);
  EXPECT_EQ(http("127.0.0.1", hubs_["a"]->httpPort(), "GET", "/api/v1/cluster/snapshot").status,
            403)
      << "the loopback viewer gets no copy of the lake";
  auto rebuilt =
      rebuildLakeFromPeer("http://" + hubs_["a"]->httpAddress(), keys_["b"], dirs_.sub("b"));
  ASSERT_TRUE(rebuilt.isOk()) << rebuilt.status().toString();
  EXPECT_GT(rebuilt->files, 0u);
  EXPECT_FALSE(rebuilt->replaced.empty()) << "the lost lake is kept aside";
  // b starts on the copy: everything a held, and its replica goes on from a's offsets.
  startNode("b", false);
  EXPECT_EQ(entities("b", "building"), entities("a", "building"));
  EXPECT_EQ(entities("b", "weather"), entities("a", "weather"));
  ASSERT_TRUE(firehub::testing::waitFor([&] { return on("b", "GET", "/readyz").status == 200; }))
      << on("b", "GET", "/readyz").body;
  ASSERT_EQ(on("a", "POST", "/api/v1/feeds/wx/records",
               "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n"
               "R-1,123.4,41.8,2026-04-13T12:00:00+08:00,17.0,42,25,300,0.0\n",
               "text/csv")
                .status,
            202);
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    return entities("b", "weather") == entities("a", "weather");
  })) << on("b", "GET", "/api/v1/cluster").body;
  // Only what a had not applied from Kafka itself when it made the copy comes again.
  EXPECT_LT(parse(on("b", "GET", "/api/v1/cluster").body)
                ->getObject("replica")
                ->getValue<size_t>("duplicates"),
            observations)
      << "the replica read on from a's offsets, not from the start";
}

// Which node holds each singleton duty, from the nodes themselves: "" while none does, "*" when
// more than one claims it.
std::string holder(const std::map<std::string, std::unique_ptr<Hub>>& hubs, cluster::Duty duty) {
  std::string who;
  for (const auto& [node, hub] : hubs) {
    if (hub->duties() && hub->duties()->epoch(duty) > 0) who = who.empty() ? node : "*";
  }
  return who;
}

TEST_F(ClusterTest, EachDutyRunsOnOneNodeAndMovesWhenItsNodeStops) {
  startNode("c", true);
  const cluster::Duty kAll[] = {cluster::Duty::kLayers, cluster::Duty::kSubscriptions,
                                cluster::Duty::kFileDrops};
  ASSERT_TRUE(firehub::testing::waitFor(
      [&] {
        for (auto d : kAll) {
          const std::string h = holder(hubs_, d);
          if (h.empty() || h == "*") return false;
        }
        return true;
      },
      std::chrono::seconds(30)))
      << on("a", "GET", "/api/v1/cluster").body;
  // Every node names the same holders (heartbeats are shared at once when duties change).
  ASSERT_TRUE(firehub::testing::waitFor([&] {
    auto a = parse(on("a", "GET", "/api/v1/cluster").body)->getArray("duties");
    for (size_t i = 0; i < a->size(); ++i) {
      auto d = a->getObject(static_cast<unsigned>(i));
      if (d->isNull("node") || d->getValue<std::string>("node") !=
                                   holder(hubs_, static_cast<cluster::Duty>(static_cast<int>(i))))
        return false;
    }
    return true;
  })) << on("a", "GET", "/api/v1/cluster").body;
  EXPECT_NE(on("b", "GET", "/metrics").body.find("firehub_cluster_duty_held{duty=\"layers\"}"),
            std::string::npos);

  // A webhook subscription made on one node is delivered by the subscriptions duty's holder.
  firehub::testing::WebhookReceiver receiver(0);
  registerFeed("a", R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})");
  auto sub =
      on("a", "POST", "/api/v1/subscriptions",
         R"({"topic":"firehub.v1.weather","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
             std::to_string(receiver.port()) + R"(/hook","secret":"0123456789abcdef"}})",
         "application/json");
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string sub_id = parse(sub.body)->getValue<std::string>("id");
  for (const auto& [node, hub] : hubs_) {
    ASSERT_TRUE(firehub::testing::waitFor([&] {
      return on(node, "GET", "/api/v1/subscriptions/" + sub_id).status == 200;
    })) << "subscription made on a is unknown on "
        << node;
  }
  auto received = [&](const std::string& station) {
    for (const auto& d : receiver.received()) {
      if (d.body.find("\"" + station + "\"") != std::string::npos) return true;
    }
    return false;
  };
  auto push = [&](const std::string& node, const std::string& station) {
    const std::string csv =
        "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n" + station +
        ",123.4333,41.7667,2026-04-13T12:00:00+08:00,17.0,42,25,300,0.0\n";
    return on(node, "POST", "/api/v1/feeds/wx/records", csv, "text/csv").status;
  };
  ASSERT_EQ(push("b", "ST-1"), 202);
  ASSERT_TRUE(firehub::testing::waitFor([&] { return received("ST-1"); }))
      << receiver.received().size() << " deliveries";

  // The holder of the subscriptions duty stops; another node takes the duty with a later epoch
  // and goes on from the shared cursor: the records pushed meanwhile arrive, and ST-1 only once.
  const std::string gone = holder(hubs_, cluster::Duty::kSubscriptions);
  const uint64_t old_epoch = hubs_[gone]->duties()->epoch(cluster::Duty::kSubscriptions);
  const std::string other = gone == "a" ? "b" : "a";
  hubs_[gone]->stop();
  hubs_.erase(gone);
  ASSERT_EQ(push(other, "ST-2"), 202);
  const auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(firehub::testing::waitFor(
      [&] {
        const std::string h = holder(hubs_, cluster::Duty::kSubscriptions);
        return !h.empty() && h != "*";
      },
      std::chrono::seconds(30)));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::seconds(10));
  const std::string now_holder = holder(hubs_, cluster::Duty::kSubscriptions);
  EXPECT_GT(hubs_[now_holder]->duties()->epoch(cluster::Duty::kSubscriptions), old_epoch);
  ASSERT_TRUE(firehub::testing::waitFor([&] { return received("ST-2"); }))
      << receiver.received().size() << " deliveries";
  int st1 = 0;
  for (const auto& d : receiver.received()) st1 += d.body.find("\"ST-1\"") != std::string::npos;
  EXPECT_EQ(st1, 1) << "the new holder went on after what the old one delivered";
}

TEST(ClusterConfigTest, ClusterModeNeedsASharedKafkaAndNamedNodes) {
  TempDir dir;
  HubConfig c;
  c.init = true;
  c.data_dir = dir.path();
  c.http_listen = "127.0.0.1:0";
  c.plugins_dir = firehub::testing::pluginsDir();
  c.cluster_id = "t";
  c.cluster_node = "a";
  auto no_kafka = Hub::start(c);
  ASSERT_FALSE(no_kafka.isOk());
  EXPECT_NE(no_kafka.status().message().find("kafka.bootstrap.servers"), std::string::npos);
  c.kafka_bootstrap = "127.0.0.1:1";
  c.cluster_node = "";
  auto no_node = Hub::start(c);
  ASSERT_FALSE(no_node.isOk());
  EXPECT_NE(no_node.status().message().find("cluster.node"), std::string::npos);
  c.cluster_node = "a";
  c.ingest_ack = "eventually";
  auto bad_ack = Hub::start(c);
  ASSERT_FALSE(bad_ack.isOk());
  EXPECT_NE(bad_ack.status().message().find("ingest.ack"), std::string::npos);
}

}  // namespace
}  // namespace firehub
