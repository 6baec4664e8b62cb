// A connector whose code throws: in create() when asked to, and in every decode(). The SDK's shim
// must turn each exception into an error status; none may reach the host.
#include <stdexcept>

#include "firehub/sdk/connector.h"

namespace {

class ThrowingConnector final : public firehub::sdk::Connector {
 public:
  static std::unique_ptr<Connector> create(firehub::sdk::Config& config) {
    if (config.getBool("throw_in_create", false)) throw std::runtime_error("boom in create");
    if (config.getBool("throw_int", false)) throw 42;  // not even a std::exception
    return std::make_unique<ThrowingConnector>();
  }
  void decode(const firehub::sdk::Input& in, firehub::sdk::Sink&) override {
    if (in.data == "int") throw 7;
    throw std::logic_error("boom in decode");
  }
};

}  // namespace

FIREHUB_DECLARE_CONNECTOR(throwing, ThrowingConnector, "firehub.connector.throwing", "0.0.1",
                          "weather", "always throws", "{}")
