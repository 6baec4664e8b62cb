// Transports the hub owns besides HTTP push: TCP listeners for stream protocols (GB/T 26875.3).
// A feed whose config has "listen": "HOST:PORT" gets a listener; every connection keeps its own
// buffer, hands it to the pipeline as a byte stream, sends the connector's reply (confirm/deny)
// only after the commit, and keeps the unused tail (an incomplete frame) for the next read.
// @remark Thread-safe. One thread per connection (Poco TCPServer); the pipeline and the feed
// registry must outlive the listeners.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "firehub/pipeline.h"
#include "firehub/registry.h"
#include "firehub/status.h"

namespace Poco::Net {
class TCPServer;
}

namespace firehub::transport {

struct TcpOptions {
  // Close a connection that sent nothing for this long, seconds. Default: 300.
  int idle_timeout_s = 300;
  // Bytes a connection may buffer without a complete frame before they are dropped. Default: 64 KiB.
  size_t max_buffer_bytes = 64u << 10;
  // Connections per listener. Default: 64.
  int max_connections = 64;
};

// The content type a stream connector receives.
inline constexpr const char* kStreamContentType = "application/x-gbt26875";

class TcpListeners {
 public:
  TcpListeners(pipeline::Pipeline& pipeline, TcpOptions options = {});
  ~TcpListeners();

  // Starts a listener when the feed's config has "listen" and none runs for it yet.
  Status ensure(const registry::Feed& feed);
  // The bound port of a feed's listener.
  std::optional<uint16_t> port(const std::string& feed_id) const;
  void stopAll();

 private:
  pipeline::Pipeline& pipeline_;
  TcpOptions options_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Poco::Net::TCPServer>> servers_;
  std::map<std::string, uint16_t> ports_;
};

}  // namespace firehub::transport
