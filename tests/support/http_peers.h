// HTTP peers for tests: a reader of server-sent events, a webhook receiver and an agency API.
#pragma once

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace firehub::testing {

// Reads server-sent events from `path` on a thread until `done(text so far)` or the deadline.
class EventReader {
 public:
  EventReader(uint16_t port, const std::string& path, std::function<bool(const std::string&)> done,
              std::map<std::string, std::string> headers = {})
      : thread_([this, port, path, done, headers] {
          try {
            Poco::Net::HTTPClientSession session("127.0.0.1", port);
            session.setTimeout(Poco::Timespan(1, 0));
            Poco::Net::HTTPRequest request("GET", path, Poco::Net::HTTPMessage::HTTP_1_1);
            for (const auto& [k, v] : headers) request.set(k, v);
            session.sendRequest(request);
            Poco::Net::HTTPResponse response;
            std::istream& in = session.receiveResponse(response);
            content_type_ = response.getContentType();
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            std::string line;
            while (std::chrono::steady_clock::now() < deadline && !stop_) {
              if (!std::getline(in, line)) {
                if (in.eof()) break;
                in.clear();  // receive timeout: keep reading
                continue;
              }
              std::lock_guard<std::mutex> lock(mu_);
              text_ += line + "\n";
              if (done(text_)) break;
            }
          } catch (const Poco::Exception&) {
          }
          finished_ = true;
        }) {}
  ~EventReader() {
    stop_ = true;
    thread_.join();
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  bool finished() const { return finished_; }
  std::string contentType() const { return content_type_; }

 private:
  std::mutex mu_;
  std::string text_;
  std::string content_type_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

// Counts webhook deliveries; answers 500 to the first `failures` requests.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(int failures) : failures_(failures) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket,
                                                      new Poco::Net::HTTPServerParams);
    server_->start();
  }
  ~WebhookReceiver() { server_->stopAll(true); }
  uint16_t port() const { return port_; }
  struct Delivery {
    std::string body, signature;
  };
  std::vector<Delivery> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  int attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(WebhookReceiver& r) : r_(r) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
      std::ostringstream body;
      Poco::StreamCopier::copyStream(req.stream(), body);
      bool fail;
      {
        std::lock_guard<std::mutex> lock(r_.mu_);
        fail = r_.attempts_++ < r_.failures_;
        if (!fail) r_.received_.push_back({body.str(), req.get("X-Firehub-Signature", "")});
      }
      resp.setStatus(fail ? Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR
                          : Poco::Net::HTTPResponse::HTTP_OK);
      resp.send() << (fail ? "not now" : "ok");
    }

   private:
    WebhookReceiver& r_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(WebhookReceiver& r) : r_(r) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(r_);
    }

   private:
    WebhookReceiver& r_;
  };
  std::mutex mu_;
  int failures_;
  int attempts_ = 0;
  std::vector<Delivery> received_;
  uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

// An agency's HTTP API on loopback, for poll feeds: every request is noted (its URI and
// headers) and answered by `answer`, which the test sets.
class AgencyApi {
 public:
  struct Request {
    std::string uri;
    std::map<std::string, std::string> headers;
  };
  using Answer = std::function<void(const Request&, Poco::Net::HTTPServerResponse&)>;
  explicit AgencyApi(Answer answer) : answer_(std::move(answer)) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket,
                                                      new Poco::Net::HTTPServerParams);
    server_->start();
  }
  ~AgencyApi() { server_->stopAll(true); }
  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(AgencyApi& api) : api_(api) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
      Request r{req.getURI(), {}};
      for (const auto& [k, v] : req) r.headers[k] = v;
      {
        std::lock_guard<std::mutex> lock(api_.mu_);
        api_.requests_.push_back(r);
      }
      api_.answer_(r, resp);
    }

   private:
    AgencyApi& api_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(AgencyApi& api) : api_(api) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(api_);
    }

   private:
    AgencyApi& api_;
  };
  Answer answer_;
  std::mutex mu_;
  std::vector<Request> requests_;
  uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace firehub::testing
