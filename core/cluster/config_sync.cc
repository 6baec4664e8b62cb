// The shared configuration: this node's changes onto the cluster's configuration topic.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdlib>

#include "firehub/cluster.h"
#include "firehub/log.h"
#include "internal.h"

namespace firehub::cluster {
namespace {

void deliveryThunk(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* key = static_cast<std::string*>(m->_private);
  if (!key) return;
  static_cast<ConfigPublisher*>(opaque)->onDelivery(*key, m->err);
  delete key;
}

}  // namespace

bool isSharedConfig(const std::string& meta_key) {
  for (const auto& prefix : sharedConfigPrefixes()) {
    if (meta_key.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

uint64_t writtenEpoch(const std::string& value) {
  const auto at = value.find("\"epoch\":");
  if (at == std::string::npos) return 0;
  return std::strtoull(value.c_str() + at + 8, nullptr, 10);
}

uint64_t writtenSeq(const std::string& value) {
  const auto at = value.find("\"seq\":");
  if (at == std::string::npos) return 0;
  return std::strtoull(value.c_str() + at + 6, nullptr, 10);
}

std::string configTopic(const std::string& cluster_id) {
  return "firehub.cluster." + cluster_id + ".config";
}

ConfigPublisher::ConfigPublisher(ReplicaOptions options) : options_(std::move(options)) {}

ConfigPublisher::~ConfigPublisher() { stop(); }

Status ConfigPublisher::start() {
  auto made = clientConf(options_, /*consumer=*/false,
                         {{"client.id", "firehub-" + options_.node + "-config"},
                          {"enable.idempotence", "true"},
                          {"acks", "all"},
                          {"linger.ms", "5"}});
  if (!made.isOk()) return made.status();
  rd_kafka_conf_t* conf = made.value();
  char err[512];
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, deliveryThunk);
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!producer_) return Status::unavailable(std::string("configuration producer: ") + err);
  poller_ = std::thread([this] {
    int64_t last_retry = 0;
    while (!stop_) {
      rd_kafka_poll(producer_, 100);
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
      if (now - last_retry < 2000) continue;
      last_retry = now;
      std::vector<std::string> again;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [key, _] : failed_) again.push_back(key);
        failed_.clear();
      }
      for (const auto& key : again) produce(key);
    }
  });
  // Changes made before the producer existed (the first admin key) go out now.
  std::vector<std::string> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, _] : pending_) queued.push_back(key);
  }
  for (const auto& key : queued) produce(key);
  return Status::ok();
}

void ConfigPublisher::stop() {
  if (!producer_) return;
  rd_kafka_flush(producer_, 2000);  // what is in flight, briefly
  stop_ = true;
  if (poller_.joinable()) poller_.join();
  rd_kafka_destroy(producer_);
  producer_ = nullptr;
}

void ConfigPublisher::changed(const std::string& key, const std::string* value) {
  if (!isSharedConfig(key)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_[key] = value ? std::optional<std::string>(*value) : std::nullopt;
  }
  if (producer_) produce(key);
}

void ConfigPublisher::produce(const std::string& key) {
  std::optional<std::string> value;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(key);
    if (it == pending_.end()) return;  // confirmed meanwhile
    value = it->second;
  }
  const std::string topic = configTopic(options_.cluster_id);
  auto* opaque = new std::string(key);
  void* payload = value ? const_cast<char*>(value->data()) : nullptr;  // null: a tombstone
  const size_t length = value ? value->size() : 0;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(payload, length), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err) {
    delete opaque;
    FIREHUB_LOG(kWarning, "cluster",
                "configuration change " << key << " not sent yet: " << rd_kafka_err2str(err));
    std::lock_guard<std::mutex> lock(mu_);
    failed_[key] = static_cast<int>(err);
  }
}

void ConfigPublisher::onDelivery(const std::string& key, int error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error) {
    failed_[key] = error;
    return;
  }
  // Confirmed; a newer value of the same key produced since has its own report coming.
  pending_.erase(key);
}

size_t ConfigPublisher::unconfirmed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

}  // namespace firehub::cluster
