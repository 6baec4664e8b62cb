// Kafka: the embedded broker (librdkafka's mock cluster, in-process) and the publisher that
// drains the lake's outbox onto topics.
//
// The publisher deletes an outbox entry only in the success path of its delivery report; a failed
// report leaves it on disk and it is sent again after a back-off. A fatal producer error (the
// idempotent producer lost its guarantees) rebuilds the producer and replays the outbox. At most
// `max_in_flight` messages are held in librdkafka's memory; a broker outage backs up on disk.
// @remark The publisher owns one thread; delivery reports run on it (from rd_kafka_poll()).
// The Lake must outlive the Publisher; the EmbeddedBroker must outlive every client of it.
#pragma once

#include <absl/container/btree_set.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "firehub/lake.h"
#include "firehub/metrics.h"
#include "firehub/status.h"

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace firehub::bus {

// librdkafka's mock cluster. Messages live in memory only (the lake is the durable store); a
// single-node convenience, not a production broker.
class EmbeddedBroker {
 public:
  // Starts `brokers` mock brokers on loopback ports.
  static Result<std::unique_ptr<EmbeddedBroker>> start(int brokers, int default_partitions);
  ~EmbeddedBroker();

  const std::string& bootstrapServers() const { return bootstrap_; }
  // Creates a topic with the default partition count if it does not exist yet.
  void ensureTopic(const std::string& topic);
  // Fault injection for tests: take one broker (1-based id) down or up.
  void setBrokerDown(int broker_id, bool down);
  // Fault injection: the next `count` Produce requests fail with `error` (a librdkafka error
  // code, e.g. 6 = NOT_LEADER_FOR_PARTITION).
  void injectProduceErrors(int count, int error);
  int brokerCount() const { return brokers_; }
  // Brokers currently taken down.
  std::set<int> downBrokers() const;

 private:
  EmbeddedBroker() = default;
  rd_kafka_s* owner_ = nullptr;  // the mock cluster lives inside this handle
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
  int brokers_ = 0;
  int partitions_ = 6;
  mutable std::mutex mu_;
  std::set<std::string> topics_;
  std::set<int> down_;
};

// The delivery settings of the publisher's producer, before the config's kafka.* properties:
// idempotent with acks=all, lz4 batches, murmur2 partitioning (the Java clients' key -> partition)
// and batches held up to 20 ms (`linger.ms`). The benchmark's Kafka ceiling and its rsyslog peer
// produce with the same ones.
std::map<std::string, std::string> deliveryProperties();

struct PublisherOptions {
  // Kafka bootstrap servers. Required.
  std::string bootstrap_servers;
  // Extra librdkafka properties (kafka.* keys of the config, prefix removed). Default: none.
  std::map<std::string, std::string> properties;
  // Messages handed to librdkafka and not yet reported. Default: 20000.
  size_t max_in_flight = 20000;
  // Longest back-off after failed deliveries, ms. Default: 5000.
  int max_backoff_ms = 5000;
  // Called once per topic before the first message to it (creates it on the embedded broker).
  std::function<void(const std::string&)> ensure_topic;
  // Cluster mode: messages of records on the full (not .public) topics also carry the record as
  // stored (protobuf) in a "record" header, which other nodes' replicas read instead of parsing
  // the JSON. Default: false.
  bool record_header = false;
  // Cluster mode: the epoch of the layers duty while this node holds it, else 0. Layer deltas
  // and warning drafts go out only from the holder, with its epoch in an "epoch" header; a node
  // that does not hold the duty keeps its own in memory for `held_ms` and then drops them, and
  // sends the ones it still keeps when it takes the duty (what a holder that died had not sent).
  // Default: none (every derived entry is sent, no header).
  std::function<uint64_t()> layers_epoch;
  int held_ms = 30000;
  // Topics whose derived entries never change once written (CAP messages): at a takeover, the
  // ones already on the topic (by their "layer-key" header) are not sent again.
  std::set<std::string> once_topics;
};

// The values of one header on the messages of `topic` from `since_ms` (message time) on, read
// to the end of every partition within `timeout_ms` (Unavailable past it).
Result<std::set<std::string>> headerValuesSince(const PublisherOptions& options,
                                                const std::string& topic, const char* header,
                                                int64_t since_ms, int timeout_ms);

class Publisher {
 public:
  Publisher(lake::Lake& lake, Metrics& metrics, PublisherOptions options);
  ~Publisher();

  Status start();
  // Wakes the publisher (new outbox entries).
  void notify();
  // Stops, first trying to drain the outbox for up to `drain_timeout_ms`. What is not delivered
  // stays in the outbox for the next start.
  void stop(int drain_timeout_ms);

  uint64_t delivered() const { return delivered_.load(); }
  uint64_t failed() const { return failed_.load(); }
  // CPU seconds the publisher's thread has used (0 when it is not running).
  double threadCpuSeconds();
  // False while no broker is reachable or deliveries keep failing.
  bool healthy() const { return healthy_.load(); }
  std::string lastError() const;

  // Delivery report entry point (called by librdkafka on the publisher thread).
  void onDelivery(uint64_t sequence, int error, const char* reason);
  // Fault injection: raises a fatal error in the idempotent producer (rd_kafka_test_fatal_error),
  // which makes the publisher rebuild it and replay the outbox.
  Status injectFatalError(const std::string& reason);
  // Producers rebuilt after fatal errors since start.
  uint64_t rebuilds() const { return rebuilds_.load(); }
  void onError(int error, const char* reason);

 private:
  Status buildProducer();
  void destroyProducer();
  void run();
  void fill();
  // Produces an outbox entry of derived data (a layers key); returns the librdkafka error.
  int produceDerivedEntry(const lake::OutboxEntry& entry, uint64_t epoch = 0);
  // Cluster mode: derived entries kept while the layers duty is elsewhere; sends them when it
  // comes here, drops those older than held_ms.
  void handleHeld(uint64_t epoch);
  int produceDeadLetter(const lake::OutboxEntry& entry);
  void flushDeletes();

  lake::Lake& lake_;
  Metrics& metrics_;
  PublisherOptions options_;
  rd_kafka_s* producer_ = nullptr;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> fatal_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool pending_wake_ = false;

  // Publisher-thread state.
  uint64_t cursor_ = 0;                  // next outbox sequence to hand to librdkafka
  absl::btree_set<uint64_t> in_flight_;  // ordered: the lowest bounds what may be deleted
  // Delivered (or dropped) entries not yet removed from the outbox: those below the lowest
  // sequence still unsent or in flight go in one range from deleted_below_.
  absl::btree_set<uint64_t> waiting_;
  // Cluster mode: layer entries kept in memory while another node holds the layers duty
  // (sequence -> when first seen, the entry; their outbox entries are done), and those sent at a
  // takeover whose delivery reports are still to come (opaque: the sequence with kReplayBit).
  std::map<uint64_t, std::pair<int64_t, lake::OutboxEntry>> held_;
  std::map<uint64_t, lake::OutboxEntry> replaying_;
  static constexpr uint64_t kReplayBit = uint64_t{1} << 63;
  static constexpr size_t kMaxHeld = 200000;  // entries kept at most (memory: ~200 B each)
  bool held_overflow_ = false;
  uint64_t deleted_below_ = 0;
  uint64_t sent_top_ = 0;  // past every sequence put in in_flight_ or waiting_ since start
  std::set<std::string> known_topics_;
  std::string json_;            // the value being produced, reused between messages
  std::string bytes_;           // the stored record being produced, reused between messages
  firehub::v1::Record record_;  // the same parsed, when its bytes are not written from as they are
  int backoff_ms_ = 0;
  int64_t retry_at_ms_ = 0;
  int64_t next_probe_ms_ = 0;

  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> rebuilds_{0};
  std::mutex producer_mu_;  // guards producer_ against injectFatalError from other threads
  std::atomic<bool> healthy_{true};
  mutable std::mutex error_mu_;
  std::string last_error_;
};

// The protobuf JSON mapping of a record (proto field names; scalars printed even when zero;
// messages, oneof members and optional fields only when set): the Kafka value and API body.
// Doubles are written to at most 7 decimal places and times to the millisecond.
std::string recordToJson(const firehub::v1::Record& record);
// With `redact`, a view for a reader without the restricted grant: the restricted fields are left
// out (whatever they hold) and a "redacted" list at the end names them (dotted field names under
// the record, e.g. "building.owner_contact"). Nothing is added when the record has none.
std::string recordToJson(const firehub::v1::Record& record, bool redact);
void appendRecordJson(std::string& out, const firehub::v1::Record& record, bool redact);
// The same mapping for any firehub message (layer cells, warning drafts).
std::string messageToJson(const google::protobuf::Message& message);
// The same, appended to `out` (a buffer reused between messages).
void appendJson(std::string& out, const google::protobuf::Message& message);
// What the publisher's message headers need from a record.
struct WireRecordFacts {
  std::string_view feed_id, agency;
  int classification = 0;
  const google::protobuf::Descriptor* body = nullptr;  // the body's message type, if any
};
// appendRecordJson of the record whose serialised bytes these are, written without parsing
// them; `facts` (optional) gets its header fields. False,
// with `out` as it was, for bytes that protobuf's serialiser would not have written (then parse
// them and use appendJson).
bool appendRecordJsonFromWire(std::string& out, std::string_view bytes, bool redact,
                              WireRecordFacts* facts = nullptr);
// The same header fields of a parsed record (the views point into it).
WireRecordFacts recordFacts(const firehub::v1::Record& record);
// `s` as a JSON string literal (quotes, backslash and control characters escaped; UTF-8 as is).
void appendJsonString(std::string& out, std::string_view s);
// `t` as a JSON string in RFC 3339 UTC, as protobuf's TimeUtil::ToString writes it.
void appendJsonTimestamp(std::string& out, const google::protobuf::Timestamp& t);

}  // namespace firehub::bus
