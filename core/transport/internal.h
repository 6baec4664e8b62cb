// Helpers shared by the transports' files.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firehub/lake.h"
#include "firehub/registry.h"
#include "firehub/status.h"

namespace firehub::transport {

int64_t nowMs();  // unix milliseconds

// A body a source's connector could not read at all (the pipeline's InvalidArgument), kept whole
// as a dead letter (stage decode) naming where it came from, with the source's place (`meta`)
// written in the same commit, so the source goes on past it.
Status keepUnreadable(lake::Lake& lake, const registry::FeedSpec& spec, const std::string& reason,
                      std::string_view raw, const std::string& where,
                      const std::string& content_type,
                      const std::vector<std::pair<std::string, std::string>>& meta);

}  // namespace firehub::transport
