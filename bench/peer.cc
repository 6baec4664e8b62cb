// `firehub bench peer`: the log shipper an agency would otherwise use, on the same JSON-lines
// file and the same broker as `firehub bench ingest`: rsyslog reading the file with imfile and
// producing each line to Kafka with omkafka (Debian's rsyslog-kafka). The clock runs from
// rsyslogd's start until the topic's high watermarks add up to the file's lines. With --pairs N,
// firehub's ingest and rsyslog run one after the other N times, and each pair's ratio is reported
// beside the median: single runs on a machine whose speed drifts cannot be compared.
#include <Poco/JSON/Array.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "bench_report.h"
#include "bench.h"
#include "firehub/hub.h"

namespace firehub::cli {
namespace {

struct PeerOptions {
  std::string file;
  std::string bootstrap;
  std::string topic = "firehub.bench.peer.rsyslog";
  std::string rsyslogd = "/usr/sbin/rsyslogd";
  std::string json;
  double timeout_s = 900;
  std::vector<std::string>
      kafka_properties;  // KEY=VALUE for omkafka's librdkafka, over the defaults
  int pairs = 1;         // firehub's ingest and rsyslog, run one after the other this many times
};

// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
double processCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Sum of the high watermarks of every partition of `topic` (0 while it does not exist).
int64_t topicMessages(rd_kafka_t* rk, const std::string& topic) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  int64_t total = 0;
  if (rd_kafka_metadata(rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (md->topic_cnt == 1 && md->topics[0].err == 0) {
      for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
        int64_t low = 0, high = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 2000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
          total += high;
        }
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(t);
  return total;
}

// One rsyslogd run over the whole file, in its own scratch directory (imfile keeps its read
// position there, so each run starts at the file's first line).
struct RsyslogRun {
  double seconds = 0;
  double lines_per_s = 0;
  double cpu_us_per_line = 0;
};

// `omkafka`: the parameters of the omkafka action (brokers, topic, template, librdkafka settings).
std::optional<RsyslogRun> runRsyslog(const PeerOptions& o, const std::filesystem::path& work,
                                     rd_kafka_t* rk, size_t lines, const std::string& omkafka) {
  namespace fs = std::filesystem;
  fs::remove_all(work);
  fs::create_directories(work);
  std::ofstream(work / "rsyslog.conf")
      << "global(workDirectory=\"" << work.string() << "\" maxMessageSize=\"64k\")\n"
      << "module(load=\"imfile\" mode=\"inotify\")\n"
      << "module(load=\"omkafka\")\n"
      << "template(name=\"line\" type=\"string\" string=\"%msg%\")\n"
      << "input(type=\"imfile\" file=\"" << fs::absolute(o.file).string()
      << "\" tag=\"obs\" ruleset=\"tokafka\" freshStartTail=\"off\" maxLinesAtOnce=\"0\")\n"
      << "ruleset(name=\"tokafka\" queue.type=\"LinkedList\" queue.size=\"200000\""
      << " queue.dequeueBatchSize=\"2048\") {\n"
      << "  action(type=\"omkafka\" " << omkafka << ")\n"
      << "}\n";

  const int64_t before = topicMessages(rk, o.topic);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen((work / "rsyslogd.log").c_str(), "w", stderr);
    (void)f;
    execl(o.rsyslogd.c_str(), "rsyslogd", "-n", "-f", (work / "rsyslog.conf").c_str(), "-i",
          (work / "rsyslogd.pid").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int64_t delivered = 0;
  double cpu = 0;
  bool exited = false;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() <
         o.timeout_s) {
    delivered = topicMessages(rk, o.topic) - before;
    cpu = std::max(cpu, processCpuSeconds(pid));
    if (delivered >= static_cast<int64_t>(lines)) break;
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!exited) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
  if (delivered < static_cast<int64_t>(lines)) {
    std::ifstream log(work / "rsyslogd.log");
    std::cerr << "bench peer: only " << delivered << " of " << lines << " lines reached " << o.topic
              << (exited ? " (rsyslogd exited)" : " before the timeout") << "\n"
              << log.rdbuf() << "\n";
    return std::nullopt;
  }
  return RsyslogRun{seconds, lines / seconds, cpu * 1e6 / lines};
}

// firehub's side of a pair: `firehub bench ingest` on the same records (its generator is
// deterministic: --records N makes the lines of the file `--jsonl-out` wrote) and broker, in a
// child process like the suite's own run; its figures are read back from the report it writes.
struct IngestRun {
  double records_per_s = 0;
  double ratio_to_rocksdb_ceiling = 0;
  double floor_bound_records_per_s =
      0;  // decode + RocksDB + Kafka alone, every core busy; 0: not in the report
};

std::optional<IngestRun> readIngestFigures(const std::string& file) {
  try {
    std::ifstream report(file);
    std::stringstream text;
    text << report.rdbuf();
    Poco::JSON::Parser parser;
    auto root = parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
    auto ingest = root->getObject("ingest");
    if (!ingest || !ingest->has("records_per_s")) return std::nullopt;
    IngestRun run;
    run.records_per_s = ingest->getValue<double>("records_per_s");
    if (ingest->has("ratio_to_rocksdb_ceiling"))
      run.ratio_to_rocksdb_ceiling = ingest->getValue<double>("ratio_to_rocksdb_ceiling");
    if (ingest->has("floor_bound_records_per_s")) {
      run.floor_bound_records_per_s = ingest->getValue<double>("floor_bound_records_per_s");
    }
    return run;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

std::optional<IngestRun> runFirehubIngest(const PeerOptions& o, const std::filesystem::path& work,
                                          size_t lines) {
  namespace fs = std::filesystem;
  fs::create_directories(work);
  const std::string report = (work / "ingest.json").string(), log = (work / "ingest.log").string();
  fs::remove(report);
  std::fprintf(stderr, "bench peer: firehub bench ingest, %zu records...\n", lines);
  const std::string records = std::to_string(lines);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execl("/proc/self/exe", "firehub", "bench", "ingest", "--records", records.c_str(),
          "--bootstrap", o.bootstrap.c_str(), "--json", report.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  auto run = readIngestFigures(report);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !run) {
    std::ifstream text(log);
    std::cerr << "bench peer: firehub bench ingest failed (see below)\n" << text.rdbuf() << "\n";
    return std::nullopt;
  }
  return run;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Poco::JSON::Array::Ptr jsonArray(const std::vector<double>& v) {
  Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
  for (double x : v) a->add(x);
  return a;
}

int benchPeer(const PeerOptions& o) {
  namespace fs = std::filesystem;
  if (access(o.rsyslogd.c_str(), X_OK) != 0) {
    std::cerr << "bench peer: " << o.rsyslogd << " not found; install rsyslog and rsyslog-kafka "
              << "(ops/install-deps.sh bench)\n";
    return 2;
  }
  std::ifstream in(o.file, std::ios::binary);
  if (!in) {
    std::cerr << "bench peer: cannot read " << o.file << "\n";
    return 2;
  }
  size_t lines = 0, bytes = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    bytes += line.size() + 1;
  }
  fs::path work = fs::temp_directory_path() / ("firehub-bench-peer-" + std::to_string(getpid()));
  fs::remove_all(work);
  fs::create_directories(work);
  // The producer settings of firehub's publisher (idempotent, acks=all, lz4 batches held up to
  // its linger; the lines have no key, so the partitioner does not apply), so both deliver with
  // the same guarantees and batching. rsyslog's rate did not depend on the linger here (5 ms:
  // 150,561 and 194,224 lines/s; 20 ms: 177,432 and 177,173, alternating on one broker).
  std::map<std::string, std::string> settings = bus::deliveryProperties();
  settings.erase("partitioner");
  settings["queue.buffering.max.messages"] = "200000";
  if (!applyKafkaProperties(o.kafka_properties, settings)) return 2;
  std::string producer;
  for (const auto& [k, v] : settings)
    producer += (producer.empty() ? "\"" : ", \"") + k + "=" + v + "\"";
  std::string brokers;
  for (size_t start = 0; start < o.bootstrap.size();) {
    size_t comma = o.bootstrap.find(',', start);
    std::string one =
        o.bootstrap.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    brokers += (brokers.empty() ? "\"" : ", \"") + one + "\"";
    start = comma == std::string::npos ? o.bootstrap.size() : comma + 1;
  }
  const std::string omkafka = "broker=[" + brokers + "] topic=\"" + o.topic +
                              "\" template=\"line\" confParam=[" + producer + "]";

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", o.bootstrap.c_str(), err, sizeof err) !=
      RD_KAFKA_CONF_OK) {
    std::cerr << "bench peer: " << err << "\n";
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    std::cerr << "bench peer: " << err << "\n";
    return 1;
  }

  // firehub's rate of the first pair is the suite's own `bench ingest`, when it wrote the report
  // first; the other pairs run it again just before rsyslog. This machine's speed drifts by tens
  // of percent over minutes, for both, so only rates measured next to each other compare.
  std::optional<IngestRun> suite_ingest = o.json.empty() ? std::nullopt : readIngestFigures(o.json);
  std::vector<double> firehub_rps, ceiling_ratios, rsyslog_lps, rsyslog_cpu, ratios;
  RsyslogRun first;
  bool failed = false;
  for (int pair = 0; pair < o.pairs; ++pair) {
    std::optional<IngestRun> ingest = pair == 0 ? suite_ingest : std::nullopt;
    if (!ingest && o.pairs > 1) {
      ingest = runFirehubIngest(o, work / ("pair-" + std::to_string(pair + 1)), lines);
      if (!ingest) {
        failed = true;
        break;
      }
    }
    std::fprintf(stderr, "bench peer: rsyslog imfile -> omkafka, %zu lines (%.1f MB)...\n", lines,
                 bytes / 1e6);
    auto run = runRsyslog(o, work / ("rsyslog-" + std::to_string(pair + 1)), rk, lines, omkafka);
    if (!run) {
      failed = true;
      break;
    }
    if (pair == 0) first = *run;
    rsyslog_lps.push_back(run->lines_per_s);
    rsyslog_cpu.push_back(run->cpu_us_per_line);
    if (ingest) {
      firehub_rps.push_back(ingest->records_per_s);
      ceiling_ratios.push_back(ingest->ratio_to_rocksdb_ceiling);
      ratios.push_back(ingest->records_per_s / run->lines_per_s);
    }
  }
  rd_kafka_destroy(rk);
  if (failed) {
    fs::remove_all(work);
    return 1;
  }

  std::printf(
      "\nfirehub bench peer: rsyslog %s (imfile -> omkafka), same file and broker as ingest\n",
      "8.2302 (Debian)");
  std::printf("%-34s %10s %9s %12s %9s %11s\n", "scenario", "lines", "seconds", "lines/s", "MB/s",
              "CPU µs/line");
  std::printf("%-34s %10zu %9.2f %12.0f %9.1f %11.2f\n", "rsyslog imfile -> omkafka", lines,
              first.seconds, first.lines_per_s, bytes / first.seconds / 1e6, first.cpu_us_per_line);
  BenchFigures figures = {{"peer.name", "rsyslog imfile -> omkafka"},
                          {"peer.lines", static_cast<uint64_t>(lines)},
                          {"peer.seconds", first.seconds},
                          {"peer.rsyslog_lines_per_s", first.lines_per_s},
                          {"peer.rsyslog_cpu_us_per_line", first.cpu_us_per_line}};
  // The first pair: the suite's ingest figure against the rsyslog run right after it.
  if (suite_ingest) {
    figures.emplace_back("peer.ratio_to_rsyslog", ratios.front());
    std::printf("firehub end to end / rsyslog: %.2f\n", ratios.front());
  }
  if (o.pairs > 1 && ratios.size() == static_cast<size_t>(o.pairs)) {
    std::printf(
        "\nalternating runs on the same file and broker (firehub bench ingest, then rsyslog)\n");
    std::printf("%-6s %16s %14s %13s %16s %18s\n", "pair", "firehub rec/s", "rsyslog l/s",
                "rsyslog µs/l", "firehub/rsyslog", "firehub/RocksDB");
    for (size_t i = 0; i < ratios.size(); ++i) {
      std::printf("%-6zu %16.0f %14.0f %13.2f %16.2f %18.2f\n", i + 1, firehub_rps[i],
                  rsyslog_lps[i], rsyslog_cpu[i], ratios[i], ceiling_ratios[i]);
    }
    std::printf("median %16.0f %14.0f %13.2f %16.2f %18.2f\n", median(firehub_rps),
                median(rsyslog_lps), median(rsyslog_cpu), median(ratios), median(ceiling_ratios));
    figures.emplace_back("peer.pairs", static_cast<uint64_t>(o.pairs));
    figures.emplace_back("peer.pair_firehub_records_per_s", jsonArray(firehub_rps));
    figures.emplace_back("peer.pair_rsyslog_lines_per_s", jsonArray(rsyslog_lps));
    figures.emplace_back("peer.pair_rsyslog_cpu_us_per_line", jsonArray(rsyslog_cpu));
    figures.emplace_back("peer.pair_ratios_to_rsyslog", jsonArray(ratios));
    figures.emplace_back("peer.pair_ratios_to_rocksdb_ceiling", jsonArray(ceiling_ratios));
    figures.emplace_back("peer.ratio_to_rsyslog_median", median(ratios));
    figures.emplace_back("peer.ratio_to_rocksdb_ceiling_median", median(ceiling_ratios));
  }
  // What decode, RocksDB and Kafka alone would allow with every core busy (bench ingest's
  // floor): below 1, no hub doing the three steps outruns rsyslog on this machine.
  if (suite_ingest && suite_ingest->floor_bound_records_per_s > 0) {
    const double bound = suite_ingest->floor_bound_records_per_s / first.lines_per_s;
    figures.emplace_back("peer.floor_bound_ratio_to_rsyslog", bound);
    std::printf("decode + RocksDB + Kafka alone, every core busy / rsyslog: %.2f\n", bound);
  }
  mergeBenchJson(o.json, figures);
  fs::remove_all(work);
  return 0;
}

}  // namespace

void addPeerBench(CLI::App& bench) {
  static PeerOptions o;
  auto* peer = bench.add_subcommand(
      "peer", "rsyslog (imfile -> omkafka) on the same JSON-lines file and broker");
  peer->add_option("--file", o.file, "JSON-lines file (bench ingest --jsonl-out)")->required();
  peer->add_option("--bootstrap", o.bootstrap, "Kafka bootstrap servers (a `firehub broker`)")
      ->required();
  peer->add_option("--topic", o.topic, "Topic rsyslog produces to");
  peer->add_option("--rsyslogd", o.rsyslogd, "rsyslogd binary");
  peer->add_option("--json", o.json, "Merge the figures into this JSON report");
  peer->add_option("--timeout", o.timeout_s, "Give up after this many seconds");
  peer->add_option(
      "--kafka-property", o.kafka_properties,
      "A librdkafka property of rsyslog's omkafka, KEY=VALUE (over the defaults); repeatable");
  peer->add_option(
          "--pairs", o.pairs,
          "Run firehub's ingest (`bench ingest --records <the file's lines>`: the file must be "
          "one --jsonl-out wrote) and rsyslog one after the other this many times, and report "
          "each pair's ratios and the medians; the first firehub figure is the --json report's "
          "when it has one")
      ->check(CLI::Range(1, 20));
  peer->callback([] { std::exit(benchPeer(o)); });
}

}  // namespace firehub::cli
