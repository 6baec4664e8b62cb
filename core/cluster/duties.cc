// The singleton duties: held by the member of the duties consumer group that is assigned the
// duty's partition, with an epoch from the holder's claim on that partition.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "firehub/cluster.h"
#include "firehub/log.h"
#include "internal.h"

namespace firehub::cluster {
namespace {

struct ClaimReport {
  bool done = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int64_t offset = -1;
};

void claimDelivered(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* report = static_cast<ClaimReport*>(m->_private);
  if (!report) return;
  report->done = true;
  report->err = m->err;
  report->offset = m->offset;
}

}  // namespace

const char* dutyName(Duty duty) {
  switch (duty) {
    case Duty::kLayers:
      return "layers";
    case Duty::kSubscriptions:
      return "subscriptions";
    case Duty::kFileDrops:
      return "file_drops";
  }
  return "unknown";
}

std::string dutiesJson(const DutyGroup& group) {
  std::ostringstream out;
  out << '{';
  bool first = true;
  for (const auto& d : group.state()) {
    if (!d.current) continue;
    out << (first ? "" : ",") << '"' << dutyName(d.duty) << "\":{\"epoch\":" << d.epoch
        << ",\"since_ms\":" << d.since_ms << '}';
    first = false;
  }
  out << '}';
  return out.str();
}

std::string dutiesTopic(const std::string& cluster_id) {
  return "firehub.cluster." + cluster_id + ".duties";
}

DutyGroup::DutyGroup(ReplicaOptions options, int session_timeout_ms)
    : options_(std::move(options)), session_timeout_ms_(session_timeout_ms), lease_ms_(1000) {}

DutyGroup::~DutyGroup() { stop(); }

void DutyGroup::setListener(std::function<void(Duty, uint64_t)> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(listener);
}

// Group events reach the node through this, on its own thread (inside consumer_poll) and in
// consumer_close().
struct DutyGroup::RebalanceHook {
  std::function<void(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*)> fn;
};
namespace {
void rebalanceThunk(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                    rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<DutyGroup::RebalanceHook*>(opaque)->fn(rk, err, partitions);
}
}  // namespace

Status DutyGroup::start() {
  const std::string topic = dutiesTopic(options_.cluster_id);
  auto producer_conf = clientConf(options_, /*consumer=*/false,
                                  {{"client.id", "firehub-" + options_.node + "-duties"},
                                   {"enable.idempotence", "true"},
                                   {"acks", "all"},
                                   {"linger.ms", "0"},
                                   {"message.timeout.ms", "5000"}});
  if (!producer_conf.isOk()) return producer_conf.status();
  rd_kafka_conf_set_dr_msg_cb(producer_conf.value(), claimDelivered);
  char err[512];
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, producer_conf.value(), err, sizeof err);
  if (!producer_) return Status::unavailable(std::string("duties producer: ") + err);
  auto conf =
      clientConf(options_, /*consumer=*/true,
                 {{"client.id", "firehub-" + options_.node + "-duties"},
                  {"group.id", "firehub." + options_.cluster_id + ".duties"},
                  // Eager: librdkafka 2.0 (Debian 12) can abort in its cooperative-sticky assignor.
                  {"partition.assignment.strategy", "roundrobin"},
                  {"session.timeout.ms", std::to_string(session_timeout_ms_)},
                  {"heartbeat.interval.ms", std::to_string(session_timeout_ms_ / 12)},
                  {"enable.auto.commit", "false"},
                  {"auto.offset.reset", "latest"},
                  {"topic.metadata.refresh.interval.ms", "5000"},
                  {"reconnect.backoff.max.ms", "1000"}});
  if (!conf.isOk()) return conf.status();
  hook_ = std::make_unique<RebalanceHook>();
  hook_->fn = [this](rd_kafka_t* rk, rd_kafka_resp_err_t e,
                     rd_kafka_topic_partition_list_t* parts) {
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        rd_kafka_error_t* error = rd_kafka_incremental_assign(rk, parts);
        if (error) rd_kafka_error_destroy(error);
      } else {
        rd_kafka_assign(rk, parts);
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < parts->cnt; ++i) assigned_.emplace(parts->elems[i].partition, 0);
      return;
    }
    const bool lost = rd_kafka_assignment_lost(rk);
    for (int i = 0; i < parts->cnt; ++i)
      lose(parts->elems[i].partition, lost ? "lost (the group dropped this node)" : "revoked");
    if (cooperative) {
      rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk, parts);
      if (error) rd_kafka_error_destroy(error);
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  };
  rd_kafka_conf_set_opaque(conf.value(), hook_.get());
  rd_kafka_conf_set_rebalance_cb(conf.value(), rebalanceThunk);
  consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf.value(), err, sizeof err);
  if (!consumer_) return Status::unavailable(std::string("duties consumer: ") + err);
  rd_kafka_poll_set_consumer(consumer_);
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

// The duties topic (with a partition per duty where the cluster lets clients create topics,
// else the brokers' default count: duties share partitions when there are fewer), its partition
// count, then the group. On the group's thread: a start does not wait for Kafka.
bool DutyGroup::join() {
  const std::string topic = dutiesTopic(options_.cluster_id);
  {
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), kDutyCount, -1, nullptr, 0);
    rd_kafka_queue_t* q = rd_kafka_queue_new(producer_);
    rd_kafka_CreateTopics(producer_, &nt, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 2000);
    if (ev) rd_kafka_event_destroy(ev);  // exists already, or not supported: either is fine
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
  }
  // Asking a producer for the topic's metadata creates it where brokers create topics on first
  // use.
  int partitions = 0;
  while (partitions == 0 && !stop_) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(producer_, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(producer_, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        partitions = md->topics[0].partition_cnt;
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    if (partitions == 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (partitions == 0) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    partitions_ = partitions;
  }
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    FIREHUB_LOG(kError, "cluster", "duties: cannot join the group: " << rd_kafka_err2str(e));
    return false;
  }
  FIREHUB_LOG(kInfo, "cluster",
              "duties: node " << options_.node << " joined group firehub." << options_.cluster_id
                              << ".duties (" << partitions << " partitions of " << topic << ")");
  return true;
}

void DutyGroup::stop() {
  if (!consumer_) return;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  // Leaving the group hands the duties on at once (not after the session timeout).
  rd_kafka_consumer_close(consumer_);
  rd_kafka_destroy(consumer_);
  consumer_ = nullptr;
  if (producer_) {
    rd_kafka_destroy(producer_);
    producer_ = nullptr;
  }
}

void DutyGroup::lose(int partition, const char* why) {
  std::function<void(Duty, uint64_t)> listener;
  std::vector<Duty> lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = assigned_.find(partition);
    if (it == assigned_.end()) return;
    if (it->second > 0) {
      for (int d = 0; d < kDutyCount; ++d)
        if (d % partitions_ == partition) lost.push_back(static_cast<Duty>(d));
    }
    assigned_.erase(it);
    claimed_at_.erase(partition);
    listener = listener_;
  }
  for (Duty d : lost) {
    FIREHUB_LOG(kWarning, "cluster", "duty " << dutyName(d) << " " << why);
    if (listener) listener(d, 0);
  }
}

void DutyGroup::claim(int partition) {
  const std::string topic = dutiesTopic(options_.cluster_id);
  char value[256];
  std::snprintf(value, sizeof value, "{\"node\":\"%s\",\"at_ms\":%lld}", options_.node.c_str(),
                static_cast<long long>(nowMs()));
  ClaimReport report;
  rd_kafka_resp_err_t e = rd_kafka_producev(
      producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_KEY(options_.node.data(), options_.node.size()),
      RD_KAFKA_V_VALUE(value, std::strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(&report), RD_KAFKA_V_END);
  if (e) return;  // tried again on the next turn
  for (int i = 0; i < 60 && !report.done && !stop_; ++i) rd_kafka_poll(producer_, 100);
  if (!report.done) {  // the report still comes: wait for it, it points at `report`
    rd_kafka_flush(producer_, 10000);
    if (!report.done) rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_, 0);
  }
  if (!report.done || report.err || report.offset < 0) return;
  std::vector<Duty> taken;
  std::function<void(Duty, uint64_t)> listener;
  const uint64_t epoch = static_cast<uint64_t>(report.offset) + 1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = assigned_.find(partition);
    if (it == assigned_.end()) return;  // revoked meanwhile
    it->second = epoch;
    claimed_at_[partition] = nowMs();
    for (int d = 0; d < kDutyCount; ++d)
      if (d % partitions_ == partition) taken.push_back(static_cast<Duty>(d));
    listener = listener_;
  }
  for (Duty d : taken) {
    FIREHUB_LOG(
        kInfo, "cluster",
        "duty " << dutyName(d) << " taken by node " << options_.node << ", epoch " << epoch);
    if (listener) listener(d, epoch);
  }
}

void DutyGroup::run() {
  log::nameThread("fh-duties");
  if (!join()) return;
  int64_t last_turn = nowMs();
  while (!stop_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, 100);
    const int64_t now = nowMs();
    {
      // The lease: this thread turns at least every few hundred ms. A longer gap means the
      // process stood still (paused, swapped out): the group may have moved its duties meanwhile,
      // so they count as not held until librdkafka's heartbeats had the time to say (three
      // heartbeat intervals).
      std::lock_guard<std::mutex> lock(mu_);
      if (now - last_turn > lease_ms_) {
        held_from_ms_ = now + 3 * (session_timeout_ms_ / 12) + 500;
        FIREHUB_LOG(kWarning, "cluster",
                    "duties: this process stood still for " << now - last_turn
                                                            << " ms; duties wait for the group");
      }
      lease_ok_ms_ = now;
      last_turn = now;
    }
    if (m) {
      // Another node's claim on a partition this node thinks it holds: this node was dropped
      // without hearing of it yet. The later claim wins.
      if (!m->err && m->key && m->key_len > 0) {
        std::string node(static_cast<const char*>(m->key), m->key_len);
        bool stale = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = assigned_.find(m->partition);
          stale = node != options_.node && it != assigned_.end() && it->second > 0 &&
                  static_cast<uint64_t>(m->offset) + 1 > it->second;
        }
        if (stale) lose(m->partition, ("claimed since by node " + node).c_str());
      }
      rd_kafka_message_destroy(m);
    }
    std::vector<int> unclaimed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [p, epoch] : assigned_) {
        if (epoch == 0) unclaimed.push_back(p);
      }
    }
    for (int p : unclaimed) claim(p);
    if (!unclaimed.empty()) {  // a claim waits for Kafka's answer: this thread's own time
      std::lock_guard<std::mutex> lock(mu_);
      last_turn = lease_ok_ms_ = nowMs();
    }
  }
}

bool DutyGroup::leaseCurrent(int64_t now) const {
  return now - lease_ok_ms_ <= lease_ms_ && now >= held_from_ms_;
}

uint64_t DutyGroup::epoch(Duty duty) const {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = nowMs();
  if (partitions_ == 0 || !leaseCurrent(now)) return 0;
  auto it = assigned_.find(static_cast<int>(duty) % partitions_);
  return it == assigned_.end() ? 0 : it->second;
}

std::vector<DutyState> DutyGroup::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DutyState> out;
  const int64_t now = nowMs();
  const bool lease = leaseCurrent(now);
  for (int d = 0; d < kDutyCount; ++d) {
    DutyState s;
    s.duty = static_cast<Duty>(d);
    if (partitions_ > 0) {
      s.partition = d % partitions_;
      auto it = assigned_.find(s.partition);
      if (it != assigned_.end()) {
        s.epoch = it->second;
        auto at = claimed_at_.find(s.partition);
        s.since_ms = at != claimed_at_.end() ? at->second : 0;
        s.current = s.epoch > 0 && lease;
      }
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace firehub::cluster
