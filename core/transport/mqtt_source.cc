// MQTT sources: a libmosquitto client per feed, driven by its own loop so that a message's
// PUBACK is written only after the message is in the lake.
#include <mosquitto.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "firehub/log.h"
#include "firehub/transport.h"
#include "internal.h"

namespace firehub::transport {
namespace {

std::string mosqError(int rc) {
  return rc == MOSQ_ERR_ERRNO ? std::string(std::strerror(errno)) : mosquitto_strerror(rc);
}

}  // namespace

class MqttSources::Client : public SourceWorker {
 public:
  Client(MqttSources& owner, registry::FeedSpec spec)
      : SourceWorker(std::move(spec)), owner_(owner) {}
  ~Client() override {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

  Status start() override {
    thread_ = std::thread([this] { run(); });
    return Status::ok();
  }

  void failed(const std::string& why) override { setError(why); }

  MqttSourceState state() const {
    std::lock_guard<std::mutex> lock(mu_);
    MqttSourceState s = state_;
    s.running = thread_.joinable() && !stopping_;
    return s;
  }

 private:
  void setError(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!why.empty() && why != state_.error)
      FIREHUB_LOG(kWarning, "mqtt-source", "feed " << spec().id << ": " << why);
    state_.error = why;
    if (!why.empty()) state_.connected = false;
  }

  void sleepFor(int64_t ms) {
    for (int64_t t = 0; t < ms && !stopping_; t += 100)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  void run() {
    log::nameThread("fh-mqtt");
    int64_t backoff = 1000;
    while (!stopping_) {
      auto feed = owner_.feeds_.get(spec().id);
      if (!feed || feed->paused()) {  // the broker keeps the session's messages meanwhile
        setError("the feed is paused");
        sleepFor(1000);
        continue;
      }
      Status s = session();
      if (stopping_) break;
      if (s.isOk()) continue;
      setError(s.message());
      sleepFor(backoff);
      backoff = connected_once_ ? 1000 : std::min<int64_t>(backoff * 2, 30000);
      connected_once_ = false;
    }
  }

  // One connection: connects, subscribes, and reads until it breaks or the hub stops.
  Status session() {
    const auto& m = spec().mqtt;
    mosquitto* mosq = mosquitto_new(m.client_id.c_str(), /*clean_session=*/false, this);
    if (!mosq) return Status::internal("cannot make an MQTT client: " + mosqError(MOSQ_ERR_ERRNO));
    // Destroying the client drops what it has not written: the PUBACK of a message whose commit
    // failed never leaves.
    std::unique_ptr<mosquitto, void (*)(mosquitto*)> held(mosq, mosquitto_destroy);
    // Packets are written only by mosquitto_loop_write below, never from inside a callback.
    mosquitto_threaded_set(mosq, true);
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (!m.username.empty())
      mosquitto_username_pw_set(mosq, m.username.c_str(),
                                m.password.empty() ? nullptr : m.password.c_str());
    if (m.tls) {
      int rc = mosquitto_tls_set(mosq, m.ca_file.empty() ? nullptr : m.ca_file.c_str(),
                                 m.ca_file.empty() ? "/etc/ssl/certs" : nullptr, nullptr, nullptr,
                                 nullptr);
      if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(mosq, 1, nullptr, nullptr);
      if (rc != MOSQ_ERR_SUCCESS)
        return Status::invalidArgument("mqtt TLS settings: " + mosqError(rc));
    }
    mosquitto_connect_callback_set(mosq, &Client::onConnect);
    mosquitto_subscribe_callback_set(mosq, &Client::onSubscribe);
    mosquitto_message_callback_set(mosq, &Client::onMessage);
    mosquitto_log_callback_set(mosq, &Client::onLog);  // OpenSSL's reasons, for the state
    last_log_error_.clear();

    auto address = owner_.policy_.resolve(m.host, static_cast<uint16_t>(m.port));
    if (!address.isOk()) return address.status();
    const std::string target = m.tls ? m.host : address->host().toString();
    broken_.clear();
    int rc = mosquitto_connect(mosq, target.c_str(), static_cast<int>(m.port),
                               static_cast<int>(m.keepalive_s));
    if (rc != MOSQ_ERR_SUCCESS)
      return Status::unavailable("connect to " + m.host + ":" + std::to_string(m.port) + ": " +
                                 mosqError(rc) +
                                 (last_log_error_.empty() ? "" : " (" + last_log_error_ + ")"));
    while (!stopping_) {
      const int fd = mosquitto_socket(mosq);
      if (fd < 0) return Status::unavailable("the connection to the broker closed");
      pollfd p{fd, static_cast<short>(POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0)), 0};
      if (::poll(&p, 1, 200) < 0 && errno != EINTR)
        return Status::unavailable(std::string("poll: ") + std::strerror(errno));
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        rc = mosquitto_loop_read(mosq, 1);  // messages are stored in its callback
        if (!broken_.empty()) return Status::unavailable(broken_);  // nothing more is written
        if (rc != MOSQ_ERR_SUCCESS)
          return Status::unavailable("the connection to the broker broke: " + mosqError(rc) +
                                     (last_log_error_.empty() ? "" : " (" + last_log_error_ + ")"));
      }
      if (mosquitto_want_write(mosq)) {  // the PUBACKs of stored messages, pings, subscribes
        rc = mosquitto_loop_write(mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS)
          return Status::unavailable("writing to the broker: " + mosqError(rc));
      }
      rc = mosquitto_loop_misc(mosq);
      if (rc != MOSQ_ERR_SUCCESS)
        return Status::unavailable("the broker stopped answering: " + mosqError(rc));
    }
    mosquitto_disconnect(mosq);
    mosquitto_loop_write(mosq, 1);
    return Status::ok();
  }

  static void onLog(mosquitto*, void* self_ptr, int level, const char* text) {
    if (level == MOSQ_LOG_ERR && text)
      static_cast<Client*>(self_ptr)->last_log_error_ = std::string(text).substr(0, 200);
  }

  static void onConnect(mosquitto* mosq, void* self_ptr, int rc) {
    auto* self = static_cast<Client*>(self_ptr);
    if (rc != 0) {
      self->broken_ =
          std::string("the broker refused the connection: ") + mosquitto_connack_string(rc);
      return;
    }
    const auto& topics = self->spec().mqtt.topics;
    std::vector<char*> filters;
    for (const auto& t : topics) filters.push_back(const_cast<char*>(t.c_str()));
    rc = mosquitto_subscribe_multiple(mosq, nullptr, static_cast<int>(filters.size()),
                                      filters.data(), 1, 0, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) self->broken_ = "subscribe: " + mosqError(rc);
  }

  static void onSubscribe(mosquitto*, void* self_ptr, int, int count, const int* granted) {
    auto* self = static_cast<Client*>(self_ptr);
    const auto& topics = self->spec().mqtt.topics;
    for (int i = 0; i < count && i < static_cast<int>(topics.size()); ++i) {
      if (granted[i] > 2) {
        self->broken_ = "the broker refused the subscription to '" + topics[i] + "'";
        return;
      }
    }
    self->connected_once_ = true;
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->state_.error.empty())
      FIREHUB_LOG(kInfo, "mqtt-source", "feed " << self->spec().id << " subscribed again");
    self->state_.error.clear();
    self->state_.connected = true;
    self->state_.connected_at = nowMs();
  }

  static void onMessage(mosquitto*, void* self_ptr, const mosquitto_message* msg) {
    auto* self = static_cast<Client*>(self_ptr);
    if (!self->broken_.empty()) return;  // this connection is being dropped: sent again later
    self->take(msg);
  }

  // One message into the lake; on failure the connection is dropped before its PUBACK leaves.
  void take(const mosquitto_message* msg) {
    const std::string where = std::string("mqtt ") + msg->topic;
    pipeline::IngestRequest in;
    in.feed_id = spec().id;
    in.body = std::string_view(static_cast<const char*>(msg->payload),
                               msg->payload ? static_cast<size_t>(msg->payloadlen) : 0);
    in.content_type = spec().mqtt.content_type;
    in.transport = "mqtt";
    in.source = where;
    auto summary = owner_.pipeline_.ingest(in);
    bool dead = false;
    if (!summary.isOk()) {
      const auto code = summary.status().code();
      auto feed = owner_.feeds_.get(spec().id);
      if (code != StatusCode::kInvalidArgument || !feed || feed->paused()) {
        broken_ = "not stored, the broker will send it again: " + summary.status().message();
        return;
      }
      Status kept = keepUnreadable(owner_.lake_, spec(), summary.status().message(), in.body, where,
                                   in.content_type, {});
      if (!kept.isOk()) {
        broken_ = "not stored, the broker will send it again: " + kept.message();
        return;
      }
      dead = true;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.messages;
    if (dead || (summary.isOk() && summary->rejected > 0)) ++state_.dead_lettered;
    state_.last_message_at = nowMs();
  }

  MqttSources& owner_;
  std::atomic<bool> stopping_{false};
  // Set from the client's callbacks (on this thread) when the connection must be dropped.
  std::string broken_;
  std::string last_log_error_;  // the client library's last error line (OpenSSL's reason)
  bool connected_once_ = false;
  mutable std::mutex mu_;
  MqttSourceState state_;
  std::thread thread_;
};

MqttSources::MqttSources(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds,
                         lake::Lake& lake, net::OutboundPolicy policy)
    : pipeline_(pipeline),
      feeds_(feeds),
      lake_(lake),
      policy_(std::move(policy)),
      workers_(feeds,
               {"mqtt-source", [](const registry::FeedSpec& s) { return !s.mqtt.topics.empty(); },
                [](const registry::FeedSpec& a, const registry::FeedSpec& b) {
                  return a.mqtt == b.mqtt && a.connector == b.connector;
                },
                [this](const registry::FeedSpec& s) -> std::unique_ptr<SourceWorker> {
                  return std::make_unique<Client>(*this, s);
                },
                [](const registry::FeedSpec& s) {
                  return "subscribes to " + s.mqtt.topics.front() +
                         (s.mqtt.topics.size() > 1 ? ", ..." : "") + " at " + s.mqtt.host + ":" +
                         std::to_string(s.mqtt.port);
                }}) {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

MqttSources::~MqttSources() { stop(); }

void MqttSources::start() { workers_.start(); }

void MqttSources::stop() { workers_.stop(); }

std::optional<MqttSourceState> MqttSources::state(const std::string& feed) const {
  std::optional<MqttSourceState> out;
  workers_.with(feed, [&](SourceWorker& w) { out = static_cast<Client&>(w).state(); });
  return out;
}

}  // namespace firehub::transport
