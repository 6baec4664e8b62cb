// Decoding with a connector compiled into the test binary (static registration, no dlopen):
// what connector unit tests use to check their field mapping.
#pragma once

#include <string>
#include <vector>

#include "firehub/plugin.h"
#include "firehub/v1/record.pb.h"

namespace firehub::testkit {

struct Decoded {
  Status status;                             // the decode call's result
  std::vector<firehub::v1::Record> records;  // as emitted (before the hub completes them)
  std::vector<std::string> reasons;          // rejections, in order
  std::vector<std::string> offsets;
  std::vector<std::string> raws;
  std::string reply;  // stream replies
  std::optional<size_t> consumed;
};

inline Decoded decodeWith(const fh_connector_descriptor* descriptor, const std::string& body,
                          const std::string& content_type, const std::string& config = "{}") {
  Decoded d;
  plugin::ConnectorRegistry registry;
  d.status = registry.registerStatic(descriptor);
  if (!d.status.isOk()) return d;
  auto instance = registry.create(descriptor->id, config);
  if (!instance.isOk()) {
    d.status = instance.status();
    return d;
  }
  plugin::DecodeSink sink;
  sink.on_record = [&](std::string_view bytes) {
    firehub::v1::Record r;
    r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    d.records.push_back(std::move(r));
  };
  sink.on_reject = [&](const fh_rejection& r) {
    d.reasons.emplace_back(r.reason ? r.reason : "");
    d.offsets.emplace_back(r.source_offset ? r.source_offset : "");
    d.raws.emplace_back(reinterpret_cast<const char*>(r.raw), r.raw_len);
  };
  d.status = instance.value()->decode(body, content_type, "test-feed", "test-agency", sink);
  d.reply = sink.reply;
  d.consumed = sink.consumed;
  return d;
}

// The text of a fixture file of a connector: connectors/<name>/tests/fixtures/<file>.
std::string fixture(const std::string& connector, const std::string& file);

}  // namespace firehub::testkit
