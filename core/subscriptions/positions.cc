// Cluster mode: subscription deliveries from a place in the domain topics (Kafka offsets, the
// same on every node), read through the positions each node's replica keeps in its lake.
#include <Poco/JSON/Object.h>
#include <google/protobuf/util/time_util.h>

#include <sstream>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/subscriptions.h"
#include "internal.h"

namespace firehub::subs {
namespace {

std::string domainTopic(const std::string& domain) { return "firehub.v1." + domain; }

// The partitions of a topic this lake applied, each with its next offset to apply.
Result<std::map<int, int64_t>> appliedOffsets(const lake::Lake& lake, const std::string& topic) {
  std::map<int, int64_t> out;
  const std::string prefix = std::string(lake::kReplicaOffsetPrefix) + topic + "/";
  Status s = lake.scanMeta(prefix, [&](const std::string& key, const std::string& value) {
    out[std::atoi(key.c_str() + prefix.size())] = std::atoll(value.c_str());
  });
  if (!s.isOk()) return s;
  return out;
}

std::string partitionName(const std::string& topic, int partition) {
  return topic + "/" + std::to_string(partition);
}

}  // namespace

std::string TopicCursor::json() const {
  std::ostringstream out;
  out << "{\"epoch\":" << epoch << ",\"seq\":" << seq << ",\"offsets\":{";
  bool first = true;
  for (const auto& [name, offset] : offsets) {
    out << (first ? "" : ",") << '"' << name << "\":" << offset;
    first = false;
  }
  out << "}}";
  return out.str();
}

Result<TopicCursor> TopicCursor::parse(const std::string& json) {
  Status error = Status::ok();
  auto o = parseObject(json, error);
  if (!o) return error;
  TopicCursor c;
  c.epoch = o->optValue<uint64_t>("epoch", 0);
  c.seq = o->optValue<uint64_t>("seq", 0);
  auto offsets = o->getObject("offsets");
  if (!offsets) return Status::invalidArgument("subscription cursor has no offsets");
  for (const auto& name : offsets->getNames()) {
    const int64_t offset = offsets->optValue<int64_t>(name, -1);
    if (offset < 0) return Status::invalidArgument("subscription cursor offset of " + name);
    c.offsets[name] = offset;
  }
  return c;
}

Result<TopicCursor> SubscriptionManager::startCursor(const std::string& domain,
                                                     const std::string& from) const {
  const std::string topic = domainTopic(domain);
  auto applied = appliedOffsets(lake_, topic);
  if (!applied.isOk()) return applied.status();
  TopicCursor c;
  if (from == "beginning") return c;  // every partition from offset 0
  if (from == "now") {
    for (const auto& [p, next] : *applied) c.offsets[partitionName(topic, p)] = next;
    return c;
  }
  google::protobuf::Timestamp t;
  google::protobuf::util::TimeUtil::FromString(from, &t);  // checked by parseSubscription
  const int64_t unix_ms = google::protobuf::util::TimeUtil::TimestampToMilliseconds(t);
  // Per partition, the first offset whose record was received at or after the time (received
  // times grow with the offsets of a partition closely enough for a start).
  for (const auto& [p, next] : *applied) {
    int64_t lo = 0, hi = next;  // the answer lies in [lo, hi]
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      std::string found_id;
      int64_t found_offset = -1;
      const std::string prefix = std::string(lake::kPositionPrefix) + partitionName(topic, p) + "/";
      FIREHUB_RETURN_IF_ERROR(
          lake_.scanMetaFrom(lake::positionKey(topic, p, mid), prefix,
                             [&](const std::string& key, const std::string& value) {
                               found_offset = std::atoll(key.c_str() + prefix.size());
                               found_id = value;
                               return false;
                             }));
      if (found_offset < 0 || found_offset >= hi) {
        hi = mid;
        continue;
      }
      auto r = lake_.getRecord(found_id);
      if (!r.isOk()) return r.status();
      const int64_t at =
          r.value()
              ? google::protobuf::util::TimeUtil::TimestampToMilliseconds(r.value()->received_at())
              : 0;
      if (at < unix_ms)
        lo = found_offset + 1;
      else
        hi = mid;
    }
    c.offsets[partitionName(topic, p)] = lo;
  }
  return c;
}

Status SubscriptionManager::readPlaced(const Subscription& s, TopicCursor& cursor, size_t max,
                                       std::vector<Placed>& out) const {
  const std::string topic = domainTopic(s.domain);
  auto applied = appliedOffsets(lake_, topic);
  if (!applied.isOk()) return applied.status();
  size_t scanned = 0;
  constexpr size_t kMaxScanned = 2000;
  for (const auto& [p, next] : *applied) {
    const std::string name = partitionName(topic, p);
    int64_t& at = cursor.offsets[name];  // a partition new to the cursor: from its start
    if (at >= next) continue;
    const std::string prefix = std::string(lake::kPositionPrefix) + name + "/";
    Status error = Status::ok();
    FIREHUB_RETURN_IF_ERROR(
        lake_.scanMetaFrom(lake::positionKey(topic, p, at), prefix,
                           [&](const std::string& key, const std::string& id) {
                             const int64_t offset = std::atoll(key.c_str() + prefix.size());
                             if (offset >= next || scanned >= kMaxScanned || out.size() >= max)
                               return false;
                             auto r = lake_.getRecord(id);
                             if (!r.isOk()) {
                               error = r.status();
                               return false;
                             }
                             ++scanned;
                             at = offset + 1;
                             if (!r.value() || !matches(s, *r.value())) return true;
                             if (!s.restricted) redactRestricted(*r.value());
                             out.push_back({p, offset, std::move(*r.value())});
                             return true;
                           }));
    FIREHUB_RETURN_IF_ERROR(error);
    if (scanned >= kMaxScanned || out.size() >= max) break;
  }
  return Status::ok();
}

// Like deliver(), from the shared cursor: a batch goes out, then the cursor moves past it with
// this holder's epoch (a node applying the shared entries keeps the highest epoch's).
Status SubscriptionManager::deliverPlaced(Subscription& s, uint64_t epoch, bool& did_work) {
  const std::string key = lake::kSubscriptionCursorPrefix + s.id;
  auto stored = lake_.getMeta(key);
  if (!stored.isOk()) return stored.status();
  if (!stored.value()) return Status::ok();  // its start has not reached this node yet
  auto cursor = TopicCursor::parse(*stored.value());
  if (!cursor.isOk())
    return Status::internal("subscription " + s.id + ": " + cursor.status().message());
  if (cursor->epoch > epoch) return Status::ok();  // a later holder moved it: not ours any more
  const std::string before = cursor->json();
  std::vector<Placed> batch;
  FIREHUB_RETURN_IF_ERROR(readPlaced(s, *cursor, 200, batch));
  cursor->epoch = epoch;
  if (cursor->json() == before) return Status::ok();
  ++cursor->seq;
  if (s.delivery == "kafka") {
    lake::DerivedBatch out;
    const std::string topic = kafkaDeliveryTopic(s);
    for (const auto& placed : batch)
      out.deliveries.push_back({topic, placed.record.entity_id(), "", placed.record.id()});
    FIREHUB_RETURN_IF_ERROR(lake_.commitDerived(out));
    delivered_ += batch.size();
  } else if (!batch.empty()) {
    const std::string body = webhookBody(
        s, batch.size(), [&](size_t i, uint64_t & id, int& partition) -> const auto& {
          id = static_cast<uint64_t>(batch[i].offset);  // the Kafka offset, in its partition
          partition = batch[i].partition;
          return batch[i].record;
        });
    auto sent = sendWebhook(s, body, batch.size());
    if (!sent.isOk()) return sent.status();
    if (!sent.value()) return Status::ok();  // waits for its retry; the cursor stays
  }
  did_work = true;
  // The new place, shared: a holder that takes over goes on from the last one confirmed here.
  return lake_.putMeta(key, cursor->json());
}

}  // namespace firehub::subs
