#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <vector>

#include "firehub/bus.h"
#include "firehub/log.h"

namespace firehub::bus {

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::start(int brokers, int default_partitions) {
  if (brokers < 1 || brokers > 9)
    return Status::invalidArgument("embedded broker count must be 1..9");
  std::unique_ptr<EmbeddedBroker> b(new EmbeddedBroker());
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The owner handle never connects anywhere; it only hosts the mock cluster's thread.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  b->owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!b->owner_) {
    rd_kafka_conf_destroy(conf);
    return Status::internal(std::string("embedded broker: ") + err);
  }
  b->cluster_ = rd_kafka_mock_cluster_new(b->owner_, brokers);
  if (!b->cluster_) return Status::internal("embedded broker: rd_kafka_mock_cluster_new failed");
  b->bootstrap_ = rd_kafka_mock_cluster_bootstraps(b->cluster_);
  b->brokers_ = brokers;
  b->partitions_ = default_partitions;
  FIREHUB_LOG(kInfo, "bus",
              "embedded Kafka broker (" << brokers << " mock brokers) at " << b->bootstrap_);
  return b;
}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
  if (owner_) rd_kafka_destroy(owner_);
}

void EmbeddedBroker::ensureTopic(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!topics_.insert(topic).second) return;
  int replication = std::min(3, brokers_);
  auto err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions_, replication);
  if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    FIREHUB_LOG(kWarning, "bus",
                "embedded broker: create topic " << topic << ": " << rd_kafka_err2str(err));
  }
}

void EmbeddedBroker::setBrokerDown(int broker_id, bool down) {
  if (down)
    rd_kafka_mock_broker_set_down(cluster_, broker_id);
  else
    rd_kafka_mock_broker_set_up(cluster_, broker_id);
  std::lock_guard<std::mutex> lock(mu_);
  if (down)
    down_.insert(broker_id);
  else
    down_.erase(broker_id);
}

std::set<int> EmbeddedBroker::downBrokers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return down_;
}

void EmbeddedBroker::injectProduceErrors(int count, int error) {
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count),
                                          static_cast<rd_kafka_resp_err_t>(error));
  rd_kafka_mock_push_request_errors_array(cluster_, 0 /* ApiKey Produce */, errors.size(),
                                          errors.data());
}

}  // namespace firehub::bus
