// The API's plain-HTTP front: one thread waits on every connection at once (epoll): it accepts,
// keeps idle keep-alive connections and requests whose head is still arriving, and hands a
// connection to a worker only once a whole request head is there. A worker answers that request
// (Poco's HTTP request and response over the socket, the Router as the handler) and gives the
// connection back. Idle and slow clients hold no thread; each has time limits (the head within
// http.header_timeout_s, an idle connection closed after http.keep_alive_s). Event streams of
// risk deltas leave the workers too: the StreamHub writes them all from one thread.
// Private to the api module. HTTPS keeps Poco's server (LimitedHttpServer), a thread per
// connection: its TLS sessions live in Poco's sockets.
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/layers.h"
#include "firehub/api.h"

namespace firehub::api {

// Set by a handler that took its connection's socket over (an event stream handed to the
// StreamHub): the worker then neither answers nor keeps the connection.
void markConnectionTaken();

class StreamHub;

class EventFront {
 public:
  struct Limits {
    int threads = 256;
    size_t max_connections = 20000;  // open at once, all clients together
    size_t max_per_client = 64;      // 0: no cap
    int header_timeout_s = 10;       // from a request's first byte to the end of its head
    int keep_alive_s = 30;           // an idle connection's life
    int timeout_s = 10;              // each read and write of a worker
    size_t max_head_bytes = 64u << 10;
  };
  // Takes ownership of `factory`.
  EventFront(const Poco::Net::ServerSocket& listening,
             Poco::Net::HTTPRequestHandlerFactory* factory, Poco::Net::HTTPServerParams::Ptr params,
             const Limits& limits);
  ~EventFront();
  void start();
  // Stops accepting, closes every connection the front holds and waits for the workers' requests
  // (bounded by their time limits).
  void stop();
  size_t connections() const { return open_.load(); }
  uint64_t refused() const { return refused_.load(); }
  // Requests being answered by workers now.
  size_t busy() const { return busy_.load(); }

 private:
  struct Conn {
    int fd = -1;
    std::string client;
    int64_t deadline_ms = 0;  // idle or head deadline
    bool head_started = false;
  };
  void loop();
  void work();
  void accept();
  void readable(int fd);
  void park(int fd, const std::string& client);   // from a worker: wait for the next request
  void close(int fd, const char* reply);          // with a last answer, or none
  void serve(int fd, const std::string& client);  // a worker's one request
  void release(const std::string& client);

  Poco::Net::ServerSocket listening_;
  std::unique_ptr<Poco::Net::HTTPRequestHandlerFactory> factory_;
  Poco::Net::HTTPServerParams::Ptr params_;
  Limits limits_;
  int epoll_ = -1;
  int wake_ = -1;  // eventfd: parked connections waiting, or stop
  std::thread loop_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};

  std::mutex mu_;  // the queues and counts below
  std::condition_variable ready_cv_;
  std::deque<std::pair<int, std::string>> ready_;    // whole heads waiting for a worker
  std::vector<std::pair<int, std::string>> parked_;  // from workers, for the loop to watch
  std::map<std::string, size_t> per_client_;
  size_t idle_ = 0;                      // workers waiting for a request
  std::unordered_map<int, Conn> conns_;  // watched by the loop (its thread only)
  std::atomic<size_t> open_{0};
  std::atomic<size_t> busy_{0};
  std::atomic<uint64_t> refused_{0};
};

// Event streams of risk deltas written from one thread: each client's socket (handed over after
// the response head) gets the events past its place, keep-alive comments, and is dropped when it
// falls too far behind (kMaxBacklog bytes unsent), goes away, or its key is revoked.
class StreamHub {
 public:
  StreamHub(const ApiContext& ctx, DeltaStream& stream);
  ~StreamHub();
  void start();
  void stop();
  // Takes `fd` (non-blocking from here on): the client's place in the stream and the key that
  // opened it (empty: anonymous).
  void add(int fd, std::string last_event_id, std::string key_id);
  size_t clients() const { return count_.load(); }
  static constexpr size_t kMaxBacklog = 8u << 20;

 private:
  struct Client {
    int fd;
    std::string last;
    std::string key_id;
    std::string pending;
    int64_t last_write_ms = 0;
  };
  void loop();
  bool flush(Client& c);  // false: the client is gone

  const ApiContext& ctx_;
  DeltaStream& stream_;
  std::mutex mu_;
  std::vector<Client> joining_;
  std::atomic<size_t> count_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace firehub::api
