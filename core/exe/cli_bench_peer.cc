// `firehub bench peer`: the log shipper an agency would otherwise use, on the same JSON-lines
// file and the same broker as `firehub bench ingest`: rsyslog reading the file with imfile and
// producing each line to Kafka with omkafka (Debian's rsyslog-kafka). The clock runs from
// rsyslogd's start until the topic's high watermarks add up to the file's lines.
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "bench_report.h"
#include "cli.h"

namespace firehub::cli {
namespace {

struct PeerOptions {
  std::string file;
  std::string bootstrap;
  std::string topic = "firehub.bench.peer.rsyslog";
  std::string rsyslogd = "/usr/sbin/rsyslogd";
  std::string json;
  double timeout_s = 900;
  std::vector<std::string> kafka_properties;  // KEY=VALUE for omkafka's librdkafka, over the defaults
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
        if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          total += high;
        }
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(t);
  return total;
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
  std::string brokers;
  for (size_t start = 0; start < o.bootstrap.size();) {
    size_t comma = o.bootstrap.find(',', start);
    std::string one = o.bootstrap.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    brokers += (brokers.empty() ? "\"" : ", \"") + one + "\"";
    start = comma == std::string::npos ? o.bootstrap.size() : comma + 1;
  }
  // The producer settings of firehub's publisher (idempotent, acks=all, lz4 batches held up to
  // its linger; the lines have no key, so the partitioner does not apply), so both deliver with
  // the same guarantees and batching. rsyslog's rate did not depend on the linger here (5 ms:
  // 150,561 and 194,224 lines/s; 20 ms: 177,432 and 177,173, alternating on one broker).
  std::map<std::string, std::string> settings = bus::deliveryProperties();
  settings.erase("partitioner");
  settings["queue.buffering.max.messages"] = "200000";
  if (!applyKafkaProperties(o.kafka_properties, settings)) return 2;
  std::string producer;
  for (const auto& [k, v] : settings) producer += (producer.empty() ? "\"" : ", \"") + k + "=" + v + "\"";
  std::ofstream(work / "rsyslog.conf")
      << "global(workDirectory=\"" << work.string() << "\" maxMessageSize=\"64k\")\n"
      << "module(load=\"imfile\" mode=\"inotify\")\n"
      << "module(load=\"omkafka\")\n"
      << "template(name=\"line\" type=\"string\" string=\"%msg%\")\n"
      << "input(type=\"imfile\" file=\"" << fs::absolute(o.file).string()
      << "\" tag=\"obs\" ruleset=\"tokafka\" freshStartTail=\"off\" maxLinesAtOnce=\"0\")\n"
      << "ruleset(name=\"tokafka\" queue.type=\"LinkedList\" queue.size=\"200000\""
      << " queue.dequeueBatchSize=\"2048\") {\n"
      << "  action(type=\"omkafka\" broker=[" << brokers << "] topic=\"" << o.topic
      << "\" template=\"line\" confParam=[" << producer << "])\n"
      << "}\n";

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", o.bootstrap.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    std::cerr << "bench peer: " << err << "\n";
    return 1;
  }
  const int64_t before = topicMessages(rk, o.topic);

  std::fprintf(stderr, "bench peer: rsyslog imfile -> omkafka, %zu lines (%.1f MB)...\n", lines, bytes / 1e6);
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
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < o.timeout_s) {
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
  rd_kafka_destroy(rk);
  if (delivered < static_cast<int64_t>(lines)) {
    std::ifstream log(work / "rsyslogd.log");
    std::cerr << "bench peer: only " << delivered << " of " << lines << " lines reached " << o.topic
              << (exited ? " (rsyslogd exited)" : " before the timeout") << "\n"
              << log.rdbuf() << "\n";
    return 1;
  }
  double lps = lines / seconds;
  std::printf("\nfirehub bench peer: rsyslog %s (imfile -> omkafka), same file and broker as ingest\n",
              "8.2302 (Debian)");
  std::printf("%-34s %10s %9s %12s %9s %11s\n", "scenario", "lines", "seconds", "lines/s", "MB/s", "CPU µs/line");
  std::printf("%-34s %10zu %9.2f %12.0f %9.1f %11.2f\n", "rsyslog imfile -> omkafka", lines, seconds, lps,
              bytes / seconds / 1e6, cpu * 1e6 / lines);
  BenchFigures figures = {{"peer.name", "rsyslog imfile -> omkafka"},
                          {"peer.lines", static_cast<uint64_t>(lines)},
                          {"peer.seconds", seconds},
                          {"peer.rsyslog_lines_per_s", lps},
                          {"peer.rsyslog_cpu_us_per_line", cpu * 1e6 / lines}};
  // firehub's rate from the same report, when `bench ingest --json` wrote it first.
  if (!o.json.empty()) {
    try {
      std::ifstream report(o.json);
      std::stringstream text;
      text << report.rdbuf();
      Poco::JSON::Parser parser;
      auto root = parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
      if (auto ingest = root->getObject("ingest"); ingest && ingest->has("records_per_s")) {
        double ratio = ingest->getValue<double>("records_per_s") / lps;
        figures.emplace_back("peer.ratio_to_rsyslog", ratio);
        std::printf("firehub end to end / rsyslog: %.2f\n", ratio);
      }
      // What decode, RocksDB and Kafka alone would allow with every core busy (bench ingest's
      // floor): below 1, no hub doing the three steps outruns rsyslog on this machine.
      if (auto ingest = root->getObject("ingest"); ingest && ingest->has("floor_bound_records_per_s")) {
        double bound = ingest->getValue<double>("floor_bound_records_per_s") / lps;
        figures.emplace_back("peer.floor_bound_ratio_to_rsyslog", bound);
        std::printf("decode + RocksDB + Kafka alone, every core busy / rsyslog: %.2f\n", bound);
      }
    } catch (const Poco::Exception&) {
    }
  }
  mergeBenchJson(o.json, figures);
  fs::remove_all(work);
  return 0;
}

}  // namespace

void addPeerBench(CLI::App& bench) {
  static PeerOptions o;
  auto* peer = bench.add_subcommand("peer", "rsyslog (imfile -> omkafka) on the same JSON-lines file and broker");
  peer->add_option("--file", o.file, "JSON-lines file (bench ingest --jsonl-out)")->required();
  peer->add_option("--bootstrap", o.bootstrap, "Kafka bootstrap servers (a `firehub broker`)")->required();
  peer->add_option("--topic", o.topic, "Topic rsyslog produces to");
  peer->add_option("--rsyslogd", o.rsyslogd, "rsyslogd binary");
  peer->add_option("--json", o.json, "Merge the figures into this JSON report");
  peer->add_option("--timeout", o.timeout_s, "Give up after this many seconds");
  peer->add_option("--kafka-property", o.kafka_properties,
                   "A librdkafka property of rsyslog's omkafka, KEY=VALUE (over the defaults); repeatable");
  peer->callback([] { std::exit(benchPeer(o)); });
}

}  // namespace firehub::cli
