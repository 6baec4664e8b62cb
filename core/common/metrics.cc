#include "firehub/metrics.h"

#include <prometheus/text_serializer.h>

namespace firehub {

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      records_(prometheus::BuildCounter()
                   .Name("firehub_records_total")
                   .Help("Records per feed by outcome (accepted, rejected, duplicate)")
                   .Register(*registry_)),
      http_(prometheus::BuildCounter()
                .Name("firehub_http_requests_total")
                .Help("HTTP requests by response status")
                .Register(*registry_)),
      outbox_depth_(prometheus::BuildGauge()
                        .Name("firehub_outbox_depth")
                        .Help("Records committed to the lake and not yet delivered to Kafka")
                        .Register(*registry_)
                        .Add({})),
      load_failures_(
          prometheus::BuildGauge()
              .Name("firehub_load_failures")
              .Help("Stored feeds, keys and subscriptions that did not load (see /readyz)")
              .Register(*registry_)
              .Add({})),
      replica_lag_records_(
          prometheus::BuildGauge()
              .Name("firehub_replica_lag_records")
              .Help("Cluster mode: records on the domain topics this node's lake has not applied")
              .Register(*registry_)
              .Add({})),
      replica_lag_seconds_(
          prometheus::BuildGauge()
              .Name("firehub_replica_lag_seconds")
              .Help("Cluster mode: age of the newest record read while behind (0: caught up)")
              .Register(*registry_)
              .Add({})),
      memory_(prometheus::BuildGauge()
                  .Name("firehub_memory_bytes")
                  .Help("Bytes held by the hub's bounded caches and buffers, by part")
                  .Register(*registry_)),
      duty_held_(prometheus::BuildGauge()
                     .Name("firehub_cluster_duty_held")
                     .Help("Cluster mode: 1 while this node holds the singleton duty")
                     .Register(*registry_)),
      memory_limit_(prometheus::BuildGauge()
                        .Name("firehub_memory_limit_bytes")
                        .Help("Bytes each bounded cache and buffer may hold (memory.cache_mb and "
                              "the cache settings)")
                        .Register(*registry_)),
      kafka_delivered_(prometheus::BuildCounter()
                           .Name("firehub_kafka_delivered_total")
                           .Help("Messages confirmed by a successful Kafka delivery report")
                           .Register(*registry_)
                           .Add({})),
      kafka_failed_(prometheus::BuildCounter()
                        .Name("firehub_kafka_delivery_failed_total")
                        .Help("Failed Kafka delivery reports (the message stays in the outbox)")
                        .Register(*registry_)
                        .Add({})) {}

void Metrics::countRecords(const std::string& feed, const char* outcome, double n) {
  if (n > 0) records_.Add({{"feed", feed}, {"outcome", outcome}}).Increment(n);
}

void Metrics::countHttp(int status) { http_.Add({{"status", std::to_string(status)}}).Increment(); }

std::string Metrics::serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace firehub
