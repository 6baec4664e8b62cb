// A command centre's wall of screens against a `firehub serve` process over plain HTTP: 1,000 open
// event streams of risk deltas and 10,000 idle connections (from 220 loopback addresses, each
// within the per-address cap) while /healthz answers within 100 ms, a push is accepted and its
// delta reaches every stream; a client that sends half a request head is answered 408 at
// http.header_timeout_s and one over the connection cap gets a 503. Bounded in time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "processes.h"
#include "test_support.h"

namespace firehub {
namespace {

using firehub::testing::TempDir;
using Clock = std::chrono::steady_clock;

// A connection from 127.0.<a>.<b> to the hub; -1 when it fails.
int connectFrom(const std::string& source, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  // The port is chosen at connect(), with the destination known: binding thousands of sockets to
  // one address with port 0 searches the whole ephemeral range each time.
  const int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool sendAll(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// What arrives on `fd` within `ms` (until the peer closes or `until` appears).
std::string readFor(int fd, int ms, const std::string& until = "") {
  std::string got;
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    const int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
    if (poll(&p, 1, std::max(left, 0)) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (!until.empty() && got.find(until) != std::string::npos) break;
  }
  return got;
}

TEST(Viewers, AWallOfScreensDoesNotStarveTheHub) {
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  files.rlim_cur = files.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &files), 0);
  ASSERT_GE(files.rlim_cur, 12000u) << "the test holds 11,000 connections";
  TempDir dir;
  const std::string config = dir.path() + "/hub.properties";
  std::ofstream(config) << "http.keep_alive_s = 120\nhttp.header_timeout_s = 2\n"
                           "http.max_connections = 15000\n";
  testing::HubProcess hub(dir.path() + "/data", testing::pluginsDir(), dir.path() + "/hub.log",
                          config);
  ASSERT_TRUE(hub.start()) << testing::readFile(dir.path() + "/hub.log");
  const uint16_t port = hub.port();
  const std::string key = testing::adminKey(dir.path() + "/data");
  auto healthz_ms = [&] {
    const auto t = Clock::now();
    auto r = testing::http("127.0.0.1", port, "GET", "/healthz", "", "", "");
    EXPECT_EQ(r.status, 200) << r.body;
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };

  // 1,000 event streams, 50 from each of 20 addresses.
  std::vector<int> streams;
  for (int i = 0; i < 1000; ++i) {
    const int fd = connectFrom("127.0.2." + std::to_string(1 + i / 50), port);
    ASSERT_GE(fd, 0) << "stream " << i;
    ASSERT_TRUE(sendAll(fd, "GET /api/v1/layers/risk/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    streams.push_back(fd);
  }
  size_t opened = 0;
  for (int fd : streams) {
    const std::string head = readFor(fd, 10000, ": firehub risk deltas");
    opened +=
        head.rfind("HTTP/1.1 200", 0) == 0 && head.find("text/event-stream") != std::string::npos;
  }
  EXPECT_EQ(opened, streams.size()) << "every stream opened";

  // 10,000 connections that say nothing, 50 from each of 200 addresses.
  std::vector<int> idle;
  for (int i = 0; i < 10000; ++i) {
    const int fd = connectFrom(
        "127.0.3" + std::to_string(i / 50 / 100) + "." + std::to_string(1 + (i / 50) % 100), port);
    ASSERT_GE(fd, 0) << "idle connection " << i;
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::vector<double> ms;
  for (int i = 0; i < 20; ++i) ms.push_back(healthz_ms());
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms.back(), 100.0) << "/healthz with 11,000 connections open: slowest of 20";

  // A push is accepted and its delta reaches every stream.
  ASSERT_EQ(
      testing::http(
          "127.0.0.1", port, "POST", "/api/v1/feeds",
          R"({"id":"bld","agency":"housing-bureau","connector":"firehub.connector.building"})",
          "application/json", key)
          .status,
      201);
  const auto pushed_at = Clock::now();
  auto pushed =
      testing::http("127.0.0.1", port, "POST", "/api/v1/feeds/bld/records",
                    testing::fixture("building", "buildings.geojson"), "application/geo+json", key);
  ASSERT_EQ(pushed.status, 202) << pushed.body;
  size_t reached = 0;
  for (int fd : streams)
    reached += readFor(fd, 10000, "event: delta").find("event: delta") != std::string::npos;
  const double spread_s = std::chrono::duration<double>(Clock::now() - pushed_at).count();
  EXPECT_EQ(reached, streams.size()) << "the delta on every stream (" << spread_s << " s)";
  for (int i = 0; i < 5; ++i) EXPECT_LT(healthz_ms(), 100.0);

  // The idle connections are all still open: each answers a request when it finally sends one.
  size_t answered = 0;
  for (size_t i = 0; i < idle.size(); i += 500) {
    ASSERT_TRUE(sendAll(idle[i], "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    answered += readFor(idle[i], 5000, "\r\n\r\n").rfind("HTTP/1.1 200", 0) == 0;
  }
  EXPECT_EQ(answered, idle.size() / 500);

  // Half a head: 408 when http.header_timeout_s (2 s) is over, not a held thread.
  const int slow = connectFrom("127.0.4.1", port);
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(sendAll(slow, "GET /healthz HTTP/1.1\r\nHo"));
  const auto slow_at = Clock::now();
  const std::string cut = readFor(slow, 6000);
  EXPECT_EQ(cut.rfind("HTTP/1.1 408", 0), 0u) << cut;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - slow_at).count(), 4.0);
  close(slow);
  // One address past its cap (64) gets a 503 saying so.
  std::vector<int> mine;
  for (int i = 0; i < 64; ++i) mine.push_back(connectFrom("127.0.5.1", port));
  const int over = connectFrom("127.0.5.1", port);
  const std::string refused = readFor(over, 3000);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_NE(refused.find("http.max_connections_per_client"), std::string::npos);
  close(over);
  for (int fd : mine) close(fd);
  for (int fd : streams) close(fd);
  for (int fd : idle) close(fd);
  EXPECT_EQ(hub.stop(), 0);
}

}  // namespace
}  // namespace firehub
