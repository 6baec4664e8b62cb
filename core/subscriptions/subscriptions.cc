// Subscriptions as data: parsed and checked against the schema, written back, and matched
// against records; webhook signatures.
#include "firehub/subscriptions.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/RandomStream.h>
#include <Poco/URI.h>
#include <openssl/hmac.h>
#include <s2/s2latlng.h>
#include <s2/s2loop.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <random>
#include <sstream>

#include "firehub/bus.h"
#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/v1/options.pb.h"
#include "firehub/v1/time_text.h"
#include <google/protobuf/util/time_util.h>
#include "internal.h"

namespace firehub::subs {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The body types of a domain, from the schema's (domain) option.
std::vector<const Descriptor*> bodiesOf(const std::string& domain) {
  std::vector<const Descriptor*> out;
  const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
  for (int i = 0; body && i < body->field_count(); ++i) {
    const auto* type = body->field(i)->message_type();
    if (type && type->options().GetExtension(firehub::v1::domain) == domain) out.push_back(type);
  }
  return out;
}

// Resolves a dotted path from the record to a scalar field: the fields met on the way.
bool resolve(const std::string& path, std::vector<const FieldDescriptor*>& chain) {
  chain.clear();
  const Descriptor* d = firehub::v1::Record::descriptor();
  std::istringstream in(path);
  std::string part;
  while (std::getline(in, part, '.')) {
    if (!d) return false;
    const FieldDescriptor* f = d->FindFieldByName(part);
    if (!f || f->is_repeated()) return false;
    chain.push_back(f);
    d = f->message_type();
  }
  return !chain.empty() && chain.back()->message_type() == nullptr;
}

// The value at the chain as text (enum values by name), or nullopt when a message on the way
// is not set.
std::optional<std::string> valueAt(const Message& root,
                                   const std::vector<const FieldDescriptor*>& chain) {
  const Message* m = &root;
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    const auto* r = m->GetReflection();
    if (!r->HasField(*m, chain[i])) return std::nullopt;
    m = &r->GetMessage(*m, chain[i]);
  }
  const FieldDescriptor* f = chain.back();
  const auto* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(*m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return r->GetEnum(*m, f)->name();
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(*m, f) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(r->GetInt32(*m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(r->GetInt64(*m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(r->GetUInt32(*m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(r->GetUInt64(*m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      if (f->has_presence() && !r->HasField(*m, f)) return std::nullopt;
      std::ostringstream os;
      os.precision(17);
      os << r->GetDouble(*m, f);
      return os.str();
    }
    case FieldDescriptor::CPPTYPE_FLOAT:
      return std::to_string(r->GetFloat(*m, f));
    default:
      return std::nullopt;
  }
}

bool numeric(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return true;
    default:
      return false;
  }
}

// An enum value matches its full name or the name without its type prefix, in any case:
// "STATUS_OUT_OF_SERVICE" and "out_of_service" name the same value.
bool sameValue(const FieldDescriptor* f, const std::string& actual, const std::string& wanted) {
  if (f->cpp_type() != FieldDescriptor::CPPTYPE_ENUM) return actual == wanted;
  std::string a = lower(actual), w = lower(wanted);
  if (a == w) return true;
  return a.size() > w.size() && a.compare(a.size() - w.size(), w.size(), w) == 0 &&
         a[a.size() - w.size() - 1] == '_';
}

bool test(const Condition& c, const firehub::v1::Record& r) {
  std::vector<const FieldDescriptor*> chain;
  if (!resolve(c.field, chain)) return false;
  auto value = valueAt(r, chain);
  if (!value) return false;
  const FieldDescriptor* f = chain.back();
  if (c.op == "eq") return sameValue(f, *value, c.values[0]);
  if (c.op == "ne") return !sameValue(f, *value, c.values[0]);
  if (c.op == "in") {
    for (const auto& v : c.values) {
      if (sameValue(f, *value, v)) return true;
    }
    return false;
  }
  double a = std::stod(*value), b = std::stod(c.values[0]);
  if (c.op == "gt") return a > b;
  if (c.op == "gte") return a >= b;
  if (c.op == "lt") return a < b;
  if (c.op == "lte") return a <= b;
  return false;
}

bool validLonLat(double lon, double lat) {
  return std::isfinite(lon) && std::isfinite(lat) && lon >= -180 && lon <= 180 && lat >= -90 &&
         lat <= 90;
}

// The most values an "in" condition may list.
constexpr size_t kMaxInValues = 256;
}  // namespace

std::string kafkaDeliveryTopic(const Subscription& s) {
  return "firehub.v1.sub." + s.id + (s.restricted ? "" : ".public");
}

std::string hmacSha256Hex(const std::string& secret, const std::string& body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), out, &len);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

std::string webhookSignature(const std::string& secret, int64_t unix_seconds,
                             const std::string& body) {
  const std::string t = std::to_string(unix_seconds);
  return "t=" + t + ",sha256=" + hmacSha256Hex(secret, t + "." + body);
}

// Long: every part of a subscription request checked in turn, with its own error message.
Result<Subscription> parseSubscription(const std::string& json, bool restricted) {
  Status error = Status::ok();
  auto o = parseObject(json, error);
  if (!o) return error;
  Subscription s;
  try {
    std::string topic = o->optValue<std::string>("topic", "");
    if (topic.rfind("firehub.v1.", 0) != 0 || topic.size() <= 11) {
      return Status::invalidArgument("field 'topic' must be a domain topic firehub.v1.<domain>");
    }
    s.domain = topic.substr(11);
    auto bodies = bodiesOf(s.domain);
    if (bodies.empty()) return Status::invalidArgument("topic '" + topic + "': no such domain");
    if (o->has("filter")) {
      auto filter = o->getObject("filter");
      if (!filter) return Status::invalidArgument("field 'filter' must be an object");
      if (auto where = filter->getArray("where")) {
        if (where->size() > 32)
          return Status::invalidArgument("filter.where: at most 32 conditions");
        for (size_t i = 0; i < where->size(); ++i) {
          auto c = where->getObject(static_cast<unsigned>(i));
          if (!c)
            return Status::invalidArgument("filter.where[" + std::to_string(i) +
                                           "] must be an object");
          Condition cond;
          cond.field = c->optValue<std::string>("field", "");
          cond.op = c->optValue<std::string>("op", "eq");
          std::vector<const FieldDescriptor*> chain;
          if (!resolve(cond.field, chain)) {
            return Status::invalidArgument(
                "filter.where[" + std::to_string(i) + "].field '" + cond.field +
                "' is not a field of the shared schema (e.g. agency, entity_id, " +
                bodies[0]->name() + " fields as <body>.<field>)");
          }
          bool body_ok = chain.size() == 1;
          for (const auto* b : bodies) body_ok |= chain[0]->message_type() == b;
          if (!body_ok && chain[0]->containing_oneof()) {
            return Status::invalidArgument("filter.where[" + std::to_string(i) + "].field '" +
                                           cond.field + "' is not in the bodies of domain '" +
                                           s.domain + "'");
          }
          static const std::vector<std::string> kOps = {"eq", "ne", "in", "gt", "gte", "lt", "lte"};
          if (std::find(kOps.begin(), kOps.end(), cond.op) == kOps.end()) {
            return Status::invalidArgument("filter.where[" + std::to_string(i) + "].op '" +
                                           cond.op + "' is not eq, ne, in, gt, gte, lt or lte");
          }
          bool restricted_field = false;
          for (const auto* f : chain) restricted_field |= isRestrictedField(f);
          if (restricted_field && !restricted) {
            return Status::permissionDenied(
                "filter.where[" + std::to_string(i) + "].field '" + cond.field +
                "' is classified restricted; filtering on it needs a key with "
                "the restricted grant");
          }
          // "in" takes 'values'; the other operators take 'value' (a one-element 'values', as
          // earlier versions stored it, is read the same way).
          auto values = c->getArray("values");
          if (cond.op == "in") {
            if (!values || values->size() == 0 || values->size() > kMaxInValues) {
              return Status::invalidArgument("filter.where[" + std::to_string(i) +
                                             "]: 'in' needs 'values', 1.." +
                                             std::to_string(kMaxInValues) + " of them");
            }
            for (size_t j = 0; j < values->size(); ++j)
              cond.values.push_back(values->get(static_cast<unsigned>(j)).toString());
          } else if (c->has("value")) {
            cond.values.push_back(c->get("value").toString());
          } else if (values && values->size() == 1) {
            cond.values.push_back(values->get(0).toString());
          } else {
            return Status::invalidArgument("filter.where[" + std::to_string(i) +
                                           "]: 'value' is missing");
          }
          for (const auto& v : cond.values) {
            if (v.size() > 1024) {
              return Status::invalidArgument("filter.where[" + std::to_string(i) +
                                             "]: a value is over 1024 bytes");
            }
            // An enum field takes one of its values' names: a value it does not have would
            // never match.
            if (const auto* e = chain.back()->enum_type()) {
              bool known = false;
              std::string names;
              for (int k = 0; k < e->value_count(); ++k) {
                known |= sameValue(chain.back(), e->value(k)->name(), v);
                names += (k ? ", " : "") + e->value(k)->name();
              }
              if (!known) {
                return Status::invalidArgument("filter.where[" + std::to_string(i) + "]: '" + v +
                                               "' is not a value of " + cond.field + " (" + names +
                                               "; the prefix may be left out, in any case)");
              }
            }
          }
          if (cond.op == "gt" || cond.op == "gte" || cond.op == "lt" || cond.op == "lte") {
            char* end = nullptr;
            double number = std::strtod(cond.values[0].c_str(), &end);
            if (!numeric(chain.back()) || *end != '\0' || cond.values[0].empty() ||
                !std::isfinite(number)) {
              return Status::invalidArgument("filter.where[" + std::to_string(i) + "]: '" +
                                             cond.op + "' compares finite numbers; '" + cond.field +
                                             "' or its value is not one");
            }
          }
          s.where.push_back(std::move(cond));
        }
      }
      if (auto b = filter->getArray("bbox")) {
        if (b->size() != 4)
          return Status::invalidArgument("filter.bbox must be [minlon,minlat,maxlon,maxlat]");
        lake::BBox box{b->getElement<double>(0), b->getElement<double>(1), b->getElement<double>(2),
                       b->getElement<double>(3)};
        if (!validLonLat(box.min_lon, box.min_lat) || !validLonLat(box.max_lon, box.max_lat) ||
            box.min_lon > box.max_lon || box.min_lat > box.max_lat) {
          return Status::invalidArgument(
              "filter.bbox must be [minlon,minlat,maxlon,maxlat], finite, within "
              "[-180,180]x[-90,90], min not above max");
        }
        s.bbox = box;
      }
      if (auto poly = filter->getArray("polygon")) {
        for (size_t i = 0; i < poly->size(); ++i) {
          auto pt = poly->getArray(static_cast<unsigned>(i));
          if (!pt || pt->size() != 2)
            return Status::invalidArgument("filter.polygon must be [[lon,lat],...]");
          if (poly->size() > 10000)
            return Status::invalidArgument("filter.polygon: at most 10000 corners");
          double lon = pt->getElement<double>(0), lat = pt->getElement<double>(1);
          if (!validLonLat(lon, lat)) {
            return Status::invalidArgument(
                "filter.polygon[" + std::to_string(i) +
                "] must be a finite [lon,lat] within [-180,180]x[-90,90]");
          }
          s.polygon.emplace_back(lon, lat);
        }
        if (s.polygon.size() > 1 && s.polygon.front() == s.polygon.back()) s.polygon.pop_back();
        if (s.polygon.size() < 3)
          return Status::invalidArgument("filter.polygon needs at least 3 corners");
      }
    }
    if (o->has("paused")) {
      if (!o->get("paused").isBoolean())
        return Status::invalidArgument("paused must be true or false");
      s.paused = o->getValue<bool>("paused");
    }
    s.from = o->optValue<std::string>("from", "now");
    if (s.from != "now" && s.from != "beginning") {
      google::protobuf::Timestamp t;
      if (!google::protobuf::util::TimeUtil::FromString(s.from, &t)) {
        return Status::invalidArgument(
            "from must be now, beginning or an RFC 3339 time (2026-12-07T08:00:00+08:00)");
      }
    }
    s.start_after = o->optValue<uint64_t>("start_after", 0);
    auto delivery = o->getObject("delivery");
    s.delivery = delivery ? delivery->optValue<std::string>("kind", "sse") : "sse";
    if (s.delivery != "sse" && s.delivery != "webhook" && s.delivery != "kafka") {
      return Status::invalidArgument("delivery.kind must be sse, webhook or kafka");
    }
    if (s.delivery == "webhook") {
      s.url = delivery->optValue<std::string>("url", "");
      s.secret = delivery->optValue<std::string>("secret", "");
      s.max_attempts = delivery->optValue<int>("max_attempts", s.max_attempts);
      if (Status shape = net::checkUrlShape(s.url); !shape.isOk()) {
        return Status::invalidArgument("delivery.url: " + shape.message() +
                                       " (the signature secret authenticates the hub)");
      }
      if (s.secret.size() < 16)
        return Status::invalidArgument("delivery.secret must have at least 16 characters");
      if (s.max_attempts < 1 || s.max_attempts > 100)
        return Status::invalidArgument("delivery.max_attempts must be 1..100");
    }
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("subscription: " + e.displayText());
  }
  return s;
}

std::string subscriptionJson(const Subscription& s, bool stored) {
  const bool with_secret = stored;
  Poco::JSON::Object o;
  o.set("id", s.id);
  o.set("topic", "firehub.v1." + s.domain);
  o.set("owner", s.owner);
  o.set("restricted", s.restricted);
  Poco::JSON::Object filter;
  Poco::JSON::Array where;
  for (const auto& c : s.where) {
    Poco::JSON::Object w;
    w.set("field", c.field);
    w.set("op", c.op);
    if (c.op == "in") {
      Poco::JSON::Array values;
      for (const auto& v : c.values) values.add(v);
      w.set("values", values);
    } else {
      w.set("value", c.values.at(0));  // read back by parseSubscription as it was given
    }
    where.add(w);
  }
  filter.set("where", where);
  if (s.bbox) {
    Poco::JSON::Array b;
    for (double v : {s.bbox->min_lon, s.bbox->min_lat, s.bbox->max_lon, s.bbox->max_lat}) b.add(v);
    filter.set("bbox", b);
  }
  if (!s.polygon.empty()) {
    Poco::JSON::Array poly;
    for (const auto& [lon, lat] : s.polygon) {
      Poco::JSON::Array pt;
      pt.add(lon);
      pt.add(lat);
      poly.add(pt);
    }
    filter.set("polygon", poly);
  }
  o.set("filter", filter);
  Poco::JSON::Object delivery;
  delivery.set("kind", s.delivery);
  if (s.delivery == "webhook") {
    delivery.set("url", s.url);
    delivery.set("max_attempts", s.max_attempts);
    if (with_secret) delivery.set("secret", s.secret);
  }
  if (s.delivery == "kafka") delivery.set("topic", kafkaDeliveryTopic(s));
  if (s.delivery == "sse") delivery.set("events", "/api/v1/subscriptions/" + s.id + "/events");
  o.set("delivery", delivery);
  o.set("paused", s.paused);
  o.set("from", s.from);
  if (stored) {
    o.set("created_at_ms", s.created_at);
    o.set("start_after", s.start_after);
  } else {
    o.set("created_at", firehub::v1::rfc3339Millis(s.created_at));
  }
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

bool matches(const Subscription& s, const firehub::v1::Record& r) {
  if (r.domain() != s.domain) return false;
  for (const auto& c : s.where) {
    if (!test(c, r)) return false;
  }
  if (s.bbox || !s.polygon.empty()) {
    auto place = lake::representativePoint(r.geometry());
    if (!place) return false;
    if (s.bbox && !s.bbox->contains(place->lon, place->lat)) return false;
    if (!s.polygon.empty()) {
      std::vector<S2Point> vertices;
      for (const auto& [lon, lat] : s.polygon)
        vertices.push_back(S2LatLng::FromDegrees(lat, lon).ToPoint());
      S2Loop loop(vertices, S2Debug::DISABLE);
      if (!loop.IsValid()) return false;
      loop.Normalize();
      if (!loop.Contains(S2LatLng::FromDegrees(place->lat, place->lon).ToPoint())) return false;
    }
  }
  return true;
}

}  // namespace firehub::subs
