// The duty failover of `firehub bench cluster`: three `firehub serve` processes of one cluster on
// the bench's broker; the holder of the layers duty is killed with -9 and the time until another
// node runs the duty is measured (as the surviving nodes report it themselves), several times.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "bench.h"
#include "http_client.h"

namespace firehub::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Node {
  std::string name, dir, url, key;
  pid_t pid = -1;
};

bool startNode(Node& n, const std::string& bootstrap, int session_timeout_ms) {
  std::filesystem::remove(n.dir + "/http.address");
  n.pid = fork();
  if (n.pid == 0) {
    const std::string log = n.dir + ".log";
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    const std::string sets[] = {"kafka.bootstrap.servers=" + bootstrap,
                                "cluster.id=failover-" + std::to_string(session_timeout_ms),
                                "cluster.node=" + n.name,
                                "cluster.session_timeout_ms=" + std::to_string(session_timeout_ms)};
    execl("/proc/self/exe", "firehub", "serve", "--init", "--data-dir", n.dir.c_str(), "--http",
          "127.0.0.1:0", "--set", sets[0].c_str(), "--set", sets[1].c_str(), "--set",
          sets[2].c_str(), "--set", sets[3].c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    const std::string address = readAll(n.dir + "/http.address");
    if (!address.empty()) {
      n.url = "http://" + address.substr(0, address.find_first_of("\r\n"));
      n.key = readAll(n.dir + "/admin.key");
      n.key = n.key.substr(0, n.key.find_first_of("\r\n"));
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void killNode(Node& n) {
  if (n.pid <= 0) return;
  kill(n.pid, SIGKILL);
  waitpid(n.pid, nullptr, 0);
  n.pid = -1;
}

// The node a hub names as the layers duty's holder ("" while none).
std::string layersHolder(const Node& n) {
  auto r = httpRequest(n.url, "GET", "/api/v1/cluster", "", "", n.key);
  if (r.status != 200) return "";
  const size_t at = r.body.find("\"duty\":\"layers\"");
  if (at == std::string::npos) return "";
  const size_t end = r.body.find('}', at);
  const size_t node = r.body.find("\"node\":\"", at);
  if (node == std::string::npos || node > end) return "";
  return r.body.substr(node + 8, r.body.find('"', node + 8) - node - 8);
}

}  // namespace

// Seconds from the kill of the layers duty's holder to a surviving node holding it, per round;
// empty when the cluster never settled.
std::vector<double> measureDutyFailover(const std::string& bootstrap, const std::string& dir,
                                        int rounds, int session_timeout_ms) {
  std::vector<Node> nodes(3);
  std::vector<double> out;
  for (int i = 0; i < 3; ++i) {
    nodes[i].name = "f" + std::to_string(i + 1);
    nodes[i].dir = dir + "/" + nodes[i].name;
    std::filesystem::create_directories(nodes[i].dir);
    if (!startNode(nodes[i], bootstrap, session_timeout_ms)) {
      std::cerr << "bench cluster: node " << nodes[i].name << " did not start (see " << nodes[i].dir
                << ".log)\n";
      for (auto& n : nodes) killNode(n);
      return out;
    }
  }
  for (int round = 0; round < rounds; ++round) {
    // A settled cluster: one holder, and every node names it.
    std::string holder;
    const auto settle = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < settle) {
      holder = layersHolder(nodes[0]);
      if (!holder.empty() && layersHolder(nodes[1]) == holder && layersHolder(nodes[2]) == holder)
        break;
      holder.clear();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (holder.empty()) {
      std::cerr << "bench cluster: the layers duty found no settled holder in 60 s\n";
      break;
    }
    Node& victim =
        *std::find_if(nodes.begin(), nodes.end(), [&](const Node& n) { return n.name == holder; });
    killNode(victim);
    const auto killed = Clock::now();
    double took = -1;
    while (took < 0 && Clock::now() - killed < std::chrono::seconds(60)) {
      for (const auto& n : nodes) {  // each survivor's answer names itself once it holds it
        if (n.pid > 0 && layersHolder(n) == n.name) {
          took = std::chrono::duration<double>(Clock::now() - killed).count();
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (took < 0) {
      std::cerr << "bench cluster: no node took the layers duty within 60 s of the kill\n";
      break;
    }
    out.push_back(took);
    if (!startNode(victim, bootstrap, session_timeout_ms)) break;
  }
  for (auto& n : nodes) killNode(n);
  return out;
}

}  // namespace firehub::cli
