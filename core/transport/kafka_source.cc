#include <librdkafka/rdkafka.h>
#include <prometheus/gauge.h>

#include <chrono>

#include "firehub/log.h"
#include "firehub/transport.h"
#include "internal.h"

namespace firehub::transport {

// One feed's consumer: its own thread and librdkafka handle.
class KafkaSources::Consumer : public SourceWorker {
 public:
  Consumer(KafkaSources& owner, registry::FeedSpec spec)
      : SourceWorker(std::move(spec)), owner_(owner) {}
  ~Consumer() override { stop(); }

  void failed(const std::string& why) override { setError(why); }

  Status start() override {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& k, const std::string& v) -> Status {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
        return Status::invalidArgument("kafka." + k + ": " + err);
      return Status::ok();
    };
    const auto& k = spec().kafka;
    for (const auto& [name, value] : k.properties) {
      if (Status s = set(name, value); !s.isOk()) {
        rd_kafka_conf_destroy(conf);
        return s;
      }
    }
    for (const auto& [name, value] :
         std::map<std::string, std::string>{{"bootstrap.servers", k.bootstrap},
                                            {"group.id", k.group},
                                            {"enable.auto.commit", "false"},
                                            {"enable.auto.offset.store", "false"},
                                            {"auto.offset.reset", "earliest"},
                                            {"enable.partition.eof", "false"}}) {
      if (Status s = set(name, value); !s.isOk()) {
        rd_kafka_conf_destroy(conf);
        return s;
      }
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_rebalance_cb(conf, &Consumer::rebalance);
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk_) return Status::invalidArgument(std::string("kafka consumer: ") + err);
    rd_kafka_poll_set_consumer(rk_);
    rd_kafka_topic_partition_list_t* topics =
        rd_kafka_topic_partition_list_new(static_cast<int>(k.topics.size()));
    for (const auto& t : k.topics)
      rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
    const rd_kafka_resp_err_t e = rd_kafka_subscribe(rk_, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) return Status::unavailable(std::string("subscribe: ") + rd_kafka_err2str(e));
    thread_ = std::thread([this] { run(); });
    return Status::ok();
  }

  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (rk_) {
      rd_kafka_consumer_close(rk_);
      rd_kafka_destroy(rk_);
      rk_ = nullptr;
    }
  }

  KafkaSourceState state() const {
    std::lock_guard<std::mutex> lock(mu_);
    KafkaSourceState s = state_;
    s.running = rk_ && !stopping_;
    return s;
  }

 private:
  // Assigned partitions start where the lake says this feed got to (the offset stored with the
  // records); a partition the lake has never seen starts at the group's offset, or the earliest.
  static void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<Consumer*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      std::vector<KafkaPartitionState> assigned;
      for (int i = 0; i < parts->cnt; ++i) {
        auto& p = parts->elems[i];
        auto stored = self->owner_.lake_.getMeta(
            registry::kafkaOffsetKey(self->spec().id, p.topic, p.partition));
        if (stored.isOk() && stored.value()) {
          try {
            p.offset = std::stoll(*stored.value());
          } catch (const std::exception&) {
            p.offset = RD_KAFKA_OFFSET_STORED;
          }
        } else {
          p.offset = RD_KAFKA_OFFSET_STORED;
        }
        assigned.push_back({p.topic, p.partition, p.offset >= 0 ? p.offset : -1, -1});
      }
      rd_kafka_assign(rk, parts);
      std::lock_guard<std::mutex> lock(self->mu_);
      self->state_.partitions = std::move(assigned);
    } else {
      rd_kafka_assign(rk, nullptr);
      std::lock_guard<std::mutex> lock(self->mu_);
      self->state_.partitions.clear();
    }
  }

  void setError(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_.error != e && !e.empty())
      FIREHUB_LOG(kWarning, "kafka-source", "feed " << spec().id << ": " << e);
    state_.error = e;
  }

  void noteDone(const rd_kafka_message_t* m, bool dead) {
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.messages;
    if (dead) ++state_.dead_lettered;
    const std::string topic = rd_kafka_topic_name(m->rkt);
    for (auto& p : state_.partitions) {
      if (p.topic == topic && p.partition == m->partition) p.next = m->offset + 1;
    }
    state_.error.clear();
  }

  void refreshWatermarks() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : state_.partitions) {
      int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(rk_, p.topic.c_str(), p.partition, &low, &high) ==
              RD_KAFKA_RESP_ERR_NO_ERROR &&
          high >= 0)
        p.high = high;
    }
  }

  // One message into the lake with its partition's next offset. False: try it again later.
  bool take(const rd_kafka_message_t* m) {
    const std::string topic = rd_kafka_topic_name(m->rkt);
    const std::string where =
        topic + "/" + std::to_string(m->partition) + "@" + std::to_string(m->offset);
    std::pair<std::string, std::string> next{
        registry::kafkaOffsetKey(spec().id, topic, m->partition), std::to_string(m->offset + 1)};
    pipeline::IngestRequest in;
    in.feed_id = spec().id;
    in.body = std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    in.content_type = spec().kafka.content_type;
    in.transport = "kafka";
    in.source = where;
    in.meta = {next};
    auto summary = owner_.pipeline_.ingest(in);
    if (summary.isOk()) {
      noteDone(m, summary->rejected > 0);
      return true;
    }
    if (summary.status().code() == StatusCode::kInvalidArgument) {
      // Not readable at all: a dead letter with the message's place, and past it.
      Status kept = keepUnreadable(owner_.lake_, spec(), summary.status().message(), in.body, where,
                                   in.content_type, {next});
      if (kept.isOk()) {
        noteDone(m, true);
        return true;
      }
      setError(kept.message());
      return false;
    }
    setError(summary.status().message());  // paused, stopped, the lake failing: wait here
    return false;
  }

  void run() {
    log::nameThread("fh-kafka-src");
    int64_t next_watermarks = 0;
    while (!stopping_) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 200);
      if (nowMs() >= next_watermarks) {
        refreshWatermarks();
        publishLag();
        next_watermarks = nowMs() + 2000;
      }
      if (!m) continue;
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) setError(rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        continue;
      }
      if (take(m)) {
        rd_kafka_commit_message(rk_, m, /*async=*/1);  // the group's view, for the agency
      } else {
        // The same message again after a pause (the feed paused, the lake failing).
        rd_kafka_topic_partition_list_t* at = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(at, rd_kafka_topic_name(m->rkt), m->partition)->offset =
            m->offset;
        rd_kafka_seek_partitions(rk_, at, 5000);
        rd_kafka_topic_partition_list_destroy(at);
        for (int i = 0; i < 10 && !stopping_; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      rd_kafka_message_destroy(m);
    }
  }

  void publishLag() {
    auto& family = owner_.lag_;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : state_.partitions) {
      if (p.lag() < 0) continue;
      family
          .Add(
              {{"feed", spec().id}, {"topic", p.topic}, {"partition", std::to_string(p.partition)}})
          .Set(static_cast<double>(p.lag()));
    }
  }

  KafkaSources& owner_;
  rd_kafka_t* rk_ = nullptr;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  KafkaSourceState state_;
  std::thread thread_;
};

KafkaSources::KafkaSources(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds,
                           lake::Lake& lake, Metrics& metrics)
    : pipeline_(pipeline),
      lake_(lake),
      lag_(prometheus::BuildGauge()
               .Name("firehub_kafka_source_lag_messages")
               .Help("Kafka source feeds: messages of a partition not yet in the lake")
               .Register(metrics.registry())),
      workers_(feeds,
               {"kafka-source", [](const registry::FeedSpec& s) { return !s.kafka.topics.empty(); },
                [](const registry::FeedSpec& a, const registry::FeedSpec& b) {
                  return a.kafka == b.kafka;
                },
                [this](const registry::FeedSpec& s) -> std::unique_ptr<SourceWorker> {
                  return std::make_unique<Consumer>(*this, s);
                },
                [](const registry::FeedSpec& s) {
                  return "reads " + s.kafka.topics.front() +
                         (s.kafka.topics.size() > 1 ? ", ..." : "") + " at " + s.kafka.bootstrap;
                }}) {}

KafkaSources::~KafkaSources() { stop(); }

void KafkaSources::start() { workers_.start(); }

void KafkaSources::stop() { workers_.stop(); }

std::optional<KafkaSourceState> KafkaSources::state(const std::string& feed) const {
  std::optional<KafkaSourceState> out;
  workers_.with(feed, [&](SourceWorker& w) { out = static_cast<Consumer&>(w).state(); });
  return out;
}

}  // namespace firehub::transport
