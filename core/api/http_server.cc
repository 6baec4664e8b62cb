#include "api/http_server.h"

#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>

namespace firehub::api {
namespace {

std::string clientOf(const Poco::Net::StreamSocket& socket) {
  try {
    return socket.peerAddress().host().toString();
  } catch (const Poco::Exception&) {
    return "";
  }
}

// A connection of a client within its cap: Poco's HTTP connection, releasing its slot when done.
class CountedConnection : public Poco::Net::HTTPServerConnection {
 public:
  CountedConnection(const Poco::Net::StreamSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                    Poco::Net::HTTPRequestHandlerFactory::Ptr factory, LimitedHttpServer& server,
                    std::string client)
      : HTTPServerConnection(socket, params, factory),
        server_(server),
        client_(std::move(client)) {}
  ~CountedConnection() override { server_.release(client_); }

 private:
  LimitedHttpServer& server_;
  std::string client_;
};

// A connection over its client's cap: one 503 saying so, then closed.
class RefusedConnection : public Poco::Net::TCPServerConnection {
 public:
  RefusedConnection(const Poco::Net::StreamSocket& socket, LimitedHttpServer& server,
                    std::string client, size_t cap)
      : TCPServerConnection(socket), server_(server), client_(std::move(client)), cap_(cap) {}
  ~RefusedConnection() override { server_.release(client_); }
  void run() override {
    const std::string body =
        R"({"error":"unavailable","detail":"this address has )" + std::to_string(cap_) +
        R"( connections open to the hub already (http.max_connections_per_client); close some and retry"})";
    const std::string reply =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Retry-After: 5\r\nConnection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    try {
      socket().setSendTimeout(Poco::Timespan(2, 0));
      socket().sendBytes(reply.data(), static_cast<int>(reply.size()));
      socket().shutdownSend();
    } catch (const Poco::Exception&) {  // the client is gone: nothing to tell
    }
  }

 private:
  LimitedHttpServer& server_;
  std::string client_;
  size_t cap_;
};

}  // namespace

class LimitedHttpServer::Factory : public Poco::Net::TCPServerConnectionFactory {
 public:
  Factory(LimitedHttpServer*& server, Poco::Net::HTTPServerParams::Ptr params,
          Poco::Net::HTTPRequestHandlerFactory::Ptr factory, size_t cap)
      : server_(server), params_(std::move(params)), factory_(std::move(factory)), cap_(cap) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    std::string client = clientOf(socket);
    if (!server_->admit(client)) return new RefusedConnection(socket, *server_, client, cap_);
    return new CountedConnection(socket, params_, factory_, *server_, client);
  }

 private:
  LimitedHttpServer*& server_;
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
  size_t cap_;
};

LimitedHttpServer::LimitedHttpServer(StoppableHandlerFactory* factory, Poco::ThreadPool& pool,
                                     const Poco::Net::ServerSocket& socket,
                                     Poco::Net::HTTPServerParams::Ptr params, size_t max_per_client)
    : TCPServer(new Factory(self_, params, Poco::Net::HTTPRequestHandlerFactory::Ptr(factory),
                            max_per_client),
                pool, socket, params),
      handlers_(factory),
      max_per_client_(max_per_client) {
  self_ = this;
}

LimitedHttpServer::~LimitedHttpServer() = default;

void LimitedHttpServer::stopAll(bool abort_current) {
  stop();
  handlers_->notifyStopped(this, abort_current);
}

bool LimitedHttpServer::admit(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (++open_[client] <= max_per_client_ || max_per_client_ == 0) return true;
  ++refused_;
  return false;
}

void LimitedHttpServer::release(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(client);
  if (it != open_.end() && --it->second == 0) open_.erase(it);
}

}  // namespace firehub::api
