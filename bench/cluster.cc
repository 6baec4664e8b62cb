// `firehub bench cluster`: two hubs of one cluster in this process on a broker of their own
// (librdkafka's mock cluster), pushed to over HTTP: how long a record acknowledged by one node
// takes to be applied by the other's replica at a steady rate (p50, p99), how fast a node
// stopped for a while catches up, and (three `firehub serve` processes) how long the layers duty
// takes to run elsewhere after its holder is killed with -9.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench.h"
#include "bench_data.h"
#include "bench_report.h"
#include "firehub/bus.h"
#include "firehub/hub.h"
#include "firehub/log.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

struct ClusterBenchOptions {
  int rate = 10000;  // records per second pushed to node a
  int seconds = 20;  // of the steady phase
  // Records pushed while node b is stopped: within what the mock broker keeps per partition (a
  // few MiB; past it node b reports a gap).
  size_t catchup = 100000;
  int failovers = 3;  // kill -9s of the layers duty's holder
  // cluster.session_timeout_ms of those nodes: the default, and one under it (librdkafka's mock
  // cluster waits a fixed session timeout - 1 s for members to rejoin; Kafka brokers refuse less
  // than group.min.session.timeout.ms, 6 s by default).
  std::vector<int> session_timeouts_ms = {6000, 4000};
  std::string json;
};

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

Result<std::unique_ptr<Hub>> startNode(const std::string& dir, const std::string& node,
                                       const std::string& bootstrap, bool init) {
  HubConfig c;
  c.init = init;
  c.data_dir = dir + "/" + node;
  c.http_listen = "127.0.0.1:0";
  c.kafka_bootstrap = bootstrap;
  c.cluster_id = "bench";
  c.cluster_node = node;
  c.plugin_scan_interval_s = 0;
  return Hub::start(c);
}

// The "accepted" count of a push's answer (records new to the lake: what a replica applies).
size_t acceptedOf(const std::string& body) {
  const size_t at = body.find("\"accepted\":");
  return at == std::string::npos ? 0 : std::strtoull(body.c_str() + at + 11, nullptr, 10);
}

// Long: the two phases one after the other, each with its own pushing and watching.
int runClusterBench(const ClusterBenchOptions& o) {
  log::setLevel(log::Level::kWarning);
  auto broker = bus::EmbeddedBroker::start(3, 6);
  if (!broker.isOk()) {
    std::cerr << "bench cluster: " << broker.status().toString() << "\n";
    return 1;
  }
  const std::string bootstrap = (*broker)->bootstrapServers();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("firehub-bench-cluster-" + std::to_string(::getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  auto a = startNode(dir, "a", bootstrap, true);
  auto b =
      a.isOk() ? startNode(dir, "b", bootstrap, true) : Result<std::unique_ptr<Hub>>(a.status());
  if (!a.isOk() || !b.isOk()) {
    std::cerr << "bench cluster: " << (a.isOk() ? b.status() : a.status()).toString() << "\n";
    return 1;
  }
  const std::string url = "http://" + (*a)->httpAddress();
  const std::string key = (*a)->adminKey();
  auto reg =
      httpRequest(url, "POST", "/api/v1/feeds", "application/json",
                  R"({"id":"wx","agency":"met","connector":"firehub.connector.weather"})", key);
  if (reg.status != 201) {
    std::cerr << "bench cluster: feed: " << reg.body << "\n";
    return 1;
  }

  // The first record of a topic new to the cluster: node b finds the topic with its next look at
  // the cluster's metadata (every 2 s), measured apart from the steady phase.
  const auto warm = Clock::now();
  auto first = httpRequest(url, "POST", "/api/v1/feeds/wx/records", "text/csv",
                           observationBody(100000000, 1, true), key);
  if (first.status != 202) {
    std::cerr << "bench cluster: first push: " << first.status << " " << first.body << "\n";
    return 1;
  }
  while ((*b)->replica()->state().applied < 1 && msSince(warm) < 30000)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double new_topic_ms = msSince(warm);

  // Phase 1: a steady rate in bodies every 50 ms; b's applied count watched every millisecond.
  const size_t per_body = static_cast<size_t>(std::max(1, o.rate / 20));
  const size_t bodies = static_cast<size_t>(o.seconds) * 20;
  std::vector<Clock::time_point> acked(bodies);
  std::vector<size_t> cumulative(bodies);
  std::atomic<size_t> pushed_bodies{0};
  std::vector<double> lag_ms;
  std::atomic<bool> done{false};
  const uint64_t applied_before = (*b)->replica()->state().applied;
  std::thread watcher([&] {
    size_t next = 0;
    while (!done || next < pushed_bodies) {
      const uint64_t applied = (*b)->replica()->state().applied - applied_before;
      while (next < pushed_bodies && applied >= cumulative[next]) {
        lag_ms.push_back(std::max(0.0, msSince(acked[next])));
        ++next;
      }
      if (done && next < pushed_bodies && msSince(acked[pushed_bodies - 1]) > 60000) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  size_t total = 0, refused = 0;
  const auto start = Clock::now();
  for (size_t i = 0; i < bodies; ++i) {
    std::this_thread::sleep_until(start + std::chrono::milliseconds(50 * i));
    auto r = httpRequest(url, "POST", "/api/v1/feeds/wx/records", "text/csv",
                         observationBody(i * per_body, per_body, true), key);
    if (r.status != 202) {
      ++refused;
      continue;
    }
    total += acceptedOf(r.body);
    cumulative[pushed_bodies] = total;
    acked[pushed_bodies] = Clock::now();
    ++pushed_bodies;
  }
  const double steady_s = msSince(start) / 1000;
  done = true;
  watcher.join();
  const double achieved = static_cast<double>(pushed_bodies * per_body) / steady_s;

  // Phase 2: b stops; a takes `catchup` records; b starts again on its lake and catches up.
  (*b)->stop();
  b->reset();
  const size_t base = bodies * per_body;
  size_t behind = 0;  // records new to the lake while b is down
  for (size_t i = 0; i < o.catchup; i += 5000) {
    const size_t n = std::min<size_t>(5000, o.catchup - i);
    auto r = httpRequest(url, "POST", "/api/v1/feeds/wx/records", "text/csv",
                         observationBody(base + i, n, true), key);
    if (r.status != 202) {
      std::cerr << "bench cluster: push while b is down: " << r.status << " " << r.body << "\n";
      return 1;
    }
    behind += acceptedOf(r.body);
  }
  const auto restart = Clock::now();
  b = startNode(dir, "b", bootstrap, false);
  if (!b.isOk()) {
    std::cerr << "bench cluster: restart b: " << b.status().toString() << "\n";
    return 1;
  }
  while ((*b)->replica()->state().applied < behind && msSince(restart) < 120000)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (const auto st = (*b)->replica()->state(); st.applied < behind) {
    std::cerr << "bench cluster: node b applied " << st.applied << " of " << behind
              << " in 120 s (duplicates " << st.duplicates << ", refused " << st.refused
              << "); lag " << st.lag_records << " records; " << st.last_error << "\n";
    for (const auto& p : st.partitions)
      std::cerr << "  " << p.topic << "/" << p.partition << " next " << p.next_offset << " high "
                << p.high_watermark << "\n";
  }
  const double catchup_s = msSince(restart) / 1000;
  const std::string gap = (*b)->replica()->state().gap;
  if (!gap.empty()) std::cerr << "bench cluster: node b has a gap: " << gap << "\n";
  const uint64_t caught = (*b)->replica()->state().applied;
  (*b)->stop();
  (*a)->stop();

  // Phase 3: the duty failover, three processes on the same broker, per session timeout.
  BenchFigures failover_json;
  std::string failover_text;
  for (int timeout : o.failovers > 0 ? o.session_timeouts_ms : std::vector<int>{}) {
    const std::vector<double> took = measureDutyFailover(
        bootstrap, dir + "/failover-" + std::to_string(timeout), o.failovers, timeout);
    const double median = percentile(took, 0.5);
    const double most = took.empty() ? 0 : *std::max_element(took.begin(), took.end());
    char line[256];
    std::snprintf(line, sizeof line,
                  "cluster: layers duty running elsewhere %.1f s (median), %.1f s (max) after kill "
                  "-9 of its holder, %zu of %d kills, cluster.session_timeout_ms %d (target <= 10 "
                  "s)\n",
                  median, most, took.size(), o.failovers, timeout);
    failover_text += line;
    const std::string k = "cluster.duty_failover_" + std::to_string(timeout) + "ms.";
    failover_json.push_back({k + "p50_s", median});
    failover_json.push_back({k + "max_s", most});
    failover_json.push_back({k + "kills", static_cast<uint64_t>(took.size())});
  }
  std::filesystem::remove_all(dir);

  const double p50 = percentile(lag_ms, 0.5), p99 = percentile(lag_ms, 0.99);
  const double max = lag_ms.empty() ? 0 : *std::max_element(lag_ms.begin(), lag_ms.end());
  const double catchup_rate = static_cast<double>(caught) / catchup_s;
  std::printf(
      "cluster: the first record of a new topic reached node b in %.0f ms\n"
      "cluster: %.0f records/s pushed to node a (%zu bodies refused); replication lag to node b "
      "p50 %.0f ms, p99 %.0f ms, max %.0f ms over %zu bodies (target p99 <= 1000 ms)\n"
      "cluster: node b restarted behind by %zu records caught up in %.2f s: %.0f records/s (target "
      ">= 50,000/s)\n%s",
      new_topic_ms, achieved, refused, p50, p99, max, lag_ms.size(), o.catchup, catchup_s,
      catchup_rate, failover_text.c_str());
  BenchFigures figures = {{"cluster.new_topic_first_record_ms", new_topic_ms},
                          {"cluster.rate_records_per_s", achieved},
                          {"cluster.lag_p50_ms", p50},
                          {"cluster.lag_p99_ms", p99},
                          {"cluster.lag_max_ms", max},
                          {"cluster.lag_target_p99_ms", 1000},
                          {"cluster.catchup_records", static_cast<uint64_t>(caught)},
                          {"cluster.catchup_records_per_s", catchup_rate},
                          {"cluster.catchup_target_records_per_s", 50000},
                          {"cluster.catchup_gap", gap},
                          {"cluster.duty_failover_target_s", 10}};
  figures.insert(figures.end(), failover_json.begin(), failover_json.end());
  mergeBenchJson(o.json, figures);
  return 0;
}

}  // namespace

void addClusterBench(CLI::App& bench) {
  static ClusterBenchOptions o;
  auto* cmd = bench.add_subcommand(
      "cluster", "Two cluster nodes: replication lag at a steady rate, catch-up after a stop");
  cmd->add_option("--rate", o.rate, "Records per second pushed to node a")
      ->check(CLI::Range(20, 200000));
  cmd->add_option("--seconds", o.seconds, "Seconds of the steady phase")->check(CLI::Range(1, 600));
  cmd->add_option("--catchup", o.catchup, "Records pushed while node b is stopped")
      ->check(CLI::Range(1000, 10000000));
  cmd->add_option("--failovers", o.failovers, "Kill -9s of the layers duty's holder (0: none)")
      ->check(CLI::Range(0, 50));
  cmd->add_option("--session-timeout-ms", o.session_timeouts_ms,
                  "cluster.session_timeout_ms of the failover nodes (one run each)")
      ->check(CLI::Range(1000, 300000));
  cmd->add_option("--json", o.json, "Merge the figures into this JSON report");
  cmd->callback([] { std::exit(runClusterBench(o)); });
}

}  // namespace firehub::cli
