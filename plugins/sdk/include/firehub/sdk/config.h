// A feed's JSON configuration as a connector sees it. Every getter records the key it read, so
// that keys nobody asked for are rejected after create() (a misspelt key is an error, not silently
// ignored).
#pragma once

#include <set>
#include <string>
#include <string_view>

#include <Poco/JSON/Object.h>

namespace firehub::sdk {

class Config {
 public:
  // Parses a JSON object; throws ConfigError if the text is not an object.
  static Config parse(std::string_view json);

  std::string getString(const std::string& key, const std::string& fallback);
  double getDouble(const std::string& key, double fallback, double min, double max);
  bool getBool(const std::string& key, bool fallback);
  bool has(const std::string& key) const;

  // Throws ConfigError naming the first key that no getter asked for.
  void rejectUnused() const;

 private:
  explicit Config(Poco::JSON::Object::Ptr object) : object_(std::move(object)) {}
  Poco::JSON::Object::Ptr object_;
  std::set<std::string> used_;
};

}  // namespace firehub::sdk
