// Subscriptions: a downstream system asks for a domain topic with a filter (conditions on
// documented fields, and an area) and gets the matching records by
//  - SSE: GET /api/v1/subscriptions/{id}/events, read from the lake's log, so a client that
//    reconnects with Last-Event-ID (a log sequence) misses nothing;
//  - webhook: POSTs of JSON batches signed with HMAC-SHA256 (X-Firehub-Signature), in log order,
//    retried with exponential back-off and dead-lettered after the attempt limit;
//  - Kafka: the matching records on firehub.v1.sub.<id> (".public" and redacted for subscribers
//    without the restricted grant), through the outbox like every record.
// A subscription needs a grant of its topic (admins and operators have every topic).
// @remark Thread-safe; one delivery thread for webhook and Kafka subscriptions.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "firehub/lake.h"
#include "firehub/status.h"

namespace firehub::subs {

struct Condition {
  std::string field;                // path in the record: "agency", "water_source.status", ...
  std::string op;                   // eq, ne, in, gt, gte, lt, lte
  std::vector<std::string> values;  // one value, or the set for "in"
};

struct Subscription {
  std::string id;
  std::string owner;        // key id of the subscriber
  bool restricted = false;  // the owner may see restricted fields
  std::string domain;       // from the topic firehub.v1.<domain>
  std::vector<Condition> where;
  std::optional<lake::BBox> bbox;
  std::vector<std::pair<double, double>> polygon;  // lon, lat ring (closed or not)
  std::string delivery;     // sse, webhook, kafka
  std::string url;          // webhook target (http://)
  std::string secret;       // webhook HMAC key
  int max_attempts = 6;     // webhook attempts before a dead letter
  int64_t created_at = 0;
};

// Parses and checks a subscription request: {"topic": "firehub.v1.water", "filter": {"where":
// [{"field": ..., "op": ..., "value"|"values": ...}], "bbox": [minlon,minlat,maxlon,maxlat] |
// "polygon": [[lon,lat],...]}, "delivery": {"kind": "sse"|"webhook"|"kafka", "url": ...,
// "secret": ..., "max_attempts": ...}}. Fields are checked against the domain's schema.
Result<Subscription> parseSubscription(const std::string& json);
std::string subscriptionJson(const Subscription& s, bool with_secret = false);
// Whether a record passes the subscription's filter (domain, conditions, area).
bool matches(const Subscription& s, const firehub::v1::Record& record);
// HMAC-SHA256 of body with the secret, lower-case hex.
std::string hmacSha256Hex(const std::string& secret, const std::string& body);

class SubscriptionManager {
 public:
  explicit SubscriptionManager(lake::Lake& lake);
  ~SubscriptionManager();

  // Grants: which key may subscribe to which topic.
  Status grant(const std::string& key_id, const std::string& topic);
  Status revokeGrant(const std::string& key_id, const std::string& topic);
  bool granted(const std::string& key_id, const std::string& topic) const;
  Result<std::vector<std::pair<std::string, std::string>>> grants() const;

  // Stores a subscription (its delivery starts after the newest record of the log).
  Result<Subscription> create(Subscription s);
  std::optional<Subscription> get(const std::string& id) const;
  std::vector<Subscription> list() const;
  Status remove(const std::string& id);

  // Matching records with log sequence > after, at most max; `scanned` gets the last sequence
  // looked at (the cursor to continue from even when nothing matched).
  Status readMatching(const Subscription& s, uint64_t after, size_t max,
                      std::vector<std::pair<uint64_t, firehub::v1::Record>>& out,
                      uint64_t& scanned) const;
  // The newest log sequence (where a new SSE client without Last-Event-ID starts).
  uint64_t logHead() const;

  Status start();
  void stop();
  void notify();
  // Webhook and Kafka deliveries done so far (tests, metrics).
  uint64_t delivered() const { return delivered_.load(); }

 private:
  void run();
  Status deliver(Subscription& s, bool& did_work);
  Status postWebhook(const Subscription& s, const std::string& body, std::string& error) const;

  lake::Lake& lake_;
  mutable std::mutex mu_;
  std::map<std::string, Subscription> subs_;
  std::map<std::string, int> attempts_;      // id -> failed attempts of the pending batch
  std::map<std::string, int64_t> retry_at_;  // id -> ms when the next attempt may run
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool pending_ = false;
  std::atomic<uint64_t> delivered_{0};
};

}  // namespace firehub::subs
