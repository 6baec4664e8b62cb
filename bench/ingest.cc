// `firehub bench ingest`: end-to-end ingest throughput (decode -> lake commit with WAL+fsync ->
// delivered on Kafka) beside the two ceilings measured in the same run on the same bytes:
// RocksDB batched writes alone, and librdkafka produce to the embedded broker alone.
#include <librdkafka/rdkafka.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench_data.h"
#include "bench_report.h"
#include "firehub/plugin.h"
#include "firehub/registry.h"
#include "firehub/v1/time_text.h"
#include "bench.h"
#include "firehub/hub.h"

namespace firehub::cli {
namespace {

struct BenchOptions {
  size_t records = 1000000;
  size_t batch = 5000;
  // ndjson (JSON lines, what log shippers move), csv, or mix: weather JSON lines with building
  // GeoJSON and fire-alarm webhook events, each to its own feed and connector
  std::string format = "ndjson";
  std::string bootstrap;  // an external broker (`firehub broker`); default: embedded
  std::string jsonl_out;  // also write the observations as one JSON-lines file
  std::string json;       // merge the figures into this report
  std::string work_dir;
  bool keep = false;
  // Weather feeds pushing at once, each from its own thread (agencies push independently); the
  // batches go to them in turn. 1: one feed, one pushing thread.
  size_t feeds = 1;
  // librdkafka properties for the hub's producer (KEY=VALUE), as `kafka.KEY` in the config
  std::vector<std::string> kafka_properties;
};

// CPU time of the whole process, or of the calling thread only.
double cpuSeconds(int who = RUSAGE_SELF) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

struct Figure {
  std::string name;
  size_t records = 0;
  size_t bytes = 0;
  double seconds = 0;
  double cpu = 0;
  double cpuPerRecordUs() const { return cpu * 1e6 / std::max<size_t>(records, 1); }
};

class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()), c0_(cpuSeconds()) {}
  void finish(Figure& f) const {
    f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    f.cpu = cpuSeconds() - c0_;
  }

 private:
  std::chrono::steady_clock::time_point t0_;
  double c0_;
};

// Where building b stands: a 1,000 x 800 grid of 0.001° over the weather stations' area.
std::pair<double, double> buildingPlace(size_t b) {
  return {122.9 + (b % 1000) * 0.001, 41.4 + ((b / 1000) % 800) * 0.001};
}

// Bodies of `batch` observations: CSV with a header, or JSON lines as a station would log them.
std::vector<std::string> makeBatches(size_t n, size_t batch, bool csv, size_t& bytes) {
  std::vector<std::string> out;
  bytes = 0;
  for (size_t start = 0; start < n; start += batch) {
    out.push_back(observationBody(start, std::min(n, start + batch) - start, csv));
    bytes += out.back().size();
  }
  return out;
}

// The id of the bench's weather feed `index` (0: "bench", then "bench-2", ...).
std::string benchFeedId(size_t index) {
  return index == 0 ? "bench" : "bench-" + std::to_string(index + 1);
}

// One push of the run: the feed, its body and the body's content type.
struct Push {
  std::string feed;
  std::string body;
  const char* content_type;
};

// Buildings first to last-1 as a GeoJSON FeatureCollection: footprints of about 30 m on a grid
// over the weather stations' area, occupancies and key units as a housing register has them.
std::string buildingBody(size_t first, size_t last) {
  static const char* kOccupancy[] = {"residential",  "residential",   "residential",
                                     "office",       "high_rise",     "large_commercial_complex",
                                     "school",       "warehouse",     "factory",
                                     "elderly_care", "crowded_place", "group_rental"};
  std::string body = "{\"type\":\"FeatureCollection\",\"features\":[";
  char feature[768];
  for (size_t i = first; i < last; ++i) {
    const auto [lon, lat] = buildingPlace(i);
    std::snprintf(
        feature, sizeof feature,
        "%s{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[%.5f,%.5f],"
        "[%.5f,%.5f],[%.5f,%.5f],[%.5f,%.5f],[%.5f,%.5f]]]},\"properties\":{\"building_id\":\"B%"
        "07zu\","
        "\"name\":\"楼%zu\",\"height_m\":%.1f,\"floors\":%zu,\"occupancy\":\"%s\",\"key_unit\":%s,"
        "\"year_built\":%zu,\"floor_area_m2\":%zu,\"credit_status\":\"normal\"}}",
        i == first ? "" : ",", lon, lat, lon + 0.0003, lat, lon + 0.0003, lat + 0.0003, lon,
        lat + 0.0003, lon, lat, i, i, 3.0 * (1 + i % 30), 1 + i % 30, kOccupancy[i % 12],
        i % 50 == 0 ? "true" : "false", 1960 + i % 60, 200 + (i % 97) * 150);
    body += feature;
  }
  body += "]}";
  return body;
}

// Fire-alarm webhook events first to last-1 (JSON lines): device states of the buildings' alarm
// panels, one in three a fire.
std::string alarmBody(size_t first, size_t last) {
  std::string body;
  char line[512];
  for (size_t i = first; i < last; ++i) {
    const size_t building = (i * 7919) % 150000;
    auto [lon, lat] = buildingPlace(building);
    lon += 0.00015, lat += 0.00015;  // the middle of its footprint
    const std::string when = benchTime(static_cast<int64_t>(i));
    std::snprintf(
        line, sizeof line,
        "{\"event_id\":\"E%09zu\",\"device_address\":\"%012zx\",\"building_id\":\"B%07zu\","
        "\"info_type\":\"device_state\",\"state_flags\":%d,\"time\":\"%s\",\"lon\":%.5f,\"lat\":%."
        "5f}\n",
        i, 0xa00000000000 + building, building, i % 3 == 0 ? 3 : 1, when.c_str(), lon, lat);
    body += line;
  }
  return body;
}

// The mixed run: of every 100 records 80 weather observations, 15 buildings, 5 alarm events, in
// pushes of `batch` observations, batch/5 buildings and batch/10 events, interleaved so each
// feed's pushes spread over the whole run.
std::vector<Push> makeMix(size_t n, size_t batch, size_t& bytes) {
  const size_t buildings = n * 15 / 100, alarms = n * 5 / 100,
               observations = n - buildings - alarms;
  size_t weather_bytes = 0;
  std::vector<std::vector<Push>> lists(3);
  for (auto& body : makeBatches(observations, batch, false, weather_bytes)) {
    lists[0].push_back({"bench", std::move(body), "application/x-ndjson"});
  }
  const size_t building_batch = std::max<size_t>(1, batch / 5),
               alarm_batch = std::max<size_t>(1, batch / 10);
  for (size_t i = 0; i < buildings; i += building_batch) {
    size_t last = std::min(buildings, i + building_batch);
    lists[1].push_back({"bench-buildings", buildingBody(i, last), "application/geo+json"});
  }
  for (size_t i = 0; i < alarms; i += alarm_batch) {
    size_t last = std::min(alarms, i + alarm_batch);
    lists[2].push_back({"bench-alarms", alarmBody(i, last), "application/x-ndjson"});
  }
  std::vector<Push> out;
  std::vector<size_t> next(3, 0);
  bytes = 0;
  for (;;) {  // the list furthest behind (by the share of its pushes done) goes next
    int pick = -1;
    double least = 2;
    for (int l = 0; l < 3; ++l) {
      if (next[l] == lists[l].size()) continue;
      double done = static_cast<double>(next[l]) / lists[l].size();
      if (done < least) least = done, pick = l;
    }
    if (pick < 0) break;
    bytes += lists[pick][next[pick]].body.size();
    out.push_back(std::move(lists[pick][next[pick]++]));
  }
  return out;
}

void printFigure(const Figure& f, const Figure* relative_to) {
  double rps = f.records / f.seconds;
  std::printf("%-34s %10zu %9.2f %12.0f %9.1f %11.2f", f.name.c_str(), f.records, f.seconds, rps,
              f.bytes / f.seconds / 1e6, f.cpuPerRecordUs());
  if (relative_to) std::printf("   %5.2f", rps / (relative_to->records / relative_to->seconds));
  std::printf("\n");
}

int benchIngest(const BenchOptions& o) {
  namespace fs = std::filesystem;
  fs::path dir = o.work_dir.empty()
                     ? fs::temp_directory_path() / ("firehub-bench-" + std::to_string(getpid()))
                     : fs::path(o.work_dir);
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::fprintf(stderr, "bench: generating %zu records (%s)...\n", o.records, o.format.c_str());
  const bool csv = o.format == "csv", mix = o.format == "mix";
  if (mix && !o.jsonl_out.empty()) {
    std::cerr << "bench: --jsonl-out writes the weather observations of --format ndjson or csv, "
                 "not of mix\n";
    return 2;
  }
  size_t body_bytes = 0;
  std::vector<Push> pushes;
  if (mix) {
    pushes = makeMix(o.records, o.batch, body_bytes);
  } else {
    size_t n = 0;
    for (auto& body : makeBatches(o.records, o.batch, csv, body_bytes)) {
      pushes.push_back(
          {benchFeedId(n++ % o.feeds), std::move(body), csv ? "text/csv" : "application/x-ndjson"});
    }
  }
  if (!o.jsonl_out.empty()) {
    size_t ignored = 0;
    std::ofstream out(o.jsonl_out, std::ios::binary);
    if (csv) {
      for (const auto& body : makeBatches(o.records, o.batch, false, ignored)) out << body;
    } else {
      for (const auto& push : pushes) out << push.body;
    }
    if (!out) {
      std::cerr << "bench: cannot write " << o.jsonl_out << "\n";
      return 1;
    }
  }

  // 1. End to end through the hub's own modules (no HTTP): decode, lake commit, Kafka delivery.
  Figure e2e{"end-to-end (decode+lake+kafka)"};
  Figure decode_only{"decode alone (connector+serialise)"};
  double push_thread_us =
      0;  // CPU per record of the thread that pushes (decode and commit run on it)
  double publisher_thread_us = 0;  // CPU per record of the publisher's thread (outbox -> Kafka)
  std::vector<std::pair<std::string, std::string>> stored;  // id, protobuf bytes
  // What the publisher hands librdkafka for each record: key, JSON value and its four headers.
  struct Message {
    std::string key, value, feed, agency, schema;
    const char* classification;
  };
  std::vector<Message> messages;
  {
    HubConfig config;
    config.init = true;  // a fresh data dir
    config.data_dir = (dir / "hub").string();
    config.serve_http = false;
    config.drain_timeout_ms = 60000;
    config.kafka_bootstrap = o.bootstrap;
    if (!applyKafkaProperties(o.kafka_properties, config.kafka_properties)) return 2;
    auto started = Hub::start(config);
    if (!started.isOk()) {
      std::cerr << "bench: " << started.status().toString() << "\n";
      return 1;
    }
    auto& hub = *started.value();
    std::vector<std::pair<std::string, const char*>> feeds;
    for (size_t f = 0; f < (mix ? 1 : o.feeds); ++f)
      feeds.emplace_back(benchFeedId(f), "firehub.connector.weather");
    if (mix) {
      feeds.emplace_back("bench-buildings", "firehub.connector.building");
      feeds.emplace_back("bench-alarms", "firehub.connector.alarm");
    }
    for (const auto& [id, connector] : feeds) {
      registry::FeedSpec spec;
      spec.id = id;
      spec.agency = "bench";
      spec.connector = connector;
      auto feed = hub.feeds().create(spec);
      if (!feed.isOk()) {
        std::cerr << "bench: " << feed.status().toString() << " (plugins dir built?)\n";
        return 1;
      }
    }
    std::fprintf(stderr, "bench: end to end...\n");
    Stopwatch sw;
    const double publisher_cpu0 = hub.publisher() ? hub.publisher()->threadCpuSeconds() : 0;
    // Each pushing thread pushes its feed's batches in order; their CPU is added up.
    const size_t pushers = mix ? 1 : o.feeds;
    std::vector<size_t> accepted(pushers, 0);
    std::vector<double> pusher_cpu(pushers, 0);
    std::vector<std::string> failures(pushers);
    auto push_share = [&](size_t which) {
      const double cpu0 = cpuSeconds(RUSAGE_THREAD);
      for (size_t i = which; i < pushes.size(); i += pushers) {
        const auto& push = pushes[i];
        pipeline::IngestRequest req;
        req.feed_id = push.feed;
        req.body = push.body;
        req.content_type = push.content_type;
        req.transport = "file";
        auto s = hub.pipeline().ingest(req);
        if (!s.isOk()) {
          failures[which] = s.status().toString();
          break;
        }
        if (s->rejected > 0) {  // the generators write only valid records: a rejection is a bug
          failures[which] = push.feed + " rejected " + std::to_string(s->rejected) +
                            " record(s): " + (s->errors.empty() ? "" : s->errors.front());
          break;
        }
        accepted[which] += s->accepted;
      }
      pusher_cpu[which] = cpuSeconds(RUSAGE_THREAD) - cpu0;
    };
    if (pushers == 1) {
      push_share(0);
    } else {
      std::vector<std::thread> threads;
      for (size_t p = 0; p < pushers; ++p) threads.emplace_back(push_share, p);
      for (auto& t : threads) t.join();
    }
    for (size_t p = 0; p < pushers; ++p) {
      if (!failures[p].empty()) {
        std::cerr << "bench: " << failures[p] << "\n";
        return 1;
      }
      e2e.records += accepted[p];
      push_thread_us += pusher_cpu[p];
    }
    push_thread_us = push_thread_us * 1e6 / std::max<size_t>(e2e.records, 1);
    Figure committed;
    sw.finish(committed);
    std::fprintf(stderr,
                 "bench: all committed to the lake after %.2f s (%.0f records/s, pushing thread "
                 "%.1f µs CPU per "
                 "record); draining the outbox...\n",
                 committed.seconds, e2e.records / committed.seconds, push_thread_us);
    while (hub.lake().outboxDepth() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    sw.finish(e2e);
    if (hub.publisher()) {
      publisher_thread_us = (hub.publisher()->threadCpuSeconds() - publisher_cpu0) * 1e6 /
                            std::max<size_t>(e2e.records, 1);
    }
    e2e.bytes = body_bytes;

    // 1b. Decode alone, on the drained hub: each body through its feed's connector, each record
    // read back from the plugin and serialised for storage (no checks, no lake, no Kafka). The
    // least any hub that normalises the records does before it stores and ships them.
    std::fprintf(stderr, "bench: decode alone...\n");
    {
      Stopwatch decode_sw;
      const double decode_cpu0 = cpuSeconds(RUSAGE_THREAD);
      firehub::v1::Record record;
      std::string bytes;
      plugin::DecodeSink sink;
      sink.on_record = [&](std::string_view piece) {
        if (!record.ParseFromArray(piece.data(), static_cast<int>(piece.size()))) return;
        bytes.clear();
        record.SerializeToString(&bytes);
        ++decode_only.records;
      };
      for (const auto& push : pushes) {
        auto feed = hub.feeds().get(push.feed);
        if (!feed || !feed->connector()) return 1;
        if (!feed->connector()
                 ->decode(push.body, push.content_type, push.feed, "bench", sink)
                 .isOk())
          return 1;
        decode_only.bytes += push.body.size();
      }
      decode_sw.finish(decode_only);
      decode_only.cpu = cpuSeconds(RUSAGE_THREAD) - decode_cpu0;  // this thread's alone
    }

    // The same records, as the ceilings will write them.
    std::vector<std::pair<uint64_t, std::string>> log;
    for (uint64_t from = 0;; from = log.back().first + 1) {
      log.clear();
      if (!hub.lake().readLog(from, 10000, log).isOk() || log.empty()) break;
      for (const auto& [seq, id] : log) {
        auto r = hub.lake().getRecord(id);
        if (!r.isOk() || !r.value()) continue;
        stored.emplace_back(id, r.value()->SerializeAsString());
        const auto facts = bus::recordFacts(*r.value());
        messages.push_back({r.value()->entity_id(), bus::recordToJson(*r.value()),
                            std::string(facts.feed_id), std::string(facts.agency),
                            facts.body ? facts.body->full_name() : std::string(),
                            firehub::v1::Classification_Name(
                                static_cast<firehub::v1::Classification>(facts.classification))
                                .c_str()});
      }
    }
    hub.stop();
  }

  // 2. Ceiling: RocksDB batched writes of the same record bytes (WAL on, fsync per batch).
  Figure rocks{"ceiling: RocksDB batched writes"};
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(options, (dir / "rocks").string(), &raw);
    if (!s.ok()) {
      std::cerr << "bench: " << s.ToString() << "\n";
      return 1;
    }
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::fprintf(stderr, "bench: RocksDB ceiling...\n");
    Stopwatch sw;
    for (size_t i = 0; i < stored.size(); i += o.batch) {
      rocksdb::WriteBatch batch;
      for (size_t j = i; j < std::min(stored.size(), i + o.batch); ++j) {
        batch.Put(stored[j].first, stored[j].second);
        rocks.bytes += stored[j].second.size();
      }
      if (!db->Write(wo, &batch).ok()) return 1;
    }
    sw.finish(rocks);
    rocks.records = stored.size();
    db->Close().PermitUncheckedError();
  }

  // 3. Ceiling: librdkafka produce of the same messages (key, JSON value and the four headers the
  // publisher adds) to the same broker, with the publisher's producer settings. Also without the
  // headers, as log shippers send lines.
  std::unique_ptr<bus::EmbeddedBroker> embedded;  // the same broker as end to end, else a fresh one
  std::string bootstrap = o.bootstrap;
  if (bootstrap.empty()) {
    auto broker = bus::EmbeddedBroker::start(3, 6);
    if (!broker.isOk()) return 1;
    embedded = std::move(broker).value();
    embedded->ensureTopic("firehub.bench.ceiling");
    bootstrap = embedded->bootstrapServers();
  }
  auto kafka_ceiling = [&](Figure& kafka, bool headers) -> bool {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::atomic<size_t> ok{0}, failed{0};
    struct Counts {
      std::atomic<size_t>* ok;
      std::atomic<size_t>* failed;
    } counts{&ok, &failed};
    std::map<std::string, std::string> properties = bus::deliveryProperties();
    properties["bootstrap.servers"] = bootstrap;
    // As the publisher's queue: its messages in flight and a margin.
    properties["queue.buffering.max.messages"] =
        std::to_string(bus::PublisherOptions{}.max_in_flight + 1000);
    applyKafkaProperties(o.kafka_properties, properties);  // as the hub's producer had them
    for (const auto& [k, v] : properties) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        std::cerr << "bench: kafka " << k << ": " << err << "\n";
        rd_kafka_conf_destroy(conf);
        return false;
      }
    }
    rd_kafka_conf_set_opaque(conf, &counts);
    rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      auto* c = static_cast<Counts*>(opaque);
      (m->err ? *c->failed : *c->ok)++;
    });
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
      std::cerr << "bench: kafka producer: " << err << "\n";
      rd_kafka_conf_destroy(conf);
      return false;
    }
    std::fprintf(stderr, "bench: Kafka ceiling (%s headers)...\n", headers ? "with" : "without");
    Stopwatch sw;
    for (const auto& m : messages) {
      for (;;) {
        rd_kafka_resp_err_t e;
        if (headers) {
          e = rd_kafka_producev(
              rk, RD_KAFKA_V_TOPIC("firehub.bench.ceiling"),
              RD_KAFKA_V_KEY(m.key.data(), m.key.size()),
              RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),
              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
              RD_KAFKA_V_HEADER("feed", m.feed.data(), static_cast<ssize_t>(m.feed.size())),
              RD_KAFKA_V_HEADER("agency", m.agency.data(), static_cast<ssize_t>(m.agency.size())),
              RD_KAFKA_V_HEADER("schema", m.schema.data(), static_cast<ssize_t>(m.schema.size())),
              RD_KAFKA_V_HEADER("classification", m.classification, -1), RD_KAFKA_V_END);
        } else {
          e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("firehub.bench.ceiling"),
                                RD_KAFKA_V_KEY(m.key.data(), m.key.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(rk, 10);
      }
      kafka.bytes += m.value.size();
      rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    sw.finish(kafka);
    kafka.records = ok.load();
    rd_kafka_destroy(rk);
    return true;
  };
  Figure kafka{"ceiling: librdkafka produce"};
  Figure kafka_bare{"  the same without headers"};
  if (!kafka_ceiling(kafka, true) || !kafka_ceiling(kafka_bare, false)) return 1;

  if (mix) {
    std::printf(
        "\nfirehub bench ingest: %zu records (80 %% weather JSON lines in batches of %zu, 15 %% "
        "building "
        "GeoJSON, 5 %% alarm webhook events; three feeds), %.1f MB, broker %s\n",
        o.records, o.batch, body_bytes / 1e6,
        o.bootstrap.empty() ? "embedded" : o.bootstrap.c_str());
  } else {
    std::printf(
        "\nfirehub bench ingest: %zu weather observations, batches of %zu, %.1f MB of %s, broker "
        "%s\n",
        o.records, o.batch, body_bytes / 1e6, csv ? "CSV" : "JSON lines",
        o.bootstrap.empty() ? "embedded" : o.bootstrap.c_str());
  }
  std::printf("%-34s %10s %9s %12s %9s %11s   %s\n", "scenario", "records", "seconds", "records/s",
              "MB/s", "CPU µs/rec", "x/e2e");
  printFigure(e2e, nullptr);
  printFigure(decode_only, &e2e);
  printFigure(rocks, &e2e);
  printFigure(kafka, &e2e);
  printFigure(kafka_bare, &e2e);
  std::printf(
      "(x/e2e: this row's records/s divided by end-to-end's; MB/s of the bytes each row moved)\n");
  // The three steps every record needs, each measured alone: their CPU per record added up is
  // the least a hub doing all three spends, and the machine's cores divided by it the most it
  // could ingest were every core busy with nothing else.
  const double floor_us =
      decode_only.cpuPerRecordUs() + rocks.cpuPerRecordUs() + kafka.cpuPerRecordUs();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const double bound_rps = cores * 1e6 / floor_us;
  std::printf(
      "decode + RocksDB + Kafka alone: %.2f µs CPU per record; %u cores busy with only these: at "
      "most "
      "%.0f records/s (end to end is %.2f of that)\n",
      floor_us, cores, bound_rps, (e2e.records / e2e.seconds) / bound_rps);
  // The rest of the process's CPU: librdkafka's threads (batches, compression, sockets) and
  // RocksDB's (flushes, compactions).
  const double other_threads_us =
      std::max(0.0, e2e.cpuPerRecordUs() - push_thread_us - publisher_thread_us);
  std::printf(
      "end to end, CPU µs per record of the pushing thread (decode, checks, lake commit): %.2f; of "
      "the "
      "publisher's thread (outbox -> JSON -> librdkafka): %.2f; of the others (librdkafka's, "
      "RocksDB's "
      "background): %.2f\n",
      push_thread_us, publisher_thread_us, other_threads_us);
  double e2e_rps = e2e.records / e2e.seconds;
  // The mixed run's figures go under their own name, beside the weather run's.
  const std::string at = mix ? "ingest_mix." : "ingest.";
  mergeBenchJson(
      o.json,
      {{at + "records", static_cast<uint64_t>(e2e.records)},
       {at + "format", o.format},
       {at + "broker", o.bootstrap.empty() ? "embedded" : "firehub broker process"},
       {at + "seconds", e2e.seconds},
       {at + "records_per_s", e2e_rps},
       {at + "mb_per_s", e2e.bytes / e2e.seconds / 1e6},
       {at + "cpu_us_per_record", e2e.cpuPerRecordUs()},
       {at + "push_thread_cpu_us_per_record", push_thread_us},
       {at + "publisher_thread_cpu_us_per_record", publisher_thread_us},
       {at + "other_threads_cpu_us_per_record", other_threads_us},
       {at + "decode_only_records_per_s", decode_only.records / decode_only.seconds},
       {at + "decode_only_cpu_us_per_record", decode_only.cpuPerRecordUs()},
       {at + "floor_cpu_us_per_record", floor_us},
       {at + "floor_bound_records_per_s", bound_rps},
       {at + "ceiling_rocksdb_records_per_s", rocks.records / rocks.seconds},
       {at + "ceiling_kafka_records_per_s", kafka.records / kafka.seconds},
       {at + "ceiling_kafka_cpu_us_per_record", kafka.cpuPerRecordUs()},
       {at + "ceiling_kafka_no_headers_records_per_s", kafka_bare.records / kafka_bare.seconds},
       {at + "ceiling_kafka_no_headers_cpu_us_per_record", kafka_bare.cpuPerRecordUs()},
       {at + "ceiling_rocksdb_cpu_us_per_record", rocks.cpuPerRecordUs()},
       {at + "ratio_to_rocksdb_ceiling", e2e_rps / (rocks.records / rocks.seconds)},
       {at + "ratio_to_kafka_ceiling", e2e_rps / (kafka.records / kafka.seconds)}});
  if (!o.keep) fs::remove_all(dir);
  return 0;
}

}  // namespace

void addBenchCommand(CLI::App& app) {
  static BenchOptions o;
  auto* bench = app.add_subcommand("bench", "Measure throughput against the machine's ceilings");
  bench->require_subcommand(1);
  auto* ingest = bench->add_subcommand("ingest", "End-to-end ingest vs RocksDB and Kafka ceilings");
  ingest->add_option("--records", o.records, "Records to ingest")
      ->check(CLI::Range(size_t{1000}, size_t{50000000}));
  ingest->add_option("--batch", o.batch, "Records per push/batch")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  ingest
      ->add_option("--format", o.format,
                   "Body format: ndjson (weather JSON lines), csv, or mix (weather lines, building "
                   "GeoJSON and "
                   "alarm events to three feeds)")
      ->check(CLI::IsMember({"ndjson", "csv", "mix"}));
  ingest->add_option("--bootstrap", o.bootstrap,
                     "Kafka bootstrap servers (e.g. a `firehub broker`); default: embedded");
  ingest->add_option("--jsonl-out", o.jsonl_out,
                     "Also write the observations as a JSON-lines file (for the peer run)");
  ingest->add_option("--json", o.json, "Merge the figures into this JSON report");
  ingest->add_option("--work-dir", o.work_dir, "Scratch directory (default: a temp dir)");
  ingest->add_flag("--keep", o.keep, "Keep the scratch directory");
  ingest
      ->add_option(
          "--feeds", o.feeds,
          "Weather feeds pushing at once, each from its own thread (not with --format mix)")
      ->check(CLI::Range(size_t{1}, size_t{16}));
  ingest->add_option("--kafka-property", o.kafka_properties,
                     "A librdkafka property of the hub's producer, KEY=VALUE (as kafka.KEY in the "
                     "config); repeatable");
  ingest->callback([] { std::exit(benchIngest(o)); });
  addFusionBench(*bench);
  addPeerBench(*bench);
  addClusterBench(*bench);
  addMapBench(*bench);
  addTiersBench(*bench);
  addLifecycleBench(*bench);
}

}  // namespace firehub::cli
