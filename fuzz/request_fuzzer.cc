// libFuzzer target for the request bodies and parameters the hub parses itself: feed definitions
// (POST /api/v1/feeds), connector config against a config schema, subscriptions
// (POST /api/v1/subscriptions). The first byte picks which.
#include <cstddef>
#include <cstdint>
#include <string>

#include "firehub/registry.h"
#include "firehub/subscriptions.h"

namespace {

// A schema with every keyword the validator knows, as the connectors' schemas use them.
constexpr const char* kSchema = R"({"type":"object","additionalProperties":false,
  "properties":{"utc_offset":{"type":"string","pattern":"^[+-][0-9]{2}:[0-9]{2}$"},
  "csv_delimiter":{"type":"string","enum":[",",";","\t"],"minLength":1,"maxLength":1},
  "listen":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":100},
  "ratio":{"type":"number","minimum":0},"flags":{"type":"array","items":{"type":"boolean"}}},
  "required":[]})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto spec = firehub::registry::parseFeedSpec(text);
      if (spec.isOk()) {
        // What is stored must parse back to the same definition.
        auto again =
            firehub::registry::parseFeedSpec(firehub::registry::feedSpecToJson(spec.value()));
        if (!again.isOk()) __builtin_trap();
      }
      break;
    }
    case 1:
      (void)firehub::registry::validateConfig(kSchema, text);
      (void)firehub::registry::validateConfig(text, R"({"utc_offset":"+08:00"})");
      break;
    default:
      (void)firehub::subs::parseSubscription(text, data[0] & 4);
      break;
  }
  return 0;
}
