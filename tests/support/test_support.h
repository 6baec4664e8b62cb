// Shared helpers for firehub tests: temp dirs, bounded waiting, HTTP and Kafka clients.
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace firehub::testing {

inline std::string buildDir() { return FIREHUB_BUILD_DIR; }
inline std::string sourceDir() { return FIREHUB_SOURCE_DIR; }
inline std::string pluginsDir() { return buildDir() + "/plugins"; }
inline std::string testPluginsDir() { return buildDir() + "/tests/plugins"; }

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("firehub-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Polls `done` every 10 ms until it holds or `timeout` passes. Returns whether it held.
inline bool waitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

struct Http {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
};

// With FIREHUB_API_TRACE set to a folder, every /api/v1 exchange of http() is appended there
// (one JSON line each, a file per test process) for the contract check against
// docs/openapi.yaml (tests/api/check_responses.mjs).
inline void traceApiExchange(const std::string& method, const std::string& target,
                             const std::string& request_type, const std::string& request_body,
                             int status, const std::string& response_type,
                             const std::string& encoding, const std::string& body) {
  static const char* dir = std::getenv("FIREHUB_API_TRACE");
  if (!dir || !*dir || target.rfind("/api/v1/", 0) != 0) return;
  static std::mutex mu;
  static const std::string file = [] {
    std::filesystem::create_directories(dir);
    return std::string(dir) + "/" + std::to_string(::getpid()) + ".ndjson";
  }();
  constexpr size_t kMaxBody = 4u << 20;  // larger bodies are traced without their bytes
  Poco::JSON::Object o;
  o.set("method", method);
  o.set("target", target);
  o.set("request_type", request_type);
  if (request_body.size() <= 65536) o.set("request_body", request_body);
  o.set("status", status);
  o.set("type", response_type);
  if (!encoding.empty()) o.set("encoding", encoding);
  if (body.size() <= kMaxBody) o.set("body", body);
  std::ostringstream line;
  o.stringify(line);
  std::lock_guard<std::mutex> lock(mu);
  std::ofstream(file, std::ios::app) << line.str() << "\n";
}

inline Http http(const std::string& host, uint16_t port, const std::string& method,
                 const std::string& path, const std::string& body = "",
                 const std::string& content_type = "", const std::string& api_key = "",
                 const std::map<std::string, std::string>& headers = {}) {
  Poco::Net::HTTPClientSession session(host, port);
  session.setTimeout(Poco::Timespan(30, 0));
  Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!content_type.empty()) req.setContentType(content_type);
  if (!api_key.empty()) req.set("Authorization", "Bearer " + api_key);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (method == "POST" || method == "PUT" || method == "PATCH")
    req.setContentLength(static_cast<std::streamsize>(body.size()));
  session.sendRequest(req) << body;
  Poco::Net::HTTPResponse resp;
  std::istream& in = session.receiveResponse(resp);
  std::ostringstream os;
  Poco::StreamCopier::copyStream(in, os);
  Http out{static_cast<int>(resp.getStatus()), os.str(), {}};
  for (const auto& [k, v] : resp) out.headers[k] = v;
  traceApiExchange(method, path, content_type, body, out.status, resp.getContentType(),
                   resp.get("Content-Encoding", ""), out.body);
  return out;
}

// A JSON object from a response body.
inline Poco::JSON::Object::Ptr parseObject(const std::string& body) {
  Poco::JSON::Parser parser;
  return parser.parse(body).extract<Poco::JSON::Object::Ptr>();
}

// A connector's test fixture, as its agency would send it.
inline std::string fixture(const std::string& connector, const std::string& file) {
  std::ifstream in(sourceDir() + "/connectors/" + connector + "/tests/fixtures/" + file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The admin key a hub wrote to its data dir on first start.
inline std::string adminKey(const std::string& data_dir) {
  std::ifstream in(data_dir + "/admin.key");
  std::string key;
  std::getline(in, key);
  return key;
}

struct KafkaMessage {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Hands every message of `topic`, from the beginning of all partitions (no consumer group), to
// `fn` until `done()` holds, `deadline` passes, or no message came for `idle`.
inline void consumeEach(const std::string& bootstrap, const std::string& topic,
                        const std::function<void(const rd_kafka_message_t&)>& fn,
                        const std::function<bool()>& done,
                        std::chrono::steady_clock::time_point deadline,
                        std::chrono::milliseconds idle = std::chrono::hours(24)) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "firehub-test", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  // Back on the brokers within a second after they return (a reader that waits out librdkafka's
  // 10 s reconnect back-off can find what it had yet to read already gone from the mock broker,
  // which keeps a few MiB per partition); if that happens anyway, read on from the oldest kept.
  rd_kafka_conf_set(conf, "reconnect.backoff.ms", "100", err, sizeof err);
  rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", err, sizeof err);
  rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) return;
  rd_kafka_poll_set_consumer(rk);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  int partitions = 0;
  while (std::chrono::steady_clock::now() < deadline && !done()) {
    if (rd_kafka_metadata(rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == 0) partitions = md->topics[0].partition_cnt;
      rd_kafka_metadata_destroy(md);
      if (partitions > 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rd_kafka_topic_destroy(t);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  auto last = std::chrono::steady_clock::now();
  while (!done() && std::chrono::steady_clock::now() < deadline &&
         std::chrono::steady_clock::now() - last < idle) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err) {
      fn(*m);
      last = std::chrono::steady_clock::now();
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

// Reads every message of `topic` from the beginning of all partitions (no consumer group), until
// `expected` messages were read or `timeout` passes.
inline std::vector<KafkaMessage> consumeAll(
    const std::string& bootstrap, const std::string& topic, size_t expected,
    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::vector<KafkaMessage> out;
  consumeEach(
      bootstrap, topic,
      [&](const rd_kafka_message_t& m) {
        KafkaMessage km;
        if (m.key) km.key.assign(static_cast<const char*>(m.key), m.key_len);
        if (m.payload) km.value.assign(static_cast<const char*>(m.payload), m.len);
        rd_kafka_headers_t* hdrs = nullptr;
        if (rd_kafka_message_headers(&m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* value;
          size_t size;
          for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; ++i) {
            km.headers[name] = std::string(static_cast<const char*>(value), size);
          }
        }
        out.push_back(std::move(km));
      },
      [&] { return out.size() >= expected; }, std::chrono::steady_clock::now() + timeout);
  return out;
}

inline const char* kWeatherHeader =
    "station_id,lon,lat,time,temp_c,rh_pct,wind_kmh,wind_dir_deg,precip_mm\n";

}  // namespace firehub::testing
