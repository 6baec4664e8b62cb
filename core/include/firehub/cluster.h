// Cluster mode: several hubs sharing one Kafka cluster, each lake a replica of the whole.
//
// A node's Replica consumes the canonical domain topics (firehub.v1.<domain>) that every node's
// publisher writes, and commits the records it reads into its own lake: the records, latest
// pointers, geo and log entries, and the consumed offsets, in one RocksDB batch, so a crash
// never applies a record twice or skips one. Its own records come back as duplicates (ids are
// stable) and collapse; latest pointers move only forward, so replicas converge whatever the
// order of arrival. A restarted node resumes from the offsets its lake holds. Each node reads
// every partition (assigned, not balanced in a group: each node wants all of them); nothing here
// elects or replicates by a protocol of its own.
// @remark Thread-safe. One thread of its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "firehub/lake.h"
#include "firehub/status.h"

struct rd_kafka_s;

namespace firehub::cluster {

// The configuration every node of a cluster shares: the lake's meta entries under these prefixes
// (feeds, API keys, topic grants). A node's change goes to the cluster's configuration topic
// (ConfigPublisher); every node's replica applies what that topic holds, in its order, so the
// nodes converge on the last write of each entry.
inline const std::vector<std::string>& sharedConfigPrefixes() {
  static const std::vector<std::string> kPrefixes = {
      "feed/",   "keys/",  "users/", "acks/",
      "grants/", "nodes/", "subs/",  lake::kSubscriptionCursorPrefix};
  return kPrefixes;
}
bool isSharedConfig(const std::string& meta_key);
// The duty epoch a shared entry was written under ({"epoch": N, ...}), 0 when it names none;
// and its write count under that epoch ("seq").
uint64_t writtenEpoch(const std::string& value);
uint64_t writtenSeq(const std::string& value);
// "firehub.cluster.<cluster id>.config": key = meta key, value = the entry (null: deleted).
std::string configTopic(const std::string& cluster_id);

struct ReplicaOptions {
  std::string bootstrap_servers;                  // required
  std::map<std::string, std::string> properties;  // other librdkafka settings (kafka.*)
  std::string cluster_id;                         // cluster.id: required
  std::string node;                               // cluster.node: required, unique in the cluster
  std::vector<std::string> domains;               // the schema's domains (one topic each)
  size_t batch = 1000;                            // records per lake commit, at most
  // Called with each shared configuration entry the replica applied to the lake's meta (after
  // the batch that held it was committed), for what keeps it in memory (the feed registry).
  std::function<void(const std::string& meta_key)> on_config;
};

// How far this node's lake is behind one partition.
struct PartitionLag {
  std::string topic;
  int partition = 0;
  int64_t next_offset = 0;  // the next offset to apply (stored in the lake)
  int64_t high_watermark = -1;
  int64_t lag() const {
    return high_watermark < 0 ? 0 : std::max<int64_t>(0, high_watermark - next_offset);
  }
};

struct ReplicaState {
  bool running = false;
  bool assigned = false;        // the group gave this node its partitions
  uint64_t applied = 0;         // records stored from other nodes' topics since start
  uint64_t duplicates = 0;      // records already in the lake (this node's own, or seen before)
  uint64_t refused = 0;         // messages that are not records (dead-lettered, stage replicate)
  uint64_t config_applied = 0;  // shared configuration entries applied from other nodes
  int64_t last_applied_ms = 0;
  int64_t lag_records = 0;  // sum over the partitions
  // Seconds between the newest message read and now when there is lag; 0 when caught up.
  double lag_seconds = 0;
  std::string last_error;
  // Records this lake will never get from Kafka (a node down longer than the topics' retention):
  // which partition and offsets. A node with a gap is not ready; it needs a new lake: `firehub
  // cluster rebuild --from <peer>` copies a peer's (GET /api/v1/cluster/snapshot).
  std::string gap;
  std::vector<PartitionLag> partitions;
};

// This node's changes of the shared configuration, onto the configuration topic. Each change is
// produced (idempotent, acks=all) and produced again until Kafka confirms it; one still
// unconfirmed when the process dies is not sent by the next start (it stays this node's own until
// it is changed again).
class ConfigPublisher {
 public:
  explicit ConfigPublisher(ReplicaOptions options);
  ~ConfigPublisher();
  Status start();
  void stop();
  // A meta entry this node wrote (value null: deleted); ignored unless isSharedConfig().
  void changed(const std::string& key, const std::string* value);
  // Changes produced and not yet confirmed.
  size_t unconfirmed() const;
  // Delivery report entry point (librdkafka, on the poll thread).
  void onDelivery(const std::string& key, int error);

 private:
  void produce(const std::string& key);
  ReplicaOptions options_;
  rd_kafka_s* producer_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  // The latest value of each unconfirmed change (nullopt: deleted), to produce again on failure.
  std::map<std::string, std::optional<std::string>> pending_;
  std::map<std::string, int> failed_;  // keys whose last delivery failed, produced again
};

// The singleton duties: work that runs on exactly one node of a cluster at a time.
//  - kLayers: publishing the risk layer's deltas and the CAP warning drafts to Kafka;
//  - kSubscriptions: webhook and Kafka subscription deliveries;
//  - kFileDrops: reading the feeds' drop folders.
enum class Duty { kLayers = 0, kSubscriptions = 1, kFileDrops = 2 };
inline constexpr int kDutyCount = 3;
const char* dutyName(Duty duty);
// "firehub.cluster.<cluster id>.duties": the topic whose partitions the duties group shares out.
std::string dutiesTopic(const std::string& cluster_id);

struct DutyState {
  Duty duty = Duty::kLayers;
  int partition = -1;    // of the duties topic
  uint64_t epoch = 0;    // this node's claim (offset of its claim message + 1); 0: not held
  int64_t since_ms = 0;  // when this node's claim was confirmed
  bool current = false;  // held and the membership confirmed within the lease
};

// Which node runs each duty: the members of one Kafka consumer group
// ("firehub.<cluster id>.duties") share the partitions of the duties topic, and the member that
// is assigned a duty's partition (duty number modulo the partitions) holds the duty. Nothing
// here elects: Kafka's group coordinator does, and moves a dead member's partitions to the
// others after its session times out (cluster.session_timeout_ms).
//
// The epoch: on each assignment the new holder produces a claim (acks=all) to the duty's
// partition; the claim's offset + 1 is the duty's epoch, larger than every earlier holder's, and
// goes with what the duty writes (a header, a cursor's field) so that a former holder that
// wakes up late cannot overwrite its successor. A holder that reads a later claim of another
// node on its partition drops the duty. The lease: epoch() reports a duty only while the
// group's thread keeps turning; after the process stood still (paused, swapped out) it waits
// three heartbeat intervals, long enough for the group to tell it the duty moved.
// @remark Thread-safe. One thread of its own (group events and claims).
class DutyGroup {
 public:
  explicit DutyGroup(ReplicaOptions options, int session_timeout_ms = 6000);
  ~DutyGroup();
  DutyGroup(const DutyGroup&) = delete;
  DutyGroup& operator=(const DutyGroup&) = delete;

  Status start();
  void stop();
  // The duty's epoch while this node holds it (and the lease is current), else 0.
  uint64_t epoch(Duty duty) const;
  std::vector<DutyState> state() const;
  // Called on the group's thread when this node takes (epoch > 0) or loses (0) a duty.
  void setListener(std::function<void(Duty, uint64_t epoch)> listener);
  struct RebalanceHook;  // librdkafka's rebalance callback target

 private:
  bool join();
  void run();
  // The group's thread turned within the lease and no standstill is being waited out (mu_ held).
  bool leaseCurrent(int64_t now) const;
  void claim(int partition);
  void lose(int partition, const char* why);

  ReplicaOptions options_;
  int session_timeout_ms_;
  int lease_ms_;
  rd_kafka_s* consumer_ = nullptr;
  rd_kafka_s* producer_ = nullptr;
  std::unique_ptr<RebalanceHook> hook_;  // outlives the consumer
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  int partitions_ = 0;                 // of the duties topic, once known
  std::map<int, uint64_t> assigned_;   // partition -> epoch (0 until claimed)
  std::map<int, int64_t> claimed_at_;  // partition -> when its claim was confirmed
  int64_t lease_ok_ms_ = 0;            // the group's thread last turned
  int64_t held_from_ms_ = 0;           // after a standstill: no duty held before this
  std::function<void(Duty, uint64_t)> listener_;
};

// The duties a node holds now, as its heartbeat carries them: {"<duty>": {"epoch": N,
// "since_ms": T}, ...}.
std::string dutiesJson(const DutyGroup& group);

class Replica {
 public:
  Replica(lake::Lake& lake, ReplicaOptions options);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  Status start();
  void stop();
  ReplicaState state() const;

  // The lake meta key of a partition's next offset.
  static std::string offsetKey(const std::string& topic, int partition);
  // The shared meta key of a node's last heartbeat (its state every 5 s, JSON).
  static std::string nodeKey(const std::string& node);
  // The HTTP address this node serves at, put in its heartbeats.
  void setAdvertised(const std::string& http_address);
  // What goes in the heartbeat as "duties" (a JSON object: the duties this node holds).
  void setDutiesSource(std::function<std::string()> source);
  // The next heartbeat goes out within a second (this node's duties changed).
  void heartbeatSoon();

 private:
  // Assigns the partitions of domain topics not assigned yet (from the lake's offsets).
  Status assignNew();
  void run();
  // A shared entry a former duty holder wrote after its successor (a lower epoch than the
  // stored one's), or an older write of the same holder coming back late (a lower seq): not
  // applied, so every node keeps the newest.
  bool isStaleWrite(const std::string& key, const std::string& value) const;
  // Reads up to options_.batch messages (waiting up to `wait_ms` for the first) and commits them.
  Status step(int wait_ms);

  lake::Lake& lake_;
  ReplicaOptions options_;
  rd_kafka_s* consumer_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  ReplicaState state_;
  std::map<std::pair<std::string, int>, int64_t> next_;       // next offset per assigned partition
  std::map<std::pair<std::string, int>, int64_t> newest_ts_;  // newest message time read, ms
  std::string advertised_;
  std::function<std::string()> duties_source_;
  int64_t last_heartbeat_ = 0;
};

}  // namespace firehub::cluster
