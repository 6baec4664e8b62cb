// What the cluster files share: the librdkafka settings every cluster client starts from, and
// the wall clock. Private to the cluster module.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "firehub/cluster.h"
#include "firehub/status.h"

namespace firehub::cluster {

// Unix milliseconds now.
inline int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A client configuration: the config's kafka.* properties (for a consumer, without the ones
// only a producer takes), then `own` over them. The caller owns the result.
inline Result<rd_kafka_conf_t*> clientConf(const ReplicaOptions& options, bool consumer,
                                           const std::map<std::string, std::string>& own) {
  static const std::set<std::string> kProducerOnly = {"acks",
                                                      "linger.ms",
                                                      "compression.type",
                                                      "enable.idempotence",
                                                      "batch.num.messages",
                                                      "queue.buffering.max.messages",
                                                      "queue.buffering.max.kbytes",
                                                      "message.timeout.ms",
                                                      "retries",
                                                      "max.in.flight.requests.per.connection",
                                                      "delivery.timeout.ms",
                                                      "batch.size"};
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    return rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK;
  };
  for (const auto& [k, v] : options.properties) {
    if (consumer && kProducerOnly.count(k)) continue;
    if (!set(k, v)) {
      rd_kafka_conf_destroy(conf);
      return Status::invalidArgument("kafka." + k + ": " + err);
    }
  }
  if (!set("bootstrap.servers", options.bootstrap_servers)) {
    rd_kafka_conf_destroy(conf);
    return Status::invalidArgument(std::string("kafka.bootstrap.servers: ") + err);
  }
  for (const auto& [k, v] : own) {
    if (!set(k, v)) {
      rd_kafka_conf_destroy(conf);
      return Status::invalidArgument(k + ": " + err);
    }
  }
  return conf;
}

}  // namespace firehub::cluster
