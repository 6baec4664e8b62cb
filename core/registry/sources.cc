#include <Poco/JSON/Array.h>
#include <Poco/URI.h>

#include <regex>

#include "firehub/net.h"
#include "internal.h"

namespace firehub::registry {

Result<Poco::JSON::Object::Ptr> objectField(const Poco::Dynamic::Var& v, const std::string& name,
                                            const std::set<std::string>& known) {
  if (v.type() != typeid(Poco::JSON::Object::Ptr)) {
    return Status::invalidArgument("field '" + name + "' must be a JSON object");
  }
  auto obj = v.extract<Poco::JSON::Object::Ptr>();
  std::vector<std::string> names;
  obj->getNames(names);
  for (const auto& n : names) {
    if (!known.count(n)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return Status::invalidArgument("field '" + name + "." + n + "' is not known (known: " + list +
                                     ")");
    }
  }
  return obj;
}

Status integerField(const Poco::JSON::Object& obj, const std::string& prefix, const char* key,
                    int64_t min, int64_t max, int64_t& out) {
  if (!obj.has(key)) return Status::ok();
  auto v = obj.get(key);
  if (!v.isNumeric() || v.convert<double>() < static_cast<double>(min) ||
      v.convert<double>() > static_cast<double>(max) ||
      v.convert<double>() != static_cast<double>(v.convert<int64_t>())) {
    return Status::invalidArgument("field '" + prefix + "." + key + "' must be an integer in " +
                                   std::to_string(min) + ".." + std::to_string(max));
  }
  out = v.convert<int64_t>();
  return Status::ok();
}

// The content_type of a body the hub reads itself (a file drop's files, a Kafka source's
// messages): one a push may have.
Result<std::string> contentType(const Poco::JSON::Object& o, const std::string& field) {
  static const std::set<std::string> kTypes = {"text/csv",
                                               "application/json",
                                               "application/x-ndjson",
                                               "application/geo+json",
                                               "application/fhir+json",
                                               "application/xml",
                                               "application/cap+xml",
                                               "application/vnd.openxmlformats-officedocument."
                                               "spreadsheetml.sheet"};
  std::string t =
      o.get("content_type").isString() ? o.get("content_type").convert<std::string>() : "";
  if (!kTypes.count(t)) {
    return Status::invalidArgument("field '" + field +
                                   ".content_type' must be one of text/csv, "
                                   "application/json, application/x-ndjson, application/geo+json, "
                                   "application/fhir+json, application/xml, application/cap+xml, "
                                   "or the .xlsx type");
  }
  return t;
}

namespace {

// librdkafka settings a feed may pass through: never the ones the hub itself owns (group,
// offsets, what a message is).
bool passThrough(const std::string& name) {
  static const char* kPrefixes[] = {"security.",
                                    "sasl.",
                                    "ssl.",
                                    "client.",
                                    "socket.",
                                    "fetch.",
                                    "reconnect.",
                                    "session.timeout.ms",
                                    "heartbeat.interval.ms",
                                    "max.poll.interval.ms",
                                    "metadata.",
                                    "broker.",
                                    "api.version."};
  for (const char* p : kPrefixes) {
    if (name.rfind(p, 0) == 0) return true;
  }
  return false;
}

Status parseKafkaSource(const Poco::Dynamic::Var& v, const std::string& feed, KafkaSource& out) {
  auto obj =
      objectField(v, "kafka", {"bootstrap", "topics", "group", "content_type", "properties"});
  if (!obj.isOk()) return obj.status();
  const auto& o = *obj.value();
  static const std::regex kServers(
      R"(^[A-Za-z0-9.:_-]+:[0-9]{1,5}(,[A-Za-z0-9.:_-]+:[0-9]{1,5})*$)");
  static const std::regex kName(R"(^[A-Za-z0-9._-]{1,249}$)");
  if (!o.has("bootstrap") || !o.get("bootstrap").isString() ||
      !std::regex_match(o.get("bootstrap").convert<std::string>(), kServers))
    return Status::invalidArgument("field 'kafka.bootstrap' must be host:port[,host:port...]");
  out.bootstrap = o.get("bootstrap").convert<std::string>();
  auto topics = o.getArray("topics");
  if (!topics || topics->size() == 0 || topics->size() > 64)
    return Status::invalidArgument("field 'kafka.topics' must be an array of 1 to 64 topic names");
  for (size_t i = 0; i < topics->size(); ++i) {
    auto t = topics->get(static_cast<unsigned>(i));
    if (!t.isString() || !std::regex_match(t.convert<std::string>(), kName))
      return Status::invalidArgument("field 'kafka.topics[" + std::to_string(i) +
                                     "]' is not a topic name");
    out.topics.push_back(t.convert<std::string>());
  }
  out.group = "firehub." + feed;
  if (o.has("group")) {
    if (!o.get("group").isString() ||
        !std::regex_match(o.get("group").convert<std::string>(), kName))
      return Status::invalidArgument("field 'kafka.group' must be a group name");
    out.group = o.get("group").convert<std::string>();
  }
  out.content_type = "application/json";
  if (o.has("content_type")) {
    auto t = contentType(o, "kafka");
    if (!t.isOk()) return t.status();
    out.content_type = t.value();
  }
  if (o.has("properties")) {
    auto props = o.getObject("properties");
    if (!props) return Status::invalidArgument("field 'kafka.properties' must be an object");
    for (const auto& [name, value] : *props) {
      if (!passThrough(name))
        return Status::invalidArgument("field 'kafka.properties." + name +
                                       "' is not passed through (security.*, sasl.*, ssl.*, "
                                       "client.*, socket.*, fetch.*, ...)");
      if (!value.isString())
        return Status::invalidArgument("field 'kafka.properties." + name + "' must be a string");
      out.properties[name] = value.convert<std::string>();
    }
  }
  return Status::ok();
}

// A header an agency's API needs (a name of token characters, a value without line breaks),
// not one the hub sets itself.
Status checkHeader(const std::string& name, const std::string& value) {
  static const std::regex kToken(R"(^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$)");
  if (!std::regex_match(name, kToken))
    return Status::invalidArgument("field 'poll.headers." + name + "' is not a header name");
  static const std::set<std::string> kOwn = {
      "host",          "content-length",    "transfer-encoding",
      "if-none-match", "if-modified-since", "connection"};
  std::string lower = name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (kOwn.count(lower))
    return Status::invalidArgument("field 'poll.headers." + name + "' is set by the hub itself");
  if (value.size() > 4096 || value.find_first_of("\r\n", 0) != std::string::npos ||
      value.find('\0') != std::string::npos)
    return Status::invalidArgument("field 'poll.headers." + name +
                                   "' must be one line of at most 4096 bytes");
  return Status::ok();
}

// A path into the answer's JSON in Poco's query syntax ("links.next", "data[0].cursor").
bool jsonPath(const std::string& s) {
  static const std::regex kPath(
      R"(^[A-Za-z0-9_$@-]+(\[[0-9]{1,4}\])?(\.[A-Za-z0-9_$@-]+(\[[0-9]{1,4}\])?){0,15}$)");
  return s.size() <= 200 && std::regex_match(s, kPath);
}

Status stringField(const Poco::JSON::Object& o, const std::string& prefix, const char* key,
                   std::string& out) {
  if (!o.has(key)) return Status::ok();
  if (!o.get(key).isString())
    return Status::invalidArgument("field '" + prefix + "." + key + "' must be a string");
  out = o.get(key).convert<std::string>();
  return Status::ok();
}

Status parsePollSource(const Poco::Dynamic::Var& v, PollSource& out) {
  auto obj = objectField(v, "poll",
                         {"url", "interval_s", "timeout_s", "headers", "content_type", "next",
                          "cursor", "cursor_param", "items", "max_pages"});
  if (!obj.isOk()) return obj.status();
  const auto& o = *obj.value();
  FIREHUB_RETURN_IF_ERROR(stringField(o, "poll", "url", out.url));
  if (out.url.empty()) return Status::invalidArgument("field 'poll.url' is required");
  if (Status s = net::checkUrlShape(out.url); !s.isOk())
    return Status::invalidArgument("field 'poll.url': " + s.message());
  FIREHUB_RETURN_IF_ERROR(integerField(o, "poll", "interval_s", 5, 86400, out.interval_s));
  FIREHUB_RETURN_IF_ERROR(integerField(o, "poll", "timeout_s", 1, 300, out.timeout_s));
  FIREHUB_RETURN_IF_ERROR(integerField(o, "poll", "max_pages", 1, 10000, out.max_pages));
  if (!o.has("timeout_s")) out.timeout_s = std::min<int64_t>(out.timeout_s, out.interval_s);
  if (out.timeout_s > out.interval_s)
    return Status::invalidArgument("field 'poll.timeout_s' must be at most poll.interval_s");
  if (o.has("headers")) {
    auto headers = o.getObject("headers");
    if (!headers) return Status::invalidArgument("field 'poll.headers' must be an object");
    if (headers->size() > 32)
      return Status::invalidArgument("field 'poll.headers' may hold at most 32 headers");
    for (const auto& [name, value] : *headers) {
      if (!value.isString())
        return Status::invalidArgument("field 'poll.headers." + name + "' must be a string");
      FIREHUB_RETURN_IF_ERROR(checkHeader(name, value.convert<std::string>()));
      out.headers[name] = value.convert<std::string>();
    }
  }
  if (o.has("content_type")) {
    auto t = contentType(o, "poll");
    if (!t.isOk()) return t.status();
    out.content_type = t.value();
  }
  FIREHUB_RETURN_IF_ERROR(stringField(o, "poll", "next", out.next));
  FIREHUB_RETURN_IF_ERROR(stringField(o, "poll", "cursor", out.cursor));
  FIREHUB_RETURN_IF_ERROR(stringField(o, "poll", "cursor_param", out.cursor_param));
  if (!out.next.empty() && out.next != "link" && !jsonPath(out.next))
    return Status::invalidArgument(
        "field 'poll.next' must be \"link\" (the Link header) or a path in the answer's JSON "
        "such as \"links.next\"");
  if (!out.next.empty() && !out.cursor.empty())
    return Status::invalidArgument(
        "field 'poll.next' and 'poll.cursor': pages follow one or the other");
  if (out.cursor.empty() != out.cursor_param.empty())
    return Status::invalidArgument(
        "fields 'poll.cursor' (where the answer holds the next cursor) and 'poll.cursor_param' "
        "(the query parameter it is sent back in) come together");
  if (!out.cursor.empty() && !jsonPath(out.cursor))
    return Status::invalidArgument(
        "field 'poll.cursor' must be a path in the answer's JSON such "
        "as \"meta.next_cursor\"");
  FIREHUB_RETURN_IF_ERROR(stringField(o, "poll", "items", out.items));
  if (!out.items.empty() && !jsonPath(out.items))
    return Status::invalidArgument(
        "field 'poll.items' must be a path in the answer's JSON such as \"data\" or "
        "\"result.list\"");
  if (!out.items.empty() && !out.content_type.empty() && out.content_type != "application/json")
    return Status::invalidArgument(
        "field 'poll.items' reads JSON answers: content_type must be "
        "application/json or left out");
  static const std::regex kParam(R"(^[A-Za-z0-9_.-]{1,64}$)");
  if (!out.cursor_param.empty() && !std::regex_match(out.cursor_param, kParam))
    return Status::invalidArgument("field 'poll.cursor_param' is not a query parameter name");
  return Status::ok();
}

Status parseMqttSource(const Poco::Dynamic::Var& v, const std::string& feed, MqttSource& out) {
  auto obj = objectField(v, "mqtt",
                         {"host", "port", "topics", "client_id", "username", "password", "tls",
                          "ca_file", "content_type", "keepalive_s"});
  if (!obj.isOk()) return obj.status();
  const auto& o = *obj.value();
  static const std::regex kHost(R"(^[A-Za-z0-9.:_-]{1,253}$)");
  FIREHUB_RETURN_IF_ERROR(stringField(o, "mqtt", "host", out.host));
  if (!std::regex_match(out.host, kHost))
    return Status::invalidArgument("field 'mqtt.host' must be a host name or address");
  FIREHUB_RETURN_IF_ERROR(integerField(o, "mqtt", "port", 1, 65535, out.port));
  FIREHUB_RETURN_IF_ERROR(integerField(o, "mqtt", "keepalive_s", 5, 3600, out.keepalive_s));
  auto topics = o.getArray("topics");
  if (!topics || topics->size() == 0 || topics->size() > 64)
    return Status::invalidArgument("field 'mqtt.topics' must be an array of 1 to 64 topic filters");
  for (size_t i = 0; i < topics->size(); ++i) {
    auto t = topics->get(static_cast<unsigned>(i));
    std::string f = t.isString() ? t.convert<std::string>() : "";
    // MQTT 3.1.1 section 4.7: '#' only last and alone in its level, '+' alone in its level.
    bool ok = !f.empty() && f.size() <= 1024 && f.find('\0') == std::string::npos;
    for (size_t p = 0; ok && p < f.size(); ++p) {
      const bool starts = p == 0 || f[p - 1] == '/';
      const bool ends = p + 1 == f.size() || f[p + 1] == '/';
      if (f[p] == '#') ok = starts && p + 1 == f.size();
      if (f[p] == '+') ok = starts && ends;
    }
    if (!ok)
      return Status::invalidArgument("field 'mqtt.topics[" + std::to_string(i) +
                                     "]' is not an MQTT topic filter");
    out.topics.push_back(f);
  }
  out.client_id = "firehub-" + feed;
  FIREHUB_RETURN_IF_ERROR(stringField(o, "mqtt", "client_id", out.client_id));
  static const std::regex kClient(R"(^[A-Za-z0-9._-]{1,64}$)");
  if (!std::regex_match(out.client_id, kClient))
    return Status::invalidArgument("field 'mqtt.client_id' must be 1 to 64 of [A-Za-z0-9._-]");
  FIREHUB_RETURN_IF_ERROR(stringField(o, "mqtt", "username", out.username));
  FIREHUB_RETURN_IF_ERROR(stringField(o, "mqtt", "password", out.password));
  if (!out.password.empty() && out.username.empty())
    return Status::invalidArgument("field 'mqtt.password' needs 'mqtt.username'");
  if (out.username.size() > 256 || out.password.size() > 256)
    return Status::invalidArgument(
        "fields 'mqtt.username' and 'mqtt.password' have at most 256 bytes");
  if (o.has("tls")) {
    if (!o.get("tls").isBoolean())
      return Status::invalidArgument("field 'mqtt.tls' must be true or false");
    out.tls = o.get("tls").convert<bool>();
  }
  FIREHUB_RETURN_IF_ERROR(stringField(o, "mqtt", "ca_file", out.ca_file));
  if (!out.ca_file.empty() && !out.tls)
    return Status::invalidArgument("field 'mqtt.ca_file' needs \"tls\": true");
  if (!out.ca_file.empty() &&
      (out.ca_file.front() != '/' || out.ca_file.find('\0') != std::string::npos))
    return Status::invalidArgument("field 'mqtt.ca_file' must be an absolute path");
  out.content_type = "application/json";
  if (o.has("content_type")) {
    auto t = contentType(o, "mqtt");
    if (!t.isOk()) return t.status();
    out.content_type = t.value();
  }
  return Status::ok();
}

}  // namespace

Status parseSources(const Poco::JSON::Object& obj, FeedSpec& spec) {
  int sources = spec.file_drop.dir.empty() ? 0 : 1;
  if (obj.has("kafka")) {
    FIREHUB_RETURN_IF_ERROR(parseKafkaSource(obj.get("kafka"), spec.id, spec.kafka));
    ++sources;
  }
  if (obj.has("poll")) {
    FIREHUB_RETURN_IF_ERROR(parsePollSource(obj.get("poll"), spec.poll));
    ++sources;
  }
  if (obj.has("mqtt")) {
    FIREHUB_RETURN_IF_ERROR(parseMqttSource(obj.get("mqtt"), spec.id, spec.mqtt));
    ++sources;
  }
  if (sources > 1)
    return Status::invalidArgument(
        "a feed reads one source: file_drop, kafka, poll or mqtt, not several");
  return Status::ok();
}

std::string kafkaOffsetKey(const std::string& feed, const std::string& topic, int partition) {
  return "kafkasrc/" + feed + "/" + topic + "/" + std::to_string(partition);
}

bool secretProperty(const std::string& name) {
  return name.find("password") != std::string::npos || name.find("secret") != std::string::npos ||
         name.find(".key") != std::string::npos;
}

std::string displayUrl(const std::string& url) {
  try {
    Poco::URI uri(url);
    auto params = uri.getQueryParameters();
    for (auto& [name, value] : params) {
      std::string lower = name;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (const char* secret : {"key", "token", "secret", "password", "sign", "auth"}) {
        if (lower.find(secret) != std::string::npos) value = "********";
      }
    }
    uri.setQueryParameters(params);
    return uri.toString();
  } catch (const Poco::Exception&) {
    return url;
  }
}

std::string pollStateKey(const std::string& feed) { return "pollsrc/" + feed; }

void setSourceFields(Poco::JSON::Object& obj, const FeedSpec& spec, bool secrets) {
  if (!spec.kafka.topics.empty()) {
    Poco::JSON::Object k;
    k.set("bootstrap", spec.kafka.bootstrap);
    Poco::JSON::Array topics;
    for (const auto& t : spec.kafka.topics) topics.add(t);
    k.set("topics", topics);
    k.set("group", spec.kafka.group);
    k.set("content_type", spec.kafka.content_type);
    Poco::JSON::Object props;
    for (const auto& [name, value] : spec.kafka.properties)
      props.set(name, secrets || !secretProperty(name) ? value : std::string("********"));
    k.set("properties", props);
    obj.set("kafka", k);
  }
  if (!spec.poll.url.empty()) {
    const auto& p = spec.poll;
    Poco::JSON::Object o;
    o.set("url", secrets ? p.url : displayUrl(p.url));
    o.set("interval_s", p.interval_s);
    o.set("timeout_s", p.timeout_s);
    o.set("max_pages", p.max_pages);
    Poco::JSON::Object headers;
    for (const auto& [name, value] : p.headers)
      headers.set(name, secrets ? value : std::string("********"));
    o.set("headers", headers);
    if (!p.content_type.empty()) o.set("content_type", p.content_type);
    if (!p.next.empty()) o.set("next", p.next);
    if (!p.items.empty()) o.set("items", p.items);
    if (!p.cursor.empty()) {
      o.set("cursor", p.cursor);
      o.set("cursor_param", p.cursor_param);
    }
    obj.set("poll", o);
  }
  if (!spec.mqtt.topics.empty()) {
    const auto& m = spec.mqtt;
    Poco::JSON::Object o;
    o.set("host", m.host);
    o.set("port", m.port);
    Poco::JSON::Array topics;
    for (const auto& t : m.topics) topics.add(t);
    o.set("topics", topics);
    o.set("client_id", m.client_id);
    if (!m.username.empty()) o.set("username", m.username);
    if (!m.password.empty()) o.set("password", secrets ? m.password : std::string("********"));
    o.set("tls", m.tls);
    if (!m.ca_file.empty()) o.set("ca_file", m.ca_file);
    o.set("content_type", m.content_type);
    o.set("keepalive_s", m.keepalive_s);
    obj.set("mqtt", o);
  }
}

}  // namespace firehub::registry
