#include <librdkafka/rdkafka.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <random>

#include "firehub/bus.h"
#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/v1/layer.pb.h"

namespace firehub::bus {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void deliveryCallback(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* publisher = static_cast<Publisher*>(opaque);
  auto sequence = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private));
  publisher->onDelivery(sequence, msg->err, msg->err ? rd_kafka_err2str(msg->err) : nullptr);
}

void errorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<Publisher*>(opaque)->onError(err, reason);
}

}  // namespace

std::map<std::string, std::string> deliveryProperties() {
  // linger.ms: at 100,000 messages/s a 5 ms linger makes batches of ~80 messages per partition,
  // and librdkafka's work per batch (requests, wake-ups, compression frames) dominates: a producer
  // alone spent 4.0-4.6 µs of CPU per message with 5 ms and 2.6-2.8 with 25 ms
  // (docs/benchmarks.md). The price: a consumer waits up to 20 ms longer, and a crash leaves more
  // sent messages to be sent again. kafka.linger.ms lowers it.
  return {{"enable.idempotence", "true"},
          {"acks", "all"},
          {"linger.ms", "20"},
          {"compression.codec", "lz4"},
          {"partitioner", "murmur2_random"}};  // same key -> same partition as Java clients
}

Publisher::Publisher(lake::Lake& lake, Metrics& metrics, PublisherOptions options)
    : lake_(lake), metrics_(metrics), options_(std::move(options)) {}

Publisher::~Publisher() { stop(0); }

Status Publisher::buildProducer() {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Status::invalidArgument("kafka." + k + ": " + err);
    }
    return Status::ok();
  };
  std::map<std::string, std::string> props = deliveryProperties();
  props["bootstrap.servers"] = options_.bootstrap_servers;
  props["queue.buffering.max.messages"] = std::to_string(options_.max_in_flight + 1000);
  props["client.id"] = "firehub";
  for (const auto& [k, v] : options_.properties) props[k] = v;
  for (const auto& [k, v] : props) {
    Status s = set(k, v);
    if (!s.isOk()) {
      rd_kafka_conf_destroy(conf);
      return s;
    }
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback);
  rd_kafka_conf_set_error_cb(conf, errorCallback);
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!producer_) {
    rd_kafka_conf_destroy(conf);
    return Status::invalidArgument(std::string("kafka producer: ") + err);
  }
  return Status::ok();
}

void Publisher::destroyProducer() {
  if (!producer_) return;
  // Undelivered messages are purged: they are still in the outbox and are sent again.
  rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(producer_, 0);
  rd_kafka_destroy(producer_);
  producer_ = nullptr;
  in_flight_.clear();
}

Status Publisher::start() {
  FIREHUB_RETURN_IF_ERROR(buildProducer());
  cursor_ = lake_.firstOutboxSequence().value_or(0);
  deleted_below_ = cursor_;
  stop_ = false;
  thread_ = std::thread([this] {
    log::nameThread("fh-publisher");
    run();
  });
  return Status::ok();
}

void Publisher::notify() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    pending_wake_ = true;
  }
  wake_.notify_one();
}

void Publisher::stop(int drain_timeout_ms) {
  if (!thread_.joinable()) return;
  if (drain_timeout_ms > 0) {
    draining_ = true;
    int64_t deadline = nowMs() + drain_timeout_ms;
    while (lake_.outboxDepth() > 0 && nowMs() < deadline) {
      notify();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (lake_.outboxDepth() > 0) {
      const std::string why = lastError();
      FIREHUB_LOG(kWarning, "bus",
                  lake_.outboxDepth() << " message(s) not delivered before shutdown; they stay "
                                         "in the outbox and are sent on the next start"
                                      << (why.empty() ? "" : " (last error: " + why + ")"));
    }
  }
  stop_ = true;
  notify();
  thread_.join();
  destroyProducer();
}

double Publisher::threadCpuSeconds() {
  if (!thread_.joinable()) return 0;
  clockid_t clock;
  timespec t{};
  if (pthread_getcpuclockid(thread_.native_handle(), &clock) != 0 || clock_gettime(clock, &t) != 0)
    return 0;
  return t.tv_sec + t.tv_nsec / 1e9;
}

std::string Publisher::lastError() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_error_;
}

void Publisher::onDelivery(uint64_t sequence, int error, const char* reason) {
  if (sequence & kReplayBit) {  // a kept entry sent at a takeover: not in the outbox any more
    auto it = replaying_.find(sequence & ~kReplayBit);
    if (it == replaying_.end()) return;
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR)  // kept again, sent again on the next turn
      held_.emplace(it->first, std::make_pair(nowMs(), it->second));
    replaying_.erase(it);
    return;
  }
  in_flight_.erase(sequence);
  if (error == RD_KAFKA_RESP_ERR_NO_ERROR) {
    waiting_.insert(sequence);
    ++delivered_;
    metrics_.countDelivered(1);
    backoff_ms_ = 0;
    healthy_ = true;
    return;
  }
  ++failed_;
  metrics_.countDeliveryFailed(1);
  if (sequence < cursor_) cursor_ = sequence;  // send it again from the outbox
  backoff_ms_ = backoff_ms_ == 0 ? 100 : std::min(backoff_ms_ * 2, options_.max_backoff_ms);
  static thread_local std::mt19937 rng{std::random_device{}()};
  retry_at_ms_ =
      nowMs() + backoff_ms_ / 2 + std::uniform_int_distribution<int>(0, backoff_ms_ / 2)(rng);
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = std::string("delivery failed: ") + (reason ? reason : "unknown");
}

void Publisher::onError(int error, const char* reason) {
  std::string text = std::string(rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(error))) + ": " +
                     (reason ? reason : "");
  if (error == RD_KAFKA_RESP_ERR__FATAL) {
    fatal_ = true;
  }
  if (error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || error == RD_KAFKA_RESP_ERR__FATAL ||
      error == RD_KAFKA_RESP_ERR__AUTHENTICATION || error == RD_KAFKA_RESP_ERR__RESOLVE) {
    healthy_ = false;
  }
  FIREHUB_LOG(kWarning, "bus", "kafka: " << text);
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = text;
}

Status Publisher::injectFatalError(const std::string& reason) {
  std::lock_guard<std::mutex> lock(producer_mu_);
  if (!producer_) return Status::failedPrecondition("publisher is not running");
  auto err = rd_kafka_test_fatal_error(producer_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                       reason.c_str());
  if (err) return Status::internal(std::string("cannot inject: ") + rd_kafka_err2str(err));
  return Status::ok();
}

void Publisher::flushDeletes() {
  if (waiting_.empty()) return;
  // Delivery reports come back per partition, so the delivered sequences interleave with those
  // still in flight. Everything below the lowest sequence not yet delivered goes in one range;
  // the rest waits for the next call (unless many wait: then they go one by one).
  uint64_t done_below = cursor_;
  if (!in_flight_.empty()) done_below = std::min(done_below, *in_flight_.begin());
  const auto below = waiting_.lower_bound(done_below);
  Status s = Status::ok();
  if (below != waiting_.begin()) {
    // Sequences below deleted_below_ were delivered again after a rewind: already removed.
    const auto entries =
        static_cast<uint64_t>(std::distance(waiting_.lower_bound(deleted_below_), below));
    s = lake_.deleteOutboxBelow(deleted_below_, std::max(deleted_below_, done_below), entries);
    if (s.isOk()) {
      deleted_below_ = std::max(deleted_below_, done_below);
      waiting_.erase(waiting_.begin(), below);
    }
  }
  constexpr size_t kMaxWaiting = 100000;
  if (s.isOk() && waiting_.size() > kMaxWaiting) {
    s = lake_.deleteOutbox(std::vector<uint64_t>(waiting_.begin(), waiting_.end()));
    if (s.isOk()) waiting_.clear();
  }
  if (!s.isOk()) {
    // The entries stay: a later range removes them, or the next start delivers them again
    // (duplicates, never loss). Past the cap they are forgotten here; the depth then counts them
    // until the next start.
    FIREHUB_LOG(kError, "bus", "cannot delete delivered outbox entries: " << s.toString());
    if (waiting_.size() > kMaxWaiting) waiting_.clear();
  }
  metrics_.setOutboxDepth(static_cast<double>(lake_.outboxDepth()));
}

int Publisher::produceDeadLetter(const lake::OutboxEntry& e) {
  uint64_t dl_seq =
      std::strtoull(e.record_id.c_str() + std::strlen(lake::kDeadLetterRefPrefix), nullptr, 10);
  auto stored = lake_.getDeadLetter(dl_seq);
  if (!stored.isOk()) {
    FIREHUB_LOG(kError, "bus",
                "cannot read dead letter " << dl_seq << ": " << stored.status().toString());
    return RD_KAFKA_RESP_ERR__STATE;
  }
  if (!stored.value()) return RD_KAFKA_RESP_ERR__NOENT;  // replayed or discarded before it was sent
  firehub::v1::DeadLetter dl = std::move(*stored.value());
  if (dl.restricted()) {  // the topic is read outside the hub's grants: no restricted bytes on it
    dl.clear_raw();
    dl.clear_replay_prefix();
  }
  std::string value = messageToJson(dl);
  std::string sequence = std::to_string(dl_seq);
  if (known_topics_.insert(e.topic).second && options_.ensure_topic) options_.ensure_topic(e.topic);
  return rd_kafka_producev(
      producer_, RD_KAFKA_V_TOPIC(e.topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
      RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADER("feed", dl.feed_id().data(), static_cast<ssize_t>(dl.feed_id().size())),
      RD_KAFKA_V_HEADER("agency", dl.agency().data(), static_cast<ssize_t>(dl.agency().size())),
      RD_KAFKA_V_HEADER("stage", dl.stage().data(), static_cast<ssize_t>(dl.stage().size())),
      RD_KAFKA_V_HEADER("dead-letter", sequence.data(), static_cast<ssize_t>(sequence.size())),
      RD_KAFKA_V_HEADER("schema", "firehub.v1.DeadLetter", -1),
      RD_KAFKA_V_HEADER("content-type", "application/json", -1),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(e.sequence))),
      RD_KAFKA_V_END);
}

int Publisher::produceDerivedEntry(const lake::OutboxEntry& e, uint64_t epoch) {
  if (e.record_id.rfind(lake::kDeadLetterRefPrefix, 0) == 0) return produceDeadLetter(e);
  std::string layer_key = e.record_id.substr(std::strlen(lake::kLayerRefPrefix));
  auto stored = lake_.getLayer(layer_key);
  if (!stored.isOk()) {
    FIREHUB_LOG(kError, "bus",
                "cannot read layer entry " << layer_key << ": " << stored.status().toString());
    return RD_KAFKA_RESP_ERR__STATE;
  }
  // The entry's current value; a deleted entry is published as a tombstone (null value), so a
  // compacted topic forgets the key.
  std::string value;
  std::string schema;
  const char* content_type = "application/json";
  bool tombstone = !stored.value();
  if (!tombstone) {
    firehub::v1::LayerEntry entry;
    if (!entry.ParseFromString(*stored.value())) {
      FIREHUB_LOG(kError, "bus",
                  "layer entry " << layer_key << " does not parse; sent as a tombstone");
      tombstone = true;
    } else if (entry.has_warning()) {
      value = entry.warning().cap_xml();
      schema = "urn:oasis:names:tc:emergency:cap:1.2";
      content_type = "application/cap+xml";
    } else {
      value = messageToJson(entry.risk_cell());
      schema = entry.risk_cell().GetDescriptor()->full_name();
    }
  }
  if (known_topics_.insert(e.topic).second && options_.ensure_topic) options_.ensure_topic(e.topic);
  // Cluster mode: the layers duty's epoch, so a reader can drop what a former holder sent late.
  const std::string epoch_text = epoch > 0 ? std::to_string(epoch) : "";
  return rd_kafka_producev(
      producer_, RD_KAFKA_V_TOPIC(e.topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
      RD_KAFKA_V_VALUE(tombstone ? nullptr : value.data(), tombstone ? 0 : value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADER("schema", schema.data(), static_cast<ssize_t>(schema.size())),
      RD_KAFKA_V_HEADER("content-type", content_type, -1),
      RD_KAFKA_V_HEADER("layer-key", layer_key.data(), static_cast<ssize_t>(layer_key.size())),
      RD_KAFKA_V_HEADER("epoch", epoch_text.data(), static_cast<ssize_t>(epoch_text.size())),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(e.sequence))),
      RD_KAFKA_V_END);
}

void Publisher::handleHeld(uint64_t epoch) {
  const int64_t now = nowMs();
  if (epoch == 0) {  // still another node's: forget what it has surely sent by now
    while (!held_.empty() && now - held_.begin()->second.first > options_.held_ms)
      held_.erase(held_.begin());
    return;
  }
  if (held_.empty()) return;
  // The duty came here: what a former holder may not have sent goes out now (a cell's current
  // value again is harmless; the map and readers keep the last one per key). A CAP message is
  // sent once: those already on their topic since the oldest kept entry are not sent again.
  std::map<std::string, std::set<std::string>> on_topic;
  for (const auto& topic : options_.once_topics) {
    auto seen = headerValuesSince(options_, topic, "layer-key",
                                  held_.begin()->second.first - options_.held_ms, 10000);
    if (!seen.isOk()) {  // cannot tell what is there: try again on the next turn
      FIREHUB_LOG(kWarning, "bus", "layers duty taken, " << seen.status().message());
      retry_at_ms_ = now + 1000;
      return;
    }
    on_topic[topic] = std::move(seen).value();
  }
  FIREHUB_LOG(kInfo, "bus",
              "layers duty taken (epoch " << epoch << "): sending " << held_.size()
                                          << " derived entries of the last "
                                          << options_.held_ms / 1000 << " s");
  while (!held_.empty()) {
    const auto& [sequence, kept] = *held_.begin();
    auto once = on_topic.find(kept.second.topic);
    if (once == on_topic.end() ||
        !once->second.count(kept.second.record_id.substr(std::strlen(lake::kLayerRefPrefix)))) {
      lake::OutboxEntry replay = kept.second;
      replay.sequence = sequence | kReplayBit;
      auto err = static_cast<rd_kafka_resp_err_t>(produceDerivedEntry(replay, epoch));
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR__STATE) break;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) replaying_.emplace(sequence, kept.second);
    }  // else the former holder sent it
    held_.erase(held_.begin());
  }
}

// Long: one pass over the log and the outbox that keeps both cursors and the in-flight window;
// split, its helpers would share all of them.
void Publisher::fill() {
  if (nowMs() < retry_at_ms_) return;
  if (in_flight_.size() >= options_.max_in_flight) return;
  std::vector<lake::OutboxEntry> entries;
  size_t room = options_.max_in_flight - in_flight_.size();
  Status s = lake_.readOutbox(cursor_, std::min<size_t>(room, 2000), entries);
  if (!s.isOk()) {
    FIREHUB_LOG(kError, "bus", "cannot read outbox: " << s.toString());
    retry_at_ms_ = nowMs() + 1000;
    return;
  }
  const uint64_t epoch = options_.layers_epoch ? options_.layers_epoch() : 0;
  if (options_.layers_epoch) handleHeld(epoch);
  for (const auto& e : entries) {
    // In flight, or delivered and waiting to be removed (read again after a rewind): not again.
    // Entries past any handed out before are neither (most entries: no lookups).
    if (e.sequence < sent_top_ && (in_flight_.count(e.sequence) || waiting_.count(e.sequence))) {
      cursor_ = e.sequence + 1;
      continue;
    }
    const bool layer = e.record_id.rfind(lake::kLayerRefPrefix, 0) == 0;
    if (layer && options_.layers_epoch && epoch == 0) {
      // Another node sends it: done here (the push acknowledgements wait on the outbox), kept
      // in memory in case the duty comes here before the holder sent it.
      held_.emplace(e.sequence, std::make_pair(nowMs(), e));
      if (held_.size() > kMaxHeld) {  // a burst (a full recompute): the oldest go, said once
        if (!held_overflow_)
          FIREHUB_LOG(kWarning, "bus",
                      "more than " << kMaxHeld << " layer entries kept for a takeover; the "
                                   << "oldest are dropped (a new holder resends fewer)");
        held_overflow_ = true;
        held_.erase(held_.begin());
      }
      waiting_.insert(e.sequence);
      sent_top_ = std::max(sent_top_, e.sequence + 1);
      cursor_ = e.sequence + 1;
      continue;
    }
    if (layer || e.record_id.rfind(lake::kDeadLetterRefPrefix, 0) == 0) {
      auto err = static_cast<rd_kafka_resp_err_t>(produceDerivedEntry(e, epoch));
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      if (err == RD_KAFKA_RESP_ERR__NOENT) {  // nothing left to send
        waiting_.insert(e.sequence);
        sent_top_ = std::max(sent_top_, e.sequence + 1);
        cursor_ = e.sequence + 1;
        continue;
      }
      if (err == RD_KAFKA_RESP_ERR__STATE) {  // the layer store could not be read: retry later
        retry_at_ms_ = nowMs() + 1000;
        break;
      }
      if (err) {
        FIREHUB_LOG(kError, "bus",
                    "produce to " << e.topic << " failed: " << rd_kafka_err2str(err));
        retry_at_ms_ = nowMs() + 1000;
        break;
      }
      in_flight_.insert(e.sequence);
      sent_top_ = std::max(sent_top_, e.sequence + 1);
      cursor_ = e.sequence + 1;
      continue;
    }
    // The record's bytes came with the entry when the cache held it; else they are read here.
    if (!e.cached) {
      auto found = lake_.readRecordBytes(e.record_id, bytes_);
      if (!found.isOk()) {  // the lake could not be read: the entry stays, try again later
        FIREHUB_LOG(kError, "bus",
                    "cannot read record " << e.record_id << ": " << found.status().toString());
        retry_at_ms_ = nowMs() + 1000;
        break;
      }
      if (!found.value()) {
        FIREHUB_LOG(kError, "bus",
                    "outbox entry " << e.sequence << " points at missing record " << e.record_id);
        waiting_.insert(e.sequence);
        sent_top_ = std::max(sent_top_, e.sequence + 1);
        cursor_ = e.sequence + 1;
        continue;
      }
    }
    const std::string& bytes = e.cached ? e.record_bytes : bytes_;
    // <domain>.public topics carry the redacted view: restricted fields removed.
    const bool redact =
        e.topic.size() > 7 && e.topic.compare(e.topic.size() - 7, 7, ".public") == 0;
    if (known_topics_.insert(e.topic).second && options_.ensure_topic)
      options_.ensure_topic(e.topic);
    std::string& value = json_;
    value.clear();
    // The JSON straight from the stored bytes; bytes it does not take are parsed instead.
    WireRecordFacts facts;
    if (!appendRecordJsonFromWire(value, bytes, redact, &facts)) {
      if (!record_.ParseFromString(bytes)) {
        FIREHUB_LOG(kError, "bus",
                    "record " << e.record_id << " does not parse; its outbox entry stays");
        retry_at_ms_ = nowMs() + 1000;
        break;
      }
      appendRecordJson(value, record_, redact);
      facts = recordFacts(record_);
    }
    static const std::string kNoSchema;
    const std::string& schema = facts.body ? facts.body->full_name() : kNoSchema;
    const char* classification = firehub::v1::Classification_Name(
                                     static_cast<firehub::v1::Classification>(facts.classification))
                                     .c_str();
    // The headers; in cluster mode also the stored bytes, for the other nodes' replicas (full
    // topics only). The message owns them once produced.
    rd_kafka_headers_t* headers = rd_kafka_headers_new(5);
    rd_kafka_header_add(headers, "feed", -1, facts.feed_id.data(),
                        static_cast<ssize_t>(facts.feed_id.size()));
    rd_kafka_header_add(headers, "agency", -1, facts.agency.data(),
                        static_cast<ssize_t>(facts.agency.size()));
    rd_kafka_header_add(headers, "schema", -1, schema.data(), static_cast<ssize_t>(schema.size()));
    rd_kafka_header_add(headers, "classification", -1, classification, -1);
    if (options_.record_header && !redact)
      rd_kafka_header_add(headers, "record", -1, bytes.data(), static_cast<ssize_t>(bytes.size()));
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(e.topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
        RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(e.sequence))),
        RD_KAFKA_V_END);
    if (err) rd_kafka_headers_destroy(headers);       // not produced: still ours
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) break;  // poll, then continue from here
    if (err) {
      FIREHUB_LOG(kError, "bus", "produce to " << e.topic << " failed: " << rd_kafka_err2str(err));
      retry_at_ms_ = nowMs() + 1000;
      break;
    }
    in_flight_.insert(e.sequence);
    sent_top_ = std::max(sent_top_, e.sequence + 1);
    cursor_ = e.sequence + 1;
  }
}

void Publisher::run() {
  while (!stop_) {
    if (fatal_) {
      FIREHUB_LOG(kError, "bus",
                  "fatal producer error (" << lastError()
                                           << "); rebuilding the producer and "
                                              "replaying the outbox");
      std::unique_lock<std::mutex> lock(producer_mu_);
      destroyProducer();
      Status s = buildProducer();
      lock.unlock();
      if (!s.isOk()) {
        FIREHUB_LOG(kError, "bus", "rebuild failed: " << s.toString());
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      fatal_ = false;
      ++rebuilds_;
      cursor_ = lake_.firstOutboxSequence().value_or(0);
    }
    fill();
    lake_.notePublished(cursor_);
    rd_kafka_poll(producer_, in_flight_.empty() ? 0 : 20);
    flushDeletes();
    if (!healthy_ && nowMs() >= next_probe_ms_) {
      // Readiness recovers when a broker answers again, even with nothing to deliver.
      next_probe_ms_ = nowMs() + 2000;
      const rd_kafka_metadata_t* md = nullptr;
      if (rd_kafka_metadata(producer_, 0, nullptr, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        healthy_ = true;
      }
    }
    if (in_flight_.empty()) {
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(draining_ ? 5 : 100),
                     [this] { return pending_wake_ || stop_.load(); });
      pending_wake_ = false;
    }
  }
  rd_kafka_flush(producer_, 2000);
  rd_kafka_poll(producer_, 0);
  flushDeletes();
}

}  // namespace firehub::bus
