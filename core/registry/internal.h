// Helpers shared by the registry's files: checked fields of a feed definition, and the sources
// (Kafka, HTTP poll, MQTT) a feed may read instead of being pushed to.
#pragma once

#include <Poco/JSON/Object.h>

#include <set>
#include <string>

#include "firehub/registry.h"

namespace firehub::registry {

// `v` as a JSON object whose names are all in `known` (an error naming the first one that is not).
Result<Poco::JSON::Object::Ptr> objectField(const Poco::Dynamic::Var& v, const std::string& name,
                                            const std::set<std::string>& known);
// obj[key] as an integer in [min, max], into `out` when present.
Status integerField(const Poco::JSON::Object& obj, const std::string& prefix, const char* key,
                    int64_t min, int64_t max, int64_t& out);
// The content_type of a body the hub reads itself (a file drop's files, a source's messages):
// one a push may have.
Result<std::string> contentType(const Poco::JSON::Object& o, const std::string& field);

// Reads "kafka", "poll" and "mqtt" of a feed definition into `spec` (file_drop is read already):
// at most one source per feed.
Status parseSources(const Poco::JSON::Object& obj, FeedSpec& spec);
// Sets them on the definition's JSON; `secrets` false: secret values as "********".
void setSourceFields(Poco::JSON::Object& obj, const FeedSpec& spec, bool secrets);

}  // namespace firehub::registry
