// Connector plugins: loading (Boost.DLL), the ABI handshake, and the registry of connectors.
//
// A plugin is refused, with a message naming the file and both ABI versions, when it cannot be
// loaded, lacks the descriptor symbol, or was built against another ABI major (or a newer minor).
// A refused plugin never stops the hub. A loaded library stays mapped while any connector
// instance created from it lives: instances hold a shared reference to their plugin.
// @remark ConnectorRegistry is thread-safe. A ConnectorInstance is used by one thread at a time.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "firehub/plugin_abi.h"
#include "firehub/status.h"

namespace boost::dll {
class shared_library;
}

namespace firehub::plugin {

// A plugin that passed the handshake: the descriptor and the library that holds it.
class LoadedPlugin {
 public:
  LoadedPlugin(std::shared_ptr<boost::dll::shared_library> library,
               const fh_connector_descriptor* descriptor, std::string file);
  ~LoadedPlugin();
  const fh_connector_descriptor& descriptor() const { return *descriptor_; }
  const std::string& file() const { return file_; }  // "(static)" for built-in connectors
  std::string id() const { return descriptor_->id; }
  std::string version() const { return descriptor_->version; }

 private:
  std::shared_ptr<boost::dll::shared_library> library_;  // null for static registration
  const fh_connector_descriptor* descriptor_;
  std::string file_;
};

// What the host knows about one plugin file (or built-in connector).
struct PluginInfo {
  std::string file;
  std::string id;  // empty when refused before the descriptor could be read
  std::string version;
  std::string domain;
  std::string description;
  std::string abi;  // "1.0" as declared by the plugin
  bool loaded = false;
  std::string reason;  // why it was refused
};

// Checks a descriptor against the host's ABI. `file` is only used in messages.
Status checkDescriptor(const fh_connector_descriptor* d, const std::string& file);

// Loads one library and checks its handshake.
Result<std::shared_ptr<LoadedPlugin>> loadPlugin(const std::string& file);

// Callbacks for one decode() call.
struct DecodeSink {
  std::function<void(std::string_view record_bytes)> on_record;
  std::function<void(const fh_rejection& rejection)> on_reject;
  // The source bytes of the records that follow (ABI >= 1.2 plugins; may stay unset).
  std::function<void(std::string_view raw)> on_source;
  // A piece of input of a kind the connector maps to nothing (ABI >= 1.3 plugins).
  std::function<void(std::string_view kind, std::string_view reason)> on_skip;
  // Streams: reply bytes for the peer, and how much of the input was used.
  std::string reply;
  std::optional<size_t> consumed;
};

// One configured instance of a connector (one per feed).
class ConnectorInstance {
 public:
  ConnectorInstance(std::shared_ptr<LoadedPlugin> plugin, void* handle)
      : plugin_(std::move(plugin)), handle_(handle) {}
  ~ConnectorInstance();
  ConnectorInstance(const ConnectorInstance&) = delete;
  ConnectorInstance& operator=(const ConnectorInstance&) = delete;

  // Decodes one body. InvalidArgument when the body as a whole cannot be parsed.
  Status decode(std::string_view data, const std::string& content_type, const std::string& feed_id,
                const std::string& agency, DecodeSink& sink);
  const LoadedPlugin& plugin() const { return *plugin_; }

 private:
  std::shared_ptr<LoadedPlugin> plugin_;  // keeps the library mapped
  void* handle_;
};

class ConnectorRegistry {
 public:
  // Registers a connector compiled into the binary (tests, built-ins). Same handshake as a file.
  Status registerStatic(const fh_connector_descriptor* descriptor);
  // Loads every *.so in `dir`. Returns what was found, loaded or refused; never fails the hub.
  std::vector<PluginInfo> scanDirectory(const std::string& dir);
  // Every plugin seen so far, loaded or refused.
  std::vector<PluginInfo> list() const;

  bool has(const std::string& id) const;
  std::shared_ptr<LoadedPlugin> find(const std::string& id) const;
  // Creates an instance from a JSON config; InvalidArgument naming the problem on a bad config.
  Result<std::unique_ptr<ConnectorInstance>> create(const std::string& id,
                                                    const std::string& config_json) const;

 private:
  PluginInfo add(std::shared_ptr<LoadedPlugin> plugin);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<LoadedPlugin>> by_id_;
  std::map<std::string, PluginInfo> seen_;                             // by file (or "(static) id")
  std::map<std::string, std::filesystem::file_time_type> refused_at_;  // file -> mtime last tried
};

}  // namespace firehub::plugin
