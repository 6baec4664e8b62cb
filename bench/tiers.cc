// `firehub bench tiers`: a county hub's link to its city hub, both in this process on loopback,
// each with its own lake and embedded broker.
//  1. Catch-up: the county's lake holds --backlog records taken in while its link was cut (ten
//     minutes at 5,000 records/s would be 3 M); the county runs, fused and published, with
//     nothing listening at the city's address; then the city starts there and the backlog goes
//     up: records a second, from the city's start to its confirmation of the last one
//     (target >= 50,000 records/s).
//  2. Steady lag: pushes of --rate records a second to the county for --seconds; the link's lag
//     (the age of the oldest record the city has not confirmed, GET /api/v1/upstream) sampled
//     every 50 ms: p50 and p99 (target p99 <= 1 s).
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <Poco/Net/ServerSocket.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench.h"
#include "bench_data.h"
#include "bench_report.h"
#include "firehub/hub.h"
#include "firehub/lake.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct TiersBenchOptions {
  size_t backlog = 300000;
  int rate = 5000;
  int seconds = 20;
  size_t batch = 2000;
  std::string json;
};

Poco::JSON::Object::Ptr upstreamOf(uint16_t port, const std::string& key) {
  auto r = httpRequest("http://127.0.0.1:" + std::to_string(port), "GET", "/api/v1/upstream", "",
                       "", key);
  Poco::JSON::Parser parser;
  return parser.parse(r.body).extract<Poco::JSON::Object::Ptr>();
}

// Hydrants as the water bureau's connector makes them, taken in by the county itself.
Status loadBacklog(const std::string& lake_dir, size_t n) {
  lake::LakeOptions lo;
  lo.path = lake_dir;
  lo.sync = false;
  auto lake = lake::Lake::open(lo);
  if (!lake.isOk()) return lake.status();
  std::vector<lake::StoreItem> batch;
  for (size_t i = 0; i < n; ++i) {
    const std::string id = "H" + std::to_string(i);
    auto it = benchItem("water", "water_source", id, 123.0 + (i % 1000) * 1e-3,
                        41.5 + static_cast<double>(i / 1000) * 1e-3);
    auto& r = it.record();
    r.set_agency("water-bureau");
    r.mutable_provenance()->set_source_record_id(id);
    r.mutable_provenance()->set_connector_id("firehub.connector.water");
    r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    r.set_op(firehub::v1::OP_UPSERT);
    r.mutable_received_at()->set_seconds(std::time(nullptr));
    auto* w = r.mutable_water_source();
    w->set_source_id(id);
    w->set_kind(firehub::v1::WaterSource::KIND_HYDRANT);
    w->set_status(firehub::v1::WaterSource::STATUS_IN_SERVICE);
    w->set_pressure_mpa(0.3);
    it.topics.push_back("firehub.v1.water");
    batch.push_back(std::move(it));
    if (batch.size() == 10000 || i + 1 == n) {
      auto committed = (*lake)->commit(batch, {});
      if (!committed.isOk()) return committed.status();
      batch.clear();
    }
  }
  return Status::ok();
}

// Waits (bounded) until the hub's fusion has caught up and neither it nor the publisher has
// moved for a second.
void waitSettled(Hub& hub) {
  std::pair<uint64_t, uint64_t> last{~uint64_t{0}, 0};
  for (int i = 0; i < 1200; ++i) {
    const bool fused = !hub.fusion() || hub.fusion()->caughtUp();
    const std::pair<uint64_t, uint64_t> now{hub.fusion() ? hub.fusion()->checkpoint() : 0,
                                            hub.publisher() ? hub.publisher()->delivered() : 0};
    if (fused && now == last) return;
    last = now;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int benchTiers(const TiersBenchOptions& o) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("firehub-bench-tiers-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "county");
  std::fprintf(stderr, "bench: the county's backlog (%zu records)...\n", o.backlog);
  if (Status s = loadBacklog((dir / "county" / "lake").string(), o.backlog); !s.isOk()) {
    std::cerr << "bench: " << s.toString() << "\n";
    return 1;
  }
  // The city's port, chosen now: during the cut nothing listens there.
  uint16_t city_port = 0;
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    city_port = probe.address().port();
  }
  const std::string city_url = "http://127.0.0.1:" + std::to_string(city_port);
  HubConfig city;
  city.init = true;
  city.data_dir = (dir / "city").string();
  city.http_listen = "127.0.0.1:" + std::to_string(city_port);
  city.tier_name = "shenyang";
  city.tier_level = "city";
  city.tier_children = {"hunnan"};
  // The city's key for the county, issued before the cut.
  {
    auto issuer = Hub::start(city);
    if (!issuer.isOk()) {
      std::cerr << "bench: city: " << issuer.status().toString() << "\n";
      return 1;
    }
    auto issued = httpRequest(city_url, "POST", "/api/v1/keys", "application/json",
                              R"({"role":"agency","agency":"hunnan","domains":["water"]})",
                              issuer.value()->adminKey());
    Poco::JSON::Parser parser;
    std::ofstream(dir / "hunnan.key") << parser.parse(issued.body)
                                             .extract<Poco::JSON::Object::Ptr>()
                                             ->getValue<std::string>("key");
    issuer.value()->stop();
  }

  HubConfig county;
  county.init = true;
  county.data_dir = (dir / "county").string();
  county.http_listen = "127.0.0.1:0";
  county.tier_name = "hunnan";
  county.tier_level = "county";
  county.upstream_url = city_url;
  county.upstream_key_file = (dir / "hunnan.key").string();
  county.outbound_allow = {net::parseNetwork("127.0.0.1/32").value()};
  county.lake_sync = false;
  county.upstream_batch = o.batch;
  county.upstream_max_backoff_s = 1;
  // 1. Catch-up. The county runs through the cut: its own fusion and publisher take in the
  // backlog (as they did while the records arrived); then the link comes back.
  std::fprintf(stderr, "bench: the county runs while its link is cut...\n");
  auto county_hub = Hub::start(county);
  if (!county_hub.isOk()) {
    std::cerr << "bench: county: " << county_hub.status().toString() << "\n";
    return 1;
  }
  const uint16_t county_port = county_hub.value()->httpPort();
  const std::string county_key = county_hub.value()->adminKey();
  waitSettled(*county_hub.value());
  std::fprintf(stderr, "bench: the link comes back...\n");
  auto city_hub = Hub::start(city);
  if (!city_hub.isOk()) {
    std::cerr << "bench: city: " << city_hub.status().toString() << "\n";
    return 1;
  }
  const auto back = Clock::now();
  double catch_up_s = 0, first_s = 0;
  for (int i = 0; i < 36000; ++i) {
    const uint64_t sent = upstreamOf(county_port, county_key)->getValue<uint64_t>("sent");
    const double t = std::chrono::duration<double>(Clock::now() - back).count();
    if (sent > 0 && first_s == 0) first_s = t;
    if (sent >= o.backlog) {
      catch_up_s = t;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double catch_up_rate = catch_up_s > 0 ? static_cast<double>(o.backlog) / catch_up_s : 0;
  std::printf("\nfirehub bench tiers: a county hub's link to its city hub on loopback\n");
  std::printf("%-52s %12s\n", "figure", "value");
  std::printf("%-52s %12zu\n", "backlog after the cut (records)", o.backlog);
  std::printf("%-52s %12.2f\n", "first batch confirmed after (s)", first_s);
  std::printf("%-52s %12.1f\n", "catch-up time (s)", catch_up_s);
  std::printf("%-52s %12.0f   (target >= 50000)\n", "catch-up rate (records/s)", catch_up_rate);
  std::fflush(stdout);

  // 2. Steady lag at `rate` records a second, pushed in tenths of a second.
  const auto feed =
      httpRequest("http://127.0.0.1:" + std::to_string(county_port), "POST", "/api/v1/feeds",
                  "application/json",
                  R"({"id":"water","agency":"water-bureau","connector":"firehub.connector.water"})",
                  county_key);
  std::vector<double> lags;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      try {
        lags.push_back(upstreamOf(county_port, county_key)->getValue<double>("lag_s"));
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const int per_tick = std::max(1, o.rate / 10);
  size_t pushed = 0, refused = 0;
  const auto start = Clock::now();
  for (int tick = 0; tick < o.seconds * 10; ++tick) {
    std::this_thread::sleep_until(start + std::chrono::milliseconds(100 * tick));
    std::string csv = "source_id,kind,lon,lat,status,pressure_mpa,updated_at\n";
    char line[160];
    for (int k = 0; k < per_tick; ++k) {
      const size_t i = pushed + static_cast<size_t>(k);
      std::snprintf(line, sizeof line,
                    "L%zu,hydrant,%.5f,%.5f,in_service,0.3,2026-12-07T08:00:00+08:00\n", i,
                    124.0 + static_cast<double>(i % 1000) * 1e-3,
                    41.5 + static_cast<double>(i / 1000 % 500) * 1e-3);
      csv += line;
    }
    auto r = httpRequest("http://127.0.0.1:" + std::to_string(county_port), "POST",
                         "/api/v1/feeds/water/records", "text/csv", csv, county_key);
    if (r.status == 202) {
      pushed += static_cast<size_t>(per_tick);
    } else {
      ++refused;
    }
  }
  const double push_s = std::chrono::duration<double>(Clock::now() - start).count();
  for (int i = 0; i < 600; ++i) {
    if (upstreamOf(county_port, county_key)->getValue<uint64_t>("sent") >= o.backlog + pushed)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sampling = false;
  sampler.join();
  (void)feed;
  std::printf("%-52s %12.0f\n", "steady pushes (records/s)", static_cast<double>(pushed) / push_s);
  std::printf("%-52s %12zu\n", "pushes refused", refused);
  std::printf("%-52s %12.3f\n", "upward lag p50 (s)", percentile(lags, 0.5));
  std::printf("%-52s %12.3f   (target <= 1)\n", "upward lag p99 (s)", percentile(lags, 0.99));
  std::printf("%-52s %12.3f\n", "upward lag max (s)", percentile(lags, 1.0));
  mergeBenchJson(o.json, {{"tiers.backlog", static_cast<uint64_t>(o.backlog)},
                          {"tiers.catch_up_s", catch_up_s},
                          {"tiers.first_batch_s", first_s},
                          {"tiers.catch_up_records_per_s", catch_up_rate},
                          {"tiers.steady_records_per_s", static_cast<double>(pushed) / push_s},
                          {"tiers.pushes_refused", static_cast<uint64_t>(refused)},
                          {"tiers.lag_p50_s", percentile(lags, 0.5)},
                          {"tiers.lag_p99_s", percentile(lags, 0.99)}});
  county_hub.value()->stop();
  city_hub.value()->stop();
  fs::remove_all(dir);
  return 0;
}

}  // namespace

void addTiersBench(CLI::App& bench) {
  static TiersBenchOptions o;
  auto* tiers = bench.add_subcommand(
      "tiers", "A county hub's link to its city: catch-up after a cut, steady upward lag");
  tiers->add_option("--backlog", o.backlog, "Records the county holds when the link comes back")
      ->check(CLI::Range(size_t{1000}, size_t{10000000}));
  tiers->add_option("--rate", o.rate, "Records a second pushed to the county for the lag")
      ->check(CLI::Range(10, 100000));
  tiers->add_option("--seconds", o.seconds, "How long the steady pushes last")
      ->check(CLI::Range(1, 3600));
  tiers->add_option("--batch", o.batch, "Records per batch up the link (upstream.batch)")
      ->check(CLI::Range(size_t{1}, size_t{50000}));
  tiers->add_option("--json", o.json, "Merge the figures into this JSON report");
  tiers->callback([] { std::exit(benchTiers(o)); });
}

}  // namespace firehub::cli
