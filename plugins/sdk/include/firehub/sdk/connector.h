// The C++ side of the plugin boundary for connector authors.
//
// A connector derives from firehub::sdk::Connector, provides a static
//   std::unique_ptr<Connector> create(const Config& config)
// and declares itself once with FIREHUB_DECLARE_CONNECTOR. The SDK turns that into the C
// descriptor of plugin_abi.h; every exception is caught at the boundary and turned into a status
// code plus message, so none ever reaches the host.
#pragma once

#include <boost/config.hpp>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "firehub/plugin_abi.h"
#include "firehub/sdk/config.h"
#include "firehub/v1/record.pb.h"

namespace firehub::sdk {

// The configuration was rejected; the message names the key and the rule.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The body as a whole cannot be parsed (not a single record can be salvaged from it).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Stage { kDecode = FH_STAGE_DECODE, kValidate = FH_STAGE_VALIDATE };

struct Input {
  std::string_view data;
  std::string_view content_type;  // media type only, lower case, without parameters
  std::string_view feed_id;
  std::string_view agency;
};

// Hands records and rejections to the host. Valid for the duration of one decode() call.
class Sink {
 public:
  Sink(const fh_host_callbacks* cb, void* host_ctx) : cb_(cb), ctx_(host_ctx) {}

  void emit(const firehub::v1::Record& record) {
    buffer_.clear();
    record.SerializeToString(&buffer_);
    cb_->emit(ctx_, reinterpret_cast<const uint8_t*>(buffer_.data()), buffer_.size());
    ++emitted_;
  }

  void reject(Stage stage, const std::string& reason, std::string_view raw,
              const std::string& source_offset) {
    fh_rejection r{};
    r.stage = static_cast<fh_stage>(stage);
    r.reason = reason.c_str();
    r.raw = reinterpret_cast<const uint8_t*>(raw.data());
    r.raw_len = raw.size();
    r.source_offset = source_offset.c_str();
    cb_->reject(ctx_, &r);
    ++rejected_;
  }

  void log(int level, const std::string& message) {
    if (cb_->log) cb_->log(ctx_, level, message.c_str());
  }

  // Bytes to send back to the peer once the records are committed (streams only).
  void reply(std::string_view bytes) {
    if (cb_->struct_size >= offsetof(fh_host_callbacks, reply) + sizeof(cb_->reply) && cb_->reply) {
      cb_->reply(ctx_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
  }

  // How many leading input bytes were used (streams only); the rest comes again with more bytes.
  void consumed(size_t bytes) {
    if (cb_->struct_size >= offsetof(fh_host_callbacks, consumed) + sizeof(cb_->consumed) &&
        cb_->consumed) {
      cb_->consumed(ctx_, bytes);
    }
  }

  // The source bytes of the records emitted next (the SDK's item readers call it per item).
  void source(std::string_view raw) {
    if (cb_->struct_size >= offsetof(fh_host_callbacks, source) + sizeof(cb_->source) &&
        cb_->source) {
      cb_->source(ctx_, reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
    }
  }

  // A piece understood but not mapped to a record (ABI >= 1.3 hosts count it by kind).
  void skip(const std::string& kind, const std::string& reason) {
    if (cb_->struct_size >= offsetof(fh_host_callbacks, skip) + sizeof(cb_->skip) && cb_->skip) {
      cb_->skip(ctx_, kind.c_str(), reason.c_str());
    }
  }

  size_t emitted() const { return emitted_; }
  size_t rejected() const { return rejected_; }

 private:
  const fh_host_callbacks* cb_;
  void* ctx_;
  std::string buffer_;
  size_t emitted_ = 0;
  size_t rejected_ = 0;
};

class Connector {
 public:
  virtual ~Connector() = default;
  // Decodes one body. Throw InputError when nothing in it can be understood.
  virtual void decode(const Input& input, Sink& sink) = 0;
};

namespace detail {

inline void copyMessage(const char* message, char* err, size_t err_len) {
  if (err == nullptr || err_len == 0) return;
  std::snprintf(err, err_len, "%s", message);
}

template <class T>
struct Thunks {
  static fh_status create(const char* config_json, size_t config_len, void** instance, char* err,
                          size_t err_len) noexcept {
    try {
      Config config = Config::parse(
          std::string_view(config_json ? config_json : "{}", config_json ? config_len : 2));
      std::unique_ptr<Connector> c = T::create(config);
      config.rejectUnused();
      *instance = c.release();
      return FH_OK;
    } catch (const ConfigError& e) {
      copyMessage(e.what(), err, err_len);
      return FH_INVALID_CONFIG;
    } catch (const std::exception& e) {
      copyMessage(e.what(), err, err_len);
      return FH_ERROR;
    } catch (...) {
      copyMessage("unknown exception in create()", err, err_len);
      return FH_ERROR;
    }
  }

  static fh_status decode(void* instance, const fh_decode_input* in, const fh_host_callbacks* cb,
                          void* host_ctx, char* err, size_t err_len) noexcept {
    try {
      Input input;
      input.data = std::string_view(reinterpret_cast<const char*>(in->data), in->len);
      input.content_type = in->content_type ? in->content_type : "";
      input.feed_id = in->feed_id ? in->feed_id : "";
      input.agency = in->agency ? in->agency : "";
      Sink sink(cb, host_ctx);
      static_cast<Connector*>(instance)->decode(input, sink);
      return FH_OK;
    } catch (const InputError& e) {
      copyMessage(e.what(), err, err_len);
      return FH_ERROR;
    } catch (const std::exception& e) {  // not about the input: a fault of the connector
      copyMessage(e.what(), err, err_len);
      return FH_FAULT;
    } catch (...) {
      copyMessage("unknown exception in decode()", err, err_len);
      return FH_FAULT;
    }
  }

  static void destroy(void* instance) noexcept {
    try {
      delete static_cast<Connector*>(instance);
    } catch (...) {
    }
  }
};

template <class T>
fh_connector_descriptor makeDescriptor(const char* id, const char* version, const char* domain,
                                       const char* description, const char* config_schema) {
  fh_connector_descriptor d{};
  d.abi_major = FH_ABI_MAJOR;
  d.abi_minor = FH_ABI_MINOR;
  d.struct_size = sizeof(fh_connector_descriptor);
  d.id = id;
  d.version = version;
  d.domain = domain;
  d.description = description;
  d.config_schema = config_schema;
  d.create = &Thunks<T>::create;
  d.decode = &Thunks<T>::decode;
  d.destroy = &Thunks<T>::destroy;
  return d;
}

}  // namespace detail
}  // namespace firehub::sdk

#ifdef FIREHUB_PLUGIN_SHARED
#include <boost/dll/alias.hpp>
#define FIREHUB_DETAIL_EXPORT_ALIAS(fn) BOOST_DLL_ALIAS(fn, firehub_connector_v1)
#else
#define FIREHUB_DETAIL_EXPORT_ALIAS(fn)
#endif

// Declares the connector class CLASS under the C name NAME (a C identifier, e.g. weather).
// Defines `fh_connector_NAME()` returning the descriptor (for static registration in tests) and,
// when built as a plugin, exports it as the `firehub_connector_v1` alias.
#define FIREHUB_DECLARE_CONNECTOR(NAME, CLASS, ID, VERSION, DOMAIN, DESCRIPTION, SCHEMA)         \
  extern "C" const fh_connector_descriptor* fh_connector_##NAME(void) {                          \
    static const fh_connector_descriptor descriptor =                                            \
        ::firehub::sdk::detail::makeDescriptor<CLASS>(ID, VERSION, DOMAIN, DESCRIPTION, SCHEMA); \
    return &descriptor;                                                                          \
  }                                                                                              \
  FIREHUB_DETAIL_EXPORT_ALIAS(fh_connector_##NAME)
