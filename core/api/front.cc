// The plain-HTTP front: one epoll thread for every connection, workers for whole requests.
#include "api/front.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "firehub/log.h"

namespace firehub::api {
namespace {

thread_local bool t_taken = false;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void setBlocking(int fd, bool blocking) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

std::string reply(int status, const char* reason, const std::string& detail) {
  const std::string body = R"({"error":")" +
                           std::string(status == 503   ? "unavailable"
                                       : status == 408 ? "timeout"
                                                       : "invalid_argument") +
                           R"(","detail":")" + detail + "\"}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\n" +
         (status == 503 ? "Retry-After: 5\r\n" : "") +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Poco's server session with the count of bytes it has read past the request it answered (a
// pipelined next request).
class Session : public Poco::Net::HTTPServerSession {
 public:
  using HTTPServerSession::HTTPServerSession;
  int pending() const { return buffered(); }
};

}  // namespace

void markConnectionTaken() { t_taken = true; }

EventFront::EventFront(const Poco::Net::ServerSocket& listening,
                       Poco::Net::HTTPRequestHandlerFactory* factory,
                       Poco::Net::HTTPServerParams::Ptr params, const Limits& limits)
    : listening_(listening), factory_(factory), params_(std::move(params)), limits_(limits) {}

EventFront::~EventFront() { stop(); }

void EventFront::start() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const int lfd = listening_.impl()->sockfd();
  setBlocking(lfd, false);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = wake_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
  // Workers start as requests need them (a hub pushed to over a few connections keeps a few),
  // up to http.threads.
  for (int i = 0; i < std::min(4, std::max(1, limits_.threads)); ++i)
    workers_.emplace_back([this] { work(); });
  loop_thread_ = std::thread([this] {
    log::nameThread("fh-http-front");
    loop();
  });
}

void EventFront::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
  }
  if (loop_thread_.joinable()) loop_thread_.join();
  ready_cv_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  for (auto& [fd, conn] : conns_) ::close(fd);
  conns_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [fd, client] : ready_) ::close(fd);
  for (auto& [fd, client] : parked_) ::close(fd);
  ready_.clear();
  parked_.clear();
  if (epoll_ >= 0) ::close(epoll_);
  if (wake_ >= 0) ::close(wake_);
  epoll_ = wake_ = -1;
}

void EventFront::loop() {
  const int lfd = listening_.impl()->sockfd();
  epoll_event events[256];
  int64_t last_scan = nowMs();
  while (!stopping_) {
    const int n = epoll_wait(epoll_, events, 256, 250);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        accept();
      } else if (fd == wake_) {
        uint64_t count;
        (void)!::read(wake_, &count, sizeof count);
        std::vector<std::pair<int, std::string>> parked;
        {
          std::lock_guard<std::mutex> lock(mu_);
          parked.swap(parked_);
        }
        for (auto& [pfd, client] : parked) {
          conns_[pfd] = {pfd, client, nowMs() + limits_.keep_alive_s * 1000LL, false};
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
          ev.data.fd = pfd;
          epoll_ctl(epoll_, EPOLL_CTL_ADD, pfd, &ev);
          readable(pfd);  // what arrived while it was with the worker
        }
      } else if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        close(fd, nullptr);
      } else {
        readable(fd);
      }
    }
    const int64_t now = nowMs();
    if (now - last_scan >= 250) {
      last_scan = now;
      std::vector<std::pair<int, bool>> expired;
      for (const auto& [fd, conn] : conns_) {
        if (now >= conn.deadline_ms) expired.emplace_back(fd, conn.head_started);
      }
      for (const auto& [fd, head_started] : expired) {
        close(fd, head_started ? "408" : nullptr);
      }
    }
  }
}

void EventFront::accept() {
  const int lfd = listening_.impl()->sockfd();
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int fd =
        accept4(lfd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        FIREHUB_LOG(kWarning, "api",
                    "out of file descriptors: a connection waits (raise the "
                    "open files limit, ulimit -n)");
      }
      return;
    }
    char host[INET6_ADDRSTRLEN] = "";
    if (addr.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, host, sizeof host);
    } else if (addr.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, host, sizeof host);
    }
    // Answers go out as written (a head and a body are two writes: with Nagle's algorithm the
    // body would wait for the client's delayed acknowledgement of the head, 40 ms).
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::string client = host;
    std::string refusal;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (open_.load() >= limits_.max_connections) {
        refusal = reply(503, "Service Unavailable",
                        "the hub holds " + std::to_string(limits_.max_connections) +
                            " connections already (http.max_connections); retry");
      } else if (limits_.max_per_client > 0 && per_client_[client] >= limits_.max_per_client) {
        refusal = reply(503, "Service Unavailable",
                        "this address has " + std::to_string(limits_.max_per_client) +
                            " connections open to the hub already "
                            "(http.max_connections_per_client); close some and retry");
        if (per_client_[client] == 0) per_client_.erase(client);
      } else {
        ++per_client_[client];
        ++open_;
      }
    }
    if (!refusal.empty()) {
      ++refused_;
      (void)!::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    // A new connection may wait as long as an idle one for its first request.
    conns_[fd] = {fd, client, nowMs() + limits_.keep_alive_s * 1000LL, false};
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
}

// Bytes arrived: looked at without taking them (the worker's Poco session reads them); once the
// head is whole the connection goes to a worker.
void EventFront::readable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  std::string head(limits_.max_head_bytes, '\0');
  const ssize_t n = ::recv(fd, head.data(), head.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return close(fd, nullptr);  // the client closed it
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close(fd, nullptr);
    return;
  }
  head.resize(static_cast<size_t>(n));
  if (head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    const std::string client = it->second.client;
    conns_.erase(it);
    setBlocking(fd, true);
    bool more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace_back(fd, client);
      more = idle_ < ready_.size() && workers_.size() < static_cast<size_t>(limits_.threads);
    }
    if (more) workers_.emplace_back([this] { work(); });  // only this thread adds workers
    ready_cv_.notify_one();
    return;
  }
  if (static_cast<size_t>(n) >= limits_.max_head_bytes) return close(fd, "431");
  if (!it->second.head_started) {
    it->second.head_started = true;
    it->second.deadline_ms = nowMs() + limits_.header_timeout_s * 1000LL;
  }
}

void EventFront::close(int fd, const char* status) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  if (status) {
    const std::string text =
        std::strcmp(status, "408") == 0
            ? reply(408, "Request Timeout",
                    "the request head did not arrive within " +
                        std::to_string(limits_.header_timeout_s) + " s (http.header_timeout_s)")
            : reply(431, "Request Header Fields Too Large",
                    "the request head is larger than " + std::to_string(limits_.max_head_bytes) +
                        " bytes");
    (void)!::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  const std::string client = it->second.client;
  conns_.erase(it);
  release(client);
}

void EventFront::release(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  --open_;
}

void EventFront::park(int fd, const std::string& client) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    parked_.emplace_back(fd, client);
  }
  const uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof one);
}

void EventFront::work() {
  log::nameThread("fh-http");
  for (;;) {
    std::pair<int, std::string> next;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++idle_;
      ready_cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
      --idle_;
      if (ready_.empty()) return;  // stopping
      next = std::move(ready_.front());
      ready_.pop_front();
    }
    ++busy_;
    serve(next.first, next.second);
    --busy_;
  }
}

// Long: Poco's request-and-answer for one connection (HTTPServerConnection's, one request at a
// time), then the connection back to the loop or closed.
void EventFront::serve(int fd, const std::string& client) {
  t_taken = false;
  bool keep = false;
  int kept_fd = -1;
  {
    Poco::Net::StreamSocket socket(new Poco::Net::StreamSocketImpl(fd));  // closes fd when done
    socket.setReceiveTimeout(Poco::Timespan(limits_.timeout_s, 0));
    socket.setSendTimeout(Poco::Timespan(limits_.timeout_s, 0));
    Session session(socket, params_);
    for (;;) {
      keep = false;
      try {
        Poco::Net::HTTPServerResponseImpl response(session);
        Poco::Net::HTTPServerRequestImpl request(response, session, params_.get());
        response.setDate(Poco::Timestamp());
        response.setVersion(request.getVersion());
        response.setKeepAlive(params_->getKeepAlive() && request.getKeepAlive() &&
                              session.canKeepAlive() && !stopping_);
        std::unique_ptr<Poco::Net::HTTPRequestHandler> handler(
            factory_->createRequestHandler(request));
        if (request.getExpectContinue() && response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK)
          response.sendContinue();
        handler->handleRequest(request, response);
        keep = !t_taken && response.getKeepAlive() && session.canKeepAlive() && !stopping_;
      } catch (const Poco::Net::NoMessageException&) {
      } catch (const Poco::Net::MessageException& e) {
        const std::string text = reply(400, "Bad Request", "malformed request");
        try {
          socket.sendBytes(text.data(), static_cast<int>(text.size()));
        } catch (const Poco::Exception&) {
        }
      } catch (const Poco::Exception&) {  // the client went away or timed out: nothing to tell
      } catch (const std::exception& e) {
        FIREHUB_LOG(kWarning, "api", "request handler: " << e.what());
      }
      if (!keep) break;
      if (session.pending() > 0) continue;  // a pipelined request is read already
      kept_fd = ::dup(fd);
      break;
    }
  }  // the session and socket close `fd`; a kept connection lives on in `kept_fd`
  if (kept_fd >= 0) {
    setBlocking(kept_fd, false);
    park(kept_fd, client);
  } else {
    release(client);
  }
}

}  // namespace firehub::api
