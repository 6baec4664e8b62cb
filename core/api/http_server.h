// The API's HTTP server: Poco's HTTP connection handling on a thread pool of the API's own (not
// Poco's process-wide default pool of 16 threads, which the TCP listeners share), with a cap on
// the connections one client address holds at once. A client past its cap gets a 503 and the
// connection is closed, so one address (idle keep-alives, slow senders, a flood) cannot take
// every thread. Time limits come from the HTTPServerParams (per read and write, keep-alive).
// @remark stopAll() before destruction; the pool must outlive the server.
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/ThreadPool.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace firehub::api {

// A request handler factory whose server can tell its connections to stop (Poco keeps that event
// for its own HTTPServer).
class StoppableHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  void notifyStopped(const void* server, bool abort_current) {
    serverStopped(server, abort_current);
  }
};

class LimitedHttpServer : public Poco::Net::TCPServer {
 public:
  // Takes ownership of `factory`.
  LimitedHttpServer(StoppableHandlerFactory* factory, Poco::ThreadPool& pool,
                    const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                    size_t max_per_client);
  ~LimitedHttpServer() override;
  // Stops accepting and asks open connections to end (keep-alives close after their request).
  void stopAll(bool abort_current);
  // Connections refused because their client held max_per_client already.
  uint64_t refused() const { return refused_.load(); }

  // Counts a client's connection; false when it is over the cap (the slot is still taken, and
  // released by release()).
  bool admit(const std::string& client);
  void release(const std::string& client);

 private:
  class Factory;
  // The connection factory is made before the server it points back to: it reads the server
  // through this member, set in the constructor's body (before start(), so before any connection).
  LimitedHttpServer* self_ = nullptr;
  StoppableHandlerFactory* handlers_;  // owned by the connection factory the server owns
  size_t max_per_client_;
  std::mutex mu_;
  std::map<std::string, size_t> open_;  // client address -> connections open
  std::atomic<uint64_t> refused_{0};
};

}  // namespace firehub::api
