#include <librdkafka/rdkafka.h>
#include <prometheus/gauge.h>

#include <chrono>

#include "firehub/log.h"
#include "firehub/transport.h"

namespace firehub::transport {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One feed's consumer: its own thread and librdkafka handle.
class KafkaSources::Consumer {
 public:
  Consumer(KafkaSources& owner, registry::FeedSpec spec) : owner_(owner), spec_(std::move(spec)) {}
  ~Consumer() { stop(); }

  const registry::FeedSpec& spec() const { return spec_; }
  void failed(const std::string& why) { setError(why); }

  Status start() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& k, const std::string& v) -> Status {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
        return Status::invalidArgument("kafka." + k + ": " + err);
      return Status::ok();
    };
    const auto& k = spec_.kafka;
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
            registry::kafkaOffsetKey(self->spec_.id, p.topic, p.partition));
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
      FIREHUB_LOG(kWarning, "kafka-source", "feed " << spec_.id << ": " << e);
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
        registry::kafkaOffsetKey(spec_.id, topic, m->partition), std::to_string(m->offset + 1)};
    pipeline::IngestRequest in;
    in.feed_id = spec_.id;
    in.body = std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    in.content_type = spec_.kafka.content_type;
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
      firehub::v1::DeadLetter dl;
      dl.set_feed_id(spec_.id);
      dl.set_agency(spec_.agency);
      dl.set_connector_id(spec_.connector);
      dl.set_stage("decode");
      dl.set_reason(summary.status().message());
      dl.mutable_at()->set_seconds(nowMs() / 1000);
      dl.set_raw(std::string(in.body));
      dl.set_source_offset(where);
      dl.set_content_type(in.content_type);
      auto committed = owner_.lake_.commit(
          {}, {dl},
          [&](const lake::CommitResult&, std::vector<std::pair<std::string, std::string>>& meta) {
            meta.push_back(next);
          });
      if (committed.isOk()) {
        noteDone(m, true);
        return true;
      }
      setError(committed.status().message());
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
          .Add({{"feed", spec_.id}, {"topic", p.topic}, {"partition", std::to_string(p.partition)}})
          .Set(static_cast<double>(p.lag()));
    }
  }

  KafkaSources& owner_;
  const registry::FeedSpec spec_;
  rd_kafka_t* rk_ = nullptr;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  KafkaSourceState state_;
  std::thread thread_;
};

KafkaSources::KafkaSources(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds,
                           lake::Lake& lake, Metrics& metrics)
    : pipeline_(pipeline),
      feeds_(feeds),
      lake_(lake),
      metrics_(metrics),
      lag_(prometheus::BuildGauge()
               .Name("firehub_kafka_source_lag_messages")
               .Help("Kafka source feeds: messages of a partition not yet in the lake")
               .Register(metrics.registry())) {}

KafkaSources::~KafkaSources() { stop(); }

void KafkaSources::start() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void KafkaSources::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<std::string, std::unique_ptr<Consumer>> consumers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    consumers.swap(consumers_);
  }
  consumers.clear();  // each stops
}

std::optional<KafkaSourceState> KafkaSources::state(const std::string& feed) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = consumers_.find(feed);
  if (it == consumers_.end()) return std::nullopt;
  return it->second->state();
}

void KafkaSources::run() {
  log::nameThread("fh-kafka-srcs");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    // The feeds that read Kafka now, as registered (a changed definition: a new consumer).
    std::map<std::string, registry::FeedSpec> wanted;
    for (const auto& feed : feeds_.list()) {
      if (!feed->spec().kafka.topics.empty()) wanted.emplace(feed->spec().id, feed->spec());
    }
    std::vector<std::unique_ptr<Consumer>> gone;
    std::vector<std::pair<std::string, std::unique_ptr<Consumer>>> started;
    {
      std::lock_guard<std::mutex> held(mu_);
      for (auto it = consumers_.begin(); it != consumers_.end();) {
        auto w = wanted.find(it->first);
        if (w == wanted.end() || !(w->second.kafka == it->second->spec().kafka)) {
          gone.push_back(std::move(it->second));
          it = consumers_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& [id, spec] : wanted) {
        if (consumers_.count(id)) continue;
        auto c = std::make_unique<Consumer>(*this, spec);
        started.emplace_back(id, std::move(c));
      }
    }
    gone.clear();  // stopped outside the lock
    for (auto& [id, c] : started) {
      if (Status s = c->start(); !s.isOk()) {
        c->failed(s.message());  // shown in the feed's state; tried again when it changes
      } else {
        FIREHUB_LOG(kInfo, "kafka-source",
                    "feed " << id << " reads " << c->spec().kafka.topics.front()
                            << (c->spec().kafka.topics.size() > 1 ? ", ..." : "") << " at "
                            << c->spec().kafka.bootstrap);
      }
      std::lock_guard<std::mutex> held(mu_);
      consumers_[id] = std::move(c);
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
  }
}

}  // namespace firehub::transport
