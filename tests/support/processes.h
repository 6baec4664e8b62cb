// Processes for end-to-end and fault tests: `firehub serve`, `firehub broker` and a Mosquitto
// broker, started, killed with -9 or stopped, as an operator would.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "test_support.h"

namespace firehub::testing {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string firehubBinary() { return buildDir() + "/bin/firehub"; }

// Runs a command through the shell, returns exit status and stdout.
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class HubProcess {
 public:
  HubProcess(std::string data_dir, std::string plugins_dir, std::string log,
             std::string config = "")
      : data_dir_(std::move(data_dir)),
        plugins_dir_(std::move(plugins_dir)),
        log_(std::move(log)),
        config_(std::move(config)) {}
  ~HubProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  bool start() {
    std::remove((data_dir_ + "/http.address").c_str());
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log_.c_str(), "a", stderr);
      (void)f;
      if (config_.empty()) {
        execl(firehubBinary().c_str(), "firehub", "serve", "--init", "--data-dir",
              data_dir_.c_str(), "--http", "127.0.0.1:0", "--plugins-dir", plugins_dir_.c_str(),
              static_cast<char*>(nullptr));
      } else {
        execl(firehubBinary().c_str(), "firehub", "serve", "--init", "--config", config_.c_str(),
              "--data-dir", data_dir_.c_str(), "--http", "127.0.0.1:0", "--plugins-dir",
              plugins_dir_.c_str(), static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    bool up = waitFor([&] { return !readFile(data_dir_ + "/http.address").empty(); });
    if (!up) return false;
    std::string address = readFile(data_dir_ + "/http.address");
    port_ = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    return true;
  }

  // SIGTERM and wait (bounded) for a clean exit. Returns the exit code, or -1.
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    bool exited =
        waitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, std::chrono::seconds(30));
    if (!exited) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  Http get(const std::string& path) {
    return http("127.0.0.1", port_, "GET", path, "", "", adminKey(data_dir_));
  }
  Http post(const std::string& path, const std::string& body, const std::string& type) {
    return http("127.0.0.1", port_, "POST", path, body, type, adminKey(data_dir_));
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // kill -9, as a power cut or the OOM killer would, and reap it.
  void killNow() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string log() const { return readFile(log_); }

 private:
  std::string data_dir_, plugins_dir_, log_, config_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// `firehub broker` in its own process (the mock cluster outlives hubs killed with -9).
class BrokerProcess {
 public:
  BrokerProcess(std::string dir, int brokers = 3, int partitions = 6)
      : dir_(std::move(dir)), brokers_(brokers), partitions_(partitions) {}
  ~BrokerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool start() {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen((dir_ + "/broker.log").c_str(), "a", stderr);
      (void)f;
      std::string n = std::to_string(brokers_), p = std::to_string(partitions_);
      execl(firehubBinary().c_str(), "firehub", "broker", "--brokers", n.c_str(), "--partitions",
            p.c_str(), "--bootstrap-file", (dir_ + "/bootstrap").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    if (!waitFor([&] { return !readFile(dir_ + "/bootstrap.control").empty(); })) return false;
    bootstrap_ = readFile(dir_ + "/bootstrap");
    std::string control = readFile(dir_ + "/bootstrap.control");
    control_port_ = static_cast<uint16_t>(std::stoi(control.substr(control.rfind(':') + 1)));
    return true;
  }
  // POST to the control endpoint, e.g. "/brokers/all/down". Returns the HTTP status.
  int control(const std::string& path) {
    return http("127.0.0.1", control_port_, "POST", path, "{}", "application/json").status;
  }
  const std::string& bootstrap() const { return bootstrap_; }
  uint16_t controlPort() const { return control_port_; }
  std::string log() const { return readFile(dir_ + "/broker.log"); }

 private:
  std::string dir_;
  int brokers_;
  int partitions_;
  pid_t pid_ = -1;
  std::string bootstrap_;
  uint16_t control_port_ = 0;
};

// A real Mosquitto broker (Debian's /usr/sbin/mosquitto) on a loopback port, with a user and a
// password, persistence in `dir` and no cap on the messages it keeps for a persistent session.
class MosquittoProcess {
 public:
  MosquittoProcess(std::string dir, std::string user, std::string password)
      : dir_(std::move(dir)), user_(std::move(user)), password_(std::move(password)) {}
  // Also a TLS listener (tlsPort()) with this certificate and key.
  void withTls(std::string cert, std::string key) {
    tls_cert_ = std::move(cert);
    tls_key_ = std::move(key);
  }
  uint16_t tlsPort() const { return tls_port_; }
  ~MosquittoProcess() { stop(); }
  bool start() {
    std::filesystem::create_directories(dir_);
    if (port_ == 0) {  // free ports, kept across restarts
      Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
      Poco::Net::ServerSocket probe_tls(Poco::Net::SocketAddress("127.0.0.1", 0));
      port_ = probe.address().port();
      tls_port_ = probe_tls.address().port();
    }
    const std::string passwords = dir_ + "/passwords";
    if (run("mosquitto_passwd -b -c " + passwords + " " + user_ + " " + password_ + " 2>&1")
            .first != 0)
      return false;
    std::ofstream conf(dir_ + "/mosquitto.conf");
    conf << "allow_anonymous false\npassword_file " << passwords
         << "\npersistence true\npersistence_location " << dir_
         << "/\nmax_queued_messages 0\nuser root\nlog_dest stderr\nlistener " << port_
         << " 127.0.0.1\n";
    if (!tls_cert_.empty())
      conf << "listener " << tls_port_ << " 127.0.0.1\ncertfile " << tls_cert_ << "\nkeyfile "
           << tls_key_ << "\n";
    conf.close();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen((dir_ + "/mosquitto.log").c_str(), "a", stderr);
      (void)f;
      execl("/usr/sbin/mosquitto", "mosquitto", "-c", (dir_ + "/mosquitto.conf").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    return waitFor([&] {
      try {
        Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", port_));
        return true;
      } catch (const Poco::Exception&) {
        return false;
      }
    });
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  uint16_t port() const { return port_; }
  // Publishes each line of `lines` as one QoS 1 message to `topic` (mosquitto_pub -l).
  int publish(const std::string& topic, const std::string& lines) {
    const std::string file = dir_ + "/publish.txt";
    std::ofstream(file) << lines;
    return run("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(port_) + " -u " + user_ + " -P " +
               password_ + " -q 1 -t " + topic + " -l < " + file + " 2>&1")
        .first;
  }
  std::string log() const { return readFile(dir_ + "/mosquitto.log"); }

 private:
  std::string dir_, user_, password_, tls_cert_, tls_key_;
  pid_t pid_ = -1;
  uint16_t port_ = 0, tls_port_ = 0;
};

}  // namespace firehub::testing
