#include "firehub/plugin.h"

#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <filesystem>

#include "firehub/log.h"

namespace firehub::plugin {
namespace {

std::string versionText(uint32_t major, uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// Host callbacks: trampolines from the C ABI into the DecodeSink.
void emitThunk(void* ctx, const uint8_t* bytes, size_t len) {
  auto* sink = static_cast<DecodeSink*>(ctx);
  try {
    sink->on_record(std::string_view(reinterpret_cast<const char*>(bytes), len));
  } catch (const std::exception& e) {
    FIREHUB_LOG(kError, "plugin", "emit callback failed: " << e.what());
  }
}

void rejectThunk(void* ctx, const fh_rejection* r) {
  auto* sink = static_cast<DecodeSink*>(ctx);
  try {
    if (r) sink->on_reject(*r);
  } catch (const std::exception& e) {
    FIREHUB_LOG(kError, "plugin", "reject callback failed: " << e.what());
  }
}

void replyThunk(void* ctx, const uint8_t* bytes, size_t len) {
  static_cast<DecodeSink*>(ctx)->reply.append(reinterpret_cast<const char*>(bytes), len);
}

void consumedThunk(void* ctx, size_t bytes) { static_cast<DecodeSink*>(ctx)->consumed = bytes; }

void sourceThunk(void* ctx, const uint8_t* raw, size_t len) {
  auto* sink = static_cast<DecodeSink*>(ctx);
  if (sink->on_source) sink->on_source(std::string_view(reinterpret_cast<const char*>(raw), len));
}

void skipThunk(void* ctx, const char* kind, const char* reason) {
  auto* sink = static_cast<DecodeSink*>(ctx);
  if (sink->on_skip) sink->on_skip(kind ? kind : "", reason ? reason : "");
}

void logThunk(void*, int level, const char* message) {
  log::Level l = level <= 0   ? log::Level::kDebug
                 : level == 1 ? log::Level::kInfo
                 : level == 2 ? log::Level::kWarning
                              : log::Level::kError;
  if (l >= log::level()) log::write(l, "connector", message ? message : "");
}

}  // namespace

LoadedPlugin::LoadedPlugin(std::shared_ptr<boost::dll::shared_library> library,
                           const fh_connector_descriptor* descriptor, std::string file)
    : library_(std::move(library)), descriptor_(descriptor), file_(std::move(file)) {}

LoadedPlugin::~LoadedPlugin() = default;

Status checkDescriptor(const fh_connector_descriptor* d, const std::string& file) {
  const std::string host = versionText(FH_ABI_MAJOR, FH_ABI_MINOR);
  if (d == nullptr) {
    return Status::failedPrecondition(file + ": the descriptor function returned null (host ABI " +
                                      host + ")");
  }
  const std::string plugin = versionText(d->abi_major, d->abi_minor);
  if (d->abi_major != FH_ABI_MAJOR) {
    return Status::failedPrecondition(file + ": plugin ABI " + plugin +
                                      " is incompatible with host ABI " + host +
                                      " (the major versions must match); rebuild the plugin "
                                      "against this firehub");
  }
  if (d->abi_minor > FH_ABI_MINOR) {
    return Status::failedPrecondition(file + ": plugin ABI " + plugin + " is newer than host ABI " +
                                      host + "; upgrade firehub or rebuild the plugin");
  }
  if (d->struct_size < offsetof(fh_connector_descriptor, destroy) + sizeof(d->destroy)) {
    return Status::failedPrecondition(file + ": descriptor is " + std::to_string(d->struct_size) +
                                      " bytes, smaller than ABI " + plugin +
                                      " requires (host ABI " + host + ")");
  }
  if (!d->id || !*d->id || !d->version || !d->domain || !d->create || !d->decode || !d->destroy) {
    return Status::failedPrecondition(file + ": descriptor (ABI " + plugin +
                                      ") lacks id, version, domain or a function (host ABI " +
                                      host + ")");
  }
  return Status::ok();
}

Result<std::shared_ptr<LoadedPlugin>> loadPlugin(const std::string& file) {
  const std::string host = versionText(FH_ABI_MAJOR, FH_ABI_MINOR);
  auto library = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  library->load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    return Status::failedPrecondition(file + ": cannot be loaded (" + ec.message() + "; host ABI " +
                                      host + ", plugin ABI unknown)");
  }
  if (!library->has(FH_CONNECTOR_SYMBOL)) {
    return Status::failedPrecondition(
        file + ": no '" FH_CONNECTOR_SYMBOL "' descriptor exported (host ABI " + host +
        ", plugin ABI unknown); is it a firehub connector?");
  }
  // BOOST_DLL_ALIAS exports a variable holding the function's address; get_alias follows it.
  const fh_connector_descriptor* d = nullptr;
  try {
    auto& entry = library->get_alias<const fh_connector_descriptor*()>(FH_CONNECTOR_SYMBOL);
    d = entry();
  } catch (const std::exception& e) {
    return Status::failedPrecondition(file + ": descriptor could not be read (" + e.what() +
                                      "; host ABI " + host + ")");
  }
  FIREHUB_RETURN_IF_ERROR(checkDescriptor(d, file));
  return std::make_shared<LoadedPlugin>(std::move(library), d, file);
}

ConnectorInstance::~ConnectorInstance() {
  if (handle_) plugin_->descriptor().destroy(handle_);
}

Status ConnectorInstance::decode(std::string_view data, const std::string& content_type,
                                 const std::string& feed_id, const std::string& agency,
                                 DecodeSink& sink) {
  fh_decode_input in{};
  in.struct_size = sizeof in;
  in.data = reinterpret_cast<const uint8_t*>(data.data());
  in.len = data.size();
  in.content_type = content_type.c_str();
  in.feed_id = feed_id.c_str();
  in.agency = agency.c_str();
  fh_host_callbacks cb{};
  cb.struct_size = sizeof cb;
  cb.emit = &emitThunk;
  cb.reject = &rejectThunk;
  cb.log = &logThunk;
  cb.reply = &replyThunk;
  cb.consumed = &consumedThunk;
  cb.source = &sourceThunk;
  cb.skip = &skipThunk;
  char err[1024] = {0};
  fh_status st = plugin_->descriptor().decode(handle_, &in, &cb, &sink, err, sizeof err);
  err[sizeof err - 1] = '\0';
  switch (st) {
    case FH_OK:
      return Status::ok();
    case FH_RETRY:
      return Status::unavailable(err[0] ? err : "connector asked to retry");
    case FH_FAULT:
      return Status::internal(std::string("connector ") + plugin_->descriptor().id +
                              " failed: " + (err[0] ? err : "no message"));
    default:
      return Status::invalidArgument(err[0] ? err : "connector could not decode the body");
  }
}

PluginInfo ConnectorRegistry::add(std::shared_ptr<LoadedPlugin> plugin) {
  const auto& d = plugin->descriptor();
  PluginInfo info;
  info.file = plugin->file();
  info.id = d.id;
  info.version = d.version;
  info.domain = d.domain;
  info.description = d.description ? d.description : "";
  info.abi = versionText(d.abi_major, d.abi_minor);
  std::lock_guard<std::mutex> lock(mu_);
  auto existing = by_id_.find(info.id);
  if (existing != by_id_.end() && existing->second->file() != plugin->file()) {
    info.loaded = false;
    info.reason = "connector id " + info.id + " " + info.version + " in " + info.file +
                  " is refused: the id is already provided by " + existing->second->file() +
                  " (version " + existing->second->version() +
                  "); stop its feeds, remove the old file and restart to replace it";
  } else {
    info.loaded = true;
    by_id_[info.id] = std::move(plugin);
  }
  seen_[info.file == "(static)" ? "(static) " + info.id : info.file] = info;
  return info;
}

Status ConnectorRegistry::registerStatic(const fh_connector_descriptor* descriptor) {
  FIREHUB_RETURN_IF_ERROR(checkDescriptor(descriptor, "(static)"));
  PluginInfo info = add(std::make_shared<LoadedPlugin>(nullptr, descriptor, "(static)"));
  if (!info.loaded) return Status::alreadyExists(info.reason);
  return Status::ok();
}

std::vector<PluginInfo> ConnectorRegistry::scanDirectory(const std::string& dir) {
  std::vector<PluginInfo> found;
  std::error_code ec;
  std::vector<std::string> files;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path().extension() == ".so") files.push_back(it->path().string());
  }
  if (ec) {
    FIREHUB_LOG(kWarning, "plugin", "cannot scan plugin directory " << dir << ": " << ec.message());
    return found;
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto mtime = std::filesystem::last_write_time(file, ec);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto seen = seen_.find(file);
      // Loaded files stay loaded; refused ones are tried again only when the file changed.
      if (seen != seen_.end() && (seen->second.loaded || refused_at_[file] == mtime)) {
        found.push_back(seen->second);
        continue;
      }
      refused_at_[file] = mtime;
    }
    auto loaded = loadPlugin(file);
    PluginInfo info;
    if (loaded.isOk()) {
      info = add(loaded.value());
    } else {
      info.file = file;
      info.reason = loaded.status().message();
      std::lock_guard<std::mutex> lock(mu_);
      seen_[file] = info;
    }
    if (info.loaded) {
      FIREHUB_LOG(
          kInfo, "plugin",
          "loaded " << info.id << " " << info.version << " (ABI " << info.abi << ") from " << file);
    } else {
      FIREHUB_LOG(kWarning, "plugin", "refused " << info.reason);
    }
    found.push_back(info);
  }
  return found;
}

std::vector<PluginInfo> ConnectorRegistry::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PluginInfo> out;
  for (const auto& [_, info] : seen_) out.push_back(info);
  return out;
}

bool ConnectorRegistry::has(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_id_.count(id) > 0;
}

std::shared_ptr<LoadedPlugin> ConnectorRegistry::find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

Result<std::unique_ptr<ConnectorInstance>> ConnectorRegistry::create(
    const std::string& id, const std::string& config_json) const {
  auto plugin = find(id);
  if (!plugin) return Status::notFound("no connector '" + id + "' is loaded");
  void* handle = nullptr;
  char err[1024] = {0};
  fh_status st =
      plugin->descriptor().create(config_json.data(), config_json.size(), &handle, err, sizeof err);
  err[sizeof err - 1] = '\0';
  if (st != FH_OK || handle == nullptr) {
    return Status::invalidArgument(std::string("connector ") + id +
                                   " rejected the config: " + (err[0] ? err : "no reason given"));
  }
  return std::make_unique<ConnectorInstance>(std::move(plugin), handle);
}

}  // namespace firehub::plugin
