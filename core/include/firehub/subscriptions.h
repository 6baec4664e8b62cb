// Subscriptions: a downstream system asks for a domain topic with a filter (conditions on
// documented fields, and an area) and gets the matching records by
//  - SSE: GET /api/v1/subscriptions/{id}/events, read from the lake's log, so a client that
//    reconnects with Last-Event-ID (a log sequence) misses nothing;
//  - webhook: POSTs of JSON batches signed with HMAC-SHA256 (X-Firehub-Signature), in log order,
//    retried with exponential back-off and dead-lettered after the attempt limit;
//  - Kafka: the matching records on firehub.v1.sub.<id> (".public" and redacted for subscribers
//    without the restricted grant), through the outbox like every record.
// A subscription needs a grant of its topic (admins and operators have every topic), checked
// when it is made and again before every delivery: a revoked key or grant stops it.
// @remark Thread-safe; one delivery thread for Kafka subscriptions and one worker per webhook
// subscription with a POST in flight, so a receiver that never answers stalls only its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "firehub/auth.h"
#include "firehub/lake.h"
#include "firehub/net.h"
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
  std::string delivery;                            // sse, webhook, kafka
  std::string url;                                 // webhook target (http://)
  std::string secret;                              // webhook HMAC key
  int max_attempts = 6;                            // webhook attempts before a dead letter
  int64_t created_at = 0;
  bool paused = false;       // nothing is delivered; the place in the log is kept
  std::string from = "now";  // where delivery began: now | beginning | an RFC 3339 time
  uint64_t start_after = 0;  // the log sequence `from` named when the subscription was made
};

// Parses and checks a subscription request (`restricted`: whether its owner may see restricted
// fields; filters may name them only then): {"topic": "firehub.v1.water", "filter": {"where":
// [{"field": ..., "op": ..., "value"|"values": ...}], "bbox": [minlon,minlat,maxlon,maxlat] |
// "polygon": [[lon,lat],...]}, "delivery": {"kind": "sse"|"webhook"|"kafka", "url": ...,
// "secret": ..., "max_attempts": ...}, "paused": false, "from": "now" | "beginning" | <RFC 3339>}.
// Fields are checked against the domain's schema, and enum values against the enum.
Result<Subscription> parseSubscription(const std::string& json, bool restricted);
// A subscription as the API shows it, or (`stored`) as the lake keeps it, with its secret.
std::string subscriptionJson(const Subscription& s, bool stored = false);
// The topic a Kafka subscription's records go to: firehub.v1.sub.<id>, ".public" (redacted)
// for an owner without the restricted grant.
std::string kafkaDeliveryTopic(const Subscription& s);
// Whether a record passes the subscription's filter (domain, conditions, area).
bool matches(const Subscription& s, const firehub::v1::Record& record);
// HMAC-SHA256 of body with the secret, lower-case hex.
std::string hmacSha256Hex(const std::string& secret, const std::string& body);
// The webhook signature header's value for a body sent at `unix_seconds`:
// "t=<unix_seconds>,sha256=<HMAC-SHA256 of '<unix_seconds>.<body>'>"; a receiver recomputes it
// and refuses a timestamp too old (a replay).
std::string webhookSignature(const std::string& secret, int64_t unix_seconds,
                             const std::string& body);

struct SubscriptionOptions {
  // The keys, to re-check a subscription's owner before each delivery; null: no keys (auth off).
  const auth::KeyStore* keys = nullptr;
  // Where webhooks may connect (outbound.allow, outbound.ca_file).
  net::OutboundPolicy outbound;
  // Seconds a webhook receiver has to answer. Default: 10.
  int webhook_timeout_s = 10;
  // Cluster mode: the epoch of the subscriptions duty while this node holds it, else 0 (null: a
  // single hub). Webhook and Kafka deliveries then run only on the holder; they read the domain
  // topics' order from the lake's positions (Kafka offsets, the same on every node) and keep
  // each subscription's place as those offsets in a shared entry (lake::kSubscriptionCursorPrefix)
  // written with the epoch, so a new holder goes on where the last one confirmed.
  std::function<uint64_t()> duty_epoch;
};

// A subscription's place in the domain topics (cluster mode): next offset per "<topic>/<p>".
struct TopicCursor {
  uint64_t epoch = 0;
  uint64_t seq = 0;  // writes of the cursor so far: a late echo of an older write loses
  std::map<std::string, int64_t> offsets;
  std::string json() const;
  static Result<TopicCursor> parse(const std::string& json);
};
// A record read at a place in the topics.
struct Placed {
  int partition = 0;
  int64_t offset = 0;
  firehub::v1::Record record;
};

class SubscriptionManager {
 public:
  SubscriptionManager(lake::Lake& lake, SubscriptionOptions options);
  ~SubscriptionManager();

  // Grants: which key may subscribe to which topic.
  Status grant(const std::string& key_id, const std::string& topic);
  Status revokeGrant(const std::string& key_id, const std::string& topic);
  bool granted(const std::string& key_id, const std::string& topic) const;
  Result<std::vector<std::pair<std::string, std::string>>> grants() const;

  // Why the subscription may not be delivered now (its owner's key revoked or unknown, its
  // topic's grant gone), "" when it may.
  std::string refusal(const Subscription& s) const;
  // Checks a new subscription's webhook URL against the outbound policy.
  Status checkDelivery(const Subscription& s) const;
  // Subscriptions stored but not loaded (they do not parse): "subscription <id>: <why>".
  std::vector<std::string> loadFailures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return load_failures_;
  }
  // Why a webhook or Kafka subscription is not being delivered, "" when it is.
  std::string suspended(const std::string& id) const;

  // Stores a subscription (its delivery starts after the newest record of the log).
  Result<Subscription> create(Subscription s);
  std::optional<Subscription> get(const std::string& id) const;
  std::vector<Subscription> list() const;
  Status remove(const std::string& id);
  // Pauses or resumes delivery (the place in the log is kept); the subscription as it is now.
  Result<Subscription> setPaused(const std::string& id, bool paused);
  // Replaces the filter, delivery and paused state of subscription `changed.id` (its owner, topic,
  // start and place in the log stay).
  Result<Subscription> update(const Subscription& changed);
  // The log sequence just before the first record received at or after `unix_ms` (a binary
  // search of the log by the records' received_at).
  Result<uint64_t> sequenceBefore(int64_t unix_ms) const;

  // Matching records with log sequence > after, at most max; `scanned` gets the last sequence
  // looked at (the cursor to continue from even when nothing matched).
  Status readMatching(const Subscription& s, uint64_t after, size_t max,
                      std::vector<std::pair<uint64_t, firehub::v1::Record>>& out,
                      uint64_t& scanned) const;
  // The newest log sequence (where a new SSE client without Last-Event-ID starts).
  uint64_t logHead() const;
  // Cluster mode: where a new subscription of `domain` starts (`from`: now, beginning or an
  // RFC 3339 time), from the positions this lake applied.
  Result<TopicCursor> startCursor(const std::string& domain, const std::string& from) const;
  // Cluster mode: matching records past `cursor`, at most max, in offset order per partition;
  // `cursor` moves past everything looked at.
  Status readPlaced(const Subscription& s, TopicCursor& cursor, size_t max,
                    std::vector<Placed>& out) const;
  // Cluster mode: a subscription another node stored, changed or deleted (reloaded from meta).
  void reload(const std::string& id);

  Status start();
  void stop();
  void notify();
  // Webhook and Kafka deliveries done so far (tests, metrics).
  uint64_t delivered() const { return delivered_.load(); }

 private:
  void run();
  Status deliver(Subscription& s, bool& did_work);
  // deliver() in cluster mode: from the shared cursor, under the duty's epoch.
  Status deliverPlaced(Subscription& s, uint64_t epoch, bool& did_work);
  // Sends a webhook batch (body built by the caller); false when it waits for a retry. A batch
  // given up on becomes a dead letter, and delivery goes on after it.
  Result<bool> sendWebhook(const Subscription& s, const std::string& body, size_t records);
  // A stored subscription from its meta entry; Invalid when it does not parse.
  static Result<Subscription> fromStored(const std::string& id, const std::string& value);
  Status postWebhook(const Subscription& s, const std::string& body, std::string& error) const;
  // Joins webhook workers that finished; with `all`, waits for every one.
  void reapWorkers(bool all);

  lake::Lake& lake_;
  SubscriptionOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Subscription> subs_;
  std::vector<std::string> load_failures_;
  std::map<std::string, std::string> suspended_;  // id -> why its deliveries are held
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::map<std::string, Worker> workers_;    // webhook subscriptions with a delivery in flight
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
