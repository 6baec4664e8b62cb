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
  auto page = pageParams(param("limit"), param("cursor"), "grants", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  auto grants = ctx_.subscriptions->grants();
  if (!grants.isOk()) return sendError(resp, grants.status());
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& [key, topic] : grants.value()) {
    Poco::JSON::Object o;
    o.set("id", key + "/" + topic);
    o.set("key_id", key);
    o.set("topic", topic);
    items.emplace_back(key + "/" + topic, toJson(o));
  }
  std::sort(items.begin(), items.end());
  send(resp, 200, pageOfList("grants", items, page.value()));
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
  o.set("created_at", isoMillis(k.created_at));
  o.set("created_by", k.created_by);
  o.set("revoked", k.revoked);
  if (k.expires_at) o.set("expires_at", isoMillis(k.expires_at));
  if (!k.session_of.empty()) o.set("session_of", k.session_of);
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
  auto page = pageParams(param("limit"), param("cursor"), "keys", 100, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  auto keys = ctx_.keys->list();
  if (!keys.isOk()) return sendError(resp, keys.status());
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& k : keys.value()) items.emplace_back(k.id, toJson(keyJson(k)));
  std::sort(items.begin(), items.end());
  send(resp, 200, pageOfList("keys", items, page.value()));
}

void Router::showKey(HTTPServerResponse& resp, const std::string& id) {
  auto keys = ctx_.keys->list();
  if (!keys.isOk()) return sendError(resp, keys.status());
  for (const auto& k : keys.value()) {
    if (k.id == id) return send(resp, 200, toJson(keyJson(k)));
  }
  sendError(resp, Status::notFound("no key '" + id + "'"));
}

void Router::revokeKey(HTTPServerResponse& resp, const std::string& id) {
  Status s = ctx_.keys->revoke(id);
  if (!s.isOk()) return sendError(resp, s);
  showKey(resp, id);  // the key as it is now: revoked
}

// The audit log, oldest first. Entries are shown with the API's names (id, at); the hash covers
// them as stored (GET /api/v1/audit/verify checks the chain).
void Router::auditLog(HTTPServerResponse& resp) {
  if (!ctx_.audit) return sendError(resp, Status::unavailable("no audit log"));
  auto page = pageParams(param("limit"), param("cursor"), "audit", 1000, 1000);
  if (!page.isOk()) return sendError(resp, page.status());
  uint64_t from = 1;
  if (!page->after.empty()) {
    auto n = numberOf(page->after);
    if (!n) return sendError(resp, Status::invalidArgument("cursor is not one of the audit log"));
    from = *n + 1;
  }
  auto entries = ctx_.audit->list(from, page->limit + 1);
  if (!entries.isOk()) return sendError(resp, entries.status());
  const size_t shown = std::min(entries->size(), page->limit);
  std::string out = R"({"entries":[)";
  for (size_t i = 0; i < shown; ++i) {
    const auth::AuditEntry& e = entries.value()[i];
    Poco::JSON::Object o;
    o.set("id", e.sequence);
    o.set("at", isoMillis(e.at_ms));
    o.set("actor", e.actor);
    o.set("role", e.role);
    o.set("action", e.action);
    o.set("target", e.target);
    o.set("status", e.status);
    o.set("prev_hash", e.prev_hash);
    o.set("hash", e.hash);
    if (i) out += ',';
    out += toJson(o);
  }
  out += R"(],"numberReturned":)" + std::to_string(shown);
  if (entries->size() > shown) {
    out += R"(,"next":")" +
           encodeCursor("audit", sortableNumber(entries.value()[shown - 1].sequence)) + "\"";
  }
  send(resp, 200, out + "}");
}

void Router::auditVerify(HTTPServerResponse& resp) {
  if (!ctx_.audit) return sendError(resp, Status::unavailable("no audit log"));
  auto broken = ctx_.audit->verify();
  if (!broken.isOk()) return sendError(resp, broken.status());
  Poco::JSON::Object o;
  o.set("intact", !broken.value().has_value());
  if (broken.value()) o.set("first_broken_link", *broken.value());
  // Where the chain starts when retention removed older entries.
  if (auto anchor = ctx_.audit->anchor(); anchor.isOk() && anchor.value()) {
    try {
      o.set("anchor", Poco::JSON::Parser().parse(*anchor.value()));
    } catch (const Poco::Exception&) {
      o.set("anchor", *anchor.value());
    }
  }
  send(resp, 200, toJson(o));
}

}  // namespace firehub::api
