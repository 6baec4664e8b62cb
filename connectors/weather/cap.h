// OASIS CAP 1.2 alerts (a single <alert> or a feed, e.g. Atom, that embeds them) into
// WeatherWarning records: Alert and Update upsert the warning, Update and Cancel retract the
// alerts they reference.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "firehub/v1/record.pb.h"

namespace firehub::connectors::cap {

inline constexpr const char* kNamespace = "urn:oasis:names:tc:emergency:cap:1.2";

struct Parsed {
  std::vector<firehub::v1::Record> records;  // upserts and retractions, in document order
  std::vector<std::pair<std::string, std::string>> rejected;  // (alert identifier, reason)
};

// Throws std::invalid_argument with the reason when the XML does not parse or holds no CAP 1.2
// alert. `offset_minutes` is used for times without an offset.
Parsed parse(std::string_view xml, int offset_minutes);

}  // namespace firehub::connectors::cap
