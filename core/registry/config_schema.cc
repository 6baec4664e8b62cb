// Feed configs checked against their connector's config.schema.json before they are stored.
// The checker understands the part of JSON Schema 2020-12 that describes flat configuration
// objects: type, properties, additionalProperties, required, enum, pattern, minimum, maximum,
// minLength, maxLength, items, and the annotations (title, description, default, $schema).
// A schema using any other keyword is refused, so no rule is ever silently skipped.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cmath>
#include <re2/re2.h>

#include <stdexcept>
#include <set>

#include "firehub/registry.h"

namespace firehub::registry {
namespace {

// A schema pattern RE2 cannot compile (a schema error, not a config error).
struct BadPattern : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

const std::set<std::string> kKnown = {"$schema",     "$id",        "title",
                                      "description", "default",    "examples",
                                      "type",        "properties", "additionalProperties",
                                      "required",    "enum",       "pattern",
                                      "minimum",     "maximum",    "minLength",
                                      "maxLength",   "items"};

std::string typeOf(const Var& v) {
  if (v.isEmpty()) return "null";
  if (v.type() == typeid(Object::Ptr)) return "object";
  if (v.type() == typeid(Array::Ptr)) return "array";
  if (v.isBoolean()) return "boolean";
  if (v.isString()) return "string";
  if (v.isInteger()) return "integer";
  if (v.isNumeric()) return "number";
  return "unknown";
}

bool hasType(const Var& v, const std::string& type) {
  std::string actual = typeOf(v);
  if (type == "number") return actual == "number" || actual == "integer";
  if (type == "integer" && actual == "number") {
    double d = v.convert<double>();
    return std::floor(d) == d;
  }
  return actual == type;
}

std::string show(const Var& v) {
  if (v.isString()) {
    std::string quoted(1, '\'');
    quoted.append(v.convert<std::string>()).push_back('\'');
    return quoted;
  }
  return v.toString();
}

Status fail(const std::string& where, const std::string& rule) {
  return Status::invalidArgument("config" + (where.empty() ? std::string() : "." + where) + ": " +
                                 rule);
}

// Long: one branch per JSON Schema keyword the hub checks.
Status check(const Object::Ptr& schema, const Var& value, const std::string& where) {
  std::vector<std::string> names;
  schema->getNames(names);
  for (const auto& n : names) {
    if (!kKnown.count(n)) {
      return Status::failedPrecondition("the connector's config schema uses '" + n +
                                        "', which this hub does not check");
    }
  }
  if (schema->has("type")) {
    Var t = schema->get("type");
    bool ok = false;
    std::string wanted;
    if (t.type() == typeid(Array::Ptr)) {
      auto types = t.extract<Array::Ptr>();
      for (size_t i = 0; i < types->size(); ++i) {
        std::string one = types->getElement<std::string>(static_cast<unsigned>(i));
        wanted += (i ? " or " : "") + one;
        ok |= hasType(value, one);
      }
    } else {
      wanted = t.convert<std::string>();
      ok = hasType(value, wanted);
    }
    if (!ok) return fail(where, "must be " + wanted + ", not " + typeOf(value) + " " + show(value));
  }
  if (schema->has("enum")) {
    auto choices = schema->getArray("enum");
    bool found = false;
    std::string list;
    for (size_t i = 0; i < choices->size(); ++i) {
      Var c = choices->get(static_cast<unsigned>(i));
      list += (i ? ", " : "") + show(c);
      found |= typeOf(c) == typeOf(value) && c.toString() == value.toString();
    }
    if (!found) return fail(where, show(value) + " is not one of " + list);
  }
  if (value.isString()) {
    std::string s = value.convert<std::string>();
    if (schema->has("pattern")) {
      // RE2: linear time in the value, whatever the pattern (std::regex backtracks
      // exponentially on nested quantifiers and overflows on huge repeat counts).
      std::string pattern = schema->getValue<std::string>("pattern");
      RE2::Options options;
      options.set_log_errors(false);
      RE2 re(pattern, options);
      if (!re.ok()) throw BadPattern(pattern + ": " + re.error());
      if (!RE2::PartialMatch(s, re)) {
        return fail(where, show(value) + " does not match " + pattern);
      }
    }
    if (schema->has("minLength") && s.size() < schema->getValue<size_t>("minLength")) {
      return fail(where, "must be at least " + schema->get("minLength").toString() + " characters");
    }
    if (schema->has("maxLength") && s.size() > schema->getValue<size_t>("maxLength")) {
      return fail(where, "must be at most " + schema->get("maxLength").toString() + " characters");
    }
  }
  if (value.isNumeric() && !value.isBoolean()) {
    double d = value.convert<double>();
    if (schema->has("minimum") && d < schema->getValue<double>("minimum")) {
      return fail(where,
                  show(value) + " is below the minimum " + schema->get("minimum").toString());
    }
    if (schema->has("maximum") && d > schema->getValue<double>("maximum")) {
      return fail(where,
                  show(value) + " is above the maximum " + schema->get("maximum").toString());
    }
  }
  if (value.type() == typeid(Object::Ptr)) {
    auto obj = value.extract<Object::Ptr>();
    Object::Ptr props = schema->has("properties") ? schema->getObject("properties") : nullptr;
    if (schema->has("required")) {
      auto required = schema->getArray("required");
      for (size_t i = 0; i < required->size(); ++i) {
        std::string key = required->getElement<std::string>(static_cast<unsigned>(i));
        if (!obj->has(key)) return fail(where.empty() ? key : where + "." + key, "is required");
      }
    }
    bool closed =
        schema->has("additionalProperties") && !schema->getValue<bool>("additionalProperties");
    std::vector<std::string> keys;
    obj->getNames(keys);
    for (const auto& key : keys) {
      std::string at = where.empty() ? key : where + "." + key;
      if (props && props->has(key)) {
        FIREHUB_RETURN_IF_ERROR(check(props->getObject(key), obj->get(key), at));
      } else if (closed) {
        std::string allowed;
        if (props) {
          std::vector<std::string> known;
          props->getNames(known);
          for (size_t i = 0; i < known.size(); ++i) allowed += (i ? ", " : "") + known[i];
        }
        return fail(at, "is not a setting of this connector" +
                            (allowed.empty() ? std::string(" (it takes none)")
                                             : " (settings: " + allowed + ")"));
      }
    }
  }
  if (value.type() == typeid(Array::Ptr) && schema->has("items")) {
    auto arr = value.extract<Array::Ptr>();
    for (size_t i = 0; i < arr->size(); ++i) {
      FIREHUB_RETURN_IF_ERROR(check(schema->getObject("items"), arr->get(static_cast<unsigned>(i)),
                                    where + "[" + std::to_string(i) + "]"));
    }
  }
  return Status::ok();
}

}  // namespace

Status validateConfig(const std::string& schema_json, const std::string& config_json) {
  Object::Ptr schema;
  try {
    Poco::JSON::Parser parser;
    schema = parser.parse(schema_json).extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return Status::failedPrecondition("the connector's config schema is not a JSON object: " +
                                      e.displayText());
  }
  Var config;
  try {
    Poco::JSON::Parser parser;
    config = parser.parse(config_json.empty() ? "{}" : config_json);
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("config is not valid JSON: " + e.displayText());
  }
  try {
    return check(schema, config, "");
  } catch (const BadPattern& e) {
    return Status::failedPrecondition(
        std::string("the connector's config schema has a bad pattern: ") + e.what());
  } catch (const Poco::Exception& e) {
    return Status::failedPrecondition("the connector's config schema is malformed: " +
                                      e.displayText());
  }
}

}  // namespace firehub::registry
