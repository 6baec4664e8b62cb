// What the subscription files share. Private to the subscriptions module.
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <string>

#include "firehub/bus.h"
#include "firehub/subscriptions.h"

#include "firehub/status.h"

namespace firehub::subs {

// A JSON object from text; null, with `error` set, when the text is not one.
inline Poco::JSON::Object::Ptr parseObject(const std::string& json, Status& error) {
  try {
    Poco::JSON::Parser parser;
    return parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    error = Status::invalidArgument("body must be a JSON object: " + e.displayText());
    return nullptr;
  }
}

// A webhook POST's body: {"subscription": <id>, "records": [item, ...]} with each item
// {"id": <id>[, "partition": <p>], "record": <record, redacted for an owner without the
// restricted grant>}; `item(i, id, partition)` names the i-th record's (partition < 0: none).
template <typename Item>
std::string webhookBody(const Subscription& s, size_t count, Item&& item) {
  std::string body = R"({"subscription":")" + s.id + R"(","records":[)";
  for (size_t i = 0; i < count; ++i) {
    uint64_t id = 0;
    int partition = -1;
    const firehub::v1::Record& record = item(i, id, partition);
    if (i) body += ',';
    body += R"({"id":)" + std::to_string(id);
    if (partition >= 0) body += R"(,"partition":)" + std::to_string(partition);
    body += R"(,"record":)" + bus::recordToJson(record, !s.restricted) + "}";
  }
  return body + "]}";
}

}  // namespace firehub::subs
