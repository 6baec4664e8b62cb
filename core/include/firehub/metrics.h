// The hub's Prometheus metrics (prometheus-cpp registry, text exposition at /metrics).
// One instance per hub; every module gets a reference at construction.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace firehub {

class Metrics {
 public:
  Metrics();

  // Per feed and outcome (accepted, rejected, duplicate).
  void countRecords(const std::string& feed, const char* outcome, double n);
  void countHttp(int status);
  void setOutboxDepth(double depth) { outbox_depth_.Set(depth); }
  void setLoadFailures(double n) { load_failures_.Set(n); }
  void setReplicaLag(double records, double seconds) {
    replica_lag_records_.Set(records);
    replica_lag_seconds_.Set(seconds);
  }
  // Cluster mode: 1 while this node holds the duty (its epoch current), else 0.
  void setDutyHeld(const std::string& duty, bool held) {
    duty_held_.Add({{"duty", duty}}).Set(held ? 1 : 0);
  }
  void countDelivered(double n) { kafka_delivered_.Increment(n); }
  void countDeliveryFailed(double n) { kafka_failed_.Increment(n); }
  // Bytes held by one of the hub's bounded caches and buffers (`part`: lake_memtables,
  // lake_block_cache, ...), set when /metrics is read.
  void setMemoryBytes(const std::string& part, double bytes) {
    memory_.Add({{"part", part}}).Set(bytes);
  }
  // What that part may hold at most, bytes (the hub's memory plan), set at start.
  void setMemoryLimitBytes(const std::string& part, double bytes) {
    memory_limit_.Add({{"part", part}}).Set(bytes);
  }

  // Prometheus text format of everything registered.
  std::string serialize() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& records_;
  prometheus::Family<prometheus::Counter>& http_;
  prometheus::Gauge& outbox_depth_;
  prometheus::Gauge& load_failures_;
  prometheus::Gauge& replica_lag_records_;
  prometheus::Gauge& replica_lag_seconds_;
  prometheus::Family<prometheus::Gauge>& memory_;
  prometheus::Family<prometheus::Gauge>& duty_held_;
  prometheus::Family<prometheus::Gauge>& memory_limit_;
  prometheus::Counter& kafka_delivered_;
  prometheus::Counter& kafka_failed_;
};

}  // namespace firehub
