// Cluster mode with real processes: `firehub broker` and three `firehub serve` nodes of one
// cluster (ingest.ack = replicated, the cluster default). Pushes go to every node in turn while
// one node at a time is killed with -9 and started again on its lake. Afterwards every record
// any node acknowledged is in every node's lake, once; a webhook subscription received every one
// of them across the changes of the duty's holder; every CAP message is on the warnings topic
// once; and every node's risk layer has the same cells, levels and scores.
//   FIREHUB_CLUSTER_KILLS: how many kills (default 5; `ops/run.sh faults --long` sets 20).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "http_peers.h"
#include "processes.h"

namespace firehub::testing {
namespace {

int kills() {
  const char* n = std::getenv("FIREHUB_CLUSTER_KILLS");
  return n ? std::max(1, std::atoi(n)) : 5;
}

TEST(ClusterFaultTest, EveryAcknowledgedRecordIsOnEveryNodeAfterKillDashNines) {
  const auto began = std::chrono::steady_clock::now();
  auto phase = [&](const char* what) {
    std::cout << "cluster: " << what << " at "
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                  began)
                     .count()
              << " s" << std::endl;
  };
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
        << "\nlake.sync = false\ncluster.session_timeout_ms = 4000\noutbound.allow = "
           "127.0.0.1/32\n";
    nodes.push_back(
        std::make_unique<HubProcess>(dir.sub(name), pluginsDir(), dir.sub(name + ".log"), config));
    ASSERT_TRUE(nodes.back()->start()) << nodes.back()->log();
  }
  // One feed, registered on the first node, known to all.
  auto made = nodes[0]->post(
      "/api/v1/feeds", R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})",
      "application/json");
  ASSERT_EQ(made.status, 201) << made.body;
  // Buildings far enough apart to lie in different warning areas, and an alarm feed: each round
  // sets off a fire alarm in one building (a level I cell, a CAP Alert drafted).
  std::string buildings = R"({"type":"FeatureCollection","features":[)";
  for (int b = 0; b < 24; ++b) {
    char feature[512];
    std::snprintf(feature, sizeof feature,
                  R"(%s{"type":"Feature","geometry":{"type":"Point","coordinates":[%.4f,%.4f]},)"
                  R"("properties":{"building_id":"FB-%02d","name":"B%d","height_m":30,"floors":10,)"
                  R"("occupancy":"residential"}})",
                  b ? "," : "", 123.0 + 0.08 * (b % 6), 41.6 + 0.08 * (b / 6), b, b);
    buildings += feature;
  }
  buildings += "]}";
  for (const char* feed :
       {R"({"id":"bld","agency":"housing","connector":"firehub.connector.building"})",
        R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})"})
    ASSERT_EQ(nodes[1]->post("/api/v1/feeds", feed, "application/json").status, 201);
  for (auto& n : nodes) {
    ASSERT_TRUE(waitFor([&] {
      return n->get("/api/v1/feeds/wx").status == 200 && n->get("/api/v1/feeds/iot").status == 200;
    })) << n->log();
  }
  ASSERT_EQ(nodes[2]->post("/api/v1/feeds/bld/records", buildings, "application/geo+json").status,
            202);
  // A webhook subscription of every weather record, made on one node, delivered by whichever
  // node holds the subscriptions duty.
  WebhookReceiver receiver(0);
  auto sub = nodes[0]->post(
      "/api/v1/subscriptions",
      R"({"topic":"firehub.v1.weather","from":"beginning","delivery":{"kind":"webhook","url":"http://127.0.0.1:)" +
          std::to_string(receiver.port()) + R"(/hook","secret":"0123456789abcdef"}})",
      "application/json");
  ASSERT_EQ(sub.status, 201) << sub.body;
  phase("set up");
  int alarm_no = 0;
  auto alarmOnce = [&](HubProcess& node) {
    char body[512];
    std::snprintf(body, sizeof body,
                  R"({"event_id":"F-%d","device_address":"00112233%04x","building_id":"FB-%02d",)"
                  R"("info_type":"component_state","system_type":1,"system_address":1,)"
                  R"("component_type":40,"component_address":7,"state_flags":3,)"
                  R"("description":"fire","time":"2026-11-22T09:%02d:00+08:00"})",
                  alarm_no, alarm_no, alarm_no % 24, alarm_no % 60);
    ++alarm_no;
    try {
      node.post("/api/v1/feeds/iot/records", body, "application/json");
    } catch (const Poco::Exception&) {  // the node is down
    }
  };

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
    alarmOnce(*nodes[(victim + 1) % nodes.size()]);
    nodes[victim]->killNow();
    // Down long enough for the group to move its duties (the session timeout, 4 s, and the
    // rebalance): pushes go on to the others meanwhile.
    const auto killed = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - killed < std::chrono::seconds(9)) {
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (i != victim) pushOnce(*nodes[i]);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    ASSERT_TRUE(nodes[victim]->start()) << nodes[victim]->log();
  }
  phase("kills done");
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
  phase("lakes converged");
  // And on Kafka: every acknowledged station's record is on the domain topic.
  std::set<std::string> on_kafka;
  for (const auto& m : consumeAll(broker.bootstrap(), "firehub.v1.weather", acknowledged.size(),
                                  std::chrono::seconds(30))) {
    const auto at = m.value.find("\"station_id\":\"");
    if (at == std::string::npos) continue;
    const auto end = m.value.find('"', at + 14);
    on_kafka.insert(m.value.substr(at + 14, end - at - 14));
  }
  EXPECT_TRUE(
      std::includes(on_kafka.begin(), on_kafka.end(), acknowledged.begin(), acknowledged.end()))
      << on_kafka.size() << " stations on firehub.v1.weather, " << acknowledged.size()
      << " acknowledged";
  // The webhook received every acknowledged station, whichever node held the duty when.
  // The station ids of each POST's records, read once per POST.
  std::set<std::string> got;
  size_t read_posts = 0;
  auto delivered = [&] {
    const auto posts = receiver.received();
    for (; read_posts < posts.size(); ++read_posts) {
      const std::string& body = posts[read_posts].body;
      const std::string tag = "\"station_id\":\"";
      for (auto at = body.find(tag); at != std::string::npos; at = body.find(tag, at + 1)) {
        const auto end = body.find('"', at + tag.size());
        got.insert(body.substr(at + tag.size(), end - at - tag.size()));
      }
    }
    return std::includes(got.begin(), got.end(), acknowledged.begin(), acknowledged.end());
  };
  EXPECT_TRUE(waitFor(delivered, std::chrono::seconds(60)))
      << "the webhook received " << got.size() << " stations, not every one of the "
      << acknowledged.size() << " acknowledged, in " << receiver.received().size() << " POSTs";
  std::cout << "cluster: " << receiver.received().size() << " webhook POSTs\n";

  phase("webhook complete");
  // Fusion on every node from its own replica: the same cells, levels and scores.
  auto cells = [&](HubProcess& n) {
    std::map<std::string, std::string> out;
    auto r = n.get("/api/v1/layers/risk?properties=cell,level,score&limit=10000");
    if (r.status != 200) return out;
    auto features = parseObject(r.body)->getArray("features");
    for (size_t i = 0; i < features->size(); ++i) {
      auto p = features->getObject(static_cast<unsigned>(i))->getObject("properties");
      out[p->getValue<std::string>("cell")] =
          p->get("level").toString() + " " + p->get("score").toString();
    }
    return out;
  };
  EXPECT_TRUE(waitFor([&] {
    auto first = cells(*nodes[0]);
    return !first.empty() && first == cells(*nodes[1]) && first == cells(*nodes[2]);
  })) << cells(*nodes[0]).size()
      << " / " << cells(*nodes[1]).size() << " / " << cells(*nodes[2]).size() << " cells";

  phase("layers equal");
  // Each CAP message was sent once, by whichever node held the layers duty, and none is lost: a
  // draft every node made (each from its own replica) goes out, from the node that held the
  // duty then or from the one that took it after.
  auto drafted = [&](HubProcess& n) {
    std::set<std::string> out;
    auto r = n.get("/api/v1/warnings?history=1&limit=1000");
    if (r.status != 200) return out;
    auto list = parseObject(r.body)->getArray("warnings");
    for (size_t i = 0; i < list->size(); ++i)
      out.insert(list->getObject(static_cast<unsigned>(i))->getValue<std::string>("identifier"));
    return out;
  };
  std::set<std::string> everywhere = drafted(*nodes[0]);
  for (size_t i = 1; i < nodes.size(); ++i) {
    std::set<std::string> also, theirs = drafted(*nodes[i]);
    std::set_intersection(everywhere.begin(), everywhere.end(), theirs.begin(), theirs.end(),
                          std::inserter(also, also.begin()));
    everywhere = std::move(also);
  }
  EXPECT_FALSE(everywhere.empty());
  std::map<std::string, int> sent;
  waitFor(
      [&] {
        sent.clear();
        for (const auto& m : consumeAll(broker.bootstrap(), "firehub.v1.warnings", 100000,
                                        std::chrono::seconds(3))) {
          const auto at = m.value.find("<identifier>");
          if (at == std::string::npos) continue;
          const auto end = m.value.find("</identifier>", at);
          ++sent[m.value.substr(at + 12, end - at - 12)];
        }
        for (const auto& identifier : everywhere) {
          if (!sent.count(identifier)) return false;
        }
        return true;
      },
      std::chrono::seconds(60));
  for (const auto& [identifier, times] : sent) EXPECT_EQ(times, 1) << identifier;
  // On a failure, what each node's publisher and duty group said.
  auto duty_lines = [&] {
    std::string out;
    for (auto& n : nodes) {
      std::istringstream log(n->log());
      out += "--- node on port " + std::to_string(n->port()) + "\n";
      for (std::string line; std::getline(log, line);) {
        if (line.find("[bus]") != std::string::npos || line.find("duty") != std::string::npos)
          out += line + "\n";
      }
    }
    return out;
  };
  size_t lost = 0;
  for (const auto& identifier : everywhere) {
    EXPECT_TRUE(sent.count(identifier)) << identifier << " was drafted on every node, never sent";
    lost += sent.count(identifier) ? 0 : 1;
  }
  if (lost > 0) std::cout << duty_lines();
  std::cout << "cluster: " << got.size() << " stations delivered by webhook, " << alarm_no
            << " fire alarms, " << sent.size() << " CAP messages on the warnings topic, "
            << everywhere.size() << " drafted on every node\n";
  for (auto& n : nodes) EXPECT_EQ(n->stop(), 0) << n->log();
}

}  // namespace
}  // namespace firehub::testing
