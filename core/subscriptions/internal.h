// What the subscription files share. Private to the subscriptions module.
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <string>

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

}  // namespace firehub::subs
