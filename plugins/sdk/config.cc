#include "firehub/sdk/config.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include "firehub/sdk/connector.h"

namespace firehub::sdk {

Config Config::parse(std::string_view json) {
  std::string text(json);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) text = "{}";
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var value = parser.parse(text);
    if (value.type() != typeid(Poco::JSON::Object::Ptr)) {
      throw ConfigError("config must be a JSON object");
    }
    return Config(value.extract<Poco::JSON::Object::Ptr>());
  } catch (const Poco::Exception& e) {
    throw ConfigError("config is not valid JSON: " + e.displayText());
  }
}

bool Config::has(const std::string& key) const { return object_->has(key); }

std::string Config::getString(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  if (!object_->has(key)) return fallback;
  Poco::Dynamic::Var v = object_->get(key);
  if (!v.isString()) throw ConfigError("config key '" + key + "': expected a string");
  return v.convert<std::string>();
}

double Config::getDouble(const std::string& key, double fallback, double min, double max) {
  used_.insert(key);
  if (!object_->has(key)) return fallback;
  Poco::Dynamic::Var v = object_->get(key);
  if (!v.isNumeric()) throw ConfigError("config key '" + key + "': expected a number");
  double d = v.convert<double>();
  if (d < min || d > max) {
    throw ConfigError("config key '" + key + "': " + std::to_string(d) + " is outside [" +
                      std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return d;
}

bool Config::getBool(const std::string& key, bool fallback) {
  used_.insert(key);
  if (!object_->has(key)) return fallback;
  Poco::Dynamic::Var v = object_->get(key);
  if (!v.isBoolean()) throw ConfigError("config key '" + key + "': expected true or false");
  return v.convert<bool>();
}

void Config::rejectUnused() const {
  std::vector<std::string> names;
  object_->getNames(names);
  for (const auto& name : names) {
    if (!used_.count(name)) throw ConfigError("config key '" + name + "' is not known");
  }
}

}  // namespace firehub::sdk
