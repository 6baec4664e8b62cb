// `firehub broker`: librdkafka's mock cluster as a process of its own, so a hub can crash while
// the broker keeps what it received, and several hubs can share one broker (tests, small sites).
// A control endpoint takes brokers down and up and injects produce errors:
//   GET  /status                      {"bootstrap_servers", "brokers", "down": [...]}
//   POST /brokers/{id|all}/down|up
//   POST /errors/produce?count=N&error=CODE   (librdkafka error code, default 6 NOT_LEADER)
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli.h"
#include "firehub/log.h"

namespace firehub::cli {
namespace {

struct BrokerOptions {
  int brokers = 3;
  int partitions = 6;
  std::string bootstrap_file;
  std::string control = "127.0.0.1:0";
};

class Control : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Control(bus::EmbeddedBroker& broker) : broker_(broker) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    Poco::URI uri(req.getURI());
    std::vector<std::string> p;
    uri.getPathSegments(p);
    int status = 200;
    std::string body;
    if (p.size() == 1 && p[0] == "status" && req.getMethod() == "GET") {
      body = statusJson();
    } else if (p.size() == 3 && p[0] == "brokers" && req.getMethod() == "POST" &&
               (p[2] == "down" || p[2] == "up")) {
      bool down = p[2] == "down";
      int only = p[1] == "all" ? 0 : std::atoi(p[1].c_str());
      if (p[1] != "all" && (only < 1 || only > broker_.brokerCount())) {
        status = 404;
        body = R"({"error":"not_found","detail":"no broker )" + p[1] + "\"}";
      } else {
        for (int id = 1; id <= broker_.brokerCount(); ++id) {
          if (only == 0 || id == only) broker_.setBrokerDown(id, down);
        }
        FIREHUB_LOG(kWarning, "broker", "broker(s) " << p[1] << (down ? " down" : " up"));
        body = statusJson();
      }
    } else if (p.size() == 2 && p[0] == "errors" && p[1] == "produce" &&
               req.getMethod() == "POST") {
      int count = 1, error = 6;
      for (const auto& [k, v] : uri.getQueryParameters()) {
        if (k == "count") count = std::atoi(v.c_str());
        if (k == "error") error = std::atoi(v.c_str());
      }
      if (count < 1 || count > 100000) {
        status = 400;
        body = R"({"error":"invalid_argument","detail":"count must be 1..100000"})";
      } else {
        broker_.injectProduceErrors(count, error);
        FIREHUB_LOG(kWarning, "broker",
                    "next " << count << " produce requests fail with error " << error);
        body = R"({"injected":)" + std::to_string(count) + R"(,"error":)" + std::to_string(error) +
               "}";
      }
    } else {
      status = 404;
      body =
          R"({"error":"not_found","detail":"GET /status, POST /brokers/{id|all}/down|up, POST /errors/produce?count=&error="})";
    }
    resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    resp.setContentType("application/json");
    resp.setContentLength(static_cast<std::streamsize>(body.size()));
    resp.send() << body;
  }

 private:
  std::string statusJson() {
    std::string down;
    for (int id : broker_.downBrokers()) down += (down.empty() ? "" : ",") + std::to_string(id);
    return R"({"bootstrap_servers":")" + broker_.bootstrapServers() + R"(","brokers":)" +
           std::to_string(broker_.brokerCount()) + R"(,"down":[)" + down + "]}";
  }
  bus::EmbeddedBroker& broker_;
};

class ControlFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit ControlFactory(bus::EmbeddedBroker& broker) : broker_(broker) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Control(broker_);
  }

 private:
  bus::EmbeddedBroker& broker_;
};

bool writeAtomically(const std::string& file, const std::string& text) {
  std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << text << "\n";
  }
  return std::rename(tmp.c_str(), file.c_str()) == 0;
}

int runBroker(const BrokerOptions& o) {
  blockStopSignals();
  auto broker = bus::EmbeddedBroker::start(o.brokers, o.partitions);
  if (!broker.isOk()) {
    std::cerr << "firehub broker: " << broker.status().toString() << "\n";
    return 1;
  }
  auto& b = *broker.value();
  std::unique_ptr<Poco::Net::HTTPServer> control;
  std::string control_address;
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(o.control), 64);
    control_address = socket.address().toString();
    control = std::make_unique<Poco::Net::HTTPServer>(new ControlFactory(b), socket,
                                                      new Poco::Net::HTTPServerParams);
    control->start();
  } catch (const Poco::Exception& e) {
    std::cerr << "firehub broker: control endpoint " << o.control << ": " << e.displayText()
              << "\n";
    return 1;
  }
  if (!o.bootstrap_file.empty()) {  // its folder too, as `serve` makes its data dir
    std::error_code ec;
    const auto folder = std::filesystem::path(o.bootstrap_file).parent_path();
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
  }
  if (!o.bootstrap_file.empty() &&
      (!writeAtomically(o.bootstrap_file, b.bootstrapServers()) ||
       !writeAtomically(o.bootstrap_file + ".control", control_address))) {
    std::cerr << "firehub broker: cannot write " << o.bootstrap_file << "\n";
    return 1;
  }
  std::cout << "bootstrap " << b.bootstrapServers() << "\ncontrol http://" << control_address
            << std::endl;
  FIREHUB_LOG(kInfo, "broker",
              "mock cluster of " << o.brokers << " brokers at " << b.bootstrapServers()
                                 << "; control on http://" << control_address);
  waitForStopSignal();
  control->stopAll(true);
  FIREHUB_LOG(kInfo, "broker", "stopped");
  return 0;
}

}  // namespace

void addBrokerCommand(CLI::App& app) {
  static BrokerOptions o;
  auto* cmd = app.add_subcommand(
      "broker", "Run librdkafka's mock Kafka cluster as its own process (tests, small sites)");
  cmd->add_option("--brokers", o.brokers, "Mock brokers")->check(CLI::Range(1, 9));
  cmd->add_option("--partitions", o.partitions, "Default partitions of new topics")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--bootstrap-file", o.bootstrap_file,
                  "Write the bootstrap servers here (and the control address to FILE.control)");
  cmd->add_option("--control", o.control, "HOST:PORT of the control endpoint (port 0 picks one)");
  cmd->callback([] { std::exit(runBroker(o)); });
}

}  // namespace firehub::cli
