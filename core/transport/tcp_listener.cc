#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerParams.h>

#include <chrono>
#include <thread>

#include "firehub/log.h"
#include "firehub/net.h"
#include "firehub/transport.h"

namespace firehub::transport {
namespace {

class Connection : public Poco::Net::TCPServerConnection {
 public:
  Connection(const Poco::Net::StreamSocket& socket, pipeline::Pipeline& pipeline,
             std::string feed_id, TcpOptions options, std::shared_ptr<std::atomic<bool>> stopping)
      : TCPServerConnection(socket),
        pipeline_(pipeline),
        feed_id_(std::move(feed_id)),
        options_(options),
        stopping_(std::move(stopping)) {}

  void run() override {
    auto& s = socket();
    std::string peer = s.peerAddress().toString();
    FIREHUB_LOG(kInfo, "tcp", "feed " << feed_id_ << ": device connected from " << peer);
    s.setReceiveTimeout(Poco::Timespan(1, 0));
    std::string buffer;
    char chunk[8192];
    int idle_s = 0;
    while (!stopping_->load()) {
      int n = 0;
      try {
        n = s.receiveBytes(chunk, sizeof chunk);
      } catch (const Poco::TimeoutException&) {
        if (++idle_s >= options_.idle_timeout_s) break;
        continue;
      } catch (const Poco::Exception& e) {
        FIREHUB_LOG(kWarning, "tcp",
                    "feed " << feed_id_ << ": " << peer << ": " << e.displayText());
        break;
      }
      if (n <= 0) break;  // peer closed
      idle_s = 0;
      buffer.append(chunk, static_cast<size_t>(n));
      pipeline::IngestRequest req;
      req.feed_id = feed_id_;
      req.body = buffer;
      req.content_type = kStreamContentType;
      req.transport = "tcp";
      auto result = pipeline_.ingest(req);
      if (!result.isOk()) {
        // Nothing was committed, so nothing is confirmed: the device sends the frames again.
        FIREHUB_LOG(kError, "tcp", "feed " << feed_id_ << ": " << result.status().toString());
        if (!result.status().retryable()) break;
        buffer.clear();
        continue;
      }
      FIREHUB_LOG(kDebug, "tcp",
                  "feed " << feed_id_ << ": " << buffer.size() << " bytes buffered, "
                          << result->consumed << " used, " << result->accepted << " accepted, "
                          << result->rejected << " rejected, " << result->reply.size()
                          << " reply bytes");
      try {
        if (!result->reply.empty())
          s.sendBytes(result->reply.data(), static_cast<int>(result->reply.size()));
      } catch (const Poco::Exception& e) {
        FIREHUB_LOG(kWarning, "tcp",
                    "feed " << feed_id_ << ": reply to " << peer << ": " << e.displayText());
        break;
      }
      buffer.erase(0, std::min(result->consumed, buffer.size()));
      if (buffer.size() > options_.max_buffer_bytes) {
        FIREHUB_LOG(kWarning, "tcp",
                    "feed " << feed_id_ << ": " << peer << " sent " << buffer.size()
                            << " bytes without a complete frame; dropped");
        buffer.clear();
      }
    }
    FIREHUB_LOG(kInfo, "tcp", "feed " << feed_id_ << ": " << peer << " disconnected");
  }

 private:
  pipeline::Pipeline& pipeline_;
  std::string feed_id_;
  TcpOptions options_;
  std::shared_ptr<std::atomic<bool>> stopping_;
};

class Factory : public Poco::Net::TCPServerConnectionFactory {
 public:
  Factory(pipeline::Pipeline& pipeline, std::string feed_id, TcpOptions options,
          std::shared_ptr<std::atomic<bool>> stopping)
      : pipeline_(pipeline),
        feed_id_(std::move(feed_id)),
        options_(options),
        stopping_(std::move(stopping)) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new Connection(socket, pipeline_, feed_id_, options_, stopping_);
  }

 private:
  pipeline::Pipeline& pipeline_;
  std::string feed_id_;
  TcpOptions options_;
  std::shared_ptr<std::atomic<bool>> stopping_;
};

std::string listenAddress(const std::string& config_json) {
  try {
    Poco::JSON::Parser parser;
    auto obj = parser.parse(config_json).extract<Poco::JSON::Object::Ptr>();
    if (obj->has("listen") && obj->get("listen").isString())
      return obj->getValue<std::string>("listen");
  } catch (const Poco::Exception&) {
  }
  return "";
}

}  // namespace

TcpListeners::TcpListeners(pipeline::Pipeline& pipeline, TcpOptions options)
    : pipeline_(pipeline),
      options_(options),
      stopping_(std::make_shared<std::atomic<bool>>(false)) {}

TcpListeners::~TcpListeners() { stopAll(); }

Status TcpListeners::ensure(const registry::Feed& feed) {
  std::string listen = listenAddress(feed.spec().config_json);
  if (listen.empty()) return Status::ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (servers_.count(feed.spec().id)) return Status::ok();
  try {
    Poco::Net::SocketAddress address(listen);
    Poco::Net::ServerSocket socket;
    net::listenExclusive(socket, address, 64);  // a taken port is an error, not a shared one
    uint16_t port = socket.address().port();
    auto* params = new Poco::Net::TCPServerParams;
    params->setMaxThreads(options_.max_connections);
    params->setMaxQueued(options_.max_connections);
    auto server = std::make_unique<Poco::Net::TCPServer>(
        new Factory(pipeline_, feed.spec().id, options_, stopping_), socket, params);
    server->start();
    servers_[feed.spec().id] = std::move(server);
    ports_[feed.spec().id] = port;
    FIREHUB_LOG(
        kInfo, "tcp",
        "feed " << feed.spec().id << " listening on " << address.host().toString() << ":" << port);
  } catch (const Poco::Exception& e) {
    return Status::unavailable("feed " + feed.spec().id + ": cannot listen on " + listen + ": " +
                               e.displayText());
  }
  return Status::ok();
}

std::optional<uint16_t> TcpListeners::port(const std::string& feed_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ports_.find(feed_id);
  if (it == ports_.end()) return std::nullopt;
  return it->second;
}

void TcpListeners::stopAll() {
  stopping_->store(true);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [_, server] : servers_) {
    server->stop();
    // Connection threads notice `stopping_` within their 1 s receive timeout; wait (bounded) so
    // none outlives the pipeline it uses.
    for (int i = 0; i < 500 && server->currentConnections() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  servers_.clear();
  ports_.clear();
}

}  // namespace firehub::transport
