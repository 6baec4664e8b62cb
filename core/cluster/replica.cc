// The replica: other nodes' records from the domain topics into this node's lake.
#include <google/protobuf/util/json_util.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>

#include "firehub/cluster.h"
#include "firehub/log.h"
#include "firehub/v1/precision.h"
#include "internal.h"

namespace firehub::cluster {
Replica::Replica(lake::Lake& lake, ReplicaOptions options)
    : lake_(lake), options_(std::move(options)) {}

Replica::~Replica() { stop(); }

std::string Replica::offsetKey(const std::string& topic, int partition) {
  return lake::kReplicaOffsetPrefix + topic + "/" + std::to_string(partition);
}

Status Replica::start() {
  if (options_.bootstrap_servers.empty() || options_.cluster_id.empty() || options_.node.empty())
    return Status::invalidArgument(
        "a replica needs kafka.bootstrap.servers, cluster.id and cluster.node");
  auto conf =
      clientConf(options_, /*consumer=*/true,
                 {{"client.id", "firehub-" + options_.node + "-replica"},
                  // Partitions are assigned, never subscribed: the group id only names the reader
                  // (it never joins, nothing is committed to Kafka).
                  {"group.id", "firehub." + options_.cluster_id + ".replica." + options_.node},
                  {"enable.auto.commit", "false"},  // offsets live in the lake, with the records
                  {"enable.auto.offset.store", "false"},
                  {"auto.offset.reset", "earliest"},
                  {"fetch.wait.max.ms", "50"},  // a record on its way to every node within moments
                  {"topic.metadata.refresh.interval.ms", "5000"},
                  {"reconnect.backoff.max.ms", "2000"}});
  if (!conf.isOk()) return conf.status();
  char err[512];
  consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf.value(), err, sizeof err);
  if (!consumer_) return Status::unavailable(std::string("replica consumer: ") + err);
  rd_kafka_poll_set_consumer(consumer_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.running = true;
  }
  thread_ = std::thread([this] { run(); });
  FIREHUB_LOG(kInfo, "cluster",
              "replica of cluster " << options_.cluster_id << " on node " << options_.node
                                    << ": reading the domain topics into the lake");
  return Status::ok();
}

void Replica::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) {
    rd_kafka_consumer_close(consumer_);
    rd_kafka_destroy(consumer_);
    consumer_ = nullptr;
  }
  std::lock_guard<std::mutex> lock(mu_);
  state_.running = false;
}

// Every partition of every domain topic, each from the offset this lake stored with the last
// records it applied: a node reads all of them (no consumer group: nothing to balance), and
// picks up topics and partitions as they appear.
Status Replica::assignNew() {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(consumer_, 1, nullptr, &md, 5000);
  if (e) return Status::unavailable(std::string("cluster metadata: ") + rd_kafka_err2str(e));
  std::set<std::string> wanted = {configTopic(options_.cluster_id)};
  for (const auto& d : options_.domains) wanted.insert("firehub.v1." + d);
  std::lock_guard<std::mutex> lock(mu_);
  bool added = false;
  for (int t = 0; t < md->topic_cnt; ++t) {
    const auto& topic = md->topics[t];
    if (!wanted.count(topic.topic) || topic.err) continue;
    for (int p = 0; p < topic.partition_cnt; ++p) {
      const auto key = std::make_pair(std::string(topic.topic), topic.partitions[p].id);
      if (next_.count(key)) continue;
      auto stored = lake_.getMeta(offsetKey(key.first, key.second));
      next_[key] = stored.isOk() && stored.value() ? std::stoll(*stored.value()) : 0;
      added = true;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (!added) return Status::ok();
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(next_.size()));
  for (const auto& [tp, offset] : next_) {
    rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset =
        offset > 0 ? offset : RD_KAFKA_OFFSET_BEGINNING;
  }
  e = rd_kafka_assign(consumer_, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (e) return Status::unavailable(std::string("replica assign: ") + rd_kafka_err2str(e));
  state_.assigned = true;
  return Status::ok();
}

void Replica::run() {
  int64_t last_lag_check = 0, last_metadata = 0;
  while (!stop_) {
    Status s = Status::ok();
    if (nowMs() - last_metadata >= 2000 || next_.empty()) {
      last_metadata = nowMs();
      s = assignNew();
    }
    if (s.isOk()) s = step(200);
    if (!s.isOk()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.last_error = s.message();
      }
      FIREHUB_LOG(kError, "cluster", "replica: " << s.message() << "; retrying in 1 s");
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (nowMs() - last_lag_check >= 1000) {
      last_lag_check = nowMs();
      // The lag: what each partition holds past what this lake applied (watermarks as the
      // consumer last fetched them; no extra request).
      std::vector<PartitionLag> parts;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [tp, next] : next_) parts.push_back({tp.first, tp.second, next, -1});
      }
      int64_t lag = 0;
      for (auto& p : parts) {
        int64_t low = 0, high = 0;
        if (rd_kafka_get_watermark_offsets(consumer_, p.topic.c_str(), p.partition, &low, &high) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            high >= 0) {
          p.high_watermark = high;
        }
        lag += p.lag();
      }
      std::string heartbeat;
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.partitions = std::move(parts);
        state_.lag_records = lag;
        int64_t newest = 0;
        for (const auto& [tp, ts] : newest_ts_) newest = std::max(newest, ts);
        state_.lag_seconds = lag > 0 && newest > 0 ? (nowMs() - newest) / 1000.0 : 0;
        // Every 5 s this node's state goes to the shared configuration ("nodes/<node>"), so
        // every node can show the whole cluster.
        if (nowMs() - last_heartbeat_ >= 5000) {
          last_heartbeat_ = nowMs();
          const std::string duties = duties_source_ ? duties_source_() : "{}";
          char text[1024];
          std::snprintf(text, sizeof text,
                        "{\"node\":\"%s\",\"http\":\"%s\",\"applied\":%llu,"
                        "\"lag_records\":%lld,\"lag_seconds\":%.3f,\"gap\":%s,\"at_ms\":%lld,"
                        "\"duties\":%s}",
                        options_.node.c_str(), advertised_.c_str(),
                        static_cast<unsigned long long>(state_.applied),
                        static_cast<long long>(state_.lag_records), state_.lag_seconds,
                        state_.gap.empty() ? "false" : "true", static_cast<long long>(nowMs()),
                        duties.c_str());
          heartbeat = text;
        }
      }
      if (!heartbeat.empty()) (void)lake_.putMeta(nodeKey(options_.node), heartbeat);
    }
  }
}

std::string Replica::nodeKey(const std::string& node) { return "nodes/" + node; }

bool Replica::isStaleWrite(const std::string& key, const std::string& value) const {
  if (key.rfind(lake::kSubscriptionCursorPrefix, 0) != 0) return false;
  auto stored = lake_.getMeta(key);
  if (!stored.isOk() || !stored.value()) return false;
  const auto mine = std::make_pair(writtenEpoch(*stored.value()), writtenSeq(*stored.value()));
  return mine > std::make_pair(writtenEpoch(value), writtenSeq(value));
}

void Replica::setDutiesSource(std::function<std::string()> source) {
  std::lock_guard<std::mutex> lock(mu_);
  duties_source_ = std::move(source);
}

void Replica::heartbeatSoon() {
  std::lock_guard<std::mutex> lock(mu_);
  last_heartbeat_ = 0;
}

void Replica::setAdvertised(const std::string& http_address) {
  std::lock_guard<std::mutex> lock(mu_);
  advertised_ = http_address;
}

// Long: read a batch, turn each message into a record or a dead letter, one commit with the
// offsets, then the bookkeeping.
Status Replica::step(int wait_ms) {
  std::vector<lake::StoreItem> items;
  std::vector<firehub::v1::DeadLetter> refused;
  std::map<std::pair<std::string, int>, int64_t> next;  // offsets this batch moves to
  std::map<std::pair<std::string, int>, int64_t> newest;
  const std::string config_topic = configTopic(options_.cluster_id);
  std::vector<std::string> config_keys;
  std::vector<std::string> positions;  // positionKey() of each item, in the items' order
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;  // a newer node's fields
  const int64_t deadline = nowMs() + 50;
  while (items.size() + refused.size() < options_.batch && !stop_) {
    const int wait = items.empty() && refused.empty()
                         ? wait_ms
                         : static_cast<int>(std::max<int64_t>(0, deadline - nowMs()));
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, wait);
    if (!m) break;
    struct Free {
      rd_kafka_message_t* m;
      ~Free() { rd_kafka_message_destroy(m); }
    } free_it{m};
    if (m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;  // not written yet
      std::lock_guard<std::mutex> lock(mu_);
      state_.last_error = rd_kafka_message_errstr(m);
      continue;
    }
    const std::string topic = rd_kafka_topic_name(m->rkt);
    {
      // An offset past the one this lake expects: Kafka no longer holds what lies between (its
      // retention dropped it before this node read it). The lake is missing those records: say
      // so, and stay not ready, instead of serving a partial lake as the whole.
      auto at = next.find({topic, m->partition});
      int64_t expected = at != next.end() ? at->second : -1;
      if (expected < 0) {
        std::lock_guard<std::mutex> lock(mu_);
        auto known = next_.find({topic, m->partition});
        expected = known != next_.end() ? known->second : -1;
      }
      if (expected >= 0 && m->offset > expected) {
        std::lock_guard<std::mutex> lock(mu_);
        state_.gap = topic + "/" + std::to_string(m->partition) + ": offsets " +
                     std::to_string(expected) + ".." + std::to_string(m->offset - 1) +
                     " were gone from Kafka (retention) before this node applied them";
        FIREHUB_LOG(kError, "cluster",
                    "replica gap on " << state_.gap
                                      << "; stop this node and rebuild its lake from a peer "
                                         "(firehub cluster rebuild --from http://PEER:PORT)");
      }
    }
    next[{topic, m->partition}] = m->offset + 1;
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (ts > 0) newest[{topic, m->partition}] = ts;
    if (topic == config_topic) {
      // A change of the shared configuration: applied to the meta now (idempotent: a restart
      // before the batch's offsets are stored applies it again), reloaded after the commit.
      std::string key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
      if (!isSharedConfig(key)) continue;
      std::string value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
      if (m->payload && isStaleWrite(key, value)) continue;  // a former duty holder's, late
      FIREHUB_RETURN_IF_ERROR(lake_.applyReplicatedMeta(key, m->payload ? &value : nullptr));
      config_keys.push_back(std::move(key));
      continue;
    }
    if (!m->payload || m->len == 0) continue;  // a tombstone: nothing to apply
    lake::StoreItem item;
    const std::string_view value(static_cast<const char*>(m->payload), m->len);
    // The stored bytes when the origin sent them (the "record" header), else the JSON.
    rd_kafka_headers_t* headers = nullptr;
    const void* bytes = nullptr;
    size_t size = 0;
    if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(headers, "record", &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        bytes && item.record().ParseFromArray(bytes, static_cast<int>(size))) {
      positions.push_back(lake::positionKey(topic, m->partition, m->offset));
      items.push_back(std::move(item));
      continue;
    }
    item.record().Clear();
    auto parsed = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(value.data(), value.size()), &item.record(), parse);
    if (!parsed.ok() || item.record().id().empty() || item.record().entity_id().empty()) {
      firehub::v1::DeadLetter dl;
      dl.set_feed_id(item.record().feed_id());
      dl.set_agency(item.record().agency());
      dl.set_stage("replicate");
      dl.set_reason("message " + topic + "/" + std::to_string(m->partition) + "@" +
                    std::to_string(m->offset) + " is not a record of the shared schema: " +
                    (parsed.ok() ? std::string("no id or entity") : std::string(parsed.message())));
      dl.set_raw(std::string(value.substr(0, 1 << 20)));
      dl.set_content_type("application/json");
      dl.mutable_at()->set_seconds(nowMs() / 1000);
      refused.push_back(std::move(dl));
      continue;
    }
    firehub::v1::roundToKeptPrecision(item.record());  // as the origin stored it
    positions.push_back(lake::positionKey(topic, m->partition, m->offset));
    items.push_back(std::move(item));
  }
  if (next.empty()) return Status::ok();
  // Dead letters are kept with the lake's own dead letters (and published on firehub.v1.dlq by
  // this node's publisher).
  auto committed = lake_.commit(
      items, refused,
      [&](const lake::CommitResult&, std::vector<std::pair<std::string, std::string>>& meta) {
        for (const auto& [tp, offset] : next)
          meta.emplace_back(offsetKey(tp.first, tp.second), std::to_string(offset));
        // Where each record sits in Kafka (stored or a duplicate: this node's own come back
        // here too), for what reads the topics' order from the lake (cluster subscriptions).
        for (size_t i = 0; i < items.size(); ++i)
          meta.emplace_back(positions[i], items[i].record().id());
      },
      {}, /*sync=*/false);
  if (!committed.isOk()) {
    // Nothing of the batch was written: read it again from the stored offsets.
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [tp, offset] : next) {
      (void)offset;
      auto stored = lake_.getMeta(offsetKey(tp.first, tp.second));
      int64_t from = stored.isOk() && stored.value() ? std::stoll(*stored.value()) : 0;
      rd_kafka_topic_partition_list_t* seek = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(seek, tp.first.c_str(), tp.second)->offset = from;
      rd_kafka_error_t* e = rd_kafka_seek_partitions(consumer_, seek, 2000);
      if (e) rd_kafka_error_destroy(e);
      rd_kafka_topic_partition_list_destroy(seek);
    }
    return committed.status();
  }
  for (const auto& key : config_keys) {
    if (options_.on_config) options_.on_config(key);
  }
  std::lock_guard<std::mutex> lock(mu_);
  state_.config_applied += config_keys.size();
  for (const auto& [tp, offset] : next) {
    if (next_.count(tp)) next_[tp] = offset;
  }
  for (const auto& [tp, ts] : newest) newest_ts_[tp] = ts;
  state_.applied += committed->stored;
  state_.duplicates += committed->duplicates;
  state_.refused += refused.size();
  if (committed->stored > 0) state_.last_applied_ms = nowMs();
  state_.last_error.clear();
  return Status::ok();
}

ReplicaState Replica::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

}  // namespace firehub::cluster
