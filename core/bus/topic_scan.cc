// What a topic holds since a time: one header's values, read with a short-lived consumer.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>

#include "firehub/bus.h"

namespace firehub::bus {

Result<std::set<std::string>> headerValuesSince(const PublisherOptions& options,
                                                const std::string& topic, const char* header,
                                                int64_t since_ms, int timeout_ms) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> settings = {{"bootstrap.servers", options.bootstrap_servers},
                                                 {"group.id", "firehub.scan"},
                                                 {"enable.auto.commit", "false"},
                                                 {"enable.partition.eof", "true"},
                                                 {"auto.offset.reset", "latest"}};
  for (const auto& [k, v] : options.properties) {
    if (k.find("security") == 0 || k.find("ssl") == 0 || k.find("sasl") == 0) settings[k] = v;
  }
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::invalidArgument("kafka." + k + ": " + err);
    }
  }
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!consumer) return Status::unavailable(std::string("scan consumer: ") + err);
  struct Destroy {
    rd_kafka_t* rk;
    ~Destroy() {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
  } destroy{consumer};
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* t = rd_kafka_topic_new(consumer, topic.c_str(), nullptr);
  rd_kafka_resp_err_t e = rd_kafka_metadata(consumer, 0, t, &md, timeout_ms);
  rd_kafka_topic_destroy(t);
  if (e) return Status::unavailable("metadata of " + topic + ": " + rd_kafka_err2str(e));
  std::set<std::string> out;
  if (md->topic_cnt != 1 || md->topics[0].err) {  // no such topic yet: nothing on it
    rd_kafka_metadata_destroy(md);
    return out;
  }
  const int partitions = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  // From the last `kMaxPerPartition` messages of each partition (brokers that cannot look an
  // offset up by time exist, librdkafka's mock cluster among them), keeping those since the time.
  constexpr int64_t kMaxPerPartition = 50000;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  int open = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    e = rd_kafka_query_watermark_offsets(consumer, topic.c_str(), p, &low, &high, timeout_ms);
    if (e) {
      rd_kafka_topic_partition_list_destroy(list);
      return Status::unavailable("offsets of " + topic + ": " + rd_kafka_err2str(e));
    }
    if (high <= low) continue;  // empty
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
        std::max(low, high - kMaxPerPartition);
    ++open;
  }
  rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      --open;
    } else if (!m->err && rd_kafka_message_timestamp(m, nullptr) >= since_ms) {
      rd_kafka_headers_t* headers = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          rd_kafka_header_get_last(headers, header, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          value)
        out.emplace(static_cast<const char*>(value), size);
    }
    rd_kafka_message_destroy(m);
  }
  if (open > 0) return Status::unavailable("reading " + topic + " took longer than allowed");
  return out;
}

}  // namespace firehub::bus
