// The subscription manager: grants, stored subscriptions, and delivery by webhook and Kafka
// (owner and grant re-checked first), SSE reads from the log.
#include "firehub/subscriptions.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/RandomStream.h>
#include <Poco/URI.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/hmac.h>
#include <s2/s2latlng.h>
#include <s2/s2loop.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <random>
#include <sstream>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/v1/options.pb.h"
#include "internal.h"

namespace firehub::subs {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr const char* kSubPrefix = "subs/";
constexpr const char* kCursorPrefix = "subcursor/";
constexpr const char* kGrantPrefix = "grants/";

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string cursorKey(const std::string& id) { return kCursorPrefix + id; }

// A URL as it may be logged: without a query string (it may carry a token).
std::string redactedUrl(const std::string& url) {
  return url.substr(0, url.find('?')) + (url.find('?') == std::string::npos ? "" : "?...");
}
}  // namespace

SubscriptionManager::SubscriptionManager(lake::Lake& lake, SubscriptionOptions options)
    : lake_(lake), options_(std::move(options)) {
  // Retention keeps the log entries a subscription (paused ones too) has not been given yet.
  lake_.holdLog("subscriptions", [this] {
    uint64_t first = UINT64_MAX;
    (void)lake_.scanMeta(kCursorPrefix, [&](const std::string&, const std::string& value) {
      first = std::min<uint64_t>(first, std::strtoull(value.c_str(), nullptr, 10) + 1);
    });
    return first;
  });
  Status scanned =
      lake_.scanMeta(kSubPrefix, [&](const std::string& key, const std::string& value) {
        std::string id = key.substr(std::strlen(kSubPrefix));
        auto sub = fromStored(id, value);
        if (!sub.isOk()) {
          // Loud: /readyz names it; the stored definition stays for an operator to look at.
          load_failures_.push_back("subscription " + id + ": " + sub.status().message());
          FIREHUB_LOG(kError, "subs",
                      "stored subscription " << id << " does not load: " << sub.status().message());
          return;
        }
        subs_[id] = std::move(sub).value();
      });
  if (!scanned.isOk()) load_failures_.push_back("subscriptions: " + scanned.message());
}

Result<Subscription> SubscriptionManager::fromStored(const std::string& id,
                                                     const std::string& value) {
  Status error = Status::ok();
  auto o = parseObject(value, error);
  if (!o) return error;
  auto s = parseSubscription(value, o->optValue<bool>("restricted", false));
  if (!s.isOk()) return s.status();
  Subscription sub = std::move(s).value();
  sub.id = id;
  sub.owner = o->optValue<std::string>("owner", "");
  sub.restricted = o->optValue<bool>("restricted", false);
  sub.created_at = o->optValue<int64_t>("created_at_ms", 0);
  return sub;
}

void SubscriptionManager::reload(const std::string& id) {
  auto stored = lake_.getMeta(kSubPrefix + id);
  if (!stored.isOk()) return;
  if (!stored.value()) {
    std::lock_guard<std::mutex> lock(mu_);
    subs_.erase(id);
    return;
  }
  auto sub = fromStored(id, *stored.value());
  if (!sub.isOk()) {
    FIREHUB_LOG(
        kError, "subs",
        "subscription " << id << " from another node does not load: " << sub.status().message());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    subs_[id] = std::move(sub).value();
  }
  notify();
}

std::string SubscriptionManager::refusal(const Subscription& s) const {
  if (!options_.keys) return "";
  auto who = options_.keys->principal(s.owner);
  if (!who.isOk()) return who.status().message();
  if (who->canOperate()) return "";
  const std::string topic = "firehub.v1." + s.domain;
  if (!granted(s.owner, topic)) return "key " + s.owner + " no longer holds the grant of " + topic;
  if (s.restricted && !who->restricted)
    return "key " + s.owner + " no longer has the restricted grant";
  return "";
}

Status SubscriptionManager::checkDelivery(const Subscription& s) const {
  if (s.delivery != "webhook") return Status::ok();
  Status st = options_.outbound.checkUrl(s.url);
  if (!st.isOk()) return Status(st.code(), "delivery.url: " + st.message());
  return Status::ok();
}

std::string SubscriptionManager::suspended(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = suspended_.find(id);
  return it == suspended_.end() ? "" : it->second;
}

SubscriptionManager::~SubscriptionManager() {
  stop();
  lake_.holdLog("subscriptions", nullptr);
}

Status SubscriptionManager::grant(const std::string& key_id, const std::string& topic) {
  return lake_.putMeta(kGrantPrefix + key_id + "/" + topic, "1");
}

Status SubscriptionManager::revokeGrant(const std::string& key_id, const std::string& topic) {
  return lake_.deleteMeta(kGrantPrefix + key_id + "/" + topic);
}

bool SubscriptionManager::granted(const std::string& key_id, const std::string& topic) const {
  auto v = lake_.getMeta(kGrantPrefix + key_id + "/" + topic);
  return v.isOk() && v.value().has_value();
}

Result<std::vector<std::pair<std::string, std::string>>> SubscriptionManager::grants() const {
  std::vector<std::pair<std::string, std::string>> out;
  Status s = lake_.scanMeta(kGrantPrefix, [&](const std::string& key, const std::string&) {
    std::string rest = key.substr(std::strlen(kGrantPrefix));
    auto slash = rest.find('/');
    if (slash != std::string::npos) out.emplace_back(rest.substr(0, slash), rest.substr(slash + 1));
  });
  if (!s.isOk()) return s;
  return out;
}

Result<Subscription> SubscriptionManager::create(Subscription s) {
  Poco::RandomInputStream random;
  char raw[6];
  random.read(raw, sizeof raw);
  static const char* kHex = "0123456789abcdef";
  s.id = "s";
  for (unsigned char c : std::string(raw, sizeof raw)) {
    s.id.push_back(kHex[c >> 4]);
    s.id.push_back(kHex[c & 15]);
  }
  s.created_at = nowMs();
  if (options_.duty_epoch) {  // cluster mode: the start as Kafka offsets, shared
    auto start = startCursor(s.domain, s.from);
    if (!start.isOk()) return start.status();
    FIREHUB_RETURN_IF_ERROR(
        lake_.putMetaBatch({{lake::kSubscriptionCursorPrefix + s.id, start->json()},
                            {kSubPrefix + s.id, subscriptionJson(s, true)}}));
    {
      std::lock_guard<std::mutex> lock(mu_);
      subs_[s.id] = s;
    }
    notify();
    return s;
  }
  if (s.from == "beginning") {
    s.start_after = 0;
  } else if (s.from == "now") {
    s.start_after = logHead();
  } else {
    google::protobuf::Timestamp t;
    google::protobuf::util::TimeUtil::FromString(s.from, &t);  // checked by parseSubscription
    auto before = sequenceBefore(google::protobuf::util::TimeUtil::TimestampToMilliseconds(t));
    if (!before.isOk()) return before.status();
    s.start_after = before.value();
  }
  lake::DerivedBatch batch;
  batch.meta.emplace_back(kSubPrefix + s.id, subscriptionJson(s, true));
  batch.meta.emplace_back(cursorKey(s.id), std::to_string(s.start_after));
  FIREHUB_RETURN_IF_ERROR(lake_.commitDerived(batch));
  {
    std::lock_guard<std::mutex> lock(mu_);
    subs_[s.id] = s;
  }
  notify();
  return s;
}

std::optional<Subscription> SubscriptionManager::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = subs_.find(id);
  if (it == subs_.end()) return std::nullopt;
  return it->second;
}

std::vector<Subscription> SubscriptionManager::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Subscription> out;
  for (const auto& [id, s] : subs_) out.push_back(s);
  return out;
}

Status SubscriptionManager::remove(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!subs_.erase(id)) return Status::notFound("no subscription '" + id + "'");
  }
  FIREHUB_RETURN_IF_ERROR(lake_.deleteMeta(kSubPrefix + id));
  if (options_.duty_epoch)
    FIREHUB_RETURN_IF_ERROR(lake_.deleteMeta(lake::kSubscriptionCursorPrefix + id));
  return lake_.deleteMeta(cursorKey(id));
}

Result<Subscription> SubscriptionManager::setPaused(const std::string& id, bool paused) {
  auto s = get(id);
  if (!s) return Status::notFound("no subscription '" + id + "'");
  s->paused = paused;
  return update(*s);
}

Result<Subscription> SubscriptionManager::update(const Subscription& changed) {
  Subscription s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = subs_.find(changed.id);
    if (it == subs_.end()) return Status::notFound("no subscription '" + changed.id + "'");
    s = changed;
    s.owner = it->second.owner;
    s.restricted = it->second.restricted;
    s.domain = it->second.domain;
    s.created_at = it->second.created_at;
    s.from = it->second.from;
    s.start_after = it->second.start_after;
    if (s.delivery != it->second.delivery)
      return Status::invalidArgument("delivery.kind of a subscription does not change");
  }
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kSubPrefix + s.id, subscriptionJson(s, true)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    subs_[s.id] = s;
  }
  notify();
  return s;
}

Result<uint64_t> SubscriptionManager::sequenceBefore(int64_t unix_ms) const {
  // The log's sequences are shared with the outbox and dead letters: a probe reads the first
  // log entry at or after its sequence.
  uint64_t lo = 0, hi = logHead();  // the answer lies in [lo, hi]
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2 + 1;
    std::vector<std::pair<uint64_t, std::string>> entry;
    FIREHUB_RETURN_IF_ERROR(lake_.readLog(mid, 1, entry));
    if (entry.empty()) {
      hi = mid - 1;
      continue;
    }
    auto r = lake_.getRecord(entry[0].second);
    if (!r.isOk()) return r.status();
    const int64_t at =
        r.value()
            ? google::protobuf::util::TimeUtil::TimestampToMilliseconds(r.value()->received_at())
            : 0;
    if (at < unix_ms) {
      lo = entry[0].first;  // this record is before the time: start past it
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

uint64_t SubscriptionManager::logHead() const { return lake_.lastSequence(); }

Status SubscriptionManager::readMatching(const Subscription& s, uint64_t after, size_t max,
                                         std::vector<std::pair<uint64_t, firehub::v1::Record>>& out,
                                         uint64_t& scanned) const {
  scanned = after;
  std::vector<std::pair<uint64_t, std::string>> log;
  FIREHUB_RETURN_IF_ERROR(lake_.readLog(after + 1, 2000, log));
  for (const auto& [seq, id] : log) {
    auto r = lake_.getRecord(id);
    if (!r.isOk()) return r.status();
    scanned = seq;
    if (!r.value() || !matches(s, *r.value())) continue;
    if (!s.restricted) redactRestricted(*r.value());
    out.emplace_back(seq, std::move(*r.value()));
    if (out.size() >= max) break;
  }
  return Status::ok();
}

Status SubscriptionManager::postWebhook(const Subscription& s, const std::string& body,
                                        std::string& error) const {
  // The address is resolved and checked on every connection (a name may point elsewhere now).
  auto reply =
      net::post(options_.outbound, s.url,
                {{"X-Firehub-Subscription", s.id},
                 {"X-Firehub-Signature", webhookSignature(s.secret, nowMs() / 1000, body)}},
                "application/json", body, options_.webhook_timeout_s);
  if (!reply.isOk()) {
    error = reply.status().message();
    return reply.status();
  }
  if (reply->status >= 200 && reply->status < 300) return Status::ok();
  error = "HTTP " + std::to_string(reply->status);
  return Status::unavailable(error);
}

Result<bool> SubscriptionManager::sendWebhook(const Subscription& s, const std::string& body,
                                              size_t records) {
  int64_t now = nowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (retry_at_[s.id] > now) return false;
  }
  std::string error;
  if (!postWebhook(s, body, error).isOk()) {
    int attempts;
    {
      std::lock_guard<std::mutex> lock(mu_);
      attempts = ++attempts_[s.id];
      static thread_local std::mt19937 rng(std::random_device{}());
      int64_t backoff = std::min<int64_t>(250LL << std::min(attempts, 8), 60000);
      retry_at_[s.id] = now + backoff + static_cast<int64_t>(rng() % (backoff / 4 + 1));
    }
    if (attempts < s.max_attempts) {
      FIREHUB_LOG(kWarning, "subs",
                  "webhook of " << s.id << " failed (" << error << "), attempt " << attempts
                                << " of " << s.max_attempts);
      return false;
    }
    // Given up: the batch becomes a dead letter and delivery goes on after it.
    firehub::v1::DeadLetter dl;
    dl.set_feed_id("subscription:" + s.id);
    dl.set_stage("deliver");
    dl.set_restricted(s.restricted);
    dl.set_reason("webhook " + redactedUrl(s.url) + " failed " + std::to_string(attempts) +
                  " times: " + error);
    dl.mutable_at()->set_seconds(now / 1000);
    dl.set_raw(body);
    dl.set_content_type("application/json");
    FIREHUB_RETURN_IF_ERROR(lake_.commit({}, {dl}).status());
    FIREHUB_LOG(kError, "subs", dl.reason() << "; dead-lettered " << records << " records");
  } else {
    delivered_ += records;
  }
  std::lock_guard<std::mutex> lock(mu_);
  attempts_.erase(s.id);
  retry_at_.erase(s.id);
  return true;
}

Status SubscriptionManager::deliver(Subscription& s, bool& did_work) {
  if (s.paused) return Status::ok();                 // the cursor stays
  if (std::string why = refusal(s); !why.empty()) {  // nothing goes out, the cursor stays
    std::lock_guard<std::mutex> lock(mu_);
    auto& held = suspended_[s.id];
    if (held != why) FIREHUB_LOG(kWarning, "subs", "subscription " << s.id << " held: " << why);
    held = why;
    return Status::ok();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    suspended_.erase(s.id);
  }
  if (options_.duty_epoch) {  // cluster mode: only the duty's holder delivers
    const uint64_t epoch = options_.duty_epoch();
    return epoch == 0 ? Status::ok() : deliverPlaced(s, epoch, did_work);
  }
  auto stored = lake_.getMeta(cursorKey(s.id));
  if (!stored.isOk()) return stored.status();
  uint64_t cursor = stored.value() ? std::stoull(*stored.value()) : 0;
  std::vector<std::pair<uint64_t, firehub::v1::Record>> batch;
  uint64_t scanned = cursor;
  FIREHUB_RETURN_IF_ERROR(readMatching(s, cursor, 200, batch, scanned));
  if (scanned == cursor) return Status::ok();
  lake::DerivedBatch out;
  out.meta.emplace_back(cursorKey(s.id), std::to_string(scanned));
  if (s.delivery == "kafka") {
    const std::string topic = kafkaDeliveryTopic(s);
    for (const auto& [seq, r] : batch) out.deliveries.push_back({topic, r.entity_id(), "", r.id()});
    FIREHUB_RETURN_IF_ERROR(lake_.commitDerived(out));
    delivered_ += batch.size();
    did_work = true;
    return Status::ok();
  }
  // Webhook: one POST per batch, in log order; the cursor moves only after a 2xx.
  if (!batch.empty()) {
    const std::string body = webhookBody(
        s, batch.size(), [&](size_t i, uint64_t & id, int&) -> const auto& {
          id = batch[i].first;  // the log sequence
          return batch[i].second;
        });
    auto sent = sendWebhook(s, body, batch.size());
    if (!sent.isOk()) return sent.status();
    if (!sent.value()) return Status::ok();  // waits for its retry; the cursor stays
  }
  did_work = true;
  return lake_.commitDerived(out);
}

Status SubscriptionManager::start() {
  stop_ = false;
  thread_ = std::thread([this] {
    log::nameThread("fh-subscribe");
    run();
  });
  return Status::ok();
}

void SubscriptionManager::notify() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    pending_ = true;
  }
  wake_.notify_one();
}

void SubscriptionManager::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  notify();
  thread_.join();
  reapWorkers(/*all=*/true);
}

void SubscriptionManager::reapWorkers(bool all) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || it->second.done->load()) {
      it->second.thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void SubscriptionManager::run() {
  while (!stop_) {
    bool did_work = false;
    reapWorkers(/*all=*/false);
    for (auto& s : list()) {
      if (s.delivery == "sse") continue;
      if (s.delivery == "webhook") {
        // Each webhook subscription posts from a worker of its own: a receiver that never
        // answers holds its own subscription for the timeout, not every other one.
        if (workers_.count(s.id)) continue;
        auto done = std::make_shared<std::atomic<bool>>(false);
        std::thread worker([this, s, done]() mutable {
          log::nameThread("fh-webhook");
          bool worked = false;
          Status st = deliver(s, worked);
          if (!st.isOk())
            FIREHUB_LOG(kError, "subs", "subscription " << s.id << ": " << st.toString());
          done->store(true);
          if (worked) notify();
        });
        workers_[s.id] = Worker{std::move(worker), done};
        continue;
      }
      Status st = deliver(s, did_work);
      if (!st.isOk()) FIREHUB_LOG(kError, "subs", "subscription " << s.id << ": " << st.toString());
    }
    if (did_work) continue;
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(200),
                   [this] { return pending_ || stop_.load(); });
    pending_ = false;
  }
}

}  // namespace firehub::subs
