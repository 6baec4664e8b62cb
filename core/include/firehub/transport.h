// Transports the hub owns besides HTTP push: TCP listeners for stream protocols (GB/T 26875.3)
// and file drops (a directory per feed that agencies copy files into).
// A feed whose config has "listen": "HOST:PORT" gets a listener; every connection keeps its own
// buffer, hands it to the pipeline as a byte stream, sends the connector's reply (confirm/deny)
// only after the commit, and keeps the unused tail (an incomplete frame) for the next read.
// @remark Thread-safe. One thread per connection (Poco TCPServer); the pipeline and the feed
// registry must outlive the listeners.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>
#include <vector>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "firehub/metrics.h"
#include "firehub/net.h"
#include "firehub/pipeline.h"
#include "firehub/registry.h"
#include "firehub/status.h"

namespace Poco::Net {
class TCPServer;
}

namespace firehub::transport {

struct TcpOptions {
  // Close a connection that sent nothing for this long, seconds. Default: 300.
  int idle_timeout_s = 300;
  // Bytes a connection may buffer without a complete frame before they are dropped. Default: 64
  // KiB.
  size_t max_buffer_bytes = 64u << 10;
  // Connections per listener. Default: 64.
  int max_connections = 64;
};

// The content type a stream connector receives.
inline constexpr const char* kStreamContentType = "application/x-gbt26875";

class TcpListeners {
 public:
  TcpListeners(pipeline::Pipeline& pipeline, TcpOptions options = {});
  ~TcpListeners();

  // Starts a listener when the feed's config has "listen" and none runs for it yet.
  Status ensure(const registry::Feed& feed);
  // The bound port of a feed's listener.
  std::optional<uint16_t> port(const std::string& feed_id) const;
  void stopAll();

 private:
  pipeline::Pipeline& pipeline_;
  TcpOptions options_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Poco::Net::TCPServer>> servers_;
  std::map<std::string, uint16_t> ports_;
};

// Splits a body into pieces of about `chunk` bytes at line ends; CSV pieces repeat the header
// line. JSON documents (one object or array) are not split.
std::vector<std::string> splitBody(const std::string& data, const std::string& content_type,
                                   size_t chunk);

// The content type of a file, from its extension ("" when unknown).
std::string contentTypeOfFile(const std::string& path);

struct FileDropOptions {
  // How often each drop directory is looked at, milliseconds. Default: 1000.
  int poll_ms = 1000;
  // Bytes handed to the pipeline at once (at line ends). Default: 4 MiB.
  size_t chunk_bytes = 4u << 20;
  // Larger files are refused (moved to failed/ with a dead letter). Default: 1 GiB.
  size_t max_file_bytes = 1u << 30;
  // Cluster mode: whether this node holds the file-drop duty now (one node reads the folders at
  // a time). Default: always.
  std::function<bool()> holds_duty;
};

// A feed whose spec has file_drop.dir gets its directory watched. Files whose names start with
// '.' or end in .part/.tmp are still being written and are left alone, so writers copy to such a
// name and rename when done. A file is ingested in pieces; when every piece is committed it is
// moved to done/ (the file's acknowledgement). A crash before that ingests it again, and the
// lake's dedupe by record id keeps each record once. A file that cannot be read as its format is
// moved to failed/ with a dead letter (stage transport) naming why; a lake failure leaves the
// file where it is and tries again with back-off.
class FileDrops {
 public:
  FileDrops(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds, lake::Lake& lake,
            FileDropOptions options = {});
  ~FileDrops();
  void start();
  void stop();
  // One pass over every drop directory (what the thread does every poll_ms). Returns how many
  // files were finished (done or failed).
  size_t scanOnce();

 private:
  struct Backoff {
    int64_t until_ms = 0;
    int64_t delay_ms = 0;
  };
  bool ingestFile(registry::Feed& feed, const std::string& path);
  // Moves the file to failed/ with a dead letter; keep_bytes: the dead letter holds its bytes.
  void failFile(registry::Feed& feed, const std::string& path, const std::string& reason,
                bool keep_bytes = true);
  void run();

  pipeline::Pipeline& pipeline_;
  registry::FeedRegistry& feeds_;
  lake::Lake& lake_;
  FileDropOptions options_;
  std::map<std::string, Backoff> backoff_;  // per feed; only the scanning thread touches it
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// One feed's reader of a source the hub reads itself (a Kafka consumer, an HTTP poller, an MQTT
// client), with its own thread.
class SourceWorker {
 public:
  explicit SourceWorker(registry::FeedSpec spec) : spec_(std::move(spec)) {}
  virtual ~SourceWorker() = default;
  const registry::FeedSpec& spec() const { return spec_; }
  // Starts reading (its thread); an error is shown through failed() and tried again when the
  // feed's definition changes.
  virtual Status start() = 0;
  virtual void failed(const std::string& why) = 0;

 private:
  const registry::FeedSpec spec_;
};

// Starts and stops one worker per feed that has a source of one kind, as feeds are registered,
// changed (a new worker) and deleted; looked at every second.
class SourceWorkers {
 public:
  struct Kind {
    std::string name;                                    // "kafka-source", for the log
    std::function<bool(const registry::FeedSpec&)> has;  // the feed has such a source
    std::function<bool(const registry::FeedSpec&, const registry::FeedSpec&)> same;  // unchanged
    std::function<std::unique_ptr<SourceWorker>(const registry::FeedSpec&)> make;
    std::function<std::string(const registry::FeedSpec&)> describe;  // "reads X at Y", logged
  };
  SourceWorkers(registry::FeedRegistry& feeds, Kind kind) : feeds_(feeds), kind_(std::move(kind)) {}
  ~SourceWorkers() { stop(); }
  void start();
  void stop();  // stops every worker
  // Calls fn with the feed's worker (under the lock); false when the feed has none.
  bool with(const std::string& feed, const std::function<void(SourceWorker&)>& fn) const;

 private:
  void run();
  registry::FeedRegistry& feeds_;
  const Kind kind_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, std::unique_ptr<SourceWorker>> workers_;
  std::thread thread_;
};

// Feeds that read an agency's Kafka topics (FeedSpec::kafka): one consumer per feed, in the
// feed's consumer group. Each message goes through the feed's connector as a push body would,
// and the next offset of its partition is written in the same lake commit as its records, so a
// crash (kill -9) neither loses nor repeats one: a restarted consumer starts each partition it
// is assigned at the offset the lake holds. A message the connector cannot read at all is a dead
// letter naming its topic, partition and offset. While the feed is paused, or the lake cannot
// commit, the consumer waits at the same message. Offsets are also committed to the group, for
// the agency's own monitoring.
struct KafkaPartitionState {
  std::string topic;
  int partition = 0;
  int64_t next = -1;  // the next offset to read (-1: not known yet)
  int64_t high = -1;  // the partition's high watermark, as last fetched
  int64_t lag() const { return next >= 0 && high >= 0 ? std::max<int64_t>(0, high - next) : -1; }
};
struct KafkaSourceState {
  bool running = false;
  std::string error;  // the last error of the consumer, "" when it is fine
  uint64_t messages = 0;
  uint64_t dead_lettered = 0;
  std::vector<KafkaPartitionState> partitions;
};

class KafkaSources {
 public:
  KafkaSources(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds, lake::Lake& lake,
               Metrics& metrics);
  ~KafkaSources();
  void start();
  void stop();
  // The consumer of a feed, if it is a Kafka source.
  std::optional<KafkaSourceState> state(const std::string& feed) const;

  class Consumer;

 private:
  pipeline::Pipeline& pipeline_;
  lake::Lake& lake_;
  prometheus::Family<prometheus::Gauge>& lag_;  // firehub_kafka_source_lag_messages
  SourceWorkers workers_;
};

// Feeds that poll an agency's HTTP API (FeedSpec::poll): a thread per feed. Each answer goes
// through the feed's connector as a push body would (its Content-Type's charset honoured), with
// where the poll stands (the next page's URL, the ETag and Last-Modified of the first page) in
// the same lake commit, so a restart goes on from the page after the last one stored. Requests
// go through the hub's outbound policy (no loopback, private or metadata addresses unless
// allowed; HTTPS certificates checked); pages are followed only on the feed URL's own origin, so
// its headers (keys) go nowhere else. A failing source (refused, timing out, 4xx/5xx, an answer
// over 64 MiB) is tried again with back-off, its error shown in the feed's poll_state; while the
// feed is paused or the lake cannot commit, the poll waits at the same page. An answer the
// connector cannot read at all is a dead letter, and the poll goes on past it.
struct PollSourceState {
  bool running = false;
  std::string error;            // the last failure, "" when the last request went through
  int failures = 0;             // failures in a row
  int last_status = 0;          // HTTP status of the last answer (0: none)
  int64_t last_poll_at = 0;     // unix ms of the last request
  int64_t last_success_at = 0;  // unix ms of the last answer taken (a page or a 304)
  int64_t next_poll_at = 0;     // unix ms
  uint64_t pages = 0;           // pages taken since the hub started
  uint64_t not_modified = 0;    // 304 answers
  uint64_t dead_lettered = 0;   // pages the connector could not read at all
  std::string next;             // the URL of the page the poll goes on at ("" : the feed's url)
};
class HttpPolls {
 public:
  HttpPolls(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds, lake::Lake& lake,
            net::OutboundPolicy policy);
  ~HttpPolls();
  void start();
  void stop();
  std::optional<PollSourceState> state(const std::string& feed) const;

  class Poller;

 private:
  pipeline::Pipeline& pipeline_;
  registry::FeedRegistry& feeds_;
  lake::Lake& lake_;
  const net::OutboundPolicy policy_;
  SourceWorkers workers_;
};

// Feeds that subscribe to topics on an agency's MQTT broker (FeedSpec::mqtt): a client per feed
// (libmosquitto, MQTT 3.1.1), QoS 1 in a persistent session (clean session off, the feed's
// client id). Each message goes through the feed's connector as a push body would; its PUBACK
// leaves only after the lake commit (the client's packets are written by this loop alone, after
// the message callback returned), so a crash or a failed commit means the broker sends the
// message again, and the lake's dedupe by record id keeps it once. A message the connector cannot
// read is a dead letter (acknowledged: it is kept). While the feed is paused the client stays
// away, and the broker keeps the session's messages. The broker's address goes through the
// outbound policy (a TLS broker is then reached by its name, which its certificate must carry).
struct MqttSourceState {
  bool running = false;
  bool connected = false;  // connected and subscribed
  std::string error;       // the last failure, "" when connected
  uint64_t messages = 0;   // stored since the hub started
  uint64_t dead_lettered = 0;
  int64_t last_message_at = 0;  // unix ms
  int64_t connected_at = 0;     // unix ms of the last subscription
};
class MqttSources {
 public:
  MqttSources(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds, lake::Lake& lake,
              net::OutboundPolicy policy);
  ~MqttSources();
  void start();
  void stop();
  std::optional<MqttSourceState> state(const std::string& feed) const;

  class Client;

 private:
  pipeline::Pipeline& pipeline_;
  registry::FeedRegistry& feeds_;
  lake::Lake& lake_;
  const net::OutboundPolicy policy_;
  SourceWorkers workers_;
};

}  // namespace firehub::transport
