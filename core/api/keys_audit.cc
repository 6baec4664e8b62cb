// API keys (and the domains of agency keys), topic grants and the audit log.
#include "api/router.h"

namespace firehub::api {

void Router::addGrant(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  std::string key_id, topic;
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(body.value()).extract<Poco::JSON::Object::Ptr>();
    key_id = o->optValue<std::string>("key_id", "");
    topic = o->optValue<std::string>("topic", "");
  } catch (const Poco::Exception& e) {
    return sendError(resp,
                     Status::invalidArgument("body must be {\"key_id\": ..., \"topic\": ...}"));
  }
  if (key_id.empty() || topic.rfind("firehub.v1.", 0) != 0) {
    return sendError(
        resp, Status::invalidArgument("'key_id' and a 'topic' firehub.v1.<domain> are required"));
  }
  audit_target_ = key_id + " " + topic;
  Status st = ctx_.subscriptions->grant(key_id, topic);
  if (!st.isOk()) return sendError(resp, st);
  send(resp, 201, R"({"key_id":)" + jsonString(key_id) + R"(,"topic":)" + jsonString(topic) + "}");
}

void Router::listGrants(HTTPServerResponse& resp) {
  auto grants = ctx_.subscriptions->grants();
  if (!grants.isOk()) return sendError(resp, grants.status());
  Poco::JSON::Array arr;
  for (const auto& [key, topic] : grants.value()) {
    Poco::JSON::Object o;
    o.set("key_id", key);
    o.set("topic", topic);
    arr.add(o);
  }
  Poco::JSON::Object o;
  o.set("grants", arr);
  send(resp, 200, toJson(o));
}

Poco::JSON::Object Router::keyJson(const auth::KeyInfo& k) {
  Poco::JSON::Object o;
  o.set("id", k.id);
  o.set("role", auth::roleName(k.role));
  if (!k.agency.empty()) o.set("agency", k.agency);
  if (k.role == auth::Role::kAgency) {
    Poco::JSON::Array domains;
    for (const auto& d : k.domains) domains.add(d);
    o.set("domains", domains);
  }
  o.set("restricted", k.restricted);
  if (!k.note.empty()) o.set("note", k.note);
  o.set("created_at_ms", k.created_at);
  o.set("created_by", k.created_by);
  o.set("revoked", k.revoked);
  return o;
}

void Router::createKey(HTTPServerRequest& req, HTTPServerResponse& resp) {
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  std::string role_name, agency, note;
  bool restricted = false;
  std::vector<std::string> domains;
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(body.value()).extract<Poco::JSON::Object::Ptr>();
    role_name = o->optValue<std::string>("role", "");
    agency = o->optValue<std::string>("agency", "");
    note = o->optValue<std::string>("note", "");
    restricted = o->optValue<bool>("restricted", false);
    auto listed = domainList(*o);
    if (!listed.isOk()) return sendError(resp, listed.status());
    domains = listed.value();
  } catch (const Poco::Exception& e) {
    return sendError(
        resp, Status::invalidArgument("body must be JSON {\"role\": ..., \"agency\": ...}: " +
                                      e.displayText()));
  }
  auto role = auth::parseRole(role_name);
  if (!role.isOk()) return sendError(resp, role.status());
  auto created = ctx_.keys->create(role.value(), agency, restricted, note, who_.key_id, domains);
  if (!created.isOk()) return sendError(resp, created.status());
  audit_target_ = created->first.id;
  Poco::JSON::Object o = keyJson(created->first);
  o.set("key", created->second);  // shown once; only its hash is kept
  send(resp, 201, toJson(o));
}

// "domains": an array of domain names (at most one per domain of the schema).
Result<std::vector<std::string>> Router::domainList(const Poco::JSON::Object& o) {
  std::vector<std::string> out;
  if (!o.has("domains")) return out;
  auto arr = o.getArray("domains");
  if (!arr || arr->size() > 64)
    return Status::invalidArgument("'domains' must be an array of domain names");
  for (size_t i = 0; i < arr->size(); ++i) {
    auto v = arr->get(static_cast<unsigned>(i));
    if (!v.isString()) return Status::invalidArgument("'domains' must be an array of domain names");
    out.push_back(v.convert<std::string>());
  }
  return out;
}

// PATCH /api/v1/keys/{id} {"domains": [...]}: the domains an agency key may write.
void Router::patchKey(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& id) {
  auto body = readBody(req);
  if (!body.isOk()) return sendError(resp, body.status());
  Poco::JSON::Object::Ptr o;
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(body.value());
    if (v.type() == typeid(Poco::JSON::Object::Ptr)) o = v.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
  }
  std::vector<std::string> names;
  if (o) o->getNames(names);
  if (!o || names != std::vector<std::string>{"domains"}) {
    return sendError(resp, Status::invalidArgument(R"(body must be {"domains": ["water", ...]})"));
  }
  auto domains = domainList(*o);
  if (!domains.isOk()) return sendError(resp, domains.status());
  audit_target_ = id + " domains";
  auto changed = ctx_.keys->setDomains(id, domains.value());
  if (!changed.isOk()) return sendError(resp, changed.status());
  send(resp, 200, toJson(keyJson(changed.value())));
}

void Router::listKeys(HTTPServerResponse& resp) {
  auto keys = ctx_.keys->list();
  if (!keys.isOk()) return sendError(resp, keys.status());
  Poco::JSON::Array arr;
  for (const auto& k : keys.value()) arr.add(keyJson(k));
  Poco::JSON::Object o;
  o.set("keys", arr);
  send(resp, 200, toJson(o));
}

void Router::revokeKey(HTTPServerResponse& resp, const std::string& id) {
  Status s = ctx_.keys->revoke(id);
  if (!s.isOk()) return sendError(resp, s);
  send(resp, 200, R"({"revoked":)" + jsonString(id) + "}");
}

void Router::auditLog(HTTPServerResponse& resp, const std::optional<std::string>& from) {
  if (!ctx_.audit) return sendError(resp, Status::unavailable("no audit log"));
  auto entries = ctx_.audit->list(from ? std::strtoull(from->c_str(), nullptr, 10) : 1, 1000);
  if (!entries.isOk()) return sendError(resp, entries.status());
  std::string out = R"({"entries":[)";
  for (size_t i = 0; i < entries->size(); ++i) {
    if (i) out += ',';
    out += auth::auditEntryJson(entries.value()[i]);
  }
  send(resp, 200, out + "]}");
}

void Router::auditVerify(HTTPServerResponse& resp) {
  if (!ctx_.audit) return sendError(resp, Status::unavailable("no audit log"));
  auto broken = ctx_.audit->verify();
  if (!broken.isOk()) return sendError(resp, broken.status());
  Poco::JSON::Object o;
  o.set("intact", !broken.value().has_value());
  if (broken.value()) o.set("first_broken_link", *broken.value());
  send(resp, 200, toJson(o));
}

}  // namespace firehub::api
