// Tiers across a real network cut: a county hub in its own network namespace, joined to its city
// hub by a veth pair (iproute2), each `firehub serve` with its own lake and embedded broker.
// Under steady pushes to the county the link is cut with `ip link set ... down` (packets are
// lost, no process stops) and restored. Checked: the county acknowledged every push during the
// cut; afterwards the city's lake holds every county record once, with origin provenance; the
// city's risk layer has the county's cells; a warning the city drafted reached the county; and
// nothing came back down as a new record. Needs root (network namespaces); skipped without.
//   FIREHUB_TIERS_CUT_S: how long the link is down (default 40; `ops/run.sh faults --long`: 300).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "processes.h"

namespace firehub::testing {
namespace {

int cutSeconds() {
  const char* s = std::getenv("FIREHUB_TIERS_CUT_S");
  return s ? std::max(5, std::atoi(s)) : 40;
}

bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// Enters network namespace `ns` (this thread only).
bool enter(const std::string& ns) {
  const int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

// `fn` run on a thread inside namespace `ns`.
template <typename Fn>
auto inside(const std::string& ns, Fn fn) {
  decltype(fn()) out{};
  std::thread t([&] {
    if (enter(ns)) out = fn();
  });
  t.join();
  return out;
}

// A `firehub serve` process, in namespace `ns` when given.
class Serve {
 public:
  Serve(std::string dir, std::string config, std::string listen, std::string ns = "")
      : dir_(std::move(dir)),
        config_(std::move(config)),
        listen_(std::move(listen)),
        ns_(std::move(ns)) {}
  ~Serve() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool start() {
    std::remove((dir_ + "/http.address").c_str());
    pid_ = fork();
    if (pid_ == 0) {
      if (!ns_.empty() && !enter(ns_)) _exit(126);
      FILE* f = std::freopen((dir_ + ".log").c_str(), "a", stderr);
      (void)f;
      const std::string plugins = pluginsDir();
      execl(firehubBinary().c_str(), "firehub", "serve", "--init", "--config", config_.c_str(),
            "--data-dir", dir_.c_str(), "--http", listen_.c_str(), "--plugins-dir", plugins.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    if (!waitFor([&] { return !readFile(dir_ + "/http.address").empty(); })) return false;
    const std::string address = readFile(dir_ + "/http.address");
    host_ = address.substr(0, address.rfind(':'));
    port_ = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    return true;
  }
  Http call(const std::string& method, const std::string& path, const std::string& body = "",
            const std::string& type = "") const {
    return http(host_, port_, method, path, body, type, adminKey(dir_));
  }
  uint16_t port() const { return port_; }
  std::string log() const { return readFile(dir_ + ".log"); }

 private:
  std::string dir_, config_, listen_, ns_;
  pid_t pid_ = -1;
  std::string host_;
  uint16_t port_ = 0;
};

size_t matched(const Http& r) {
  return r.status == 200 ? parseObject(r.body)->getValue<size_t>("numberMatched") : 0;
}

TEST(TiersNetnsTest, ACutLinkLosesNothingAndTheBacklogGoesUpOnceWhenItIsBack) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces (ip netns)";
  const std::string id = std::to_string(getpid() % 100000);
  const std::string ns = "fhcounty" + id, outer = "fhr" + id, inner = "fhk" + id;
  const std::string net = "10.77." + std::to_string(getpid() % 250) + ".";
  if (!sh("ip netns add " + ns)) GTEST_SKIP() << "ip netns add failed: no network namespaces here";
  struct Cleanup {
    std::string ns, outer;
    ~Cleanup() {
      sh("ip link del " + outer);
      sh("ip netns del " + ns);
    }
  } cleanup{ns, outer};
  ASSERT_TRUE(sh("ip link add " + outer + " type veth peer name " + inner));
  ASSERT_TRUE(sh("ip link set " + inner + " netns " + ns));
  ASSERT_TRUE(sh("ip addr add " + net + "1/30 dev " + outer));
  ASSERT_TRUE(sh("ip link set " + outer + " up"));
  ASSERT_TRUE(sh("ip netns exec " + ns + " ip addr add " + net + "2/30 dev " + inner));
  ASSERT_TRUE(sh("ip netns exec " + ns + " ip link set " + inner + " up"));
  ASSERT_TRUE(sh("ip netns exec " + ns + " ip link set lo up"));

  TempDir dir;
  std::ofstream(dir.sub("city.properties"))
      << "tier.name = shenyang\ntier.level = city\ntier.children = hunnan\nlake.sync = false\n";
  Serve city(dir.sub("city"), dir.sub("city.properties"), net + "1:0");
  ASSERT_TRUE(city.start()) << city.log();
  auto issued = city.call("POST", "/api/v1/keys",
                          R"({"role":"agency","agency":"hunnan","domains":["water","building"]})",
                          "application/json");
  ASSERT_EQ(issued.status, 201) << issued.body;
  std::ofstream(dir.sub("hunnan.key")) << parseObject(issued.body)->getValue<std::string>("key");
  std::ofstream(dir.sub("county.properties"))
      << "tier.name = hunnan\ntier.level = county\nupstream.url = http://" << net
      << "1:" << city.port() << "\nupstream.key_file = " << dir.sub("hunnan.key")
      << "\nupstream.down_interval_s = 1\noutbound.allow = " << net << "0/30\nlake.sync = false\n";
  Serve county(dir.sub("county"), dir.sub("county.properties"), "127.0.0.1:0", ns);
  ASSERT_TRUE(county.start()) << county.log();
  auto onCounty = [&](const std::string& method, const std::string& path,
                      const std::string& body = "", const std::string& type = "") {
    return inside(ns, [&] { return county.call(method, path, body, type); });
  };
  ASSERT_EQ(onCounty("POST", "/api/v1/feeds",
                     R"({"id":"bld","agency":"housing","connector":"firehub.connector.building"})",
                     "application/json")
                .status,
            201);
  ASSERT_EQ(onCounty("POST", "/api/v1/feeds/bld/records", fixture("building", "buildings.geojson"),
                     "application/geo+json")
                .status,
            202);
  ASSERT_EQ(
      onCounty("POST", "/api/v1/feeds",
               R"({"id":"water","agency":"water-bureau","connector":"firehub.connector.water"})",
               "application/json")
          .status,
      201);

  // Steady pushes to the county from inside its namespace: 20 hydrants every 250 ms.
  std::atomic<bool> pushing{true};
  std::atomic<int> pushed{0}, refused{0};
  std::thread pusher([&] {
    if (!enter(ns)) return;
    for (int batch = 0; pushing && batch < 4000; ++batch) {
      std::string csv = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
      for (int k = 0; k < 20; ++k) {
        const int i = batch * 20 + k;
        csv += "H" + std::to_string(i) + ",hydrant," + std::to_string(123.38 + (i % 300) * 1e-4) +
               "," + std::to_string(41.78 + (i / 300) * 1e-4) +
               ",in_service,0.3,2026-12-07T08:00:00+08:00\n";
      }
      auto r = county.call("POST", "/api/v1/feeds/water/records", csv, "text/csv");
      if (r.status == 202) {
        pushed += 20;
      } else {
        ++refused;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  struct Join {
    std::atomic<bool>& flag;
    std::thread& t;
    ~Join() {
      flag = false;
      if (t.joinable()) t.join();
    }
  } join{pushing, pusher};

  // The link works: the county's buildings reach the city, and an alarm in one of them at the
  // city turns its cell to level I and drafts a warning there.
  ASSERT_TRUE(waitFor([&] {
    return matched(city.call("GET", "/api/v1/entities?domain=building&limit=1")) == 4;
  })) << inside(ns, [&] { return county.call("GET", "/api/v1/upstream").body; });
  ASSERT_EQ(city.call("POST", "/api/v1/feeds",
                      R"({"id":"iot","agency":"fire-iot","connector":"firehub.connector.alarm"})",
                      "application/json")
                .status,
            201);
  auto alarm = city.call(
      "POST", "/api/v1/feeds/iot/records",
      R"({"event_id":"N-1","device_address":"00112233aaff","building_id":"hunnan/SY-B-000001","info_type":"component_state","system_type":1,"system_address":1,"component_type":40,"component_address":7,"state_flags":3,"description":"烟感火警","time":"2026-12-07T09:20:00+08:00"})"
      "\n",
      "application/x-ndjson");
  ASSERT_EQ(alarm.status, 202) << alarm.body;
  ASSERT_TRUE(waitFor([&] {
    auto alerts = onCounty("GET", "/api/v1/alerts").body;
    return alerts.find("\"origin\":\"shenyang\"") != std::string::npos;
  })) << onCounty("GET", "/api/v1/upstream").body;

  // The cut: packets to and from the county are lost for a while; pushes go on.
  const int cut = cutSeconds();
  const int before_cut = pushed;
  std::cout << "tiers: cutting the link for " << cut << " s after " << before_cut << " hydrants"
            << std::endl;
  ASSERT_TRUE(sh("ip link set " + outer + " down"));
  std::this_thread::sleep_for(std::chrono::seconds(cut));
  auto during = parseObject(onCounty("GET", "/api/v1/upstream").body);
  EXPECT_GT(during->getValue<int>("failures"), 0) << "the county noticed the cut";
  EXPECT_GT(during->getValue<uint64_t>("backlog"), 0u);
  const int during_cut = pushed - before_cut;
  ASSERT_TRUE(sh("ip link set " + outer + " up"));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  pushing = false;
  pusher.join();
  const int total = pushed;
  std::cout << "tiers: " << during_cut << " hydrants acknowledged during the cut, " << total
            << " in all, " << refused << " pushes refused" << std::endl;
  EXPECT_EQ(refused, 0) << "the county acknowledged every push during the cut";
  EXPECT_GT(during_cut, 0);

  // Back: the backlog goes up, each record once.
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitFor(
      [&] {
        return matched(city.call("GET", "/api/v1/entities?domain=water&limit=1")) ==
               static_cast<size_t>(total);
      },
      std::chrono::seconds(120)))
      << matched(city.call("GET", "/api/v1/entities?domain=water&limit=1")) << " of " << total
      << "\n"
      << onCounty("GET", "/api/v1/upstream").body;
  std::cout << "tiers: the city holds all " << total << " after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - back)
                   .count()
            << " ms" << std::endl;
  // Every county record stored once at the city: its hydrants and 4 buildings. (The counter
  // moves just after a batch's records are visible: on a loaded machine it may trail a moment.)
  auto stored = [&] {
    const std::string metrics = city.call("GET", "/metrics").body;
    const std::string accepted =
        "firehub_records_total{feed=\"tier:hunnan\",outcome=\"accepted\"} ";
    const auto at = metrics.find(accepted);
    return at == std::string::npos ? -1L : std::stol(metrics.substr(at + accepted.size()));
  };
  EXPECT_TRUE(waitFor([&] { return stored() == total + 4; })) << stored() << " of " << total + 4;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(stored(), total + 4) << "none stored twice";
  auto sample = city.call("GET", "/api/v1/entities?domain=water&limit=1").body;
  EXPECT_NE(sample.find("\"origin_hub\":\"hunnan\""), std::string::npos) << sample;
  EXPECT_NE(sample.find("\"origin_level\":\"county\""), std::string::npos) << sample;
  // The city's risk layer has the county's cells (the alarmed county building's at level I).
  auto risk = city.call("GET", "/api/v1/layers/risk?limit=1000").body;
  EXPECT_NE(risk.find("\"level\":\"I\""), std::string::npos);
  // Nothing came back down as a new record.
  EXPECT_EQ(matched(onCounty("GET", "/api/v1/entities?domain=water&limit=1")),
            static_cast<size_t>(total));
  EXPECT_EQ(matched(onCounty("GET", "/api/v1/entities?domain=building&limit=1")), 4u);
  EXPECT_EQ(matched(onCounty("GET", "/api/v1/entities?domain=alarm&limit=1")), 0u);
}

}  // namespace
}  // namespace firehub::testing
