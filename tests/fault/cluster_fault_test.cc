// Cluster mode with real processes: `firehub broker` and three `firehub serve` nodes of one
// cluster (ingest.ack = replicated, the cluster default). Pushes go to every node in turn while
// one node at a time is killed with -9 and started again on its lake. Afterwards every record
// any node acknowledged is in every node's lake, once.
//   FIREHUB_CLUSTER_KILLS: how many kills (default 5; `ops/run.sh faults --long` sets 20).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "processes.h"

namespace firehub::testing {
namespace {

int kills() {
  const char* n = std::getenv("FIREHUB_CLUSTER_KILLS");
  return n ? std::max(1, std::atoi(n)) : 5;
}

TEST(ClusterFaultTest, EveryAcknowledgedRecordIsOnEveryNodeAfterKillDashNines) {
  TempDir dir;
  BrokerProcess broker(dir.path());
  ASSERT_TRUE(broker.start()) << broker.log();
  std::vector<std::unique_ptr<HubProcess>> nodes;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "n" + std::to_string(i + 1);
    const std::string config = dir.sub(name + ".properties");
    std::ofstream(config)
        << "kafka.bootstrap.servers = " << broker.bootstrap()
        << "\nkafka.reconnect.backoff.max.ms = 500\ncluster.id = t\ncluster.node = " << name
        << "\nlake.sync = false\n";
    nodes.push_back(
        std::make_unique<HubProcess>(dir.sub(name), pluginsDir(), dir.sub(name + ".log"), config));
    ASSERT_TRUE(nodes.back()->start()) << nodes.back()->log();
  }
  // One feed, registered on the first node, known to all.
  auto made = nodes[0]->post(
      "/api/v1/feeds", R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})",
      "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  for (auto& n : nodes) {
    ASSERT_TRUE(waitFor([&] { return n->get("/api/v1/feeds/wx").status == 200; })) << n->log();
  }

  // Bodies of 20 stations each, every station new: a station acknowledged is one entity.
  std::set<std::string> acknowledged;
  std::mt19937 rng(7);
  int body_no = 0;
  auto pushOnce = [&](HubProcess& node) {
    std::string csv = "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";
    std::vector<std::string> ids;
    for (int k = 0; k < 20; ++k) {
      const std::string id = "P" + std::to_string(body_no) + "-" + std::to_string(k);
      ids.push_back(id);
      csv += id + "," + std::to_string(123.2 + (rng() % 4000) / 10000.0) + "," +
             std::to_string(41.7 + (rng() % 2000) / 10000.0) +
             ",2026-11-22T08:00:00+08:00,3.5,40,12,300,0\n";
    }
    ++body_no;
    try {
      auto r = node.post("/api/v1/feeds/wx/records", csv, "text/csv");
      if (r.status == 202) acknowledged.insert(ids.begin(), ids.end());
    } catch (const Poco::Exception&) {  // the node is down: not acknowledged
    }
  };
  const int rounds = kills();
  for (int round = 0; round < rounds; ++round) {
    const size_t victim = rng() % nodes.size();
    for (int k = 0; k < 6; ++k) {
      for (auto& n : nodes) pushOnce(*n);
    }
    nodes[victim]->killNow();
    for (int k = 0; k < 4; ++k) {
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (i != victim) pushOnce(*nodes[i]);
      }
    }
    ASSERT_TRUE(nodes[victim]->start()) << nodes[victim]->log();
  }
  ASSERT_GT(acknowledged.size(), 0u);
  std::cout << "cluster: " << rounds << " kill -9s, " << body_no << " pushes, "
            << acknowledged.size() << " stations acknowledged\n";

  // Every node converges on every acknowledged station: the stations of each node's lake, walked
  // page by page, hold all of them, and every node holds the same ones (a node killed after its
  // commit and before its 202 may have stored a body nobody was told of: on all nodes alike).
  auto stations = [&](HubProcess& n) {
    std::set<std::string> out;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      auto r = n.get("/api/v1/entities?domain=weather&limit=5000" +
                     (cursor.empty() ? std::string() : "&cursor=" + cursor));
      if (r.status != 200) break;
      auto o = parseObject(r.body);
      auto features = o->getArray("features");
      for (size_t i = 0; i < features->size(); ++i)
        out.insert(features->getObject(static_cast<unsigned>(i))->getValue<std::string>("id"));
      if (!o->has("next")) break;
      cursor = o->getValue<std::string>("next");
    }
    return out;
  };
  std::vector<std::set<std::string>> held;
  for (auto& n : nodes) {
    std::set<std::string> have;
    const bool converged = waitFor(
        [&] {
          have = stations(*n);
          return std::includes(have.begin(), have.end(), acknowledged.begin(), acknowledged.end());
        },
        std::chrono::seconds(90));
    EXPECT_TRUE(converged) << "node on port " << n->port() << " holds " << have.size() << " of "
                           << acknowledged.size() << " acknowledged stations\n"
                           << n->get("/api/v1/cluster").body;
    held.push_back(have);
  }
  ASSERT_TRUE(waitFor([&] {
    for (size_t i = 0; i < nodes.size(); ++i) held[i] = stations(*nodes[i]);
    return held[0] == held[1] && held[1] == held[2];
  })) << held[0].size()
      << " / " << held[1].size() << " / " << held[2].size();
  for (auto& n : nodes) EXPECT_EQ(n->stop(), 0) << n->log();
}

}  // namespace
}  // namespace firehub::testing
